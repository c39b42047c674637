"""score(): FD/FID, KID, PRDC (matched-n subsets with intervals), near-copy share and class fidelity, overall and per class."""

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
from .fidelity import class_fidelity
from .frechet import fid_from_features
from .kid import kid
from .nearcopy import NEARCOPY_METRICS, PIXEL_SIZE, near_copy_spaces
from .prdc import prdc
from .subsets import DEFAULT_FRACTION, Stratum, fd_infinity, matched_size, subsampled, summarise

METRICS = ("fd", "kid", "prdc", "nearcopy", "class_fidelity", "fd_inf")
DEFAULT_METRICS = ("fd", "kid", "prdc", "nearcopy", "class_fidelity")
_ALIASES = {"fid": "fd", "classfidelity": "class_fidelity", "fidelity": "class_fidelity", "fdinf": "fd_inf", "fd-inf": "fd_inf"}
PRDC_ROWS = ("precision", "recall", "density", "coverage")
ROW_COLUMNS = ["class", "feature_space", "extractor_id", "weights", "working_size", "resize_mode", "metric", "value",
               "ci_low", "ci_high", "n_real", "n_fake", "reference"]
# torch hub names files <name>-<first 8 hex of sha256>.<ext>; torch-fidelity's standard FID weights:
STANDARD_INCEPTION_SHA_PREFIX = "6726825d"


def parse_metrics(metrics: str | Iterable[str]) -> list[str]:
    """Normalise 'fd,kid' or ['fd', 'kid'] to known metric names ('fid' means 'fd'); UserInputError naming --metrics otherwise."""
    items = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    out = []
    for m in (str(x).strip().lower() for x in items):
        if not m:
            continue
        m = _ALIASES.get(m, m)
        if m not in METRICS:
            raise UserInputError(f"--metrics: unknown metric {m!r}; choose from {', '.join(METRICS)} (fid = fd)")
        if m not in out:
            out.append(m)
    if not out:
        raise UserInputError(f"--metrics: choose at least one of {', '.join(METRICS)}")
    return out


def is_standard_inception(extractor: FeatureExtractor) -> bool:
    """True only for the InceptionV3 space with torch-fidelity's standard weights: the one space whose FD is "FID"."""
    prov = extractor.provenance
    if prov.get("name") != "inception" or prov.get("random_weights"):
        return False
    sha = str(prov.get("weights_sha") or "")
    return sha.startswith(STANDARD_INCEPTION_SHA_PREFIX) or str(prov.get("weights", "")).endswith(f"-{STANDARD_INCEPTION_SHA_PREFIX}.pth")


def weights_label(extractor: FeatureExtractor) -> str:
    """The weights as every row names them: source and sha, with random or non-standard Inception weights flagged loudly."""
    prov = extractor.provenance
    label = extractor.weights
    if prov.get("random_weights"):
        return f"RANDOM WEIGHTS (not pretrained; numbers are not comparable with anything): {label}"
    if prov.get("name") == "inception" and not is_standard_inception(extractor):
        return f"NON-STANDARD Inception weights (not torch-fidelity's FID weights; FD is not FID): {label}"
    return label


def identity(extractor: FeatureExtractor, working_size: int | None = None) -> dict[str, Any]:
    """The identity columns of every row produced with ``extractor``."""
    prov = extractor.provenance
    resize = prov.get("resize_mode") or getattr(extractor, "resize", None) or prov.get("preprocessing", "")
    return {"feature_space": prov.get("feature_space", extractor.name), "extractor": extractor.name,
            "extractor_id": extractor.id(), "weights": weights_label(extractor),
            "working_size": int(working_size) if working_size else None, "resize_mode": str(resize)}


def nearcopy_identity(space: str, base: dict[str, Any], res: dict[str, Any]) -> dict[str, Any]:
    """Identity columns of a near-copy row: the run's extractor for its feature space; for ``pixel`` (and
    ``any``, flagged in pixel or feature space) the pixel space itself, so no row claims a space it was not
    computed in."""
    if space == "pixel":
        from ..hashing import config_hash

        size = int(res.get("pixel_size", PIXEL_SIZE))
        how = f"centre crop, PIL box (area) to {size} px, /255" + (", min over 8 flips/rotations" if res.get("invariant", True) else "")
        return {**base, "feature_space": "pixel", "extractor": "pixel",
                "extractor_id": config_hash({"space": "pixel", "size": size, "invariant": bool(res.get("invariant", True))}),
                "weights": "none", "resize_mode": how}
    if space == "any":
        return {**base, "feature_space": f"pixel+{base['feature_space']}"}
    return base


