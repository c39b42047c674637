"""Split names, split checks and message helpers shared by the data layer's readers and splitter (a leaf module)."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

from ..errors import UserInputError
from .records import SPLITS, ImageRecord

SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                 "dev": "val", "test": "test", "testing": "test"}
MAX_LISTED = 5


def listing(items: list[str], n: int = MAX_LISTED) -> str:
    """Up to ``n`` items joined by "; ", then how many more."""
    shown = "; ".join(items[:n])
    return shown + (f"; ... and {len(items) - n} more" if len(items) > n else "")


def norm_split(value: str, where: str) -> str | None:
    """A split name or alias (train/val/test) -> its canonical name; None for an empty cell."""
    v = (value or "").strip().lower()
    if not v:
        return None
    if v not in SPLIT_ALIASES:
        raise UserInputError(f"{where}: split {value!r} is not train, val or test; fix the split column")
    return SPLIT_ALIASES[v]


def read_csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV/TSV file (UTF-8, optional BOM), column names stripped."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            header = [h.strip() for h in (reader.fieldnames or [])]
            rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserInputError(f"{path}: cannot read this CSV ({exc})") from None
    return header, rows


def split_problems(records: list[ImageRecord], classes: list[str]) -> list[str]:
    """Defects of an existing split: a class missing from train or test, the same image in two splits."""
    problems = []
    splits = {r.split for r in records}
    if not splits <= set(SPLITS):
        return problems
    counts = Counter((r.split, r.label) for r in records)
    for s in ("train", "test") + (("val",) if "val" in splits else ()):
        missing = [c for c in classes if counts[(s, c)] == 0]
        if missing:
            problems.append(f"class(es) {', '.join(missing)} have no images in the {s} split; "
                            "add images there or split anew (`ooc-bench data split --resplit`, `ooc-bench run --resplit`)")
    by_hash: dict[str, list[ImageRecord]] = defaultdict(list)
    for r in records:
        by_hash[r.hash].append(r)
    crossing = [rs for rs in by_hash.values() if len({r.split for r in rs}) > 1]
    if crossing:
        examples = [" = ".join(f"{r.path} ({r.split})" for r in rs[:2]) for rs in crossing]
        problems.append(f"the same image (identical content hash) is in two splits, {len(crossing)} case(s): "
                        f"{listing(examples, 3)}; delete the copies or split anew (`ooc-bench data split --resplit`, `ooc-bench run --resplit`)")
    return problems


def group_leaks(records: list[ImageRecord], key: str) -> tuple[int, int, list[str]]:
    """(number of groups in more than one split, number of groups, examples) for metadata ``key`` (or 'group')."""
    where: dict[str, set[str]] = defaultdict(set)
    for r in records:
        g = r.group if key == "group" else r.metadata.get(key)
        if g:
            where[g].add(r.split or "")
    shared = sorted(g for g, s in where.items() if len(s) > 1)
    return len(shared), len(where), shared[:MAX_LISTED]
