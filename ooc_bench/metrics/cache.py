"""On-disk feature cache: one .npy per (extractor id, image-set key), written atomically, reused across runs."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_open, write_json
from ..hashing import array_hash, config_hash
from .extractors import FeatureExtractor

NUMERIC_PACKAGES = ("torch", "numpy", "timm", "torch-fidelity", "pillow")


def numerics(extractor: FeatureExtractor) -> dict[str, Any]:
    """What changes feature values besides the weights: device (kind and model), dtype and library versions.

    Part of every cache key: features computed on a GPU, in another dtype or with another torch never meet CPU ones.
    """
    import torch

    dev = getattr(extractor, "device", None)
    if dev is None:
        from ..runtime import pick_device

        dev = pick_device(getattr(extractor, "_device_name", "auto"))
    dev = torch.device(str(dev))
    out: dict[str, Any] = {"device": dev.type, "dtype": str(extractor.provenance.get("dtype", "float32")),
                           "amp": bool(extractor.provenance.get("amp", False))}
    if dev.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(dev)
        out["cuda"] = torch.version.cuda
        out["cudnn"] = torch.backends.cudnn.version()
    out.update(_versions())
    return out


@functools.lru_cache(maxsize=1)
def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in NUMERIC_PACKAGES:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def cache_id(extractor: FeatureExtractor) -> str:
    """The cache folder name of an extractor: its id (weights, preprocessing) plus the hash of :func:`numerics`."""
    return f"{extractor.id()}-{config_hash(numerics(extractor), 8)}"


def _default_root() -> Path:
    from ..data import default_cache_dir

    return default_cache_dir() / "features"


class FeatureCache:
    """Features stored as ``ROOT/<extractor id>-<numerics>/<key>-<N>x<H>x<W>.npy`` (float64), plus ``provenance.json``.

    The extractor id hashes its weights sha, resolution and preprocessing; ``numerics`` hashes device kind (and
    GPU model, CUDA/cuDNN), dtype and the versions of torch, numpy, timm, torch-fidelity and Pillow (:func:`numerics`);
    ``key`` identifies the images
    (a split-manifest-derived key for real sets, the sample-set hash for synthetic sets, else the array hash);
    the image count and size are part of the file name as a guard. ``passes`` counts real extractions.
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else _default_root()
        self.passes = 0
        self.hits = 0

    def path(self, extractor: FeatureExtractor, images: np.ndarray, key: str | None = None) -> Path:
        """Where the features of ``images`` under ``extractor`` live."""
        key = key if key is not None else array_hash(images)
        n, h, w = (tuple(np.shape(images)[:3]) + (0, 0, 0))[:3]
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(key))
        return self.root / cache_id(extractor) / f"{safe}-{n}x{h}x{w}.npy"

    def get_or_compute(self, extractor: FeatureExtractor, images: np.ndarray, key: str | None = None,
                       batch_size: int = 64) -> np.ndarray:
        """Cached features of ``images`` (float64, N x D); extracted and stored atomically on a miss."""
        target = self.path(extractor, images, key)
        if target.is_file():
            try:
                feats = np.load(target, allow_pickle=False)
                if feats.ndim == 2 and len(feats) == len(images):
                    self.hits += 1
                    return feats
            except (OSError, ValueError):
                pass  # unreadable or truncated: recompute
        feats = np.asarray(extractor.extract(images, batch_size=batch_size), dtype=np.float64)
        self.passes += 1
        prov = target.parent / "provenance.json"
        if not prov.is_file():
            write_json(prov, {**extractor.provenance, "numerics": numerics(extractor)})
        with atomic_open(target, "wb") as fh:
            np.save(fh, feats, allow_pickle=False)
        return feats
