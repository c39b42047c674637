"""`sd-img2img`: SDEdit variants of each real training image (the bachelor-thesis method), label and metadata inherited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...errors import UserInputError
from ..base import Generator, TrainingSet
from .pipeline import DEFAULT_SD_MODEL, load_sd_pipeline, resolve_sd_model, set_sampler, to_uint8
from .prompts import THESIS_TEMPLATE, class_template
from .sd import _check_prompt, _SourcesMixin

SOURCES_DIR = "sources"


class StableDiffusionImg2Img(_SourcesMixin, Generator):
    """Stable Diffusion img2img (SDEdit) from real training images with denoising ``strength``.

    Output ``i`` of class ``c`` transforms source ``order[i % n]`` of that class (variant ``i // n``), so
    ``--per-image K`` gives K variants of every training image and sampling more gives a superset.
    The source's hash is recorded per output (``source_hash`` in the manifest) for the near-copy metric.
    Defaults follow the thesis (SD 1.5, Euler, 20 steps, strength 0.15, 512 px, its prompt); the thesis
    used CFG 29 (``guidance_scale=29``); the default here is diffusers' 7.5. With strength s only
    ``int(steps * s)`` denoising steps run (as in the web UI).
    """

    name = "sd-img2img"

    def __init__(self, sd_model: str = DEFAULT_SD_MODEL, prompt: str | dict[str, str] = THESIS_TEMPLATE,
                 negative_prompt: str = "", strength: float = 0.15, steps: int = 20, sampler: str = "euler",
                 guidance_scale: float = 7.5, resolution: int = 512, lora: str | None = None, lora_scale: float = 1.0,
                 sample_batch: int = 8, device: str = "auto", mixed_precision: bool = True) -> None:
        _check_prompt(prompt)
        if not 0.0 < float(strength) <= 1.0:
            raise UserInputError(f"--strength {strength}: must be in (0, 1] (the thesis used 0.1 or 0.15)")
        if int(int(steps) * float(strength)) < 1:
            raise UserInputError(f"--strength {strength} with --steps {steps} runs int(steps * strength) = 0 denoising "
                                 f"steps; raise --steps to at least {int(np.ceil(1 / float(strength)))}")
        super().__init__(sd_model=str(sd_model), prompt=prompt, negative_prompt=str(negative_prompt),
                         strength=float(strength), steps=int(steps), sampler=str(sampler),
                         guidance_scale=float(guidance_scale), resolution=int(resolution),
                         lora=str(lora) if lora else None, lora_scale=float(lora_scale), sample_batch=int(sample_batch),
                         device=str(device), mixed_precision=bool(mixed_precision))
        self._images: np.ndarray | None = None
        self._pipe: Any = None

    def _device(self) -> Any:
        from ...runtime import pick_device

        return pick_device(self.config["device"])

    def _pipeline(self) -> Any:
        import torch

        if self._pipe is None:
            dev = self._device()
            pipe = load_sd_pipeline(self.config["sd_model"], img2img=True, device=dev)
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
        resolve_sd_model(self.config["sd_model"])
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
            result = pipe(prompt=prompts[s:s + step], image=init, strength=self.config["strength"],
                          num_inference_steps=self.config["steps"], guidance_scale=self.config["guidance_scale"],
                          negative_prompt=[self.config["negative_prompt"]] * len(src), generator=gens,
                          output_type="np", **kwargs)
            out.extend(to_uint8(result.images, size))
        return out

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
        return {"denoising_steps": int(self.config["steps"] * self.config["strength"]),
                "sources": int(len(self._labels)) if self._labels is not None else 0}

