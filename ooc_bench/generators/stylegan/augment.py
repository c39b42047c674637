"""ADA: differentiable augmentation of every image the discriminator sees, with an adaptive probability p.

Geometry (x-flip, 90° rotations, integer translation, isotropic/anisotropic scaling, arbitrary
rotation, fractional translation) is composed into one affine matrix per image and applied with a
single ``F.grid_sample`` (bilinear, reflection padding); colour (brightness, contrast, luma flip,
hue rotation, saturation) is composed into one 4x4 matrix per image acting on (r, g, b, 1).
Every transform fires independently per image with probability ``p``; at ``p = 0`` nothing runs.
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


class AugmentPipe(torch.nn.Module):
    """Apply the enabled transforms to a batch in [-1, 1] (N, 3, H, W), each with probability ``self.p``."""

    def __init__(self, transforms: str | Iterable[str] = "bgc", p: float = 0.0) -> None:
        super().__init__()
        self.transforms = resolve_transforms(transforms)
        self.register_buffer("p", torch.tensor(float(p)))
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
            theta = g[idx, :2, :].to(x.dtype)
            grid = F.affine_grid(theta, [idx.numel(), c, h, w], align_corners=False)
            moved = F.grid_sample(x[idx], grid, mode="bilinear", padding_mode="reflection", align_corners=False)
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
