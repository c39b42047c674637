"""Decode any supported image (or .npz entry) to uint8 RGB once, in one documented way, and resize it by the one policy.

Conversion to uint8 RGB (used by every stage):

* 8-bit greyscale (L, 1-bit, I;8) is replicated to three channels.
* 16-bit (and other >8-bit integer) data is SCALED linearly over the range of its ACTUAL bit depth,
  ``out = round(v * 255 / (2**bits - 1))`` — never stretched per image, so two images from the same
  camera keep their relative brightness. ``bits`` is what the file declares: a TIFF's BitsPerSample
  (e.g. 12) or MaxSampleValue tag (4095 -> 12 bits), else the full type (16 for uint16: ``v * 255 / 65535``).
  12-bit data in a 16-bit container that declares nothing therefore looks dark; ``ooc-bench run`` and
  ``data inspect`` warn about such images (``ooc_bench.data.checks.bit_depth_warnings``).
* Float data is assumed to lie in [0, 1] and multiplied by 255 (values outside are clipped);
  float images whose maximum exceeds 1 are scaled by ``255 / max``.
* Alpha (RGBA, LA, palette with transparency) is composited on BLACK: ``rgb * alpha / 255``.
* Palette images are expanded through their palette; CMYK and other modes use Pillow's ``convert("RGB")``.
* JPEG/TIFF EXIF orientation is applied (``ImageOps.exif_transpose``) before anything else.
* TIFF files are read with tifffile (16-bit, multi-sample, planar); multi-page stacks use page 0.

Resizing policy (one for all stages): centre-crop to a square of the shorter side, then resize to
``size`` x ``size`` with Pillow BICUBIC (``reducing_gap=3``: big downscales first reduce by an
integer box filter, then finish with bicubic).
"""

from __future__ import annotations

import functools
import os
import re
import threading
from pathlib import Path

import numpy as np

from ..errors import UserInputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
RESIZE_POLICY = "ccrop-bicubic-rg3-v2"  # bump when the decode/resize rule changes: it is part of cache keys

_NPZ_REF = re.compile(r"^(?P<file>.+\.npz)#(?P<key>[^\[\]]+)\[(?P<index>\d+)\]$", re.IGNORECASE)


def is_npz_ref(ref: str) -> bool:
    """True for ``FILE.npz#KEY[INDEX]`` references."""
    return bool(_NPZ_REF.match(str(ref)))


def npz_ref(file: str | os.PathLike, key: str, index: int) -> str:
    """Build the reference string of entry ``index`` of array ``key`` inside an .npz file."""
    return f"{file}#{key}[{index}]"


_npz_lock = threading.Lock()


@functools.lru_cache(maxsize=4)
def _npz_arrays(path: str, mtime_ns: int) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All arrays of an .npz file (kept in a small in-process cache keyed by path and mtime)."""
    path = str(path)
    try:
        mtime = os.stat(path).st_mtime_ns
    except FileNotFoundError:
        raise UserInputError(f"{path}: file not found; check the path (or re-run `ooc-bench data split`)") from None
    with _npz_lock:
        try:
            return _npz_arrays(path, mtime)
        except (OSError, ValueError) as exc:
            raise UserInputError(f"{path}: cannot read this .npz file ({exc}); re-create it with numpy.savez") from None


def array_to_rgb8(arr: np.ndarray, source: str = "array", max_value: int | None = None) -> np.ndarray:
    """Convert an image array (HxW, HxWxC or CxHxW; any integer or float dtype) to uint8 HxWx3 by the module rule.

    ``max_value``: the largest value of the data's actual bit depth (4095 for 12-bit data in uint16); default:
    the maximum of the dtype."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)  # CHW -> HWC
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[-1] not in (1, 2, 3, 4):
        raise UserInputError(f"{source}: unsupported image shape {tuple(np.asarray(arr).shape)}; "
                             "expected HxW, HxWx{1,3,4} or {1,3,4}xHxW")
    a = _to_uint8(a, source, max_value)
    c = a.shape[-1]
    if c in (2, 4):  # grey+alpha / RGBA: composite on black
        alpha = a[..., -1:].astype(np.uint16)
        colour = a[..., :-1].astype(np.uint16)
        a = ((colour * alpha + 127) // 255).astype(np.uint8)
        c -= 1
    if c == 1:
        a = np.repeat(a, 3, axis=-1)
    return np.ascontiguousarray(a)


def _to_uint8(a: np.ndarray, source: str, max_value: int | None = None) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.integer):
        info = np.iinfo(a.dtype)
        if max_value is not None and info.min >= 0 and 0 < max_value < info.max:  # declared bit depth
            top = float(max_value)
            return np.rint(np.minimum(a.astype(np.float64), top) * (255.0 / top)).astype(np.uint8)
        if info.min < 0:  # signed: shift to unsigned range of the same width
            a = a.astype(np.int64) - info.min
            top = float(info.max) - float(info.min)
        else:
            top = float(info.max)
        return np.rint(a.astype(np.float64) * (255.0 / top)).astype(np.uint8)
    if np.issubdtype(a.dtype, np.floating):
        a = np.nan_to_num(a.astype(np.float64))
        peak = float(a.max()) if a.size else 1.0
        scale = 255.0 if peak <= 1.0 else 255.0 / peak
        return np.rint(np.clip(a * scale, 0, 255)).astype(np.uint8)
    raise UserInputError(f"{source}: unsupported pixel type {a.dtype}")


