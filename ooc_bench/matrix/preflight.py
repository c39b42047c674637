"""Pre-flight: before any compute, check every weight source and input folder the plan needs; list ALL that are missing.

``ooc-bench run`` (and ``--dry-run``) calls :func:`preflight` first. Each generator, classifier and the quality
feature space says what it will load (a Stable Diffusion folder, file or hub id; ImageNet weights; Inception or
DINOv2 weights; a folder of images; a GAN pickle). When anything a required part needs is missing, the run stops
within seconds with one line per missing source and what to pass for it; optional generators that cannot run
are reported as skipped at that point (their jobs are then recorded as skipped, with the reason, not run).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import OocBenchError, UserInputError
from ..runtime import is_offline
from .spec import BenchmarkSpec


class PreflightError(UserInputError):
    """One or more weight sources the plan needs are missing (the message lists every one)."""


@dataclass
class Problem:
    """One missing source: which part needs it, what is missing, and what to pass instead."""

    part: str  # e.g. "generator sd", "model mnv2", "[quality] features = inception"
    problem: str
    fix: str
    optional: bool = False  # an optional generator: skipped, not fatal
    label: str = ""  # the generator label (for skipping)

    def line(self) -> str:
        return f"{self.part}: {self.problem} -> {self.fix}" if self.fix else f"{self.part}: {self.problem}"


def _hub_cached(repo: str, filename: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub comes with diffusers/timm
        return False
    return isinstance(try_to_load_from_cache(repo, filename), str)


def sd_problem(model: str) -> str | None:
    """Why the Stable Diffusion weights ``model`` (folder, file or hub id) cannot be loaded now; None if they can."""
    from ..generators.diffusion.pipeline import resolve_sd_model

    try:
        resolved = resolve_sd_model(model)
    except OocBenchError as exc:
        return str(exc)
    if Path(str(resolved)).exists():
        return None
    repo = str(resolved)
    if _hub_cached(repo, "model_index.json"):
        return None
    if is_offline():
        return f"{repo!r} is not in the Hugging Face cache and offline mode is on"
    return None  # online: from_pretrained downloads it


SD_FIX = ("pass --sd-model DIR (a local diffusers folder with model_index.json, or a checkpoint file), "
          "or download it first with `huggingface-cli download ID --local-dir DIR`")


def generator_problems(spec: BenchmarkSpec) -> list[Problem]:
    """The weights and folders each generator of the spec needs."""
    from ..generators.registry import resolve_generator_config

    out: list[Problem] = []
    for g in spec.generators:
        part = f"generator {g.label}" + (f" ({g.type})" if g.type != g.label else "")
        cfg = resolve_generator_config(g.type, g.config)
        found: list[tuple[str, str]] = []
        if g.type in ("sd", "sd-img2img"):
            reason = sd_problem(cfg["sd_model"])
            if reason:
                found.append((reason, SD_FIX))
        lora = cfg.get("lora") if g.type == "sd-img2img" else None
        if lora and not Path(os.path.expanduser(str(lora))).exists():
            found.append((f"lora folder {lora} not found", "pass lora=DIR (an `sd` generator's saved folder) or remove it"))
        if g.type == "gan" and cfg.get("gan_pkl") and not Path(os.path.expanduser(str(cfg["gan_pkl"]))).is_file():
            found.append((f"gan_pkl {cfg['gan_pkl']} not found", "pass an existing NVlabs network pickle or remove gan_pkl"))
        if g.type == "folder" and not Path(str(cfg.get("path") or "")).is_dir():
            found.append((f"folder {cfg.get('path')} not found", "pass folder:DIR with DIR/<class>/ images"))
        out += [Problem(part, p, f, optional=g.optional, label=g.label) for p, f in found]
    return out


def model_problems(spec: BenchmarkSpec) -> list[Problem]:
    """The pretrained weights each classifier of the spec starts from."""
    from ..classifiers import resolve_model_name
    from ..classifiers.weights import weights_problem

    out: list[Problem] = []
    for m in spec.models:
        cfg = {**spec.training, **m.config}
        pretrained = cfg.get("pretrained", True)
        try:
            reason = weights_problem(m.model, resolve_model_name(m.model, pretrained=bool(pretrained)), pretrained,
                                     cfg.get("weights"))
        except OocBenchError as exc:
            reason = str(exc)
        if reason:
            out.append(Problem(f"model {m.label}" + (f" ({m.model})" if m.model != m.label else ""), reason,
                               "pass --weights FILE (or a JSON mapping model -> file; $OOC_BENCH_WEIGHTS), "
                               f"or --no-pretrained / `pretrained = false` in [models.{m.label}]"))
    return out


def quality_problems(spec: BenchmarkSpec) -> list[Problem]:
    """The weights of the quality feature space (Inception, DINOv2; the domain network is trained in the run)."""
    if not spec.quality.get("enabled", True):
        return []
    from ..metrics import resolve_extractor_name
    from .quality import build_extractor, quality_settings

    q = quality_settings(spec.quality)
    name = resolve_extractor_name(q["features"])
    if name == "domain":
        return []
    try:
        build_extractor(q)  # checks the weights file / cache (models load lazily, on first use)
    except OocBenchError as exc:
        return [Problem(f"[quality] features = {q['features']}", str(exc),
                        f"pass [quality] {name}_weights = FILE (or --set quality.{name}_weights=FILE), "
                        "or --set quality.features=domain")]
    return []


def check_sources(spec: BenchmarkSpec) -> list[Problem]:
    """Every missing source of the plan (empty: everything it needs can be loaded)."""
    return generator_problems(spec) + model_problems(spec) + quality_problems(spec)


def preflight(spec: BenchmarkSpec, console: Any = None) -> dict[str, str]:
    """Check everything; optional generators that cannot run are returned (label -> reason) and printed as skipped.

    Raises :class:`PreflightError` listing every missing source of the required parts.
    """
    problems = check_sources(spec)
    fatal = [p for p in problems if not p.optional]
    if fatal:
        lines = "\n  ".join(p.line() for p in fatal)
        raise PreflightError(f"{len(fatal)} weight source(s) or input(s) the plan needs are missing; nothing was run:\n  "
                             f"{lines}")
    skipped: dict[str, str] = {}
    for p in problems:
        skipped.setdefault(p.label, p.line())
    if skipped and console is not None:  # their jobs stop at the first step that needs the source (recorded skipped)
        from rich.markup import escape

        for label, reason in skipped.items():
            console.print(f"[yellow]skipping optional generator {escape(label)}:[/] {escape(reason)}", highlight=False,
                          soft_wrap=True)
    return skipped


__all__ = ["Problem", "PreflightError", "check_sources", "preflight", "sd_problem"]
