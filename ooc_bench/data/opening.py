"""Open a dataset with a train/val/test split: a manifest, the dataset's own split (val carved if missing), or a new one."""

from __future__ import annotations

import os

from ..errors import UserInputError
from .layouts import load_dataset
from .records import Dataset
from .split import DEFAULT_VAL, make_split, read_split_manifest


def open_split(data: str | os.PathLike | None, layout: str | None = None, split: str | os.PathLike | None = None,
               seed: int = 0, skip_bad: bool = False, datasheet: str | os.PathLike | None = None,
               accept_folder_labels: bool = False, val: float = DEFAULT_VAL) -> tuple[Dataset, bool]:
    """The dataset with a train/val/test split, and whether this call made that split.

    A pre-split dataset without val (e.g. ``train/`` + ``test/`` folders) keeps its split and gets a stratified,
    seeded validation share carved from train: ``val`` of all images (default 0.15, the ``[data] val`` of
    specs); the note is in ``Dataset.warnings`` and the result is what ``write_split_manifest`` records.

    From ``split`` (a split manifest CSV) when given, else the dataset's own split, else a fresh stratified
    ``make_split(dataset, seed=seed)``. One rule for every command that reads a dataset.
    """
    if split is not None:
        ds = read_split_manifest(split)
    elif data is None:
        raise UserInputError("pass --data PATH (a dataset) or --split-manifest SPLIT.csv (a split manifest)")
    else:
        ds = load_dataset(data, layout=layout, skip_bad=skip_bad, datasheet=str(datasheet) if datasheet else None,
                          accept_folder_labels=accept_folder_labels)
    if ds.has_splits:
        if split is None and val > 0 and not any(r.split == "val" for r in ds.records):
            return make_split(ds, keep_official=True, val=val, seed=seed), False  # train/test only: val from train
        return ds, False
    return make_split(ds, seed=seed, val=val if val > 0 else DEFAULT_VAL), True
