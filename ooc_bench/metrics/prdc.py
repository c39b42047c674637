"""Precision, recall, density and coverage of a synthetic set against a real one (Naeem et al., 2020)."""

from __future__ import annotations

import numpy as np


def euclidean_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of ``a`` and of ``b`` (len(a) x len(b))."""
    from sklearn.metrics import pairwise_distances

    return pairwise_distances(a, b, metric="euclidean", n_jobs=1)


def knn_radii(feats: np.ndarray, k: int) -> np.ndarray:
    """Distance from each point to its k-th nearest other point in the same set."""
    return _kth_other(euclidean_distances(feats, feats), k)


def _kth_other(d: np.ndarray, k: int) -> np.ndarray:
    d = np.array(d, dtype=np.float64, copy=True)
    np.fill_diagonal(d, np.inf)
    return np.partition(d, k - 1, axis=1)[:, k - 1]


def prdc(real_feats: np.ndarray, fake_feats: np.ndarray, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage with k-NN balls (k = 5 by default).

    precision: share of fakes inside some real k-NN ball; recall: share of reals inside some fake k-NN ball;
    density: mean number of real balls containing a fake, divided by k; coverage: share of real balls that
    contain at least one fake. Needs more than k images in each set.
    """
    real, fake = np.asarray(real_feats, np.float64), np.asarray(fake_feats, np.float64)
    if len(real) <= k or len(fake) <= k:
        raise ValueError(f"PRDC with k={k} needs more than {k} images per set (real {len(real)}, fake {len(fake)})")
    return prdc_from_distances(euclidean_distances(real, real), euclidean_distances(fake, fake), euclidean_distances(real, fake), k)


def prdc_from_distances(d_rr: np.ndarray, d_ff: np.ndarray, d_rf: np.ndarray, k: int = 5) -> dict[str, float]:
    """PRDC from the real-real, fake-fake and real-fake distance matrices (so subsets can index one full matrix)."""
    if len(d_rr) <= k or len(d_ff) <= k:
        raise ValueError(f"PRDC with k={k} needs more than {k} images per set (real {len(d_rr)}, fake {len(d_ff)})")
    r_real = _kth_other(d_rr, k)
    r_fake = _kth_other(d_ff, k)
    d = d_rf  # (n_real, n_fake)
    inside_real = d < r_real[:, None]  # fake j inside real ball i
    return {
        "precision": float(inside_real.any(axis=0).mean()),
        "recall": float((d < r_fake[None, :]).any(axis=1).mean()),
        "density": float(inside_real.sum(axis=0).mean() / k),
        "coverage": float((d.min(axis=1) < r_real).mean()),
    }
