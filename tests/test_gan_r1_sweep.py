"""benchmarks/gan_r1_sweep.py: a trivial γ × seed grid end to end and resumed, the seed-paired summary, bad options."""

from __future__ import annotations

import csv
import importlib.util
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sweep():
    spec = importlib.util.spec_from_file_location("gan_r1_sweep", ROOT / "benchmarks" / "gan_r1_sweep.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _row(gamma, seed, budget, cf, dataset="digits16"):
    return {"dataset": dataset, "gamma": gamma, "seed": seed, "budget": budget, "class_fidelity": cf,
            "class_fidelity_min": cf / 2, "fd": 1.0, "recall": 0.5, "spread_ratio_min": 0.6, "fit_cpu_s": 60.0}


def test_summary_pairs_seeds_and_counts_each_run_once(sweep):
    rows = [_row(0.05, 0, 10, 0.5), _row(0.05, 1, 10, 0.6), _row(0.05, 2, 10, 0.7),
            _row(0.2, 0, 10, 0.8), _row(0.2, 1, 10, 0.4), _row(0.2, 1, 10, 0.4),  # the same run included twice
            _row(0.8, 5, 10, 0.9)]  # no reference run with seed 5
    by_gamma = {s["gamma"]: s for s in sweep.summarise(rows)}
    ref, mid, high = by_gamma[0.05], by_gamma[0.2], by_gamma[0.8]
    assert ref["reference_gamma"] == 0.05 and ref["n_paired"] == 0 and math.isnan(ref["delta_vs_reference_mean"])
    assert ref["n_seeds"] == 3 and ref["class_fidelity_mean"] == pytest.approx(0.6)
    assert (ref["class_fidelity_lo"], ref["class_fidelity_hi"]) == (0.5, 0.7)
    assert mid["n_seeds"] == 2 and mid["seeds"] == "0 1"
    assert mid["n_paired"] == 2 and mid["wins_vs_reference"] == 1
    assert mid["delta_vs_reference_mean"] == pytest.approx(((0.8 - 0.5) + (0.4 - 0.6)) / 2)
    assert high["n_paired"] == 0 and "–" in sweep.to_markdown(sweep.summarise(rows)).splitlines()[-1]
    # an explicit reference changes what is compared with what
    against_mid = {s["gamma"]: s for s in sweep.summarise(rows, reference=0.2)}
    assert against_mid[0.05]["delta_vs_reference_mean"] == pytest.approx(-mid["delta_vs_reference_mean"])


def test_runs_with_other_settings_are_summarised_apart(sweep):
    assert sweep.variant({"r1_gamma": 0.2, "seed": 1, "kimg": 5.0, "capacity": "small", "noise_mode": "random"}) \
        == "capacity=small"  # γ, seed, budget and settings equal to the default do not make a variant
    rows = [_row(0.05, 0, 10, 0.5), _row(0.2, 0, 10, 0.9) | {"variant": "capacity=small"}]
    summary = sweep.summarise(rows)
    assert [(s["variant"], s["reference_gamma"], s["n_paired"]) for s in summary] == \
        [("", 0.05, 0), ("capacity=small", 0.2, 0)]  # the small run is not paired with the tiny one
    assert "**digits16** (capacity=small)" in sweep.to_markdown(summary)


def test_default_gamma_of_a_row_is_resolved_from_its_config(sweep):
    assert sweep.effective_gamma({"r1_gamma": 0.3, "resolution": 16}) == 0.3
    assert sweep.effective_gamma({"resolution": 16}, {"r1_gamma": 0.7}) == 0.7  # the resolved config wins
    # rows from before resolved configs were recorded: the floor of the version that wrote them
    assert sweep.effective_gamma({"resolution": 16, "device": "cpu"}, None, default_floor=0.05) == 0.05
    # CPU, 16 px: tiny, batch 8, heuristic 0.0002*256/8 = 0.0064 -> the preset's floor, as the generator resolves it
    from ooc_bench.generators import create_generator
    assert sweep.effective_gamma({"resolution": 16, "device": "cpu"}) == \
        create_generator("gan", resolution=16, device="cpu").config["r1_gamma"] == 3.2
    # 256 px, batch 16: the heuristic itself (0.8192)
    assert sweep.effective_gamma({"resolution": 256, "batch_size": 16, "capacity": "paper", "device": "cpu"}) == \
        pytest.approx(0.8192)


def test_trivial_sweep_runs_each_pair_once_and_resumes(sweep, tmp_path, capsys):
    out = tmp_path / "sw"
    argv = ["--dataset", "digits16", "--gammas", "0.05,0.2", "--seeds", "3", "--budgets", "0.032",
            "--per-class", "6", "--judge-epochs", "1", "--max-train-per-class", "8", "--out", str(out)]
    assert sweep.main(argv) == 0
    runs = {g: out / f"g{g}_s3" / "quality.csv" for g in ("0.05", "0.2")}
    first = {g: p.read_text() for g, p in runs.items()}
    rows = {g: list(csv.DictReader(p.read_text().splitlines())) for g, p in runs.items()}
    assert all(len(r) == 1 for r in rows.values())
    assert '"r1_gamma": 0.2' in rows["0.2"][0]["config"] and '"seed": 3' in rows["0.2"][0]["config"]
    summary = list(csv.DictReader((out / "summary.csv").read_text().splitlines()))
    assert [(s["gamma"], s["n_seeds"], s["seeds"]) for s in summary] == [("0.05", "1", "3"), ("0.2", "1", "3")]
    delta = float(rows["0.2"][0]["class_fidelity"]) - float(rows["0.05"][0]["class_fidelity"])
    assert float(summary[1]["delta_vs_reference_mean"]) == pytest.approx(delta, abs=1e-9)
    assert "| 0.2 | 0.032 | 1 |" in (out / "summary.md").read_text()
    # started again: every budget is measured already, so no run is started (its log does not grow)
    logs = {g: (out / f"g{g}_s3.log").read_text() for g in runs}
    assert sweep.main(argv) == 0
    assert {g: p.read_text() for g, p in runs.items()} == first
    assert {g: (out / f"g{g}_s3.log").read_text() for g in runs} == logs


@pytest.mark.parametrize("argv, message", [
    (["--gammas", "0.1,x"], "--gammas '0.1,x'"),
    (["--seeds", "1.5"], "--seeds '1.5': give whole numbers"),
    (["--gammas", "-1"], "R1 γ must be >= 0"),
    (["--param", "gan.seed=4"], "gan.seed is set by --seeds"),
    (["--param", "ddpm.steps=3"], "use gan.KEY=VALUE"),
    (["--include", "/nonexistent/sweep"], "--include /nonexistent/sweep: no such folder"),
    (["--dataset", "mnist"], "--dataset 'mnist'"),
    (["--param", "gan.not_a_setting=1"], "not_a_setting"),
    (["--budgets", "-1"], "kimg"),
])
def test_bad_options_fail_with_one_line_before_any_work(sweep, tmp_path, capsys, argv, message):
    out = tmp_path / "never"
    assert sweep.main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()
