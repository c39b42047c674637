"""The one scoring entry point of `ooc-bench score` and the matrix: quality defaults, the run's domain network, scoring.

The domain network is trained here (above the metrics layer, which only receives it through the ``Embedder``
interface): once per run, on the real **train** split only (a stratified share of train held out for early
stopping; val and test never seen), saved as ``model.safetensors``; its sha256 is part of the extractor id.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserInputError
from ..hashing import array_hash, config_hash
from .spec_config import quality_defaults

QUALITY_DEFAULTS: dict[str, Any] = quality_defaults()  # every [quality] key: QualityConfig in matrix/spec_config.py
DOMAIN_FILE = "model.safetensors"
DEFAULT_WORKING_SIZE = 64  # the spec's default [data] image_size: `ooc-bench score --size` uses the same


def quality_settings(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """QUALITY_DEFAULTS updated with ``overrides`` (``enabled`` dropped; metric names normalised: fid -> fd)."""
    from ..metrics import parse_metrics

    q = {**QUALITY_DEFAULTS, **{k: v for k, v in (overrides or {}).items() if k != "enabled"}}
    q["metrics"] = parse_metrics(q["metrics"])
    if q.get("floor") not in ("val", "train", None, "none"):
        raise UserInputError(f"[quality] floor: choose val (held-out real images, default), train or none, got {q['floor']!r}")
    if q.get("floor") == q.get("reference"):
        raise UserInputError(f"[quality] floor = {q['floor']!r} is also the reference split; the floor must be another real set")
    if int(q["subsets"]) < 1 or not 0 < float(q["subset_fraction"]) <= 1:
        raise UserInputError("[quality] subsets must be >= 1 and subset_fraction in (0, 1]")
    return q


def needs_domain(q: dict[str, Any]) -> bool:
    """Whether scoring needs the domain network: as feature space, or as the judge of class fidelity."""
    from ..metrics import resolve_extractor_name

    return resolve_extractor_name(q["features"]) == "domain" or "class_fidelity" in q["metrics"]


def domain_params(q: dict[str, Any], train_key: str, size: int) -> dict[str, Any]:
    """Everything that defines the domain network (its job key hashes exactly this)."""
    return {"model": q["domain_model"], "epochs": int(q["domain_epochs"]), "seed": int(q["domain_seed"]),
            "batch_size": int(q["domain_batch_size"]), "holdout": float(q["domain_holdout"]), "img_size": int(size),
            "train_key": train_key}


def holdout_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (fit, early-stopping hold-out) indices of the training split; classes with <= 2 images stay whole."""
    rng = np.random.default_rng(seed)
    hold = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        hold.extend(idx[:int(round(len(idx) * fraction)) if len(idx) > 2 else 0].tolist())
    mask = np.zeros(len(y), bool)
    mask[hold] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def train_domain_network(train: tuple[np.ndarray, np.ndarray], classes: list[str], params: dict[str, Any],
                         out_dir: str | Path, device: str = "auto") -> dict[str, Any]:
    """Train the domain classifier on the real train split and save it to ``out_dir`` (atomically, as a folder).

    Writes ``model.safetensors``, ``model_config.json``, ``record.json`` (the classifier's) and ``domain.json``
    (``params``, train hash, weights sha, hold-out accuracy); returns the content of ``domain.json``.
    """
    import tempfile

    from ..atomic import write_json
    from ..classifiers import TrainConfig, train_classifier
    from ..metrics.domain import weights_hash
    from .stages import commit_dir

    x, y = np.asarray(train[0]), np.asarray(train[1], np.int64)
    if len(x) < 4 or len(x) != len(y):
        raise UserInputError(f"the domain network needs >= 4 labelled training images (got {len(x)} images, {len(y)} labels)")
    tr, ho = holdout_split(y, float(params["holdout"]), int(params["seed"]))
    cfg = TrainConfig(model=params["model"], epochs=int(params["epochs"]), img_size=int(params["img_size"]),
                      batch_size=int(params["batch_size"]), pretrained=False, device=device)
    val = (x[ho], y[ho]) if len(ho) else (x[tr], y[tr])
    result = train_classifier(train=(x[tr], y[tr]), val=val, test=None, classes=list(classes), config=cfg,
                              seed=int(params["seed"]))
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    result.save(tmp)
    info = {"params": params, "classes": list(classes), "train_hash": config_hash([array_hash(x), array_hash(y)]),
            "n_fit": int(len(tr)), "n_holdout": int(len(ho)), "weights_sha": weights_hash(tmp / DOMAIN_FILE),
            "holdout_accuracy": float(result.val_metrics.get("accuracy", math.nan)) if len(ho) else None,
            "best_epoch": result.best_epoch, "device": str(result.device)}
    write_json(tmp / "domain.json", info)
    commit_dir(tmp, out)
    return info


