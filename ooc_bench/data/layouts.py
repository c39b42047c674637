"""Find and read labelled image sets: class folders, pre-split folders, the OOC organ-on-chip layout, .npz and CSV."""

from __future__ import annotations

import csv
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserInputError
from ..hashing import array_hash
from .datasheet import find_datasheet, join_datasheet
from .decode import IMAGE_EXTENSIONS, check_image_file, list_images, npz_ref
from .filehash import hash_files, workers
from .progress import progress_bar
from .records import SPLITS, Dataset, ImageRecord
from .rules import MAX_LISTED, SPLIT_ALIASES, group_leaks, read_csv_rows, split_problems  # noqa: F401 - re-exported
from .rules import listing as _listing
from .rules import norm_split as _norm_split

LAYOUTS = ("folders", "presplit", "ooc", "npz", "csv", "manifest")
OOC_FOLDER = "OOC_image_dataset"
DAY_BUCKET = re.compile(r"^\d+(\+|-\d+)?_days?$", re.IGNORECASE)
DATE_PREFIX = re.compile(r"^(\d{6})(?:_|$)")
JUNK = {".ds_store", "thumbs.db", "desktop.ini"}


@dataclass
class Candidate:
    """An image found on disk, before validation and hashing."""

    path: str
    label: str
    split: str | None = None
    group: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__")))


def _split_dirs(root: Path) -> dict[str, Path]:
    """Map of canonical split name -> folder for the split folders directly under ``root``."""
    found: dict[str, Path] = {}
    for d in _subdirs(root):
        canon = SPLIT_ALIASES.get(d.name.lower())
        if canon and canon not in found:
            found[canon] = d
    return found


def _ooc_root(root: Path) -> Path:
    """The Zenodo download unpacks to a folder holding ``OOC_image_dataset/``: step into it."""
    inner = root / OOC_FOLDER
    return inner if inner.is_dir() and not _split_dirs(root) else root


def _looks_ooc(split_root: Path) -> bool:
    """True when ``train/<class>/`` holds ``cell_type_*`` folders or day-bucket folders one level further down."""
    for cls in _subdirs(split_root):
        for sub in _subdirs(cls):
            if sub.name.lower().startswith("cell_type") or DAY_BUCKET.match(sub.name):
                return True
            if any(DAY_BUCKET.match(s.name) for s in _subdirs(sub)):
                return True
    return False


def detect_layout(path: str | os.PathLike) -> str:
    """Name of the layout at ``path``: folders, presplit, ooc, npz, csv or manifest (UserInputError if none fits)."""
    root = Path(path).expanduser()
    if not root.exists():
        raise UserInputError(f"{root}: no such file or folder; check the dataset path")
    if root.is_file():
        suffix = root.suffix.lower()
        if suffix == ".npz":
            return "npz"
        if suffix in (".csv", ".tsv"):
            header = {h.strip().lower() for h in _csv_header(root)}
            if {"path", "label", "split", "hash"} <= header:
                return "manifest"
            return "csv"
        raise UserInputError(f"{root}: not a dataset; pass a folder of class folders, a pre-split folder, "
                             "the OOC_image_dataset folder, an .npz file or a CSV manifest")
    root = _ooc_root(root)
    splits = _split_dirs(root)
    if "train" in splits and ("test" in splits or "val" in splits):
        return "ooc" if _looks_ooc(splits["train"]) else "presplit"
    if _subdirs(root):
        return "folders"
    if any(p.suffix.lower() in IMAGE_EXTENSIONS for p in root.iterdir()):
        raise UserInputError(f"{root}: images lie directly in this folder; put each class in its own sub-folder "
                             "(ROOT/<class>/...) or describe them in a CSV manifest (path,label)")
    raise UserInputError(f"{root}: no class folders, split folders, .npz or CSV found; see docs/data.md for the layouts")


