"""Near-copy (memorisation) detection: synthetic-to-train nearest-neighbour distances, calibrated on held-out real images."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

NEARCOPY_PERCENTILE = 5.0
NEARCOPY_METRICS = ("nearcopy_share", "nearcopy_expected", "nearcopy_threshold", "nn_dist_median", "nn_dist_ratio",
                    "source_similarity", "source_is_nn_share")  # the scalars that become result rows
PIXEL_SIZE = 32  # pixel space: images area-averaged to at most this many px per side before distances
_CHUNK = 1024


def nearest(query: np.ndarray, ref: np.ndarray, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance and index of each query row's nearest ``ref`` row (chunked; optionally leave-one-out).

    The neighbour is found with the fast Gram-matrix form; its distance is then recomputed directly, so an exact
    copy is at distance exactly 0 (the Gram form leaves ~1e-7 there)."""
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
    dist = np.sqrt(((q - r[idx]) ** 2).sum(axis=1)) if len(q) else dist
    return dist, idx


def calibrated_rank(n_ref: int, percentile: float = NEARCOPY_PERCENTILE) -> int:
    """Order statistic k used as threshold among ``n_ref`` held-out distances: max(1, floor(q (n_ref + 1)))."""
    return int(min(n_ref, max(1, math.floor(percentile / 100.0 * (n_ref + 1) + 1e-9))))


def _threshold(ref: np.ndarray, percentile: float) -> tuple[float, float, float, float]:
    """Threshold (k-th smallest of n held-out distances), the share ``k / (n + 1)`` expected for independent
    images, and the 95 % interval of the flag rate this one threshold gives them (Beta(k, n + 1 - k): the
    k-th order statistic of n uniforms)."""
    from scipy.stats import beta

    ref = np.sort(np.asarray(ref, np.float64))
    n = len(ref)
    k = calibrated_rank(n, percentile)
    lo, hi = beta.ppf([0.025, 0.975], k, n + 1 - k)
    return float(ref[k - 1]), k / (n + 1), float(lo), float(hi)


def near_copy(fake_feats: np.ndarray, train_feats: np.ndarray, percentile: float = NEARCOPY_PERCENTILE,
              fake_sources: list[str] | None = None, train_hashes: list[str] | None = None,
              val_feats: np.ndarray | None = None, fake_dist: tuple[np.ndarray, np.ndarray] | None = None,
              val_dist: np.ndarray | None = None) -> dict[str, Any]:
    """Share of synthetic images closer to a training image than held-out real images are (one feature space).

    Calibration (``val_feats`` given, the default in ``score``): the reference distances are the distances from
    each held-out real image (the val split) to its nearest training image; exact duplicates of a training image
    (distance 0, a split leak) are left out. The threshold is the k-th smallest of the n reference distances,
    k = max(1, floor(q (n + 1))) with q = ``percentile``/100, and a synthetic image is a near-copy when its
    nearest training image is strictly closer. A synthetic image that is independent of the training set but
    drawn from the same distribution is exchangeable with the held-out images, so it is flagged with
    probability exactly ``nearcopy_expected`` = k / (n + 1) (<= q; larger than q only when n < 1/q - 1), on
    average over held-out sets; the rate one threshold gives lies in [``nearcopy_expected_low``,
    ``nearcopy_expected_high``] with 95 % probability (Beta(k, n + 1 - k)), wide when n is small.
    Without ``val_feats`` the leave-one-out distances inside train are the reference (older behaviour,
    ``calibration = 'train-loo'``): biased when n is small or train holds near-duplicate pairs.

    ``nn_dist_ratio`` is the median synthetic-to-train over the median reference distance (< 1: closer to train
    than real images are). With ``fake_sources`` (source hash per synthetic image, img2img/aug) and
    ``train_hashes`` (hash per training image), ``source_similarity`` is the mean cosine similarity (centred on
    the training mean) of each synthetic image to its own source and ``source_is_nn_share`` the share whose
    nearest training image is their source. ``fake_dist``/``val_dist`` pass precomputed nearest distances
    (and indices) instead of features (the pixel space uses this).

    Returns scalars plus the per-image arrays ``nn_dist``, ``nn_index``, ``flags`` and ``ref_dist``.
    """
    train = np.asarray(train_feats, np.float64)
    if fake_dist is not None:
        d, nn = (np.asarray(a) for a in fake_dist)
    else:
        fake = np.asarray(fake_feats, np.float64)
        if len(train) < 2 or len(fake) < 1:
            raise ValueError(f"near-copy needs >= 2 training and >= 1 synthetic images (got {len(train)}, {len(fake)})")
        d, nn = nearest(fake, train)
    if val_dist is not None:
        r2r, calibration = np.asarray(val_dist, np.float64), "val-to-train"
    elif val_feats is not None and len(val_feats):
        r2r, _ = nearest(val_feats, train)
        calibration = "val-to-train"
    else:
        if len(train) < 2:
            raise ValueError(f"near-copy needs >= 2 training images without held-out ones (got {len(train)})")
        r2r, _ = nearest(train, train, exclude_self=True)
        calibration = "train-loo"
    ref = r2r[r2r > 0]
    if ref.size == 0:
        ref = r2r
    threshold, expected, exp_lo, exp_hi = _threshold(ref, percentile)
    flags = d < threshold if threshold > 0 else d <= 0
    med_ref = float(np.median(ref))
    out: dict[str, Any] = {
        "nearcopy_share": float(flags.mean()) if len(flags) else float("nan"),
        "nearcopy_expected": float(expected), "nearcopy_expected_low": exp_lo, "nearcopy_expected_high": exp_hi,
        "nearcopy_threshold": threshold,
        "nn_dist_median": float(np.median(d)) if len(d) else float("nan"),
        "nn_dist_ratio": float(np.median(d) / med_ref) if med_ref > 0 and len(d) else float("nan"),
        "calibration": calibration, "n_ref": int(ref.size), "n_ref_duplicates": int((r2r <= 0).sum()),
        "nn_dist": d, "nn_index": nn, "flags": flags, "ref_dist": r2r,
    }
    if fake_sources is not None and train_hashes is not None and fake_feats is not None:
        fake = np.asarray(fake_feats, np.float64)
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


