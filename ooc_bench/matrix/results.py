"""Turn the run's records into the long-format CSVs users cite: quality.csv, downstream.csv and summary.csv."""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

from ..atomic import write_text
from .spec import BASELINE
from .stats import paired_compare, summarize
from .store import RunPaths, iter_records

QUALITY_COLUMNS = ["generator", "class", "extractor", "metric", "value", "n_real", "n_fake"]
DOWNSTREAM_COLUMNS = ["model", "generator", "protocol", "ratio", "seed", "metric", "value",
                      "n_train_real", "n_train_synthetic", "pretrained"]
SUMMARY_COLUMNS = ["model", "generator", "protocol", "ratio", "metric", "n", "mean", "std", "ci95_low", "ci95_high",
                   "baseline_mean", "delta", "delta_ci95_low", "delta_ci95_high", "p_value", "test", "n_pairs", "pretrained"]


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
    """One row per (generator, class, extractor, metric) from the finished score records (of this plan when ``keys`` is given)."""
    rows = []
    for rec in iter_records(paths, "score"):
        if rec.get("status") != "done" or (keys is not None and rec["key"] not in keys):
            continue
        for r in rec["rows"]:
            rows.append({"generator": rec["generator"], "class": r.get("class", "all"), "extractor": r.get("extractor", rec.get("extractor")),
                         "metric": r["metric"], "value": r["value"], "n_real": r.get("n_real"), "n_fake": r.get("n_fake")})
    rows.sort(key=lambda r: (r["generator"], r["class"] != "all", r["class"], r["metric"]))
    return rows


def downstream_rows(paths: RunPaths, keys: set[str] | None = None) -> list[dict[str, Any]]:
    """One row per (cell, test metric) from the finished cell records (of this plan when ``keys`` is given)."""
    rows = []
    for rec in iter_records(paths, "cell"):
        if rec.get("status") != "done" or (keys is not None and rec["key"] not in keys):
            continue
        pretrained = bool(rec.get("weights", {}).get("pretrained", False))
        for metric, value in sorted(rec["metrics"].items()):
            rows.append({"model": rec["model"], "generator": rec["generator"], "protocol": rec["protocol"],
                         "ratio": float(rec["ratio"]), "seed": int(rec["seed"]), "metric": metric, "value": float(value),
                         "n_train_real": rec.get("n_train_real"), "n_train_synthetic": rec.get("n_train_synthetic"),
                         "pretrained": pretrained})
    rows.sort(key=lambda r: (r["model"], r["generator"] != BASELINE, r["generator"], r["protocol"], r["ratio"], r["seed"], r["metric"]))
    return rows


def summary_rows(downstream: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Aggregate over seeds; compare every cell group with the real-only baseline of the same model, paired by seed."""
    groups: dict[tuple, dict[int, float]] = defaultdict(dict)
    pretrained: dict[tuple, bool] = {}
    for r in downstream:
        key = (r["model"], r["generator"], r["protocol"], float(r["ratio"]), r["metric"])
        groups[key][int(r["seed"])] = float(r["value"])
        pretrained[key] = pretrained.get(key, True) and str(r["pretrained"]) in ("True", "true", "1")
    out = []
    for key, by_seed in groups.items():
        model, gen, protocol, ratio, metric = key
        s = summarize(list(by_seed.values()))
        base = groups.get((model, BASELINE, "none", 0.0, metric), {})
        row = {"model": model, "generator": gen, "protocol": protocol, "ratio": ratio, "metric": metric, "n": s.n,
               "mean": s.mean, "std": s.std, "ci95_low": s.ci_low, "ci95_high": s.ci_high,
               "baseline_mean": summarize(list(base.values())).mean if base else math.nan, "pretrained": pretrained[key]}
        if gen != BASELINE and base:
            pc = paired_compare(by_seed, base)
            row.update({"delta": pc.delta, "delta_ci95_low": pc.delta_ci_low, "delta_ci95_high": pc.delta_ci_high,
                        "p_value": pc.p_value, "test": pc.test, "n_pairs": pc.n_pairs})
        out.append(row)
    out.sort(key=lambda r: (r["model"], r["metric"], r["generator"] != BASELINE, r["generator"], r["protocol"], r["ratio"]))
    return out


def write_results(run_root: Path, keys: set[str] | None = None) -> dict[str, int]:
    """(Re)write quality.csv, downstream.csv and summary.csv from the records of the plan's ``keys``; returns row counts."""
    paths = RunPaths(Path(run_root))
    q = quality_rows(paths, keys)
    d = downstream_rows(paths, keys)
    s = summary_rows(d)
    write_csv(paths.root / "quality.csv", QUALITY_COLUMNS, q)
    write_csv(paths.root / "downstream.csv", DOWNSTREAM_COLUMNS, d)
    write_csv(paths.root / "summary.csv", SUMMARY_COLUMNS, s)
    return {"quality": len(q), "downstream": len(d), "summary": len(s)}
