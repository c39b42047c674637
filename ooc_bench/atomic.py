"""Atomic file writes: write to a temporary name in the same folder, then rename, so no reader ever sees half a file.

Files and folders made here get the permissions the process umask gives (``0o666 & ~umask`` for files,
``0o777 & ~umask`` for folders), like ``open()`` and ``mkdir`` would; ``tempfile.mkstemp``/``mkdtemp`` alone
would leave them ``0600``/``0700`` whatever the umask, so nobody else in a lab group could read the results.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux ``/proc``), else by a set-and-restore."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    old = os.umask(0o022)
    os.umask(old)
    return old


def apply_umask(path: str | os.PathLike, directory: bool = False) -> None:
    """Give ``path`` the mode a plain ``open``/``mkdir`` would have given it under the current umask."""
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


def make_temp_dir(target: str | os.PathLike) -> Path:
    """A fresh hidden folder beside ``target`` (to be renamed onto it when complete), with umask permissions."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    apply_umask(tmp, directory=True)
    return tmp


def _temp_file(path: Path, prefix: str, suffix: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    os.close(fd)
    apply_umask(tmp)
    return tmp


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync and rename it over ``path``; on error delete it."""
    path = Path(path)
    tmp = _temp_file(path, f".{path.name}.", ".tmp")
    try:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for libraries that write by file name; rename it on success."""
    path = Path(path)
    tmp = _temp_file(path, f".{path.stem}.", path.suffix or ".tmp")
    try:
        yield Path(tmp)
        if os.path.exists(tmp):  # a library may have replaced the file (new inode): set its mode again
            apply_umask(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write a text file (UTF-8)."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented, key-sorted JSON."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def check_writable(path: str | os.PathLike, option: str) -> Path:
    """Fail early (one clear line, before any work) when an output file or folder cannot be written.

    ``path`` is a folder to write into or a file to create; the nearest existing ancestor must be a
    writable folder. ``option`` names the CLI option that gave the path (e.g. ``--out``).
    """
    from .errors import UserInputError

    p = Path(path).expanduser()
    probe = p
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        if probe == p and p.is_file():  # an existing file to replace: its folder must be writable
            probe = p.parent
        else:
            raise UserInputError(f"{option} {p}: {probe} is a file, not a folder; choose another {option}")
    try:  # a real probe: os.access says yes to root on read-only mounts and to some network file systems
        fd, tmp = tempfile.mkstemp(prefix=".ooc-bench-write-test.", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError:
        raise UserInputError(f"{option} {p}: folder {probe} is not writable; choose another {option} or fix its "
                             "permissions") from None
    return p
