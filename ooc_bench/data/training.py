"""The training-set view a generator receives: the train split only, as uint8 RGB arrays at any working size."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class TrainingSet:
    """What a generator may see: the training split only, as uint8 RGB arrays at any working size.

    Build it with ``ooc_bench.data.training_set(split_manifest, cache)`` (which runs the leakage
    guard) or, in tests and for in-memory data, with :meth:`from_arrays`.
    """

    classes: list[str]
    labels: np.ndarray  # int64 (N,), index into classes
    loader: Callable[[int], np.ndarray]  # size -> uint8 (N, size, size, 3), same order as labels
    hashes: list[str] = field(default_factory=list)  # content hash per image (source_hash for img2img)
    metadata: list[dict[str, str]] = field(default_factory=list)  # per-image metadata (cell type, day ...)

    def images(self, size: int) -> np.ndarray:
        """All training images resized to ``size`` x ``size`` (uint8, N x size x size x 3)."""
        return self.loader(size)

    def __len__(self) -> int:
        return int(len(self.labels))

    @classmethod
    def from_arrays(cls, images: np.ndarray, labels: np.ndarray, classes: list[str],
                    metadata: list[dict[str, str]] | None = None) -> "TrainingSet":
        """Wrap in-memory uint8 images (N,H,W,C); resized on request by the data layer's policy (``resize_square``)."""
        from ..hashing import array_hash
        from .decode import resize_square

        images = np.asarray(images)
        if images.ndim == 3:
            images = images[..., None]
        if images.shape[-1] == 1:
            images = np.repeat(images, 3, axis=-1)

        def load(size: int) -> np.ndarray:
            if images.shape[1] == size and images.shape[2] == size:
                return images
            return np.stack([resize_square(im, size) for im in images])

        hashes = [array_hash(im) for im in images]
        md = metadata if metadata is not None else [{} for _ in range(len(images))]
        return cls(classes=list(classes), labels=np.asarray(labels, dtype=np.int64), loader=load, hashes=hashes, metadata=md)
