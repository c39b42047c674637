"""Time summary.csv's statistics: summary_rows with the hierarchical bootstrap (2000 resamples) vs without, per matrix size.

Writes synthetic per-image prediction files for (cells + baseline) × seeds into a temporary folder, then times
summary_rows (median of --repeats runs, CPU time of this process). Sizes: the demo (8 cells, 3 seeds), the thesis
(8 cells, 5 seeds) and ooc_gan_vs_diffusion (80 cells, 5 seeds), with --n-test test images.

Usage: python benchmarks/bench_summary_stats.py [--n-test 240] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from ooc_bench.matrix.results import _read_predictions, summary_rows, write_csv
from ooc_bench.matrix.stats import StatsConfig

METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "precision_macro", "recall_macro", "roc_auc")


def make_rows(root: Path, n_cells: int, n_seeds: int, n_test: int, seed: int = 0) -> list[dict]:
    """Downstream rows (test + val, six metrics) and one prediction CSV per cell and seed."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n_test)
    ids = [f"test/img{i:05d}.png" for i in range(n_test)]
    rows = []
    cells = [("real-only", "none", 0.0)] + [(f"g{i // 4}", "add", 0.25 * (1 + i % 4)) for i in range(n_cells)]
    for gen, protocol, ratio in cells:
        for s in range(n_seeds):
            pred = np.where(rng.random(n_test) < 0.2, 1 - labels, labels)
            rel = f"predictions/{gen}-{ratio}-{s}.csv"
            write_csv(root / rel, ["image_id", "label", "predicted"],
                      [{"image_id": i, "label": int(y), "predicted": int(p)} for i, y, p in zip(ids, labels, pred)])
            for split in ("test", "val"):
                for m in METRICS:
                    rows.append({"model": "m", "generator": gen, "protocol": protocol, "ratio": ratio, "seed": s,
                                 "split": split, "metric": m, "value": float(rng.random()), "pretrained": False,
                                 "predictions": rel if split == "test" else None})
    return rows


def cpu_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-test", type=int, default=240)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print("| matrix | cells × seeds | bootstrap off (s CPU) | bootstrap 2000 (s CPU) | of which reading predictions, first call (s CPU) |")
    print("|---|---|---|---|---|")
    for name, n_cells, n_seeds in (("demo", 8, 3), ("thesis", 8, 5), ("gan_vs_diffusion", 80, 5)):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            rows = make_rows(root, n_cells, n_seeds, args.n_test)
            _read_predictions.cache_clear()
            t = time.process_time()
            summary_rows(rows, StatsConfig(), root)
            first = time.process_time() - t
            off = cpu_seconds(lambda: summary_rows(rows, StatsConfig(bootstrap=0), root), args.repeats)
            on = cpu_seconds(lambda: summary_rows(rows, StatsConfig(), root), args.repeats)
            print(f"| {name} | {n_cells + 1} × {n_seeds} | {off:.3f} | {on:.3f} | {max(first - on, 0):.3f} |")
    print(f"\nmedian of {args.repeats} runs, {args.n_test} test images; CPU time of one process (shared machine)")


if __name__ == "__main__":
    main()
