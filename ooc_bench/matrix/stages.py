"""Run one job of the plan (fit, sample, score or a classifier cell) and write its record; callable in any process."""

from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OocBenchError
from .plan import Job
from .store import RunPaths, read_record, release_claim, try_claim, write_record


@lru_cache(maxsize=4)
def _dataset(manifest_sha: str, manifest: str):
    from ..data import read_split_manifest

    return read_split_manifest(manifest)


def _manifest_key(run_root: Path) -> tuple[str, str]:
    """(content hash, path) of a run's ``split.csv``: per-process caches are keyed by what the manifest holds (and
    where it is: its relative paths are read from its folder), so a rewritten split is never served stale."""
    from ..hashing import file_hash

    manifest = str(Path(run_root) / "split.csv")
    return file_hash(manifest, 64), manifest


def split_dataset(run_root: Path):
    """The run's split (read once per process per manifest content from ``split.csv``)."""
    return _dataset(*_manifest_key(run_root))


@lru_cache(maxsize=8)
def _arrays(manifest_sha: str, manifest: str, split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    from ..data import split_arrays

    return split_arrays(_dataset(manifest_sha, manifest), split, size)


def real_arrays(run_root: Path, split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Real images and labels of one split at the working size (through the decoded-image cache)."""
    return _arrays(*_manifest_key(run_root), split, int(size))


def _fresh_dir(target: Path) -> Path:
    """A temporary folder beside ``target`` (umask permissions); the caller renames it into place when complete."""
    from ..atomic import make_temp_dir

    return make_temp_dir(target)


def commit_dir(tmp: Path, target: Path) -> None:
    """Move a finished folder into place (a concurrent identical result may already be there)."""
    if target.exists():
        shutil.rmtree(target)
    try:
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not target.exists():
            raise


def run_fit(job: Job, paths: RunPaths) -> dict[str, Any]:
    """Fit a generator on the train split only (the data layer's guard checks it) and save it."""
    from ..data import training_set
    from ..generators import create_generator
    from ..runtime import seed_everything

    p = job.params
    seed_everything(int(p["seed"]))
    train = training_set(split_dataset(paths.root), size_hint=int(p["size"]))
    gen = create_generator(p["type"], **p["config"])
    target = paths.artifact_dir("fit", job.key)
    workdir = paths.artifacts / "work" / job.key  # checkpoints survive a kill: the next attempt resumes
    gen.fit(train, workdir=workdir)
    tmp = _fresh_dir(target)
    gen.save(tmp)
    commit_dir(tmp, target)
    return {"generator": p["generator"], "type": p["type"], "config_hash": gen.config_hash, "n_train": len(train)}


def run_sample(job: Job, paths: RunPaths) -> dict[str, Any]:
    """Sample the largest amount any cell needs; smaller ratios take per-class prefixes of it."""
    from ..generators import load_generator

    p = job.params
    gen = load_generator(paths.artifact_dir("fit", p["fit_key"]))
    target = paths.artifact_dir("sample", job.key)
    tmp = _fresh_dir(target)
    sample_set = gen.sample({c: int(n) for c, n in p["n_per_class"].items()}, tmp, seed=int(p["seed"]), size=int(p["size"]))
    content = sample_set.content_hash()
    commit_dir(tmp, target)
    return {"generator": p["generator"], "n_per_class": p["n_per_class"], "content_hash": content}


@lru_cache(maxsize=8)
def _sample_arrays(sample_dir: str, size: int) -> tuple[np.ndarray, dict[str, np.ndarray], list[str], str]:
    """A whole sample set decoded once per process: images in manifest order, row indices per class, source hashes."""
    from PIL import Image

    from ..data import resize_square
    from ..generators import SampleSet

    sample_set = SampleSet.load(Path(sample_dir))
    images = np.zeros((len(sample_set.rows), size, size, 3), np.uint8)
    for i, r in enumerate(sample_set.rows):
        with Image.open(sample_set.root / r["path"]) as im:
            images[i] = resize_square(np.asarray(im.convert("RGB")), size)
    by_class: dict[str, list[int]] = {}
    for i, r in enumerate(sample_set.rows):
        by_class.setdefault(r["label"], []).append(i)
    sources = [r.get("source_hash", "") for r in sample_set.rows]
    return images, {c: np.asarray(v, np.int64) for c, v in by_class.items()}, sources, str(sample_set.root)


def load_samples(paths: RunPaths, sample_key: str, classes: list[str], counts: dict[str, int], size: int
                 ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The first ``counts[c]`` synthetic images of each class (nested across ratios), their labels and source hashes."""
    images, by_class, sources, root = _sample_arrays(str(paths.artifact_dir("sample", sample_key)), int(size))
    take, labels = [], []
    for ci, c in enumerate(classes):
        n = int(counts.get(c, 0))
        rows = by_class.get(c, np.zeros(0, np.int64))[:n]
        if len(rows) < n:
            raise OocBenchError(f"sample set {root} has {len(rows)} images of class {c!r}, "
                                f"{n} needed; delete that folder and run again")
        take.append(rows)
        labels += [ci] * n
    idx = np.concatenate(take) if take else np.zeros(0, np.int64)
    return images[idx], np.asarray(labels, np.int64), [sources[i] for i in idx]


def run_domain(job: Job, paths: RunPaths) -> dict[str, Any]:
    """Train the run's domain network once, on the real train split only; every score job loads these weights."""
    from .quality import train_domain_network

    p = job.params
    classes = split_dataset(paths.root).classes
    train = real_arrays(paths.root, "train", int(p["img_size"]))  # split_arrays runs the leakage guard on train
    target = paths.artifact_dir("domain", job.key)
    info = train_domain_network(train, classes, {k: v for k, v in p.items() if k != "split_key"}, target)
    return {**info, "artifact": str(target.relative_to(paths.root))}


@lru_cache(maxsize=4)
def _extractor(run_root: str, quality_json: str, size: int, domain_dir: str | None = None):
    """(feature extractor, domain network or None) of a score job, built once per process."""
    from .quality import build_extractor, load_domain

    q = json.loads(quality_json)
    domain = load_domain(domain_dir) if domain_dir else None
    return build_extractor(q, domain), domain


def run_score(job: Job, paths: RunPaths) -> dict[str, Any]:
    """Score one sample set (or the held-out real floor set) against the real reference split, at matched n."""
    from ..metrics import FeatureCache, parse_metrics
    from .quality import QUALITY_DEFAULTS, class_counts, matched_subset_sizes, score_sets

    p = job.params
    q = {**QUALITY_DEFAULTS, **p["quality"]}
    q["metrics"] = parse_metrics(q["metrics"])
    size = int(p["size"])
    dataset = split_dataset(paths.root)
    classes = dataset.classes
    domain_dir = str(paths.artifact_dir("domain", p["domain_key"])) if p.get("domain_key") else None
    extractor, domain = _extractor(str(paths.root), json.dumps(q, sort_keys=True), size, domain_dir)
    ref_split = q.get("reference", "test")
    floor_split = q.get("floor") if q.get("floor") not in (None, "none") else None
    if floor_split == ref_split:
        raise OocBenchError(f"[quality] floor = {floor_split!r} is the reference split itself; choose another floor set")
    ref = real_arrays(paths.root, ref_split, size)
    train = real_arrays(paths.root, "train", size)
    train_hashes = [r.hash for r in dataset.split("train")]
    cache = FeatureCache()
    ref_key = f"{p['split_key']}-{ref_split}-{size}"
    pools = [class_counts(ref[1], classes)]
    floor = real_arrays(paths.root, floor_split, size) if floor_split else None
    if floor is not None:
        pools.append(class_counts(floor[1], classes))
    if p.get("n_fake_per_class"):
        pools.append({c: int(n) for c, n in p["n_fake_per_class"].items()})
    subset_size = matched_subset_sizes(q, *pools)
    if p["sample_key"] is None:  # the held-out real floor set vs the reference: what a perfect generator reaches
        split_name = p.get("floor_split") or floor_split or "train"
        fake = floor if floor is not None else train
        fake_key, sources = f"{p['split_key']}-{split_name}-{size}", None
        metrics = [m for m in q["metrics"] if m != "nearcopy"]
    else:
        sample_rec = read_record(paths, "sample", p["sample_key"]) or {}
        counts = sample_rec.get("n_per_class") or {}
        x, y, sources = load_samples(paths, p["sample_key"], classes, counts, size)
        fake, fake_key = (x, y), f"sample-{p['sample_key']}"
        metrics = list(q["metrics"])
    heldout = real_arrays(paths.root, "val", size) if "nearcopy" in metrics and ref_split != "val" else None
    rows = score_sets(ref, fake, classes, q, extractor, domain=domain, size=size, subset_size=subset_size,
                      metrics=metrics, reference=ref_split, train_real=train,
                      fake_sources=sources if sources and any(sources) else None, train_hashes=train_hashes,
                      cache=cache, real_key=ref_key, fake_key=fake_key, seed=0, heldout_real=heldout)
    return {"generator": p["generator"], "floor_split": p.get("floor_split"), "extractor": extractor.name,
            "extractor_provenance": extractor.provenance, "subset_size": subset_size,
            "domain_provenance": domain.provenance if domain is not None else None,
            "rows": [{k: (float(v) if isinstance(v, (np.floating,)) else v) for k, v in r.items()} for r in rows]}


def write_predictions(paths: RunPaths, key: str, classes: list[str], labels: np.ndarray,
                      proba: np.ndarray | None) -> str | None:
    """Write one cell's per-image test predictions (image id, label, predicted label, one score per class)
    atomically to ``predictions/<key>.csv``; returns that path relative to the run folder."""
    from .results import write_csv

    if proba is None:
        return None
    records = split_dataset(paths.root).split("test")  # the order real_arrays(…, "test", …) returned
    if len(records) != len(labels) or len(proba) != len(labels):
        raise OocBenchError(f"{len(proba)} test predictions for {len(records)} test images in {paths.root}/split.csv")
    score_cols = [f"score_{c}" for c in classes]
    pred = proba.argmax(1)
    rows = [{"image_id": str(r.path), "hash": r.hash, "label": int(y), "predicted": int(k),
             **{col: f"{float(v):.6g}" for col, v in zip(score_cols, scores)}}
            for r, y, k, scores in zip(records, labels, pred, proba)]
    rel = f"predictions/{key}.csv"
    write_csv(paths.root / rel, ["image_id", "hash", "label", "predicted"] + score_cols, rows)
    return rel


def run_cell(job: Job, paths: RunPaths) -> dict[str, Any]:
    """Train one classifier on real (+ synthetic) training images and evaluate it on the held-out real test split."""
    from ..classifiers import TrainConfig, train_classifier

    p = job.params
    classes = split_dataset(paths.root).classes
    cfg = TrainConfig(**p["train_config"])  # option names were checked when the spec was loaded
    size = int(cfg.img_size)
    xr, yr = real_arrays(paths.root, "train", size)  # split_arrays runs the leakage guard on the train split
    # replace protocol: a seeded per-class subset of the real images (the same for every generator)
    keep = []
    rng = np.random.default_rng([int(p["seed"]), 17])
    for ci, c in enumerate(classes):
        idx = np.flatnonzero(yr == ci)
        n = int(p["n_real"].get(c, len(idx)))
        keep.append(idx if n >= len(idx) else np.sort(rng.choice(idx, size=n, replace=False)))
    keep_idx = np.concatenate(keep) if keep else np.zeros(0, np.int64)
    x_train, y_train = xr[keep_idx], yr[keep_idx]
    n_syn = 0
    if p["sample_key"] is not None and sum(p["n_synthetic"].values()) > 0:
        xs, ys, _ = load_samples(paths, p["sample_key"], classes, p["n_synthetic"], size)
        n_syn = len(ys)
        x_train, y_train = np.concatenate([x_train, xs]), np.concatenate([y_train, ys])
    val = real_arrays(paths.root, "val", size)  # an empty val or test split is an error in split_arrays
    test = real_arrays(paths.root, "test", size)
    result = train_classifier(train=(x_train, y_train), val=val, test=test, classes=classes, config=cfg, seed=int(p["seed"]))
    rec = result.record()
    predictions = write_predictions(paths, job.key, classes, test[1], result.test_proba)
    return {"model": p["model"], "generator": p["generator"], "protocol": p["protocol"], "ratio": p["ratio"],
            "seed": p["seed"], "generator_seed": p.get("generator_seed"), "predictions": predictions,
            "n_train_real": int(len(keep_idx)), "n_train_synthetic": int(n_syn),
            "metrics": {k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float, np.floating))},
            "val_metrics": {k: float(v) for k, v in result.val_metrics.items() if isinstance(v, (int, float, np.floating))},
            "weights": rec.get("weights", {}), "curves": rec.get("curves", [])}


def job_threads() -> int:
    """CPU threads every job uses, whatever the executor: ``$OOC_BENCH_THREADS`` or min(cores, 8).

    Fixed so that sequential, joblib and submitit runs give bitwise-equal numbers on one machine
    (float reductions in CPU kernels depend on the thread count)."""
    from ..settings import threads

    return threads()


def _fix_threads() -> None:
    import torch

    n = job_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _job_hook(job: Job) -> None:
    """Call ``$OOC_BENCH_JOB_HOOK`` (``module:function``) with the job before it runs; nothing when unset.

    The resilience tests kill a worker here (``ooc_bench.testing.faults``); production code imports no test module.
    """
    from ..settings import job_hook

    hook = job_hook()
    if not hook:
        return
    import importlib

    module, _, function = hook.partition(":")
    getattr(importlib.import_module(module), function)(job)


RUNNERS = {"fit": run_fit, "domain": run_domain, "sample": run_sample, "score": run_score, "cell": run_cell}


def execute_job(job: Job, run_root: str | Path, retry_failed: bool = True) -> dict[str, Any]:
    """Run a job unless its record exists; write a done/failed/skipped record atomically. Never raises for job errors.

    Returns the record (or ``{"status": "claimed"}`` when another live process is running the same job).
    """
    paths = RunPaths(Path(run_root))
    _fix_threads()
    existing = read_record(paths, job.kind, job.key)
    if existing and (existing.get("status") in ("done", "skipped") or not retry_failed):
        return existing
    if not try_claim(paths, job.kind, job.key):
        return {"status": "claimed"}
    log = paths.log_path(job.kind, job.key)
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    try:
        # a dependency that was skipped (an optional generator that cannot run) skips this job too; one that
        # failed or is missing leaves this job unrecorded, so a later run retries it once the dependency is done
        for dep in job.deps:
            dep_kind = "fit" if job.kind == "sample" else ("domain" if dep == job.params.get("domain_key") else "sample")
            dep_rec = read_record(paths, dep_kind, dep) or {}
            status = dep_rec.get("status", "missing")
            if status == "done":
                continue
            if status != "skipped":
                return {"status": "pending", "error": f"dependency {dep_kind} {dep} is {status}"}
            record = {"status": "skipped", "label": job.label, "params": job.params,
                      "error": f"dependency {dep_kind} {dep} is skipped", "reason": dep_rec.get("reason", "")}
            write_record(paths, job.kind, job.key, record)
            return record
        try:
            _job_hook(job)
            out = RUNNERS[job.kind](job, paths)
            record = {"status": "done", "label": job.label, "params": job.params, "time_s": time.time() - t0, **out}
        except OocBenchError as exc:  # a generator marked optional that cannot run (e.g. no SD weights) is skipped
            optional = bool(job.params.get("optional"))
            record = {"status": "skipped" if optional else "failed", "label": job.label, "params": job.params,
                      "time_s": time.time() - t0, "error": str(exc), "reason": str(exc)}
            log.write_text(traceback.format_exc())
        except Exception as exc:  # noqa: BLE001 - a failed cell is recorded and does not stop the others
            record = {"status": "failed", "label": job.label, "params": job.params, "time_s": time.time() - t0,
                      "error": f"{type(exc).__name__}: {exc}", "log": str(log)}
            log.write_text(traceback.format_exc())
        write_record(paths, job.kind, job.key, record)
        return record
    finally:
        release_claim(paths, job.kind, job.key)
