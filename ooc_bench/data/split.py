"""Stratified, group-aware train/val/test splits, the split manifest CSV every later stage reads, and the leakage guard."""

from __future__ import annotations

import csv
import io
import os
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Iterable

import numpy as np

from ..atomic import write_text
from ..errors import LeakageError, UserInputError
from ..hashing import array_hash, config_hash
from .records import SPLITS, Dataset, ImageRecord

MANIFEST_COLUMNS = ["path", "label", "split", "group", "hash"]
DEFAULT_VAL = 0.15  # validation share of new splits, and of pre-split sets without val (carved from train)


def _group_key(group_by: str | None):
    def key(r: ImageRecord) -> str | None:
        if group_by is None:
            return r.group or r.hash  # identical images always share a group
        if group_by == "group":
            return r.group
        if group_by == "hash":
            return r.hash
        return r.metadata.get(group_by) or None

    return key


def _groups_of(records: list[ImageRecord], group_by: str | None) -> list[str]:
    key = _group_key(group_by)
    groups = [key(r) for r in records]
    missing = [r.path for r, g in zip(records, groups) if not g]
    if missing:
        available = sorted({k for r in records for k in r.metadata})
        from .rules import listing as _listing

        raise UserInputError(f"--group-by {group_by}: {len(missing)} image(s) have no {group_by!r} value, e.g. "
                             f"{_listing(missing, 3)}; choose one of: group, {', '.join(available) or '(no metadata)'}")
    return [str(g) for g in groups]


def _assign(records: list[ImageRecord], groups: list[str], fractions: dict[str, float], classes: list[str],
            rng: np.random.Generator) -> dict[str, str]:
    """Greedy stratified assignment of whole groups to splits: roughly largest groups first (sizes jittered by
    the seed, so seeds give different splits), each to the split where it best closes the per-class gap."""
    cidx = {c: i for i, c in enumerate(classes)}
    members: dict[str, np.ndarray] = {}
    for g, r in zip(groups, records):
        members.setdefault(g, np.zeros(len(classes)))[cidx[r.label]] += 1
    names = [s for s in fractions if fractions[s] > 0]
    total = sum(members.values())
    norm = np.maximum(total, 1.0)
    targets = np.stack([fractions[s] * total for s in names])
    counts = np.zeros_like(targets)
    keys = sorted(members)
    jitter = dict(zip(keys, rng.lognormal(0.0, 0.7, len(keys))))
    order = sorted(keys, key=lambda g: -members[g].sum() * jitter[g])  # roughly largest first, seed-dependent
    out: dict[str, str] = {}
    # seeding pass: every split (train first) gets one small group of every class while groups remain
    for ci in np.argsort(total, kind="stable"):
        for s in sorted(range(len(names)), key=lambda k: ("train", "test", "val").index(names[k])):
            if counts[s][ci] > 0:
                continue
            cands = [g for g in order if g not in out and members[g][ci] > 0]
            if cands:
                g = min(cands, key=lambda g: members[g].sum())
                counts[s] += members[g]
                out[g] = names[s]
    for g in order:
        if g in out:
            continue
        v = members[g]
        cost = (((counts + v - targets) / norm) ** 2 - ((counts - targets) / norm) ** 2).sum(axis=1)
        s = int(np.argmin(cost))
        counts[s] += v
        out[g] = names[s]
    return out