# --------------------------------------------------------------------------------------------- pixel space

def pixel_vectors(images_uint8: np.ndarray, size: int = PIXEL_SIZE) -> np.ndarray:
    """uint8 N x H x W x C images as N x s x s x 3 float arrays in [0, 1], s = min(size, H, W), area-averaged.

    Non-square images are centre-cropped to a square first; grey images are repeated to RGB. Area averaging
    (PIL box filter) suppresses pixel noise and small misalignments, and keeps the dihedral search cheap.
    """
    from PIL import Image

    x = np.asarray(images_uint8)
    if x.dtype != np.uint8:
        raise ValueError(f"pixel space needs uint8 images, got {x.dtype}")
    if x.ndim == 3:
        x = x[..., None]
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    n, h, w = x.shape[:3]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    x = x[:, top:top + side, left:left + side]
    s = int(min(size, side))
    if s == side:
        return x.astype(np.float32) / 255.0
    out = np.empty((n, s, s, 3), dtype=np.float32)
    for i, im in enumerate(x):
        out[i] = np.asarray(Image.fromarray(np.ascontiguousarray(im)).resize((s, s), Image.BOX), dtype=np.float32)
    return out / 255.0


def dihedral(x: np.ndarray) -> list[np.ndarray]:
    """The 8 rotations/reflections of N x s x s x C square images (identity first)."""
    out = []
    for flip in (False, True):
        y = x[:, :, ::-1] if flip else x
        for k in range(4):
            out.append(np.rot90(y, k, axes=(1, 2)))
    return out


