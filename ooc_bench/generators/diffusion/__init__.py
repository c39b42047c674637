"""Diffusion generators (`sd`, `sd-img2img`, `ddpm`)."""
