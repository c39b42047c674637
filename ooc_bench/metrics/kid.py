"""Kernel Inception Distance: unbiased MMD^2 with the cubic polynomial kernel, averaged over random subsets."""

from __future__ import annotations

import numpy as np

KID_MAX_SUBSET = 1000


def poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """KID's cubic polynomial kernel (x·y / d + 1)^3 between the rows of ``x`` and ``y``."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 estimate between equal-size samples x and y with k(a, b) = (a.b / D + 1)^3."""
    return mmd2_from_kernels(poly_kernel(x, x), poly_kernel(y, y), poly_kernel(x, y))


def mmd2_from_kernels(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray) -> float:
    """Unbiased MMD² from the three kernel matrices (diagonals of kxx and kyy left out)."""
    m = len(kxx)
    sxx = kxx.sum() - np.trace(kxx)
    syy = kyy.sum() - np.trace(kyy)
    return float((sxx + syy) / (m * (m - 1)) - 2.0 * kxy.sum() / (m * m))


def kid(feats_real: np.ndarray, feats_fake: np.ndarray, subset_size: int | None = None, subsets: int = 100,
        seed: int = 0) -> tuple[float, float]:
    """KID mean and std over ``subsets`` random subsets of ``subset_size`` (default min(n_real, n_fake, 1000)).

    Subsets are drawn as torch-fidelity does (``np.random.RandomState(seed)``, fake subset then real subset,
    without replacement), so with ``seed`` equal to torch-fidelity's ``rng_seed`` and input1 = fake,
    input2 = real the numbers match ``calculate_metrics(kid=True)``. Works from 2 images per set.
    The kernel matrices of the full sets are computed once (float64) and each subset reads its block.
    """
    fr, ff = np.asarray(feats_real, np.float64), np.asarray(feats_fake, np.float64)
    n_r, n_f = len(fr), len(ff)
    size = min(n_r, n_f, KID_MAX_SUBSET) if subset_size is None else int(subset_size)
    if size < 2 or size > min(n_r, n_f):
        raise ValueError(f"KID subset size {size} needs 2 <= size <= min(n_real={n_r}, n_fake={n_f})")
    full = n_r * n_r + n_f * n_f + n_r * n_f <= 3 * 4000 * 4000  # full kernels up to ~400 MB
    if full:
        krr, kff, kfr = poly_kernel(fr, fr), poly_kernel(ff, ff), poly_kernel(ff, fr)
    rng = np.random.RandomState(seed)
    vals = np.empty(subsets)
    for i in range(subsets):
        fi = rng.choice(n_f, size, replace=False)
        ri = rng.choice(n_r, size, replace=False)
        if full:
            vals[i] = mmd2_from_kernels(kff[np.ix_(fi, fi)], krr[np.ix_(ri, ri)], kfr[np.ix_(fi, ri)])
        else:
            vals[i] = mmd2_unbiased(ff[fi], fr[ri])
    return float(vals.mean()), float(vals.std())
