"""Train-time augmentation as batched tensor ops on the training device: flips, 90° rotations, small affine, colour jitter."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations to apply (each per image, with random parameters drawn from a seeded generator)."""

    flips: bool = True  # horizontal and vertical, each with probability 0.5
    rot90: bool = True  # k * 90°, k uniform in {0, 1, 2, 3} (square images only)
    affine: bool = True  # rotation ±degrees, zoom-in up to 1+scale, shift up to ±translate of the size
    degrees: float = 10.0
    scale: float = 0.1
    translate: float = 0.05
    color_jitter: float = 0.0  # brightness and contrast factors in [1-j, 1+j]; 0 disables


def _rand(n: int, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen, dtype=torch.float64)


def augment_batch(x: torch.Tensor, gen: torch.Generator, cfg: AugmentConfig = AugmentConfig()) -> torch.Tensor:
    """Augment a float batch (N, C, H, W) with values in [0, 1]. Random parameters come from ``gen`` (a CPU
    generator, so results do not depend on the device); the pixel work runs on ``x``'s device."""
    n, _, h, w = x.shape
    square = h == w
    hflip = _rand(n, gen) < 0.5 if cfg.flips else torch.zeros(n, dtype=torch.bool)
    vflip = _rand(n, gen) < 0.5 if cfg.flips else torch.zeros(n, dtype=torch.bool)
    k = torch.randint(0, 4, (n,), generator=gen) if (cfg.rot90 and square) else torch.zeros(n, dtype=torch.long)
    if cfg.affine:
        # One resampling does everything: flips and 90° turns are exact pixel permutations under
        # grid_sample(align_corners=False) on square images, the small affine adds interpolation once.
        ang = (_rand(n, gen) * 2 - 1) * math.radians(cfg.degrees) + k.double() * (math.pi / 2)
        zoom = 1.0 + _rand(n, gen) * cfg.scale
        tx, ty = ((_rand(n, gen) * 2 - 1) * 2 * cfg.translate for _ in range(2))
        cos, sin = torch.cos(ang) / zoom, torch.sin(ang) / zoom
        sx = torch.where(hflip, -1.0, 1.0).double()
        sy = torch.where(vflip, -1.0, 1.0).double()
        # sampling matrix = flips · rotation / zoom (the same order as the exact path: flip, then rot90)
        theta = torch.stack([torch.stack([sx * cos, -sx * sin, tx], 1), torch.stack([sy * sin, sy * cos, ty], 1)], 1)
        grid = F.affine_grid(theta.to(device=x.device, dtype=x.dtype), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    else:
        dev = x.device
        x = torch.where(hflip.to(dev)[:, None, None, None], x.flip(-1), x)
        x = torch.where(vflip.to(dev)[:, None, None, None], x.flip(-2), x)
        if square and bool((k > 0).any()):
            out = x.clone()
            for turns in (1, 2, 3):
                sel = (k == turns).nonzero().flatten().to(dev)
                if sel.numel():
                    out[sel] = torch.rot90(x[sel], turns, dims=(-2, -1))
            x = out
    if cfg.color_jitter > 0:
        j = cfg.color_jitter
        b = (1 + (_rand(n, gen) * 2 - 1) * j).to(device=x.device, dtype=x.dtype)[:, None, None, None]
        c = (1 + (_rand(n, gen) * 2 - 1) * j).to(device=x.device, dtype=x.dtype)[:, None, None, None]
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * c + mean * b).clamp(0, 1)
    return x
