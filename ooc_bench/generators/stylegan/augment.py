"""ADA: differentiable augmentation of every image the discriminator sees, with an adaptive probability p.

Geometry (x-flip, 90° rotations, integer translation, isotropic/anisotropic scaling, arbitrary
rotation, fractional translation) is composed into one affine matrix per image. Images whose matrix is
a pixel permutation (flips, 90° turns, whole-pixel shifts) are resampled exactly; the others are
resampled anti-aliased, as in the ADA paper: reflect-pad, 2x upsampling with a half-band low-pass FIR,
one bilinear ``F.grid_sample`` at twice the resolution, low-pass + 2x decimation, crop
(``antialias=False`` restores a single bilinear ``grid_sample`` at the image's own resolution).
Colour (brightness, contrast, luma flip, hue rotation, saturation) is composed into one 4x4 matrix per
image acting on (r, g, b, 1). Every transform fires independently per image with probability ``p``;
at ``p = 0`` nothing runs.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
import torch.nn.functional as F

GEOMETRIC = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
ALL_TRANSFORMS = GEOMETRIC + COLOR
PRESETS: dict[str, tuple[str, ...]] = {
    "blit": ("xflip", "rotate90", "xint"),
    "geom": ("scale", "rotate", "aniso", "xfrac"),
    "color": COLOR,
    "bg": ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac"),
    "bgc": ALL_TRANSFORMS,
    "none": (),
}
# strengths as in the ADA paper (translations are fractions of the image size)
STRENGTH = dict(xint_max=0.125, scale_std=0.2, rotate_max=1.0, aniso_std=0.2, xfrac_std=0.125,
                brightness_std=0.2, contrast_std=0.5, hue_max=1.0, saturation_std=1.0)


def resolve_transforms(spec: str | Iterable[str]) -> tuple[str, ...]:
    """A preset name (``bgc``, ``bg``, ``blit``, ``geom``, ``color``, ``none``), comma list, or list of transform names."""
    if isinstance(spec, str):
        if spec in PRESETS:
            return PRESETS[spec]
        spec = [s.strip() for s in spec.split(",") if s.strip()]
    out: list[str] = []
    for name in spec:
        if name in PRESETS:
            out.extend(PRESETS[name])
        elif name in ALL_TRANSFORMS:
            out.append(name)
        else:
            raise ValueError(f"unknown augmentation {name!r}; valid: {', '.join(list(PRESETS) + list(ALL_TRANSFORMS))}")
    return tuple(dict.fromkeys(out))


def _eye(n: int, size: int, device: torch.device) -> torch.Tensor:
    return torch.eye(size, device=device).repeat(n, 1, 1)


def _translate(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    m = _eye(tx.shape[0], 3, tx.device)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def _scale(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    m = _eye(sx.shape[0], 3, sx.device)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def _rotate(theta: torch.Tensor) -> torch.Tensor:
    m = _eye(theta.shape[0], 3, theta.device)
    c, s = torch.cos(theta), torch.sin(theta)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


def halfband_filter(taps: int = 24) -> torch.Tensor:
    """Symmetric low-pass FIR with cut-off at half the Nyquist frequency (Hamming-windowed sinc), summing to 1.

    24 taps: at 2x, the up + down pair passes the original image's frequencies up to 0.7 of its Nyquist
    unchanged (power x 1.00) and removes everything above 1.1 of it (power < 0.002).
    """
    from scipy.signal import firwin

    f = torch.tensor(firwin(taps, 0.5), dtype=torch.float32)
    return f / f.sum()


def _fir_1d(x: torch.Tensor, f: torch.Tensor, dim: int, up: bool) -> torch.Tensor:
    """Depthwise 2x up-sampling (zero insertion + ``2 f``) or low-pass + 2x decimation along ``dim`` (-1 or -2).

    The padding ``(len(f) - 2) / 2`` keeps pixel centres aligned: output size exactly 2x (or 1/2) the input's.
    """
    c, k = x.shape[1], f.numel()
    shape = (1, 1, 1, k) if dim == -1 else (1, 1, k, 1)
    stride, pad = ((1, 2), (0, (k - 2) // 2)) if dim == -1 else ((2, 1), ((k - 2) // 2, 0))
    if up:
        weight = (f * 2).to(x.dtype).reshape(shape).expand(c, -1, -1, -1)
        return F.conv_transpose2d(x, weight, stride=stride, padding=pad, groups=c)
    return F.conv2d(x, f.to(x.dtype).reshape(shape).expand(c, -1, -1, -1), stride=stride, padding=pad, groups=c)


_MATRICES: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def resample_matrices(n: int, f: torch.Tensor, margin: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Along one axis of length ``n``: ``up`` (n, 2(n + 2 margin)) = reflect-pad by ``margin`` then 2x up-sample
    with ``f``; ``down`` (2(n + 2 margin), n) = low-pass with ``f``, decimate 2x and crop the margin.

    Row vectors: ``x @ up`` and ``y @ down``. Built once per size by running :func:`_fir_1d` on unit vectors, so
    they are exactly those filters; applied as two small matrix products instead of depthwise convolutions,
    which is ~5x faster on CPU.
    """
    key = (n, margin, tuple(round(v, 9) for v in f.tolist()))
    if key not in _MATRICES:
        fd = f.detach().cpu().double()
        eye = torch.eye(n, dtype=torch.float64)[None, None]
        up = _fir_1d(F.pad(eye, (margin, margin, 0, 0), mode="reflect"), fd, -1, True)[0, 0]
        p2 = up.shape[1]
        down = _fir_1d(torch.eye(p2, dtype=torch.float64)[None, None], fd, -1, False)[0, 0][:, margin:margin + n]
        _MATRICES[key] = (up.float(), down.float())
    return _MATRICES[key]


