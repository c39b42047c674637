"""LoRA fine-tuning of a Stable Diffusion pipeline (diffusers + peft): train, save, load and kohya (web UI) export."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ...atomic import atomic_path

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
ADAPTER = "ooc_lora"  # one adapter name for fitted and re-loaded pipelines (a loaded adapter is never "default")
LORA_WEIGHTS = "pytorch_lora_weights.safetensors"
KOHYA_WEIGHTS = "lora_kohya.safetensors"


def add_lora(pipe: Any, rank: int, alpha: float, text_encoder: bool = False) -> None:
    """Freeze the pipeline and add trainable LoRA adapters to the UNet attention projections (and the text encoder)."""
    from peft import LoraConfig

    for module in (pipe.unet, pipe.vae, pipe.text_encoder):
        module.requires_grad_(False)
    pipe.unet.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian",
                                     target_modules=UNET_TARGETS), adapter_name=ADAPTER)
    if text_encoder:
        pipe.text_encoder.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian",
                                                 target_modules=TEXT_TARGETS), adapter_name=ADAPTER)


def lora_parameters(module: Any) -> list:
    """The trainable LoRA parameters of a module."""
    return [p for n, p in module.named_parameters() if "lora_" in n and p.requires_grad]


def lora_state_dicts(pipe: Any) -> dict[str, dict[str, Any]]:
    """peft-format LoRA state dicts of the UNet and (when it has one) the text encoder, keyed by component."""
    from peft.utils import get_peft_model_state_dict

    out = {"unet": get_peft_model_state_dict(pipe.unet, adapter_name=ADAPTER)}
    if ADAPTER in (getattr(pipe.text_encoder, "peft_config", None) or {}):
        out["text_encoder"] = get_peft_model_state_dict(pipe.text_encoder, adapter_name=ADAPTER)
    return out


def save_lora(pipe: Any, folder: Path, rank: int, alpha: float) -> dict[str, Path]:
    """Save the adapters as diffusers ``pytorch_lora_weights.safetensors`` (loadable with ``load_lora_weights``)
    and as a kohya-format file the AUTOMATIC1111 web UI loads; return both paths."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sds = lora_state_dicts(pipe)
    unet_meta = pipe.unet.peft_config[ADAPTER].to_dict()
    kwargs: dict[str, Any] = {"unet_lora_layers": convert_state_dict_to_diffusers(sds["unet"]),
                              "unet_lora_adapter_metadata": unet_meta}
    if "text_encoder" in sds:
        kwargs["text_encoder_lora_layers"] = convert_state_dict_to_diffusers(sds["text_encoder"])
        kwargs["text_encoder_lora_adapter_metadata"] = pipe.text_encoder.peft_config[ADAPTER].to_dict()
    with atomic_path(folder / LORA_WEIGHTS) as tmp:
        StableDiffusionPipeline.save_lora_weights(str(tmp.parent), weight_name=tmp.name, safe_serialization=True, **kwargs)
    kohya = folder / KOHYA_WEIGHTS
    export_kohya(sds, kohya, rank, alpha)
    return {"diffusers": folder / LORA_WEIGHTS, "kohya": kohya}


def kohya_state_dict(sds: dict[str, dict[str, Any]], alpha: float) -> dict[str, Any]:
    """peft LoRA state dicts -> kohya keys (``lora_unet_<module>.lora_down.weight`` / ``.lora_up.weight`` / ``.alpha``;
    text encoder as ``lora_te_...``, the SD 1.x prefix), with ``alpha`` as trained (kohya scales by alpha / rank)."""
    import torch
    from diffusers.utils import convert_state_dict_to_kohya

    prefixed = {f"{comp}.{k}": v for comp, sd in sds.items() for k, v in sd.items()}
    converted = convert_state_dict_to_kohya(prefixed)
    out = {}
    for key, value in converted.items():
        key = key.replace("lora_te1_", "lora_te_", 1)
        if key.endswith(".alpha"):
            value = torch.tensor(float(alpha), dtype=torch.float32)
        out[key] = value.detach().float().contiguous().cpu() if hasattr(value, "detach") else value
    return out


