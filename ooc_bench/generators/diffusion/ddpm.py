"""`ddpm`: a class-conditional diffusion model (diffusers UNet2DModel) trained from scratch on the training split."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...config import build, option, to_dict
from ...errors import UserInputError
from ..base import Generator, TrainingSet
from .progress import ProgressBar

# width: channels of the first level (doubled at level 2, x4 from level 4); attention: at the levels of these sizes
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"width": 16, "layers_per_block": 1, "attention_at": (), "learning_rate": 1e-3},
    "small": {"width": 64, "layers_per_block": 2, "attention_at": (8,), "learning_rate": 2e-4},
    "base": {"width": 128, "layers_per_block": 2, "attention_at": (8, 16), "learning_rate": 1e-4},
}
RESOLUTIONS = (16, 32, 64, 128)
SAMPLERS = ("dpm++", "ddim")
MULT = (1, 2, 2, 4, 4)


def unet_config(preset: str, resolution: int, num_classes: int) -> dict[str, Any]:
    """``UNet2DModel`` keyword arguments of a size preset at a resolution (levels down to 8x8), with a null class."""
    p = PRESETS[preset]
    levels = int(math.log2(resolution)) - 2  # 16 -> 2 levels, 32 -> 3, 64 -> 4, 128 -> 5: the bottom level is 8x8
    channels = tuple(p["width"] * MULT[i] for i in range(levels))
    sizes = [resolution // 2 ** i for i in range(levels)]
    down = tuple("AttnDownBlock2D" if s in p["attention_at"] else "DownBlock2D" for s in sizes)
    up = tuple("AttnUpBlock2D" if s in p["attention_at"] else "UpBlock2D" for s in reversed(sizes))
    return {"sample_size": resolution, "in_channels": 3, "out_channels": 3, "block_out_channels": channels,
            "layers_per_block": p["layers_per_block"], "down_block_types": down, "up_block_types": up,
            "norm_num_groups": min(32, p["width"] // 4), "attention_head_dim": 32,
            "num_class_embeds": num_classes + 1, "add_attention": bool(p["attention_at"])}


@dataclass
class DDPMConfig:
    """Settings of the `ddpm` generator (defaults, types, ranges and help in one place)."""

    resolution: int = option(64, "working resolution (px)", choices=RESOLUTIONS)
    preset: str = option("auto", "UNet size preset (auto: small on CUDA, tiny on CPU)", choices=("auto", *PRESETS))
    steps: int = option(20000, "training steps", low=0)
    batch_size: int | None = option(None, "training batch size (none: 32 on CUDA, 16 on CPU)", low=1)
    learning_rate: float | None = option(None, "AdamW learning rate (none: the preset's)", low=0.0, low_open=True)
    warmup: int = option(200, "linear learning-rate warm-up steps", low=0)
    prediction_type: str = option("v_prediction", "what the UNet predicts (v: well-posed at high noise; the digits "
                                                  "comparison in docs/diffusion.md)", choices=("epsilon", "v_prediction"))
    beta_schedule: str = option("squaredcos_cap_v2", "noise schedule (a diffusers beta_schedule)")
    num_train_timesteps: int = option(1000, "diffusion timesteps of the training schedule", low=1)
    ema_decay: float = option(0.999, "EMA decay of the sampling weights", low=0.0, high=1.0)
    class_dropout: float = option(0.1, "share of training steps without the class (for guidance)", low=0.0, high=1.0)
    guidance_scale: float = option(1.5, "classifier-free guidance scale (1: none; the default is chosen by the "
                                        "digits sweep in docs/diffusion.md)", low=0.0)
    sample_steps: int = option(25, "sampler steps", low=1)
    sampler: str = option("dpm++", "sampler", choices=SAMPLERS)
    clip_x0: bool = option(True, "clip the predicted clean image to [-1, 1] while sampling")
    sample_batch: int = option(64, "images per sampling batch", low=1)
    flip: str = option("h", "random flips during training", choices=("", "none", "h", "v", "hv"))
    sample_every: int = option(1000, "steps between training-time sample grids (0: only the final one)", low=0,
                               runtime=True)
    checkpoint_every: int = option(1000, "steps between checkpoints (0: none)", low=0, runtime=True)
    seed: int = option(0, "training seed")
    device: str = option("auto", "auto | cpu | cuda | cuda:N", runtime=True)
    mixed_precision: bool = option(True, "bf16/fp16 autocast on CUDA")


class ClassConditionalDDPM(Generator):
    """Class-conditional diffusion model trained from scratch: the no-pretrained-weights counterpart of the GAN.

    Training uses a ``DDPMScheduler`` (epsilon or v prediction), AdamW with warm-up, an EMA of the
    weights, class dropout (for optional classifier-free guidance) and random flips; sampling uses
    DPM-Solver++ with the EMA weights. With a ``workdir``, checkpoints and sample grids are written
    there and an interrupted ``fit`` resumes from the last checkpoint, continuing its step count.
    """

    name = "ddpm"

    config_class = DDPMConfig

    def __init__(self, **config: Any) -> None:
        c = build(DDPMConfig, config, "ddpm")  # names, types and ranges: one declaration, DDPMConfig
        cfg = to_dict(c)
        from ...runtime import pick_device

        on_cuda = pick_device(c.device).type == "cuda"  # "auto" values are resolved for the device (and hashed so)
        if cfg["preset"] == "auto":
            cfg["preset"] = "small" if on_cuda else "tiny"  # small costs ~20x tiny per step (docs/diffusion.md)
        if cfg["batch_size"] is None:
            cfg["batch_size"] = 32 if on_cuda else 16
        cfg["learning_rate"] = float(c.learning_rate if c.learning_rate is not None else PRESETS[cfg["preset"]]["learning_rate"])
        super().__init__(**cfg)
        self._model: Any = None  # EMA weights, used for sampling
        self.train_stats: dict[str, Any] = {}
        self.sampling_stats: dict[str, float] = {}  # max |x_t| over the last generate() call (divergence check)

    # -- helpers ----------------------------------------------------------------------------------
    def _device(self) -> Any:
        from ...runtime import pick_device

        return pick_device(self.config["device"])

    def _build(self) -> Any:
        from diffusers import UNet2DModel

        return UNet2DModel(**unet_config(self.config["preset"], self.config["resolution"], len(self.classes)))

    def _noise_scheduler(self) -> Any:
        from diffusers import DDPMScheduler

        return DDPMScheduler(num_train_timesteps=self.config["num_train_timesteps"],
                             beta_schedule=self.config["beta_schedule"], prediction_type=self.config["prediction_type"],
                             clip_sample=False)

    def _resume_key(self, data_hash: str) -> str:
        from ...hashing import config_hash

        skip = {"steps", "sample_every", "checkpoint_every", "sample_steps", "sample_batch", "guidance_scale", "device",
                "sampler", "clip_x0"}
        return config_hash({k: v for k, v in self.config.items() if k not in skip} | {"data": data_hash,
                                                                                     "classes": self.classes})

    # -- Generator interface ----------------------------------------------------------------------
    def fit(self, train: TrainingSet, workdir: Path | None = None) -> "ClassConditionalDDPM":
        import torch

        from ...hashing import config_hash
        from ...runtime import amp_dtype, seed_everything
        from ..checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint

        cfg = self.config
        self.classes = list(train.classes)
        if len(train) == 0:
            raise UserInputError("ddpm: the training set is empty")
        dev = self._device()
        cuda = dev.type == "cuda"
        seed_everything(cfg["seed"])
        model = self._build().to(dev)
        ema = self._build().to(dev).requires_grad_(False)
        ema.load_state_dict(model.state_dict())
        if cuda:
            model = model.to(memory_format=torch.channels_last)
        low = amp_dtype(dev) if (cuda and cfg["mixed_precision"]) else None
        autocast = torch.autocast(dev.type, dtype=low) if low is not None else contextlib.nullcontext()
        scaler = torch.amp.GradScaler("cuda", enabled=(low == torch.float16))
        opt = torch.optim.AdamW(model.parameters(), lr=cfg["learning_rate"], weight_decay=0.0)
        rng = torch.Generator().manual_seed(cfg["seed"])
        sched = self._noise_scheduler()
        data = torch.from_numpy(np.ascontiguousarray(train.images(cfg["resolution"]))).permute(0, 3, 1, 2)
        data = data.float().div_(127.5).sub_(1.0)
        labels = torch.as_tensor(np.asarray(train.labels), dtype=torch.long)
        if cuda:
            data, labels = data.to(dev), labels.to(dev)
        null = len(self.classes)
        key = self._resume_key(config_hash(list(train.hashes)))
        wd = Path(workdir) / "ddpm" if workdir is not None else None

        start = 0
        found = latest_checkpoint(wd)
        if found is not None and found[1].get("kind") == "ddpm" and found[1].get("resume_key") == key:
            weights, rng_states = load_checkpoint(found[0], found[1], {"optimizer": opt})
            rng.set_state(rng_states["rng"])
            model.load_state_dict(weights["model"])
            ema.load_state_dict(weights["ema"])
            start = int(found[1]["step"])
        total, bs = cfg["steps"], cfg["batch_size"]
        ema_params = list(ema.parameters())
        model_params = list(model.parameters())
        t0, losses = time.perf_counter(), []
        model.train()
        with ProgressBar(f"ddpm {cfg['preset']} {cfg['resolution']}px") as bar:
            for step in range(start, total):
                idx = torch.randint(0, len(labels), (bs,), generator=rng)
                x0 = data[idx.to(data.device)]
                if "h" in cfg["flip"]:
                    m = (torch.rand(bs, generator=rng) < 0.5).to(x0.device)
                    x0 = torch.where(m[:, None, None, None], x0.flip(-1), x0)
                if "v" in cfg["flip"]:
                    m = (torch.rand(bs, generator=rng) < 0.5).to(x0.device)
                    x0 = torch.where(m[:, None, None, None], x0.flip(-2), x0)
                y = labels[idx.to(labels.device)].clone()
                drop = (torch.rand(bs, generator=rng) < cfg["class_dropout"]).to(y.device)
                y[drop] = null
                noise = torch.randn(x0.shape, generator=rng).to(dev)
                t = torch.randint(0, cfg["num_train_timesteps"], (bs,), generator=rng).to(dev)
                x0 = x0.to(dev)
                noisy = sched.add_noise(x0, noise, t)
                target = sched.get_velocity(x0, noise, t) if cfg["prediction_type"] == "v_prediction" else noise
                if cuda:
                    noisy = noisy.contiguous(memory_format=torch.channels_last)
                for g in opt.param_groups:
                    g["lr"] = cfg["learning_rate"] * min(1.0, (step + 1) / max(1, cfg["warmup"]))
                with autocast:
                    pred = model(noisy, t, class_labels=y.to(dev)).sample
                loss = torch.nn.functional.mse_loss(pred.float(), target.float())
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model_params, 1.0)
                scaler.step(opt)
                scaler.update()
                decay = min(cfg["ema_decay"], (1 + step) / (10 + step))
                with torch.no_grad():
                    torch._foreach_lerp_(ema_params, [p.detach() for p in model_params], 1.0 - decay)
                losses.append(float(loss.detach()))
                bar.update(step + 1, total, losses[-1])
                done = step + 1
                if wd is not None and cfg["checkpoint_every"] and (done % cfg["checkpoint_every"] == 0 or done == total):
                    save_checkpoint(wd, done, {"model": model.state_dict(), "ema": ema.state_dict()}, {"optimizer": opt},
                                    {"rng": rng.get_state()},
                                    {"kind": "ddpm", "resume_key": key})
                if wd is not None and ((cfg["sample_every"] and done % cfg["sample_every"] == 0) or done == total):
                    self._model = ema
                    self.save_grid(wd / "samples" / f"step_{done:08d}.png")
        ema.eval()
        self._model = ema
        elapsed = time.perf_counter() - t0
        self.train_stats = {"start_step": start, "steps": total, "seconds": round(elapsed, 3),
                            "images_per_s": round((total - start) * bs / elapsed, 2) if total > start else None,
                            "final_loss": losses[-1] if losses else None,
                            "mean_loss_last_100": float(np.mean(losses[-100:])) if losses else None}
        return self

    def sampling_scheduler(self) -> Any:
        """The sampling scheduler: ``sampler`` on the training noise schedule, predicted x0 clipped to [-1, 1] by default.

        ``dpm++`` = DPM-Solver++ 2M with diffusers' thresholding at ``sample_max_value=1`` (static clipping of
        the predicted clean image to [-1, 1]); ``ddim`` = DDIM (eta 0, "trailing" timesteps from t = T-1) with ``clip_sample``. ``clip_x0=False``
        turns clipping off (the old, divergent behaviour with an epsilon model on the cosine schedule).
        """
        from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

        base, clip = self._noise_scheduler().config, self.config["clip_x0"]
        kind = self.config.get("sampler", "dpm++")
        if kind == "dpm++":
            sched = DPMSolverMultistepScheduler.from_config(base, algorithm_type="dpmsolver++", solver_order=2,
                                                            thresholding=clip, dynamic_thresholding_ratio=0.995,
                                                            sample_max_value=1.0)
        else:
            sched = DDIMScheduler.from_config(base, clip_sample=clip, clip_sample_range=1.0, set_alpha_to_one=True,
                                              timestep_spacing="trailing")  # starts at t = T-1, like dpm++
        sched.set_timesteps(self.config["sample_steps"])
        return sched

    def generate(self, class_index: int, indices: list[int], seeds: list[int], size: int) -> list[np.ndarray]:
        import torch

        from ...data import resize_square

        if self._model is None:
            raise RuntimeError("ddpm: call fit() or load a saved generator before sampling")
        cfg, dev = self.config, next(self._model.parameters()).device
        res, out, max_abs = cfg["resolution"], [], 0.0
        for s in range(0, len(seeds), max(1, cfg["sample_batch"])):
            chunk = seeds[s:s + cfg["sample_batch"]]
            gens = [torch.Generator().manual_seed(int(sd)) for sd in chunk]
            x = torch.stack([torch.randn((3, res, res), generator=g) for g in gens]).to(dev)
            sched = self.sampling_scheduler()
            y = torch.full((len(chunk),), class_index, dtype=torch.long, device=dev)
            g = cfg["guidance_scale"]
            with torch.no_grad():
                for t in sched.timesteps:
                    tt = t.to(dev).expand(len(chunk))
                    if g != 1.0:
                        both = self._model(torch.cat([x, x]), torch.cat([tt, tt]),
                                           class_labels=torch.cat([y, torch.full_like(y, len(self.classes))])).sample
                        cond, unc = both.chunk(2)
                        pred = unc + g * (cond - unc)
                    else:
                        pred = self._model(x, tt, class_labels=y).sample
                    x = sched.step(pred, t, x).prev_sample
                    max_abs = max(max_abs, float(x.abs().max()))
            u8 = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            out.extend(resize_square(im, size) for im in u8)
        self.sampling_stats = {"max_abs_x": max_abs}
        return out

    def save_grid(self, path: Path, per_class: int = 8, seed: int = 0) -> Path:
        """A PNG grid with one row of ``per_class`` samples per class (EMA weights)."""
        from PIL import Image

        from ...atomic import atomic_path
        from ..base import per_image_seed

        rows = []
        for ci in range(len(self.classes)):
            ims = self.generate(ci, list(range(per_class)), [per_image_seed(seed, ci, i) for i in range(per_class)],
                                self.config["resolution"])
            rows.append(np.concatenate(ims, axis=1))
        path = Path(path)
        with atomic_path(path) as tmp:
            Image.fromarray(np.concatenate(rows, axis=0)).save(tmp)
        return path

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        from ...atomic import atomic_path, write_json

        super().save(path)
        if self._model is None:
            raise RuntimeError("ddpm: nothing to save; call fit() first")
        with atomic_path(Path(path) / "ema.safetensors") as tmp:
            save_file({k: v.detach().contiguous().cpu() for k, v in self._model.state_dict().items()}, str(tmp))
        write_json(Path(path) / "unet_config.json", unet_config(self.config["preset"], self.config["resolution"],
                                                                len(self.classes)))
        write_json(Path(path) / "train_stats.json", self.train_stats)

    def load_state(self, path: Path) -> None:
        from safetensors.torch import load_file

        f = Path(path) / "ema.safetensors"
        if not f.is_file():
            raise UserInputError(f"saved ddpm generator {path}: ema.safetensors is missing")
        model = self._build()
        model.load_state_dict(load_file(str(f)))
        self._model = model.to(self._device()).eval().requires_grad_(False)
