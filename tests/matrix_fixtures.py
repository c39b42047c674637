"""Shared helpers for the benchmark-matrix tests: a tiny pre-split dataset of real digit images and a tiny spec."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

TINY_SPEC = """
name = "tiny"
[data]
path = "{data}"
split = "official"
image_size = 16
[generators.aug]
[models.cnn]
pretrained = false
epochs = {epochs}
batch_size = 32
patience = 10
[matrix]
protocols = ["add"]
ratios = [0, 0.5, 1.0]
seeds = [1, 2]
[quality]
features = "domain"
domain_epochs = 1
metrics = ["fid", "kid", "prdc", "nearcopy"]
"""


def make_digits_dataset(root: Path, per_class_split: dict[str, int] | None = None) -> Path:
    """scikit-learn's digits 3 vs 8 (real handwritten images), upscaled to 24 px, as ROOT/{train,val,test}/<class>/."""
    from sklearn.datasets import load_digits

    per = per_class_split or {"train": 40, "val": 12, "test": 20}
    d = load_digits()
    classes = {"three": 3, "eight": 8}
    for name, digit in classes.items():
        imgs = d.images[d.target == digit]
        start = 0
        for split, n in per.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                a = (imgs[start + i] / 16.0 * 255).astype(np.uint8)
                Image.fromarray(a).resize((24, 24), Image.BILINEAR).save(folder / f"{name}_{start + i:03d}.png")
            start += n
    return root


def write_spec(path: Path, data: Path, epochs: int = 2) -> Path:
    path.write_text(TINY_SPEC.format(data=str(data).replace("\\", "/"), epochs=epochs))
    return path
