"""`folder`: images made elsewhere, registered as a generator output (implemented by the diffusion work)."""
