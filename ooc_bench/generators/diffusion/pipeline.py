"""Loading a base Stable Diffusion pipeline from a hub id or a local diffusers folder, with fast, clear errors offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import UserInputError, WeightsUnavailableError
from ...runtime import is_offline

DEFAULT_SD_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"


class SdModelUnavailableError(WeightsUnavailableError, UserInputError):
    """The ``--sd-model`` weights are neither a local diffusers folder nor in the Hugging Face cache."""


def _how_to(model: str) -> str:
    return (f"download it on a machine with network (e.g. `huggingface-cli download {model} --local-dir DIR`, "
            "or `DiffusionPipeline.from_pretrained(ID).save_pretrained(DIR)`), copy DIR here and pass "
            "--sd-model DIR (a diffusers folder containing model_index.json)")


def resolve_sd_model(model: str) -> str:
    """Check ``model`` (a local diffusers folder or a hub id) and return what ``from_pretrained`` should get.

    A path that does not exist, a file instead of a folder, or a folder without ``model_index.json`` raise
    :class:`UserInputError` at once, naming the path and what to pass instead.
    """
    model = str(model).strip()
    if not model:
        raise UserInputError("--sd-model is empty: pass a hub id or a local diffusers folder")
    p = Path(model).expanduser()
    looks_local = p.exists() or model.startswith(("/", ".", "~")) or "\\" in model or model.count("/") > 1
    if not looks_local:
        return model
    if not p.exists():
        raise UserInputError(f"--sd-model {model!r}: local folder not found; pass an existing diffusers folder "
                             f"(containing model_index.json) or a hub id such as {DEFAULT_SD_MODEL!r}")
    if p.is_file():
        raise UserInputError(f"--sd-model {model!r} is a single checkpoint file; ooc-bench needs a diffusers folder: "
                             "convert it once with diffusers (`StableDiffusionPipeline.from_single_file(FILE)"
                             ".save_pretrained(DIR)`) and pass --sd-model DIR")
    if not (p / "model_index.json").is_file():
        raise UserInputError(f"--sd-model {model!r}: folder has no model_index.json, so it is not a diffusers pipeline "
                             "folder; pass the folder that `save_pretrained` wrote")
    return str(p.resolve())


def load_sd_pipeline(model: str = DEFAULT_SD_MODEL, img2img: bool = False, device: Any = None,
                     dtype: Any = None) -> Any:
    """A ``StableDiffusionPipeline`` (or ``StableDiffusionImg2ImgPipeline``) without safety checker, on ``device``.

    ``model`` is a local diffusers folder or a hub id; hub ids are read from the Hugging Face cache (and
    downloaded when the hub is reachable and ``HF_HUB_OFFLINE`` is unset). Weights that cannot be found
    raise :class:`SdModelUnavailableError` (a ``UserInputError``) telling how to point ``--sd-model`` at a
    local folder. Both pipeline kinds share the same components and loading code path.
    """
    import torch
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

    source = resolve_sd_model(model)
    kwargs: dict[str, Any] = {"safety_checker": None, "requires_safety_checker": False}
    if dtype is not None:
        kwargs["torch_dtype"] = dtype
    if source == model and is_offline():
        kwargs["local_files_only"] = True
    try:
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - older huggingface_hub
        from huggingface_hub.utils import LocalEntryNotFoundError  # type: ignore
    try:
        pipe = StableDiffusionPipeline.from_pretrained(source, **kwargs)
    except (OSError, LocalEntryNotFoundError, ValueError) as exc:
        if source != model:  # a local folder that exists but does not load
            raise UserInputError(f"--sd-model {model!r}: could not load the diffusers folder ({exc})") from exc
        raise SdModelUnavailableError(
            f"--sd-model {model!r}: Stable Diffusion weights not found locally and the Hugging Face hub is not "
            f"reachable (or HF_HUB_OFFLINE=1); {_how_to(model)}") from exc
    if img2img:
        pipe = StableDiffusionImg2ImgPipeline(**pipe.components)
    pipe.set_progress_bar_config(disable=True)
    if device is not None:
        pipe = pipe.to(torch.device(device))
    return pipe


def set_sampler(pipe: Any, sampler: str) -> None:
    """Swap the pipeline's scheduler: ``dpm++`` (DPM-Solver++ 2M), ``euler``, ``euler-a``, ``ddim``, ``pndm`` (diffusers' SD default)."""
    from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                           EulerDiscreteScheduler, PNDMScheduler)

    table = {"dpm++": DPMSolverMultistepScheduler, "dpmpp": DPMSolverMultistepScheduler,
             "euler": EulerDiscreteScheduler, "euler-a": EulerAncestralDiscreteScheduler,
             "ddim": DDIMScheduler, "pndm": PNDMScheduler}
    key = sampler.lower()
    if key not in table:
        raise UserInputError(f"unknown sampler {sampler!r}; valid samplers: {', '.join(sorted(table))}")
    extra = {"algorithm_type": "dpmsolver++"} if table[key] is DPMSolverMultistepScheduler else {}
    pipe.scheduler = table[key].from_config(pipe.scheduler.config, **extra)


def to_uint8(images: Any, size: int) -> list:
    """Float [0, 1] images (N, H, W, 3) from a pipeline -> list of uint8 (size, size, 3), resized by the data layer's policy."""
    import numpy as np

    from ...data import resize_square

    return [resize_square((np.clip(im, 0.0, 1.0) * 255.0).round().astype(np.uint8), size) for im in np.asarray(images)]
