"""CLI command `score`: FID, KID, precision/recall/density/coverage and near-copy share of a synthetic folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer

from ..matrix.quality import DEFAULT_WORKING_SIZE, QUALITY_DEFAULTS


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
    data: Optional[Path] = typer.Option(None, "--data", help="Real dataset (any layout load_dataset reads, or a split manifest)."),
    real_old: Optional[Path] = typer.Option(None, "--real", hidden=True, help="Deprecated: --data."),
    fake: Path = typer.Option(..., "--fake", help="Synthetic images: a sample folder (manifest.csv), class folders, or a flat folder."),
    layout: Optional[str] = typer.Option(None, "--layout", help="Layout of --data (detected when omitted)."),
    split_name: Optional[str] = typer.Option(None, "--split-name", help="Real reference split: test (default), val or train."),
    split_old: Optional[str] = typer.Option(None, "--split", hidden=True, help="Deprecated: --split-name."),
    metrics: str = typer.Option(",".join(QUALITY_DEFAULTS["metrics"]), "--metrics",
                                help="Comma-separated: fd (= fid), kid, prdc, nearcopy, class_fidelity, fd_inf."),
    features: str = typer.Option(QUALITY_DEFAULTS["features"], "--features", help="Feature space: domain, inception or dinov2."),
    inception_weights: Optional[Path] = typer.Option(None, "--inception-weights", help="Local torch-fidelity InceptionV3 weights (.pth or .safetensors)."),
    dinov2_weights: Optional[str] = typer.Option(None, "--dinov2-weights", help="DINOv2 weights: a local file (timm or original format) or a Hugging Face hub id."),
    dinov2_model: Optional[str] = typer.Option(None, "--dinov2-model", help="DINOv2 size: vits14, vitb14, vitl14 (default, as dgm-eval) or vitg14."),
    resize_mode: str = typer.Option("auto", "--resize-mode", help="inception/dinov2 resize: auto (torch-fidelity for inception, pil-bicubic for dinov2), torch-fidelity, clean (clean-fid) or pil-bicubic."),
    domain_model: str = typer.Option(QUALITY_DEFAULTS["domain_model"], "--domain-model", help="Classifier behind the domain space and class fidelity."),
    domain_epochs: int = typer.Option(QUALITY_DEFAULTS["domain_epochs"], "--domain-epochs", help="Training epochs of the domain classifier."),
    working_size: Optional[int] = typer.Option(None, "--working-size", help=f"Working size in px: real and synthetic images are resized to this first (default {DEFAULT_WORKING_SIZE})."),
    size_old: Optional[int] = typer.Option(None, "--size", hidden=True, help="Deprecated: --working-size."),
    per_class: bool = typer.Option(True, "--per-class/--no-per-class", help="Also score each class against the same real class."),
    k: int = typer.Option(QUALITY_DEFAULTS["k"], "--k", help="Neighbours for precision/recall/density/coverage."),
    subsets: int = typer.Option(QUALITY_DEFAULTS["subsets"], "--subsets", help="Matched subsets (drawn without replacement) behind every distance and its interval."),
    subset_fraction: float = typer.Option(QUALITY_DEFAULTS["subset_fraction"], "--subset-fraction",
                                          help="Subset size per class: this share of the smaller of the real and synthetic sets."),
    floor: str = typer.Option("none", "--floor", help="Also score a held-out real split (val or train) at the same n: the floor."),
    seed: int = typer.Option(0, "--seed", help="Seed for the subsets and the domain classifier."),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Reuse cached features (<cache>/features) and domain networks (<cache>/domain)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the rows to FILE.json or FILE.csv."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Leave unreadable real images out (listed) instead of stopping."),
    datasheet: Optional[Path] = typer.Option(None, "--datasheet", help="OOC datasheet (.xlsx or .csv) to join."),
    accept_folder_labels: bool = typer.Option(False, "--accept-folder-labels", help="Keep folder labels when the datasheet disagrees."),
) -> None:
    """Score synthetic images against a real split: FD/FID, KID, PRDC (with intervals), near-copy share, class fidelity."""
    from ..atomic import check_writable
    from ..errors import UserInputError as _InputError
    from .options import alias

    real = alias(data, real_old, "--data", "--real")
    if real is None:
        raise _InputError("no real dataset: pass --data PATH (a dataset or a split manifest)")
    split = alias(split_name, split_old, "--split-name", "--split", default="test")
    size = alias(working_size, size_old, "--working-size", "--size", default=DEFAULT_WORKING_SIZE)
    if out is not None:
        check_writable(out, "--out")  # before any feature is extracted
    import tempfile

    from rich.console import Console

    from ..data import ImageCache, RESIZE_POLICY, manifest_hash, open_split, split_arrays
    from ..errors import UserInputError
    from ..hashing import config_hash
    from ..matrix.quality import (build_extractor, cached_domain, class_counts, matched_subset_sizes, needs_domain,
                                  quality_settings, score_sets)
    from ..metrics import FeatureCache, rows_table, write_rows

    console = Console()
    if out is not None and out.suffix.lower() not in (".json", ".csv"):
        raise UserInputError(f"--out {out}: must end in .json or .csv")
    if split not in ("train", "val", "test"):
        raise UserInputError(f"--split-name {split!r}: choose test, val or train")
    from ..metrics.extractors import RESIZE_MODES

    if resize_mode != "auto" and resize_mode not in RESIZE_MODES:
        raise UserInputError(f"--resize-mode {resize_mode!r}: choose auto, {', '.join(RESIZE_MODES)}")
    if floor not in ("none", "val", "train") or floor == split:
        raise UserInputError(f"--floor {floor!r}: choose val, train or none (not the --split-name {split} itself)")
    q = quality_settings({"features": features, "metrics": metrics, "per_class": per_class, "k": k, "subsets": subsets,
                          "subset_fraction": subset_fraction, "domain_model": domain_model, "domain_epochs": domain_epochs,
                          "domain_seed": seed, "floor": floor, "reference": split,
                          "inception_weights": str(inception_weights) if inception_weights else None,
                          "dinov2_weights": str(dinov2_weights) if dinov2_weights else None, "dinov2_model": dinov2_model,
                          "resize_mode": resize_mode})
    wanted = q["metrics"]
    ds, _ = open_split(real, layout=layout, seed=seed, skip_bad=skip_bad, datasheet=datasheet,
                       accept_folder_labels=accept_folder_labels)
    images_cache = ImageCache()
    xr, yr = split_arrays(ds, split, size, images_cache)
    domain_needed = needs_domain(q)
    need_train = "nearcopy" in wanted or domain_needed or floor == "train"
    if not need_train:
        xt, yt = None, None
    elif split == "train":  # the same arrays: score() then extracts the training split once
        xt, yt = xr, yr
    else:
        xt, yt = split_arrays(ds, "train", size, images_cache)
    train_hashes = [r.hash for r in ds.split("train")] if need_train else None
    xf, yf, sources, fake_key = _read_fake(fake, ds.classes, size)
    heldout = None
    if "nearcopy" in wanted and split != "val" and len(ds.split("val")):
        heldout = split_arrays(ds, "val", size, images_cache)  # calibrates the near-copy threshold

    # the domain network: trained once on the train split only, saved (safetensors) and reused by later calls
    domain = None
    if domain_needed:
        root = None if cache else Path(tempfile.mkdtemp(prefix="ooc-domain-")) / "net"
        domain = cached_domain((xt, yt), ds.classes, q, size, root=root)
    extractor = build_extractor(q, domain)
    real_key = config_hash([manifest_hash(ds), split, size, RESIZE_POLICY])
    pools = [class_counts(yr, ds.classes)]
    floor_set = None
    if floor != "none":
        floor_set = (xt, yt) if floor == "train" else split_arrays(ds, "val", size, images_cache)
        pools.append(class_counts(floor_set[1], ds.classes))
    if yf is not None:
        pools.append(class_counts(yf, ds.classes))
    subset_size = matched_subset_sizes(q, *pools) if yf is not None else None
    fcache = FeatureCache() if cache else None
    common = dict(classes=ds.classes, q=q, extractor=extractor, domain=domain, size=size, subset_size=subset_size,
                  reference=split, cache=fcache, real_key=real_key, seed=seed)
    rows = score_sets((xr, yr), (xf, yf), train_real=(xt, yt) if xt is not None else None, fake_sources=sources,
                      train_hashes=train_hashes if sources else None, fake_key=fake_key, heldout_real=heldout, **common)
    for r in rows:
        r["set"] = "synthetic"
    if floor_set is not None:
        floor_rows = score_sets((xr, yr), floor_set, metrics=[m for m in wanted if m != "nearcopy"],
                                fake_key=config_hash([manifest_hash(ds), floor, size, RESIZE_POLICY]), **common)
        rows += [{**r, "set": f"floor (real {floor} split)"} for r in floor_rows]
    title = (f"{fake} vs {split} split of {real} — {extractor.provenance.get('feature_space', extractor.name)} features, "
             f"weights {rows[0]['weights'] if rows else extractor.weights}, id {extractor.id()}; distances: mean "
             f"[95 % interval] over {q['subsets']} matched subsets")
    console.print(rows_table([r for r in rows if r["set"] == "synthetic"], title=title))
    if floor_set is not None:
        console.print(rows_table([r for r in rows if r["set"] != "synthetic"],
                                 title=f"floor: the real {floor} split vs the {split} split at the same n"))
    if out is not None:
        meta = {"real": str(real), "split": split, "fake": str(fake), "size": size, "k": k, "seed": seed,
                "quality": q, "extractor": extractor.provenance,
                "domain": domain.provenance if domain is not None else None}
        write_rows(out, rows, meta)
        console.print(f"wrote {len(rows)} rows to {out}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("score")(score_command)
