"""Near-copy (memorisation) detection: synthetic-to-train nearest-neighbour distances against real-to-real ones."""

from __future__ import annotations

from typing import Any

import numpy as np

NEARCOPY_PERCENTILE = 5.0
_CHUNK = 1024


def nearest(query: np.ndarray, ref: np.ndarray, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance and index of each query row's nearest ``ref`` row (chunked; optionally leave-one-out)."""
    from sklearn.metrics import pairwise_distances

    q, r = np.asarray(query, np.float64), np.asarray(ref, np.float64)
    dist = np.empty(len(q))
    idx = np.empty(len(q), dtype=np.int64)
    for s in range(0, len(q), _CHUNK):
        d = pairwise_distances(q[s:s + _CHUNK], r, metric="euclidean", n_jobs=1)
        if exclude_self:
            rows = np.arange(d.shape[0])
            d[rows, s + rows] = np.inf
        idx[s:s + _CHUNK] = d.argmin(axis=1)
        dist[s:s + _CHUNK] = d[np.arange(d.shape[0]), idx[s:s + _CHUNK]]
    return dist, idx


def near_copy(fake_feats: np.ndarray, train_feats: np.ndarray, percentile: float = NEARCOPY_PERCENTILE,
              fake_sources: list[str] | None = None, train_hashes: list[str] | None = None) -> dict[str, Any]:
    """Share of synthetic images closer to a training image than real training images are to each other.

    Threshold: the ``percentile`` (5 by default) of the leave-one-out nearest-neighbour distances within the
    training set (exact duplicates inside train, distance 0, are left out of that reference). A synthetic
    image drawn from the same distribution as the training images, but independent of them, has the same
    nearest-neighbour distance distribution, so it is flagged with probability ~5%: ``nearcopy_share`` well
    above 0.05 means memorisation; 1.0 means every sample is a copy. ``nn_dist_ratio`` is the median
    synthetic-to-train distance over the median real-to-real one (< 1: closer than real images are to each other).

    With ``fake_sources`` (source image hash per synthetic image, img2img/aug) and ``train_hashes`` (hash per
    training image), ``source_similarity`` is the mean cosine similarity (features centred on the training
    mean) of each synthetic image to its own source, and ``source_is_nn_share`` the share whose nearest
    training image is their source.

    Returns scalars plus the per-image arrays ``nn_dist``, ``nn_index`` and ``flags``.
    """
    fake, train = np.asarray(fake_feats, np.float64), np.asarray(train_feats, np.float64)
    if len(train) < 2 or len(fake) < 1:
        raise ValueError(f"near-copy needs >= 2 training and >= 1 synthetic images (got {len(train)}, {len(fake)})")
    r2r, _ = nearest(train, train, exclude_self=True)
    ref = r2r[r2r > 0]
    if ref.size == 0:
        ref = r2r
    threshold = float(np.percentile(ref, percentile))
    d, nn = nearest(fake, train)
    flags = d < threshold if threshold > 0 else d <= 0
    med_ref = float(np.median(ref))
    out: dict[str, Any] = {
        "nearcopy_share": float(flags.mean()),
        "nearcopy_threshold": threshold,
        "nn_dist_median": float(np.median(d)),
        "nn_dist_ratio": float(np.median(d) / med_ref) if med_ref > 0 else float("nan"),
        "nn_dist": d, "nn_index": nn, "flags": flags,
    }
    if fake_sources is not None and train_hashes is not None:
        if len(fake_sources) != len(fake) or len(train_hashes) != len(train):
            raise ValueError("fake_sources must have one hash per synthetic image and train_hashes one per training image")
        where = {h: i for i, h in enumerate(train_hashes) if h}
        pairs = [(j, where[h]) for j, h in enumerate(fake_sources) if h and h in where]
        if pairs:
            fj, ti = (np.array(v) for v in zip(*pairs))
            centre = train.mean(axis=0)
            a, b = fake[fj] - centre, train[ti] - centre
            cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
            out["source_similarity"] = float(cos.mean())
            out["source_is_nn_share"] = float((nn[fj] == ti).mean())
            out["n_with_source"] = int(len(pairs))
    return out
