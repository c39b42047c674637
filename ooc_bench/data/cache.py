"""Decoded-image cache: each image decoded and resized once per (content hash, size, channel policy), read memory-mapped.

Layout under the cache root (``$OOC_BENCH_CACHE`` or ``~/.cache/ooc-bench``)::

    images/<channels>-<policy>-<size>/<hash[:2]>/<hash>.npy   one uint8 (size, size, C) array per image
    packs/<channels>-<policy>-<size>/<key>.npy                 one uint8 (N, size, size, C) array per request,
                                                                key = hash of the ordered image hashes

A request first looks for its pack (one memory-mapped read: the fast path for epochs and repeated
stages); otherwise it decodes only the images missing from ``images/`` (thread pool, progress bar),
then packs them. Delete the folder to reclaim space; it is rebuilt on demand.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..atomic import atomic_path
from ..errors import UserInputError
from ..hashing import config_hash
from . import decode as _decode
from .filehash import workers
from .progress import progress_bar
from .records import Dataset, ImageRecord
from .split import check_train_only

if TYPE_CHECKING:
    from .training import TrainingSet

CHANNELS = {"rgb": 3, "gray": 1}


def default_cache_dir() -> Path:
    """``$OOC_BENCH_CACHE`` when set, else ``~/.cache/ooc-bench`` (the rule lives in ooc_bench.settings)."""
    from ..settings import cache_dir

    return cache_dir()


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp:  # unique temporary name: safe with threads and processes writing the same entry
        np.save(tmp, arr, allow_pickle=False)


class ImageCache:
    """Decode-once cache of resized uint8 images keyed by content hash, size and channel policy."""

    def __init__(self, root: str | os.PathLike | None = None, pack: bool = True) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.pack = pack
        self.decoded = 0  # images decoded by this instance (for reports and tests)

    def _tag(self, size: int, channels: str) -> str:
        return f"{channels}-{_decode.RESIZE_POLICY}-{int(size)}"

    def image_path(self, content_hash: str, size: int, channels: str = "rgb") -> Path:
        """Where the resized array of one image lives."""
        return self.root / "images" / self._tag(size, channels) / content_hash[:2] / f"{content_hash}.npy"

    def _read_one(self, path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        return arr if arr.shape == shape and arr.dtype == np.uint8 else None

    @staticmethod
    def check_request(size: int, channels: str) -> int:
        """The working size as an int; UserInputError for a size below 1 or channels other than rgb/gray."""
        if channels not in CHANNELS:
            raise UserInputError(f"channels={channels!r}: choose 'rgb' or 'gray'")
        if int(size) < 1:
            raise UserInputError(f"size={size}: the working size must be a positive number of pixels")
        return int(size)

    def ensure(self, records: Sequence[ImageRecord], size: int, channels: str = "rgb") -> int:
        """Decode and store every image not cached yet at this size/policy; returns how many were decoded."""
        size = self.check_request(size, channels)
        c = CHANNELS[channels]
        unique: dict[str, str] = {}
        for r in records:
            unique.setdefault(r.hash, r.path)
        todo = [(h, ref) for h, ref in unique.items() if not self.image_path(h, size, channels).is_file()]
        if not todo:
            return 0
        with progress_bar(f"decoding {len(todo)} images at {size}px", len(todo), min_total=16) as advance:
            def work(item: tuple[str, str]) -> None:
                h, ref = item
                arr = _decode.decode_resized(ref, size, channels)
                if arr.shape != (size, size, c):
                    raise UserInputError(f"{ref}: decoded to shape {arr.shape}, expected {(size, size, c)}")
                _save_npy(self.image_path(h, size, channels), np.ascontiguousarray(arr, dtype=np.uint8))
                advance(1)

            with ThreadPoolExecutor(workers()) as pool:
                list(pool.map(work, todo))
        self.decoded += len(todo)
        return len(todo)

    def load(self, records: Sequence[ImageRecord], size: int, channels: str = "rgb") -> np.ndarray:
        """uint8 (N, size, size, 3) — (N, size, size, 1) for channels='gray' — in record order, memory-mapped
        copy-on-write (writes stay in memory). Decodes only images not cached at this size and policy."""
        size = self.check_request(size, channels)
        records = list(records)
        c = CHANNELS[channels]
        shape = (len(records), size, size, c)
        if not records:
            return np.zeros(shape, dtype=np.uint8)
        tag = self._tag(size, channels)
        pack_path = self.root / "packs" / tag / f"{config_hash([tag, [r.hash for r in records]])}.npy"
        if self.pack and pack_path.is_file():
            try:
                arr = np.load(pack_path, mmap_mode="c", allow_pickle=False)
                if arr.shape == shape and arr.dtype == np.uint8:
                    return arr
            except (OSError, ValueError, EOFError):
                pass
        self.ensure(records, size, channels)
        one = (size, size, c)
        if not self.pack:
            out = np.empty(shape, dtype=np.uint8)
            for i, r in enumerate(records):
                out[i] = self._get(r, size, channels, one)
            return out
        with atomic_path(pack_path) as tmp:
            mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
            for i, r in enumerate(records):
                mm[i] = self._get(r, size, channels, one)
            mm.flush()
            del mm
        return np.load(pack_path, mmap_mode="c", allow_pickle=False)

    def _get(self, r: ImageRecord, size: int, channels: str, one: tuple[int, ...]) -> np.ndarray:
        path = self.image_path(r.hash, size, channels)
        arr = self._read_one(path, one)
        if arr is None:  # damaged entry (e.g. a crash mid-write on a file system without rename atomicity)
            path.unlink(missing_ok=True)
            self.ensure([r], size, channels)
            arr = self._read_one(path, one)
            if arr is None:
                raise UserInputError(f"{path}: cannot write the image cache; check free space or set OOC_BENCH_CACHE")
        return arr


def _as_dataset(dataset: Dataset | str | os.PathLike) -> Dataset:
    if isinstance(dataset, Dataset):
        return dataset
    from .layouts import load_dataset

    return load_dataset(dataset)


def split_arrays(dataset: Dataset | str | os.PathLike, split: str, size: int,
                 cache: ImageCache | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images (uint8 N x size x size x 3, via the cache) and int64 labels (index into ``dataset.classes``) of one split."""
    ds = _as_dataset(dataset)
    if split not in ("train", "val", "test"):
        raise UserInputError(f"split {split!r}: choose train, val or test")
    if not ds.has_splits:
        raise UserInputError(f"{ds.root}: the dataset has no train/val/test split; run `ooc-bench data split` "
                             "(or make_split) and use its manifest")
    records = ds.split(split)
    if not records:
        raise UserInputError(f"{ds.root}: no images in the {split} split; re-split with a non-zero --{split} fraction")
    if split == "train":
        check_train_only(records, ds, "use the train split")
    index = ds.class_index()
    labels = np.array([index[r.label] for r in records], dtype=np.int64)
    return (cache or ImageCache()).load(records, size), labels