def _pil_to_rgb8(im, source: str) -> np.ndarray:

    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return array_to_rgb8(np.asarray(im).astype(np.uint16), source)
    if mode == "I":  # 32-bit int container; PNG 16-bit greyscale may arrive like this
        arr = np.asarray(im)
        if arr.size and arr.min() >= 0 and arr.max() <= 65535:
            arr = arr.astype(np.uint16)
        return array_to_rgb8(arr, source)
    if mode == "F":
        return array_to_rgb8(np.asarray(im, dtype=np.float32), source)
    if mode in ("L", "RGB", "RGBA", "LA"):
        return array_to_rgb8(np.asarray(im), source)
    if mode == "1":
        return array_to_rgb8(np.asarray(im.convert("L")), source)
    if mode in ("PA", "RGBa", "La"):
        return array_to_rgb8(np.asarray(im.convert("RGBA")), source)
    return array_to_rgb8(np.asarray(im.convert("RGB")), source)  # CMYK, YCbCr, LAB, HSV ...


def declared_max_value(bits_per_sample: int | None, max_sample_value: int | None, dtype: np.dtype) -> int | None:
    """The top of the bit depth a 16-bit-container file declares (BitsPerSample < the dtype's bits, or a
    MaxSampleValue below the dtype's maximum, rounded up to a whole bit depth), or None (use the full type)."""
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.unsignedinteger) or dtype.itemsize < 2:
        return None
    full = dtype.itemsize * 8
    if bits_per_sample and 8 < int(bits_per_sample) < full:
        return (1 << int(bits_per_sample)) - 1
    if max_sample_value and 255 < int(max_sample_value) < (1 << full) - 1:
        return (1 << int(max_sample_value).bit_length()) - 1
    return None


def tiff_declared_max(page, dtype) -> int | None:
    """The largest value a TIFF page declares (BitsPerSample / MaxSampleValue), or None when it declares none."""
    bits = getattr(page, "bitspersample", None)
    tag = page.tags.get("MaxSampleValue")
    value = tag.value if tag is not None else None
    if isinstance(value, (tuple, list)):
        value = max(value) if value else None
    return declared_max_value(int(bits) if isinstance(bits, int) else None, int(value) if value else None, dtype)


def _decode_tiff(path: str) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(path) as tf:
        page = tf.pages[0]
        arr = page.asarray()
        photometric = getattr(page, "photometric", None)
        orientation = page.tags.get("Orientation")
        top = tiff_declared_max(page, arr.dtype)
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)
    if photometric is not None and int(photometric) == 0:  # MINISWHITE: invert
        arr = (top or np.iinfo(arr.dtype).max) - np.minimum(arr, top or np.iinfo(arr.dtype).max) if np.issubdtype(arr.dtype, np.integer) else arr.max() - arr
    if arr.ndim == 3 and arr.shape[-1] > 4:  # extra samples beyond RGBA: keep the first three
        arr = arr[..., :3]
    if photometric is not None and int(photometric) == 5 and arr.ndim == 3 and arr.shape[-1] == 4:  # SEPARATED/CMYK
        from PIL import Image
        return np.asarray(Image.fromarray(_to_uint8(arr, path), mode="CMYK").convert("RGB"))
    rgb = array_to_rgb8(arr, path, max_value=top)
    if orientation is not None and int(orientation.value) != 1:
        rgb = _apply_orientation(rgb, int(orientation.value))
    return rgb


def _apply_orientation(a: np.ndarray, code: int) -> np.ndarray:
    ops = {2: lambda x: x[:, ::-1], 3: lambda x: x[::-1, ::-1], 4: lambda x: x[::-1],
           5: lambda x: np.swapaxes(x, 0, 1), 6: lambda x: np.rot90(x, -1),
           7: lambda x: np.rot90(x, 1)[::-1, ::-1], 8: lambda x: np.rot90(x, 1)}
    return np.ascontiguousarray(ops.get(code, lambda x: x)(a))


