"""StyleGAN2-ADA training loop: Adam with lazy regularisation, EMA generator, ADA, AMP, grids, checkpoints, resume."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ...errors import UserInputError
from ..checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .augment import AdaController, AugmentPipe
from .loss import StyleGAN2Loss
from .networks import Discriminator, Generator

log = logging.getLogger(__name__)

CKPT_DIR = "checkpoints"


def build_networks(cfg: dict[str, Any], c_dim: int) -> tuple[Generator, Discriminator]:
    """G and D from a resolved generator config."""
    G = Generator(z_dim=cfg["z_dim"], c_dim=c_dim, w_dim=cfg["w_dim"], resolution=cfg["resolution"],
                  channel_base=cfg["channel_base"], channel_max=cfg["channel_max"],
                  mapping_layers=cfg["mapping_layers"], fused_modconv=cfg["fused_modconv"])
    D = Discriminator(c_dim=c_dim, resolution=cfg["resolution"], channel_base=cfg["channel_base"],
                      channel_max=cfg["channel_max"], mbstd_group=cfg["mbstd_group"])
    return G, D


def save_module(module: torch.nn.Module, path: Path) -> None:
    """Write a module's state dict to ``path`` as safetensors."""
    from safetensors.torch import save_file

    from ...atomic import atomic_path

    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, str(tmp))


def load_module(module: torch.nn.Module, path: Path) -> None:
    """Load a safetensors state dict written by :func:`save_module` into ``module``."""
    from safetensors.torch import load_file

    module.load_state_dict(load_file(str(path)))


