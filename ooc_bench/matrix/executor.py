"""Send the plan's jobs to an engine — in-process, joblib worker processes, or Slurm/local jobs through submitit — wave by wave."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from ..errors import UserInputError
from .plan import Job, Plan
from .stages import execute_job
from .store import RunPaths, claim_owner, read_record, release_claim

EXECUTORS = ("local", "slurm", "submitit-local")


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # noqa: BLE001
        return 0


def run_job_in_worker(job_dict: dict[str, Any], run_root: str, gpu: int | None = None) -> dict[str, Any]:
    """Entry point inside a worker process or Slurm job: pin the GPU, run the job, return its record."""
    if gpu is not None:
        from ..settings import set_env

        set_env("OOC_BENCH_DEVICE", f"cuda:{gpu}")
    job = Job(kind=job_dict["kind"], key=job_dict["key"], label=job_dict["label"], params=job_dict["params"],
              deps=tuple(job_dict["deps"]))
    return execute_job(job, run_root)


def load_slurm_config(path: str | None) -> dict[str, Any]:
    """Read ``--slurm-config FILE`` (TOML): submitit parameters such as slurm_partition, gpus_per_node, timeout_min."""
    if not path:
        return {}
    from ..tomlcompat import tomllib  # tomli on Python 3.10

    p = Path(path)
    if not p.is_file():
        raise UserInputError(f"--slurm-config {p} does not exist")
    try:
        cfg = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserInputError(f"--slurm-config {p}: not valid TOML ({exc})") from None
    return dict(cfg.get("slurm", cfg))


class Runner:
    """Runs a plan's waves with one engine; jobs already recorded are skipped, dead workers' jobs retried."""

    def __init__(self, run_root: Path, executor: str = "local", jobs: int = 1, slurm_config: dict[str, Any] | None = None,
                 max_retries: int = 2, on_record: Callable[[Job, dict[str, Any]], None] | None = None) -> None:
        if executor not in EXECUTORS:
            raise UserInputError(f"unknown --executor {executor!r}; valid: {', '.join(EXECUTORS)}")
        if jobs < 1:
            raise UserInputError("--jobs must be at least 1")
        self.root = Path(run_root)
        self.paths = RunPaths(self.root)
        self.executor = executor
        self.jobs = jobs
        self.slurm_config = slurm_config or {}
        self.max_retries = max_retries
        self.on_record = on_record or (lambda job, rec: None)

    def pending(self, wave: list[Job]) -> list[Job]:
        """Jobs of a wave without a record (failed records were removed at the start of the run, to be retried)."""
        return [j for j in wave if read_record(self.paths, j.kind, j.key) is None]

    def run(self, plan: Plan, retry_failed: bool = True) -> None:
        """Execute every wave; within a wave retry jobs whose worker died (no record), up to ``max_retries`` times."""
        if retry_failed:
            for j in plan.jobs:  # a new `ooc-bench run` re-submits failed cells
                rec = read_record(self.paths, j.kind, j.key)
                if rec is not None and rec.get("status") == "failed":
                    self.paths.record_path(j.kind, j.key).unlink(missing_ok=True)
        for wave in plan.waves():
            for _ in range(self.max_retries + 1):
                todo = self.pending(wave)
                if not todo:
                    break
                self._dispatch(todo)
                self._wait_for_claims(todo)

    def _wait_for_claims(self, todo: list[Job], timeout_s: float = 24 * 3600) -> None:
        """Jobs claimed by another live `ooc-bench run` process: wait until their record appears or the owner dies."""
        import time

        t0 = time.time()
        while time.time() - t0 < timeout_s:
            busy = [j for j in todo if read_record(self.paths, j.kind, j.key) is None and claim_owner(self.paths, j.kind, j.key)]
            if not busy:
                return
            time.sleep(1.0)

    def _report(self, job: Job, rec: dict[str, Any]) -> None:
        if rec.get("status") not in ("claimed", "pending"):
            self.on_record(job, rec)

    def _dispatch(self, todo: list[Job]) -> None:
        if self.executor == "local" and self.jobs == 1:
            for j in todo:
                self._report(j, execute_job(j, self.root))
            return
        n_gpu = _gpu_count()
        args = [(asdict(j), str(self.root), (i % n_gpu) if n_gpu else None) for i, j in enumerate(todo)]
        if self.executor == "local":
            import warnings

            from joblib import Parallel, delayed
            from joblib.externals.loky.process_executor import TerminatedWorkerError

            # loky replaces a worker whose memory grew by > 300 MB (a torch job does) and warns from its manager
            # thread when jobs are still queued; the queued jobs run on the new worker, so the warning is noise here.
            warnings.filterwarnings("ignore", message="A worker stopped while some jobs were given to the executor",
                                    category=UserWarning)

            try:
                results = Parallel(n_jobs=self.jobs, backend="loky", return_as="generator_unordered")(
                    delayed(_indexed)(i, a) for i, a in enumerate(args))
                for i, rec in results:
                    self._report(todo[i], rec)
            except TerminatedWorkerError:
                for j in todo:  # a worker died: its claim is stale (dead pid); the retry loop re-runs the job
                    if read_record(self.paths, j.kind, j.key) is None and claim_owner(self.paths, j.kind, j.key) is None:
                        release_claim(self.paths, j.kind, j.key)
            return
        self._dispatch_submitit(todo, args)

    def _dispatch_submitit(self, todo: list[Job], args: list[tuple]) -> None:
        import submitit

        folder = self.root / "submitit"
        cluster = "local" if self.executor == "submitit-local" else "slurm"
        ex = submitit.AutoExecutor(folder=str(folder / "%j"), cluster=cluster)
        params = dict(self.slurm_config)
        params.setdefault("timeout_min", 240)
        if cluster == "slurm":
            params.setdefault("slurm_array_parallelism", self.jobs)
        else:  # submitit's local executor takes no slurm_* parameters
            params = {k: v for k, v in params.items() if not k.startswith("slurm_")}
            params.setdefault("gpus_per_node", 0)
        ex.update_parameters(name="ooc-bench", **params)
        sub = ex.map_array(run_job_in_worker, [a[0] for a in args], [a[1] for a in args], [a[2] for a in args])
        if cluster == "slurm":  # poll squeue, not submitit's sacct: no accounting needed, no sacct warnings in the log
            from .slurm_wait import wait_for_jobs

            finished = ((i, state == "result") for i, state in wait_for_jobs(sub))
        else:
            finished = ((i, True) for i in range(len(sub)))
        for i, has_result in finished:
            j, s = todo[i], sub[i]
            try:
                if not has_result:
                    raise RuntimeError(f"Slurm job {s.job_id} ended without a result")
                self._report(j, s.result())
            except Exception:  # noqa: BLE001 - the job died (killed, preempted, out of memory): retried by run()
                if read_record(self.paths, j.kind, j.key) is None:
                    release_claim(self.paths, j.kind, j.key)


def _indexed(i: int, a: tuple) -> tuple[int, dict[str, Any]]:
    return i, run_job_in_worker(*a)


def save_plan(plan: Plan, run_root: Path) -> None:
    """plan.json: every job of the latest run (read by `ooc-bench status`)."""
    from ..atomic import write_json

    write_json(Path(run_root) / "plan.json", {"jobs": [asdict(j) for j in plan.jobs]})


def load_plan(run_root: Path) -> Plan:
    """The plan saved by the latest `ooc-bench run` in this folder."""
    p = Path(run_root) / "plan.json"
    if not p.is_file():
        raise UserInputError(f"{p} not found: RESULTS_DIR must be a folder written by `ooc-bench run`")
    data = json.loads(p.read_text())
    return Plan([Job(kind=j["kind"], key=j["key"], label=j["label"], params=j["params"], deps=tuple(j["deps"])) for j in data["jobs"]])


def job_states(plan: Plan, run_root: Path) -> list[tuple[Job, str, dict[str, Any] | None]]:
    """(job, state, record) with state one of done, failed, skipped, running, missing."""
    paths = RunPaths(Path(run_root))
    out = []
    for j in plan.jobs:
        rec = read_record(paths, j.kind, j.key)
        if rec is not None:
            out.append((j, rec.get("status", "done"), rec))
        elif claim_owner(paths, j.kind, j.key):
            out.append((j, "running", None))
        else:
            out.append((j, "missing", None))
    return out
