"""What `ooc-bench data inspect` reports: layout, classes, counts per split and class, sizes, modes, groups, problems."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .rules import group_leaks
from .records import Dataset
from .split import split_summary

GROUP_KEYS = ("date", "cell_type", "day_bucket", "group")


def summarize(ds: Dataset) -> dict[str, Any]:
    """JSON-able summary of a dataset."""
    sizes = Counter(f"{r.metadata.get('width', '?')}x{r.metadata.get('height', '?')}" for r in ds.records)
    modes = Counter(r.metadata.get("mode", "?") for r in ds.records)
    groups: dict[str, Any] = {}
    has_splits = ds.has_splits
    for key in GROUP_KEYS:
        values = [r.group if key == "group" else r.metadata.get(key) for r in ds.records]
        if not any(values):
            continue
        info: dict[str, Any] = {"distinct": len({v for v in values if v})}
        if has_splits:
            shared, total, examples = group_leaks(ds.records, key)
            info["in_several_splits"] = shared
            info["examples"] = examples
        groups[key] = info
    return {
        "root": str(ds.root),
        "layout": ds.layout,
        "n_images": len(ds.records),
        "classes": ds.classes,
        "counts": split_summary(ds),
        "image_sizes": dict(sizes.most_common()),
        "modes": dict(modes.most_common()),
        "groups": groups,
        "unique_hashes": len({r.hash for r in ds.records}),
        "problems": list(ds.problems),
        "warnings": list(ds.warnings),
    }