def training_set(dataset: Dataset | str | os.PathLike, size_hint: int | None = None,
                 cache: ImageCache | None = None) -> "TrainingSet":
    """The train split ONLY, as a TrainingSet (data/training.py) whose loader(size) reads through the cache.

    Runs the leakage guard (no train image may share its content hash with a val/test image).
    ``size_hint`` decodes the images at that size now (with a progress bar) instead of at first use.
    """
    from .training import TrainingSet

    ds = _as_dataset(dataset)
    if not ds.has_splits:
        raise UserInputError(f"{ds.root}: the dataset has no train/val/test split; run `ooc-bench data split` "
                             "(or make_split) and use its manifest")
    train = ds.split("train")
    if not train:
        raise UserInputError(f"{ds.root}: the train split is empty")
    check_train_only(train, ds, "fit a generator or train a classifier")
    cache = cache or ImageCache()
    if size_hint:
        cache.ensure(train, int(size_hint))
    index = ds.class_index()
    labels = np.array([index[r.label] for r in train], dtype=np.int64)

    def loader(size: int) -> np.ndarray:
        return cache.load(train, size)

    return TrainingSet(classes=list(ds.classes), labels=labels, loader=loader, hashes=[r.hash for r in train],
                       metadata=[dict(r.metadata) for r in train])
