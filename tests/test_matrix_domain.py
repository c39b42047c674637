"""The run's domain network is one cached job: score jobs in separate processes share its weights and id."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from rich.console import Console

from ooc_bench.matrix.plan import build_plan
from ooc_bench.matrix.quality import load_domain
from ooc_bench.matrix.run import prepare_split
from ooc_bench.matrix.spec import load_spec
from ooc_bench.matrix.stages import execute_job
from ooc_bench.matrix.store import RunPaths, iter_records

from .matrix_fixtures import make_digits_dataset

SPEC = """
name = "domain"
[data]
path = "{data}"
split = "official"
image_size = 16
[generators.aug]
[models.cnn]
pretrained = false
epochs = 1
[matrix]
protocols = ["add"]
ratios = [0]
seeds = [1]
[quality]
features = "domain"
domain_epochs = {epochs}
metrics = ["fd", "kid", "class_fidelity"]
subsets = 5
"""


def _plan(root: Path, data: Path, epochs: int):
    spec_path = root / f"spec{epochs}.toml"
    spec_path.write_text(SPEC.format(data=str(data).replace("\\", "/"), epochs=epochs))
    spec = load_spec(spec_path)
    run = root / "run"
    run.mkdir(exist_ok=True)
    return run, build_plan(spec, prepare_split(spec, run, Console(quiet=True)))


def _in_subprocess(job, run: Path) -> subprocess.Popen:
    code = ("import json, sys; from ooc_bench.matrix.executor import run_job_in_worker; "
            "rec = run_job_in_worker(json.loads(sys.argv[1]), sys.argv[2]); print(rec['status'])")
    return subprocess.Popen([sys.executable, "-c", code, json.dumps(asdict(job)), str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_processes_share_one_network_and_a_changed_network_changes_the_id(tmp_path):
    data = make_digits_dataset(tmp_path / "data", {"train": 24, "val": 8, "test": 10})
    run, plan = _plan(tmp_path, data, epochs=1)
    domain_jobs = plan.by_kind("domain")
    assert len(domain_jobs) == 1
    scores = plan.by_kind("score")
    assert {j.params["generator"] for j in scores} == {"aug", "real-val"}
    assert all(domain_jobs[0].key in j.deps for j in scores)  # every score job waits for the one network
    for job in plan.by_kind("fit") + domain_jobs + plan.by_kind("sample"):
        assert execute_job(job, run)["status"] == "done"
    procs = [_in_subprocess(j, run) for j in scores]  # the two score jobs, each in its own process
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 and out.strip().endswith("done") for p, out in zip(procs, outs)), outs
    paths = RunPaths(run)
    assert len(list(iter_records(paths, "domain"))) == 1  # trained once, by its own job
    net = load_domain(paths.artifact_dir("domain", domain_jobs[0].key))
    recs = list(iter_records(paths, "score"))
    ids = {r["extractor_id"] for rec in recs for r in rec["rows"]}
    assert ids == {net.id()}
    sha = next(iter_records(paths, "domain"))["weights_sha"]
    assert all(sha in r["weights"] for rec in recs for r in rec["rows"])
    assert {r["metric"] for rec in recs for r in rec["rows"]} == {"fd", "kid", "class_fidelity"}
    # a changed recipe is another domain job, another network, another id: old features cannot be reused
    _, plan2 = _plan(tmp_path, data, epochs=2)
    d2 = plan2.by_kind("domain")[0]
    assert d2.key != domain_jobs[0].key and execute_job(d2, run)["status"] == "done"
    net2 = load_domain(paths.artifact_dir("domain", d2.key))
    assert net2.id() != net.id()
    assert next(j for j in plan2.by_kind("score") if j.params["generator"] == "aug").key not in {j.key for j in scores}
