"""Built-in demo dataset: procedural brightfield-like cell-culture images (good vs bad) in the OOC folder layout."""

from __future__ import annotations

import csv
import datetime as _dt
import functools
import io
import shutil
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, write_text
from ..errors import UserInputError
from .progress import progress_bar

CELL_TYPES = {  # name: (relative cell radius, elongation, halo strength)
    "A549": (1.00, 1.7, 0.55),
    "HepG2": (0.85, 1.15, 0.35),
    "Caco2": (1.15, 1.35, 0.45),
}
DAY_BUCKETS = ("0-1_days", "2-3_days", "4_days", "4+_days")
DAY_GROWTH = (0.70, 0.85, 1.0, 1.1)
DATASHEET_COLUMNS = ["imageID", "cell type", "seeding density", "time after seeding", "day",
                     "Decision 1/2 (good/bad)", "flow rate"]
FULL_SIZE = {"grey": (2056, 1542), "colour": (2048, 1536)}
RENDER_MAX = 512  # full-size images are rendered at <= 512 px wide, upscaled, then get full-resolution noise


@functools.lru_cache(maxsize=8)
def _freqs(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    h, w = shape
    return np.fft.rfftfreq(w)[None, :], np.fft.fftfreq(h)[:, None]


def _gauss_fft(shape: tuple[int, int], sx: float, sy: float, theta: float) -> np.ndarray:
    """rfft2 of an oriented, normalised 2-D Gaussian kernel centred at the origin (periodic)."""
    fx, fy = _freqs(shape)
    c, s = np.cos(theta), np.sin(theta)
    u = c * fx + s * fy
    v = -s * fx + c * fy
    return np.exp(-2 * np.pi ** 2 * ((sx * u) ** 2 + (sy * v) ** 2))


def _blob(shape: tuple[int, int], peak: float, sx: float, sy: float, theta: float) -> np.ndarray:
    """Spectrum of a Gaussian blob whose centre value is ``peak`` (a unit impulse convolved with it)."""
    return peak * 2 * np.pi * sx * sy * _gauss_fft(shape, sx, sy, theta)


def _splat(shape: tuple[int, int], ys: np.ndarray, xs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    img = np.zeros(shape, dtype=np.float64)
    np.add.at(img, (np.clip(ys.astype(int), 0, shape[0] - 1), np.clip(xs.astype(int), 0, shape[1] - 1)), weights)
    return img


def _positions(rng: np.random.Generator, n: int, h: int, w: int, clustered: float) -> tuple[np.ndarray, np.ndarray]:
    """``n`` cell centres: a jittered even grid (clustered=0) mixed with Gaussian clumps (clustered=1)."""
    n_clump = int(round(n * clustered))
    n_even = n - n_clump
    ys, xs = [], []
    if n_even:
        step = np.sqrt(h * w / n_even)
        gy, gx = np.meshgrid(np.arange(step / 2, h, step), np.arange(step / 2, w, step), indexing="ij")
        gy, gx = gy.ravel(), gx.ravel()
        pick = rng.permutation(len(gy))[:n_even]
        ys.append(gy[pick] + rng.normal(0, 0.3 * step, len(pick)))
        xs.append(gx[pick] + rng.normal(0, 0.3 * step, len(pick)))
    if n_clump:
        k = max(1, n_clump // 12)
        cy, cx = rng.uniform(0, h, k), rng.uniform(0, w, k)
        which = rng.integers(0, k, n_clump)
        spread = 0.06 * w
        ys.append(cy[which] + rng.normal(0, spread, n_clump))
        xs.append(cx[which] + rng.normal(0, spread, n_clump))
    return np.mod(np.concatenate(ys), h), np.mod(np.concatenate(xs), w)


def render(rng: np.random.Generator, h: int, w: int, good: bool, cell_type: str, day: int,
           date_light: float) -> np.ndarray:
    """One greyscale float image (0..255) of a culture; all randomness from ``rng``."""
    radius_rel, elong, halo = CELL_TYPES[cell_type]
    r = radius_rel * w / 44.0  # cell radius in pixels
    area_cells = h * w / (np.pi * r * r * elong)
    growth = DAY_GROWTH[day]
    if good:
        density = np.clip(rng.normal(0.60, 0.15), 0.30, 0.95) * growth
        clustered = rng.uniform(0.0, 0.25)
        defects = {"debris": rng.uniform(0, 0.25) if rng.random() < 0.25 else 0.0,
                   "blur": rng.uniform(0, 0.45) if rng.random() < 0.2 else 0.0,
                   "dark": rng.uniform(0, 0.25) if rng.random() < 0.15 else 0.0,
                   "dead": rng.uniform(0.0, 0.12)}
    else:
        density = np.clip(rng.normal(0.40, 0.17), 0.06, 0.85) * growth
        clustered = rng.uniform(0.25, 0.8)
        kinds = rng.permutation(["debris", "blur", "dark", "dead"])[: rng.integers(1, 3)]
        defects = {k: (rng.uniform(0.05, 0.9) if k in kinds else 0.0) for k in ("debris", "blur", "dark")}
        defects["dead"] = rng.uniform(0.2, 0.6) if "dead" in kinds else rng.uniform(0.0, 0.2)
    n = max(3, int(density * area_cells * 1.1))
    ys, xs = _positions(rng, n, h, w, clustered)
    n = len(ys)
    n_dead = int(n * defects["dead"])
    shape = (h, w)
    # intact cells: elongated dark bodies with a bright phase halo and a darker nucleus, 4 orientation groups
    orient = rng.integers(0, 4, n)
    live = np.arange(n) >= n_dead
    field = np.zeros((h, w // 2 + 1), dtype=np.complex128)
    for k in range(4):
        sel = live & (orient == k)
        if not sel.any():
            continue
        amp = rng.uniform(0.7, 1.3, sel.sum())
        imp = np.fft.rfft2(_splat(shape, ys[sel], xs[sel], amp))
        theta = k * np.pi / 4 + rng.uniform(-0.2, 0.2)
        field += imp * (_blob(shape, -70, 0.55 * r * elong, 0.55 * r, theta)
                        + _blob(shape, 30 * halo, 0.95 * r * elong, 0.95 * r, theta)
                        + _blob(shape, -30, 0.22 * r, 0.22 * r, 0.0))
    # dead / detached cells: small bright round blobs with a dark rim
    if n_dead:
        imp = np.fft.rfft2(_splat(shape, ys[:n_dead], xs[:n_dead], rng.uniform(0.6, 1.2, n_dead)))
        field += imp * (_blob(shape, 60, 0.3 * r, 0.3 * r, 0) + _blob(shape, -35, 0.5 * r, 0.5 * r, 0))
    if defects["debris"] > 0:
        m = int(defects["debris"] * area_cells * 1.2)
        dy, dx = rng.uniform(0, h, m), rng.uniform(0, w, m)
        imp = np.fft.rfft2(_splat(shape, dy, dx, rng.choice([-1.0, 1.0], m) * rng.uniform(0.5, 1.5, m)))
        field += imp * _blob(shape, 45, 0.12 * r + 0.5, 0.12 * r + 0.5, 0)
    cells = np.fft.irfft2(field, s=shape)
    # smooth illumination: vignetting + gradient, day/date dependent brightness
    yy, xx = np.mgrid[0:h, 0:w]
    yy = (yy - h / 2) / (h / 2)
    xx = (xx - w / 2) / (w / 2)
    g = rng.normal(0, 0.04, 2)
    light = (172 + date_light) * (1 - 0.12 * (xx ** 2 + yy ** 2) + g[0] * xx + g[1] * yy)
    img = light + cells * rng.uniform(0.85, 1.15)
    if defects["blur"] > 0:
        from scipy.ndimage import gaussian_filter

        img = gaussian_filter(img, sigma=defects["blur"] * r * 0.6, mode="wrap")
    if defects["dark"] > 0:
        img = (img - 120) * (1 - 0.45 * defects["dark"]) + 120 * (1 - 0.55 * defects["dark"])
    return img


def _day_value(rng: np.random.Generator, bucket: int) -> int:
    low, high = ((0, 2), (2, 4), (4, 5), (5, 8))[bucket]
    return int(rng.integers(low, high))


def make_demo(out: str | Path, seed: int = 0, n_images: int = 480, size: int = 128, full_size: bool = False) -> Path:
    """Write a deterministic demo dataset in the OOC layout to ``out`` and return ``out``.

    ``out/{train,val,test}/{good,bad}/cell_type_<T>/<day bucket>/<YYMMDD>_<k>.png`` plus
    ``out/OOC_datasheet.csv`` (the Main-sheet columns). Images are ``size`` px wide with 4:3 aspect
    (greyscale and colour cameras, dates shared across splits like the real set); ``full_size``
    renders 2056x1542 greyscale / 2048x1536 colour PNGs instead. Same seed -> byte-identical files.
    """
    from PIL import Image

    out = Path(out).expanduser()
    if n_images < 12:
        raise UserInputError(f"--n-images {n_images}: the demo needs at least 12 images (both classes in every split)")
    if size < 16 and not full_size:
        raise UserInputError(f"--size {size}: use at least 16 px")
    if out.exists():
        if out.is_file():
            raise UserInputError(f"{out}: is a file; choose a folder for the demo dataset")
        ours = {"train", "val", "test", "OOC_datasheet.csv", ".complete"}
        others = [p.name for p in out.iterdir() if p.name not in ours]
        if others:
            raise UserInputError(f"{out}: the folder holds other files ({', '.join(sorted(others)[:3])}); "
                                 "choose an empty folder for the demo dataset")
        for sub in ("train", "val", "test"):  # a previous (or interrupted) demo: replace it
            shutil.rmtree(out / sub, ignore_errors=True)
        (out / "OOC_datasheet.csv").unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)

    rng = np.random.default_rng(seed)
    n_dates = max(8, n_images // 12)
    start = _dt.date(2021, 1, 4).toordinal()
    date_ords = np.sort(rng.choice(np.arange(start, start + 3 * 365), n_dates, replace=False))
    dates = [_dt.date.fromordinal(int(d)).strftime("%y%m%d") for d in date_ords]
    types = list(CELL_TYPES)
    date_type = rng.integers(0, len(types), n_dates)
    date_colour = rng.random(n_dates) < 0.45
    date_light = rng.normal(0, 10, n_dates)
    date_bad = np.clip(rng.normal(0.44, 0.2, n_dates), 0.1, 0.85)  # culture batches fail together: a date effect
    date_density = rng.choice([25000, 50000, 100000], n_dates)
    date_flow = rng.choice([0, 30, 60], n_dates)

    date_of = rng.integers(0, n_dates, n_images)
    bad = rng.random(n_images) < date_bad[date_of]
    bucket = rng.choice(4, n_images, p=[0.25, 0.3, 0.2, 0.25])
    split = np.empty(n_images, dtype=object)
    for cls in (False, True):  # stratified 70/10/20 per class, every class in every split
        idx = rng.permutation(np.flatnonzero(bad == cls))
        n_val = max(1, int(round(0.1 * len(idx))))
        n_test = max(1, int(round(0.2 * len(idx))))
        split[idx[:n_test]] = "test"
        split[idx[n_test:n_test + n_val]] = "val"
        split[idx[n_test + n_val:]] = "train"
    counter: dict[int, int] = {}
    rows = []
    with progress_bar("rendering demo images", n_images, min_total=200 if not full_size else 8) as advance:
        for i in range(n_images):
            d = int(date_of[i])
            counter[d] = counter.get(d, 0) + 1
            stem = f"{dates[d]}_{counter[d]}"
            colour = bool(date_colour[d])
            cell_type = types[int(date_type[d])]
            label = "bad" if bad[i] else "good"
            irng = np.random.default_rng(np.random.SeedSequence([seed, i, 1]))
            if full_size:
                w, h = FULL_SIZE["colour" if colour else "grey"]
            else:
                w, h = size, int(round(size * 3 / 4))
            rw = min(w, RENDER_MAX)
            rh = int(round(rw * h / w))
            img = render(irng, rh, rw, not bad[i], cell_type, int(bucket[i]), float(date_light[d]))
            if colour:
                tint = np.array([1.0, 0.96, 0.86]) * irng.uniform(0.97, 1.03, 3)
                img = img[..., None] * tint
            img = np.clip(img + irng.normal(0, 2.5, img.shape), 0, 255).astype(np.uint8)
            pil = Image.fromarray(img)
            if (rw, rh) != (w, h):
                pil = pil.resize((w, h), Image.BICUBIC)
                big = np.asarray(pil).astype(np.int16) + irng.integers(-3, 4, (h, w) + ((3,) if colour else ()),
                                                                        dtype=np.int16)
                pil = Image.fromarray(np.clip(big, 0, 255).astype(np.uint8))
            target = out / split[i] / label / f"cell_type_{cell_type}" / DAY_BUCKETS[bucket[i]] / f"{stem}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp:
                pil.save(tmp, format="PNG", compress_level=1 if full_size else 6)
            day = _day_value(irng, int(bucket[i]))
            rows.append([stem, cell_type, str(int(date_density[d])), f"{day * 24 + int(irng.integers(0, 12))} h",
                         str(day), "2" if bad[i] else "1", str(int(date_flow[d]))])
            advance(1)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(DATASHEET_COLUMNS)
    writer.writerows(rows)
    write_text(out / "OOC_datasheet.csv", buf.getvalue())
    return out