def _csv_header(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            return next(csv.reader(fh, delimiter="\t" if path.suffix.lower() == ".tsv" else ","), [])
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{path}: cannot read this CSV ({exc})") from None


# ---------------------------------------------------------------------------------------------- folder layouts
def _class_folder_images(cls_dir: Path, warnings: list[str]) -> list[Path]:
    images = list_images(cls_dir)
    others = [p for p in cls_dir.rglob("*") if p.is_file() and p.suffix.lower() not in IMAGE_EXTENSIONS
              and p.name.lower() not in JUNK and not p.name.startswith(".")]
    if others:
        warnings.append(f"ignored {len(others)} non-image file(s) in {cls_dir}: {_listing([str(p) for p in others], 3)}")
    return images


def _scan_classes(base: Path, split: str | None, warnings: list[str], empty: list[str]) -> list[Candidate]:
    out = []
    for cls_dir in _subdirs(base):
        images = _class_folder_images(cls_dir, warnings)
        if not images:
            empty.append(str(cls_dir))
        for p in images:
            out.append(Candidate(path=os.path.abspath(p), label=cls_dir.name, split=split))
    loose = [p for p in base.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    if loose:
        warnings.append(f"ignored {len(loose)} image(s) lying directly in {base} (not inside a class folder)")
    return out


def _empty_error(empty: list[str]) -> None:
    if empty:
        raise UserInputError(f"empty class folder(s) with no images ({', '.join(IMAGE_EXTENSIONS)}): "
                             f"{_listing(empty)}; add images or remove the folder")


def _scan_folders(root: Path, warnings: list[str], allow_empty: bool = False) -> list[Candidate]:
    empty: list[str] = []
    out = _scan_classes(root, None, warnings, empty)
    if allow_empty and empty:
        warnings.append(f"ignored {len(empty)} empty class folder(s): {_listing(empty, 3)}")
    else:
        _empty_error(empty)
    return out


def _scan_presplit(root: Path, warnings: list[str]) -> list[Candidate]:
    splits = _split_dirs(root)
    if "train" not in splits:
        raise UserInputError(f"{root}: no train/ folder; a pre-split dataset needs train/<class>/ and test/<class>/")
    others = [d.name for d in _subdirs(root) if d not in splits.values()]
    if others:
        warnings.append(f"ignored folder(s) in {root} that are not train/val/test: {', '.join(others)}")
    empty: list[str] = []
    out = []
    for name in SPLITS:
        if name in splits:
            out.extend(_scan_classes(splits[name], name, warnings, empty))
    _empty_error(empty)
    return out


def _ooc_metadata(rel_parts: tuple[str, ...], stem: str) -> dict[str, str]:
    md: dict[str, str] = {}
    folders = list(rel_parts[:-1])
    for part in folders:
        if DAY_BUCKET.match(part):
            md["day_bucket"] = part
        elif "cell_type" not in md:
            md["cell_type"] = re.sub(r"^cell[_ -]?type[_ -]?", "", part, flags=re.IGNORECASE)
    m = DATE_PREFIX.match(stem)
    if m:
        md["date"] = m.group(1)
    md["image_id"] = stem
    return md


def _scan_ooc(root: Path, warnings: list[str]) -> list[Candidate]:
    out = _scan_presplit(root, warnings)
    for c in out:
        p = Path(c.path)
        split_dir = _split_dirs(root)[c.split]
        rel = p.relative_to(os.path.abspath(split_dir / c.label))
        c.metadata.update(_ooc_metadata(rel.parts, p.stem))
    missing = [c.path for c in out if "date" not in c.metadata]
    if missing:
        warnings.append(f"{len(missing)} file name(s) do not start with a YYMMDD date: {_listing(missing, 3)}")
    return out


# ---------------------------------------------------------------------------------------------- CSV layout
def _scan_csv(path: Path, warnings: list[str]) -> list[Candidate]:
    header, rows = read_csv_rows(path)
    lower = {h.lower(): h for h in header}
    if "path" not in lower or "label" not in lower:
        raise UserInputError(f"{path}: a CSV manifest needs the columns path,label[,split][,group][,...]; "
                             f"found {', '.join(header) or 'no header'}")
    base = path.parent
    reserved = {"path", "label", "split", "group", "hash"}
    out = []
    for i, row in enumerate(rows, start=2):
        ref = row[lower["path"]]
        label = row[lower["label"]]
        where = f"{path} line {i}"
        if not ref or not label:
            raise UserInputError(f"{where}: empty path or label; fill it in or delete the line")
        full = ref if os.path.isabs(ref) else os.path.abspath(base / ref)
        split = _norm_split(row.get(lower.get("split", ""), ""), where) if "split" in lower else None
        group = row.get(lower["group"]) or None if "group" in lower else None
        md = {k: v for k, v in row.items() if k.lower() not in reserved and k}
        out.append(Candidate(path=full, label=label, split=split, group=group, metadata=md))
    if not out:
        raise UserInputError(f"{path}: the CSV manifest lists no images")
    return out


# ---------------------------------------------------------------------------------------------- npz layout
_IMAGE_ROLES = {"x", "images", "image", "imgs", "img", "data", "inputs", "pixels"}
_LABEL_ROLES = {"y", "labels", "label", "targets", "target", "classes_idx", "t"}
_NAME_KEYS = ("classes", "class_names", "label_names", "names", "categories")


def npz_pairs(keys: list[str]) -> dict[str | None, tuple[str, str]]:
    """Detect (images key, labels key) per split (None = unsplit) among an .npz file's array names."""
    table: dict[tuple[str | None, str], str] = {}
    for key in keys:
        tokens = [t for t in re.split(r"[_\-.\s]+", key.lower()) if t]
        split = next((SPLIT_ALIASES[t] for t in tokens if t in SPLIT_ALIASES), None)
        rest = [t for t in tokens if t not in SPLIT_ALIASES]
        role = None
        if rest and all(t in _IMAGE_ROLES for t in rest):
            role = "x"
        elif rest and all(t in _LABEL_ROLES for t in rest):
            role = "y"
        if role and (split, role) not in table:
            table[(split, role)] = key
    pairs = {s: (table[(s, "x")], table[(s, "y")]) for s in ("train", "val", "test") if (s, "x") in table and (s, "y") in table}
    if pairs:
        return pairs
    if (None, "x") in table and (None, "y") in table:
        return {None: (table[(None, "x")], table[(None, "y")])}
    return {}


def _load_npz_dataset(path: Path, warnings: list[str]) -> tuple[list[ImageRecord], list[str]]:
    from .decode import load_npz

    arrays = load_npz(path)
    pairs = npz_pairs(list(arrays))
    if not pairs:
        raise UserInputError(f"{path}: cannot tell which arrays hold images and labels (found {', '.join(arrays)}); "
                             "name them x/y, images/labels, or train_x/train_y/test_x/test_y")
    names_key = next((k for k in _NAME_KEYS if k in arrays), None)
    names = [str(v) for v in arrays[names_key].tolist()] if names_key else None
    records = []
    for split, (xk, yk) in pairs.items():
        x, y = arrays[xk], arrays[yk]
        if y.ndim == 2 and y.shape[1] > 1:  # one-hot
            y = y.argmax(axis=1)
        y = y.reshape(-1)
        if len(x) != len(y):
            raise UserInputError(f"{path}: {xk} has {len(x)} images but {yk} has {len(y)} labels; they must match")
        if x.ndim not in (3, 4):
            raise UserInputError(f"{path}: {xk} has shape {x.shape}; expected N x H x W (x C)")
        for i in range(len(x)):
            lab = y[i].item() if hasattr(y[i], "item") else y[i]
            if names is not None and isinstance(lab, (int, np.integer)) and 0 <= int(lab) < len(names):
                label = names[int(lab)]
            else:
                label = str(lab)
            records.append(ImageRecord(path=npz_ref(os.path.abspath(path), xk, i), label=label,
                                       hash=array_hash(x[i]), split=split,
                                       metadata={"height": str(x.shape[1]), "width": str(x.shape[2]),
                                                 "mode": str(x.dtype)}))
    return records, []


# ---------------------------------------------------------------------------------------------- common
def _validate_and_hash(cands: list[Candidate], skip_bad: bool) -> tuple[list[ImageRecord], list[str]]:
    """Cheap image checks and content hashes for all candidates (threaded); bad files raise or are skipped."""
    errors: dict[int, str] = {}
    info: dict[int, tuple[int, int, str]] = {}

    with progress_bar("checking images", len(cands), min_total=200) as advance:
        def check(i: int) -> None:
            try:
                if not os.path.isfile(cands[i].path):
                    raise UserInputError(f"{cands[i].path}: file not found; fix the path or pass --skip-bad")
                info[i] = check_image_file(cands[i].path)
            except UserInputError as exc:
                errors[i] = str(exc)
            advance(1)

        with ThreadPoolExecutor(workers()) as pool:
            list(pool.map(check, range(len(cands))))
    ok = [i for i in range(len(cands)) if i not in errors]
    with progress_bar("hashing files", len(ok), min_total=200) as advance:
        hashes = hash_files([cands[i].path for i in ok], advance)
    for i, h in zip(ok, hashes):
        if h is None:
            errors[i] = f"{cands[i].path}: cannot read the file; check permissions or pass --skip-bad"
    bad = [errors[i] for i in sorted(errors)]
    if bad and not skip_bad:
        raise UserInputError(f"{len(bad)} unreadable image(s): {_listing(bad, 3)}. "
                             "Replace or delete them, or pass --skip-bad to leave them out")
    skipped = [f"skipped (--skip-bad): {m}" for m in bad]
    records = []
    for i, h in zip(ok, hashes):
        if h is None:
            continue
        c = cands[i]
        w, hgt, mode = info[i]
        md = dict(c.metadata)
        md.setdefault("width", str(w))
        md.setdefault("height", str(hgt))
        md.setdefault("mode", mode)
        records.append(ImageRecord(path=c.path, label=c.label, hash=h, split=c.split, group=c.group, metadata=md))
    return records, skipped


def load_dataset(path: str | os.PathLike, layout: str | None = None, skip_bad: bool = False,
                 datasheet: str | None = None, accept_folder_labels: bool = False, one_class_ok: bool = False) -> Dataset:
    """Read a labelled image set; ``layout`` is detected when None (folders, presplit, ooc, npz, csv, manifest).

    Every image is checked (header, truncation) and hashed. ``skip_bad`` leaves unreadable images out
    (listed in ``warnings``) instead of failing. ``datasheet`` (xlsx or CSV; found automatically for the
    OOC layout) is joined on the file stem; label conflicts with it fail unless ``accept_folder_labels``.
    Hard errors raise UserInputError; split defects are listed in ``Dataset.problems``. ``one_class_ok`` reads a
    partial set (e.g. synthetic images of some classes only): a single class is accepted and empty class folders
    are skipped with a warning.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise UserInputError(f"{root}: no such file or folder; check the dataset path")
    if layout is not None and layout not in LAYOUTS:
        raise UserInputError(f"--layout {layout!r} is unknown; choose one of {', '.join(LAYOUTS)}")
    layout = layout or detect_layout(root)
    if layout in ("folders", "presplit", "ooc"):
        if not root.is_dir():
            raise UserInputError(f"{root}: layout {layout!r} needs a folder")
        root = _ooc_root(root)
    elif not root.is_file():
        raise UserInputError(f"{root}: layout {layout!r} needs a file")
    if layout == "manifest":
        from .split import read_split_manifest

        return read_split_manifest(root)
    warnings: list[str] = []
    if layout == "npz":
        records, skipped = _load_npz_dataset(root, warnings)
    else:
        if layout == "folders":
            cands = _scan_folders(root, warnings, allow_empty=one_class_ok)
        else:
            cands = {"presplit": _scan_presplit, "ooc": _scan_ooc, "csv": _scan_csv}[layout](root, warnings)
        if not cands:
            raise UserInputError(f"{root}: no images ({', '.join(IMAGE_EXTENSIONS)}) found in the {layout} layout")
        sheet = Path(datasheet) if datasheet else (find_datasheet(root) if layout == "ooc" else None)
        if datasheet and not sheet.exists():
            raise UserInputError(f"--datasheet {datasheet}: no such file")
        if sheet is not None:
            join_datasheet(cands, sheet, warnings, accept_folder_labels)
        elif layout == "ooc":
            warnings.append(f"no datasheet (*datasheet*.xlsx or .csv) found in {root} or {root.parent}; "
                            "pass --datasheet to join it")
        records, skipped = _validate_and_hash(cands, skip_bad)
    warnings.extend(skipped)
    if not records:
        raise UserInputError(f"{root}: no readable images left")
    classes = sorted({r.label for r in records})
    if len(classes) < 2 and not one_class_ok:
        raise UserInputError(f"{root}: only one class ({classes[0]}) found; a classifier needs at least two "
                             "classes (one folder or label value per class)")
    splits = {r.split for r in records}
    if None in splits and len(splits) > 1:
        raise UserInputError(f"{root}: some images have a split and some do not; fill in every split value or none")
    problems = split_problems(records, classes) if None not in splits else []
    ds = Dataset(root=root, layout=layout, classes=classes, records=records, problems=problems, warnings=warnings)
    if layout == "ooc" and None not in splits:
        n_shared, n_dates, ex = group_leaks([r for r in records if r.split in ("train", "test")], "date")
        if n_shared:
            ds.warnings.append(f"the official split shares {n_shared} of {n_dates} acquisition dates between train "
                               f"and test (e.g. {', '.join(ex)}): accuracy on it is optimistic; "
                               "use `ooc-bench data split --group-by date` (or `ooc-bench run --group-by date`) for a "
                               "date-grouped split")
    return ds
