"""StyleGAN2-ADA generator (`gan`)."""
