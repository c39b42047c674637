"""Benchmark: score k synthetic sets against one reference with ooc-bench (cached features) vs torch-fidelity per set.

torch-fidelity's ``calculate_metrics`` is called once per synthetic set (2k feature passes, the extractor built
k times); ooc-bench extracts the reference once and each set once (k+1 passes, cold) or nothing at all (warm,
features cached on disk). Same PNG folders, same (randomly initialised, non-degenerate) Inception weights,
ooc-bench with ``resize_mode="torch-fidelity"`` so both see identical network inputs; FID and KID are compared.

    nice -n 10 .venv/bin/python benchmarks/bench_metrics.py [--n 20] [--sets 5] [--size 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _crops(img: np.ndarray, n: int, rng: np.random.Generator, size: int) -> np.ndarray:
    from PIL import Image

    side = 3 * size
    ys = rng.integers(0, img.shape[0] - side, n)
    xs = rng.integers(0, img.shape[1] - side, n)
    return np.stack([np.asarray(Image.fromarray(img[y:y + side, x:x + side]).resize((size, size), Image.BICUBIC))
                     for y, x in zip(ys, xs)])


def _write(folder: Path, images: np.ndarray) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / f"{i:04d}.png")


def _read(folder: Path) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20, help="images per set (reference and each synthetic set)")
    ap.add_argument("--sets", type=int, default=5, help="number of synthetic sets k")
    ap.add_argument("--size", type=int, default=32, help="PNG size (Inception still runs at 299)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch
    import torch_fidelity
    from skimage import data

    from ooc_bench.metrics import FeatureCache, create_extractor, random_inception_weights, score
    from ooc_bench.metrics import extractors as _ext

    torch.set_num_threads(args.threads)
    import torch_fidelity.metrics as tfm

    import importlib

    _score = importlib.import_module("ooc_bench.metrics.score")  # the module: ``ooc_bench.metrics.score`` is also the function

    clock = {"tf_extract": 0.0, "tf_fid_math": 0.0, "ours_extract": 0.0, "ours_fid_math": 0.0}

    def timed(fn, slot):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                clock[slot] += time.perf_counter() - t
        return wrapper

    tfm.extract_featuresdict_from_input_id_cached = timed(tfm.extract_featuresdict_from_input_id_cached, "tf_extract")
    tfm.fid_statistics_to_metric = timed(tfm.fid_statistics_to_metric, "tf_fid_math")
    _score.fid_from_features = timed(_score.fid_from_features, "ours_fid_math")  # cold and warm runs together
    work = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    weights = random_inception_weights(work / "inception-random.pth", seed=0)
    rng = np.random.default_rng(0)
    tissue = data.immunohistochemistry()
    _write(work / "real", _crops(tissue, args.n, rng, args.size))
    for s in range(args.sets):  # sets of increasing distortion: contrast and brightness shifts
        imgs = _crops(tissue, args.n, rng, args.size).astype(np.float64)
        _write(work / f"fake{s}", np.clip(imgs * (1 - 0.08 * s) + 12 * s, 0, 255).astype(np.uint8))
    sets = [work / f"fake{s}" for s in range(args.sets)]
    n = args.n

    def baseline() -> list[tuple[float, float]]:
        out = []
        for d in sets:
            m = torch_fidelity.calculate_metrics(
                input1=str(d), input2=str(work / "real"), fid=True, kid=True, kid_subset_size=n, rng_seed=0,
                cuda=False, cache=False, verbose=False, save_cpu_ram=True, feature_extractor_weights_path=str(weights))
            out.append((m["frechet_inception_distance"], m["kernel_inception_distance_mean"]))
        return out

    def ours(cache: FeatureCache) -> tuple[list[tuple[float, float]], int]:
        _ext._SHA_MEMO.clear()  # every run hashes the weights file, as a new process would
        ext = create_extractor("inception", weights=str(weights), resize_mode="torch-fidelity")
        ext.extract = timed(ext.extract, "ours_extract")
        real = (_read(work / "real"), None)
        out = []
        for d in sets:
            rows = score(real, (_read(d), None), ["x"], ext, metrics=("fid", "kid"), per_class=False, cache=cache,
                         real_key="bench-real", seed=0)
            v = {r["metric"]: r["value"] for r in rows}
            out.append((v["fid"], v["kid_mean"]))
        return out, ext.passes

    t_base, t_cold, t_warm, split = [], [], [], []
    for rep in range(args.repeats):
        clock.update(dict.fromkeys(clock, 0.0))
        t0 = time.perf_counter()
        ref = baseline()
        t_base.append(time.perf_counter() - t0)
        cache = FeatureCache(work / f"cache{rep}")
        t0 = time.perf_counter()
        cold, passes_cold = ours(cache)
        t_cold.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        warm, passes_warm = ours(cache)
        t_warm.append(time.perf_counter() - t0)
        split.append(dict(clock))
        print(f"repeat {rep}: torch-fidelity {t_base[-1]:.1f}s, ooc-bench cold {t_cold[-1]:.1f}s "
              f"({passes_cold} passes), warm {t_warm[-1]:.2f}s ({passes_warm} passes)", flush=True)

    rel_fid = max(abs(a[0] - b[0]) / abs(b[0]) for a, b in zip(cold + warm, ref + ref))
    rel_kid = max(abs(a[1] - b[1]) / abs(b[1]) for a, b in zip(cold + warm, ref + ref))
    mb, mc, mw = statistics.median(t_base), statistics.median(t_cold), statistics.median(t_warm)
    print(f"\n{args.sets} synthetic sets x {n} images vs a reference of {n}; {args.size}px PNGs; "
          f"{args.repeats} repeats; torch {torch.__version__}, torch-fidelity {torch_fidelity.__version__}, "
          f"{args.threads} threads, {os.cpu_count()} CPUs")
    print(f"feature passes: torch-fidelity {2 * args.sets}, ooc-bench cold {args.sets + 1}, warm 0")
    print(f"median time: torch-fidelity {mb:.1f}s | ooc-bench cold {mc:.1f}s ({mb / mc:.2f}x faster) | "
          f"warm {mw:.2f}s ({mb / mw:.1f}x faster)")
    med = {k: statistics.median(c[k] for c in split) for k in clock}
    print(f"median feature-extraction time: torch-fidelity {med['tf_extract']:.1f}s ({2 * args.sets} passes) | "
          f"ooc-bench cold {med['ours_extract']:.1f}s ({args.sets + 1} passes) "
          f"({med['tf_extract'] / med['ours_extract']:.2f}x); torch-fidelity FID linear algebra "
          f"(2048x2048 eigvals per set) {med['tf_fid_math']:.1f}s | ooc-bench FID linear algebra (n x n SVD, "
          f"cold + warm) {med['ours_fid_math']:.4f}s")
    print(f"max relative difference vs torch-fidelity: FID {rel_fid:.2e}, KID {rel_kid:.2e}")
    for s, (a, b) in enumerate(zip(cold, ref)):
        print(f"  set {s}: FID {a[0]:.6g} (tf {b[0]:.6g})  KID {a[1]:.6g} (tf {b[1]:.6g})")


if __name__ == "__main__":
    main()
