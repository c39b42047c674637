"""The in-memory description of a dataset: one ImageRecord per image, grouped in a Dataset."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ImageRecord:
    """One image: where it is, its class, its split and group, its content hash and free-form metadata.

    ``path`` is a file path, or ``FILE.npz#KEY[INDEX]`` for an image stored inside an array file.
    ``hash`` is the sha256 (truncated) of the file bytes (of the pixel array for .npz entries).
    """

    path: str
    label: str
    hash: str
    split: str | None = None
    group: str | None = None
    metadata: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class Dataset:
    """A labelled image collection as found on disk, with the problems seen while reading it."""

    root: Path
    layout: str
    classes: list[str]
    records: list[ImageRecord]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # informational findings (ignored files, shared dates ...)

    def split(self, name: str) -> list[ImageRecord]:
        """Records of one split ('train', 'val' or 'test')."""
        return [r for r in self.records if r.split == name]

    @property
    def has_splits(self) -> bool:
        """True when every record already carries a split (a pre-split layout or a split manifest)."""
        return bool(self.records) and all(r.split in SPLITS for r in self.records)

    def class_index(self) -> dict[str, int]:
        """Class name -> integer label, in the dataset's (sorted) class order."""
        return {c: i for i, c in enumerate(self.classes)}
