"""Perceptual near-duplicates across splits: a 64-bit DCT hash per image and the train/held-out pairs that nearly match.

The hash (the classic pHash recipe, written here with numpy and scipy): greyscale, resize to 32x32 (box
filter), 2-D DCT-II, keep the 8x8 lowest frequencies, one bit per coefficient: above the median of those 64
(the DC term excluded from the median). Two images of the same scene — re-encoded, resized, slightly
brightened — differ in a few bits; unrelated images in about 32. Pairs at Hamming distance <= ``max_distance``
(default 4 of 64) between the train split and the val/test splits are reported: the same culture
photographed twice on both sides of a split makes held-out accuracy optimistic. Exact copies (equal content
hash) are refused by the data layer already; this finds the ones that differ in bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HASH_SIDE = 32
LOW = 8
DEFAULT_MAX_DISTANCE = 4


@dataclass(frozen=True)
class NearDuplicate:
    """One train image and one held-out image whose perceptual hashes differ in ``distance`` of 64 bits."""

    train: str
    other: str
    other_split: str
    distance: int


def _grey32(images: np.ndarray) -> np.ndarray:
    """N x 32 x 32 float luma of uint8 N x S x S x C images (box-filter resize through PIL per image)."""
    from PIL import Image

    imgs = np.asarray(images)
    if imgs.ndim == 3:
        imgs = imgs[..., None]
    if imgs.shape[-1] >= 3:
        luma = imgs[..., 0] * 0.299 + imgs[..., 1] * 0.587 + imgs[..., 2] * 0.114
    else:
        luma = imgs[..., 0].astype(np.float64)
    luma = luma.astype(np.float32)
    if luma.shape[1:] == (HASH_SIDE, HASH_SIDE):
        return luma
    out = np.empty((len(luma), HASH_SIDE, HASH_SIDE), np.float32)
    for i, a in enumerate(luma):
        out[i] = np.asarray(Image.fromarray(a, mode="F").resize((HASH_SIDE, HASH_SIDE), Image.BOX))
    return out


def phash(images: np.ndarray) -> np.ndarray:
    """64-bit DCT perceptual hashes (uint64, one per image) of uint8 N x S x S x C images."""
    from scipy.fft import dctn

    if len(images) == 0:
        return np.zeros(0, np.uint64)
    coeffs = dctn(_grey32(images), type=2, axes=(1, 2), norm="ortho")[:, :LOW, :LOW].reshape(-1, LOW * LOW)
    median = np.median(coeffs[:, 1:], axis=1, keepdims=True)
    bits = coeffs > median
    weights = (np.uint64(1) << np.arange(LOW * LOW, dtype=np.uint64))
    return np.bitwise_or.reduce(np.where(bits, weights, np.uint64(0)), axis=1)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """len(a) x len(b) matrix of bit differences between two arrays of uint64 hashes."""
    x = np.bitwise_xor(a[:, None], b[None, :])
    return np.bitwise_count(x).astype(np.int16)


def near_duplicates(train: np.ndarray, train_paths: list[str], held_out: dict[str, tuple[np.ndarray, list[str]]],
                    max_distance: int = DEFAULT_MAX_DISTANCE, chunk: int = 2048) -> list[NearDuplicate]:
    """Pairs (train image, val/test image) at perceptual-hash distance <= ``max_distance``, closest first."""
    return matching_pairs(phash(train), train_paths, {s: (phash(x), p) for s, (x, p) in held_out.items()},
                          max_distance, chunk)


def matching_pairs(h_train: np.ndarray, train_paths: list[str], held_out: dict[str, tuple[np.ndarray, list[str]]],
                   max_distance: int = DEFAULT_MAX_DISTANCE, chunk: int = 2048) -> list[NearDuplicate]:
    """:func:`near_duplicates` on precomputed hashes (``held_out``: split -> (hashes, paths))."""
    found: list[NearDuplicate] = []
    for split, (h_other, paths) in held_out.items():
        for start in range(0, len(h_other), chunk):
            d = hamming(h_train, h_other[start:start + chunk])
            ti, oi = np.nonzero(d <= max_distance)
            found += [NearDuplicate(train_paths[t], paths[start + o], split, int(d[t, o])) for t, o in zip(ti, oi)]
    return sorted(found, key=lambda p: (p.distance, p.train, p.other))


def near_duplicate_warning(pairs: list[NearDuplicate], max_distance: int = DEFAULT_MAX_DISTANCE, shown: int = 3) -> str | None:
    """The one-line warning for a list of pairs (None when there are none)."""
    if not pairs:
        return None
    ex = "; ".join(f"train {p.train} ~ {p.other_split} {p.other} (distance {p.distance})" for p in pairs[:shown])
    more = f"; and {len(pairs) - shown} more (all in provenance.json)" if len(pairs) > shown else ""
    return (f"{len(pairs)} near-duplicate pair(s) across splits (perceptual hash distance <= {max_distance} of 64): "
            f"{ex}{more}. The same scene on both sides of a split makes held-out accuracy optimistic; "
            "check them, or re-split with `--group-by` on the acquisition")
