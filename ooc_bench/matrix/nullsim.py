"""Simulated null downstream results (no generator helps): the false-positive rates of the summary's tests, adjustments and verdict rule."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .stats import P_ADJUST, adjust, paired_p, paired_t_p


@dataclass
class NullRates:
    """Error rates over ``reps`` simulated runs of ``n_cells`` comparisons × ``n_seeds`` seeds, all under the null."""

    n_cells: int
    n_seeds: int
    reps: int
    test: str
    per_cell: dict[str, float]  # method -> P(a given comparison is called significant)
    any_cell: dict[str, float]  # method -> P(at least one coloured cell) = family-wise error rate
    verdict: dict[str, float]  # method -> P(the verdict's cell, picked by validation mean, is called a significant gain)
    legacy_any_cell: float  # the old rule: raw paired t (identical differences -> p = 0), p < alpha
    legacy_verdict: float  # the old verdict: best cell by TEST mean, raw paired t, p < alpha and Δ > 0

    @staticmethod
    def mc_se(rate: float, reps: int) -> float:
        """Monte-Carlo standard error of a simulated rate."""
        return float(np.sqrt(max(rate * (1 - rate), 1e-12) / reps))


def _accuracies(rng: np.random.Generator, shape: tuple[int, ...], n_images: int, acc: float, seed_sd: float) -> np.ndarray:
    """Accuracy of cells on ``n_images`` images: a per-seed true accuracy (seed noise), then a binomial count."""
    p = np.clip(acc + seed_sd * rng.standard_normal(shape), 0.0, 1.0)
    return rng.binomial(n_images, p) / n_images


def simulate_null(n_cells: int, n_seeds: int, reps: int, test: str = "sign-flip", alpha: float = 0.05, seed: int = 0,
                  n_test: int = 120, n_val: int = 60, acc: float = 0.8, seed_sd: float = 0.02) -> NullRates:
    """Simulate ``reps`` runs in which every cell has the real-only baseline's accuracy distribution.

    Each run: one baseline and ``n_cells`` cells, each trained with ``n_seeds`` seeds (paired by seed: the cells
    share the baseline, as in a real run); test accuracy = Binomial(n_test, p_seed) / n_test with
    p_seed ~ N(acc, seed_sd), validation accuracy likewise on ``n_val`` images. Vectorised: one array per run set.
    """
    rng = np.random.default_rng(seed)
    base = _accuracies(rng, (reps, 1, n_seeds), n_test, acc, seed_sd)
    cells = _accuracies(rng, (reps, n_cells, n_seeds), n_test, acc, seed_sd)
    val = _accuracies(rng, (reps, n_cells, n_seeds), n_val, acc, seed_sd)
    d = cells - base  # (reps, cells, seeds): paired differences
    p = paired_p(d, test)
    delta = d.mean(-1)
    rows = np.arange(reps)
    best_val = val.mean(-1).argmax(1)
    per_cell, any_cell, verdict = {}, {}, {}
    for method in P_ADJUST:
        sig = adjust(p, method) < alpha  # NaN compares False
        per_cell[method] = float(sig.mean())
        any_cell[method] = float(sig.any(1).mean())
        verdict[method] = float((sig[rows, best_val] & (delta[rows, best_val] > 0)).mean())
    # the rule this project used before: raw paired t where identical non-zero differences gave p = 0
    p_old = paired_t_p(d)
    identical = np.isnan(p_old)
    p_old = np.where(identical, 0.0, p_old)
    sig_old = p_old < alpha
    best_test = cells.mean(-1).argmax(1)
    legacy_verdict = float((sig_old[rows, best_test] & (delta[rows, best_test] > 0)).mean())
    return NullRates(n_cells, n_seeds, reps, test, per_cell, any_cell, verdict, float(sig_old.any(1).mean()), legacy_verdict)
