"""Opt-in interop: sample from a network pickle trained with NVlabs' stylegan2-ada-pytorch (needs that repo on PYTHONPATH)."""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path
from typing import Any

from ...errors import UserInputError

PICKLE_WARNING = ("gan_pkl: unpickling {path} runs arbitrary code from that file; only load pickles you trust "
                  "(you passed allow_pickle=True)")


def load_nvlabs_generator(path: str | Path, allow_pickle: bool = False, device: Any = "cpu") -> Any:
    """Return ``G_ema`` from a stylegan2-ada-pytorch ``network-snapshot-*.pkl``.

    Refuses unless ``allow_pickle`` is true (unpickling runs code), warns when it is, and raises a clear
    :class:`UserInputError` when the file is missing or the NVlabs repository (``dnnlib``, ``torch_utils``,
    ``legacy``) is not importable.
    """
    path = Path(path)
    if not allow_pickle:
        raise UserInputError(f"gan_pkl={path}: loading a network pickle runs code from the file; "
                             "pass --param allow_pickle=true (Python: allow_pickle=True) if you trust it")
    if not path.is_file():
        raise UserInputError(f"gan_pkl={path}: file not found")
    warnings.warn(PICKLE_WARNING.format(path=path), UserWarning, stacklevel=2)
    try:
        for mod in ("dnnlib", "torch_utils", "legacy"):
            importlib.import_module(mod)
    except ImportError as exc:
        raise UserInputError(
            f"gan_pkl={path}: NVlabs stylegan2-ada-pytorch is not importable ({exc}); clone "
            "https://github.com/NVlabs/stylegan2-ada-pytorch and add it to PYTHONPATH "
            "(its licence is non-commercial and it needs its own PyTorch/CUDA setup)") from exc
    legacy = importlib.import_module("legacy")
    with open(path, "rb") as fh:
        data = legacy.load_network_pkl(fh)
    if "G_ema" not in data:
        raise UserInputError(f"gan_pkl={path}: no 'G_ema' network in the pickle")
    return data["G_ema"].eval().requires_grad_(False).to(device)