class Trainer:
    """Owns G, G_ema, D, the optimisers and ADA state for one training run."""

    def __init__(self, cfg: dict[str, Any], c_dim: int, device: torch.device) -> None:
        self.cfg, self.c_dim, self.device = cfg, c_dim, device
        self.G, self.D = build_networks(cfg, c_dim)
        self.G.to(device)
        self.D.to(device)
        if cfg.get("channels_last") and device.type == "cuda":
            self.D.to(memory_format=torch.channels_last)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.batch = int(cfg["batch_size"])
        self.r1_gamma = float(cfg["r1_gamma"])  # resolved with the config (generator.resolve_config), so hashed
        self.augment = AugmentPipe(cfg["augment_pipe"], p=cfg["fixed_p"] or 0.0,
                                   antialias=cfg.get("ada_antialias", True)).to(device)
        ada_kimg = float(cfg["ada_kimg"] or 100.0)
        self.ada = (AdaController(cfg["ada_target"], cfg["ada_interval"], ada_kimg, self.batch)
                    if cfg["fixed_p"] is None and cfg["ada_target"] is not None and self.augment.transforms else None)
        self.amp_dtype = None
        if cfg["amp"] and device.type == "cuda":
            from ...runtime import amp_dtype
            self.amp_dtype = amp_dtype(device)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        autocast = ((lambda: torch.autocast("cuda", dtype=self.amp_dtype)) if self.amp_dtype is not None
                    else contextlib.nullcontext)
        self.loss = StyleGAN2Loss(self.G, self.D, self.augment, self.r1_gamma, cfg["pl_weight"], cfg["style_mixing"],
                                  autocast=autocast)
        betas = tuple(cfg["betas"])
        self.r1_interval = int(cfg["r1_interval"]) if self.r1_gamma > 0 else 0
        self.pl_interval = int(cfg["pl_interval"]) if cfg["pl_weight"] > 0 else 0

        def make_opt(params, interval: int) -> torch.optim.Optimizer:
            ratio = interval / (interval + 1) if interval > 0 else 1.0  # lazy regularisation adjustment
            return torch.optim.Adam(params, lr=cfg["lr"] * ratio, betas=(betas[0] ** ratio, betas[1] ** ratio), eps=1e-8)

        self.opt_G = make_opt(self.G.parameters(), self.pl_interval)
        self.opt_D = make_opt(self.D.parameters(), self.r1_interval)
        self.nimg = 0
        self.iteration = 0
        self.train_seconds = 0.0
        self.stats: dict[str, float] = {}

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, workdir: Path, keep: int = 2) -> Path:
        """Write everything needed to resume into ``workdir/checkpoints/ckpt-<nimg>/`` and point ``latest.json`` at it."""
        rng = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        weights = {name: getattr(self, name).state_dict() for name in ("G", "G_ema", "D")}
        info = {"iteration": self.iteration, "train_seconds": self.train_seconds,
                "ada": self.ada.state_dict() if self.ada else None, "augment_p": float(self.augment.p),
                "pl_mean": float(self.loss.pl_mean), "arch": self.arch_key()}
        return save_checkpoint(Path(workdir) / CKPT_DIR, self.nimg, weights, {"opt_G": self.opt_G, "opt_D": self.opt_D},
                               rng, info, keep=keep, prefix="ckpt-", step_name="nimg")

    def arch_key(self) -> dict[str, Any]:
        """The settings a checkpoint must match to be resumed."""
        keys = ("resolution", "z_dim", "w_dim", "channel_base", "channel_max", "mapping_layers", "batch_size",
                "mbstd_group", "condition_on", "conditional")
        return {k: self.cfg.get(k) for k in keys} | {"c_dim": self.c_dim}

    @staticmethod
    def latest_checkpoint(workdir: Path | None) -> Path | None:
        """The checkpoint folder named by ``workdir/checkpoints/latest.json``, if any."""
        found = latest_checkpoint(Path(workdir) / CKPT_DIR) if workdir is not None else None
        return found[0] if found else None

    def load_checkpoint(self, d: Path) -> None:
        """Restore networks, optimisers, ADA, RNG and the image count from a checkpoint folder."""
        state = json.loads((d / "state.json").read_text())
        if state["arch"] != self.arch_key():
            raise UserInputError(f"{d} was trained with a different configuration ({state['arch']}); "
                                 f"use a new workdir or the same settings ({self.arch_key()})")
        weights, rng = load_checkpoint(d, state, {"opt_G": self.opt_G, "opt_D": self.opt_D})
        for name in ("G", "G_ema", "D"):
            getattr(self, name).load_state_dict(weights[name])
        torch.set_rng_state(rng["cpu"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        self.nimg, self.iteration = int(state["nimg"]), int(state["iteration"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        if self.ada and state["ada"]:
            self.ada.load_state_dict(state["ada"])
        self.augment.p.fill_(float(state["augment_p"]))
        self.loss.pl_mean = torch.tensor(float(state["pl_mean"]))

    # ------------------------------------------------------------------ training
    def _ema_update(self) -> None:
        ema_nimg = self.cfg["ema_kimg"] * 1000
        if self.cfg["ema_rampup"]:
            ema_nimg = min(ema_nimg, self.nimg * self.cfg["ema_rampup"])
        beta = 0.5 ** (self.batch / max(ema_nimg, 1e-8))
        with torch.no_grad():
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
                p_ema.copy_(p.detach().lerp(p_ema, beta))
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
                b_ema.copy_(b)

    def train(self, images: torch.Tensor, labels: torch.Tensor | None, workdir: Path | None,
              grid_fn: Callable[["Trainer", int], None] | None = None, verbose: bool = True) -> None:
        """Train until ``kimg * 1000`` images were shown. ``images``: uint8 (N, 3, R, R); ``labels``: int64 (N,) or None."""
        cfg = self.cfg
        total = int(round(cfg["kimg"] * 1000))
        n_data = images.shape[0]
        dev = self.device
        ck_every = int(cfg["checkpoint_kimg"] * 1000) if cfg["checkpoint_kimg"] else 0
        grid_every = int(cfg["grid_kimg"] * 1000) if cfg["grid_kimg"] else 0
        next_ck = (self.nimg // ck_every + 1) * ck_every if ck_every else None
        next_grid = (self.nimg // grid_every + 1) * grid_every if grid_every else None
        log_every = max(1, min(20, int(total / self.batch / 50) or 1))
        log_file = Path(workdir) / "log.jsonl" if workdir is not None else None
        eye = torch.eye(max(self.c_dim, 1), device=dev)

        def onehot(idx: torch.Tensor) -> torch.Tensor | None:
            return eye[labels[idx].to(dev)] if self.c_dim > 0 else None

        progress = _progress(verbose)
        task = progress.add_task("gan", total=total, completed=min(self.nimg, total))
        start_wall = time.perf_counter()
        start_nimg = self.nimg
        try:
            with progress:
                while self.nimg < total:
                    t0 = time.perf_counter()
                    # ---- G phase
                    self.D.requires_grad_(False)
                    self.G.requires_grad_(True)
                    self.opt_G.zero_grad(set_to_none=True)
                    z = torch.randn(self.batch, self.G.z_dim).to(dev)
                    c_fake = onehot(torch.randint(n_data, (self.batch,)))
                    loss_g = self.loss.g_main(z, c_fake, self.scaler)
                    if self.pl_interval and self.iteration % self.pl_interval == 0:
                        self.stats["pl"] = self.loss.g_pl(z, c_fake, self.pl_interval, self.scaler)
                    self._opt_step(self.opt_G, self.G)
                    # ---- D phase
                    self.G.requires_grad_(False)
                    self.D.requires_grad_(True)
                    self.opt_D.zero_grad(set_to_none=True)
                    idx = torch.randint(n_data, (self.batch,))
                    real = images[idx].to(dev).float() / 127.5 - 1
                    if cfg["mirror"]:
                        flip = torch.rand(self.batch) < 0.5
                        real[flip] = real[flip].flip(-1)
                    if cfg.get("channels_last") and dev.type == "cuda":
                        real = real.contiguous(memory_format=torch.channels_last)
                    c_real = onehot(idx)
                    z = torch.randn(self.batch, self.G.z_dim).to(dev)
                    do_r1 = bool(self.r1_interval) and self.iteration % self.r1_interval == 0
                    d_stats = self.loss.d_step(real, c_real, z, do_r1, self.r1_interval, self.scaler)
                    self._opt_step(self.opt_D, self.D)
                    if self.scaler is not None:
                        self.scaler.update()
                    # ---- ADA, EMA, bookkeeping
                    if self.ada is not None:
                        self.ada.accumulate(self.loss.last_real_logits)
                        self.augment.p.fill_(self.ada.step())
                    self.nimg += self.batch
                    self.iteration += 1
                    self._ema_update()
                    self.train_seconds += time.perf_counter() - t0
                    self.stats.update(d_stats, loss_g=loss_g, p=float(self.augment.p),
                                      rt=self.ada.rt if self.ada else float("nan"), kimg=self.nimg / 1000)
                    done_now = self.nimg - start_nimg
                    ips = done_now / max(time.perf_counter() - start_wall, 1e-9)
                    self.stats["img_per_s"] = ips
                    progress.update(task, completed=min(self.nimg, total),
                                    description=_describe(self.stats))
                    if log_file is not None and (self.iteration % log_every == 0 or self.nimg >= total):
                        with open(log_file, "a", encoding="utf-8") as fh:
                            fh.write(json.dumps({k: round(v, 6) for k, v in self.stats.items()}) + "\n")
                    if workdir is not None and next_grid is not None and self.nimg >= next_grid and grid_fn:
                        grid_fn(self, self.nimg)
                        next_grid += grid_every
                    if workdir is not None and next_ck is not None and self.nimg >= next_ck and self.nimg < total:
                        self.save_checkpoint(workdir)
                        next_ck += ck_every
        except KeyboardInterrupt:
            if workdir is not None:
                d = self.save_checkpoint(workdir)
                log.warning("interrupted at %.3f kimg; checkpoint saved to %s (fit() again with the same workdir resumes)",
                            self.nimg / 1000, d)
            raise
        if workdir is not None and self.nimg > start_nimg:  # a finished run that is fit() again has nothing new
            self.save_checkpoint(workdir)
            if grid_fn:
                grid_fn(self, self.nimg)

    def _opt_step(self, opt: torch.optim.Optimizer, module: torch.nn.Module) -> None:
        # NaN/Inf guard as in the reference: zero out non-finite gradients. With fp16 the scaler first
        # unscales (recording any overflow, so that step() is skipped and the scale lowered), then we clean.
        if self.scaler is not None:
            self.scaler.unscale_(opt)
        for p in module.parameters():
            if p.grad is not None:
                torch.nan_to_num_(p.grad, nan=0.0, posinf=1e5, neginf=-1e5)
        if self.scaler is not None:
            self.scaler.step(opt)
        else:
            opt.step()

    def seconds_per_kimg(self) -> float:
        """Training wall-clock seconds per 1000 images so far (excluding grids and checkpoints)."""
        return self.train_seconds / max(self.nimg / 1000, 1e-9)


def _describe(s: dict[str, float]) -> str:
    def f(k: str, fmt: str = ".3f") -> str:
        v = s.get(k)
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)
    return (f"gan kimg {f('kimg')} | {f('img_per_s', '.1f')} img/s | G {f('loss_g')} D {f('loss_d')} "
            f"| p {f('p')} r_t {f('rt', '.2f')}")


def _progress(verbose: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    disable=not verbose, transient=False)


def make_grid(images: np.ndarray, rows: int) -> np.ndarray:
    """Tile uint8 (N, H, W, 3) images into a (rows*H, cols*W, 3) grid."""
    n, h, w, c = images.shape
    cols = int(math.ceil(n / rows))
    grid = np.zeros((rows * h, cols * w, c), dtype=np.uint8)
    for i, im in enumerate(images):
        r, k = divmod(i, cols)
        grid[r * h:(r + 1) * h, k * w:(k + 1) * w] = im
    return grid
