"""A tiny, randomly initialised SD-1.5-shaped pipeline saved as a local diffusers folder (test support: tests and CPU benchmarks)."""

from __future__ import annotations

from pathlib import Path

# Characters the tiny tokenizer knows (each also as an end-of-word token): enough for any prompt template.
_CHARS = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789:,.-_()[]/+ ")


def tiny_clip_tokenizer(model_max_length: int = 77):
    """A character-level ``CLIPTokenizer`` built in memory from a small vocabulary (no download)."""
    from transformers import CLIPTokenizer

    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in _CHARS:
        if c == " ":
            continue
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=model_max_length)


def _latent_scale(vae, seed: int) -> float:
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    x = F.interpolate(torch.rand((8, 3, 4, 4), generator=g), size=32, mode="bicubic").clamp(0, 1) * 2 - 1
    with torch.no_grad():
        std = float(vae.encode(x).latent_dist.mode().std())
    return round(1.0 / max(std, 1e-6), 5)


def make_tiny_sd_pipeline(path: str | Path, seed: int = 0, full_size_unet: bool = False) -> Path:
    """Save a Stable-Diffusion-1.5-shaped pipeline with random weights as a diffusers folder at ``path``.

    Components are the ones a real SD 1.5 folder has (``UNet2DConditionModel``, ``AutoencoderKL``,
    ``CLIPTextModel``, ``CLIPTokenizer``, ``PNDMScheduler`` with SD 1.5's settings; no safety checker),
    so loading it takes exactly the code path of a real model. The tiny version (default) has a
    32-channel UNet with one cross-attention level, a VAE that downsamples by 2 and a 2-layer text
    encoder; its natural resolution is 32 px. Like a trained VAE, its posterior is near-deterministic and
    its ``scaling_factor`` gives unit-variance latents (so img2img noise levels mean what they mean in SD).
    ``full_size_unet=True`` builds SD 1.5's real dimensions
    (860 M-parameter UNet, full VAE, CLIP ViT-L/14 text encoder) for GPU throughput benchmarks.
    Returns ``path``.
    """
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    path = Path(path)
    torch.manual_seed(seed)
    tokenizer = tiny_clip_tokenizer()
    vocab_size = len(tokenizer.get_vocab())
    if full_size_unet:
        unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)
        vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
                            block_out_channels=(128, 256, 512, 512),
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
        text_cfg = CLIPTextConfig(vocab_size=vocab_size, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                  num_attention_heads=12, max_position_embeddings=77, bos_token_id=0,
                                  eos_token_id=1, pad_token_id=1, hidden_act="quick_gelu", projection_dim=768)
    else:
        unet = UNet2DConditionModel(
            sample_size=16, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32)
        vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, sample_size=32,
                            block_out_channels=(32, 64), norm_num_groups=32,
                            down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2)
        text_cfg = CLIPTextConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                  num_attention_heads=4, max_position_embeddings=77, bos_token_id=0,
                                  eos_token_id=1, pad_token_id=1, hidden_act="quick_gelu", projection_dim=32)
    with torch.no_grad():  # a near-deterministic posterior (tiny log-variance), as in a trained VAE
        c = vae.config.latent_channels
        vae.quant_conv.weight[c:].zero_()
        vae.quant_conv.bias[c:].fill_(-20.0)
    # SD's scaling_factor (0.18215) is 1 / std of its latents; do the same for this VAE on smooth random images
    vae.register_to_config(scaling_factor=0.18215 if full_size_unet else _latent_scale(vae, seed))
    text_encoder = CLIPTextModel(text_cfg)
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              num_train_timesteps=1000, skip_prk_steps=True, steps_offset=1, set_alpha_to_one=False)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(path, safe_serialization=True)
    return path


# -- a web-UI style single-file checkpoint of a diffusers SD-1.x folder (for tests of `--sd-model FILE`) ----------
_RESNET_TO_LDM = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
                  ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection"))
_UNET_FIXED = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
               "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}


