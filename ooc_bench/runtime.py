"""Process-wide runtime settings: seeding, device choice, mixed precision and offline mode."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np


def set_offline(offline: bool = True) -> None:
    """Make Hugging Face hub look-ups fail in a fraction of a second instead of retrying for ~45 s."""
    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"


def is_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` or ``OOC_BENCH_OFFLINE`` asks for no network access (the one rule every loader uses)."""
    from .settings import offline

    return offline()


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) generators."""
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def pick_device(device: str | None = None) -> "Any":
    """The requested torch device, else $OOC_BENCH_DEVICE (set per worker), else CUDA when present, else CPU."""
    import torch

    from .settings import device as env_device

    device = device if device and device != "auto" else env_device()
    if device and device != "auto":
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def amp_dtype(device: Any) -> "Any | None":
    """Autocast dtype for a device: bf16 where supported, fp16 on older CUDA GPUs, None (fp32) on CPU."""
    import torch

    if getattr(device, "type", str(device)) != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def versions() -> dict[str, str]:
    """Versions of the packages that shape results, for provenance records."""
    import importlib.metadata as md
    import platform

    out = {"python": platform.python_version()}
    for pkg in ("ooc-bench", "torch", "torchvision", "timm", "diffusers", "peft", "transformers",
                "torch-fidelity", "scikit-learn", "numpy", "scipy", "pillow"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out