@lru_cache(maxsize=4)
def _load(folder: str, sha: str, device: str) -> Any:
    from ..classifiers import load_checkpoint
    from ..metrics import DomainExtractor
    from ..runtime import pick_device

    info = json.loads((Path(folder) / "domain.json").read_text())
    net = load_checkpoint(folder, device=str(pick_device(device)))
    p = info["params"]
    return DomainExtractor(network=net, weights_file=Path(folder) / DOMAIN_FILE, weights_sha=sha,
                           info={"model": p["model"], "img_size": p["img_size"], "train_hash": info["train_hash"],
                                 "epochs": p["epochs"], "seed": p["seed"], "holdout_accuracy": info.get("holdout_accuracy")})


def load_domain(folder: str | Path, device: str = "auto") -> Any:
    """The saved domain network as a DomainExtractor (one load per process and weights file; the sha is re-checked)."""
    from ..metrics.domain import weights_hash

    folder = Path(folder)
    if not (folder / DOMAIN_FILE).is_file() or not (folder / "domain.json").is_file():
        raise UserInputError(f"{folder} is not a domain-network folder (needs {DOMAIN_FILE} and domain.json)")
    return _load(str(folder.resolve()), weights_hash(folder / DOMAIN_FILE), device)


def cached_domain(train: tuple[np.ndarray, np.ndarray], classes: list[str], q: dict[str, Any], size: int,
                  root: str | Path | None = None) -> Any:
    """For `ooc-bench score`: the domain network of this train split and recipe from ``<cache>/domain/<key>/``,
    trained there once when missing; as a DomainExtractor."""
    from ..data import default_cache_dir

    train_key = config_hash([array_hash(np.asarray(train[0])), array_hash(np.asarray(train[1], np.int64))])
    params = domain_params(q, train_key, size)
    folder = Path(root) if root is not None else default_cache_dir() / "domain" / config_hash({"stage": "domain", **params})
    if not (folder / "domain.json").is_file():
        train_domain_network(train, classes, params, folder)
    return load_domain(folder)


def build_extractor(q: dict[str, Any], domain: Any = None) -> Any:
    """The feature extractor of ``q['features']``; the domain space is the given (trained, loaded) network."""
    from ..metrics import create_extractor, resolve_extractor_name

    name = resolve_extractor_name(q["features"])
    if name == "domain":
        if domain is None:
            raise UserInputError("features = domain needs the run's domain network")
        return domain
    mode = q.get("resize_mode")
    resize = {"resize_mode": mode} if mode and mode != "auto" else {}  # auto: each extractor's reference default
    if name == "inception":
        return create_extractor("inception", weights=q.get("inception_weights"), **resize)
    if name == "dinov2":
        kw = {"weights": q.get("dinov2_weights"), **resize}
        if q.get("dinov2_model"):
            kw["model"] = q["dinov2_model"]
        return create_extractor("dinov2", **kw)
    return create_extractor(name)


def matched_subset_sizes(q: dict[str, Any], *per_class_pools: dict[str, int]) -> dict[str, int]:
    """Per class, the subset size every distance of the table uses: ``floor(subset_fraction x`` the smallest pool
    (reference, floor set, synthetic set) ``)``, at least 2."""
    from ..metrics import matched_size

    classes = set.intersection(*(set(p) for p in per_class_pools)) if per_class_pools else set()
    return {c: matched_size(*(int(p[c]) for p in per_class_pools), fraction=float(q["subset_fraction"]))
            for c in sorted(classes) if all(int(p[c]) > 0 for p in per_class_pools)}


def class_counts(labels: np.ndarray, classes: list[str]) -> dict[str, int]:
    """Images per class name."""
    n = Counter(np.asarray(labels, np.int64).tolist())
    return {c: int(n.get(i, 0)) for i, c in enumerate(classes)}


def score_sets(real: tuple[np.ndarray, np.ndarray], fake: tuple[np.ndarray, Any], classes: list[str], q: dict[str, Any],
               extractor: Any, domain: Any = None, size: int | None = None, subset_size: dict[str, int] | None = None,
               metrics: list[str] | None = None, reference: str = "test", **kw: Any) -> list[dict[str, Any]]:
    """``ooc_bench.metrics.score`` with the quality settings ``q``: matched-n subsets (``q['subsets']``), the domain
    network as the class-fidelity judge, identity columns with the working ``size``. ``kw`` goes to ``score``."""
    from ..metrics import score

    return score(real, fake, classes, extractor, metrics=metrics or q["metrics"], per_class=bool(q["per_class"]),
                 k=int(q["k"]), subsets=int(q["subsets"]), subset_size=subset_size,
                 subset_fraction=float(q["subset_fraction"]), classifier=domain, working_size=size,
                 reference=reference, **kw)