def export_kohya(sds: dict[str, dict[str, Any]], path: Path, rank: int, alpha: float) -> Path:
    """Write the kohya-format LoRA file with the web UI's ``ss_*`` metadata."""
    from safetensors.torch import save_file

    state = kohya_state_dict(sds, alpha)
    meta = {"ss_network_module": "networks.lora", "ss_network_dim": str(rank), "ss_network_alpha": str(alpha),
            "ss_base_model_version": "sd_v1", "ss_training_comment": "trained with ooc-bench (sd generator)"}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return Path(path)


def load_lora(pipe: Any, folder: Path) -> None:
    """Load ``pytorch_lora_weights.safetensors`` from ``folder`` into the pipeline under the adapter name ``ooc_lora``."""
    folder = Path(folder)
    if folder.is_file():
        pipe.load_lora_weights(str(folder.parent), weight_name=folder.name, adapter_name=ADAPTER)
    else:
        pipe.load_lora_weights(str(folder), weight_name=LORA_WEIGHTS, adapter_name=ADAPTER)


def _encode_prompts(pipe: Any, prompts: list[str], device: Any) -> Any:
    tok = pipe.tokenizer(prompts, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         truncation=True, return_tensors="pt")
    return tok.input_ids.to(device)


def train_lora(pipe: Any, images: np.ndarray, prompts: list[str], cfg: dict[str, Any], device: Any,
               workdir: Path | None = None, progress: Callable[[int, int, float], None] | None = None) -> dict[str, Any]:
    """Fine-tune LoRA adapters on ``images`` (uint8 N x R x R x 3) paired with ``prompts``; return training stats.

    ``cfg`` keys: rank, alpha, learning_rate, steps, batch_size, grad_accum, train_text_encoder,
    text_encoder_lr, snr_gamma (None: plain MSE), flip, seed, mixed_precision, gradient_checkpointing,
    checkpoint_every. Frozen weights are kept in fp16/bf16 on CUDA when ``mixed_precision`` (LoRA
    parameters stay fp32, forward passes autocast); gradient checkpointing is used on CUDA. The VAE
    latent distributions (of each image and its mirror) are computed once. Checkpoints in ``workdir``
    let an interrupted run resume at its last step.
    """
    import torch
    from diffusers import DDPMScheduler
    from diffusers.training_utils import cast_training_params, compute_snr
    from peft.utils import set_peft_model_state_dict

    from ...runtime import amp_dtype
    from ..checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint

    device = torch.device(device)
    cuda = device.type == "cuda"
    train_te = bool(cfg.get("train_text_encoder", False))
    add_lora(pipe, int(cfg["rank"]), float(cfg["alpha"]), text_encoder=train_te)
    low = amp_dtype(device) if (cuda and cfg.get("mixed_precision", True)) else None
    weight_dtype = low or torch.float32
    unet, vae, te = pipe.unet, pipe.vae, pipe.text_encoder
    for m in (unet, vae, te):
        m.to(device) if weight_dtype == torch.float32 else m.to(device, dtype=weight_dtype)
    cast_training_params([unet, te] if train_te else [unet], dtype=torch.float32)
    if cuda and cfg.get("gradient_checkpointing", True):
        unet.enable_gradient_checkpointing()
        if train_te:
            te.gradient_checkpointing_enable()
    noise_sched = DDPMScheduler.from_config(pipe.scheduler.config)
    sf = float(getattr(vae.config, "scaling_factor", 0.18215))

    # VAE latent distributions of every image and of its horizontal mirror (computed once, kept on the CPU)
    x_all = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    means, stds = [], []
    with torch.no_grad():
        for flip in (False, True):
            for s in range(0, len(x_all), 8):
                x = x_all[s:s + 8].to(device=device, dtype=weight_dtype) / 127.5 - 1.0
                if flip:
                    x = x.flip(-1)
                dist = vae.encode(x).latent_dist
                means.append(dist.mean.float().cpu())
                stds.append(dist.std.float().cpu())
    lat_mean, lat_std = torch.cat(means), torch.cat(stds)
    n = len(images)

    ids_all = _encode_prompts(pipe, prompts, device)
    cached_emb = None
    if not train_te:
        with torch.no_grad():
            cached_emb = torch.cat([te(ids_all[s:s + 32])[0] for s in range(0, n, 32)]).to(weight_dtype)

    params = [{"params": lora_parameters(unet), "lr": float(cfg["learning_rate"])}]
    if train_te:
        params.append({"params": lora_parameters(te), "lr": float(cfg.get("text_encoder_lr") or cfg["learning_rate"])})
    opt = torch.optim.AdamW(params, weight_decay=1e-2)
    scaler = torch.amp.GradScaler("cuda", enabled=(low == torch.float16))
    rng = torch.Generator().manual_seed(int(cfg.get("seed", 0)))

    total, bs, accum = int(cfg["steps"]), int(cfg["batch_size"]), max(1, int(cfg.get("grad_accum", 1)))
    start = 0
    found = latest_checkpoint(workdir)
    if found is not None and found[1].get("kind") == "lora" and found[1].get("resume_key") == cfg.get("resume_key"):
        weights, rng_states = load_checkpoint(found[0], found[1], {"optimizer": opt})
        rng.set_state(rng_states["rng"])
        set_peft_model_state_dict(unet, weights["unet"], adapter_name=ADAPTER)
        if train_te and "text_encoder" in weights:
            set_peft_model_state_dict(te, weights["text_encoder"], adapter_name=ADAPTER)
        cast_training_params([unet, te] if train_te else [unet], dtype=torch.float32)
        start = int(found[1]["step"])
    snr_gamma = cfg.get("snr_gamma")
    every = int(cfg.get("checkpoint_every") or 0)
    autocast = torch.autocast(device.type, dtype=low) if low is not None else contextlib.nullcontext()
    unet.train()
    if train_te:
        te.train()
    losses: list[float] = []
    for step in range(start, total):
        step_loss = 0.0
        opt.zero_grad(set_to_none=True)  # at the start: the last step's gradients stay inspectable
        for _ in range(accum):
            idx = torch.randint(0, n, (bs,), generator=rng)
            flip = (torch.rand(bs, generator=rng) < 0.5) if cfg.get("flip", True) else torch.zeros(bs, dtype=torch.bool)
            src = idx + n * flip.long()
            eps = torch.randn(lat_mean[src].shape, generator=rng)
            latents = ((lat_mean[src] + lat_std[src] * eps) * sf).to(device)
            noise = torch.randn(latents.shape, generator=rng).to(device)
            t = torch.randint(0, noise_sched.config.num_train_timesteps, (bs,), generator=rng).to(device)
            noisy = noise_sched.add_noise(latents, noise, t)
            if noise_sched.config.prediction_type == "v_prediction":
                target = noise_sched.get_velocity(latents, noise, t)
            else:
                target = noise
            with autocast:
                emb = cached_emb[idx.to(cached_emb.device)] if cached_emb is not None else te(ids_all[idx.to(device)])[0]
                pred = unet(noisy.to(weight_dtype), t, emb).sample
            per = torch.nn.functional.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
            if snr_gamma:
                snr = compute_snr(noise_sched, t)
                w = torch.clamp(snr, max=float(snr_gamma)) / snr
                if noise_sched.config.prediction_type == "v_prediction":
                    w = torch.clamp(snr, max=float(snr_gamma)) / (snr + 1)
                per = per * w
            loss = per.mean() / accum
            scaler.scale(loss).backward()
            step_loss += float(loss.detach())
        scaler.step(opt)
        scaler.update()
        losses.append(step_loss)
        if progress:
            progress(step + 1, total, step_loss)
        if workdir is not None and every and ((step + 1) % every == 0 or step + 1 == total):
            save_checkpoint(Path(workdir), step + 1, lora_state_dicts(pipe), {"optimizer": opt}, {"rng": rng.get_state()},
                            {"kind": "lora", "resume_key": cfg.get("resume_key")})
    unet.eval()
    te.eval()
    return {"start_step": start, "steps": total, "final_loss": losses[-1] if losses else math.nan,
            "mean_loss": float(np.mean(losses)) if losses else math.nan}


def read_kohya_metadata(path: Path) -> dict[str, str]:
    """The ``ss_*`` metadata of a kohya LoRA file."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        return dict(fh.metadata() or {})

