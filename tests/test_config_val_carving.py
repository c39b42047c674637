"""A pre-split train/test dataset without val gets a stratified, seeded validation share from train (train and run)."""

from __future__ import annotations

import shutil
from collections import Counter

from rich.console import Console

from ooc_bench.data import open_split, read_split_manifest
from tests.cli_helpers import run_cli
from tests.matrix_fixtures import make_digits_dataset


def _train_test_only(tmp_path):
    root = make_digits_dataset(tmp_path / "xray", {"train": 30, "val": 1, "test": 10})
    shutil.rmtree(root / "val")  # the chest X-ray layout: train/{A,B}, test/{A,B}
    return root


def test_open_split_carves_a_stratified_seeded_val_from_train(tmp_path):
    root = _train_test_only(tmp_path)
    ds, made = open_split(root, seed=3)
    counts = Counter((r.split, r.label) for r in ds.records)
    assert made is False  # the dataset's own split is kept ...
    assert counts[("test", "three")] == 10 and counts[("test", "eight")] == 10  # ... test untouched
    n_val = counts[("val", "three")] + counts[("val", "eight")]
    assert n_val == round(0.15 * 80) or abs(n_val - 0.15 * 80) <= 2  # 15 % of all images, from train
    assert abs(counts[("val", "three")] - counts[("val", "eight")]) <= 1  # stratified by class
    assert counts[("train", "three")] + counts[("val", "three")] == 30
    assert any("carved out of train" in w for w in ds.warnings)
    again, _ = open_split(root, seed=3)
    other, _ = open_split(root, seed=4)
    val = lambda d: sorted(r.path for r in d.records if r.split == "val")  # noqa: E731
    assert val(again) == val(ds) and val(other) != val(ds)  # seeded
    bigger, _ = open_split(root, seed=3, val=0.3)
    assert len(val(bigger)) > len(val(ds))


def test_run_writes_the_carved_val_to_split_csv(tmp_path):
    from ooc_bench.matrix.run import prepare_split
    from ooc_bench.matrix.spec import load_spec

    root = _train_test_only(tmp_path)
    spec = load_spec(None, data=str(root), models="cnn", ratios="0", generators="")
    prepare_split(spec, tmp_path / "run", Console(quiet=True))
    ds = read_split_manifest(tmp_path / "run" / "split.csv")
    counts = Counter(r.split for r in ds.records)
    assert counts["val"] > 0 and counts["test"] == 20


def test_train_cli_trains_on_train_test_only_data(tmp_path, capsys):
    root = _train_test_only(tmp_path)
    code, out, err = run_cli(capsys, "train", "--data", str(root), "--model", "cnn", "--no-pretrained", "--epochs", "1",
                             "--batch-size", "16", "--working-size", "16", "--mode", "finetune",
                             "--out", str(tmp_path / "model"))
    assert code == 0, out + err
    assert "val (best epoch)" in out
