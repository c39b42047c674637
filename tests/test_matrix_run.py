"""Benchmark matrix end to end on a tiny real dataset: results, caching, partial recompute, report from CSVs, kill/resume."""

from __future__ import annotations

import csv
import io
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from ooc_bench.cli import app
from ooc_bench.matrix import load_spec
from ooc_bench.matrix import stages as stages_mod
from ooc_bench.matrix.report import print_tables
from ooc_bench.matrix.run import run_benchmark

from .cli_helpers import run_cli
from .matrix_fixtures import make_digits_dataset, write_spec


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("matrix")
    data = make_digits_dataset(root / "digits")
    spec = write_spec(root / "tiny.toml", data)
    return root, data, spec


def _count_runs(monkeypatch) -> dict[str, int]:
    calls = {k: 0 for k in stages_mod.RUNNERS}
    for kind, fn in list(stages_mod.RUNNERS.items()):
        def wrapped(job, paths, _fn=fn, _kind=kind):
            calls[_kind] += 1
            return _fn(job, paths)
        monkeypatch.setitem(stages_mod.RUNNERS, kind, wrapped)
    return calls


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


@pytest.fixture(scope="module")
def reference_run(tiny, tmp_path_factory):
    root, data, spec = tiny
    out = tmp_path_factory.mktemp("ref") / "run"
    run_benchmark(load_spec(spec), out=out, console=_quiet())
    return out


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_results_files_and_contents(reference_run):
    out = reference_run
    for name in ("quality.csv", "downstream.csv", "summary.csv", "provenance.json", "split.csv", "tables/downstream_accuracy.tex",
                 "tables/quality.md", "plots/accuracy_vs_ratio_cnn.png", "plots/samples.png"):
        assert (out / name).is_file(), name
    down = _rows(out / "downstream.csv")
    cells = {(r["model"], r["generator"], r["protocol"], r["ratio"], r["seed"]) for r in down}
    assert len(cells) == 2 * (1 + 2)  # seeds x (baseline + two ratios)
    acc = [float(r["value"]) for r in down if r["metric"] == "accuracy"]
    assert all(0.0 <= a <= 1.0 for a in acc)
    n_syn = {(r["ratio"], r["n_train_synthetic"]) for r in down}
    assert n_syn == {("0.0", "0"), ("0.5", "40"), ("1.0", "80")}  # 40 real per class: +20/+40 per class
    summ = _rows(out / "summary.csv")
    aug = [r for r in summ if r["generator"] == "aug" and r["metric"] == "accuracy"]
    assert len(aug) == 2 and all(r["delta"] != "" and r["n_pairs"] == "2" for r in aug)
    qual = _rows(out / "quality.csv")
    gens = {r["generator"] for r in qual}
    assert gens == {"aug", "real-val"}  # real-val: the held-out real floor at the same n
    assert {r["class"] for r in qual} == {"all", "three", "eight"}
    assert any(r["metric"] == "nearcopy_share" and r["generator"] == "aug" for r in qual)


def test_second_run_computes_nothing_and_one_parameter_recomputes_only_its_cells(tiny, reference_run, monkeypatch):
    root, data, spec = tiny
    work = root / "rerun"
    shutil.copytree(reference_run, work)
    calls = _count_runs(monkeypatch)
    run_benchmark(load_spec(spec), out=work, console=_quiet())
    assert calls == {"fit": 0, "domain": 0, "sample": 0, "score": 0, "cell": 0}
    spec2 = write_spec(root / "tiny3.toml", data, epochs=3)
    run_benchmark(load_spec(spec2, name="tiny"), out=work, console=_quiet())
    assert calls == {"fit": 0, "domain": 0, "sample": 0, "score": 0, "cell": 6}
    assert len({(r["ratio"], r["seed"]) for r in _rows(work / "downstream.csv")}) == 6  # only the current plan's cells


def test_nested_subsets_across_ratios(reference_run, tmp_path):
    """A smaller ratio's synthetic images are exactly the first images of the larger sample set, per class:
    sampling fewer images from the fitted generator reproduces the prefix, and cells read that prefix."""
    from PIL import Image

    from ooc_bench.generators import SampleSet, load_generator
    from ooc_bench.matrix.stages import load_samples
    from ooc_bench.matrix.store import RunPaths

    paths = RunPaths(reference_run)
    key = next((reference_run / "artifacts" / "sample").iterdir()).name
    fit_key = next((reference_run / "artifacts" / "fit").iterdir()).name
    full = SampleSet.load(paths.artifact_dir("sample", key))
    small = load_generator(paths.artifact_dir("fit", fit_key)).sample(3, tmp_path / "small", seed=0, size=16)
    for c in ("eight", "three"):
        assert [r["hash"] for r in small.rows if r["label"] == c] == [r["hash"] for r in full.rows if r["label"] == c][:3]
    images, labels, sources = load_samples(paths, key, ["eight", "three"], {"eight": 3, "three": 3}, 16)
    expected = [np.asarray(Image.open(p).convert("RGB")) for c in ("eight", "three") for p in small.paths(c)]
    assert (images == np.stack(expected)).all() and labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert sources == [r["source_hash"] for c in ("eight", "three") for r in small.rows if r["label"] == c]


