"""Time the cross-split perceptual near-duplicate check (ooc_bench.data.neardup) on a generated 3,072-image set.

Usage: python benchmarks/neardup_speed.py [--n 3072] [--size 64] [--repeats 5] [--work DIR]
Prints the median wall and CPU (user+sys) seconds of hashing + comparing all train x (val+test) pairs,
excluding decoding (which the run's image cache does once for every stage anyway), and the number of pairs found.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3072)
    ap.add_argument("--size", type=int, default=64, help="working size the images are decoded at")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--work", type=Path, default=None)
    a = ap.parse_args()

    from ooc_bench.data import ImageCache, load_dataset, make_demo, make_split, split_arrays
    from ooc_bench.data.neardup import near_duplicates

    work = a.work or Path(tempfile.mkdtemp(prefix="neardup-bench."))
    root = work / f"demo{a.n}"
    if not (root / ".complete").exists():
        make_demo(root, seed=0, n_images=a.n, size=96)
        (root / ".complete").write_text("ok\n")
    ds = make_split(load_dataset(root), val=0.15, test=0.2, seed=0, keep_official=False)
    cache = ImageCache(work / "cache")
    arrays = {s: split_arrays(ds, s, a.size, cache)[0] for s in ("train", "val", "test")}
    paths = {s: [r.path for r in ds.split(s)] for s in arrays}
    walls, cpus, found = [], [], 0
    for _ in range(a.repeats):
        w0, c0 = time.perf_counter(), _cpu()
        pairs = near_duplicates(arrays["train"], paths["train"],
                                {s: (arrays[s], paths[s]) for s in ("val", "test")})
        walls.append(time.perf_counter() - w0)
        cpus.append(_cpu() - c0)
        found = len(pairs)
    n_pairs = len(arrays["train"]) * (len(arrays["val"]) + len(arrays["test"]))
    print(f"{len(ds.records)} images ({len(arrays['train'])} train x {n_pairs // len(arrays['train'])} held out = "
          f"{n_pairs} pairs) at {a.size} px: median {statistics.median(walls):.3f} s wall, "
          f"{statistics.median(cpus):.3f} s CPU over {a.repeats} runs; {found} near-duplicate pair(s) found")


if __name__ == "__main__":
    main()
