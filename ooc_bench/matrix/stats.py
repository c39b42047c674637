"""Statistics of the downstream results: mean, std, t-based 95 % CI, and paired-by-seed comparisons with a baseline."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass
class Summary:
    """Mean, sample standard deviation and 95 % confidence interval (Student t) of n values."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float


def summarize(values: list[float] | np.ndarray, confidence: float = 0.95) -> Summary:
    """Mean ± t-interval; with one value the interval is undefined (NaN) rather than zero."""
    v = np.asarray(values, dtype=float)
    n = int(v.size)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(v.mean())
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    std = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n))
    return Summary(n, mean, std, mean - half, mean + half)


@dataclass
class Paired:
    """A paired comparison (treatment − baseline over matched seeds): mean difference, its CI and a p-value."""

    n_pairs: int
    delta: float
    delta_ci_low: float
    delta_ci_high: float
    p_value: float
    test: str


def paired_compare(treatment: dict[int, float], baseline: dict[int, float], confidence: float = 0.95) -> Paired:
    """Paired t-test over the seeds both have (two-sided). Identical differences give p = 0 (or 1 when all zero)."""
    seeds = sorted(set(treatment) & set(baseline))
    d = np.array([treatment[s] - baseline[s] for s in seeds], dtype=float)
    n = int(d.size)
    if n == 0:
        return Paired(0, math.nan, math.nan, math.nan, math.nan, "paired t-test")
    s = summarize(d, confidence)
    if n < 2:
        p = math.nan
    elif np.allclose(d, d[0]):
        p = 1.0 if abs(d[0]) < 1e-12 else 0.0
    else:
        p = float(stats.ttest_rel([treatment[s_] for s_ in seeds], [baseline[s_] for s_ in seeds]).pvalue)
    return Paired(n, s.mean, s.ci_low, s.ci_high, p, "paired t-test")
