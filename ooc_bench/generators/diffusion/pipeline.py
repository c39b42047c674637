"""Loading a base Stable Diffusion pipeline from a hub id, a local diffusers folder or a web-UI checkpoint file, with clear errors offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import UserInputError, WeightsUnavailableError
from ...runtime import is_offline

DEFAULT_SD_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt")  # single-file checkpoints as the AUTOMATIC1111 web UI keeps them


class SdModelUnavailableError(WeightsUnavailableError, UserInputError):
    """The ``--sd-model`` weights are neither a local diffusers folder nor in the Hugging Face cache."""


def _how_to(model: str) -> str:
    return (f"download it on a machine with network (e.g. `huggingface-cli download {model} --local-dir DIR`, "
            "or `DiffusionPipeline.from_pretrained(ID).save_pretrained(DIR)`), copy DIR here and pass "
            "--sd-model DIR (a diffusers folder containing model_index.json)")


def _config_advice(model: str) -> str:
    return (f"--sd-model {model!r} is a single-file checkpoint; to load it offline pass --sd-config DIR "
            "(`--param sd_config=DIR`, spec key `sd_config`): a local diffusers folder of the same architecture "
            "(containing model_index.json and tokenizer/; its weights are not needed), e.g. on a machine with network "
            f"`huggingface-cli download {DEFAULT_SD_MODEL} --exclude '*.safetensors' '*.bin' '*.ckpt' --local-dir DIR` "
            "for SD 1.x checkpoints")


def is_checkpoint_file(model: str) -> bool:
    """Whether ``--sd-model`` names an existing single-file checkpoint (``.safetensors`` / ``.ckpt``)."""
    p = Path(str(model).strip()).expanduser()
    return p.is_file() and p.suffix.lower() in CHECKPOINT_SUFFIXES


def resolve_sd_config(model: str, sd_config: str | None) -> str | None:
    """For a single-file ``model``: check ``sd_config`` (a local diffusers folder) and return it resolved.

    Without ``sd_config`` the configs would come from the Hugging Face hub: offline that is a
    :class:`UserInputError` at once, saying exactly what to pass; online ``None`` is returned (diffusers
    fetches the matching configs).
    """
    if not sd_config:
        if is_offline():
            raise UserInputError(_config_advice(model) + " (the hub is off: HF_HUB_OFFLINE=1)")
        return None
    c = Path(str(sd_config)).expanduser()
    if not (c.is_dir() and (c / "model_index.json").is_file()):
        raise UserInputError(f"--sd-config {sd_config!r}: not a diffusers folder (no model_index.json there); "
                             + _config_advice(model))
    return str(c.resolve())


def resolve_sd_model(model: str, sd_config: str | None = None) -> str:
    """Check ``model`` (a local diffusers folder, a single-file checkpoint or a hub id) and return it resolved.

    A path that does not exist, a file that is not a ``.safetensors``/``.ckpt`` checkpoint, a folder without
    ``model_index.json``, or a checkpoint file without a usable ``sd_config`` offline raise
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
        if p.suffix.lower() not in CHECKPOINT_SUFFIXES:
            raise UserInputError(f"--sd-model {model!r} is a file but not a checkpoint (.safetensors or .ckpt); pass a "
                                 "web-UI checkpoint file, a local diffusers folder or a hub id")
        resolve_sd_config(model, sd_config)
        return str(p.resolve())
    if not (p / "model_index.json").is_file():
        raise UserInputError(f"--sd-model {model!r}: folder has no model_index.json, so it is not a diffusers pipeline "
                             "folder; pass the folder that `save_pretrained` wrote")
    return str(p.resolve())


def load_sd_pipeline(model: str = DEFAULT_SD_MODEL, img2img: bool = False, device: Any = None,
                     dtype: Any = None, sd_config: str | None = None) -> Any:
    """A ``StableDiffusionPipeline`` (or ``StableDiffusionImg2ImgPipeline``) without safety checker, on ``device``.

    ``model`` is a local diffusers folder, a hub id, or a single-file checkpoint (``.safetensors``/``.ckpt``,
    as the AUTOMATIC1111 web UI keeps them) loaded by diffusers' ``from_single_file`` with the component
    configs and tokenizer of ``sd_config`` (a local diffusers folder: fully offline) or, online and without
    it, of the matching hub model. Hub ids are read from the Hugging Face cache (and downloaded when the
    hub is reachable and ``HF_HUB_OFFLINE`` is unset). Weights that cannot be found raise
    :class:`SdModelUnavailableError` (a ``UserInputError``) telling what to pass. Both pipeline kinds share
    the same components and loading code path.
    """
    from diffusers import StableDiffusionPipeline

    source = resolve_sd_model(model, sd_config)
    kwargs: dict[str, Any] = {"safety_checker": None, "requires_safety_checker": False}
    if dtype is not None:
        kwargs["torch_dtype"] = dtype
    if is_checkpoint_file(source):
        config = resolve_sd_config(model, sd_config)
        try:
            pipe = StableDiffusionPipeline.from_single_file(
                source, **kwargs, **({"config": config, "local_files_only": True} if config else {}))
        except Exception as exc:  # diffusers raises many kinds here (bad keys, missing configs, unpickling)
            hint = "" if config else "; " + _config_advice(model)
            raise SdModelUnavailableError(f"--sd-model {model!r}: could not load the checkpoint file "
                                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
                                          f"{hint}") from exc
        return _finish(pipe, img2img, device)
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
    return _finish(pipe, img2img, device)


def _finish(pipe: Any, img2img: bool, device: Any) -> Any:
    import torch
    from diffusers import StableDiffusionImg2ImgPipeline

    if img2img:
        pipe = StableDiffusionImg2ImgPipeline(**pipe.components)
    pipe.set_progress_bar_config(disable=True)
    if device is not None:
        pipe = pipe.to(torch.device(device))
    return pipe


SAMPLERS = ("dpm++", "dpmpp", "euler", "euler-a", "ddim", "pndm")  # the names set_sampler accepts


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