def _labels(pair: Sequence[Any] | None, n: int) -> np.ndarray | None:
    if pair is None or len(pair) < 2 or pair[1] is None:
        return None
    y = np.asarray(pair[1], dtype=np.int64)
    if len(y) != n:
        raise UserInputError(f"labels ({len(y)}) and images ({n}) differ in number")
    return None if (y < 0).all() else y


def _size_for(subset_size: int | dict[str, int] | None, name: str, fraction: float, *pools: int) -> int:
    if isinstance(subset_size, dict) and name in subset_size:
        return int(min(int(subset_size[name]), *pools))
    if isinstance(subset_size, int):
        return int(min(subset_size, *pools))
    return matched_size(*pools, fraction=fraction)


def score(real: tuple[np.ndarray, np.ndarray], fake: tuple[np.ndarray, np.ndarray], classes: list[str],
          extractor: FeatureExtractor, metrics: Sequence[str] | str = DEFAULT_METRICS, per_class: bool = True,
          train_real: tuple[np.ndarray, np.ndarray] | None = None, fake_sources: list[str] | None = None,
          train_hashes: list[str] | None = None, k: int = 5, cache: FeatureCache | None = None,
          real_key: str | None = None, fake_key: str | None = None, seed: int = 0, subsets: int | None = None,
          subset_size: int | dict[str, int] | None = None, subset_fraction: float = DEFAULT_FRACTION,
          classifier: Any = None, working_size: int | None = None, reference: str = "real",
          heldout_real: tuple[np.ndarray, np.ndarray] | None = None) -> list[dict[str, Any]]:
    """Score a synthetic set against a real reference; one long-format row per (class, metric).

    ``real`` is the reference (the real test split in the benchmark), ``fake`` the synthetic set (labels may be
    None or all -1 for an unlabelled folder: then only class 'all' is scored); ``train_real`` is the real
    training split for the near-copy check (the reference is used, and marked, when omitted). Per-class rows
    compare like classes only.

    Distances: with ``subsets`` (the benchmark uses 50), FD, KID and PRDC are computed on that many pairs of
    subsets drawn without replacement, of ``subset_size`` images per side and class (an int, a dict class ->
    size, or by default ``floor(subset_fraction * min(n_real, n_fake))``); ``value`` is the mean over subsets,
    ``ci_low``/``ci_high`` the 2.5/97.5 percentiles, ``std`` their spread, and ``n_real``/``n_fake`` the images
    per subset — the n the numbers were really computed at. The class 'all' draws the per-class sizes from every
    class (stratified), so both sides have the same class mix. Without ``subsets`` the whole sets are used once
    (KID then averages 100 torch-fidelity-style subsets). The Fréchet row is ``fid`` only for the standard
    Inception weights, else ``fd``; ``fd_inf`` extrapolates FD to N → ∞ (Chong & Forsyth 2020).

    ``class_fidelity``: the share of synthetic images of class c that ``classifier`` (anything with
    ``predict(images)`` and ``classes``, e.g. the run's domain network; default: the extractor if it predicts)
    assigns to c, with a Wilson interval. Rows carry the extractor's identity (:func:`identity`), ``reference``
    and the sample counts; metrics that need more images than a class has are NaN.
    Features come from ``cache`` when given (``real_key``/``fake_key`` name the image sets; default: content hash).
    """
    wanted = parse_metrics(metrics)
    xr, xf = np.asarray(real[0]), np.asarray(fake[0])
    yr, yf = _labels(real, len(xr)), _labels(fake, len(xf))
    if len(xr) == 0 or len(xf) == 0:
        raise UserInputError(f"nothing to score: {len(xr)} real and {len(xf)} synthetic images")
    if subsets is not None and int(subsets) < 1:
        raise UserInputError(f"subsets must be at least 1 (got {subsets})")

    def feats(images: np.ndarray, key: str | None) -> np.ndarray:
        if cache is not None:
            return cache.get_or_compute(extractor, images, key)
        return extractor.extract(images)

    distance = [m for m in ("fd", "kid", "prdc", "fd_inf") if m in wanted]
    fr = feats(xr, real_key) if distance or "nearcopy" in wanted else None
    ff = feats(xf, fake_key) if distance or "nearcopy" in wanted else None
    ft = yt = None
    nc_ref = "train"
    if "nearcopy" in wanted:
        if train_real is not None:
            xt = np.asarray(train_real[0])
            # the reference may be the training split itself (--split train): reuse its features, no second pass
            ft = fr if train_real[0] is real[0] else feats(xt, None)  # (np.asarray of a memmap is a new object)
            yt = _labels(train_real, len(xt))
        else:
            ft, yt, nc_ref = fr, yr, reference
            if train_hashes is not None and len(train_hashes) != len(fr):
                train_hashes = None
    fh = feats(np.asarray(heldout_real[0]), None) if heldout_real is not None and "nearcopy" in wanted else None
    # near-copy pixel space: the images themselves (training images = the reference when train_real is omitted)
    xt_pix = np.asarray(train_real[0]) if train_real is not None else xr
    xh_pix = np.asarray(heldout_real[0]) if heldout_real is not None else None
    yh = _labels(heldout_real, len(fh)) if fh is not None else None

    base = identity(extractor, working_size)
    fd_name = "fid" if is_standard_inception(extractor) else "fd"
    rows: list[dict[str, Any]] = []
    nan = float("nan")

    def add(cls: str, metric: str, value: float, n_real: int | None, n_fake: int, ref: str = reference,
            ident: dict[str, Any] = base, **extra: Any) -> None:
        rows.append({"class": cls, **ident, "reference": ref, "metric": metric, "value": float(value),
                     "ci_low": extra.pop("ci_low", None), "ci_high": extra.pop("ci_high", None),
                     "n_real": None if n_real is None else int(n_real), "n_fake": int(n_fake), **extra})

    labelled = per_class and yf is not None and yr is not None
    groups: list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]] = [
        ("all", np.arange(len(xr)), np.arange(len(xf)), None if ft is None else np.arange(len(ft)),
         None if fh is None else np.arange(len(fh)))]
    if labelled:
        for ci, name in enumerate(classes):
            if not (yf == ci).any():
                continue
            tidx = None if ft is None else (np.flatnonzero(yt == ci) if yt is not None else np.arange(len(ft)))
            hidx = None if fh is None else (np.flatnonzero(yh == ci) if yh is not None else np.arange(len(fh)))
            groups.append((name, np.flatnonzero(yr == ci), np.flatnonzero(yf == ci), tidx, hidx))

    def strata(name: str, ri: np.ndarray, fi: np.ndarray) -> list[Stratum]:
        if name == "all" and yf is not None and yr is not None:
            out = []
            for ci, c in enumerate(classes):
                pr, pf = ri[yr[ri] == ci], fi[yf[fi] == ci]
                if len(pr) and len(pf):
                    out.append(Stratum(pr, pf, _size_for(subset_size, c, subset_fraction, len(pr), len(pf))))
            return out
        return [Stratum(ri, fi, _size_for(subset_size, name, subset_fraction, len(ri), len(fi)))]

    for name, ri, fi, ti, hi in groups:
        nr, nf = len(ri), len(fi)
        pools = {"pool_real": nr, "pool_fake": nf}
        if distance and subsets is not None:
            st = strata(name, ri, fi)
            m = sum(s.m for s in st)
            vals = subsampled(fr, ff, st, distance, subsets=int(subsets), seed=seed, k=k) if st and m >= 2 else {}
            common = {"subsets": int(subsets), **pools}
            for metric, out_name in (("fd", fd_name), ("kid", "kid"), *((p, p) for p in PRDC_ROWS)):
                if (metric if metric in ("fd", "kid") else "prdc") not in wanted:
                    continue
                s = summarise(vals.get(metric, np.zeros(0)))
                add(name, out_name, s["value"], m, m, ci_low=s["ci_low"], ci_high=s["ci_high"], std=s["std"], **common)
        elif distance:
            a, b = fr[ri], ff[fi]
            if "fd" in wanted:
                add(name, fd_name, fid_from_features(a, b) if min(nr, nf) >= 2 else nan, nr, nf, **pools)
            if "kid" in wanted:
                mu, sd = kid(a, b, seed=seed) if min(nr, nf) >= 2 else (nan, nan)
                add(name, "kid", mu, nr, nf, std=sd, **pools)
            if "prdc" in wanted:
                vals = prdc(a, b, k=k) if min(nr, nf) > k else dict.fromkeys(PRDC_ROWS, nan)
                for metric in PRDC_ROWS:
                    add(name, metric, vals[metric], nr, nf, **pools)
        if "fd_inf" in wanted:
            st = [Stratum(s.real, s.fake, min(len(s.real), len(s.fake))) for s in strata(name, ri, fi)]
            if sum(s.m for s in st) >= 8:
                res = fd_infinity(fr, ff, st, seed=seed)
                add(name, f"{fd_name}_inf", res["fd_inf"], res["n"], res["n"], slope=res["slope"], **pools)
        if "nearcopy" in wanted and ti is not None:
            t = ft[ti]
            if len(t) >= 2 and nf >= 1:
                src = [fake_sources[j] for j in fi] if fake_sources is not None else None
                th = [train_hashes[j] for j in ti] if train_hashes is not None else None
                hv = hi if hi is not None and len(hi) else None  # thresholds from held-out real images (val -> train)
                spaces = near_copy_spaces(xf[fi], xt_pix[ti], None if hv is None else xh_pix[hv], ff[fi], t,
                                          None if hv is None else fh[hv], feature_space=str(base["feature_space"]),
                                          fake_sources=src, train_hashes=th)
            else:
                spaces = {base["feature_space"]: {"nearcopy_share": nan}}
            for space, res in spaces.items():  # pixel, the run's feature space, then 'any' (the headline)
                ident = nearcopy_identity(space, base, res)
                for metric in NEARCOPY_METRICS:
                    if metric in res:
                        band = ({"ci_low": res.get("nearcopy_expected_low"), "ci_high": res.get("nearcopy_expected_high")}
                                if metric == "nearcopy_expected" else {})
                        add(name, metric, float(res[metric]), len(t), nf, nc_ref, ident, nearcopy_space=space,
                            calibration=res.get("calibration"), **band)

    judge = classifier if classifier is not None else (extractor if hasattr(extractor, "predict") else None)
    if "class_fidelity" in wanted and judge is not None and yf is not None:
        judge_classes = [str(c) for c in judge.classes]
        if judge_classes != [str(c) for c in classes]:
            raise UserInputError(f"class_fidelity: the classifier's classes {judge_classes} differ from the data's {classes}")
        ident = identity(judge, working_size)
        fid_rows = class_fidelity(judge.predict(xf), yf, classes)
        for name, r in fid_rows.items():
            if name != "all" and not per_class:
                continue
            add(name, "class_fidelity", r["value"], None, r["n"], "real-train classifier", ident,
                ci_low=r["ci_low"], ci_high=r["ci_high"])
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


