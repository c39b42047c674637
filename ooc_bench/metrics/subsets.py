"""Matched-n subsampling: FD, KID and PRDC over repeated subsets drawn without replacement, with percentile intervals.

Every distance in one table is computed on subsets of the same size (per class, the same for every generator and
for the real floor), so the sample-size bias of FD (and the k-NN radii of PRDC) is the same in every row. The
spread over the subsets gives the interval; an optional FD∞ extrapolates FD to infinitely many samples by a
linear fit of FD against 1/N, in the manner of Chong & Forsyth (2020).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .frechet import fid_from_features
from .kid import mmd2_from_kernels, poly_kernel
from .prdc import euclidean_distances, prdc_from_distances

DEFAULT_SUBSETS = 50
DEFAULT_FRACTION = 0.5
MAX_SUBSET = 1000
CI_LEVEL = 0.95


@dataclass(frozen=True)
class Stratum:
    """Pools of real and fake row indices and how many to draw from each (the same m on both sides)."""

    real: np.ndarray
    fake: np.ndarray
    m: int


def matched_size(*pool_sizes: int, fraction: float = DEFAULT_FRACTION, max_size: int = MAX_SUBSET) -> int:
    """Subset size for pools of these sizes: ``floor(fraction * min(pools))``, at least 2, at most ``max_size`` and the pool."""
    n = int(min(pool_sizes))
    if n < 2:
        return n
    return int(min(n, max_size, max(2, math.floor(fraction * n))))


def draw(strata: Iterable[Stratum], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One subset: m real and m fake rows from every stratum, without replacement, concatenated."""
    ri, fi = [], []
    for s in strata:
        ri.append(rng.choice(s.real, s.m, replace=False))
        fi.append(rng.choice(s.fake, s.m, replace=False))
    return np.concatenate(ri), np.concatenate(fi)


def subsampled(fr: np.ndarray, ff: np.ndarray, strata: list[Stratum], metrics: Iterable[str], subsets: int = DEFAULT_SUBSETS,
               seed: int = 0, k: int = 5) -> dict[str, np.ndarray]:
    """Values of ``fd``, ``kid`` and/or ``prdc`` (precision, recall, density, coverage) on ``subsets`` matched subsets.

    ``fr``/``ff`` are the full real and fake feature matrices; each subset takes ``m`` rows per stratum from each
    side (without replacement within a subset; subsets are independent draws). Kernel and distance matrices are
    computed once on the pools and indexed per subset. Returns metric -> array of ``subsets`` values.
    """
    want = set(metrics)
    real_rows = np.unique(np.concatenate([s.real for s in strata]))
    fake_rows = np.unique(np.concatenate([s.fake for s in strata]))
    # work on the pooled rows only, re-indexed 0..n-1
    rpos = {int(r): i for i, r in enumerate(real_rows)}
    fpos = {int(r): i for i, r in enumerate(fake_rows)}
    local = [Stratum(np.array([rpos[int(r)] for r in s.real]), np.array([fpos[int(r)] for r in s.fake]), s.m) for s in strata]
    a, b = np.asarray(fr, np.float64)[real_rows], np.asarray(ff, np.float64)[fake_rows]
    m_total = sum(s.m for s in local)
    out: dict[str, list[float]] = {}
    if "kid" in want:
        krr, kff, kfr = poly_kernel(a, a), poly_kernel(b, b), poly_kernel(b, a)
    if "prdc" in want:
        drr, dff, drf = euclidean_distances(a, a), euclidean_distances(b, b), euclidean_distances(a, b)
    rng = np.random.default_rng(seed)
    for _ in range(int(subsets)):
        ri, fi = draw(local, rng)
        if "fd" in want and m_total >= 2:
            out.setdefault("fd", []).append(fid_from_features(a[ri], b[fi]))
        if "kid" in want and m_total >= 2:
            out.setdefault("kid", []).append(mmd2_from_kernels(kff[np.ix_(fi, fi)], krr[np.ix_(ri, ri)], kfr[np.ix_(fi, ri)]))
        if "prdc" in want and m_total > k:
            vals = prdc_from_distances(drr[np.ix_(ri, ri)], dff[np.ix_(fi, fi)], drf[np.ix_(ri, fi)], k)
            for name, v in vals.items():
                out.setdefault(name, []).append(v)
    return {name: np.asarray(v, np.float64) for name, v in out.items()}


def summarise(values: np.ndarray, level: float = CI_LEVEL) -> dict[str, float]:
    """Mean, percentile interval (``level``, default 95 %) and std (ddof 0, as torch-fidelity's kid_std) of subset values."""
    v = np.asarray(values, np.float64)
    if v.size == 0:
        nan = float("nan")
        return {"value": nan, "ci_low": nan, "ci_high": nan, "std": nan}
    lo, hi = np.percentile(v, [50 * (1 - level), 50 * (1 + level)])
    return {"value": float(v.mean()), "ci_low": float(lo), "ci_high": float(hi), "std": float(v.std())}


def fd_infinity(fr: np.ndarray, ff: np.ndarray, strata: list[Stratum], points: int = 5, draws: int = 5,
                seed: int = 0, min_fraction: float = 0.25) -> dict[str, float]:
    """FD extrapolated to N → ∞: FD_N at ``points`` sizes from ``min_fraction`` of the pool to the whole pool
    (``draws`` subsets each), least-squares line of FD_N against 1/N, intercept = FD∞ (Chong & Forsyth 2020).

    Returns ``fd_inf``, the ``slope`` of that line and the largest N used (``n``, per side)."""
    full = [min(len(s.real), len(s.fake)) for s in strata]
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for t in np.linspace(min_fraction, 1.0, points):
        sizes = [max(2, int(round(t * n))) for n in full]
        level = [Stratum(s.real, s.fake, min(m, len(s.real), len(s.fake))) for s, m in zip(strata, sizes)]
        n_tot = sum(s.m for s in level)
        for _ in range(draws if t < 1.0 else 1):
            ri, fi = draw(level, rng)
            xs.append(1.0 / n_tot)
            ys.append(fid_from_features(np.asarray(fr)[ri], np.asarray(ff)[fi]))
    slope, intercept = np.polyfit(np.asarray(xs), np.asarray(ys), 1)
    return {"fd_inf": float(intercept), "slope": float(slope), "n": int(sum(full))}