def _unet_key_to_ldm(key: str, layers: int, up_with_attention: set[int]) -> str:
    """One ``UNet2DConditionModel`` key -> the original (CompVis/web-UI) ``model.diffusion_model.`` key."""
    parts = key.split(".")
    for ours, theirs in _UNET_FIXED.items():
        if key.startswith(ours + "."):
            return "model.diffusion_model." + theirs + key[len(ours):]

    def resnet(rest: str) -> str:
        for ours, theirs in _RESNET_TO_LDM:
            if rest.startswith(ours + "."):
                return theirs + rest[len(ours):]
        raise KeyError(key)

    if parts[0] == "down_blocks":
        b, kind = int(parts[1]), parts[2]
        if kind == "downsamplers":  # down_blocks.b.downsamplers.0.conv.X
            new = f"input_blocks.{(layers + 1) * (b + 1)}.0.op." + ".".join(parts[5:])
        else:
            j, rest = int(parts[3]), ".".join(parts[4:])
            idx = (layers + 1) * b + j + 1
            new = f"input_blocks.{idx}.0.{resnet(rest)}" if kind == "resnets" else f"input_blocks.{idx}.1.{rest}"
    elif parts[0] == "mid_block":
        j, rest = int(parts[2]), ".".join(parts[3:])
        new = f"middle_block.{2 * j}.{resnet(rest)}" if parts[1] == "resnets" else f"middle_block.1.{rest}"
    elif parts[0] == "up_blocks":
        b, kind = int(parts[1]), parts[2]
        if kind == "upsamplers":  # up_blocks.b.upsamplers.0.conv.X
            slot = 2 if b in up_with_attention else 1
            new = f"output_blocks.{(layers + 1) * b + layers}.{slot}.conv." + ".".join(parts[5:])
        else:
            j, rest = int(parts[3]), ".".join(parts[4:])
            idx = (layers + 1) * b + j
            new = f"output_blocks.{idx}.0.{resnet(rest)}" if kind == "resnets" else f"output_blocks.{idx}.1.{rest}"
    else:
        raise KeyError(key)
    return "model.diffusion_model." + new


def _vae_key_to_ldm(key: str, n_up: int) -> str:
    """One ``AutoencoderKL`` key -> the original ``first_stage_model.`` key (attention weights are reshaped by the caller)."""
    k = key.replace("conv_norm_out", "norm_out").replace("conv_shortcut", "nin_shortcut")
    parts = k.split(".")
    if parts[1] == "down_blocks":  # encoder.down_blocks.i.resnets.j.X / .downsamplers.0.conv.X
        i = parts[2]
        k = (f"encoder.down.{i}.block.{parts[4]}." + ".".join(parts[5:]) if parts[3] == "resnets"
             else f"encoder.down.{i}.downsample." + ".".join(parts[5:]))
    elif parts[1] == "up_blocks":
        i = n_up - 1 - int(parts[2])
        k = (f"decoder.up.{i}.block.{parts[4]}." + ".".join(parts[5:]) if parts[3] == "resnets"
             else f"decoder.up.{i}.upsample." + ".".join(parts[5:]))
    elif parts[1] == "mid_block":
        if parts[2] == "resnets":
            k = f"{parts[0]}.mid.block_{int(parts[3]) + 1}." + ".".join(parts[4:])
        else:
            rest = ".".join(parts[4:])
            for ours, theirs in (("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"),
                                 ("to_out.0", "proj_out")):
                if rest.startswith(ours + "."):
                    rest = theirs + rest[len(ours):]
            k = f"{parts[0]}.mid.attn_1.{rest}"
    return "first_stage_model." + k


def save_single_file_checkpoint(pipe_dir: str | Path, out_file: str | Path) -> Path:
    """Write a diffusers SD-1.x folder as one web-UI style checkpoint (``.safetensors`` or ``.ckpt``) at ``out_file``.

    Keys follow the original CompVis layout that AUTOMATIC1111's web UI reads and writes
    (``model.diffusion_model.``, ``first_stage_model.``, ``cond_stage_model.transformer.text_model.``), so the
    file loads through diffusers' single-file loader exactly like a downloaded SD 1.5 checkpoint. Used by
    the tests to exercise ``--sd-model FILE`` without downloading weights. Returns ``out_file``.
    """
    import json

    import torch
    from safetensors.torch import load_file, save_file

    pipe_dir, out_file = Path(pipe_dir), Path(out_file)
    unet_cfg = json.loads((pipe_dir / "unet" / "config.json").read_text())
    vae_cfg = json.loads((pipe_dir / "vae" / "config.json").read_text())
    layers = int(unet_cfg["layers_per_block"])
    up_attn = {i for i, t in enumerate(unet_cfg["up_block_types"]) if "Attn" in t}
    sd: dict[str, torch.Tensor] = {}
    for k, v in load_file(str(pipe_dir / "unet" / "diffusion_pytorch_model.safetensors")).items():
        sd[_unet_key_to_ldm(k, layers, up_attn)] = v
    for k, v in load_file(str(pipe_dir / "vae" / "diffusion_pytorch_model.safetensors")).items():
        new = _vae_key_to_ldm(k, len(vae_cfg["up_block_types"]))
        if ".mid.attn_1." in new and v.ndim == 2:
            v = v[:, :, None, None]  # the original VAE attention uses 1x1 convolutions
        sd[new] = v
    for k, v in load_file(str(pipe_dir / "text_encoder" / "model.safetensors")).items():
        sd["cond_stage_model.transformer.text_model." + k.removeprefix("text_model.")] = v
    sd = {k: v.contiguous() for k, v in sd.items()}
    out_file.parent.mkdir(parents=True, exist_ok=True)
    if out_file.suffix == ".safetensors":
        save_file(sd, str(out_file))
    else:
        torch.save({"state_dict": sd}, str(out_file))
    return out_file
