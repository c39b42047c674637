"""`sd`: Stable Diffusion fine-tuned with LoRA on the training split, sampled text-to-image with per-class prompts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...atomic import write_json
from ...config import build, option, to_dict
from ..base import Generator, TrainingSet
from .pipeline import DEFAULT_SD_MODEL, SAMPLERS, load_sd_pipeline, resolve_sd_model, set_sampler, to_uint8
from .progress import ProgressBar
from .prompts import DEFAULT_SD_TEMPLATE, class_template, render_prompt, template_fields

SOURCES_JSON = "sources.json"


class SourcesMixin:
    """Labels, hashes and metadata of the training images, with a fixed per-class order that outputs cycle."""

    classes: list[str]
    _labels: np.ndarray | None = None
    _hashes: list[str]
    _metadata: list[dict[str, str]]

    def _remember(self, train: TrainingSet) -> None:
        self.classes = list(train.classes)
        self._labels = np.asarray(train.labels, dtype=np.int64)
        self._hashes = list(train.hashes) or ["" for _ in range(len(train))]
        self._metadata = [dict(m) for m in train.metadata] if train.metadata else [{} for _ in range(len(train))]

    def _order(self, class_index: int) -> np.ndarray:
        """Training-image indices of a class in a fixed order: output i uses ``order[i % n]`` (variant ``i // n``)."""
        if self._labels is None:
            raise RuntimeError(f"{getattr(self, 'name', 'generator')}: call fit() or load a saved generator before sampling")
        idx = np.flatnonzero(self._labels == class_index)
        if idx.size == 0:
            raise RuntimeError(f"{self.name}: no training images of class {self.classes[class_index]!r}")  # type: ignore[attr-defined]
        return np.random.default_rng(class_index).permutation(idx)

    def _source_index(self, class_index: int, indices: list[int]) -> list[int]:
        order = self._order(class_index)
        return [int(order[i % len(order)]) for i in indices]

    def _prompts(self, class_index: int, sources: list[int]) -> list[str]:
        template = class_template(self.config["prompt"], self.classes[class_index])  # type: ignore[attr-defined]
        return [render_prompt(template, self.classes[class_index], self._metadata[s]) for s in sources]

    def _save_sources(self, path: Path) -> None:
        write_json(Path(path) / SOURCES_JSON, {"labels": [int(v) for v in self._labels], "hashes": self._hashes,
                                              "metadata": self._metadata})

    def _load_sources(self, path: Path) -> None:
        data = json.loads((Path(path) / SOURCES_JSON).read_text())
        self._labels = np.asarray(data["labels"], dtype=np.int64)
        self._hashes, self._metadata = list(data["hashes"]), list(data["metadata"])


def check_prompt(prompt: Any) -> None:
    """Raise UserInputError when a prompt template (or one of the per-class templates) is malformed."""
    for t in (prompt.values() if isinstance(prompt, dict) else [prompt]):
        template_fields(str(t))


@dataclass
class SDBaseConfig:
    """The settings both Stable Diffusion generators (`sd`, `sd-img2img`) share: which base model, the negative prompt."""

    sd_model: str = option(DEFAULT_SD_MODEL, "hub id, local diffusers folder or single-file checkpoint")
    sd_config: str | None = option(None, "for a single-file sd_model: a local diffusers folder with the configs and "
                                         "tokenizer (offline loading)", runtime=True)
    negative_prompt: str = option("", "negative prompt")


@dataclass
class SDConfig(SDBaseConfig):
    """Settings of the `sd` generator (Stable Diffusion + LoRA): defaults, types, ranges and help in one place."""

    prompt: str | dict[str, str] = option(DEFAULT_SD_TEMPLATE, "prompt template ({label}, metadata fields) or one per class")
    resolution: int = option(512, "training and sampling resolution (px)", low=8)
    rank: int = option(8, "LoRA rank", low=1)
    alpha: float | None = option(None, "LoRA alpha (none: = rank)", low=0.0, low_open=True)
    learning_rate: float = option(1e-4, "LoRA learning rate", low=0.0, low_open=True)
    steps: int = option(1000, "LoRA training steps (0: the base model)", low=0)
    batch_size: int = option(1, "training batch size", low=1)
    grad_accum: int = option(4, "gradient accumulation steps", low=1)
    train_text_encoder: bool = option(False, "also train LoRA on the text encoder")
    text_encoder_lr: float | None = option(None, "text-encoder learning rate (none: learning_rate)", low=0.0, low_open=True)
    snr_gamma: float | None = option(5.0, "min-SNR loss weighting gamma (none: off)", low=0.0, low_open=True)
    flip: bool = option(True, "random horizontal flips during training")
    sampler: str = option("dpm++", "sampler", choices=SAMPLERS)
    sample_steps: int = option(25, "sampler steps", low=1)
    guidance_scale: float = option(7.5, "classifier-free guidance scale", low=0.0)
    lora_scale: float = option(1.0, "LoRA weight while sampling", low=0.0)
    sample_batch: int = option(8, "images per sampling batch", low=1)
    checkpoint_every: int = option(250, "steps between checkpoints (0: none)", low=0, runtime=True)
    seed: int = option(0, "training seed")
    device: str = option("auto", "auto | cpu | cuda | cuda:N", runtime=True)
    mixed_precision: bool = option(True, "fp16/bf16 on CUDA")
    gradient_checkpointing: bool = option(True, "trade compute for memory in the UNet", runtime=True)

    def validate(self) -> None:
        check_prompt(self.prompt)


class StableDiffusionLoRA(SourcesMixin, Generator):
    """LoRA fine-tuning of Stable Diffusion (1.5 by default) on the training split; DPM-Solver++ sampling.

    Every training image is paired with its class prompt (template fields filled from its metadata);
    output ``i`` of class ``c`` uses the metadata of the class's training images in a fixed cycled
    order, so the prompt distribution matches the training split. ``steps=0`` samples the base model.
    """

    name = "sd"

    config_class = SDConfig

    def __init__(self, **config: Any) -> None:
        c = build(SDConfig, config, "sd")  # names, types and ranges: one declaration, SDConfig
        cfg = to_dict(c)
        cfg["alpha"] = float(c.alpha if c.alpha is not None else c.rank)
        super().__init__(**cfg)
        self._pipe: Any = None
        self._sampling_ready = False  # _pipe moved to the sampling dtype, scheduler swapped
        self._has_lora = False
        self.train_stats: dict[str, Any] = {}

    # -- pipeline ---------------------------------------------------------------------------------
    def _device(self) -> Any:
        from ...runtime import pick_device

        return pick_device(self.config["device"])

    def _load_pipe(self) -> Any:
        self._pipe = load_sd_pipeline(self.config["sd_model"], device=self._device(), sd_config=self.config.get("sd_config"))
        self._sampling_ready = False
        return self._pipe

    def _for_sampling(self) -> Any:
        """The pipeline on its device, in fp16 on CUDA, with the configured sampler (prepared once, not per batch)."""
        import torch

        if self._pipe is None:
            self._load_pipe()
        if not self._sampling_ready:
            dev = self._device()
            if dev.type == "cuda" and self.config["mixed_precision"]:
                self._pipe.to(dev, torch.float16)
            set_sampler(self._pipe, self.config["sampler"])
            self._sampling_ready = True
        return self._pipe

    # -- Generator interface ----------------------------------------------------------------------
    def fit(self, train: TrainingSet, workdir: Path | None = None) -> "StableDiffusionLoRA":
        from ...hashing import config_hash
        from ...runtime import seed_everything
        from .lora import train_lora

        resolve_sd_model(self.config["sd_model"], self.config.get("sd_config"))  # a bad --sd-model fails before any image is loaded
        self._remember(train)
        for ci in range(len(self.classes)):  # every class must have a template (clear error otherwise)
            class_template(self.config["prompt"], self.classes[ci])
        seed_everything(self.config["seed"])
        self._load_pipe()
        self._has_lora = False
        if self.config["steps"] <= 0:
            return self
        images = train.images(self.config["resolution"])
        prompts = [self._prompts(int(label), [i])[0] for i, label in enumerate(self._labels)]
        cfg = dict(self.config)
        cfg["resume_key"] = config_hash({k: v for k, v in self.config.items() if k not in ("steps", "checkpoint_every")
                                         and not k.startswith("sample") and k not in ("guidance_scale", "lora_scale")}
                                        | {"data": config_hash(self._hashes)})
        bar = ProgressBar(f"sd LoRA ({self.config['steps']} steps)")
        with bar:
            self.train_stats = train_lora(self._pipe, images, prompts, cfg, self._device(),
                                          workdir=Path(workdir) / "sd-lora" if workdir is not None else None,
                                          progress=bar.update)
        self._has_lora = True
        return self

    def generate(self, class_index: int, indices: list[int], seeds: list[int], size: int) -> list[np.ndarray]:
        import torch

        pipe = self._for_sampling()
        sources = self._source_index(class_index, indices)
        prompts = self._prompts(class_index, sources)
        res, out = self.config["resolution"], []
        kwargs = {"cross_attention_kwargs": {"scale": self.config["lora_scale"]}} if self._has_lora else {}
        step = max(1, self.config["sample_batch"])
        for s in range(0, len(indices), step):
            gens = [torch.Generator("cpu").manual_seed(int(x)) for x in seeds[s:s + step]]
            result = pipe(prompt=prompts[s:s + step], negative_prompt=[self.config["negative_prompt"]] * len(gens),
                          num_inference_steps=self.config["sample_steps"], guidance_scale=self.config["guidance_scale"],
                          height=res, width=res, generator=gens, output_type="np", **kwargs)
            out.extend(to_uint8(result.images, size))
        return out

    def save(self, path: Path) -> None:
        from .lora import save_lora

        super().save(path)
        self._save_sources(path)
        if self._has_lora and self._pipe is not None:
            save_lora(self._pipe, Path(path) / "lora", self.config["rank"], self.config["alpha"])
        write_json(Path(path) / "train_stats.json", self.train_stats)

    def load_state(self, path: Path) -> None:
        from .lora import LORA_WEIGHTS, load_lora

        self._load_sources(path)
        self._load_pipe()
        self._has_lora = (Path(path) / "lora" / LORA_WEIGHTS).is_file()
        if self._has_lora:
            load_lora(self._pipe, Path(path) / "lora")