def warp_antialiased(x: torch.Tensor, theta: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Resample ``x`` (N, C, H, W) with the inverse affine maps ``theta`` (N, 2, 3; normalised output -> input
    coordinates, ``align_corners=False``) at twice the resolution between two low-pass filters ``f`` (1-D taps).

    The image is reflect-padded by the filter's reach, upsampled 2x, warped with one bilinear ``grid_sample``
    (reflection padding beyond that) onto the padded extent, filtered and decimated back, and cropped, so that
    rotations and scalings neither alias nor leave the per-image bilinear blur the discriminator could detect
    (``benchmarks/gan_ada_leakage.py``). Only the filter's reach is padded, not the image's rotated corners
    (those come from ``grid_sample``'s reflection), which keeps the cost a few times a plain ``grid_sample``.
    """
    n, _, h, w = x.shape
    m = min(h - 1, w - 1, f.numel() // 4 + 1)  # the filter's reach in input pixels
    up_x, down_x = (t.to(device=x.device, dtype=x.dtype) for t in resample_matrices(w, f, m))
    up_y, down_y = (t.to(device=x.device, dtype=x.dtype) for t in resample_matrices(h, f, m))
    wp, hp = w + 2 * m, h + 2 * m
    up = up_y.t() @ x @ up_x  # (N, C, 2 hp, 2 wp)
    s_in = torch.tensor([w / wp, h / hp], device=x.device, dtype=theta.dtype)  # original -> padded coordinates
    s_out = torch.tensor([wp / w, hp / h], device=x.device, dtype=theta.dtype)  # padded -> original coordinates
    lin = s_in[None, :, None] * theta[:, :, :2] * s_out[None, None, :]
    t = s_in[None, :, None] * theta[:, :, 2:]
    grid = F.affine_grid(torch.cat([lin, t], 2).to(x.dtype), [n, x.shape[1], 2 * hp, 2 * wp], align_corners=False)
    y = F.grid_sample(up, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return down_y.t() @ y @ down_x


def _is_pixel_permutation(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(N,) True where ``theta`` maps pixel centres onto pixel centres (flips, 90° turns, whole-pixel shifts)."""
    lin, t = theta[:, :, :2], theta[:, :, 2]
    integer_lin = (lin - lin.round()).abs().amax(dim=(1, 2)) < 1e-5
    shift = t * torch.tensor([w / 2, h / 2], device=theta.device, dtype=theta.dtype)
    return integer_lin & ((shift - shift.round()).abs().amax(dim=1) < 1e-4)


class AugmentPipe(torch.nn.Module):
    """Apply the enabled transforms to a batch in [-1, 1] (N, 3, H, W), each with probability ``self.p``.

    ``antialias`` (default True) resamples non-integer geometry at 2x between low-pass filters (see
    :func:`warp_antialiased`); False uses one bilinear ``grid_sample`` at the image's resolution.
    """

    def __init__(self, transforms: str | Iterable[str] = "bgc", p: float = 0.0, antialias: bool = True) -> None:
        super().__init__()
        self.transforms = resolve_transforms(transforms)
        self.antialias = bool(antialias)
        self.register_buffer("p", torch.tensor(float(p)))
        self.register_buffer("geom_filter", halfband_filter(), persistent=False)
        self.last_fired: dict[str, torch.Tensor] = {}  # transform -> bool (N,), for diagnostics and tests

    def _fire(self, name: str, n: int, p: float, gen: torch.Generator | None, device: torch.device) -> torch.Tensor:
        mask = torch.rand(n, generator=gen, device=device) < p
        self.last_fired[name] = mask
        return mask.float()

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        self.last_fired = {}
        p = float(self.p)
        if p <= 0.0 or not self.transforms:
            return x
        n, c, h, w = x.shape
        dev = x.device
        on = set(self.transforms)

        def rnd(*shape: int) -> torch.Tensor:
            return torch.rand(*shape, generator=generator, device=dev)

        def rndn(*shape: int) -> torch.Tensor:
            return torch.randn(*shape, generator=generator, device=dev)

        # ---- geometry: inverse matrix (output coords -> input coords) in normalised [-1, 1] units
        g = _eye(n, 3, dev)
        if "xflip" in on:
            i = torch.floor(rnd(n) * 2) * self._fire("xflip", n, p, generator, dev)
            g = g @ _scale(1 - 2 * i, torch.ones_like(i))
        if "rotate90" in on:
            i = torch.floor(rnd(n) * 4) * self._fire("rotate90", n, p, generator, dev)
            g = g @ _rotate(-math.pi / 2 * i)
        if "xint" in on:
            t = (rnd(n, 2) * 2 - 1) * STRENGTH["xint_max"] * self._fire("xint", n, p, generator, dev)[:, None]
            tx, ty = torch.round(t[:, 0] * w) * 2 / w, torch.round(t[:, 1] * h) * 2 / h  # whole pixels
            g = g @ _translate(tx, ty)
        if "scale" in on:
            s = torch.exp2(rndn(n) * STRENGTH["scale_std"] * self._fire("scale", n, p, generator, dev))
            g = g @ _scale(s, s)
        p_rot = 1 - math.sqrt(max(0.0, 1 - p))  # rotate before and after anisotropic scaling: total prob ~ p
        if "rotate" in on:
            fire = (torch.rand(n, generator=generator, device=dev) < p_rot).float()
            theta = (rnd(n) * 2 - 1) * math.pi * STRENGTH["rotate_max"] * fire
            g = g @ _rotate(-theta)
        if "aniso" in on:
            s = torch.exp2(rndn(n) * STRENGTH["aniso_std"] * self._fire("aniso", n, p, generator, dev))
            g = g @ _scale(s, 1 / s)
        if "rotate" in on:
            fire2 = (torch.rand(n, generator=generator, device=dev) < p_rot).float()
            self.last_fired["rotate"] = (fire + fire2) > 0
            theta = (rnd(n) * 2 - 1) * math.pi * STRENGTH["rotate_max"] * fire2
            g = g @ _rotate(-theta)
        if "xfrac" in on:
            t = rndn(n, 2) * STRENGTH["xfrac_std"] * 2 * self._fire("xfrac", n, p, generator, dev)[:, None]
            g = g @ _translate(t[:, 0], t[:, 1])
        geo = (g - _eye(n, 3, dev)).abs().amax(dim=(1, 2)) > 1e-7
        if bool(geo.any()):
            idx = geo.nonzero().squeeze(1)
            theta = g[idx, :2, :]
            smooth = ~_is_pixel_permutation(theta, h, w) if self.antialias else torch.zeros_like(idx, dtype=torch.bool)
            moved = x[idx].clone() if bool(smooth.any()) else None
            exact = (~smooth).nonzero().squeeze(1)
            if exact.numel():  # bilinear sampling at pixel centres: an exact permutation
                grid = F.affine_grid(theta[exact].to(x.dtype), [exact.numel(), c, h, w], align_corners=False)
                part = F.grid_sample(x[idx[exact]], grid, mode="bilinear", padding_mode="reflection", align_corners=False)
                moved = part if moved is None else moved.index_put((exact,), part)
            if bool(smooth.any()):
                sm = smooth.nonzero().squeeze(1)
                moved = moved.index_put((sm,), warp_antialiased(x[idx[sm]], theta[sm], self.geom_filter))
            x = x.index_put((idx,), moved)

        # ---- colour: 4x4 matrix on homogeneous (r, g, b, 1)
        cm = _eye(n, 4, dev)
        v = torch.tensor([1.0, 1.0, 1.0, 0.0], device=dev) / math.sqrt(3)  # luma axis
        vv = torch.outer(v, v)
        if "brightness" in on:
            b = rndn(n) * STRENGTH["brightness_std"] * self._fire("brightness", n, p, generator, dev)
            t = _eye(n, 4, dev)
            t[:, :3, 3] = b[:, None]
            cm = t @ cm
        if "contrast" in on:
            s = torch.exp2(rndn(n) * STRENGTH["contrast_std"] * self._fire("contrast", n, p, generator, dev))
            t = _eye(n, 4, dev)
            t[:, 0, 0], t[:, 1, 1], t[:, 2, 2] = s, s, s
            cm = t @ cm
        if "lumaflip" in on:
            i = torch.floor(rnd(n) * 2) * self._fire("lumaflip", n, p, generator, dev)
            cm = (_eye(n, 4, dev) - 2 * vv[None] * i[:, None, None]) @ cm
        if "hue" in on:
            theta = (rnd(n) * 2 - 1) * math.pi * STRENGTH["hue_max"] * self._fire("hue", n, p, generator, dev)
            cm = _rotate_axis(v[:3], theta) @ cm
        if "saturation" in on:
            s = torch.exp2(rndn(n) * STRENGTH["saturation_std"] * self._fire("saturation", n, p, generator, dev))
            t = vv[None] + (_eye(n, 4, dev) - vv[None]) * s[:, None, None]
            t[:, 3, 3] = 1.0
            cm = t @ cm
        col = (cm - _eye(n, 4, dev)).abs().amax(dim=(1, 2)) > 1e-7
        if bool(col.any()) and c == 3:
            idx = col.nonzero().squeeze(1)
            m = cm[idx].to(x.dtype)
            xs = x[idx].reshape(idx.numel(), 3, h * w)
            xs = m[:, :3, :3] @ xs + m[:, :3, 3:]
            x = x.index_put((idx,), xs.reshape(idx.numel(), 3, h, w))
        return x


def _rotate_axis(axis: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """4x4 rotation by ``theta`` (N,) about a unit 3-vector ``axis`` (Rodrigues)."""
    n = theta.shape[0]
    ax, ay, az = axis.tolist()
    k = torch.tensor([[0, -az, ay], [az, 0, -ax], [-ay, ax, 0]], device=theta.device, dtype=torch.float32)
    s, c = torch.sin(theta)[:, None, None], torch.cos(theta)[:, None, None]
    r3 = torch.eye(3, device=theta.device)[None] + s * k[None] + (1 - c) * (k @ k)[None]
    m = _eye(n, 4, theta.device)
    m[:, :3, :3] = r3
    return m


class AdaController:
    """Adjust p toward ``target`` of r_t = E[sign(D(real))], every ``interval`` steps, at a speed of 0->1 in ``ada_kimg`` kimg."""

    def __init__(self, target: float = 0.6, interval: int = 4, ada_kimg: float = 100.0, batch_size: int = 32,
                 p: float = 0.0) -> None:
        self.target, self.interval, self.ada_kimg, self.batch_size = target, int(interval), float(ada_kimg), int(batch_size)
        self.p = float(p)
        self.rt = 0.0
        self._sum, self._count, self._steps = 0.0, 0, 0

    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Record the signs of the discriminator's outputs on (augmented) real images."""
        self._sum += float(torch.sign(real_logits.detach().float()).sum())
        self._count += int(real_logits.numel())

    def step(self) -> float:
        """Call once per training iteration; every ``interval`` calls, update and return p."""
        self._steps += 1
        if self._steps % self.interval == 0 and self._count > 0:
            self.rt = self._sum / self._count
            adjust = math.copysign(1.0, self.rt - self.target) if self.rt != self.target else 0.0
            self.p = min(1.0, max(0.0, self.p + adjust * self.batch_size * self.interval / (self.ada_kimg * 1000)))
            self._sum, self._count = 0.0, 0
        return self.p

    def state_dict(self) -> dict:
        return {"p": self.p, "rt": self.rt, "sum": self._sum, "count": self._count, "steps": self._steps}

    def load_state_dict(self, d: dict) -> None:
        self.p, self.rt = float(d["p"]), float(d["rt"])
        self._sum, self._count, self._steps = float(d["sum"]), int(d["count"]), int(d["steps"])
