"""benchmarks/generator_quality.py: a trivial-budget run end to end, its collapse measure, and clear errors on bad options."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location("generator_quality", ROOT / "benchmarks" / "generator_quality.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_trivial_gan_ladder_writes_csv_plot_and_grids(harness, tmp_path):
    out = tmp_path / "q"
    common = ["--generators", "gan", "--dataset", "digits16", "--per-class", "6", "--max-train-per-class", "8",
              "--judge-epochs", "1", "--param", "gan.r1_gamma=0.05", "--out", str(out)]
    assert harness.main([*common, "--budgets", "gan=0.032"]) == 0
    # --extend keeps the measured row and resumes that fit for the larger budget only
    assert harness.main([*common, "--budgets", "gan=0.032,0.064", "--extend"]) == 0
    rows = list(csv.DictReader(open(out / "quality.csv")))
    assert [r["budget"] for r in rows] == ["0.032", "0.064"]
    for r in rows:
        assert r["generator"] == "gan" and r["budget_key"] == "kimg" and r["n_train"] == "80"
        assert 0 <= float(r["class_fidelity"]) <= 1 and 0 <= float(r["precision"]) <= 1
        assert float(r["fd"]) >= 0 and float(r["spread_ratio_min"]) > 0
        assert '"r1_gamma": 0.05' in r["config"] and '"resolution": 16' in r["config"]
    # the second budget resumed the first fit: cumulative CPU time grows
    assert float(rows[1]["fit_cpu_s"]) >= float(rows[0]["fit_cpu_s"]) > 0
    for name in ("quality.png", "meta.json", "samples/real.png", "samples/gan_0.032.png", "samples/gan_0.064.png"):
        assert (out / name).stat().st_size > 0


def test_demo_data_set_is_the_builtin_demo_grouped_by_date(harness, tmp_path, monkeypatch):
    """``demo32`` is the data `make demo` runs on (made on first use), all splits, one group per culture date."""
    monkeypatch.setenv("OOC_BENCH_CACHE", str(tmp_path / "cache"))
    ims, labels, groups, classes = harness.load_dataset("demo32", None)
    assert ims.shape == (480, 32, 32, 3) and ims.dtype == np.uint8 and sorted(classes) == ["bad", "good"]
    assert set(labels.tolist()) == {0, 1} and (tmp_path / "cache" / "demo" / "ooc_demo_seed0" / ".complete").is_file()
    test = harness._stratified_split(labels, groups, 1 / 3, 0)
    for c in (0, 1):  # within a class no culture date is on both sides (the split is drawn per class)
        assert not set(groups[test & (labels == c)]) & set(groups[~test & (labels == c)])
    assert 0.2 < test.mean() < 0.45


def test_pixel_spread_flags_a_collapsed_class(harness):
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    labels = np.repeat([0, 1], 10)
    fake = real.copy()
    fake[labels == 1] = fake[labels == 1][0]  # class 1: one image repeated
    ratio = harness.pixel_spread(fake, labels, 2) / harness.pixel_spread(real, labels, 2)
    assert ratio[0] == pytest.approx(1.0) and ratio[1] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "mnist"], "--dataset 'mnist'"),
    (["--generators", "nope"], "unknown generator 'nope'"),
    (["--budgets", "gan=1,x"], "--budgets 'gan=1,x'"),
    (["--param", "ddpm.steps=3"], "generator 'ddpm' is not in --generators"),
    (["--param", "gan.not_a_setting=3"], "not_a_setting"),
])
def test_bad_options_fail_with_one_line_before_any_work(harness, tmp_path, capsys, argv, message):
    out = tmp_path / "never"
    assert harness.main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()
