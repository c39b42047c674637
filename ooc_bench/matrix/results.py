"""Turn the run's records into the long-format CSVs users cite: quality.csv, downstream.csv and summary.csv."""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..atomic import write_text
from ..errors import UserInputError
from .spec import BASELINE
from .stats import (BOOT_METRICS, TEST_LABELS, StatsConfig, adjust, boot_metric, bootstrap_weights, paired_compare,
                    percentile_interval, summarize)
from .store import RunPaths, iter_records

QUALITY_COLUMNS = ["generator", "class", "feature_space", "extractor_id", "weights", "working_size", "resize_mode", "metric",
                   "value", "ci_low", "ci_high", "n_real", "n_fake", "reference",
                   "std", "subsets", "pool_real", "pool_fake", "extractor", "floor_split"]
DOWNSTREAM_COLUMNS = ["model", "generator", "protocol", "ratio", "seed", "generator_seed", "split", "metric", "value",
                      "n_train_real", "n_train_synthetic", "pretrained", "predictions"]
SUMMARY_COLUMNS = ["model", "generator", "protocol", "ratio", "metric", "n", "mean", "std", "ci95_low", "ci95_high",
                   "baseline_mean", "delta", "delta_ci95_low", "delta_ci95_high", "p_value", "test", "n_pairs", "pretrained",
                   "p_adjusted", "p_adjust_method", "family_size", "significant", "alpha", "p_min_attainable",
                   "boot_ci95_low", "boot_ci95_high", "boot_delta_ci95_low", "boot_delta_ci95_high", "boot_resamples",
                   "prob_improvement", "n_generator_fits", "val_mean"]


def as_float(x: Any) -> float:
    """A CSV cell as a float: NaN for an empty or non-numeric cell (results written by any version read back)."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def write_csv(path: Path, columns: list[str], rows: Iterable[dict[str, Any]]) -> None:
    """Atomically write rows (missing keys empty, floats with full precision)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None or (isinstance(v, float) and math.isnan(v)) else v) for k, v in r.items()})
    write_text(path, buf.getvalue())


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV as dicts of strings."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def quality_rows(paths: RunPaths, keys: set[str] | None = None) -> list[dict[str, Any]]:
    """One row per (generator, class, feature space, metric) from the finished score records (of this plan when
    ``keys`` is given), with the identity columns every score row carries (older records: what they have)."""
    rows = []
    for rec in iter_records(paths, "score"):
        if rec.get("status") != "done" or (keys is not None and rec["key"] not in keys):
            continue
        for r in rec["rows"]:
            extractor = r.get("extractor", rec.get("extractor"))
            rows.append({**{c: r.get(c) for c in QUALITY_COLUMNS}, "generator": rec["generator"],
                         "class": r.get("class", "all"), "extractor": extractor,
                         "feature_space": r.get("feature_space", extractor), "floor_split": rec.get("floor_split")})
    rows.sort(key=lambda r: (not str(r["generator"]).startswith("real-"), r["generator"], r["class"] != "all", r["class"],
                             r["metric"] == "class_fidelity", r["metric"], str(r.get("feature_space") or "")))
    return rows


def downstream_rows(paths: RunPaths, keys: set[str] | None = None) -> list[dict[str, Any]]:
    """One row per (cell, split, metric) from the finished cell records (of this plan when ``keys`` is given).

    ``split`` is ``val`` (the validation metrics of the epoch early stopping kept) or ``test``; test rows name the
    cell's per-image prediction file (``predictions``) when the cell wrote one."""
    rows = []
    for rec in iter_records(paths, "cell"):
        if rec.get("status") != "done" or (keys is not None and rec["key"] not in keys):
            continue
        pretrained = bool(rec.get("weights", {}).get("pretrained", False))
        gseed = rec.get("generator_seed", rec.get("params", {}).get("generator_seed"))
        for split, metrics in (("test", rec.get("metrics") or {}), ("val", rec.get("val_metrics") or {})):
            for metric, value in sorted(metrics.items()):
                if value is None:
                    continue
                rows.append({"model": rec["model"], "generator": rec["generator"], "protocol": rec["protocol"],
                             "ratio": float(rec["ratio"]), "seed": int(rec["seed"]), "generator_seed": gseed,
                             "split": split, "metric": metric, "value": float(value),
                             "n_train_real": rec.get("n_train_real"), "n_train_synthetic": rec.get("n_train_synthetic"),
                             "pretrained": pretrained, "predictions": rec.get("predictions") if split == "test" else None})
    rows.sort(key=lambda r: (r["model"], r["generator"] != BASELINE, r["generator"], r["protocol"], r["ratio"], r["seed"],
                             r["split"], r["metric"]))
    return rows


@lru_cache(maxsize=4096)
def _read_predictions(path: str, mtime_ns: int) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    rows = read_csv(Path(path))
    ids = tuple(r["image_id"] for r in rows)
    return ids, np.array([int(r["label"]) for r in rows], np.int64), np.array([int(r["predicted"]) for r in rows], np.int64)


