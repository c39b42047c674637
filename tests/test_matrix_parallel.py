"""Running the matrix beyond one process: joblib workers, submitit's local executor, dead workers, concurrent runs."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from ooc_bench.cli import app
from ooc_bench.matrix import load_spec
from ooc_bench.matrix.run import run_benchmark

from .matrix_fixtures import make_digits_dataset, write_spec


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("parallel")
    data = make_digits_dataset(root / "digits")
    spec = write_spec(root / "tiny.toml", data)
    seq = root / "sequential"
    run_benchmark(load_spec(spec), out=seq, console=Console(file=io.StringIO()), plots=False)
    return root, spec, seq


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _same_results(a: Path, b: Path) -> None:
    for name in ("downstream.csv", "quality.csv", "summary.csv"):
        assert _rows(a / name) == _rows(b / name), name


def test_local_jobs_2_equals_sequential_and_a_killed_worker_is_retried(setup, monkeypatch):
    root, spec, seq = setup
    out = root / "jobs2"
    marker = root / "killed-once"
    monkeypatch.setenv("OOC_BENCH_FAULT_KILL", f"cell:{marker}")  # the first cell's worker dies mid-cell (SIGKILL)
    run_benchmark(load_spec(spec), out=out, executor="local", jobs=2, console=Console(file=io.StringIO()), plots=False)
    assert marker.exists()
    _same_results(seq, out)
    res = CliRunner().invoke(app, ["status", str(out)])
    assert res.exit_code == 0 and "cell" in res.output


def test_submitit_local_executor_equals_sequential(setup):
    root, spec, seq = setup
    one_seed = root / "one_seed.toml"  # every job is a fresh process here: keep the plan small
    one_seed.write_text(spec.read_text().replace("seeds = [1, 2]", "seeds = [1]"))
    out = root / "submitit"
    run_benchmark(load_spec(one_seed), out=out, executor="submitit-local", jobs=2, console=Console(file=io.StringIO()), plots=False)
    assert _rows(out / "quality.csv") == _rows(seq / "quality.csv")
    assert _rows(out / "downstream.csv") == [r for r in _rows(seq / "downstream.csv") if r["seed"] == "1"]
    assert (out / "submitit").is_dir()


def test_two_concurrent_runs_on_one_folder_do_not_corrupt_or_duplicate(setup):
    root, spec, seq = setup
    out = root / "concurrent"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "ooc_bench", "run", "--spec", str(spec), "--out", str(out), "--no-plots"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env) for _ in range(2)]
    outputs = [p.communicate(timeout=900)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    _same_results(seq, out)
    records = list((out / "records").rglob("*.json"))
    keys = [json.loads(r.read_text())["key"] for r in records]
    assert len(keys) == len(set(keys))
    assert all(json.loads(r.read_text())["status"] == "done" for r in records)


def test_a_failing_cell_is_recorded_and_does_not_stop_the_others(setup, tmp_path):
    root, spec, seq = setup
    # a bad value in the spec file fails at load now (tests/test_specs.py); a cell that fails while running is
    # simulated by changing the loaded spec behind the loader's back
    bad = load_spec(spec)
    bad.models[0].config["optimizer"] = "bogus-optimizer"
    out = tmp_path / "failing"
    run_benchmark(bad, out=out, console=Console(file=io.StringIO()), plots=False)
    states = [json.loads(p.read_text()) for p in (out / "records" / "cell").glob("*.json")]
    assert states and all(s["status"] == "failed" and "bogus-optimizer" in s["error"] for s in states)
    assert all(json.loads(p.read_text())["status"] == "done" for p in (out / "records" / "score").glob("*.json"))
    res = CliRunner().invoke(app, ["status", str(out)])
    assert res.exit_code == 0 and "failed" in res.output and "bogus-optimizer" in res.output


def test_slurm_config_and_bad_executor_errors(tmp_path):
    from ooc_bench.errors import UserInputError
    from ooc_bench.matrix.executor import Runner, load_slurm_config

    cfg = tmp_path / "slurm.toml"
    cfg.write_text('[slurm]\nslurm_partition = "gpu"\ngpus_per_node = 1\ntimeout_min = 120\nslurm_array_parallelism = 8\n')
    assert load_slurm_config(str(cfg))["slurm_partition"] == "gpu"
    with pytest.raises(UserInputError, match="does not exist"):
        load_slurm_config(str(tmp_path / "missing.toml"))
    with pytest.raises(UserInputError, match="valid: local, slurm, submitit-local"):
        Runner(tmp_path, executor="kubernetes")


def test_an_optional_generator_that_cannot_run_is_skipped_with_its_reason(setup, tmp_path):
    """sd-img2img without reachable weights fits (it only stores its sources) and fails when sampling: an optional
    generator is then skipped at that stage, with the reason, and so are its cells; nothing is recorded as failed."""
    root, spec, seq = setup
    text = spec.read_text().replace("[models.cnn]", '[generators."sd-img2img"]\noptional = true\n'
                                    'sd_model = "stable-diffusion-v1-5/stable-diffusion-v1-5"\n\n[models.cnn]')
    optional = tmp_path / "optional.toml"
    optional.write_text(text)
    out = tmp_path / "optional"
    console = Console(file=io.StringIO(), width=200)
    run_benchmark(load_spec(optional), out=out, console=console, plots=False)
    records = [json.loads(p.read_text()) for p in (out / "records").rglob("*.json")]
    assert not [r for r in records if r["status"] == "failed"]
    sd = [r for r in records if r.get("params", {}).get("generator") == "sd-img2img" and r["kind"] != "fit"]
    assert {r["kind"] for r in sd} == {"sample", "score", "cell"} and all(r["status"] == "skipped" for r in sd)
    assert any("--sd-model" in r.get("reason", "") for r in sd)
    assert "skipped generator sd-img2img" in console.file.getvalue()
    assert {r["generator"] for r in _rows(out / "downstream.csv")} == {"real-only", "aug"}
