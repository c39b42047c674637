"""Data layer: the built-in demo dataset is deterministic, in the OOC layout, and learnable but not trivially."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict

import numpy as np
import pytest

from ooc_bench.data import ImageCache, load_dataset, make_demo, split_arrays
from ooc_bench.data.demo import DATASHEET_COLUMNS
from ooc_bench.errors import UserInputError


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes(tmp_path):
    a = _files(make_demo(tmp_path / "a", seed=7, n_images=16, size=24))
    b = _files(make_demo(tmp_path / "b", seed=7, n_images=16, size=24))
    c = _files(make_demo(tmp_path / "c", seed=8, n_images=16, size=24))
    assert a == b
    assert a != c
    again = _files(make_demo(tmp_path / "a", seed=7, n_images=16, size=24))  # re-running over an old demo
    assert again == a


def test_demo_layout_and_datasheet(demo_root):
    ds = load_dataset(demo_root)
    assert ds.layout == "ooc" and ds.classes == ["bad", "good"] and not ds.problems
    n = len(ds.records)
    split = Counter(r.split for r in ds.records)
    assert abs(split["train"] / n - 0.7) < 0.05 and abs(split["test"] / n - 0.2) < 0.05 and split["val"] > 0
    assert {r.metadata["mode"] for r in ds.records} == {"L", "RGB"}  # greyscale and colour cameras
    assert {(r.metadata["width"], r.metadata["height"]) for r in ds.records} == {("64", "48")}  # 4:3
    assert len({r.metadata["cell_type"] for r in ds.records}) >= 2 and len({r.metadata["day_bucket"] for r in ds.records}) >= 3
    where = defaultdict(set)
    for r in ds.records:
        where[r.metadata["date"]].add(r.split)
    assert sum(len(s) > 1 for s in where.values()) > len(where) / 2  # dates shared across splits, like the real set
    with open(demo_root / "OOC_datasheet.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == DATASHEET_COLUMNS and len(rows) == n + 1
    assert all(r.metadata["decision"] == ("1" if r.label == "good" else "2") for r in ds.records)


def test_demo_is_learnable_but_not_trivial(demo_root, tmp_path):
    from sklearn.ensemble import RandomForestClassifier

    ds = load_dataset(demo_root)
    cache = ImageCache(tmp_path / "c")
    (xtr, ytr), (xte, yte) = split_arrays(ds, "train", 48, cache), split_arrays(ds, "test", 48, cache)

    def feats(x):
        g = x.mean(-1)
        return np.stack([g.mean((1, 2)), g.std((1, 2)), np.abs(np.diff(g, axis=2)).mean((1, 2)),
                         (g < g.mean((1, 2), keepdims=True) - 20).mean((1, 2))], 1)

    acc = RandomForestClassifier(50, random_state=0).fit(feats(xtr), ytr).score(feats(xte), yte)
    print(f"demo accuracy {acc:.3f}")
    assert 0.65 < acc < 1.0, acc


def test_demo_refuses_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(UserInputError, match="mine.txt"):
        make_demo(tmp_path, n_images=16, size=24)
    with pytest.raises(UserInputError, match="--n-images"):
        make_demo(tmp_path / "x", n_images=3)
