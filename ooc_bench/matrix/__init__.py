"""The benchmark matrix: spec → plan of cached jobs → executors → long-format results and reports."""

from .plan import Job, Plan, SplitInfo, build_plan, synthetic_counts
from .spec import BenchmarkSpec, load_spec

__all__ = ["BenchmarkSpec", "load_spec", "Job", "Plan", "SplitInfo", "build_plan", "synthetic_counts", "run_benchmark"]


def run_benchmark(*args, **kwargs):
    """See :func:`ooc_bench.matrix.run.run_benchmark` (imported lazily: it pulls in the data layer and rich)."""
    from .run import run_benchmark as _run

    return _run(*args, **kwargs)
