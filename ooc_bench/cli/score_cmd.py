"""CLI command `score`: FID, KID, precision/recall/density/coverage and near-copy share of a synthetic folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer


def _read_fake(fake: Path, classes: list[str], size: int) -> tuple[np.ndarray, np.ndarray | None, list[str] | None, str | None]:
    """Images, labels (None for a flat folder), per-image source hashes and a content key of a synthetic folder."""
    from ..data.decode import RESIZE_POLICY, decode_resized, list_images
    from ..errors import UserInputError
    from ..generators.base import SAMPLE_MANIFEST, SampleSet
    from ..hashing import config_hash

    if not fake.is_dir():
        raise UserInputError(f"--fake {fake}: no such folder")
    sources: list[str] | None = None
    key: str | None = None
    if (fake / SAMPLE_MANIFEST).is_file():
        sample_set = SampleSet.load(fake)
        unknown = sorted(set(sample_set.classes) - set(classes))
        if unknown:
            raise UserInputError(f"--fake {fake}: classes {', '.join(unknown)} in {SAMPLE_MANIFEST} are not in the real "
                                 f"dataset ({', '.join(classes)})")
        paths = [fake / r["path"] for r in sample_set.rows]
        labels: np.ndarray | None = np.array([classes.index(r["label"]) for r in sample_set.rows], dtype=np.int64)
        sources = [r.get("source_hash", "") or "" for r in sample_set.rows]
        if not any(sources):
            sources = None
        key = config_hash([sample_set.content_hash(), size, RESIZE_POLICY])
    else:
        subdirs = sorted(p for p in fake.iterdir() if p.is_dir() and not p.name.startswith("."))
        class_dirs = [p for p in subdirs if p.name in classes]
        if class_dirs:
            other = [p.name for p in subdirs if p.name not in classes]
            if other:
                raise UserInputError(f"--fake {fake}: folders {', '.join(other)} are not classes of the real dataset "
                                     f"({', '.join(classes)}); rename them or pass a flat folder")
            paths, lab = [], []
            for p in class_dirs:
                found = list_images(p)
                paths += found
                lab += [classes.index(p.name)] * len(found)
            labels = np.array(lab, dtype=np.int64)
        else:
            paths, labels = list_images(fake), None
    if not paths:
        raise UserInputError(f"--fake {fake}: no images found (a folder of class folders or a flat folder of images)")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UserInputError(f"--fake {fake}: {len(missing)} images listed in {SAMPLE_MANIFEST} are missing, e.g. {missing[0]}")
    images = np.stack([decode_resized(str(p), size) for p in paths])
    return images, labels, sources, key


def score_command(
    real: Path = typer.Option(..., "--real", help="Real dataset (any layout load_dataset reads, or a split manifest)."),
    fake: Path = typer.Option(..., "--fake", help="Synthetic images: a sample folder (manifest.csv), class folders, or a flat folder."),
    layout: Optional[str] = typer.Option(None, "--layout", help="Layout of --real (detected when omitted)."),
    split: str = typer.Option("test", "--split", help="Real reference split: test (default), val or train."),
    metrics: str = typer.Option("fid,kid,prdc,nearcopy", "--metrics", help="Comma-separated: fid,kid,prdc,nearcopy."),
    features: str = typer.Option("inception", "--features", help="Feature extractor: inception, domain or dinov2."),
    inception_weights: Optional[Path] = typer.Option(None, "--inception-weights", help="Local torch-fidelity InceptionV3 weights (.pth or .safetensors)."),
    dinov2_weights: Optional[Path] = typer.Option(None, "--dinov2-weights", help="Local timm DINOv2 weights (.safetensors or .pth)."),
    dinov2_model: str = typer.Option("vit_small_patch14_dinov2", "--dinov2-model", help="timm DINOv2 architecture."),
    domain_model: str = typer.Option("cnn", "--domain-model", help="Classifier behind --features domain."),
    domain_epochs: int = typer.Option(10, "--domain-epochs", help="Training epochs of the domain classifier."),
    size: int = typer.Option(128, "--size", help="Working resolution: real and synthetic images are resized to this first."),
    per_class: bool = typer.Option(True, "--per-class/--no-per-class", help="Also score each class against the same real class."),
    k: int = typer.Option(5, "--k", help="Neighbours for precision/recall/density/coverage."),
    seed: int = typer.Option(0, "--seed", help="Seed for KID subsets and the domain classifier."),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Reuse cached features (<cache>/features)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the rows to FILE.json or FILE.csv."),
) -> None:
    """Score synthetic images against a real split: FID, KID, PRDC and near-copy share, overall and per class."""
    from rich.console import Console

    from ..data import ImageCache, RESIZE_POLICY, manifest_hash, open_split, split_arrays
    from ..errors import UserInputError
    from ..hashing import config_hash
    from ..metrics import FeatureCache, create_extractor, parse_metrics, resolve_extractor_name, rows_table, score, write_rows

    console = Console()
    wanted = parse_metrics(metrics)
    name = resolve_extractor_name(features)
    if out is not None and out.suffix.lower() not in (".json", ".csv"):
        raise UserInputError(f"--out {out}: must end in .json or .csv")
    if split not in ("train", "val", "test"):
        raise UserInputError(f"--split {split!r}: choose test, val or train")
    ds, _ = open_split(real, layout=layout, seed=seed)
    images_cache = ImageCache()
    xr, yr = split_arrays(ds, split, size, images_cache)
    need_train = "nearcopy" in wanted or name == "domain"
    if not need_train:
        xt, yt = None, None
    elif split == "train":  # the same arrays: score() then extracts the training split once
        xt, yt = xr, yr
    else:
        xt, yt = split_arrays(ds, "train", size, images_cache)
    train_hashes = [r.hash for r in ds.split("train")] if need_train else None
    xf, yf, sources, fake_key = _read_fake(fake, ds.classes, size)

    kw: dict[str, Any] = {}
    if name == "inception":
        kw = {"weights": str(inception_weights) if inception_weights else None}
    elif name == "dinov2":
        kw = {"model": dinov2_model, "weights": str(dinov2_weights) if dinov2_weights else None}
    else:
        kw = {"train": (xt, yt), "classes": ds.classes, "seed": seed, "model": domain_model,
              "epochs": domain_epochs, "img_size": size}
    extractor = create_extractor(name, **kw)
    real_key = config_hash([manifest_hash(ds), split, size, RESIZE_POLICY])
    rows = score((xr, yr), (xf, yf), ds.classes, extractor, metrics=wanted, per_class=per_class,
                 train_real=(xt, yt) if xt is not None else None, fake_sources=sources,
                 train_hashes=train_hashes if sources else None, k=k, cache=FeatureCache() if cache else None,
                 real_key=real_key, fake_key=fake_key, seed=seed)
    title = (f"{fake} vs {split} split of {real} — {extractor.name} features, weights {extractor.weights}, "
             f"id {extractor.id()}")
    console.print(rows_table(rows, title=title))
    if out is not None:
        meta = {"real": str(real), "split": split, "fake": str(fake), "size": size, "k": k, "seed": seed,
                "extractor": extractor.provenance}
        write_rows(out, rows, meta)
        console.print(f"wrote {len(rows)} rows to {out}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("score")(score_command)
