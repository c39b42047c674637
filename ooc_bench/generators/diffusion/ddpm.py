"""`ddpm`: a class-conditional diffusion model (diffusers UNet2DModel) trained from scratch on the training split."""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import UserInputError
from ..base import Generator, TrainingSet
from .progress import ProgressBar

# width: channels of the first level (doubled at level 2, x4 from level 4); attention: at the levels of these sizes
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"width": 16, "layers_per_block": 1, "attention_at": (), "learning_rate": 1e-3},
    "small": {"width": 64, "layers_per_block": 2, "attention_at": (8,), "learning_rate": 2e-4},
    "base": {"width": 128, "layers_per_block": 2, "attention_at": (8, 16), "learning_rate": 1e-4},
}
RESOLUTIONS = (32, 64, 128)
MULT = (1, 2, 2, 4, 4)


def unet_config(preset: str, resolution: int, num_classes: int) -> dict[str, Any]:
    """``UNet2DModel`` keyword arguments of a size preset at a resolution (levels down to 8x8), with a null class."""
    p = PRESETS[preset]
    levels = int(math.log2(resolution)) - 2  # 32 -> 3 levels, 64 -> 4, 128 -> 5: the bottom is 8x8 (then 4x4 mid)
    channels = tuple(p["width"] * MULT[i] for i in range(levels))
    sizes = [resolution // 2 ** i for i in range(levels)]
    down = tuple("AttnDownBlock2D" if s in p["attention_at"] else "DownBlock2D" for s in sizes)
    up = tuple("AttnUpBlock2D" if s in p["attention_at"] else "UpBlock2D" for s in reversed(sizes))
    return {"sample_size": resolution, "in_channels": 3, "out_channels": 3, "block_out_channels": channels,
            "layers_per_block": p["layers_per_block"], "down_block_types": down, "up_block_types": up,
            "norm_num_groups": min(32, p["width"] // 4), "attention_head_dim": 32,
            "num_class_embeds": num_classes + 1, "add_attention": bool(p["attention_at"])}


class ClassConditionalDDPM(Generator):
    """Class-conditional diffusion model trained from scratch: the no-pretrained-weights counterpart of the GAN.

    Training uses a ``DDPMScheduler`` (epsilon or v prediction), AdamW with warm-up, an EMA of the
    weights, class dropout (for optional classifier-free guidance) and random flips; sampling uses
    DPM-Solver++ with the EMA weights. With a ``workdir``, checkpoints and sample grids are written
    there and an interrupted ``fit`` resumes from the last checkpoint, continuing its step count.
    """

    name = "ddpm"

    def __init__(self, resolution: int = 64, preset: str = "small", steps: int = 20000, batch_size: int = 32,
                 learning_rate: float | None = None, warmup: int = 200, prediction_type: str = "epsilon",
                 beta_schedule: str = "squaredcos_cap_v2", num_train_timesteps: int = 1000, ema_decay: float = 0.999,
                 class_dropout: float = 0.1, guidance_scale: float = 1.0, sample_steps: int = 25,
                 sample_batch: int = 64, flip: str = "h", sample_every: int = 1000, checkpoint_every: int = 1000,
                 seed: int = 0, device: str = "auto", mixed_precision: bool = True) -> None:
        if preset not in PRESETS:
            raise UserInputError(f"ddpm: unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
        if int(resolution) not in RESOLUTIONS:
            raise UserInputError(f"ddpm: --resolution {resolution} not supported; use one of {RESOLUTIONS}")
        if prediction_type not in ("epsilon", "v_prediction"):
            raise UserInputError(f"ddpm: prediction_type {prediction_type!r}: use 'epsilon' or 'v_prediction'")
        if flip not in ("", "none", "h", "v", "hv"):
            raise UserInputError(f"ddpm: flip {flip!r}: use 'none', 'h', 'v' or 'hv'")
        lr = float(learning_rate) if learning_rate is not None else PRESETS[preset]["learning_rate"]
        super().__init__(resolution=int(resolution), preset=preset, steps=int(steps), batch_size=int(batch_size),
                         learning_rate=lr, warmup=int(warmup), prediction_type=prediction_type,
                         beta_schedule=beta_schedule, num_train_timesteps=int(num_train_timesteps),
                         ema_decay=float(ema_decay), class_dropout=float(class_dropout),
                         guidance_scale=float(guidance_scale), sample_steps=int(sample_steps),
                         sample_batch=int(sample_batch), flip=flip, sample_every=int(sample_every),
                         checkpoint_every=int(checkpoint_every), seed=int(seed), device=str(device),
                         mixed_precision=bool(mixed_precision))
        self._model: Any = None  # EMA weights, used for sampling
        self.train_stats: dict[str, Any] = {}

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

        skip = {"steps", "sample_every", "checkpoint_every", "sample_steps", "sample_batch", "guidance_scale", "device"}
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

    def generate(self, class_index: int, indices: list[int], seeds: list[int], size: int) -> list[np.ndarray]:
        import torch
        from diffusers import DPMSolverMultistepScheduler

        from ...data import resize_square

        if self._model is None:
            raise RuntimeError("ddpm: call fit() or load a saved generator before sampling")
        cfg, dev = self.config, next(self._model.parameters()).device
        res, out = cfg["resolution"], []
        for s in range(0, len(seeds), max(1, cfg["sample_batch"])):
            chunk = seeds[s:s + cfg["sample_batch"]]
            x = torch.stack([torch.randn((3, res, res), generator=torch.Generator().manual_seed(int(sd))) for sd in chunk])
            x = x.to(dev)
            sched = DPMSolverMultistepScheduler.from_config(self._noise_scheduler().config, algorithm_type="dpmsolver++")
            sched.set_timesteps(cfg["sample_steps"])
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
            u8 = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            out.extend(resize_square(im, size) for im in u8)
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