def decode_image(ref: str | os.PathLike) -> np.ndarray:
    """Decode an image file or ``FILE.npz#KEY[i]`` entry to uint8 HxWx3 RGB (the module docstring gives the rule).

    Raises UserInputError naming the file when it is missing, truncated or not an image.
    """
    ref = str(ref)
    m = _NPZ_REF.match(ref)
    if m:
        arrays = load_npz(m["file"])
        key, index = m["key"], int(m["index"])
        if key not in arrays or index >= len(arrays[key]):
            raise UserInputError(f"{ref}: no such entry in {m['file']}; re-create the split manifest")
        return array_to_rgb8(arrays[key][index], ref)
    if not os.path.exists(ref):
        raise UserInputError(f"{ref}: file not found; check the path or re-run `ooc-bench data split`")
    if ref.lower().endswith((".tif", ".tiff")):
        try:
            return _decode_tiff(ref)
        except UserInputError:
            raise
        except Exception:  # noqa: BLE001 - fall back to Pillow for TIFF flavours tifffile rejects
            pass
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(ref) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            return _pil_to_rgb8(im, ref)
    except UnidentifiedImageError:
        raise UserInputError(f"{ref}: not an image file Pillow can read; remove it or pass --skip-bad") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UserInputError(f"{ref}: cannot decode image ({exc}); the file may be truncated or corrupt — "
                             "replace it, or pass --skip-bad to leave it out") from None


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop a uint8 HxWxC image to a square and resize it to ``size`` x ``size`` (Pillow bicubic)."""
    from PIL import Image

    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    if side == size:
        return np.ascontiguousarray(image[top:top + side, left:left + side])
    squeeze = image.ndim == 3 and image.shape[-1] == 1
    im = Image.fromarray(image[..., 0] if squeeze else image)
    out = im.resize((size, size), Image.BICUBIC, box=(left, top, left + side, top + side), reducing_gap=3.0)
    arr = np.asarray(out)
    return arr[..., None] if squeeze else arr


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 RGB -> HxWx1 luma (ITU-R 601, Pillow's ``convert('L')``)."""
    from PIL import Image

    return np.asarray(Image.fromarray(image).convert("L"))[..., None]


def decode_resized(ref: str, size: int, channels: str = "rgb") -> np.ndarray:
    """Decode ``ref`` and apply the resize policy; ``channels='gray'`` returns HxWx1 luma."""
    rgb = decode_image(ref)  # a module global, looked up at call time (a test may wrap it)
    if channels == "gray":
        return resize_square(to_gray(rgb), size)
    return resize_square(rgb, size)


def check_image_file(path: str | os.PathLike) -> tuple[int, int, str]:
    """Cheap validity check without a full decode: header readable and (PNG/JPEG) the file ends properly.

    Returns (width, height, mode); raises UserInputError naming the file otherwise.
    """
    from PIL import Image, UnidentifiedImageError

    p = str(path)
    if p.lower().endswith((".tif", ".tiff")):
        try:
            return _check_tiff(p)
        except Exception:  # noqa: BLE001 - let Pillow try (and report) below
            pass
    try:
        with Image.open(p) as im:
            width, height, mode, fmt = im.width, im.height, im.mode, im.format
            try:
                orientation = im.getexif().get(0x0112, 1)
            except Exception:  # noqa: BLE001
                orientation = 1
    except UnidentifiedImageError:
        raise UserInputError(f"{p}: not an image file (Pillow cannot identify it); remove it or pass --skip-bad") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UserInputError(f"{p}: unreadable image header ({exc}); replace the file or pass --skip-bad") from None
    size = os.path.getsize(p)
    with open(p, "rb") as fh:
        fh.seek(max(0, size - 64))
        tail = fh.read()
    if fmt == "PNG" and b"IEND" not in tail:
        raise UserInputError(f"{p}: truncated PNG (no IEND chunk at the end); re-copy the file or pass --skip-bad")
    if fmt in ("JPEG", "MPO") and b"\xff\xd9" not in tail:
        raise UserInputError(f"{p}: truncated JPEG (no end-of-image marker); re-copy the file or pass --skip-bad")
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return width, height, mode


def _check_tiff(path: str) -> tuple[int, int, str]:
    import tifffile

    with tifffile.TiffFile(path) as tf:
        page = tf.pages[0]
        shape, dtype = page.shape, page.dtype
        orientation = page.tags.get("Orientation")
    if len(shape) == 3 and shape[0] in (1, 3, 4) and shape[-1] not in (1, 3, 4):
        shape = shape[1:] + shape[:1]
    h, w = shape[0], shape[1]
    if orientation is not None and int(orientation.value) in (5, 6, 7, 8):
        h, w = w, h
    channels = shape[2] if len(shape) == 3 else 1
    return int(w), int(h), f"{dtype}x{channels}"


def list_images(folder: Path) -> list[Path]:
    """Image files below ``folder`` (recursive, sorted, hidden files skipped)."""
    out = []
    for p in Path(folder).rglob("*"):
        if p.name.startswith(".") or any(part.startswith(".") for part in p.relative_to(folder).parts[:-1]):
            continue
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file():
            out.append(p)
    return sorted(out)