def make_split(dataset: Dataset, group_by: str | None = None, val: float = DEFAULT_VAL, test: float = 0.2,
               seed: int = 0, keep_official: bool = True) -> Dataset:
    """Return a new Dataset whose records all have a split and a group.

    An existing split (pre-split folders, the OOC official split, a CSV split column) is kept when
    ``keep_official`` (a missing val split is carved out of train); otherwise the images are split
    stratified by class with ``seed``. With ``group_by`` ('date', 'group' or any metadata column) no
    group spans two splits — a kept split that violates this is refused (use keep_official=False).
    Without ``group_by`` identical images (same hash) still share a group.
    """
    if not (0 <= val < 1 and 0 < test < 1 and val + test < 1):
        raise UserInputError(f"--val {val} / --test {test}: need 0 <= val, 0 < test and val + test < 1")
    from .rules import group_leaks, listing as _listing, split_problems

    records = list(dataset.records)
    notes: list[str] = []
    groups = _groups_of(records, group_by)
    rng = np.random.default_rng(seed)
    classes = list(dataset.classes)
    if keep_official and dataset.has_splits:
        if dataset.problems:
            raise UserInputError("the existing split cannot be kept: " + " | ".join(dataset.problems)
                                 + " (or pass --resplit / keep_official=False)")
        if group_by is not None:
            tmp = [replace(r, group=g) for r, g in zip(records, groups)]
            n_shared, n_groups, ex = group_leaks(tmp, "group")
            if n_shared:
                raise UserInputError(f"--group-by {group_by}: the existing split puts {n_shared} of {n_groups} groups "
                                     f"in more than one split (e.g. {', '.join(ex)}); add --resplit to make a "
                                     f"split grouped by {group_by}")
        splits = [r.split for r in records]
        if val > 0 and "val" not in splits:
            notes.append(f"the dataset's split has no val: a stratified {val:.0%} of all images (seed {seed}) was "
                         "carved out of train for validation (early stopping); test is untouched")
            train_idx = [i for i, s in enumerate(splits) if s == "train"]
            frac = min(0.9, val * len(records) / max(1, len(train_idx)))
            assigned = _assign([records[i] for i in train_idx], [groups[i] for i in train_idx],
                               {"train": 1 - frac, "val": frac}, classes, rng)
            for i in train_idx:
                splits[i] = assigned[groups[i]]
    else:
        assigned = _assign(records, groups, {"train": 1 - val - test, "val": val, "test": test}, classes, rng)
        splits = [assigned[g] for g in groups]
    new = [replace(r, split=s, group=g) for r, s, g in zip(records, splits, groups)]
    counts = Counter((r.split, r.label) for r in new)
    needed = ("train", "val", "test") if val > 0 else ("train", "test")
    missing = [f"{c} in {s}" for s in needed for c in classes if counts[(s, c)] == 0]
    if missing:
        raise UserInputError(f"{dataset.root}: the split leaves no images of {_listing(missing)}; the class has too "
                             "few images (or groups) for these fractions: add images, lower --val/--test, or "
                             "choose a finer --group-by")
    out = Dataset(root=dataset.root, layout=dataset.layout, classes=classes, records=new,
                  problems=split_problems(new, classes), warnings=list(dataset.warnings) + notes)
    if not (keep_official and dataset.has_splits):
        out.warnings = [w for w in out.warnings if "official split shares" not in w]
    return out


# ---------------------------------------------------------------------------------------------- manifest
def _rel(path: str, base: Path) -> str:
    file, sep, rest = path.partition("#") if ".npz#" in path.lower() else (path, "", "")
    try:
        rel = os.path.relpath(os.path.abspath(file), base)
    except ValueError:  # another drive on Windows
        rel = file
    return rel.replace(os.sep, "/") + sep + rest


def write_split_manifest(dataset: Dataset, path: str | os.PathLike) -> None:
    """Write ``path,label,split,group,hash,<metadata...>`` (paths relative to the CSV's folder), atomically."""
    path = Path(path)
    missing = [r.path for r in dataset.records if r.split not in SPLITS]
    if missing:
        raise UserInputError(f"{missing[0]} (and {len(missing) - 1} more) has no split; run make_split / "
                             "`ooc-bench data split` first")
    meta = sorted({k for r in dataset.records for k in r.metadata} - set(MANIFEST_COLUMNS))
    base = path.parent.resolve() if path.parent.exists() else Path(os.path.abspath(path.parent))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(MANIFEST_COLUMNS + meta)
    for r in dataset.records:
        w.writerow([_rel(r.path, base),
                    r.label, r.split, r.group or "", r.hash] + [r.metadata.get(k, "") for k in meta])
    write_text(path, buf.getvalue())


def _manifest_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    from .rules import read_csv_rows

    if not path.is_file():
        raise UserInputError(f"{path}: split manifest not found; create it with `ooc-bench data split`")
    header, rows = read_csv_rows(path)
    missing = [c for c in ("path", "label", "split", "hash") if c not in header]
    if missing:
        raise UserInputError(f"{path}: not a split manifest (missing column(s) {', '.join(missing)}); "
                             "create one with `ooc-bench data split`")
    return header, rows


