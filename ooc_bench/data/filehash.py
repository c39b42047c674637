"""Content hashes of image files, remembered by (path, size, mtime) in a small SQLite table so re-reads are instant.

The hashing itself is ``ooc_bench.hashing.file_hash``; this module only memoises it, because every command that
opens a split manifest re-verifies every image hash (each command and each matrix worker process, thousands of
multi-MB files each time). A file counts as unchanged while its size and mtime (ns) are.
The table uses SQLite's default rollback journal, not WAL: WAL needs shared memory and does not work over a
network file system (the cache folder is often on NFS), while the rollback journal only needs file locks. Any
SQLite error (locked, unsupported, corrupt) falls back to hashing without remembering.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from ..hashing import file_hash


def _db_path() -> Path:
    from ..settings import cache_dir

    return cache_dir() / "file-hashes.sqlite3"


def _connect() -> sqlite3.Connection | None:
    try:
        path = _db_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(str(path), timeout=30)
        with contextlib.suppress(sqlite3.Error):  # a table made by an earlier version may be in WAL mode
            con.execute("PRAGMA journal_mode=DELETE")
        con.execute("CREATE TABLE IF NOT EXISTS h (path TEXT PRIMARY KEY, size INTEGER, mtime INTEGER, hash TEXT)")
        return con
    except (OSError, sqlite3.Error):
        return None  # a read-only or odd file system: hash without remembering


def workers() -> int:
    """Threads for I/O- and decode-bound work (hashlib, zlib and Pillow release the GIL)."""
    return max(1, min(8, (os.cpu_count() or 1) * 2))


def hash_files(paths: list[str], progress: Callable[[int], None] | None = None) -> list[str | None]:
    """sha256 (16 hex, ``ooc_bench.hashing.file_hash``) of each file; None for files that cannot be read."""
    stats: list[tuple[int, int] | None] = []
    for p in paths:
        try:
            st = os.stat(p)
            stats.append((st.st_size, st.st_mtime_ns))
        except OSError:
            stats.append(None)
    out: list[str | None] = [None] * len(paths)
    con = _connect()
    known: dict[str, tuple[int, int, str]] = {}
    if con is not None:
        with contextlib.suppress(sqlite3.Error):
            for i in range(0, len(paths), 500):
                chunk = paths[i:i + 500]
                q = f"SELECT path, size, mtime, hash FROM h WHERE path IN ({','.join('?' * len(chunk))})"
                for row in con.execute(q, chunk):
                    known[row[0]] = (row[1], row[2], row[3])
    todo = []
    for i, (p, st) in enumerate(zip(paths, stats)):
        if st is None:
            continue
        k = known.get(p)
        if k is not None and (k[0], k[1]) == st:
            out[i] = k[2]
        else:
            todo.append(i)
    if progress and len(paths) > len(todo):
        progress(len(paths) - len(todo))

    def one(i: int) -> str | None:
        try:
            return file_hash(paths[i])
        except OSError:
            return None

    fresh = []
    with ThreadPoolExecutor(workers()) as pool:
        for i, h in zip(todo, pool.map(one, todo)):
            out[i] = h
            if h is not None:
                fresh.append((paths[i], stats[i][0], stats[i][1], h))
            if progress:
                progress(1)
    if con is not None:
        with contextlib.suppress(sqlite3.Error):
            with con:
                con.executemany("INSERT OR REPLACE INTO h VALUES (?, ?, ?, ?)", fresh)
        con.close()
    return out