def format_value(value: Any, lo: Any = None, hi: Any = None, digits: int = 4) -> str:
    """'v' or 'v [lo, hi]' with ``digits`` significant digits; '—' for missing values."""
    def num(x: Any) -> float:
        try:
            return float(x)
        except (TypeError, ValueError):
            return math.nan

    v, a, b = num(value), num(lo), num(hi)
    if math.isnan(v):
        return "—"
    text = f"{v:.{digits}g}"
    if not (math.isnan(a) or math.isnan(b)):
        text += f" [{a:.{max(2, digits - 1)}g}, {b:.{max(2, digits - 1)}g}]"
    return text


def rows_table(rows: list[dict[str, Any]], title: str | None = None) -> Any:
    """A rich Table of score rows: one line per metric (value [95 % interval], n per side), one column per class."""
    from rich.table import Table

    classes = list(dict.fromkeys(r["class"] for r in rows))
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    first = rows[0] if rows else {}
    table = Table(title=title or f"{first.get('feature_space', '')} features — weights {first.get('weights', '')}",
                  title_justify="left")
    # metric names never shrink (80-column terminals): the value columns wrap inside their cells instead
    table.add_column("metric", min_width=max([len(str(m)) for m in metrics] + [6]), no_wrap=True)
    table.add_column("vs", no_wrap=True)
    for c in classes:
        table.add_column(c, justify="right", overflow="fold")
    cells = {(r["class"], r["metric"]): r for r in rows}
    for m in metrics:
        refs = {str(cells[(c, m)]["reference"]) for c in classes if (c, m) in cells}
        vals = []
        for c in classes:
            r = cells.get((c, m))
            if r is None:
                vals.append("—")
                continue
            n = f"n {r['n_fake']}" if r.get("n_real") is None else f"n {r['n_fake']}/{r['n_real']}"
            vals.append(f"{format_value(r['value'], r.get('ci_low'), r.get('ci_high'))}  ({n})")
        table.add_row(m, "/".join(sorted(refs)), *vals)
    return table
