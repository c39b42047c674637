"""Diffusion generators (`sd`, `sd-img2img`, `ddpm`); diffusers, peft and transformers are imported only when used."""

from __future__ import annotations

from typing import Any

from ..registry import register_generator
from .ddpm import DDPMConfig
from .img2img import Img2ImgConfig
from .sd import SDConfig


@register_generator("sd", aliases=("sd-lora", "stable-diffusion", "lora"),
                    description="Stable Diffusion fine-tuned with LoRA on the training split, text-to-image with class prompts",
                    config=SDConfig)
def sd(**config: Any):
    """Stable Diffusion + LoRA (text-to-image)."""
    from .sd import StableDiffusionLoRA

    return StableDiffusionLoRA(**config)


@register_generator("sd-img2img", aliases=("img2img", "sdedit"),
                    description="Stable Diffusion img2img (SDEdit) variants of each real training image (thesis method)",
                    config=Img2ImgConfig)
def sd_img2img(**config: Any):
    """Stable Diffusion img2img from real training images."""
    from .img2img import StableDiffusionImg2Img

    return StableDiffusionImg2Img(**config)


@register_generator("ddpm", aliases=("diffusion", "dm"),
                    description="class-conditional diffusion model trained from scratch (no pretrained weights)",
                    config=DDPMConfig)
def ddpm(**config: Any):
    """Class-conditional DDPM trained from scratch."""
    from .ddpm import ClassConditionalDDPM

    return ClassConditionalDDPM(**config)
