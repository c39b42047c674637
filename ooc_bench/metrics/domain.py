"""The domain feature space: features and class predictions of a network trained elsewhere on the real train split.

The metrics layer never trains anything: a caller above it (the matrix's domain job, or `ooc-bench score`) trains
the network once, saves it as safetensors, and passes it in through the :class:`Embedder` interface together with
the hash of its weights file. That hash is part of the extractor id, so features of two different trainings can
never be mixed in one table or one feature cache.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import UserInputError
from .extractors import FeatureExtractor, as_rgb_uint8, register_extractor


@runtime_checkable
class Embedder(Protocol):
    """A trained classifier as the metrics see it: penultimate features and class probabilities of uint8 images.

    ``ooc_bench.classifiers.TrainResult`` (and ``load_checkpoint``'s result) satisfy it.
    """

    classes: list[str]

    def embed(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """(N, D) features of uint8 N x H x W x 3 images."""

    def predict_proba(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """(N, n_classes) class probabilities of uint8 N x H x W x 3 images."""


def weights_hash(path: str | os.PathLike, length: int = 16) -> str:
    """sha256 of a safetensors file's tensors (names, dtypes, shapes, bytes; sorted by name), truncated.

    Not the file's bytes: safetensors writes its metadata header in an unspecified order, so two saves of
    identical weights can differ byte-wise."""
    import hashlib

    import torch
    from safetensors import safe_open

    h = hashlib.sha256()
    with safe_open(str(path), framework="pt") as fh:
        for key in sorted(fh.keys()):
            t = fh.get_tensor(key).contiguous()
            h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
            h.update(t.view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:length]


def _short(path: str | os.PathLike | None) -> str:
    """``<folder>/<file>`` of a weights file (no run-folder prefix, so moved results keep their labels)."""
    if path is None:
        return "in memory"
    p = Path(path)
    return f"{p.parent.name}/{p.name}"


def _device_of(network: Any) -> str:
    try:
        return str(next(network.model.parameters()).device)
    except Exception:  # noqa: BLE001 - not a torch-backed embedder
        return "cpu"


@register_extractor("domain", aliases=("classifier", "domain-cnn"),
                    description="penultimate features of the run's classifier trained on the real training split (no download)")
class DomainExtractor(FeatureExtractor):
    """Penultimate (pre-logits) features of a network trained on the real training split, given as an :class:`Embedder`.

    ``weights_file`` is the network's saved weights (``model.safetensors``); its tensors' sha256 (or ``weights_sha`` when
    given) is part of :meth:`id`, so a retrained network — another seed, machine or torch version that changed a
    single weight — gets another id and never meets the old one's cached features. ``info`` adds what the caller
    knows about the training (train-split hash, recipe, hold-out accuracy); its keys are recorded in provenance.
    The network also answers :meth:`predict` (class indices), used for the ``class_fidelity`` metric.
    """

    name = "domain"

    def __init__(self, network: Embedder | None = None, weights_file: str | os.PathLike | None = None,
                 weights_sha: str | None = None, info: dict[str, Any] | None = None, batch_size: int = 64,
                 **legacy: Any) -> None:
        super().__init__()
        if network is None or legacy:
            raise UserInputError(
                "domain extractor: pass network= (a classifier trained on the real train split, e.g. "
                "ooc_bench.matrix.quality.train_domain_network(...)) and its weights_file=; the metrics layer "
                f"does not train networks{' (got ' + ', '.join(sorted(legacy)) + ')' if legacy else ''}")
        if not isinstance(network, Embedder):
            raise UserInputError(f"domain extractor: network must have classes, embed() and predict_proba() (got {type(network).__name__})")
        if weights_sha is None:
            if weights_file is None or not Path(weights_file).is_file():
                raise UserInputError("domain extractor: pass weights_file= (the network's saved weights) or weights_sha=, "
                                     "so that its features get an identity")
            weights_sha = weights_hash(weights_file)
        self.network = network
        self.classes = [str(c) for c in network.classes]
        self.batch_size = int(batch_size)
        info = dict(info or {})
        model = str(info.get("model", "network"))
        size = info.get("img_size")
        self.provenance = {
            "name": self.name, "feature_space": f"domain-{model}", "impl": f"ooc_bench classifier {model} penultimate features",
            "weights": f"trained on the real train split ({info.get('train_hash', '?')}): {_short(weights_file)}",
            "weights_path": str(weights_file) if weights_file else None, "weights_sha": str(weights_sha),
            "classes": self.classes, "resolution": size, "dtype": "float32",
            "resize_mode": f"classifier's own (resize to {size} px, model normalisation)",
            "preprocessing": f"classifier's own: resize to {size}, model normalisation",
            **{f"train_{k}" if k in ("seed", "epochs") else k: v for k, v in info.items() if k not in ("model", "img_size")},
            "model": model,
        }
        self._device = _device_of(network)

    def id(self) -> str:
        """Hash of the weights sha, model, classes and preprocessing (not the paths, not the training metrics)."""
        from ..hashing import config_hash

        keep = ("name", "feature_space", "weights_sha", "classes", "resolution", "dtype", "resize_mode", "model")
        return config_hash({k: self.provenance.get(k) for k in keep})

    @property
    def device(self) -> str:
        """The device the network runs on (part of the feature-cache key)."""
        return self._device

    def _extract_batch(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(self.network.embed(images, batch_size=self.batch_size), dtype=np.float64)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """(N,) class indices the network assigns to uint8 images (in the order of :attr:`classes`)."""
        images = as_rgb_uint8(images)
        if len(images) == 0:
            return np.zeros(0, np.int64)
        proba = np.asarray(self.network.predict_proba(images, batch_size=self.batch_size))
        return proba.argmax(1).astype(np.int64)

    @property
    def dim(self) -> int:
        if "dim" not in self.provenance:
            raise RuntimeError("dim is known after the first extract()")
        return int(self.provenance["dim"])

    def extract(self, images_uint8_NHWC: np.ndarray, batch_size: int = 64) -> np.ndarray:
        if len(images_uint8_NHWC) == 0:
            return np.zeros((0, int(self.provenance.get("dim", 0))), dtype=np.float64)
        feats = super().extract(images_uint8_NHWC, batch_size)
        if len(feats):
            self.provenance["dim"] = int(feats.shape[1])
        return feats
