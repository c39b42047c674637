"""Process-wide settings: every ``OOC_BENCH_*`` environment variable and default folder, read in this one module.

Every other module asks here (``settings.cache_dir()``, ``settings.device()`` ...) instead of reading
``os.environ`` itself, so the list below is complete and ``ooc-bench list --options`` / docs can show it.
Environment variables are read at call time (a worker process or a test may set them after import).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class EnvVar:
    """One environment variable: its name, default (as text) and what it does."""

    name: str
    default: str
    help: str


ENV_VARS: dict[str, EnvVar] = {v.name: v for v in (
    EnvVar("OOC_BENCH_CACHE", "~/.cache/ooc-bench", "folder of the decoded-image, hash and feature caches and the demo"),
    EnvVar("OOC_BENCH_DEVICE", "auto", "torch device of every job (set per worker by the executors: cuda:N)"),
    EnvVar("OOC_BENCH_THREADS", "min(cores, 8)", "CPU threads per job (fixed: bitwise-equal numbers across executors)"),
    EnvVar("OOC_BENCH_OFFLINE", "0", "never contact the Hugging Face hub (like HF_HUB_OFFLINE=1)"),
    EnvVar("OOC_BENCH_NO_PROGRESS", "", "no progress bars (any non-empty value)"),
    EnvVar("OOC_BENCH_CLAIM_STALE_S", "86400", "seconds after which another host's claim on a job counts as dead"),
    EnvVar("OOC_BENCH_WEIGHTS", "", "JSON file mapping model alias / timm name -> local weights file"),
    EnvVar("OOC_BENCH_JOB_HOOK", "", "module:function called with each job before it runs (test hooks)"),
    EnvVar("OOC_BENCH_FAULT_KILL", "", "test hook (ooc_bench.testing.faults): KIND:MARKER kills the first job of KIND"),
)}


def _get(name: str) -> str | None:
    assert name in ENV_VARS, f"{name} is not declared in ooc_bench.settings.ENV_VARS"
    return os.environ.get(name)


def set_env(name: str, value: str | None) -> None:
    """Set (or with None, remove) one declared variable for this process and its children."""
    assert name in ENV_VARS, f"{name} is not declared in ooc_bench.settings.ENV_VARS"
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = str(value)


def cache_dir() -> Path:
    """``$OOC_BENCH_CACHE`` when set, else ``~/.cache/ooc-bench``."""
    env = _get("OOC_BENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ooc-bench"


def device() -> str | None:
    """``$OOC_BENCH_DEVICE`` (None when unset or ``auto``)."""
    value = _get("OOC_BENCH_DEVICE")
    return value if value and value != "auto" else None


def threads() -> int:
    """CPU threads every job uses: ``$OOC_BENCH_THREADS`` or min(cores, 8)."""
    value = _get("OOC_BENCH_THREADS")
    return max(1, int(value)) if value else max(1, min(os.cpu_count() or 1, 8))


def offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` or ``OOC_BENCH_OFFLINE`` asks for no network access."""
    return any((os.environ.get(v) or "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "OOC_BENCH_OFFLINE"))


def no_progress() -> bool:
    """True when ``$OOC_BENCH_NO_PROGRESS`` is set (to anything)."""
    return bool(_get("OOC_BENCH_NO_PROGRESS"))


DEFAULT_STALE_AFTER_S = 24 * 3600


def claim_stale_s() -> float:
    """``$OOC_BENCH_CLAIM_STALE_S`` (a positive number of seconds), default 24 h."""
    try:
        value = float(_get("OOC_BENCH_CLAIM_STALE_S") or DEFAULT_STALE_AFTER_S)
    except ValueError:
        return float(DEFAULT_STALE_AFTER_S)
    return value if value > 0 else float(DEFAULT_STALE_AFTER_S)


def weights_mapping() -> str | None:
    """``$OOC_BENCH_WEIGHTS``: a JSON file mapping model names to weights files (None when unset)."""
    return _get("OOC_BENCH_WEIGHTS") or None


def job_hook() -> str | None:
    """``$OOC_BENCH_JOB_HOOK`` (``module:function``); ``$OOC_BENCH_FAULT_KILL`` alone selects the fault hook."""
    hook = _get("OOC_BENCH_JOB_HOOK")
    if hook:
        return hook
    return "ooc_bench.testing.faults:kill_once" if fault_kill() else None


def fault_kill() -> str | None:
    """``$OOC_BENCH_FAULT_KILL`` (a test hook, see ``ooc_bench.testing.faults``)."""
    return _get("OOC_BENCH_FAULT_KILL") or None


__all__ = ["ENV_VARS", "EnvVar", "set_env", "cache_dir", "device", "threads", "offline", "no_progress",
           "claim_stale_s", "weights_mapping", "job_hook", "fault_kill", "DEFAULT_STALE_AFTER_S"]
