"""The tables of a benchmark spec ([data], [matrix], [quality], [stats]) as typed config dataclasses, in one place.

Adding a spec key is adding one ``option(...)`` line to the table's dataclass here: the spec loader, ``--set``,
``ooc-bench list --options`` and the docs pick it up. Generator tables use each generator's own dataclass
(``ooc_bench.generators.generator_config_class``); ``[training]`` and ``[models.X]`` use the classifiers'
``TrainConfig``; ``[stats]`` uses ``matrix/stats.py``'s ``StatsConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import defaults, option
from .stats import StatsConfig

PROTOCOLS = ("add", "replace", "synthetic-only")
SPLIT_POLICIES = ("official", "stratified", "grouped")
THESIS_SEEDS = [7921, 2048, 1337, 9876, 5624]


@dataclass
class DataConfig:
    """``[data]``: where the images are and how they are split."""

    path: str | None = option(None, "dataset folder, .npz or CSV manifest (none or 'demo': the built-in demo)")
    layout: str | None = option(None, "dataset layout (none or 'auto': detected)")
    split: str = option("official", "official: the dataset's own split; stratified; grouped (by group_by)",
                        choices=SPLIT_POLICIES)
    group_by: str | None = option(None, "metadata column that no two splits share (split = 'grouped'), e.g. date")
    val: float = option(0.15, "validation share (new splits; and carved from train when a pre-split set has no val)",
                        low=0.0, high=1.0, high_open=True)
    test: float = option(0.2, "test share (new splits)", low=0.0, high=1.0, high_open=True)
    seed: int = option(0, "split seed")
    image_size: int = option(64, "working size (px) of every stage", low=8)
    datasheet: str | None = option(None, "CSV of per-image metadata (cell type, day ...)")
    skip_bad: bool = option(False, "leave unreadable images out (listed as warnings) instead of stopping")
    accept_folder_labels: bool = option(False, "keep folder labels where the datasheet disagrees")


@dataclass
class MatrixConfig:
    """``[matrix]``: protocols x ratios x seeds."""

    protocols: list[str] = option(["add"], "how synthetic images enter training", choices=PROTOCOLS)
    ratios: list[float] = option([0.0, 0.25, 0.5], "synthetic images per real training image (0: real-only)", low=0.0)
    ratios_by_protocol: dict[str, list[float]] = option({}, "ratios of one protocol, e.g. { synthetic-only = [1.0] }")
    seeds: list[int] = option(list(THESIS_SEEDS), "classifier seeds (the thesis's five by default)")
    sample_seed: int = option(0, "sampling seed of the generators")
    fit_seed: int = option(0, "training seed of the generators")
    generator_seeds: list[int] | None = option(None, "refit each generator per seed, paired with classifier seeds by "
                                                     "position (none: one fit)")


@dataclass
class QualityConfig:
    """``[quality]``: how sample sets are scored (every key but ``enabled`` is part of the score jobs' cache keys)."""

    enabled: bool = option(True, "score every sample set (quality.csv)")
    features: str = option("domain", "feature space: domain (a CNN trained on the train split), inception, dinov2, ...")
    metrics: list[str] = option(["fd", "kid", "prdc", "nearcopy", "class_fidelity"], "metrics to compute (fid = fd)")
    reference: str = option("test", "real split the samples are compared with", choices=("train", "val", "test"))
    floor: str | None = option("val", "held-out real set scored like a generator (the floor)",
                               choices=("val", "train", "none"))
    per_class: bool = option(True, "also one row per class")
    k: int = option(5, "nearest neighbours of precision/recall/density/coverage", low=1)
    subsets: int = option(50, "repeated subsamples for the intervals", low=1)
    subset_fraction: float = option(0.5, "share of the smaller set in each subsample", low=0.0, high=1.0, low_open=True)
    inception_weights: str | None = option(None, "local Inception weights file (torch-fidelity's "
                                                 "weights-inception-2015-12-05-6726825d.pth, or .safetensors)")
    dinov2_weights: str | None = option(None, "local DINOv2 weights file or hub id")
    dinov2_model: str = option("vitl14", "DINOv2 size (features = dinov2); vitl14 as dgm-eval",
                               choices=("vits14", "vitb14", "vitl14", "vitg14"))
    resize_mode: str = option("auto", "how inception/dinov2 resize to their input size; auto = torch-fidelity for "
                              "inception (its FID), pil-bicubic for dinov2 (dgm-eval); clean = clean-fid's",
                              choices=("auto", "torch-fidelity", "clean", "pil-bicubic"))
    domain_model: str = option("cnn", "classifier trained for the domain feature space")
    domain_epochs: int = option(8, "training epochs of the domain network", low=1)
    domain_seed: int = option(0, "training seed of the domain network")
    domain_batch_size: int = option(32, "batch size of the domain network", low=2)
    domain_holdout: float = option(0.15, "share of train held out for the domain network's early stopping",
                                   low=0.0, high=1.0, high_open=True)


#: table name -> its dataclass (``[generators.*]`` and ``[models.*]`` are checked per entry).
SPEC_TABLES: dict[str, type] = {"data": DataConfig, "matrix": MatrixConfig, "quality": QualityConfig,
                                "stats": StatsConfig}


def quality_defaults() -> dict[str, Any]:
    """Every scoring key of ``[quality]`` with its default (``enabled`` is not a scoring setting)."""
    return {k: v for k, v in defaults(QualityConfig).items() if k != "enabled"}


__all__ = ["DataConfig", "MatrixConfig", "QualityConfig", "StatsConfig", "SPEC_TABLES", "PROTOCOLS", "SPLIT_POLICIES",
           "THESIS_SEEDS", "quality_defaults"]
