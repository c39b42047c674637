"""StyleGAN2-ADA generator (`gan`): pure-PyTorch StyleGAN2 with adaptive discriminator augmentation."""

from __future__ import annotations

from ..registry import register_generator
from .generator import DEFAULTS, GanConfig, StyleGAN2ADA, resolve_config

__all__ = ["StyleGAN2ADA", "GanConfig", "DEFAULTS", "resolve_config", "stylegan2_ada"]


@register_generator("gan", aliases=("stylegan", "stylegan2", "stylegan2-ada"),
                    description="StyleGAN2-ADA (pure PyTorch), class-conditional, trained on the training split",
                    config=GanConfig, resolve=lambda cfg: resolve_config(**cfg))
def stylegan2_ada(**config) -> StyleGAN2ADA:
    """StyleGAN2 with adaptive discriminator augmentation."""
    return StyleGAN2ADA(**config)
