"""Fault injection for the resilience tests: a job hook that SIGKILLs the worker the first time a job of a kind starts.

Enable it in the environment of the run (it reaches joblib, submitit and Slurm workers)::

    OOC_BENCH_JOB_HOOK=ooc_bench.testing.faults:kill_once   OOC_BENCH_FAULT_KILL=cell:/tmp/marker

(``OOC_BENCH_FAULT_KILL`` alone selects this hook too.) The process dies mid-job with its claim held, as a
killed Slurm job or an out-of-memory kill would; MARKER records that it happened, so the retry runs normally.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from ..settings import fault_kill


def kill_once(job: Any) -> None:
    """SIGKILL this process if ``job`` is of the kind named in ``$OOC_BENCH_FAULT_KILL=KIND:MARKER`` and MARKER is new."""
    spec = fault_kill()
    if not spec:
        return
    kind, marker = spec.split(":", 1)
    if job.kind != kind:
        return
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)
