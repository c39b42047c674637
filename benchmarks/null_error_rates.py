"""Measure the false-positive rates of the downstream statistics when no generator helps (simulated null runs).

Prints, for the thesis spec (8 comparisons per model) and ooc_gan_vs_diffusion (80), with 5 seeds: the chance that a
given cell is coloured, that any cell is coloured (family-wise error), and that the verdict claims a significant
gain — raw, Holm and Benjamini–Hochberg, for the exact sign-flip test (the default) and the paired t-test, beside
the rule this project used before (raw paired t, p = 0 for identical differences, best cell by test mean).
Simulated runs: test accuracy Binomial(120, p_seed)/120, p_seed ~ N(0.8, 0.02), validation on 60 images,
one shared baseline per run (see ooc_bench/matrix/nullsim.py).

Usage: python benchmarks/null_error_rates.py [--reps 20000] [--seeds 5] [--extra-seeds 10]
"""

from __future__ import annotations

import argparse
import resource
import time

from ooc_bench.matrix.nullsim import NullRates, simulate_null


def _fmt(rate: float, reps: int) -> str:
    return f"{rate:.3f} ± {NullRates.mc_se(rate, reps):.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20000, help="simulated runs per row (Monte-Carlo error ~ sqrt(p(1-p)/reps))")
    ap.add_argument("--seeds", type=int, default=5, help="classifier seeds per cell")
    ap.add_argument("--extra-seeds", type=int, default=10, help="also show the sign-flip test at this many seeds (0: skip)")
    args = ap.parse_args()
    t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    print(f"null simulation, {args.reps} runs per row; rates ± one Monte-Carlo standard error; alpha = 0.05\n")
    print("| spec (comparisons) | seeds | test | adjustment | P(cell coloured) | P(any cell coloured) = FWER | P(verdict: significant gain) |")
    print("|---|---|---|---|---|---|---|")
    configs = [(8, "thesis"), (80, "gan_vs_diffusion")]
    for n_cells, name in configs:
        runs = [(args.seeds, "sign-flip"), (args.seeds, "t")] + ([(args.extra_seeds, "sign-flip")] if args.extra_seeds else [])
        for n_seeds, test in runs:
            reps = args.reps if n_seeds <= 8 or n_cells <= 8 else max(1000, args.reps // 4)
            r = simulate_null(n_cells, n_seeds, reps, test=test, seed=n_cells * 100 + n_seeds)
            label = "sign-flip exact" if test == "sign-flip" else "paired t"
            for method in ("none", "holm", "bh"):
                print(f"| {name} ({n_cells}) | {n_seeds} | {label} | {method} | {_fmt(r.per_cell[method], reps * n_cells)} | "
                      f"{_fmt(r.any_cell[method], reps)} | {_fmt(r.verdict[method], reps)} |")
            if test == "t" and n_seeds == args.seeds:
                print(f"| {name} ({n_cells}) | {n_seeds} | before: raw paired t, p = 0 for identical Δ, best by test mean | none | – | "
                      f"{_fmt(r.legacy_any_cell, reps)} | {_fmt(r.legacy_verdict, reps)} |")
    c1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    print(f"\n{time.perf_counter() - t0:.1f} s wall, {cpu:.1f} s CPU (user+sys)")


if __name__ == "__main__":
    main()
