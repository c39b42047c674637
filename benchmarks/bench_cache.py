"""Benchmark the decoded-image cache: one pass over full-size (2048x1536) demo PNGs, from files vs from the cache.

Usage: python benchmarks/bench_cache.py [--n-images 24] [--size 128] [--repeats 5] [--data PATH]

Measured in the same run (medians of ``--repeats``):
  files       decode + resize every image from its PNG (thread pool, as an uncached epoch would)
  cold cache  first ImageCache.load into an empty cache (decode + write per-image .npy + pack)
  warm store  ImageCache(pack=False).load: stack the per-image .npy files (no decoding)
  warm pack   ImageCache.load: the memory-mapped pack, fully read (np.array copy)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ooc_bench.data import ImageCache, load_dataset, make_demo  # noqa: E402
from ooc_bench.data.decode import decode_resized  # noqa: E402
from ooc_bench.data.filehash import workers  # noqa: E402


def _median_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-images", type=int, default=24)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--data", type=Path, default=None, help="an existing dataset instead of the full-size demo")
    args = ap.parse_args()
    os.environ.setdefault("OOC_BENCH_NO_PROGRESS", "1")
    work = Path(tempfile.mkdtemp(prefix="bench_cache_"))
    try:
        if args.data is None:
            t0 = time.perf_counter()
            root = make_demo(work / "demo", seed=0, n_images=args.n_images, full_size=True)
            print(f"generated {args.n_images} full-size demo PNGs in {time.perf_counter() - t0:.1f} s")
        else:
            root = args.data
        ds = load_dataset(root)
        recs = ds.records
        mb = sum(os.path.getsize(r.path) for r in recs) / 2**20
        sizes = sorted({f"{r.metadata.get('width')}x{r.metadata.get('height')}" for r in recs})
        print(f"{len(recs)} images ({', '.join(sizes)}; {mb:.0f} MiB of PNG), working size {args.size}px, "
              f"{workers()} decode threads, {os.cpu_count()} CPUs")

        def from_files():
            with ThreadPoolExecutor(workers()) as pool:
                return np.stack(list(pool.map(lambda r: decode_resized(r.path, args.size), recs)))

        def cold():
            shutil.rmtree(work / "cache", ignore_errors=True)
            return np.array(ImageCache(work / "cache").load(recs, args.size))

        t_files, ref = _median_time(from_files, args.repeats)
        t_cold, a = _median_time(cold, args.repeats)
        t_store, b = _median_time(lambda: ImageCache(work / "cache", pack=False).load(recs, args.size), args.repeats)
        t_pack, c = _median_time(lambda: np.array(ImageCache(work / "cache").load(recs, args.size)), args.repeats)
        assert np.array_equal(ref, a) and np.array_equal(ref, b) and np.array_equal(ref, c)
        rows = [("files (decode + resize)", t_files), ("cold cache (first load)", t_cold),
                ("warm cache, per-image store", t_store), ("warm cache, memory-mapped pack", t_pack)]
        print(f"{'pass over the dataset':34s} {'median s':>9s} {'ms/image':>9s} {'speed-up vs files':>18s}")
        for name, t in rows:
            print(f"{name:34s} {t:9.3f} {1000 * t / len(recs):9.2f} {t_files / t:17.1f}x")
        print(json.dumps({"n_images": len(recs), "size": args.size, "repeats": args.repeats,
                          "files_s": round(t_files, 4), "cold_s": round(t_cold, 4), "store_s": round(t_store, 4),
                          "pack_s": round(t_pack, 4), "speedup_store": round(t_files / t_store, 1),
                          "speedup_pack": round(t_files / t_pack, 1)}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
