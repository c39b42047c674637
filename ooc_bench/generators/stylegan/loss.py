"""StyleGAN2-ADA losses: non-saturating logistic loss, lazy R1 penalty, path-length regularisation, style mixing."""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

from .augment import AugmentPipe
from .networks import Discriminator, Generator


# the smallest default R1 weight of NVlabs-size networks (capacity paper / large): within what NVlabs' tuned
# configurations use where it replaces their heuristic (128 px at batch 32); the project's CPU presets carry their
# own measured floor (generator._CAPACITY). Measurements and sources: docs/gan.md, "R1 γ: the default, measured".
R1_GAMMA_FLOOR = 0.2


def ada_r1_gamma(resolution: int, batch_size: int) -> float:
    """The ADA paper's heuristic: gamma = 0.0002 * resolution^2 / batch size (0.0016 at 16 px, batch 32)."""
    return 0.0002 * resolution ** 2 / batch_size


def default_r1_gamma(resolution: int, batch_size: int, floor: float = R1_GAMMA_FLOOR) -> float:
    """The default R1 weight: the ADA heuristic, but never below ``floor`` (0.2 unless a capacity preset says).

    The heuristic scales with resolution² and is 30-500x too weak at 8-64 px, where G then stays collapsed or
    learns the classes late; at 0.2 it takes over from ~180 px at batch 32 (~130 px at batch 16).
    """
    return max(float(floor), ada_r1_gamma(resolution, batch_size))


class StyleGAN2Loss:
    """Computes and back-propagates one phase (Gmain, Greg, Dmain, Dreg) of a training iteration."""

    def __init__(self, G: Generator, D: Discriminator, augment: AugmentPipe, r1_gamma: float, pl_weight: float = 0.0,
                 style_mixing: float = 0.0, pl_batch_shrink: int = 2, pl_decay: float = 0.01,
                 autocast: contextlib.AbstractContextManager | None = None,
                 generator: torch.Generator | None = None) -> None:
        self.G, self.D, self.augment = G, D, augment
        self.r1_gamma, self.pl_weight, self.style_mixing = float(r1_gamma), float(pl_weight), float(style_mixing)
        self.pl_batch_shrink, self.pl_decay = pl_batch_shrink, pl_decay
        self.pl_mean = torch.zeros([])
        self.autocast = autocast or contextlib.nullcontext
        self.gen = generator  # CPU torch.Generator for style-mixing draws (None: the seeded global generator)

    def _ctx(self):
        return self.autocast() if callable(self.autocast) else self.autocast

    def run_G(self, z: torch.Tensor, c: torch.Tensor | None, update_emas: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and the ws used (with style mixing at probability ``style_mixing``)."""
        ws = self.G.mapping(z, c, update_emas=update_emas)
        if self.style_mixing > 0:
            n = ws.shape[0]
            cutoff = torch.randint(1, ws.shape[1], (n,), generator=self.gen).to(ws.device)
            use = (torch.rand(n, generator=self.gen) < self.style_mixing).to(ws.device)
            cutoff = torch.where(use, cutoff, torch.full_like(cutoff, ws.shape[1]))
            z2 = torch.randn(z.shape, generator=self.gen).to(z.device)
            ws2 = self.G.mapping(z2, c)
            layer = torch.arange(ws.shape[1], device=ws.device)[None, :]
            ws = torch.where((layer >= cutoff[:, None])[:, :, None], ws2, ws)
        img = self.G.synthesis(ws, noise_mode="random", fused=self.G.fused_modconv)
        return img, ws

    def run_D(self, img: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """Discriminator logits of augmented images."""
        return self.D(self.augment(img, generator=None), c)

    def g_main(self, z: torch.Tensor, c: torch.Tensor | None, scaler=None) -> float:
        """Non-saturating generator loss; backward."""
        with self._ctx():
            img, _ = self.run_G(z, c)
            logits = self.run_D(img, c)
            loss = F.softplus(-logits.float()).mean()
        (scaler.scale(loss) if scaler else loss).backward()
        return float(loss.detach())

    def g_pl(self, z: torch.Tensor, c: torch.Tensor | None, interval: int, scaler=None) -> float:
        """Path-length regulariser (fp32); backward. Returns the penalty."""
        n = max(1, z.shape[0] // self.pl_batch_shrink)
        img, ws = self.run_G(z[:n], c[:n] if c is not None else None)
        noise = torch.randn(img.shape, generator=self.gen).to(img.device) / np.sqrt(img.shape[2] * img.shape[3])
        (grads,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
        lengths = grads.square().sum(2).mean(1).sqrt()
        self.pl_mean = self.pl_mean.to(lengths.device)
        self.pl_mean = self.pl_mean.lerp(lengths.mean().detach(), self.pl_decay)
        penalty = (lengths - self.pl_mean).square().mean()
        loss = penalty * self.pl_weight * interval + img[:, 0, 0, 0].sum() * 0
        (scaler.scale(loss) if scaler else loss).backward()
        return float(penalty.detach())

    def d_step(self, real: torch.Tensor, c: torch.Tensor | None, gen_z: torch.Tensor, do_r1: bool, r1_interval: int,
               scaler=None) -> dict[str, float]:
        """Logistic loss on fakes and reals (+ lazy R1 on augmented reals, in fp32); backward. Returns stats."""
        stats: dict[str, float] = {}
        with torch.no_grad(), self._ctx():
            fake, _ = self.run_G(gen_z, c, update_emas=True)
        with self._ctx():
            fake_logits = self.D(self.augment(fake.detach()), c)
            loss_fake = F.softplus(fake_logits.float()).mean()
        real_aug = self.augment(real)
        if do_r1 and self.r1_gamma > 0:
            real_aug = real_aug.detach().float().requires_grad_(True)
            real_logits = self.D(real_aug, c).float()  # fp32 for the gradient penalty
        else:
            with self._ctx():
                real_logits = self.D(real_aug, c).float()
        loss_real = F.softplus(-real_logits).mean()
        loss = loss_fake + loss_real
        if do_r1 and self.r1_gamma > 0:
            (grad,) = torch.autograd.grad(real_logits.sum(), real_aug, create_graph=True)
            penalty = grad.square().sum(dim=[1, 2, 3]).mean()
            loss = loss + penalty * (self.r1_gamma / 2) * r1_interval
            stats["r1"] = float(penalty.detach())
        (scaler.scale(loss) if scaler else loss).backward()
        stats["loss_d"] = float((loss_fake + loss_real).detach())
        stats["d_real"] = float(real_logits.detach().mean())
        stats["d_fake"] = float(fake_logits.detach().float().mean())
        self.last_real_logits = real_logits.detach()
        return stats