def load_predictions(path: Path) -> tuple[tuple[str, ...], np.ndarray, np.ndarray] | None:
    """(image ids, true labels, predicted labels) of one cell's prediction CSV, or None when it is not there."""
    p = Path(path)
    if not p.is_file():
        return None
    return _read_predictions(str(p), p.stat().st_mtime_ns)


def _correctness(run_dir: Path | None, files: dict[int, str], seeds: list[int]
                 ) -> tuple[dict[str, int], np.ndarray, np.ndarray] | None:
    """Per seed (in ``seeds`` order) and test image: 1 if the cell's prediction was right. None when any is missing."""
    if run_dir is None or any(not files.get(s) for s in seeds):
        return None
    loaded = [load_predictions(Path(run_dir) / files[s]) for s in seeds]
    if any(x is None for x in loaded):
        return None
    ids = loaded[0][0]
    index = {i: k for k, i in enumerate(ids)}
    correct = np.zeros((len(seeds), len(ids)))
    for row, (seed_ids, y, pred) in enumerate(loaded):
        if len(seed_ids) != len(ids) or set(seed_ids) != set(index):
            return None  # every seed of a cell must have seen the same test images
        order = [index[i] for i in seed_ids]
        correct[row, order] = (y == pred)
    return index, loaded[0][1], correct


def _is_true(v: Any) -> bool:
    return str(v) in ("True", "true", "1")


def summary_rows(downstream: list[dict[str, Any]], config: StatsConfig | None = None,
                 run_dir: Path | None = None) -> list[dict[str, Any]]:
    """Aggregate test rows over seeds; compare every cell group with the real-only baseline of the same model,
    paired by seed; adjust the p-values per family (model, metric); add the validation mean used for selection
    and, when ``run_dir`` holds the cells' per-image predictions, hierarchical-bootstrap intervals."""
    cfg = config or StatsConfig()
    groups: dict[tuple, dict[int, float]] = defaultdict(dict)
    val: dict[tuple, dict[int, float]] = defaultdict(dict)
    files: dict[tuple, dict[int, str]] = defaultdict(dict)
    gseeds: dict[tuple, set] = defaultdict(set)
    pretrained: dict[tuple, bool] = {}
    for r in downstream:
        key = (r["model"], r["generator"], r["protocol"], float(r["ratio"]), r["metric"])
        seed = int(r["seed"])
        if (r.get("split") or "test") == "val":
            val[key][seed] = float(r["value"])
            continue
        groups[key][seed] = float(r["value"])
        if r.get("predictions"):
            files[key][seed] = str(r["predictions"])
        gseeds[key].add("" if r.get("generator_seed") in (None, "") else str(r["generator_seed"]))
        pretrained[key] = pretrained.get(key, True) and _is_true(r.get("pretrained"))
    boot_cache: dict[tuple, Any] = {}

    def boot(key: tuple, seeds: tuple[int, ...]):
        """(image index, labels, correctness, bootstrap replicates of the metric) of one cell over ``seeds``."""
        if (key, seeds) not in boot_cache:
            cell = _correctness(run_dir, files[key], list(seeds))
            if cell is not None:
                ws, wi = bootstrap_weights(len(seeds), cell[2].shape[1], cfg.bootstrap, cfg.bootstrap_seed)
                cell = (*cell, boot_metric(cell[2], cell[1], key[-1], ws, wi))
            boot_cache[(key, seeds)] = cell
        return boot_cache[(key, seeds)]

    out = []
    for key, by_seed in groups.items():
        model, gen, protocol, ratio, metric = key
        s = summarize(list(by_seed.values()))
        bkey = (model, BASELINE, "none", 0.0, metric)
        base = groups.get(bkey, {})
        known = {g for g in gseeds[key] if g != ""}
        row = {"model": model, "generator": gen, "protocol": protocol, "ratio": ratio, "metric": metric, "n": s.n,
               "mean": s.mean, "std": s.std, "ci95_low": s.ci_low, "ci95_high": s.ci_high,
               "val_mean": summarize(list(val[key].values())).mean if val.get(key) else math.nan,
               "baseline_mean": summarize(list(base.values())).mean if base else math.nan, "pretrained": pretrained[key],
               "n_generator_fits": 0 if gen == BASELINE else (len(known) or 1), "alpha": cfg.alpha,
               "boot_resamples": cfg.bootstrap if metric in BOOT_METRICS else None}
        if cfg.bootstrap > 0 and metric in BOOT_METRICS:
            cell = boot(key, tuple(sorted(by_seed)))
            if cell is not None:
                row["boot_ci95_low"], row["boot_ci95_high"] = percentile_interval(cell[3])
        if gen != BASELINE and base:
            pc = paired_compare(by_seed, base, test=cfg.test)
            row.update({"delta": pc.delta, "delta_ci95_low": pc.delta_ci_low, "delta_ci95_high": pc.delta_ci_high,
                        "p_value": pc.p_value, "test": pc.test, "n_pairs": pc.n_pairs, "p_min_attainable": pc.p_min,
                        "prob_improvement": pc.prob_improvement, "p_adjust_method": cfg.p_adjust})
            common = tuple(sorted(set(by_seed) & set(base)))
            if cfg.bootstrap > 0 and metric in BOOT_METRICS and common:
                cell, bcell = boot(key, common), boot(bkey, common)
                if cell is not None and bcell is not None and set(cell[0]) == set(bcell[0]):
                    if list(cell[0]) == list(bcell[0]):
                        base_stat = bcell[3]  # same images in the same order: the same resamples apply
                    else:  # pair by test image id: the baseline's columns in the cell's image order
                        order = [bcell[0][i] for i in cell[0]]
                        ws, wi = bootstrap_weights(len(common), len(order), cfg.bootstrap, cfg.bootstrap_seed)
                        base_stat = boot_metric(bcell[2][:, order], cell[1], metric, ws, wi)
                    row["boot_delta_ci95_low"], row["boot_delta_ci95_high"] = percentile_interval(cell[3] - base_stat)
        out.append(row)
    # one family per (model, metric): every comparison against real-only in this run
    families: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in out:
        if "p_value" in row:
            families[(row["model"], row["metric"])].append(row)
    for fam in families.values():
        adj = adjust([r["p_value"] for r in fam], cfg.p_adjust)
        m = int(sum(not math.isnan(r["p_value"]) for r in fam))
        for r, pa in zip(fam, adj):
            r["p_adjusted"] = float(pa)
            r["family_size"] = m
            r["significant"] = "" if math.isnan(pa) else ("true" if pa < cfg.alpha else "false")
    out.sort(key=lambda r: (r["model"], r["metric"], r["generator"] != BASELINE, r["generator"], r["protocol"], r["ratio"]))
    return out