def read_split_manifest(path: str | os.PathLike, verify: bool = True) -> Dataset:
    """Read a manifest written by :func:`write_split_manifest`; ``verify`` re-checks every content hash."""
    from .decode import is_npz_ref, load_npz
    from .filehash import hash_files
    from .rules import listing as _listing, norm_split as _norm_split, split_problems

    path = Path(path).expanduser()
    _, rows = _manifest_rows(path)
    if not rows:
        raise UserInputError(f"{path}: the split manifest lists no images")
    base = path.parent
    records = []
    for i, row in enumerate(rows, start=2):
        ref = row["path"]
        file, sep, rest = ref.partition("#") if ".npz#" in ref.lower() else (ref, "", "")
        full = (file if os.path.isabs(file) else os.path.abspath(base / file)) + sep + rest
        split = _norm_split(row["split"], f"{path} line {i}")
        if split is None or not row["label"] or not row["hash"]:
            raise UserInputError(f"{path} line {i}: empty split, label or hash; re-create the manifest")
        md = {k: v for k, v in row.items() if k not in MANIFEST_COLUMNS and v != ""}
        records.append(ImageRecord(path=full, label=row["label"], hash=row["hash"], split=split,
                                   group=row.get("group") or None, metadata=md))
    if verify:
        files = [r for r in records if not is_npz_ref(r.path)]
        actual = dict(zip((r.path for r in files), hash_files([r.path for r in files])))
        for r in records:
            if is_npz_ref(r.path):
                f, _, k = r.path.partition("#")
                key, idx = k[:-1].split("[")
                arr = load_npz(f).get(key)
                actual[r.path] = array_hash(arr[int(idx)]) if arr is not None and int(idx) < len(arr) else None
        gone = [r.path for r in records if actual[r.path] is None]
        if gone:
            raise UserInputError(f"{path}: {len(gone)} image(s) listed in the manifest are missing or unreadable: "
                                 f"{_listing(gone, 3)}; restore them or re-run `ooc-bench data split`")
        changed = [r.path for r in records if actual[r.path] != r.hash]
        if changed:
            raise UserInputError(f"{path}: {len(changed)} image(s) changed since the manifest was written: "
                                 f"{_listing(changed, 3)}; re-run `ooc-bench data split`")
    classes = sorted({r.label for r in records})
    return Dataset(root=base, layout="manifest", classes=classes, records=records,
                   problems=split_problems(records, classes))


def manifest_hash(path_or_dataset: str | os.PathLike | Dataset) -> str:
    """Hash of a split's content — (image hash, label, split) triples — independent of paths and row order."""
    if isinstance(path_or_dataset, Dataset):
        triples = [(r.hash, r.label, r.split or "") for r in path_or_dataset.records]
    else:
        _, rows = _manifest_rows(Path(path_or_dataset))
        from .rules import SPLIT_ALIASES

        triples = [(r["hash"], r["label"], SPLIT_ALIASES.get(r["split"].lower(), r["split"])) for r in rows]
    return config_hash(sorted(triples))


def check_train_only(records: Iterable[ImageRecord | str], dataset_with_splits: Dataset, purpose: str) -> None:
    """Raise LeakageError naming the files when any record (or hash) belongs to the val or test split."""
    held: dict[str, ImageRecord] = {}
    for r in dataset_with_splits.records:
        if r.split in ("val", "test"):
            held.setdefault(r.hash, r)
    bad = []
    for r in records:
        h = r if isinstance(r, str) else r.hash
        name = h if isinstance(r, str) else r.path
        own = None if isinstance(r, str) else r.split
        if h in held:
            src = held[h]
            same = "" if src.path == name else f", same content as {src.path}"
            bad.append(f"{name} ({src.split}{same})")
        elif own in ("val", "test"):
            bad.append(f"{name} ({own})")
    if bad:
        from .rules import listing as _listing

        raise LeakageError(f"leakage guard ({purpose}): {len(bad)} image(s) belong to the held-out val/test split: "
                           f"{_listing(bad, 3)}. Use only the train split of the split manifest")


def split_summary(dataset: Dataset) -> dict[str, dict[str, int]]:
    """{split: {class: count}} (split None -> 'all')."""
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for (s, c), n in sorted(Counter((r.split or "all", r.label) for r in dataset.records).items()):
        out[s][c] = n
    return dict(out)
