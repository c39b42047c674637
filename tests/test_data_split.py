"""Data layer: stratified and group-aware splits, the split manifest, the leakage guard and the training-set view."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ooc_bench.data import (Dataset, ImageCache, ImageRecord, check_train_only, load_dataset, make_split,
                            manifest_hash, read_split_manifest, split_arrays, training_set, write_split_manifest)
from ooc_bench.errors import LeakageError, UserInputError


def _synthetic(n_groups: int = 50, seed: int = 0) -> Dataset:
    """Records without files: groups ('date') of varied sizes whose label mix depends on the group."""
    rng = np.random.default_rng(seed)
    records = []
    for g in range(n_groups):
        p_bad = rng.uniform(0.1, 0.8)
        for i in range(int(rng.integers(4, 20))):
            label = "bad" if rng.random() < p_bad else "good"
            records.append(ImageRecord(path=f"/x/{g}_{i}.png", label=label, hash=f"{g:04d}{i:04d}{'0' * 8}",
                                       metadata={"date": f"2101{g:02d}"}))
    return Dataset(root=Path("/x"), layout="folders", classes=["bad", "good"], records=records)


def _fractions(ds: Dataset) -> dict[str, float]:
    c = Counter(r.split for r in ds.records)
    return {s: c[s] / len(ds.records) for s in ("train", "val", "test")}


def test_grouped_split_keeps_groups_whole_and_stratifies():
    ds = _synthetic()
    out = make_split(ds, group_by="date", val=0.15, test=0.2, seed=0, keep_official=False)
    where = defaultdict(set)
    for r in out.records:
        where[r.metadata["date"]].add(r.split)
        assert r.group == r.metadata["date"]
    assert all(len(s) == 1 for s in where.values())  # no date spans two splits
    f = _fractions(out)
    assert abs(f["train"] - 0.65) < 0.06 and abs(f["val"] - 0.15) < 0.05 and abs(f["test"] - 0.2) < 0.05
    overall = Counter(r.label for r in ds.records)["bad"] / len(ds.records)
    for s in ("train", "val", "test"):
        part = out.split(s)
        assert abs(Counter(r.label for r in part)["bad"] / len(part) - overall) < 0.08  # stratification kept


def test_split_is_deterministic_per_seed():
    ds = _synthetic()
    a = [r.split for r in make_split(ds, group_by="date", seed=1, keep_official=False).records]
    b = [r.split for r in make_split(ds, group_by="date", seed=1, keep_official=False).records]
    c = [r.split for r in make_split(ds, group_by="date", seed=2, keep_official=False).records]
    assert a == b and a != c


def test_ungrouped_split_keeps_identical_images_together():
    ds = _synthetic(n_groups=30)
    dup = [replace(r, path=r.path + ".copy.png") for r in ds.records[::3]]  # same hash, another file
    ds = Dataset(root=ds.root, layout="folders", classes=ds.classes, records=ds.records + dup)
    out = make_split(ds, seed=0, keep_official=False)
    by_hash = defaultdict(set)
    for r in out.records:
        by_hash[r.hash].add(r.split)
    assert all(len(s) == 1 for s in by_hash.values())
    assert abs(_fractions(out)["test"] - 0.2) < 0.03


def test_official_split_is_kept_and_group_leaks_refused():
    ds = _synthetic(n_groups=20)
    rng = np.random.default_rng(0)
    recs = [replace(r, split=str(rng.choice(["train", "test"], p=[0.8, 0.2]))) for r in ds.records]
    official = Dataset(root=ds.root, layout="presplit", classes=ds.classes, records=recs)
    kept = make_split(official, val=0.1, seed=0)
    assert [r.split for r in kept.records if r.split == "test"] == [r.split for r in recs if r.split == "test"]
    assert all(a.split == b.split or (a.split == "train" and b.split == "val") for a, b in zip(recs, kept.records))
    assert 0.05 < _fractions(kept)["val"] < 0.15  # carved out of train because the official split had none
    with pytest.raises(UserInputError, match="--resplit"):
        make_split(official, group_by="date")
    regrouped = make_split(official, group_by="date", keep_official=False)
    assert all(len({r.split for r in regrouped.records if r.group == g}) == 1 for g in {r.group for r in recs if r.group})


def test_split_refuses_too_small_class_and_bad_fractions():
    ds = _synthetic(n_groups=10)
    tiny = Dataset(root=ds.root, layout="folders", classes=["bad", "good", "rare"],
                   records=ds.records + [ImageRecord(path="/x/rare.png", label="rare", hash="f" * 16)])
    with pytest.raises(UserInputError, match="rare"):
        make_split(tiny, keep_official=False)
    with pytest.raises(UserInputError, match="--val"):
        make_split(ds, val=0.5, test=0.6)
    with pytest.raises(UserInputError, match="nope"):
        make_split(ds, group_by="nope")


def test_leakage_guard_names_the_files():
    ds = make_split(_synthetic(n_groups=12), seed=0, keep_official=False)
    train, test = ds.split("train"), ds.split("test")
    check_train_only(train, ds, "fit a generator")  # fine
    with pytest.raises(LeakageError, match=Path(test[0].path).name):
        check_train_only(train + [test[0]], ds, "fit a generator")
    sneaky = replace(test[1], path="/elsewhere/renamed.png", split="train")  # same content, other name
    with pytest.raises(LeakageError, match="renamed.png.*same content as"):
        check_train_only([sneaky], ds, "train a classifier")
    with pytest.raises(LeakageError):
        check_train_only([test[2].hash], ds, "train a classifier")


def test_manifest_round_trip_and_training_set(demo_root, tmp_path):
    ds = load_dataset(demo_root)
    split = make_split(ds, group_by="date", seed=0, keep_official=False)
    manifest = tmp_path / "runs" / "split.csv"
    write_split_manifest(split, manifest)
    back = load_dataset(manifest)  # detected as a split manifest
    assert back.layout == "manifest" and back.classes == split.classes
    assert [(r.path, r.label, r.split, r.group, r.hash) for r in back.records] == \
           [(r.path, r.label, r.split, r.group, r.hash) for r in split.records]
    assert back.records[0].metadata["date"] == split.records[0].metadata["date"]
    assert manifest_hash(manifest) == manifest_hash(split) == manifest_hash(back)
    assert manifest_hash(make_split(ds, group_by="date", seed=5, keep_official=False)) != manifest_hash(split)
    assert not Path(manifest.read_text().splitlines()[1].split(",")[0]).is_absolute()

    cache = ImageCache(tmp_path / "cache")
    ts = training_set(manifest, cache=cache)
    train = back.split("train")
    assert len(ts) == len(train) and ts.classes == ["bad", "good"] and ts.hashes == [r.hash for r in train]
    x = ts.loader(24)
    assert x.shape == (len(train), 24, 24, 3) and x.dtype == np.uint8
    np.testing.assert_array_equal(ts.labels, [back.classes.index(r.label) for r in train])
    assert ts.metadata[0]["date"] == train[0].metadata["date"]
    xt, yt = split_arrays(back, "test", 24, cache)
    assert xt.shape[0] == len(back.split("test")) == len(yt) and yt.dtype == np.int64


def test_manifest_detects_changed_images(demo_root, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(demo_root, root)
    split = make_split(load_dataset(root), seed=0)
    write_split_manifest(split, tmp_path / "s.csv")
    victim = Path(split.records[5].path)
    victim.write_bytes(Path(split.records[6].path).read_bytes())
    with pytest.raises(UserInputError, match=victim.name):
        read_split_manifest(tmp_path / "s.csv")


def test_training_set_refuses_leaking_duplicates(demo_root):
    split = make_split(load_dataset(demo_root), seed=0)
    test_rec = split.split("test")[0]
    leaked = replace(split.split("train")[0], hash=test_rec.hash)
    bad = Dataset(root=split.root, layout="manifest", classes=split.classes,
                  records=[leaked] + split.records[1:])
    with pytest.raises(LeakageError, match=Path(leaked.path).name):
        training_set(bad)
