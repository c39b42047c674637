"""Stable content and configuration hashes used as cache keys and provenance."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import numpy as np

HASH_LEN = 16  # hex characters kept from sha256: 64 bits, ample for image sets of any realistic size


def file_hash(path: str | os.PathLike, length: int = HASH_LEN) -> str:
    """sha256 of a file's bytes, truncated to ``length`` hex characters."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:length]


def bytes_hash(data: bytes, length: int = HASH_LEN) -> str:
    """sha256 of raw bytes, truncated."""
    return hashlib.sha256(data).hexdigest()[:length]


def array_hash(arr: np.ndarray, length: int = HASH_LEN) -> str:
    """sha256 of an array's dtype, shape and bytes, truncated."""
    arr = np.ascontiguousarray(arr)
    h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()[:length]


def config_hash(config: Any, length: int = HASH_LEN) -> str:
    """sha256 of a JSON-serialisable config with sorted keys, truncated."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
