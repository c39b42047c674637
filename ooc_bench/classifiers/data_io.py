"""Train a classifier on a dataset on disk: split it if needed, read uint8 arrays through the image cache, add extra-train images."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import UserInputError
from .registry import model_summary
from .training import TrainConfig, TrainResult, train_classifier


def working_size(config: TrainConfig) -> int:
    """The image size training uses: ``config.img_size`` or the model's default input size."""
    if config.img_size:
        return int(config.img_size)
    return int(model_summary(config.model, pretrained=bool(config.pretrained))["input_size"])


def _load_extra(extra: str | os.PathLike) -> Any:
    """Class folders of extra images, read and checked like a dataset; one class (e.g. synthetic minority images)
    and empty class folders (a generator sampled 0 images of that class) are fine."""
    from ..data import load_dataset

    root = Path(extra)
    if not root.is_dir():
        raise UserInputError(f"--extra-train {extra}: no such folder (expected one subfolder of images per class)")
    return load_dataset(root, layout="folders", one_class_ok=True)


def extra_train_arrays(extra: str | os.PathLike, dataset: Any, size: int, cache: Any = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Additional labelled training images from class folders (e.g. synthetic ones), checked against the held-out
    splits of ``dataset``; returns (images, labels in ``dataset.classes`` order, provenance)."""
    from ..data import ImageCache, check_train_only

    extra_ds = _load_extra(extra)
    unknown = sorted(set(extra_ds.classes) - set(dataset.classes))
    if unknown:
        raise UserInputError(f"--extra-train {extra}: class folder(s) {unknown} are not classes of the dataset "
                             f"({', '.join(dataset.classes)}); rename or remove them")
    check_train_only(extra_ds.records, dataset, "train a classifier on --extra-train images")
    index = dataset.class_index()
    labels = np.array([index[r.label] for r in extra_ds.records], dtype=np.int64)
    images = (cache or ImageCache()).load(extra_ds.records, size)
    counts = {c: int((labels == index[c]).sum()) for c in dataset.classes}
    return images, labels, {"path": str(Path(extra).resolve()), "n": int(len(labels)), "per_class": counts}


def train_on_dataset(data: str | os.PathLike, config: TrainConfig, seed: int = 0, layout: str | None = None,
                     split: str | os.PathLike | None = None, extra_train: str | os.PathLike | None = None,
                     cache: Any = None, progress: Callable[[dict], None] | None = None,
                     skip_bad: bool = False, datasheet: str | os.PathLike | None = None,
                     accept_folder_labels: bool = False) -> TrainResult:
    """Train on the train split (+ ``extra_train``), early-stop on val, evaluate on test; provenance in ``result.extra``."""
    from ..data import ImageCache, manifest_hash, open_split, split_arrays

    cache = cache or ImageCache()
    ds, _ = open_split(data, layout=layout, split=split, seed=seed, skip_bad=skip_bad, datasheet=datasheet,
                       accept_folder_labels=accept_folder_labels)
    size = working_size(config)
    x_tr, y_tr = split_arrays(ds, "train", size, cache)
    x_va, y_va = split_arrays(ds, "val", size, cache)
    x_te, y_te = split_arrays(ds, "test", size, cache)
    extra_info = None
    if extra_train is not None:
        x_ex, y_ex, extra_info = extra_train_arrays(extra_train, ds, size, cache)
        x_tr, y_tr = np.concatenate([x_tr, x_ex]), np.concatenate([y_tr, y_ex])
    result = train_classifier((x_tr, y_tr), (x_va, y_va), (x_te, y_te), list(ds.classes), config, seed, progress)
    result.extra.update({"data": str(Path(data).resolve()), "layout": ds.layout,
                         "split_manifest": str(Path(split).resolve()) if split else None,
                         "split_hash": manifest_hash(ds), "extra_train": extra_info,
                         "majority_class_accuracy": float(np.bincount(y_te).max() / len(y_te))})
    return result
