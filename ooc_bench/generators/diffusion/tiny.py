"""A tiny, randomly initialised SD-1.5-shaped pipeline saved as a local diffusers folder (for tests and CPU benchmarks)."""

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
