"""Check and time every GPU path of ooc-bench — classifiers, StyleGAN2-ADA, Stable Diffusion, feature extractors — into one JSON and one Markdown table.

    python benchmarks/gpu_suite.py --out DIR [--device cuda|cpu] [--quick] [--only classifiers,gan,sd,features]

Full sizes (the default) are what a user with one GPU runs: MobileNetV2 / EfficientNet-B0 at 224 px and
EfficientNet-B7 at 600 px, StyleGAN2-ADA with the paper capacity at 128 and 256 px, an SD-1.5-shaped pipeline
(860 M-parameter UNet, full VAE, CLIP ViT-L/14-sized text encoder, random weights built from the published
shapes: nothing is downloaded) at 512 px, and Inception / DINOv2 with random weights built from their configs.
Repeats are sized so the whole run takes well under 8 minutes on one modern GPU. ``--quick`` runs every check
through the same code paths at tiny sizes (seconds on a CPU); the test suite runs it so the script cannot rot.

Every section runs on its own: one that fails is recorded with its error and the others go on; a package
that is missing (diffusers, torch-fidelity, ...) is named with what to install. Exit code 0 when every check
ran, 1 when any failed or could not run.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

if importlib.util.find_spec("ooc_bench") is None:  # a GPU machine's own Python: run from the checkout, uninstalled
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SECTIONS = ("classifiers", "gan", "sd", "features")
# packages each section needs beyond torch (the GPU machine's Python may lack some: bring them as wheels)
NEEDS = {"classifiers": ("timm", "sklearn"), "gan": ("scipy",),
         "sd": ("diffusers", "transformers", "peft", "safetensors"), "features": ("torch_fidelity", "timm", "safetensors")}
PIP_NAMES = {"sklearn": "scikit-learn"}  # import name -> distribution name, where they differ beyond - and _
# published reference figures the measured ones are compared with (what each anchor is, in words)
ANCHORS = {
    "classifiers": "timm: MobileNetV2 training with AMP about 1,800 img/s on one RTX 3090 at 224 px",
    "gan": "NVlabs StyleGAN2-ADA --cfg=auto on one V100: 21.6-24.2 s/kimg at 256 px, 12.8-13.7 s/kimg at 128 px",
    "sd": "diffusers' SD 1.5 default: PNDM, 50 steps, fp32 (goal: ooc-bench's sampler >= 4x faster at equal quality)",
    "features": "torch-fidelity: 50k 32-px images, all metrics, 2 min 26 s on one P100",
}


@dataclass
class Figure:
    """One measured number (long format: one row per section, check, variant and metric)."""

    section: str
    check: str
    variant: str
    metric: str
    value: float | str | None
    unit: str = ""
    note: str = ""


@dataclass
class Suite:
    """Where figures and section outcomes are collected while the suite runs."""

    device: Any
    quick: bool
    work: Path
    figures: list[Figure] = field(default_factory=list)
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, section: str, check: str, variant: str, metric: str, value: Any, unit: str = "", note: str = "") -> None:
        if isinstance(value, (np.floating, np.integer)):
            value = value.item()
        self.figures.append(Figure(section, check, variant, metric, value, unit, note))


# ------------------------------------------------------------------------------------------------ helpers

def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mib(device: Any) -> float | None:
    """Peak GPU memory allocated since the last reset, in MiB (None on the CPU)."""
    import torch

    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None


def _missing(section: str) -> list[str]:
    """The packages a section needs that are absent, or present but not importable for want of one of their own
    (diffusers without requests, say): that one is named, with the package that needs it."""
    out = []
    for name in NEEDS[section]:
        if importlib.util.find_spec(name) is None:
            out.append(name)
            continue
        try:
            importlib.import_module(name)
        except ImportError as exc:  # ModuleNotFoundError and importlib.metadata.PackageNotFoundError included
            found = re.search(r"'([A-Za-z0-9_.-]+)' distribution", str(exc))
            dep = found.group(1) if found else \
                (exc.name or "").split(".")[0] if isinstance(exc, ModuleNotFoundError) else ""
            if dep and dep != name and (found or importlib.util.find_spec(dep) is None):
                out.append(f"{dep} (needed by {name})")
            else:  # "cannot import name X from Y": a version that does not match the installed packages
                out.append(f"{name} (import fails, version mismatch?: {str(exc).splitlines()[0][:160]})")
    return out


def _wheel_hint(names: list[str]) -> str:
    bare = (n.split(" (")[0] for n in names)
    pip_names = " ".join(PIP_NAMES.get(n, n).replace("_", "-") for n in bare)
    return (f"missing Python package(s): {', '.join(names)}; install them (offline: `pip download --no-deps "
            f"{pip_names}` on a machine with network, copy the wheels over, `pip install --no-deps WHEELS`)")


def _smooth_images(n: int, size: int, seed: int) -> np.ndarray:
    """Smooth random uint8 RGB images (N, size, size, 3): upsampled noise, so networks see structure, not static."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    low = torch.rand((n, 3, 8, 8), generator=g)
    x = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    return (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def environment(device: Any) -> dict[str, Any]:
    """GPU name, driver, torch / CUDA / cuDNN versions, package versions and the ooc-bench commit."""
    import torch

    from ooc_bench.runtime import versions

    env: dict[str, Any] = {"device": str(device), "python": platform.python_version(), "torch": torch.__version__,
                           "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                           "host": platform.node(), "cpu_count": os.cpu_count(), "packages": versions()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                   compute_capability=f"{props.major}.{props.minor}")
        try:
            env["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                           capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            env["driver"] = "unknown (nvidia-smi not found)"
    try:
        root = Path(__file__).resolve().parents[1]
        env["ooc_bench_commit"] = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                                 text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        env["ooc_bench_commit"] = "unknown"
    return env


# ------------------------------------------------------------------------------------------------ classifiers

def _precisions(device: Any) -> list[tuple[str, Any, bool]]:
    """(variant name, autocast dtype or None, channels_last) to compare: fp32 against the reduced precisions."""
    import torch

    if device.type != "cuda":
        return [("fp32", None, False), ("bf16", torch.bfloat16, False)]
    out = [("fp32", None, False), ("fp16+channels_last", torch.float16, True)]
    if torch.cuda.is_bf16_supported():
        out.insert(1, ("bf16+channels_last", torch.bfloat16, True))
    return out


def classifier_steps(model_name: str, size: int, batch: int, dtype: Any, channels_last: bool, device: Any,
                     warmup: int, steps: int) -> dict[str, float | None]:
    """Images/s of ooc-bench's training step (on-device augmentation, normalisation, autocast, AdamW) and the data share."""
    import torch

    from ooc_bench.classifiers import create_model
    from ooc_bench.classifiers.augment import AugmentConfig, augment_batch
    from ooc_bench.classifiers.training import Preprocess

    model, info = create_model(model_name, num_classes=2, pretrained=False)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    pre = Preprocess(size, tuple(info.mean), tuple(info.std), info.interpolation)
    store = pre.as_uint8_nchw(_smooth_images(batch * 2, size, seed=1), device=device)
    labels = torch.arange(len(store), device=device) % 2
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(0)
    model.train()
    data_t, total_t = [], []
    _reset_peak(device)
    for i in range(warmup + steps):
        idx = torch.randperm(len(store), generator=gen)[:batch].to(device)
        _sync(device)
        t0 = time.perf_counter()
        xb = pre.normalize(augment_batch(store[idx].float().div_(255.0), gen, AugmentConfig()), channels_last)
        _sync(device)
        t1 = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = loss_fn(model(xb), labels[idx])
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        _sync(device)
        t2 = time.perf_counter()
        if i >= warmup:
            data_t.append(t1 - t0)
            total_t.append(t2 - t0)
    step_s = statistics.median(total_t)
    return {"img_per_s": batch / step_s, "step_ms": 1000 * step_s,
            "data_share": statistics.median(data_t) / step_s, "peak_mib": _peak_mib(device)}


def classifier_determinism(device: Any, quick: bool) -> dict[str, Any]:
    """Train the same tiny recipe twice with the same seed through ``train_classifier``; compare the metrics."""
    from ooc_bench.classifiers import TrainConfig, train_classifier

    size, n = (32, 24) if quick else (64, 96)
    x = _smooth_images(n, size, seed=3)
    y = (x.mean(axis=(1, 2, 3)) > np.median(x.mean(axis=(1, 2, 3)))).astype(np.int64)
    cfg = TrainConfig(model="mnv2", pretrained=False, epochs=1 if quick else 2, batch_size=8, img_size=size,
                      device=str(device), early_stopping=None)
    runs = [train_classifier(train=(x[: n // 2], y[: n // 2]), val=(x[n // 2: 3 * n // 4], y[n // 2: 3 * n // 4]),
                             test=(x[3 * n // 4:], y[3 * n // 4:]), classes=["a", "b"], config=cfg, seed=7)
            for _ in range(2)]
    keys = sorted(k for k, v in runs[0].metrics.items() if isinstance(v, (int, float, np.floating)))
    diff = max((abs(float(runs[0].metrics[k]) - float(runs[1].metrics[k])) for k in keys), default=0.0)
    return {"max_metric_diff": diff, "identical": diff == 0.0, "metrics": keys}


def run_classifiers(suite: Suite) -> None:
    dev, quick = suite.device, suite.quick
    plan = [("mnv2", 32, 4), ("effb0", 32, 4), ("effb7", 16, 2)] if quick else \
        [("mnv2", 224, 64), ("effb0", 224, 64), ("effb7", 600, 8)]
    warmup, steps = (1, 2) if quick else (5, 15)
    for i, (model, size, batch) in enumerate(plan):
        base = None
        variants = _precisions(dev)
        if quick and dev.type == "cpu" and i > 0:
            variants = variants[:1]  # CPU bf16 kernels are slow for large nets; the autocast path runs once (mnv2)
        for variant, dtype, cl in variants:
            r = classifier_steps(model, size, batch, dtype, cl, dev, warmup, steps)
            base = base or r["img_per_s"]
            check = f"{model} train step @{size}px, batch {batch}"
            suite.add("classifiers", check, variant, "images/s", r["img_per_s"], "img/s")
            suite.add("classifiers", check, variant, "speed-up vs fp32", r["img_per_s"] / base, "x")
            suite.add("classifiers", check, variant, "data path share", r["data_share"], "of step")
            suite.add("classifiers", check, variant, "peak memory", r["peak_mib"], "MiB")
    det = classifier_determinism(dev, quick)
    note = "bitwise identical" if det["identical"] else \
        "differs: cuDNN kernels are not deterministic; tolerance = the value shown"
    suite.add("classifiers", "same seed twice (train_classifier, mnv2)", "default recipe", "max |metric difference|",
              det["max_metric_diff"], "", note)


# ------------------------------------------------------------------------------------------------ gan

def _gan_train_set(n: int, res: int):
    from ooc_bench.generators import TrainingSet

    x = _smooth_images(n, res, seed=5)
    return TrainingSet.from_arrays(x, np.arange(n) % 2, ["bad", "good"])


def _gan_config(res: int, quick: bool, device: Any, kimg: float) -> dict[str, Any]:
    cfg: dict[str, Any] = {"resolution": res, "kimg": kimg, "device": str(device), "verbose": False,
                           "fixed_p": 0.2}  # ADA on at a fixed p, so the augmentation cost is in the timing
    if quick:
        cfg.update(capacity="tiny", channel_base=128, channel_max=16, z_dim=16, w_dim=16, mapping_layers=1,
                   batch_size=8)
    else:
        cfg.update(capacity="paper")
    return cfg


def _g_ema_params(gen: Any) -> dict[str, np.ndarray]:
    return {k: v.detach().float().cpu().numpy() for k, v in gen.G_ema.state_dict().items()}


def run_gan(suite: Suite) -> None:
    from ooc_bench.generators import create_generator

    dev, quick = suite.device, suite.quick
    plan = [(16, 0.016)] if quick else [(128, 0.5), (256, 0.5)]
    for res, kimg in plan:
        train = _gan_train_set(32 if quick else 64, res)
        _reset_peak(dev)
        t0 = time.perf_counter()
        gen = create_generator("gan", **_gan_config(res, quick, dev, kimg)).fit(train, suite.work / f"gan{res}")
        wall = time.perf_counter() - t0
        check = f"StyleGAN2-ADA fit @{res}px, {'tiny' if quick else 'paper'} capacity, ADA p=0.2"
        spk = gen.train_stats.get("seconds_per_kimg") if isinstance(gen.train_stats, dict) else None
        suite.add("gan", check, f"batch {gen.config['batch_size']}", "s/kimg", spk, "s/kimg",
                  f"{kimg} kimg fitted in {wall:.1f} s wall (start-up included)")
        suite.add("gan", check, f"batch {gen.config['batch_size']}", "peak memory", _peak_mib(dev), "MiB")
    # resume: half the budget, then the rest from the checkpoint, against one uninterrupted fit
    res, kimg = (16, 0.032) if quick else (128, 0.128)
    train = _gan_train_set(32 if quick else 64, res)
    whole = create_generator("gan", **_gan_config(res, quick, dev, kimg)).fit(train, suite.work / "gan-whole")
    create_generator("gan", **_gan_config(res, quick, dev, kimg / 2)).fit(train, suite.work / "gan-resumed")
    resumed = create_generator("gan", **_gan_config(res, quick, dev, kimg)).fit(train, suite.work / "gan-resumed")
    a, b = _g_ema_params(whole), _g_ema_params(resumed)
    diff = max(float(np.max(np.abs(a[k] - b[k]))) for k in a)
    note = "bit-for-bit" if diff == 0 else "not bitwise: nondeterministic GPU kernels (atomics in conv backward); tolerance = value"
    suite.add("gan", f"resume @{res}px: {kimg / 2:g} + {kimg / 2:g} kimg vs {kimg:g} kimg at once", "G_ema weights",
              "max |difference|", diff, "", note)
    suite.add("gan", f"resume @{res}px", "kimg reached", "kimg", resumed.nimg / 1000, "kimg")


# ------------------------------------------------------------------------------------------------ stable diffusion

def _make_pipeline_folder(folder: Path, quick: bool) -> Path:
    try:
        from ooc_bench.testing.tiny_sd import make_tiny_sd_pipeline
    except ImportError:
        from ooc_bench.generators.diffusion.tiny import make_tiny_sd_pipeline
    return make_tiny_sd_pipeline(folder, seed=0, full_size_unet=not quick)


class _CallCounter:
    """Counts UNet forward calls (denoising steps x CFG batches) while installed as a forward hook."""

    def __init__(self, module: Any) -> None:
        self.calls = 0
        self._handle = module.register_forward_hook(self._hook)

    def _hook(self, *_: Any) -> None:
        self.calls += 1

    def remove(self) -> None:
        self._handle.remove()


def _time_generate(gen: Any, n: int, size: int, device: Any) -> tuple[float, int, list[np.ndarray]]:
    """Seconds per image of ``gen.generate`` for class 0 (after one warm-up image) and the UNet calls per batch."""
    gen.generate(0, [0], [123], size)  # warm-up: kernels, scheduler, fp16 cast
    pipe = gen._for_sampling() if hasattr(gen, "_for_sampling") else gen._pipeline()
    counter = _CallCounter(pipe.unet)
    _sync(device)
    t0 = time.perf_counter()
    images = gen.generate(0, list(range(n)), [1000 + i for i in range(n)], size)
    _sync(device)
    dt = time.perf_counter() - t0
    counter.remove()
    batches = -(-n // max(1, int(gen.config.get("sample_batch", 1))))
    return dt / n, counter.calls // batches, images


def run_sd(suite: Suite) -> None:
    from ooc_bench.generators import TrainingSet, create_generator
    from ooc_bench.generators.diffusion.lora import train_lora
    from ooc_bench.generators.diffusion.pipeline import load_sd_pipeline

    dev, quick = suite.device, suite.quick
    res = 32 if quick else 512
    t0 = time.perf_counter()
    folder = _make_pipeline_folder(suite.work / "sd15-random", quick)
    suite.add("sd", "SD-1.5-shaped pipeline, random weights" if not quick else "tiny SD-shaped pipeline",
              "build + save", "seconds", round(time.perf_counter() - t0, 1), "s")
    # LoRA training steps through the project's trainer (frozen weights in bf16/fp16 on CUDA, gradient checkpointing)
    pipe = load_sd_pipeline(str(folder), device=dev)
    n_img, steps = (4, 3) if quick else (8, 12)
    images = _smooth_images(n_img, res, seed=9)
    stamps: list[float] = []

    def progress(step: int, total: int, loss: float) -> None:
        _sync(dev)
        stamps.append(time.perf_counter())

    _reset_peak(dev)
    cfg = {"rank": 8, "alpha": 8, "learning_rate": 1e-4, "steps": steps, "batch_size": 1, "grad_accum": 1,
           "snr_gamma": 5.0, "flip": True, "seed": 0, "mixed_precision": True, "gradient_checkpointing": True,
           "checkpoint_every": 0}
    train_lora(pipe, images, ["a photo of cells"] * n_img, cfg, dev, workdir=None, progress=progress)
    step_s = statistics.median(np.diff(stamps[1:])) if len(stamps) > 2 else float("nan")
    suite.add("sd", f"LoRA training step @{res}px, batch 1, rank 8", "mixed precision", "s/step", step_s, "s")
    suite.add("sd", f"LoRA training step @{res}px, batch 1, rank 8", "mixed precision", "peak memory", _peak_mib(dev), "MiB")
    del pipe
    # sampling: ooc-bench's default sampler (fp16 on CUDA) against diffusers' SD default (PNDM 50 steps, fp32)
    train = TrainingSet.from_arrays(images, np.zeros(n_img, np.int64), ["cells"])
    n = 2 if quick else 8
    fast_steps, slow_steps = (5, 10) if quick else (25, 50)  # quick: the same samplers, fewer steps
    common = {"sd_model": str(folder), "resolution": res, "steps": 0, "device": str(dev), "sample_batch": 4}
    per_image = {}
    for variant, extra in ((f"ooc-bench: dpm++ {fast_steps} steps, fp16",
                            {"sampler": "dpm++", "sample_steps": fast_steps, "mixed_precision": True}),
                           (f"diffusers default: pndm {slow_steps} steps, fp32",
                            {"sampler": "pndm", "sample_steps": slow_steps, "mixed_precision": False})):
        gen = create_generator("sd", **common, **extra).fit(train)
        _reset_peak(dev)
        s, calls, _ = _time_generate(gen, n, res, dev)
        per_image[variant] = s
        suite.add("sd", f"text-to-image @{res}px, CFG 7.5, batch 4", variant, "images/s", 1 / s, "img/s")
        suite.add("sd", f"text-to-image @{res}px, CFG 7.5, batch 4", variant, "UNet calls per batch", calls, "")
        suite.add("sd", f"text-to-image @{res}px, CFG 7.5, batch 4", variant, "peak memory", _peak_mib(dev), "MiB")
        del gen
    fast, slow = per_image.values()
    suite.add("sd", f"text-to-image @{res}px", "ooc-bench vs diffusers default", "speed-up", slow / fast, "x",
              "random weights: speed only; equal quality is not measurable without trained weights")
    # img2img at the thesis' setting (strength 0.15, 20 Euler steps)
    gen = create_generator("sd-img2img", sd_model=str(folder), resolution=res, strength=0.15, steps=20,
                           sampler="euler", device=str(dev), sample_batch=4).fit(train)
    _reset_peak(dev)
    s, calls, _ = _time_generate(gen, n, res, dev)
    check = f"img2img @{res}px, strength 0.15, 20 Euler steps"
    suite.add("sd", check, "fp16" if dev.type == "cuda" else "fp32", "images/s", 1 / s, "img/s")
    suite.add("sd", check, "denoising", "UNet calls per batch", calls, "", "CFG batches cond + uncond in one call")
    suite.add("sd", check, "fp16" if dev.type == "cuda" else "fp32", "peak memory", _peak_mib(dev), "MiB")


# ------------------------------------------------------------------------------------------------ feature extractors

def _random_dinov2_weights(path: Path, arch: str) -> Path:
    import timm
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = timm.create_model(arch, pretrained=False, num_classes=0)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def _extract_timed(extractor: Any, images: np.ndarray, device: Any, batch: int) -> tuple[np.ndarray, float]:
    extractor.extract(images[:batch], batch_size=batch)  # warm-up: build, move to device, kernels
    _sync(device)
    t0 = time.perf_counter()
    feats = extractor.extract(images, batch_size=batch)
    _sync(device)
    return feats, len(images) / (time.perf_counter() - t0)


def _cache_path(extractor: Any, images: np.ndarray, root: Path) -> str:
    from ooc_bench.metrics import FeatureCache

    return str(FeatureCache(root).path(extractor, images, key="same-images"))


def run_features(suite: Suite) -> None:
    import torch

    from ooc_bench.metrics import create_extractor
    from ooc_bench.metrics.extractors import random_inception_weights
    from ooc_bench.metrics.frechet import fid_from_features

    dev, quick = suite.device, suite.quick
    n, size, batch = (8, 48, 4) if quick else (512, 64, 128)
    images = _smooth_images(n, size, seed=11)
    inc_w = random_inception_weights(suite.work / "inception-random.pth", seed=0)
    arch = "vit_small_patch14_dinov2" if quick else "vit_large_patch14_dinov2"
    dino_w = _random_dinov2_weights(suite.work / f"{arch}-random.safetensors", arch)
    specs = [("inception", {"weights": str(inc_w)}, "random weights"),
             ("dinov2", {"weights": str(dino_w), "model": arch}, f"{arch}, random weights")]
    for name, kw, what in specs:
        on_dev = create_extractor(name, device=str(dev), **kw)
        feats_dev, rate = _extract_timed(on_dev, images, dev, batch)
        suite.add("features", f"{name} ({what}), {n} images @{size}px", str(dev), "images/s", rate, "img/s")
        if dev.type == "cpu":
            continue
        on_cpu = create_extractor(name, device="cpu", **kw)
        m = min(n, 64)  # CPU extraction is slow at these sizes: compare a subset
        feats_cpu = on_cpu.extract(images[:m], batch_size=batch)
        fd = fid_from_features(feats_cpu, feats_dev[:m])
        rel = float(np.max(np.abs(feats_cpu - feats_dev[:m])) / (np.max(np.abs(feats_cpu)) + 1e-12))
        same_key = _cache_path(on_cpu, images, suite.work) == _cache_path(on_dev, images, suite.work)
        check = f"{name}: the same {m} images on CPU and on {dev}"
        suite.add("features", check, "features", "max relative |difference|", rel, "")
        suite.add("features", check, "Fréchet distance CPU vs GPU", "fd", fd, "", "0 would mean identical statistics")
        suite.add("features", check, "feature cache", "same cache entry", str(same_key), "",
                  "True: CPU and GPU features share one cache entry" if same_key else "kept apart by the cache key")
        del on_cpu
    del torch


RUNNERS: dict[str, Callable[[Suite], None]] = {"classifiers": run_classifiers, "gan": run_gan, "sd": run_sd,
                                               "features": run_features}


# ------------------------------------------------------------------------------------------------ report

def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3g}" if (abs(v) < 0.01 and v != 0) or abs(v) >= 1e5 else f"{v:,.2f}".rstrip("0").rstrip(".")
    return str(v)


def markdown(env: dict[str, Any], suite: Suite) -> str:
    """The whole run as Markdown: environment, section outcomes with their anchors, one table of every figure."""
    lines = ["# ooc-bench GPU suite", "",
             f"Device: **{env.get('gpu', env['device'])}**; driver {env.get('driver', '–')}; torch {env['torch']}, "
             f"CUDA {env['cuda']}, cuDNN {env['cudnn']}; Python {env['python']}; ooc-bench {env['ooc_bench_commit'][:10]}; "
             f"{'quick (tiny sizes)' if suite.quick else 'full sizes'}.", "",
             "| section | status | seconds | anchor |", "|---|---|---:|---|"]
    for name, s in suite.sections.items():
        lines.append(f"| {name} | {s['status']}{': ' + s['error'] if s.get('error') else ''} | {s['seconds']:.1f} | "
                     f"{ANCHORS[name]} |")
    lines += ["", "| section | check | variant | metric | value | unit | note |", "|---|---|---|---|---:|---|---|"]
    for f in suite.figures:
        lines.append(f"| {f.section} | {f.check} | {f.variant} | {f.metric} | {_fmt(f.value)} | {f.unit} | {f.note} |")
    return "\n".join(lines) + "\n"


def _quiet_libraries() -> None:
    """No per-file loading bars from diffusers / transformers in the suite's log."""
    for mod in ("diffusers.utils.logging", "transformers.utils.logging"):
        if importlib.util.find_spec(mod.split(".")[0]) is not None:
            try:
                lib = importlib.import_module(mod)
            except Exception:  # noqa: BLE001 - a package that cannot be imported is named by its section (_missing)
                lib = None
            if lib is not None:
                lib.disable_progress_bar()
                lib.set_verbosity_error()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder for gpu_suite.json and gpu_suite.md")
    ap.add_argument("--device", default=None, choices=("cuda", "cpu"), help="default: cuda when present, else cpu")
    ap.add_argument("--quick", action="store_true", help="tiny sizes through the same code paths (seconds on a CPU)")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections ({', '.join(SECTIONS)})")
    args = ap.parse_args(argv)

    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = sorted(set(only) - set(SECTIONS))
    if bad:
        print(f"gpu_suite: --only {','.join(bad)}: unknown section(s); valid: {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        print(f"gpu_suite: --out {out}: not writable ({exc.strerror}); pass a folder you can write", file=sys.stderr)
        return 2
    import torch

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    _quiet_libraries()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_suite: --device cuda, but torch sees no CUDA GPU (torch " + torch.__version__ + "); "
              "pass --device cpu or run on a GPU machine", file=sys.stderr)
        return 2
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    env = environment(device)
    with tempfile.TemporaryDirectory(prefix="ooc-gpu-suite-") as work:
        suite = Suite(device=device, quick=args.quick, work=Path(work))
        for name in only:
            t0 = time.perf_counter()
            missing = _missing(name)
            if missing:
                suite.sections[name] = {"status": "missing", "error": _wheel_hint(missing), "seconds": 0.0}
                print(f"[{name}] cannot run: {_wheel_hint(missing)}", flush=True)
                continue
            print(f"[{name}] running on {device} ({'quick' if args.quick else 'full sizes'}) ...", flush=True)
            try:
                RUNNERS[name](suite)
                status, error = "ok", ""
            except Exception as exc:  # noqa: BLE001 - a failed section is recorded; the others still run
                status, error = "failed", f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                (out / f"{name}.traceback.txt").write_text(traceback.format_exc())
            suite.sections[name] = {"status": status, "error": error, "seconds": time.perf_counter() - t0}
            print(f"[{name}] {status} in {suite.sections[name]['seconds']:.1f} s {error}", flush=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()
    report = {"environment": env, "quick": args.quick, "anchors": ANCHORS, "sections": suite.sections,
              "figures": [asdict(f) for f in suite.figures]}
    from ooc_bench.atomic import write_text

    write_text(out / "gpu_suite.json", json.dumps(report, indent=2, default=str) + "\n")
    write_text(out / "gpu_suite.md", markdown(env, suite))
    print(markdown(env, suite))
    return 0 if all(s["status"] == "ok" for s in suite.sections.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
