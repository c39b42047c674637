"""score(): FID, KID, PRDC and near-copy share of a synthetic set against a real reference, overall and per class."""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..atomic import write_json, write_text
from ..errors import UserInputError
from .cache import FeatureCache
from .extractors import FeatureExtractor
from .frechet import fid_from_features
from .kid import kid
from .nearcopy import near_copy
from .prdc import prdc

METRICS = ("fid", "kid", "prdc", "nearcopy")
METRIC_ROWS = {
    "fid": ("fid",),
    "kid": ("kid_mean", "kid_std"),
    "prdc": ("precision", "recall", "density", "coverage"),
    "nearcopy": ("nearcopy_share", "nearcopy_threshold", "nn_dist_median", "nn_dist_ratio"),
}
ROW_COLUMNS = ["class", "extractor", "extractor_id", "weights", "reference", "metric", "value", "n_real", "n_fake"]


def parse_metrics(metrics: str | Iterable[str]) -> list[str]:
    """Normalise 'fid,kid' or ['fid', 'kid'] to known metric names (UserInputError naming --metrics otherwise)."""
    items = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    out = []
    for m in (str(x).strip().lower() for x in items):
        if not m:
            continue
        if m not in METRICS:
            raise UserInputError(f"--metrics: unknown metric {m!r}; choose from {', '.join(METRICS)}")
        if m not in out:
            out.append(m)
    if not out:
        raise UserInputError(f"--metrics: choose at least one of {', '.join(METRICS)}")
    return out


def _labels(pair: Sequence[Any] | None, n: int) -> np.ndarray | None:
    if pair is None or len(pair) < 2 or pair[1] is None:
        return None
    y = np.asarray(pair[1], dtype=np.int64)
    if len(y) != n:
        raise UserInputError(f"labels ({len(y)}) and images ({n}) differ in number")
    return None if (y < 0).all() else y


