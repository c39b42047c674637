"""The one small interface every generator implements, the training-set view it receives, and its sample manifest."""

from __future__ import annotations

import abc
import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from ..atomic import write_json, write_text
from ..data.training import TrainingSet  # noqa: F401 - the training-set view lives in the data layer (re-exported)
from ..hashing import config_hash

SAMPLE_MANIFEST = "manifest.csv"
SAMPLE_COLUMNS = ["path", "label", "seed", "generator", "config_hash", "source_hash", "hash"]


def per_image_seed(seed: int, class_index: int, index: int) -> int:
    """The seed of synthetic image ``index`` of class ``class_index``: sampling more images gives a superset."""
    return int(np.random.SeedSequence([seed, class_index, index]).generate_state(1)[0])


class Generator(abc.ABC):
    """A synthetic-image generator: fit on the training split, save/load, sample N images per class.

    Subclasses set ``name`` (the registry name) and keep every setting in ``self.config`` (JSON-able),
    which is hashed into ``config_hash`` for caching and provenance.

    Sampling contract: image ``i`` of class ``c`` is drawn with ``per_image_seed(seed, c, i)`` so that
    ``sample(n=10)`` equals the first 10 images of ``sample(n=20)`` (nested subsets across ratios).
    """

    name: ClassVar[str] = "generator"
    config_class: ClassVar[type | None] = None  # the settings dataclass (fields from ooc_bench.config.option)

    def __init__(self, **config: Any) -> None:
        self.config: dict[str, Any] = dict(config)
        self.classes: list[str] = []

    @property
    def config_hash(self) -> str:
        """Hash of the generator name and config, without ``runtime`` options (device, progress output, ...)."""
        from ..config import runtime_keys

        skip = runtime_keys(self.config_class) if self.config_class is not None else set()
        return config_hash({"generator": self.name, **{k: v for k, v in self.config.items() if k not in skip}})

    @abc.abstractmethod
    def fit(self, train: TrainingSet, workdir: Path | None = None) -> "Generator":
        """Fit on the training set (``workdir`` holds checkpoints and sample grids, for resume)."""

    @abc.abstractmethod
    def generate(self, class_index: int, indices: list[int], seeds: list[int], size: int) -> list[np.ndarray]:
        """Return one uint8 (size, size, 3) image per output index of class ``class_index``.

        ``seeds[k]`` is the seed of output ``indices[k]``; generators that transform real images
        (aug, img2img) use the index to choose the source image.
        """

    def source_hashes(self, class_index: int, indices: list[int]) -> list[str]:
        """For generators that transform a real image (img2img, aug): the source image hash per output index."""
        return ["" for _ in indices]

    def save(self, path: Path) -> None:
        """Write ``config.json`` (and weights, in subclasses) into folder ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_json(path / "config.json", {"generator": self.name, "classes": self.classes, "config": self.config})

    def load_state(self, path: Path) -> None:
        """Restore weights saved by :meth:`save` (subclasses with weights override)."""

    def sample(self, n_per_class: int | dict[str, int], out_dir: Path, seed: int, size: int,
               batch_size: int = 16, progress: Callable[[int], None] | None = None) -> "SampleSet":
        """Write ``n`` PNGs per class into ``out_dir/<class>/`` plus ``manifest.csv``; return the SampleSet."""
        from PIL import Image

        from ..atomic import atomic_open
        from ..hashing import bytes_hash

        out_dir = Path(out_dir)
        counts = n_per_class if isinstance(n_per_class, dict) else {c: n_per_class for c in self.classes}
        rows: list[dict[str, Any]] = []
        config_hash_ = self.config_hash  # a property that hashes the whole config: once, not per image
        for ci, cls_name in enumerate(self.classes):
            n = int(counts.get(cls_name, 0))
            (out_dir / cls_name).mkdir(parents=True, exist_ok=True)
            for start in range(0, n, batch_size):
                idx = list(range(start, min(n, start + batch_size)))
                seeds = [per_image_seed(seed, ci, i) for i in idx]
                images = self.generate(ci, idx, seeds, size)
                sources = self.source_hashes(ci, idx)
                for i, s, im, src in zip(idx, seeds, images, sources):
                    rel = f"{cls_name}/{self.name}_{ci}_{i:06d}.png"
                    buf = io.BytesIO()  # encode once in memory: hash these bytes, no re-read of the file
                    Image.fromarray(np.asarray(im, dtype=np.uint8)).save(buf, format="PNG")
                    png = buf.getvalue()
                    with atomic_open(out_dir / rel, "wb") as fh:
                        fh.write(png)
                    rows.append({"path": rel, "label": cls_name, "seed": s, "generator": self.name,
                                 "config_hash": config_hash_, "source_hash": src, "hash": bytes_hash(png)})
                if progress:
                    progress(len(idx))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=SAMPLE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text(out_dir / SAMPLE_MANIFEST, buf.getvalue())
        return SampleSet.load(out_dir)


@dataclass
class SampleSet:
    """A folder of synthetic images ``ROOT/<class>/*.png`` described by ``ROOT/manifest.csv``."""

    root: Path
    rows: list[dict[str, str]]

    @classmethod
    def load(cls, root: Path) -> "SampleSet":
        root = Path(root)
        with open(root / SAMPLE_MANIFEST, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        return cls(root=root, rows=rows)

    @property
    def classes(self) -> list[str]:
        return sorted({r["label"] for r in self.rows})

    def paths(self, label: str | None = None, limit: int | None = None) -> list[Path]:
        """Image paths (of one class, the first ``limit`` in manifest order when given)."""
        rows = [r for r in self.rows if label is None or r["label"] == label]
        return [self.root / r["path"] for r in rows[:limit]]

    def content_hash(self) -> str:
        """Hash of the manifest's image hashes: identifies the sample set's content."""
        return config_hash(sorted((r["path"], r["hash"]) for r in self.rows))


def read_generator_config(path: Path) -> dict[str, Any]:
    """The ``config.json`` that :meth:`Generator.save` wrote."""
    return json.loads((Path(path) / "config.json").read_text())
