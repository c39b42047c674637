"""`sd-img2img`: SDEdit variants of each real training image (the bachelor-thesis method), label and metadata inherited."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...config import build, option, to_dict
from ...errors import UserInputError
from ..base import Generator, TrainingSet
from .pipeline import SAMPLERS, load_sd_pipeline, resolve_sd_model, set_sampler, to_uint8
from .prompts import THESIS_TEMPLATE, class_template
from .sd import SDBaseConfig, SourcesMixin, check_prompt

SOURCES_DIR = "sources"
STRENGTH_CONVENTIONS = ("webui", "diffusers")


def denoising_steps(steps: int, strength: float, convention: str = "webui") -> int:
    """How many sampler steps img2img runs for ``steps`` and ``strength`` under a strength convention.

    ``webui`` (AUTOMATIC1111): ``int(min(strength, 0.999) * steps) + 1`` steps, the last ones of a ``steps``-point
    schedule; ``diffusers``: ``min(int(steps * strength), steps)`` steps.
    """
    if convention == "webui":
        return int(min(float(strength), 0.999) * int(steps)) + 1
    return min(int(int(steps) * float(strength)), int(steps))


def webui_sigmas(alphas_cumprod: Any, steps: int, strength: float) -> list[float]:
    """The noise levels AUTOMATIC1111's web UI samples img2img on (k-diffusion samplers, default schedule).

    The web UI builds a ``steps``-point schedule at t = linspace(T-1, 0, steps) (sigma interpolated in log
    space between the model's discrete sigmas), appends 0, and keeps the tail from index
    ``steps - t_enc - 1`` with ``t_enc = int(min(strength, 0.999) * steps)``: ``t_enc + 1`` steps, starting at
    that tail's first sigma (the init latent gets ``noise * sigma`` added). Returned with the final 0.
    """
    a = np.asarray(alphas_cumprod, dtype=np.float64)
    log_sigma = np.log(np.sqrt((1.0 - a) / a))
    t = np.linspace(len(a) - 1, 0, int(steps))
    lo, hi = np.floor(t).astype(int), np.ceil(t).astype(int)
    w = t - lo
    sigmas = np.append(np.exp((1.0 - w) * log_sigma[lo] + w * log_sigma[hi]), 0.0)
    t_enc = int(min(float(strength), 0.999) * int(steps))
    return [float(v) for v in sigmas[int(steps) - t_enc - 1:]]


@dataclass
class Img2ImgConfig(SDBaseConfig):
    """Settings of the `sd-img2img` generator: defaults, types, ranges and help in one place."""

    prompt: str | dict[str, str] = option(THESIS_TEMPLATE, "prompt template ({label}, metadata fields) or one per class")
    strength: float = option(0.15, "denoising strength (the thesis: 0.10 and 0.15), meant as strength_convention says",
                             low=0.0, high=1.0, low_open=True)
    strength_convention: str = option("webui", "webui: int(steps*strength)+1 steps as in AUTOMATIC1111; diffusers: "
                                               "int(steps*strength) steps as in diffusers' img2img pipeline",
                                      choices=STRENGTH_CONVENTIONS)
    steps: int = option(20, "sampler steps of the full schedule (strength selects its last ones)", low=1)
    sampler: str = option("euler", "sampler", choices=SAMPLERS)
    guidance_scale: float = option(7.5, "classifier-free guidance scale (the thesis: 29)", low=0.0)
    resolution: int = option(512, "working resolution (px)", low=8)
    lora: str | None = option(None, "a LoRA folder written by the `sd` generator (none: the base model)")
    lora_scale: float = option(1.0, "LoRA weight", low=0.0)
    per_image: int = option(0, "variants per real training image the sample stage makes (0: what the cells need; "
                               "the thesis: 3)", low=0, runtime=True)
    sample_batch: int = option(8, "images per sampling batch", low=1)
    device: str = option("auto", "auto | cpu | cuda | cuda:N", runtime=True)
    mixed_precision: bool = option(True, "fp16/bf16 on CUDA")

    def validate(self) -> None:
        check_prompt(self.prompt)
        if self.strength_convention == "diffusers" and int(self.steps * self.strength) < 1:
            raise UserInputError(f"strength {self.strength} with steps {self.steps} runs int(steps * strength) = 0 "
                                 f"denoising steps (strength_convention=diffusers); raise steps to at least "
                                 f"{int(np.ceil(1 / self.strength))}")


class StableDiffusionImg2Img(SourcesMixin, Generator):
    """Stable Diffusion img2img (SDEdit) from real training images with denoising ``strength``.

    Output ``i`` of class ``c`` transforms source ``order[i % n]`` of that class (variant ``i // n``), so
    ``--per-image K`` gives K variants of every training image and sampling more gives a superset.
    The source's hash is recorded per output (``source_hash`` in the manifest) for the near-copy metric.
    Defaults follow the thesis (SD 1.5, Euler, 20 steps, strength 0.15, 512 px, its prompt); the thesis
    used CFG 29 (``guidance_scale=29``); the default here is diffusers' 7.5. ``strength`` means what it means
    in the AUTOMATIC1111 web UI (``strength_convention="webui"``, see :func:`webui_sigmas`): at 20 steps and
    0.15, 4 Euler steps from t = 157.7; ``strength_convention="diffusers"`` gives diffusers' meaning (3 steps).
    """

    name = "sd-img2img"

    config_class = Img2ImgConfig

    def __init__(self, **config: Any) -> None:
        super().__init__(**to_dict(build(Img2ImgConfig, config, "sd-img2img")))  # one declaration: Img2ImgConfig
        self._images: np.ndarray | None = None
        self._pipe: Any = None

    def _device(self) -> Any:
        from ...runtime import pick_device

        return pick_device(self.config["device"])

    def _pipeline(self) -> Any:
        import torch

        if self._pipe is None:
            dev = self._device()
            pipe = load_sd_pipeline(self.config["sd_model"], img2img=True, device=dev,
                                    sd_config=self.config.get("sd_config"))
            if self.config["lora"]:
                from .lora import LORA_WEIGHTS, load_lora

                p = Path(self.config["lora"]).expanduser()
                p = p / "lora" if (p / "lora" / LORA_WEIGHTS).is_file() else p  # a saved `sd` generator folder
                if not (p.is_file() or (p / LORA_WEIGHTS).is_file()):
                    raise UserInputError(f"lora={self.config['lora']!r}: no {LORA_WEIGHTS} there; pass a saved `sd` "
                                         "generator folder or a diffusers LoRA file")
                load_lora(pipe, p)
            if dev.type == "cuda" and self.config["mixed_precision"]:
                pipe.to(dev, torch.float16)
            set_sampler(pipe, self.config["sampler"])
            self._pipe = pipe
        return self._pipe

    def fit(self, train: TrainingSet, workdir: Path | None = None) -> "StableDiffusionImg2Img":
        resolve_sd_model(self.config["sd_model"], self.config.get("sd_config"))
        self._remember(train)
        for ci in range(len(self.classes)):
            class_template(self.config["prompt"], self.classes[ci])
        self._images = train.images(self.config["resolution"])
        return self

    def source_hashes(self, class_index: int, indices: list[int]) -> list[str]:
        return [self._hashes[s] for s in self._source_index(class_index, indices)]

    def generate(self, class_index: int, indices: list[int], seeds: list[int], size: int) -> list[np.ndarray]:
        import torch

        pipe = self._pipeline()
        sources = self._source_index(class_index, indices)
        prompts = self._prompts(class_index, sources)
        kwargs = {"cross_attention_kwargs": {"scale": self.config["lora_scale"]}} if self.config["lora"] else {}
        out, step = [], max(1, self.config["sample_batch"])
        for s in range(0, len(indices), step):
            src = sources[s:s + step]
            init = torch.from_numpy(np.ascontiguousarray(self._images[src])).permute(0, 3, 1, 2).float() / 255.0
            gens = [torch.Generator("cpu").manual_seed(int(x)) for x in seeds[s:s + step]]
            result = pipe(prompt=prompts[s:s + step], image=init, guidance_scale=self.config["guidance_scale"],
                          negative_prompt=[self.config["negative_prompt"]] * len(src), generator=gens,
                          output_type="np", **self._schedule_kwargs(pipe), **kwargs)
            out.extend(to_uint8(result.images, size))
        return out

    def _schedule_kwargs(self, pipe: Any) -> dict[str, Any]:
        """Pipeline keywords that give ``strength`` its configured meaning (web UI by default).

        Web UI: schedulers that take custom sigmas (``euler``) get exactly the web UI's noise levels
        (:func:`webui_sigmas`) with ``strength=1`` (so diffusers runs all of them and noises the init latent
        to the first); other samplers get a linspace timestep grid (the web UI's) and the diffusers
        strength that runs the web UI's ``int(steps * strength) + 1`` steps.
        """
        import inspect

        cfg = self.config
        if cfg.get("strength_convention", "webui") == "diffusers":
            return {"strength": cfg["strength"], "num_inference_steps": cfg["steps"]}
        sched = pipe.scheduler
        if "sigmas" in inspect.signature(sched.set_timesteps).parameters:
            return {"strength": 1.0, "num_inference_steps": None,
                    "sigmas": webui_sigmas(sched.alphas_cumprod, cfg["steps"], cfg["strength"])}
        if sched.config.get("timestep_spacing") != "linspace":
            pipe.scheduler = type(sched).from_config(sched.config, timestep_spacing="linspace", steps_offset=0)
        n = denoising_steps(cfg["steps"], cfg["strength"], "webui")
        return {"strength": min(1.0, (n + 0.5) / cfg["steps"]), "num_inference_steps": cfg["steps"]}

    def save(self, path: Path) -> None:
        from PIL import Image

        from ...atomic import atomic_path

        super().save(path)
        self._save_sources(path)
        folder = Path(path) / SOURCES_DIR
        for i, im in enumerate(self._images):
            with atomic_path(folder / f"{i:06d}.png") as tmp:
                Image.fromarray(im).save(tmp, compress_level=1)

    def load_state(self, path: Path) -> None:
        from ...data import decode_image

        self._load_sources(path)
        folder = Path(path) / SOURCES_DIR
        n = len(self._labels)
        files = [folder / f"{i:06d}.png" for i in range(n)]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise UserInputError(f"saved sd-img2img generator {path}: {len(missing)} source images missing "
                                 f"(first: {missing[0]}); re-run `ooc-bench generate`")
        self._images = np.stack([decode_image(f) for f in files])

    def describe(self) -> dict[str, Any]:
        """Number of denoising steps actually run and the source count, for summaries."""
        return {"denoising_steps": denoising_steps(self.config["steps"], self.config["strength"],
                                                   self.config.get("strength_convention", "webui")),
                "strength_convention": self.config.get("strength_convention", "webui"),
                "sources": int(len(self._labels)) if self._labels is not None else 0}

