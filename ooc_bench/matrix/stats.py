"""Statistics of the downstream results: t-intervals, paired tests over seeds (exact sign-flip, paired t), Holm/BH adjustment, hierarchical bootstrap."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
from scipy import stats

from ..config import option

TESTS = ("sign-flip", "t")
TEST_LABELS = {"sign-flip": "sign-flip exact", "t": "paired t"}
P_ADJUST = ("holm", "bh", "none")
DEFAULT_RESAMPLES = 2000
MAX_EXACT = 16  # up to 2**16 sign vectors are enumerated; more seeds use that many random flips
BOOT_METRICS = ("accuracy", "balanced_accuracy")  # metrics the per-image bootstrap can recompute


@dataclass
class StatsConfig:
    """How the summary tests and intervals are computed (the spec's ``[stats]`` table)."""

    test: str = option("sign-flip", "paired test over seeds: sign-flip (exact permutation, default) or t (paired t-test)",
                       choices=TESTS)
    p_adjust: str = option("holm", "multiple-comparison adjustment per (model, metric) family", choices=P_ADJUST)
    alpha: float = option(0.05, "significance level applied to the adjusted p-values", low=0.0, high=1.0,
                          low_open=True, high_open=True)
    bootstrap: int = option(DEFAULT_RESAMPLES, "hierarchical-bootstrap resamples (seeds, then test images); 0: off",
                            low=0)
    bootstrap_seed: int = option(0, "seed of the bootstrap resampling")

    def validate(self, where: str = "") -> "StatsConfig":
        """Raise ValueError naming the key and the valid values when a setting is out of range."""
        w = f"{where} " if where else ""
        if self.test not in TESTS:
            raise ValueError(f"{w}test = {self.test!r}; valid: {', '.join(TESTS)}")
        if self.p_adjust not in P_ADJUST:
            raise ValueError(f"{w}p_adjust = {self.p_adjust!r}; valid: {', '.join(P_ADJUST)}")
        if not 0 < float(self.alpha) < 1:
            raise ValueError(f"{w}alpha = {self.alpha!r}; must be between 0 and 1 (e.g. 0.05)")
        if int(self.bootstrap) < 0 or (0 < int(self.bootstrap) < 100):
            raise ValueError(f"{w}bootstrap = {self.bootstrap!r}; 0 (off) or at least 100 resamples (default 2000)")
        return self


@dataclass
class Summary:
    """Mean, sample standard deviation and 95 % confidence interval (Student t) of n values."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float


def summarize(values: list[float] | np.ndarray, confidence: float = 0.95) -> Summary:
    """Mean ± t-interval. Undefined (NaN) with one value, and with zero spread: identical values give no
    information about their own variability, so a zero-width interval would claim a certainty that is not there."""
    v = np.asarray(values, dtype=float)
    n = int(v.size)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(v.mean())
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    std = float(v.std(ddof=1))
    if std <= 1e-12 * max(1.0, abs(mean)):
        return Summary(n, mean, 0.0, math.nan, math.nan)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n))
    return Summary(n, mean, std, mean - half, mean + half)


def _sign_matrix(n: int) -> np.ndarray:
    """All 2**n sign vectors (rows) of length n."""
    bits = (np.arange(2 ** n)[:, None] >> np.arange(n)[None, :]) & 1
    return (1 - 2 * bits).astype(float)


def min_attainable_p(n: int, test: str = "sign-flip") -> float:
    """The smallest two-sided p-value the test can give with n pairs (sign-flip exact: 2 / 2**n)."""
    if n < 1 or (test == "t" and n < 2):
        return math.nan
    if test == "t":
        return 0.0
    return 2.0 / 2 ** n if n <= MAX_EXACT else 1.0 / (2 ** MAX_EXACT + 1)


def sign_flip_p(d: np.ndarray, seed: int = 0) -> np.ndarray:
    """Two-sided paired sign-flip permutation p-value of the mean difference, along the last axis.

    Exact (every one of the 2**n sign patterns) for n <= 16; beyond, 65 536 random patterns plus the observed one.
    The observed pattern and its mirror image always count, so p >= 2 / 2**n (never 0); all-zero differences give 1.
    """
    d = np.asarray(d, dtype=float)
    n = d.shape[-1]
    if n == 0:
        return np.full(d.shape[:-1], math.nan)
    shape = d.shape[:-1]
    flat = d.reshape(-1, n)
    obs = np.abs(flat.mean(-1))
    tol = 1e-9 * np.maximum(1.0, np.abs(flat).max(-1))
    exact = n <= MAX_EXACT
    signs = _sign_matrix(n) if exact else np.random.default_rng(seed).choice([-1.0, 1.0], size=(2 ** MAX_EXACT, n))
    count = np.empty(len(flat))
    step = max(1, 2 ** 22 // len(signs))  # rows per chunk: at most ~4M null statistics in memory
    for i in range(0, len(flat), step):
        null = np.abs(flat[i:i + step] @ signs.T) / n
        count[i:i + step] = (null >= (obs[i:i + step] - tol[i:i + step])[:, None]).sum(-1)
    p = count / len(signs) if exact else (count + 1) / (len(signs) + 1)
    p = np.where(np.abs(flat).max(-1) <= tol, 1.0, p)
    return p.reshape(shape)


def paired_t_p(d: np.ndarray) -> np.ndarray:
    """Two-sided one-sample t-test of the differences (= scipy's ttest_rel), along the last axis.

    Zero spread: p = 1 when every difference is 0, NaN (undefined, never 0) when they are identical and non-zero."""
    d = np.asarray(d, dtype=float)
    n = d.shape[-1]
    if n < 2:
        return np.full(d.shape[:-1], math.nan)
    mean = d.mean(-1)
    sd = d.std(-1, ddof=1)
    scale = np.maximum(1.0, np.abs(d).max(-1))
    degenerate = sd <= 1e-12 * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / (sd / math.sqrt(n))
    p = 2 * stats.t.sf(np.abs(t), n - 1)
    return np.where(degenerate, np.where(np.abs(mean) <= 1e-12 * scale, 1.0, math.nan), p)


def holm(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values along the last axis; NaN entries stay NaN and are not counted in m.

    Sorted p_(1) <= … <= p_(m): adj_(k) = max_{j<=k} min(1, (m − j + 1) · p_(j))."""
    p = np.asarray(p, dtype=float)
    nan = np.isnan(p)
    m = (~nan).sum(-1, keepdims=True)
    order = np.argsort(np.where(nan, np.inf, p), axis=-1, kind="stable")
    ps = np.take_along_axis(p, order, -1)
    k = np.arange(p.shape[-1])
    adj = np.where(k < m, (m - k) * ps, -np.inf)
    adj = np.minimum(np.maximum.accumulate(adj, axis=-1), 1.0)
    out = np.empty_like(adj)
    np.put_along_axis(out, order, adj, -1)
    return np.where(nan, np.nan, out)


def benjamini_hochberg(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (scipy's false_discovery_control) along the last axis; NaN stays NaN."""
    p = np.asarray(p, dtype=float)
    if p.ndim == 1:
        out = np.full(p.shape, np.nan)
        ok = ~np.isnan(p)
        if ok.any():
            out[ok] = stats.false_discovery_control(p[ok], method="bh")
        return out
    if np.isnan(p).any():
        return np.stack([benjamini_hochberg(row) for row in p.reshape(-1, p.shape[-1])]).reshape(p.shape)
    return stats.false_discovery_control(p, axis=-1, method="bh")


def adjust(p: Sequence[float] | np.ndarray, method: str) -> np.ndarray:
    """Adjusted p-values of one family: ``holm``, ``bh`` or ``none``."""
    if method == "holm":
        return holm(p)
    if method == "bh":
        return benjamini_hochberg(p)
    if method == "none":
        return np.asarray(p, dtype=float).copy()
    raise ValueError(f"p_adjust = {method!r}; valid: {', '.join(P_ADJUST)}")


def paired_p(d: np.ndarray, test: str = "sign-flip") -> np.ndarray:
    """The p-value of the chosen paired test (``sign-flip`` or ``t``) of differences along the last axis."""
    if test == "sign-flip":
        return sign_flip_p(d)
    if test == "t":
        return paired_t_p(d)
    raise ValueError(f"test = {test!r}; valid: {', '.join(TESTS)}")


@dataclass
class Paired:
    """A paired comparison (treatment − baseline over matched seeds): mean difference, its CI and a p-value."""

    n_pairs: int
    delta: float
    delta_ci_low: float
    delta_ci_high: float
    p_value: float
    test: str
    prob_improvement: float = math.nan
    p_min: float = math.nan


def paired_compare(treatment: dict[int, float], baseline: dict[int, float], confidence: float = 0.95,
                   test: str = "t") -> Paired:
    """Paired comparison over the seeds both have (two-sided): t-interval of the mean difference, the p-value of
    ``test`` (``t`` or ``sign-flip``), and the probability of improvement P(treatment > baseline) over the pairs
    (ties count one half). Identical differences never give p = 0 or a zero-width interval."""
    seeds = sorted(set(treatment) & set(baseline))
    d = np.array([treatment[s] - baseline[s] for s in seeds], dtype=float)
    n = int(d.size)
    label = TEST_LABELS[test] if test in TEST_LABELS else test
    if test == "sign-flip" and n > MAX_EXACT:
        label = "sign-flip Monte Carlo"
    if n == 0:
        return Paired(0, math.nan, math.nan, math.nan, math.nan, label)
    s = summarize(d, confidence)
    p = float(paired_p(d, test)) if (n >= 2 or test == "sign-flip") else math.nan
    pi = float(np.mean((d > 0) + 0.5 * (d == 0)))
    return Paired(n, s.mean, s.ci_low, s.ci_high, p, label, pi, min_attainable_p(n, test))


# ---------------------------------------------------------------- hierarchical bootstrap


@lru_cache(maxsize=64)
def bootstrap_weights(n_seeds: int, n_images: int, n_resamples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Resampling counts: (B, n_seeds) for the seeds and (B, n_images) for the test images (cached; read-only).

    Level 1 draws seeds with replacement; level 2 draws test images with replacement. One image draw per resample
    is shared by every seed (and by both sides of a paired delta), because every cell is evaluated on the same
    test images: the test set is one sample, and independent draws per seed would understate its error."""
    rng = np.random.default_rng([int(seed), n_seeds, n_images])

    def counts(k: int) -> np.ndarray:
        idx = rng.integers(0, k, size=(n_resamples, k)) + (np.arange(n_resamples) * k)[:, None]
        return np.bincount(idx.ravel(), minlength=n_resamples * k).reshape(n_resamples, k).astype(float)

    ws, wi = counts(n_seeds), counts(n_images)
    ws.setflags(write=False)
    wi.setflags(write=False)
    return ws, wi


def boot_metric(correct: np.ndarray, labels: np.ndarray, metric: str, ws: np.ndarray, wi: np.ndarray) -> np.ndarray:
    """The metric (mean over resampled seeds) of every resample; ``correct`` is (seeds, images) of 0/1."""
    c = np.asarray(correct, dtype=float)
    seed_w = ws / ws.sum(1, keepdims=True)  # (B, S)
    if metric == "accuracy":
        return ((wi @ c.T) * seed_w).sum(1) / wi.sum(1)  # sum_s w_s sum_i w_i c_si, normalised
    if metric == "balanced_accuracy":  # mean over classes of the resampled recall
        masks = (np.asarray(labels)[None, :] == np.unique(labels)[:, None]).astype(float)  # (K, N)
        k, s = len(masks), len(c)
        hits = (wi @ (masks[:, None, :] * c[None, :, :]).reshape(k * s, -1).T).reshape(-1, k, s)  # (B, K, S)
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = (hits * seed_w[:, None, :]).sum(2) / (wi @ masks.T)  # (B, K); a class drawn 0 times: NaN
            return np.nanmean(recall, axis=1)
    raise ValueError(f"the bootstrap recomputes {', '.join(BOOT_METRICS)} only, not {metric!r}")


def percentile_interval(samples: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates."""
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return math.nan, math.nan
    lo, hi = np.quantile(s, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


def hierarchical_bootstrap(correct: np.ndarray, labels: np.ndarray, metric: str = "accuracy",
                           baseline: np.ndarray | None = None, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                           confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the cell's metric, or of (cell − baseline) when ``baseline`` (same seeds in the same
    order, same images) is given: both sides use the same resampled seeds and images, so the pairing is kept."""
    correct = np.asarray(correct)
    s, n = correct.shape
    ws, wi = bootstrap_weights(s, n, n_resamples, seed)
    stat = boot_metric(correct, labels, metric, ws, wi)
    if baseline is not None:
        stat = stat - boot_metric(np.asarray(baseline), labels, metric, ws, wi)
    return percentile_interval(stat, confidence)
