"""`folder`: images made elsewhere (e.g. in the AUTOMATIC1111 web UI) in ``DIR/<class>/`` registered as a generator's output."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import build, option
from ..errors import UserInputError
from .base import SAMPLE_MANIFEST, Generator, SampleSet, TrainingSet
from .registry import register_generator

FILES_JSON = "files.json"


@dataclass
class FolderConfig:
    """Settings of the `folder` generator."""

    path: str | None = option(None, "DIR with one sub-folder of images per class (required)")
    resize: str = option("crop", "how non-square images become square", choices=("crop", "stretch"))

    def validate(self) -> None:
        if not self.path:
            raise UserInputError("generator 'folder' needs path=DIR (CLI: --path DIR), a folder with one "
                                 "sub-folder of images per class")


class FolderImages(Generator):
    """Serves the images of ``path/<class>/`` (sorted by relative path) as synthetic images of that class.

    ``fit`` checks that the folder's classes are exactly the training set's and records every image's
    content hash; ``sample(n)`` writes the first ``n`` images of each class (resized to ``size``) into
    the standard layout with a manifest. When the folder holds an ooc-bench ``manifest.csv`` (another
    generator's output folder), exactly the images it lists are used and its ``source_hash`` column is
    carried over. Nothing is fitted: the training images
    are never read.
    """

    name = "folder"

    config_class = FolderConfig

    def __init__(self, **config: Any) -> None:
        c = build(FolderConfig, config, "folder")
        super().__init__(path=str(Path(str(c.path)).expanduser().resolve()), resize=c.resize)
        self._files: dict[str, list[dict[str, str]]] = {}

    def _scan(self, listed: list[dict[str, str]]) -> dict[str, list[Path]]:
        """Image files per class: the rows of ``manifest.csv`` when the folder has one, else ``root/<class>/*``."""
        from ..data.decode import IMAGE_EXTENSIONS, list_images

        root = Path(self.config["path"])
        if listed:  # an ooc-bench sample folder: its manifest says which files are the images (not generator/ ...)
            found: dict[str, list[Path]] = {}
            for r in listed:
                found.setdefault(r["label"], []).append(root / r["path"])
            missing = [str(p) for files in found.values() for p in files if not p.is_file()]
            if missing:
                raise UserInputError(f"--path {root}: {len(missing)} image(s) listed in {SAMPLE_MANIFEST} are missing "
                                     f"(first: {missing[0]}); re-sample or delete the manifest")
            return {c: sorted(v) for c, v in sorted(found.items())}
        found = {d.name: list_images(d) for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")}
        if not found:
            raise UserInputError(f"--path {root}: no class sub-folders; expected {root}/<class>/<image files>")
        empty = [c for c, files in found.items() if not files]
        if empty:
            raise UserInputError(f"--path {root}: class folder(s) {', '.join(empty)} hold no images "
                                 f"({', '.join(IMAGE_EXTENSIONS)}); fill or remove them")
        return found

    def _manifest_rows(self) -> list[dict[str, str]]:
        """The rows of ``path/manifest.csv`` (another generator's output folder), or [] when there is none."""
        root = Path(self.config["path"])
        if not root.is_dir():
            raise UserInputError(f"--path {root}: no such folder; pass the folder holding one sub-folder of "
                                 "generated images per class")
        if not (root / SAMPLE_MANIFEST).is_file():
            return []
        rows = SampleSet.load(root).rows
        if rows and not {"path", "label"} <= set(rows[0]):
            raise UserInputError(f"{root / SAMPLE_MANIFEST}: not an ooc-bench sample manifest (needs path and label "
                                 "columns); rename or remove it")
        return rows

    def fit(self, train: TrainingSet, workdir: Path | None = None) -> "FolderImages":
        from ..data.filehash import hash_files

        listed = self._manifest_rows()  # read once: it names the images and carries their source hashes
        found = self._scan(listed)
        want, have = sorted(train.classes), sorted(found)
        if want != have:
            missing = sorted(set(want) - set(have))
            extra = sorted(set(have) - set(want))
            parts = ([f"missing class folder(s): {', '.join(missing)}"] if missing else []) + \
                    ([f"unknown class folder(s): {', '.join(extra)}"] if extra else [])
            raise UserInputError(f"--path {self.config['path']}: classes do not match the training set "
                                 f"({', '.join(want)}); " + "; ".join(parts))
        root = Path(self.config["path"])
        sources = {r["path"]: r.get("source_hash") or "" for r in listed}
        self.classes = list(train.classes)
        self._files = {}
        for cls in self.classes:
            files = found[cls]
            hashes = hash_files([str(f) for f in files])
            bad = [str(f) for f, h in zip(files, hashes) if h is None]
            if bad:
                raise UserInputError(f"--path: cannot read {bad[0]} ({len(bad)} unreadable file(s)); remove them")
            self._files[cls] = [{"path": f.relative_to(root).as_posix(), "hash": h,
                                 "source_hash": sources.get(f.relative_to(root).as_posix(), "")}
                                for f, h in zip(files, hashes)]
        return self

    def available(self) -> dict[str, int]:
        """Number of images per class."""
        return {c: len(v) for c, v in self._files.items()}

    def _entries(self, class_index: int, indices: list[int]) -> list[dict[str, str]]:
        if not self._files:
            raise RuntimeError("folder: call fit() or load a saved generator before sampling")
        cls = self.classes[class_index]
        files = self._files[cls]
        if indices and max(indices) >= len(files):
            raise UserInputError(f"--path {self.config['path']}: class {cls!r} has {len(files)} images but "
                                 f"{max(indices) + 1} were requested; ask for fewer (--per-class) or add images")
        return [files[i] for i in indices]

    def source_hashes(self, class_index: int, indices: list[int]) -> list[str]:
        return [e["source_hash"] for e in self._entries(class_index, indices)]

    def generate(self, class_index: int, indices: list[int], seeds: list[int], size: int) -> list[np.ndarray]:
        from PIL import Image

        from ..data.decode import decode_image, resize_square
        from ..hashing import file_hash

        out = []
        for e in self._entries(class_index, indices):
            path = Path(self.config["path"]) / e["path"]
            if not path.is_file() or file_hash(path) != e["hash"]:
                raise UserInputError(f"{path}: missing or changed since the folder was registered; re-run "
                                     "`ooc-bench generate --generator folder`")
            image = decode_image(str(path))
            if self.config["resize"] == "stretch":
                im = image if image.shape[:2] == (size, size) else np.asarray(
                    Image.fromarray(image).resize((size, size), Image.BICUBIC))
            else:
                im = resize_square(image, size)
            out.append(np.ascontiguousarray(im))
        return out

    def save(self, path: Path) -> None:
        from ..atomic import write_json

        super().save(path)
        write_json(Path(path) / FILES_JSON, self._files)

    def load_state(self, path: Path) -> None:
        f = Path(path) / FILES_JSON
        if not f.is_file():
            raise UserInputError(f"saved folder generator {path}: {FILES_JSON} is missing")
        self._files = json.loads(f.read_text())

    def describe(self) -> dict[str, Any]:
        """Images per class, for summaries."""
        return {"path": self.config["path"], "images": self.available()}


@register_generator("folder", aliases=("dir", "external"),
                    description="images generated elsewhere (DIR/<class>/...), registered as a generator's output",
                    config=FolderConfig)
def folder(**config: Any) -> FolderImages:
    """External images in DIR/<class>/."""
    return FolderImages(**config)