def stats_config_of(run_dir: Path, p_adjust: str | None = None) -> StatsConfig:
    """The settings a results folder was summarised with (read back from its summary.csv), ``p_adjust`` overriding."""
    cfg = StatsConfig()
    p = Path(run_dir) / "summary.csv"
    if p.is_file():
        for r in read_csv(p):
            if r.get("p_adjust_method"):
                cfg.p_adjust = r["p_adjust_method"]
            if r.get("test"):
                cfg.test = "t" if r["test"] == TEST_LABELS["t"] else "sign-flip"
            try:
                if r.get("alpha"):
                    cfg.alpha = float(r["alpha"])
                if r.get("boot_resamples"):
                    cfg.bootstrap = int(float(r["boot_resamples"]))
            except ValueError:
                raise UserInputError(f"{p}: alpha / boot_resamples must be numbers, got {r.get('alpha')!r} / "
                                     f"{r.get('boot_resamples')!r}; fix or delete summary.csv") from None
            if r.get("p_adjust_method"):
                break
    if p_adjust is not None:
        cfg.p_adjust = p_adjust
    try:
        return cfg.validate(str(p))
    except ValueError as exc:
        raise UserInputError(f"{exc}; fix that column or pass --p-adjust") from None


def write_summary(run_root: Path, config: StatsConfig | None = None) -> int:
    """Recompute summary.csv from downstream.csv alone (plus the prediction files it names, when present)."""
    run_root = Path(run_root)
    src = run_root / "downstream.csv"
    if not src.is_file():
        raise UserInputError(f"{src} not found: RESULTS_DIR must be a folder written by `ooc-bench run`")
    rows = read_csv(src)
    missing = [c for c in ("model", "generator", "protocol", "ratio", "seed", "metric", "value") if rows and c not in rows[0]]
    if missing:
        raise UserInputError(f"{src}: missing column(s) {', '.join(missing)}; see results/README.md for the columns")
    for i, r in enumerate(rows, start=2):
        try:
            float(r["ratio"]), int(r["seed"]), float(r["value"])
        except (KeyError, TypeError, ValueError):
            raise UserInputError(f"{src} line {i}: needs numeric ratio, seed and value columns; fix or delete that row") from None
    s = summary_rows(rows, config, run_root)
    write_csv(run_root / "summary.csv", SUMMARY_COLUMNS, s)
    return len(s)


def write_results(run_root: Path, keys: set[str] | None = None, stats: StatsConfig | None = None) -> dict[str, int]:
    """(Re)write quality.csv, downstream.csv and summary.csv from the records of the plan's ``keys``; returns row counts."""
    paths = RunPaths(Path(run_root))
    q = quality_rows(paths, keys)
    d = downstream_rows(paths, keys)
    s = summary_rows(d, stats, paths.root)
    write_csv(paths.root / "quality.csv", QUALITY_COLUMNS, q)
    write_csv(paths.root / "downstream.csv", DOWNSTREAM_COLUMNS, d)
    write_csv(paths.root / "summary.csv", SUMMARY_COLUMNS, s)
    return {"quality": len(q), "downstream": len(d), "summary": len(s)}
