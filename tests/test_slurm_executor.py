"""`--executor slurm` on a real Slurm cluster (.ci/start_slurm.sh): a small matrix to the end, a killed job resubmitted alone."""

from __future__ import annotations

import io
import json
import logging
import pickle
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from ooc_bench.matrix import load_spec
from ooc_bench.matrix.run import run_benchmark
from ooc_bench.matrix.slurm_wait import active_job_ids

from .external_tools import require
from .matrix_fixtures import make_digits_dataset, write_spec

HOW = "install Debian's slurm-wlm and munge and start a single-node cluster with `sudo .ci/start_slurm.sh` (see .ci/README.md)"


def _cluster_answers() -> bool:
    if shutil.which("srun") is None:
        return False
    try:
        return subprocess.run(["srun", "-N1", "-n1", "--time=1", "hostname"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="module")
def cluster():
    require(_cluster_answers(), "a Slurm cluster that answers `srun hostname`", HOW)


def _submissions(run_root: Path) -> list[tuple[str, str, bool]]:
    """(submitit job id, ooc-bench job key, whether it left a result) for every Slurm job this folder submitted."""
    out = []
    for pkl in (run_root / "submitit").glob("*/*_submitted.pkl"):
        with open(pkl, "rb") as fh:
            delayed = pickle.load(fh)
        job_id = pkl.name[: -len("_submitted.pkl")]  # 12 or 12_3 (array task); results are 12_0_result.pkl, 12_3_0_…
        out.append((job_id, delayed.args[0]["key"], any(pkl.parent.glob(f"{job_id}_*result.pkl"))))
    out.sort(key=lambda s: tuple(int(x) for x in s[0].split("_")))  # submission order
    return out


def test_a_small_matrix_runs_on_slurm_and_a_killed_job_is_resubmitted_alone(cluster, tmp_path, monkeypatch, capfd, caplog):
    data = make_digits_dataset(tmp_path / "digits", {"train": 16, "val": 6, "test": 8})
    spec = write_spec(tmp_path / "tiny.toml", data, epochs=1)
    text = spec.read_text().replace("ratios = [0, 0.5, 1.0]", "ratios = [0, 0.5]").replace("seeds = [1, 2]", "seeds = [1]")
    spec.write_text(text.replace("[quality]\n", "[quality]\nenabled = false\n"))  # fewer waves: every Slurm job starts python
    out = tmp_path / "slurm-run"
    marker = tmp_path / "killed-once"
    monkeypatch.setenv("OOC_BENCH_FAULT_KILL", f"cell:{marker}")  # inherited by the Slurm jobs: the first cell SIGKILLs itself
    caplog.set_level(logging.INFO)
    console = Console(file=io.StringIO(), width=200)
    run_benchmark(load_spec(spec), out=out, executor="slurm", jobs=2, console=console, plots=False)
    assert marker.exists(), "no cell job was killed"

    records = [json.loads(p.read_text()) for p in (out / "records").rglob("*.json")]
    assert records and all(r["status"] == "done" for r in records), [r.get("error") for r in records]
    cells = [r for r in records if r["kind"] == "cell"]
    assert {(r["generator"], float(r["ratio"])) for r in cells} == {("real-only", 0.0), ("aug", 0.5)}

    subs = _submissions(out)
    per_key = Counter(key for _, key, _ in subs)
    resubmitted = [k for k, n in per_key.items() if n > 1]
    assert len(resubmitted) == 1 and per_key[resubmitted[0]] == 2, per_key  # only the killed job went to Slurm twice
    killed = resubmitted[0]
    assert killed in {r["key"] for r in cells}
    first, second = [s for s in subs if s[1] == killed]
    assert not first[2] and second[2]  # the first attempt died without a result, the resubmission finished
    assert all(has_result for _, key, has_result in subs if key != killed)
    assert set(per_key) == {r["key"] for r in records}
    assert "<table" in (out / "report.html").read_text()  # the page every run leaves, also without plots

    # a second run of the same command finds everything recorded and submits nothing
    run_benchmark(load_spec(spec), out=out, executor="slurm", jobs=2, console=Console(file=io.StringIO(), width=200), plots=False)
    assert len(_submissions(out)) == len(subs)

    # clusters without accounting: `sacct` is never called, so its errors cannot reach the user's log
    captured = capfd.readouterr()
    log = console.file.getvalue() + captured.out + captured.err + caplog.text
    assert "sacct" not in log.lower() and "accounting storage" not in log.lower(), log[-2000:]


def test_active_job_ids_reads_squeue(cluster):
    job = subprocess.run(["sbatch", "--parsable", "--wrap", "sleep 30", "-o", "/dev/null"], capture_output=True, text=True,
                         check=True).stdout.strip().split(";")[0]
    try:
        assert active_job_ids([job]) == {job}
    finally:
        subprocess.run(["scancel", job], check=False)
    assert active_job_ids(["999999999"]) == set()  # unknown to Slurm: not active (squeue's "Invalid job id")
