"""Benchmark: StyleGAN2-ADA (`gan`) training seconds per kimg on CPU, with optimisations on vs. off in the same run.

Measures single training iterations (G step + D step, batch 32, default CPU capacity "tiny") in five
variants and reports medians of ``--repeats`` runs after one warm-up:

* ``plain``      no R1 in this step, ADA p = 0, non-fused modulation (activation scaling + one conv)
* ``r1``         the same step with the R1 penalty (what every step costs without lazy regularisation)
* ``ada``        no R1, ADA at p = ``--p`` (all 12 transforms)
* ``fused``      no R1, p = 0, per-sample weights in one grouped conv (the textbook modulated conv)
* ``fused_r1``   grouped conv and R1 in the step

From these: default training (lazy R1 every 16 steps) = plain + (r1 - plain) / 16, vs. the
no-lazy baseline (R1 every step) and the naive baseline (grouped conv + R1 every step).
Also timed: the ADA pipeline alone on one batch, and sampling (``generate``) per image with
``gen_batch=1`` (the default, bitwise prefix-stable) vs. ``gen_batch=16``, counting the images whose
pixels differ between the two.
NVlabs' reference implementation cannot run here (non-commercial licence, PyTorch 1.7, custom CUDA
ops), so all ratios are against these in-run baselines.

    nice .venv/bin/python benchmarks/bench_gan.py [--res 32 64] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ooc_bench.generators.stylegan.generator import resolve_config
from ooc_bench.generators.stylegan.trainer import Trainer


def step_seconds(res: int, batch: int, fused: bool, r1: bool, p: float, repeats: int) -> tuple[float, float]:
    """Median (CPU seconds, wall-clock seconds) of one training iteration.

    CPU time of this process is reported first: on a shared machine it is far less affected by other
    processes than wall time (with one thread, CPU time ~ wall time on an idle machine).
    """
    torch.manual_seed(0)
    cfg = resolve_config(resolution=res, kimg=1.0, batch_size=batch, verbose=False, device="cpu",
                         fused_modconv=fused, fixed_p=p, checkpoint_kimg=0, grid_kimg=0)
    tr = Trainer(cfg, 2, torch.device("cpu"))
    tr.r1_interval = 1 if r1 else 0
    images = torch.randint(0, 256, (64, 3, res, res), dtype=torch.uint8)
    labels = torch.arange(64) % 2
    cpu, wall = [], []
    for i in range(repeats + 1):
        cfg["kimg"] = (tr.nimg + batch) / 1000
        c0, t0 = time.process_time(), time.perf_counter()
        tr.train(images, labels, None, verbose=False)
        if i > 0:  # first iteration is warm-up
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - t0)
    return statistics.median(cpu), statistics.median(wall)


def ada_seconds(res: int, batch: int, p: float, repeats: int) -> float:
    """Median CPU seconds of the ADA pipeline alone (all 12 transforms at probability ``p``) on one batch."""
    from ooc_bench.generators.stylegan.augment import AugmentPipe

    torch.manual_seed(0)
    pipe, x = AugmentPipe("bgc", p=p), torch.rand(batch, 3, res, res) * 2 - 1
    times = []
    for i in range(repeats + 1):
        c0 = time.process_time()
        pipe(x)
        if i > 0:
            times.append(time.process_time() - c0)
    return statistics.median(times)


def sampling(res: int, n: int = 64) -> dict[int, tuple[float, object]]:
    """gen_batch -> (CPU ms per image, uint8 images) for ``n`` images of one class (untrained network, tiny)."""
    import numpy as np

    from ooc_bench.generators import create_generator

    gen = create_generator("gan", resolution=res, kimg=1.0, verbose=False, device="cpu")
    gen.classes, gen.c_dim = ["a", "b"], 2
    gen.cond_table = [[0, "", 1], [1, "", 1]]
    torch.manual_seed(0)
    gen.G_ema = Trainer(gen.config, 2, torch.device("cpu")).G_ema
    seeds = list(range(1000, 1000 + n))
    out = {}
    for gb in (1, 16):
        gen.config["gen_batch"] = gb
        gen.generate(0, [0], [1], res)  # warm-up
        c0 = time.process_time()
        ims = np.stack(gen.generate(0, list(range(n)), seeds, res))
        out[gb] = ((time.process_time() - c0) / n * 1000, ims)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--res", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--p", type=float, default=0.5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    per_kimg = 1000 / args.batch
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}, capacity tiny, "
          f"medians of {args.repeats} iterations")
    for res in args.res:
        both = {
            "plain": step_seconds(res, args.batch, False, False, 0.0, args.repeats),
            "r1": step_seconds(res, args.batch, False, True, 0.0, args.repeats),
            "ada": step_seconds(res, args.batch, False, False, args.p, args.repeats),
            "fused": step_seconds(res, args.batch, True, False, 0.0, args.repeats),
            "fused_r1": step_seconds(res, args.batch, True, True, 0.0, args.repeats),
        }
        t = {k: v[0] for k, v in both.items()}  # CPU seconds
        lazy = t["plain"] + (t["r1"] - t["plain"]) / 16
        lazy_ada = lazy + (t["ada"] - t["plain"])
        print(f"\n== {res} px ==")
        for k, (c, w) in both.items():
            print(f"  step {k:9s} cpu {c:7.3f} s -> {c * per_kimg:7.1f} cpu-s/kimg   (wall {w * per_kimg:7.1f} s/kimg)")
        print(f"  default (lazy R1/16, p=0)        {lazy * per_kimg:8.1f} cpu-s/kimg")
        print(f"  default (lazy R1/16, p={args.p})      {lazy_ada * per_kimg:8.1f} cpu-s/kimg")
        print(f"  R1 step overhead                 x{t['r1'] / t['plain']:.2f}; lazy R1 speed-up vs R1 every step: "
              f"x{t['r1'] / lazy:.2f}")
        print(f"  ADA overhead at p={args.p}             x{t['ada'] / t['plain']:.3f} (p=0 skips every op)")
        print(f"  non-fused vs grouped modconv     x{t['fused'] / t['plain']:.2f} faster")
        print(f"  default vs naive (grouped + R1 every step): x{t['fused_r1'] / lazy:.2f} faster")
        print(f"  ADA pipeline alone, p={args.p}, batch {args.batch}: "
              f"{ada_seconds(res, args.batch, args.p, args.repeats) * 1000:.1f} cpu-ms")
        smp = sampling(res)
        (ms1, a), (ms16, b) = smp[1], smp[16]
        differ = int((a != b).any(axis=(1, 2, 3)).sum())
        print(f"  sampling: gen_batch=1 {ms1:.1f} cpu-ms/image, gen_batch=16 {ms16:.1f} (x{ms1 / ms16:.1f} faster); "
              f"{differ}/{len(a)} images differ between the two (max {int(abs(a.astype(int) - b).max())} grey level)")


if __name__ == "__main__":
    main()
