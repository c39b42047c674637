"""Benchmark: SD sampling images/s (ooc-bench defaults vs diffusers defaults) and `ddpm` training images/s at 32/64 px.

Usage:
    python benchmarks/bench_diffusion.py                       # tiny SD pipeline on CPU, ddpm on CPU
    python benchmarks/bench_diffusion.py --device cuda --full-size-unet   # SD-1.5-sized random weights on a GPU
    python benchmarks/bench_diffusion.py --flops               # only: ddpm UNet MFLOP per image (docs table)

ooc-bench's sampling defaults: DPM-Solver++ 2M with 25 steps, fp16 on CUDA (fp32 on CPU). diffusers' defaults
for SD 1.5: PNDM with 50 steps, fp32. Both run on the same pipeline object in the same process; medians of
``--repeats`` timed runs after one warm-up. Absolute CPU figures depend on machine load; the ratio does not.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_sampling(device: str, full: bool, batch: int, repeats: int) -> dict[str, float]:
    import torch

    from ooc_bench.generators.diffusion.pipeline import load_sd_pipeline, set_sampler
    from ooc_bench.testing.tiny_sd import make_tiny_sd_pipeline

    res = 512 if full else 32
    with tempfile.TemporaryDirectory() as tmp:
        path = make_tiny_sd_pipeline(Path(tmp) / "pipe", full_size_unet=full)
        pipe = load_sd_pipeline(str(path), device=device)
        prompts = ["good cells, HepG2, age: 2-3 days"] * batch

        def run(steps: int) -> None:
            gens = [torch.Generator("cpu").manual_seed(i) for i in range(batch)]
            pipe(prompt=prompts, num_inference_steps=steps, guidance_scale=7.5, height=res, width=res,
                 generator=gens, output_type="np")
            if device == "cuda":
                torch.cuda.synchronize()

        set_sampler(pipe, "pndm")
        pipe.to(device, torch.float32)
        t_base = _median_time(lambda: run(50), repeats)
        set_sampler(pipe, "dpm++")
        if device == "cuda":
            pipe.to(device, torch.float16)
        t_ours = _median_time(lambda: run(25), repeats)
    return {"resolution": res, "batch": batch, "diffusers_default_img_s": batch / t_base,
            "ooc_default_img_s": batch / t_ours, "speedup": t_base / t_ours}


def bench_ddpm(device: str, resolution: int, preset: str, batch: int, steps: int, repeats: int) -> float:
    """Training images/s of the ddpm generator (median over repeats of ``steps`` optimisation steps)."""
    import numpy as np

    from ooc_bench.generators import TrainingSet, create_generator

    rng = np.random.default_rng(0)
    ts = TrainingSet.from_arrays(rng.integers(0, 255, (64, resolution, resolution, 3), dtype=np.uint8),
                                 np.arange(64) % 2, ["bad", "good"])
    rates = []
    for r in range(repeats + 1):
        gen = create_generator("ddpm", resolution=resolution, preset=preset, steps=steps, batch_size=batch,
                               checkpoint_every=0, sample_every=0, device=device, seed=r)
        gen.fit(ts)
        if r:  # first run is the warm-up
            rates.append(gen.train_stats["images_per_s"])
    return statistics.median(rates)


def ddpm_mflop(preset: str, resolution: int) -> float:
    """FLOPs (torch's FlopCounterMode: 2 per multiply-add) of one ddpm UNet forward pass on one image, in millions."""
    import torch
    from diffusers import UNet2DModel
    from torch.utils.flop_counter import FlopCounterMode

    from ooc_bench.generators.diffusion.ddpm import unet_config

    model = UNet2DModel(**unet_config(preset, resolution, 2)).eval()
    x, t, y = torch.zeros(1, 3, resolution, resolution), torch.tensor([10]), torch.tensor([0])
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, t, class_labels=y)
    return counter.get_total_flops() / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--full-size-unet", action="store_true", help="SD-1.5-sized UNet/VAE/text encoder at 512 px (GPU)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--ddpm-steps", type=int, default=10)
    ap.add_argument("--ddpm-batch", type=int, default=16)
    ap.add_argument("--ddpm-preset", default="tiny")
    ap.add_argument("--skip-sd", action="store_true")
    ap.add_argument("--skip-ddpm", action="store_true")
    ap.add_argument("--flops", action="store_true", help="only print the ddpm presets' MFLOP per image and exit")
    args = ap.parse_args()
    if args.flops:
        from ooc_bench.generators.diffusion.ddpm import PRESETS

        for preset in PRESETS:
            print(f"ddpm {preset}: " + ", ".join(f"{r} px {ddpm_mflop(preset, r):,.0f} MFLOP/image" for r in (32, 64)))
        return
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, repeats {args.repeats} (medians)")
    if not args.skip_sd:
        r = bench_sampling(args.device, args.full_size_unet, args.batch, args.repeats)
        kind = "SD-1.5-sized" if args.full_size_unet else "tiny SD-1.5-shaped"
        print(f"sampling, {kind} pipeline, {r['resolution']} px, batch {r['batch']}, CFG 7.5:")
        print(f"  diffusers default (PNDM 50 steps, fp32): {r['diffusers_default_img_s']:.2f} images/s")
        print(f"  ooc-bench default (DPM-Solver++ 25 steps{', fp16' if args.device == 'cuda' else ''}): "
              f"{r['ooc_default_img_s']:.2f} images/s  -> {r['speedup']:.2f}x")
    if not args.skip_ddpm:
        for res in (32, 64):
            rate = bench_ddpm(args.device, res, args.ddpm_preset, args.ddpm_batch, args.ddpm_steps, args.repeats)
            print(f"ddpm training, preset {args.ddpm_preset}, {res} px, batch {args.ddpm_batch}: {rate:.1f} images/s")


if __name__ == "__main__":
    main()
