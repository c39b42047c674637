"""`aug`: classic offline augmentation (flips, 90° rotations, zoom, small affine, intensity) — the baseline to beat."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import build, option, to_dict
from .base import Generator, TrainingSet
from .registry import register_generator


@dataclass
class AugConfig:
    """Settings of the `aug` generator."""

    resolution: int = option(128, "working size (px) the real images are augmented at", low=8)
    strength: float = option(1.0, "scales the geometric and intensity ranges (0: exact copies)", low=0.0)


def augment_image(image: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """One random classic augmentation of a uint8 (H, W, 3) image; ``strength`` scales the geometric and intensity ranges."""
    import torch
    from torchvision.transforms.v2 import functional as F

    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    if rng.random() < 0.5:
        x = x.flip(-1)
    if rng.random() < 0.5:
        x = x.flip(-2)
    x = torch.rot90(x, int(rng.integers(0, 4)), dims=(-2, -1))
    h, w = x.shape[-2:]
    angle = float(rng.uniform(-15, 15) * strength)
    scale = float(1.0 + rng.uniform(0.0, 0.25) * strength)  # zoom in only: no empty borders
    tx, ty = (float(v) for v in rng.uniform(-0.05, 0.05, size=2) * strength * np.array([w, h]))
    shear = float(rng.uniform(-5, 5) * strength)
    x = F.affine(x, angle=angle, translate=[tx, ty], scale=scale, shear=[shear, 0.0],
                 interpolation=F.InterpolationMode.BILINEAR)
    xf = x.float()
    brightness = 1.0 + rng.uniform(-0.15, 0.15) * strength
    contrast = 1.0 + rng.uniform(-0.15, 0.15) * strength
    mean = xf.mean()
    xf = (xf - mean) * contrast + mean * brightness
    return xf.clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


class ClassicAugmentation(Generator):
    """Produces extra images by randomly augmenting real training images of the requested class."""

    name = "aug"

    config_class = AugConfig

    def __init__(self, **config: Any) -> None:
        super().__init__(**to_dict(build(AugConfig, config, "aug")))
        self._images: np.ndarray | None = None
        self._labels: np.ndarray | None = None
        self._hashes: list[str] = []

    def fit(self, train: TrainingSet, workdir: Path | None = None) -> "ClassicAugmentation":
        self.classes = list(train.classes)
        self._images = train.images(self.config["resolution"])
        self._labels = np.asarray(train.labels)
        self._hashes = list(train.hashes) or ["" for _ in range(len(train))]
        return self

    def _sources(self, class_index: int) -> np.ndarray:
        if self._labels is None:
            raise RuntimeError("aug: call fit() or load a saved generator before sampling")
        idx = np.flatnonzero(self._labels == class_index)
        if idx.size == 0:
            raise RuntimeError(f"aug: no training images of class {self.classes[class_index]!r}")
        return np.random.default_rng(class_index).permutation(idx)  # fixed order, cycled

    def source_hashes(self, class_index: int, indices: list[int]) -> list[str]:
        src = self._sources(class_index)
        return [self._hashes[src[i % len(src)]] for i in indices]

    def generate(self, class_index: int, indices: list[int], seeds: list[int], size: int) -> list[np.ndarray]:
        from ..data import resize_square

        src = self._sources(class_index)
        out = []
        for i, s in zip(indices, seeds):
            image = self._images[src[i % len(src)]]
            aug = augment_image(image, np.random.default_rng(s), self.config["strength"])
            out.append(resize_square(aug, size))
        return out

    def save(self, path: Path) -> None:
        from safetensors.numpy import save_file

        from ..atomic import atomic_path, write_json

        super().save(path)
        with atomic_path(Path(path) / "sources.safetensors") as tmp:
            save_file({"images": self._images, "labels": self._labels}, str(tmp))
        write_json(Path(path) / "sources.json", {"hashes": self._hashes})

    def load_state(self, path: Path) -> None:
        import json

        from safetensors.numpy import load_file

        arrays = load_file(str(Path(path) / "sources.safetensors"))
        self._images, self._labels = arrays["images"], arrays["labels"]
        self._hashes = json.loads((Path(path) / "sources.json").read_text())["hashes"]


@register_generator("aug", aliases=("augment", "classic"), description="classic augmentation of real training images (baseline)",
                    config=AugConfig)
def aug(**config) -> ClassicAugmentation:
    """Classic offline augmentation."""
    return ClassicAugmentation(**config)
