"""Wait for submitit Slurm jobs with `squeue` (never `sacct`): works, and stays quiet, on clusters without accounting."""

from __future__ import annotations

import subprocess
import time
from typing import Any, Iterator, Sequence

#: Slurm job states in which a job may still write its result.
ACTIVE_STATES = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING", "STAGE_OUT",
                 "SIGNALING", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "STOPPED", "PREEMPTED")


def active_job_ids(job_ids: Sequence[str], timeout_s: float = 30.0) -> set[str] | None:
    """Ids (``123`` or ``123_4`` for array tasks) that squeue lists as still active; ``None`` when squeue could not answer.

    A job that Slurm has already forgotten makes squeue fail with "Invalid job id": then none of them is active.
    """
    bases = sorted({str(j).split("_")[0] for j in job_ids})
    if not bases:
        return set()
    try:
        p = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T", "-j", ",".join(bases)], capture_output=True, text=True,
                           timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if p.returncode != 0:
        return set() if "invalid job id" in (p.stderr or "").lower() else None
    active = set()
    for line in p.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].upper() in ACTIVE_STATES:
            active.add(parts[0])
    return active


def wait_for_jobs(jobs: Sequence[Any], poll_s: float = 1.0, gone_grace_s: float = 5.0) -> Iterator[tuple[int, str]]:
    """Yield ``(index, "result")`` when a submitit job's result file appears, ``(index, "dead")`` when the job has left
    the queue without one for ``gone_grace_s`` seconds (killed, cancelled, out of memory, node failure)."""
    pending = dict(enumerate(jobs))
    gone_since: dict[int, float] = {}
    while pending:
        active = active_job_ids([str(j.job_id) for j in pending.values()])
        now = time.monotonic()
        for i, job in list(pending.items()):
            if job.paths.result_pickle.exists():
                del pending[i]
                yield i, "result"
            elif active is None or str(job.job_id) in active:
                gone_since.pop(i, None)
            elif now - gone_since.setdefault(i, now) >= gone_grace_s:
                del pending[i]
                yield i, "dead"
        if pending:
            time.sleep(poll_s)