def test_report_reproduces_tables_from_csvs_alone(reference_run, tmp_path):
    only_csv = tmp_path / "csv-only"
    only_csv.mkdir()
    for name in ("quality.csv", "downstream.csv", "summary.csv"):
        shutil.copy(reference_run / name, only_csv / name)
    a, b = _quiet(), _quiet()
    print_tables(reference_run, a)
    print_tables(only_csv, b)
    text = a.file.getvalue()
    assert text == b.file.getvalue() and "real-val (floor)" in text and "cnn:" in text
    res = CliRunner().invoke(app, ["report", str(only_csv), "--latex", "--markdown", "--plots"])
    assert res.exit_code == 0, res.output
    tex = (only_csv / "tables" / "downstream_accuracy.tex").read_text()
    assert "\\toprule" in tex and "aug" in tex
    assert (only_csv / "plots" / "accuracy_vs_ratio_cnn.png").is_file()

    def unlabelled(p: Path) -> list[str]:  # the label names the run (provenance.json's name, else the folder)
        return [line for line in p.read_text().splitlines() if not line.startswith("\\label")]

    assert unlabelled(only_csv / "tables" / "downstream_accuracy.tex") == unlabelled(reference_run / "tables" / "downstream_accuracy.tex")


def test_report_on_a_folder_without_results_is_a_clear_error(tmp_path, capsys):
    code, _, err = run_cli(capsys, "report", tmp_path)
    assert code == 2 and "quality.csv not found" in err and "ooc-bench run" in err


def test_cells_store_predictions_and_val_rows_and_report_recomputes_the_summary(reference_run, tmp_path):
    down = _rows(reference_run / "downstream.csv")
    assert {r["split"] for r in down} == {"val", "test"}
    tests = [r for r in down if r["split"] == "test" and r["metric"] == "accuracy"]
    assert len(tests) == 6 and all(r["predictions"] for r in tests)
    for r in tests:  # per-image predictions: 20 test images per class, scores summing to 1, the cell's accuracy
        pred = _rows(reference_run / r["predictions"])
        assert len(pred) == 40 and {"image_id", "label", "predicted", "score_eight", "score_three"} <= set(pred[0])
        assert sum(p["label"] == p["predicted"] for p in pred) / 40 == pytest.approx(float(r["value"]))
        assert all(abs(float(p["score_eight"]) + float(p["score_three"]) - 1) < 1e-4 for p in pred)
    summ = [r for r in _rows(reference_run / "summary.csv") if r["metric"] == "accuracy"]
    assert all(r["boot_ci95_low"] != "" and float(r["boot_ci95_low"]) <= float(r["mean"]) <= float(r["boot_ci95_high"])
               for r in summ)
    aug = [r for r in summ if r["generator"] == "aug"]
    assert all(r["p_adjust_method"] == "holm" and r["test"] == "sign-flip exact" and r["val_mean"] != ""
               and r["boot_delta_ci95_low"] != "" and r["family_size"] == "2" for r in aug)
    # `report` recomputes summary.csv from downstream.csv: another adjustment changes only the adjustment columns
    work = tmp_path / "edited"
    shutil.copytree(reference_run, work)
    (work / "summary.csv").unlink()
    res = CliRunner().invoke(app, ["report", str(work), "--p-adjust", "bh"])
    assert res.exit_code == 0, res.output
    adj = ("p_adjusted", "p_adjust_method", "significant")
    strip = lambda rows: [{k: v for k, v in r.items() if k not in adj} for r in rows]  # noqa: E731
    assert strip(_rows(work / "summary.csv")) == strip(_rows(reference_run / "summary.csv"))
    assert {r["p_adjust_method"] for r in _rows(work / "summary.csv") if r["generator"] == "aug"} == {"bh"}
    # … and edited downstream rows (one seed of one cell removed) are what the new summary rests on
    kept = [r for r in down if not (r["generator"] == "aug" and r["ratio"] == "1.0" and r["seed"] == "1")]
    with open(work / "downstream.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(down[0]))
        w.writeheader()
        w.writerows(kept)
    res = CliRunner().invoke(app, ["report", str(work)])
    assert res.exit_code == 0, res.output
    row = next(r for r in _rows(work / "summary.csv") if r["generator"] == "aug" and r["ratio"] == "1.0"
               and r["metric"] == "accuracy")
    assert row["n"] == "1" and row["n_pairs"] == "1" and row["p_adjust_method"] == "bh"  # kept from summary.csv


def _cli(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "ooc_bench", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env, **kw)


def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_records(tiny, reference_run, tmp_path):
    root, data, spec = tiny
    out = tmp_path / "killed"
    rng = random.Random(1234)
    for _ in range(3):
        p = _cli(["run", "--spec", str(spec), "--out", str(out), "--no-plots"])
        time.sleep(rng.uniform(4.0, 12.0))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.wait()
    p = _cli(["run", "--spec", str(spec), "--out", str(out), "--no-plots"])
    output = p.communicate(timeout=600)[0].decode()
    assert p.returncode == 0, output
    assert "Traceback" not in output
    assert _rows(out / "downstream.csv") == _rows(reference_run / "downstream.csv")
    assert _rows(out / "quality.csv") == _rows(reference_run / "quality.csv")
    # no temporary or half-written files are left as records
    assert not [f for f in (out / "records").rglob("*") if f.is_file() and not f.name.endswith((".json", ".claim"))]
