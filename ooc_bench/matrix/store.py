"""The results folder as a record store: one atomically written JSON record per finished job, safe on shared filesystems."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..atomic import write_json

KINDS = ("fit", "domain", "sample", "score", "cell")


@dataclass
class RunPaths:
    """Where everything of one run lives (``results/<run-name>/``)."""

    root: Path

    @property
    def records(self) -> Path:
        return self.root / "records"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def record_path(self, kind: str, key: str) -> Path:
        return self.records / kind / f"{key}.json"

    def claim_path(self, kind: str, key: str) -> Path:
        return self.records / kind / f"{key}.claim"

    def artifact_dir(self, kind: str, key: str) -> Path:
        return self.artifacts / kind / key

    def log_path(self, kind: str, key: str) -> Path:
        return self.logs / kind / f"{key}.log"


def read_record(paths: RunPaths, kind: str, key: str) -> dict[str, Any] | None:
    """The record of a job, or None when it has not finished (a half-written record cannot exist)."""
    p = paths.record_path(kind, key)
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        return None


def write_record(paths: RunPaths, kind: str, key: str, record: dict[str, Any]) -> None:
    """Atomically write a job's record under its unique key (two writers of one key write the same content)."""
    write_json(paths.record_path(kind, key), {"kind": kind, "key": key, **record})


def iter_records(paths: RunPaths, kind: str) -> Iterator[dict[str, Any]]:
    """All finished records of one kind (files whose name starts with '.' are temporary and skipped)."""
    folder = paths.records / kind
    if not folder.is_dir():
        return
    for p in sorted(folder.glob("*.json")):
        if p.name.startswith("."):
            continue
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            yield json.loads(p.read_text())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


DEFAULT_STALE_AFTER_S = 24 * 3600


def stale_after_s() -> float:
    """Age (seconds) after which a claim by a process on ANOTHER host counts as dead: ``$OOC_BENCH_CLAIM_STALE_S``
    (``ooc-bench run/status --stale-after``), default 24 h. Claims on this host are checked by pid at once."""
    from ..settings import claim_stale_s

    return claim_stale_s()


def claim_info(paths: RunPaths, kind: str, key: str) -> dict[str, Any] | None:
    """A job's claim file as written (host, pid, time) plus ``age_s``, ``stale`` and why; None without a claim."""
    p = paths.claim_path(kind, key)
    try:
        info = json.loads(p.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    age = time.time() - float(info.get("time", 0))
    info["age_s"] = age
    info["stale"], info["why"] = False, ""
    if info.get("host") == socket.gethostname() and not _pid_alive(int(info.get("pid", 0))):
        info["stale"], info["why"] = True, "its process is gone"
    elif age > stale_after_s():
        info["stale"], info["why"] = True, f"older than the stale timeout ({stale_after_s():g} s)"
    return info


def claim_owner(paths: RunPaths, kind: str, key: str) -> dict[str, Any] | None:
    """Who is running a job right now, or None (a claim by a dead process on this host, or one older than
    :func:`stale_after_s`, is stale)."""
    info = claim_info(paths, kind, key)
    if info is None or info["stale"]:
        return None
    return info


def try_claim(paths: RunPaths, kind: str, key: str) -> bool:
    """Claim a job for this process (O_EXCL create, works over NFS); take over stale claims. True when claimed."""
    p = paths.claim_path(kind, key)
    p.parent.mkdir(parents=True, exist_ok=True)
    info = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()})
    for _ in range(2):
        try:
            fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if claim_owner(paths, kind, key) is not None:
                return False
            with contextlib.suppress(FileNotFoundError):
                p.unlink()  # stale: its owner died
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(info)
        return True
    return False


def release_claim(paths: RunPaths, kind: str, key: str) -> None:
    """Drop this process's claim on a job."""
    with contextlib.suppress(FileNotFoundError):
        paths.claim_path(kind, key).unlink()