def score(real: tuple[np.ndarray, np.ndarray], fake: tuple[np.ndarray, np.ndarray], classes: list[str],
          extractor: FeatureExtractor, metrics: Sequence[str] | str = METRICS, per_class: bool = True,
          train_real: tuple[np.ndarray, np.ndarray] | None = None, fake_sources: list[str] | None = None,
          train_hashes: list[str] | None = None, k: int = 5, cache: FeatureCache | None = None,
          real_key: str | None = None, fake_key: str | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """Score a synthetic set against a real reference; one long-format row per (class, metric).

    ``real`` is the reference (the real test split by default in the benchmark), ``fake`` the synthetic set
    (labels may be None or all -1 for an unlabelled folder: then only class 'all' is scored); ``train_real``
    is the real training split for the near-copy check (the reference is used, and marked, when omitted).
    Per-class rows compare like classes only. Each row carries the extractor's name, id and weights, the
    reference ('real' or 'train') and the sample counts; metrics that need more images than a class has are
    reported as NaN. KID uses subsets of min(n_real, n_fake, 1000) (100 subsets, ``seed``); PRDC uses ``k``.
    Features come from ``cache`` when given (``real_key``/``fake_key`` name the image sets; default: content hash).
    """
    wanted = parse_metrics(metrics)
    xr, xf = np.asarray(real[0]), np.asarray(fake[0])
    yr, yf = _labels(real, len(xr)), _labels(fake, len(xf))
    if len(xr) == 0 or len(xf) == 0:
        raise UserInputError(f"nothing to score: {len(xr)} real and {len(xf)} synthetic images")

    def feats(images: np.ndarray, key: str | None) -> np.ndarray:
        if cache is not None:
            return cache.get_or_compute(extractor, images, key)
        return extractor.extract(images)

    fr = feats(xr, real_key)
    ff = feats(xf, fake_key)
    ft = yt = None
    nc_ref = "train"
    if "nearcopy" in wanted:
        if train_real is not None:
            xt = np.asarray(train_real[0])
            # the reference may be the training split itself (--split train): reuse its features, no second pass
            ft = fr if train_real[0] is real[0] else feats(xt, None)  # (np.asarray of a memmap is a new object)
            yt = _labels(train_real, len(xt))
        else:
            ft, yt, nc_ref = fr, yr, "real"
            if train_hashes is not None and len(train_hashes) != len(fr):
                train_hashes = None

    base = {"extractor": extractor.name, "extractor_id": extractor.id(), "weights": extractor.weights}
    rows: list[dict[str, Any]] = []

    def add(cls: str, metric: str, value: float, n_real: int, n_fake: int, reference: str = "real") -> None:
        rows.append({"class": cls, **base, "reference": reference, "metric": metric, "value": float(value),
                     "n_real": int(n_real), "n_fake": int(n_fake)})

    groups: list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]] = [
        ("all", np.arange(len(fr)), np.arange(len(ff)), None if ft is None else np.arange(len(ft)))]
    if per_class and yf is not None and yr is not None:
        for ci, name in enumerate(classes):
            if not (yf == ci).any():
                continue
            tidx = None if ft is None else (np.flatnonzero(yt == ci) if yt is not None else np.arange(len(ft)))
            groups.append((name, np.flatnonzero(yr == ci), np.flatnonzero(yf == ci), tidx))

    nan = float("nan")
    for name, ri, fi, ti in groups:
        a, b = fr[ri], ff[fi]
        nr, nf = len(a), len(b)
        if "fid" in wanted:
            add(name, "fid", fid_from_features(a, b) if min(nr, nf) >= 2 else nan, nr, nf)
        if "kid" in wanted:
            m, s = kid(a, b, seed=seed) if min(nr, nf) >= 2 else (nan, nan)
            add(name, "kid_mean", m, nr, nf)
            add(name, "kid_std", s, nr, nf)
        if "prdc" in wanted:
            vals = prdc(a, b, k=k) if min(nr, nf) > k else dict.fromkeys(METRIC_ROWS["prdc"], nan)
            for metric in METRIC_ROWS["prdc"]:
                add(name, metric, vals[metric], nr, nf)
        if "nearcopy" in wanted and ti is not None:
            t = ft[ti]
            if len(t) >= 2 and nf >= 1:
                src = [fake_sources[j] for j in fi] if fake_sources is not None else None
                th = [train_hashes[j] for j in ti] if train_hashes is not None else None
                res = near_copy(b, t, fake_sources=src, train_hashes=th)
            else:
                res = dict.fromkeys(METRIC_ROWS["nearcopy"], nan)
            for metric in (*METRIC_ROWS["nearcopy"], "source_similarity", "source_is_nn_share"):
                if metric in res:
                    add(name, metric, res[metric], len(t), nf, nc_ref)
    return rows


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def write_rows(path: str | os.PathLike, rows: list[dict[str, Any]], meta: dict[str, Any] | None = None) -> Path:
    """Write score rows atomically: ``.csv`` (long format, one row per class x metric) or ``.json`` (with ``meta``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        write_json(path, {**(meta or {}), "rows": [{k: _clean(v) for k, v in r.items()} for r in rows]})
    elif suffix == ".csv":
        cols = list(ROW_COLUMNS) + [c for r in rows for c in r if c not in ROW_COLUMNS]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(cols)), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if _clean(v) is None else (repr(v) if isinstance(v, float) else v)) for k, v in r.items()})
        write_text(path, buf.getvalue())
    else:
        raise UserInputError(f"--out: {path} must end in .json or .csv")
    return path


def rows_table(rows: list[dict[str, Any]], title: str | None = None) -> Any:
    """A rich Table of score rows: one line per metric, one column per class (headed with its sample counts)."""
    from rich.table import Table

    classes = list(dict.fromkeys(r["class"] for r in rows))
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    first = rows[0] if rows else {}
    table = Table(title=title or f"{first.get('extractor', '')} features — weights {first.get('weights', '')}",
                  title_justify="left")
    table.add_column("metric")
    table.add_column("vs")
    cells = {(r["class"], r["metric"]): r for r in rows}
    for c in classes:
        ref = next((r for r in rows if r["class"] == c and r["reference"] == "real"), None)
        ref = ref or next(r for r in rows if r["class"] == c)
        table.add_column(f"{c}\n(real {ref['n_real']}, fake {ref['n_fake']})", justify="right")
    for m in metrics:
        refs = {cells[(c, m)]["reference"] for c in classes if (c, m) in cells}
        vals = []
        for c in classes:
            r = cells.get((c, m))
            v = None if r is None else r["value"]
            vals.append("—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}")
        table.add_row(m, "/".join(sorted(refs)), *vals)
    return table
