"""Warnings about data that is readable but probably not what the user meant: images smaller than the working size,
and 16-bit images whose values use only part of the 16-bit range without declaring their bit depth."""

from __future__ import annotations

import os
from typing import Iterable

import numpy as np

from .records import ImageRecord

MAX_LISTED = 3


def _listing(items: list[str], n: int = MAX_LISTED) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def _dims(r: ImageRecord) -> tuple[int, int] | None:
    try:
        return int(r.metadata.get("width", "")), int(r.metadata.get("height", ""))
    except (TypeError, ValueError):
        return None


def small_image_warnings(records: Iterable[ImageRecord], size: int, option: str = "--working-size") -> list[str]:
    """One warning when images are smaller than the working size (they get upscaled, inventing no detail)."""
    small = []
    smallest: tuple[int, int] | None = None
    for r in records:
        d = _dims(r)
        if d is not None and min(d) < int(size):
            small.append(r.path)
            if smallest is None or min(d) < min(smallest):
                smallest = d
    if not small:
        return []
    return [f"{len(small)} image(s) are smaller than the working size {size} px (smallest {smallest[0]}x{smallest[1]}, "
            f"e.g. {_listing(small)}): they are upscaled, which adds no detail; choose a smaller {option} or "
            "check the files"]


def _sixteen_bit(mode: str) -> bool:
    return mode.startswith("I;16") or mode in ("I",) or mode.startswith("uint16")


def raw_max_and_declared(path: str) -> tuple[int, int | None] | None:
    """(largest stored value, declared maximum or None) of a 16-bit image file; None when not a 16-bit file."""
    from .decode import tiff_declared_max

    if path.lower().endswith((".tif", ".tiff")):
        try:
            import tifffile

            with tifffile.TiffFile(path) as tf:
                page = tf.pages[0]
                arr = page.asarray()
                if arr.dtype != np.uint16:
                    return None
                return int(arr.max()) if arr.size else 0, tiff_declared_max(page, arr.dtype)
        except Exception:  # noqa: BLE001 - Pillow below
            pass
    from PIL import Image

    try:
        with Image.open(path) as im:
            if not _sixteen_bit(im.mode):
                return None
            arr = np.asarray(im)
    except Exception:  # noqa: BLE001 - unreadable files are reported by the loader
        return None
    return (int(arr.max()) if arr.size else 0), None


def bit_depth_warnings(records: Iterable[ImageRecord], max_files: int = 2000) -> list[str]:
    """One warning when 16-bit images that declare no bit depth use only the low bits (e.g. 12-bit camera data).

    Only files whose recorded mode is 16-bit are opened (at most ``max_files``), so 8-bit sets cost nothing.
    """
    low: list[tuple[str, int]] = []
    checked = 0
    for r in records:
        if "#" in r.path or not _sixteen_bit(str(r.metadata.get("mode", ""))) or not os.path.isfile(r.path):
            continue
        if checked >= max_files:
            break
        checked += 1
        info = raw_max_and_declared(r.path)
        if info is None:
            continue
        peak, declared = info
        if declared is None and peak < (1 << 14):  # 14 bits or fewer of 16 used
            low.append((r.path, peak))
    if not low:
        return []
    peak = max(p for _, p in low)
    bits = max(int(peak).bit_length(), 1)
    return [f"{len(low)} 16-bit image(s) use only the low {bits} bits (largest value {peak} of 65535, e.g. "
            f"{_listing([p for p, _ in low])}): decoded over the full 16-bit range they look dark (at most "
            f"{round(peak * 255 / 65535)} of 255). Declare the bit depth in the files (TIFF BitsPerSample or "
            f"MaxSampleValue = {(1 << bits) - 1}) to have them scaled by it; see docs/data.md"]