def nearest_pixels(query: np.ndarray, ref: np.ndarray, invariant: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Nearest ``ref`` image of each ``query`` image in pixel space (see :func:`pixel_vectors`).

    With ``invariant`` the distance is the minimum over the 8 flips/rotations of the query image, so flipped or
    rotated copies count as copies (microscopy images have no canonical orientation).
    """
    r = ref.reshape(len(ref), -1)
    best = np.full(len(query), np.inf)
    idx = np.zeros(len(query), dtype=np.int64)
    for t in (dihedral(query) if invariant else [query]):
        d, i = nearest(np.ascontiguousarray(t).reshape(len(query), -1), r)
        better = d < best
        best[better], idx[better] = d[better], i[better]
    return best, idx


# --------------------------------------------------------------------------------------------- several spaces

def near_copy_spaces(fake_pixels: np.ndarray, train_pixels: np.ndarray, val_pixels: np.ndarray | None,
                     fake_feats: np.ndarray | None = None, train_feats: np.ndarray | None = None,
                     val_feats: np.ndarray | None = None, feature_space: str = "features",
                     percentile: float = NEARCOPY_PERCENTILE, pixel_size: int = PIXEL_SIZE, invariant: bool = True,
                     fake_sources: list[str] | None = None, train_hashes: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Calibrated near-copy detection in pixel space, in a feature space, and in either ('any').

    Arguments are the uint8 images of the synthetic, training and held-out real (val) sets at one working
    size, and optionally their features in ``feature_space`` (the run's extractor). Returns one dict per space
    — ``"pixel"``, ``feature_space`` (when features are given) and ``"any"`` (flagged in at least one space;
    only with features) — each with ``nearcopy_share`` (observed), ``nearcopy_expected`` (share expected for
    synthetic images independent of the training set), ``nearcopy_threshold``, ``n_fake``, ``n_train``,
    ``n_ref`` and the per-image ``flags``. Thresholds come from val-to-train nearest-neighbour distances
    (:func:`near_copy`); without ``val_pixels`` from leave-one-out distances inside train.

    Pixel space (:func:`pixel_vectors`, area-averaged to ``pixel_size``) catches copies with pixel noise and,
    with ``invariant``, flipped or rotated copies; feature spaces catch copies that moved in pixel space.
    For 'any', the expected share is the leave-one-out rate at which held-out images would be flagged in any
    space (each held-out image against thresholds from the others), which is at most the sum of the
    per-space expectations.
    """
    fp, tp = pixel_vectors(fake_pixels, pixel_size), pixel_vectors(train_pixels, pixel_size)
    if len(tp) < 2 or len(fp) < 1:
        raise ValueError(f"near-copy needs >= 2 training and >= 1 synthetic images (got {len(tp)}, {len(fp)})")
    if fp.shape[1:] != tp.shape[1:]:
        raise ValueError(f"synthetic and training images differ in size after the pixel-space resize ({fp.shape[1:]} vs {tp.shape[1:]})")
    have_val = val_pixels is not None and len(val_pixels) > 0
    vdist = None
    if have_val:
        vp = pixel_vectors(val_pixels, pixel_size)
        vdist, _ = nearest_pixels(vp, tp, invariant)
    else:
        # leave-one-out inside train, in the same invariant distance
        d_all = np.full(len(tp), np.inf)
        r = tp.reshape(len(tp), -1)
        for t in (dihedral(tp) if invariant else [tp]):
            d, _ = nearest(np.ascontiguousarray(t).reshape(len(tp), -1), r, exclude_self=True)
            d_all = np.minimum(d_all, d)
        vdist = d_all
    pixel = near_copy(None, tp.reshape(len(tp), -1), percentile, fake_dist=nearest_pixels(fp, tp, invariant),
                      val_dist=vdist)
    if not have_val:
        pixel["calibration"] = "train-loo"
    pixel.update(space="pixel", n_fake=len(fp), n_train=len(tp), pixel_size=int(fp.shape[1]), invariant=bool(invariant))
    out: dict[str, dict[str, Any]] = {"pixel": pixel}
    if fake_feats is None or train_feats is None:
        return out
    feat = near_copy(fake_feats, train_feats, percentile, fake_sources=fake_sources, train_hashes=train_hashes,
                     val_feats=val_feats if have_val else None)
    feat.update(space=feature_space, n_fake=len(fp), n_train=len(tp))
    out[feature_space] = feat
    flags = pixel["flags"] | feat["flags"]
    # leave-one-out over the held-out images: flagged in any space against the others' thresholds
    keep = (pixel["ref_dist"] > 0) & (feat["ref_dist"] > 0)
    n = int(keep.sum())
    if n >= 2:
        k = calibrated_rank(n - 1, percentile)  # threshold rank among the n - 1 others
        hit = np.zeros(n, dtype=bool)
        for space in (pixel, feat):
            ranks = np.argsort(np.argsort(space["ref_dist"][keep], kind="stable"), kind="stable") + 1
            hit |= ranks <= k
        expected = float(hit.mean())
    else:
        expected = float("nan")
    out["any"] = {"nearcopy_share": float(flags.mean()), "nearcopy_expected": expected,
                  "nearcopy_threshold": float("nan"), "flags": flags, "space": "any", "n_fake": len(fp),
                  "n_train": len(tp), "n_ref": n, "calibration": pixel["calibration"]}
    return out
