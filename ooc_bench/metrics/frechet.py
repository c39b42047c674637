"""Fréchet distance between Gaussians fitted to two feature sets (FID when the features are Inception's)."""

from __future__ import annotations

import numpy as np


def feature_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of an (N, D) feature matrix, in float64."""
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2 or len(feats) < 2:
        raise ValueError(f"need an (N >= 2, D) feature matrix, got shape {feats.shape}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative eigenvalues clipped)."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2}).

    Tr((S1 S2)^{1/2}) is computed as the sum of square roots of the eigenvalues of the symmetric PSD matrix
    S1^{1/2} S2 S1^{1/2} (same spectrum as S1 S2), which is real and stable even when N < D makes the
    covariances singular — no complex parts, no ``sqrtm`` failures. Clipped at 0 against rounding.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shape mismatch: mu {mu1.shape} vs {mu2.shape}, sigma {s1.shape} vs {s2.shape}")
    r1 = _sqrt_psd(s1)
    m = r1 @ s2 @ r1
    tr_covmean = float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum())
    diff = mu1 - mu2
    return max(0.0, float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean))


def fid_from_features(feats1: np.ndarray, feats2: np.ndarray) -> float:
    """Fréchet distance between two (N, D) feature sets (mean and unbiased covariance of each).

    When a set has fewer images than dimensions (small biomedical sets: N ~ 100-700, D = 2048) the
    covariances have rank < N and Tr((S1 S2)^{1/2}) equals the sum of singular values of
    A1 A2^T / sqrt((n1-1)(n2-1)) (A: centred features) — an n1 x n2 problem instead of two D x D
    eigendecompositions; same value, far faster. Otherwise the D x D path of :func:`frechet_distance` is used.
    """
    a = np.asarray(feats1, np.float64)
    b = np.asarray(feats2, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(f"need two (N >= 2, D) feature matrices of equal D, got {a.shape} and {b.shape}")
    n1, n2, d = len(a), len(b), a.shape[1]
    if min(n1, n2) >= d:
        return frechet_distance(*feature_stats(a), *feature_stats(b))
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    a1, a2 = a - mu1, b - mu2
    tr1 = float((a1 * a1).sum() / (n1 - 1))
    tr2 = float((a2 * a2).sum() / (n2 - 1))
    tr_covmean = float(np.linalg.svd(a1 @ a2.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1)))
    diff = mu1 - mu2
    return max(0.0, float(diff @ diff + tr1 + tr2 - 2.0 * tr_covmean))
