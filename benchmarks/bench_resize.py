"""Inception resize modes against the reference tools on non-299 px images: FID of ooc-bench vs torch-fidelity / clean-fid.

Two sets of 48 px fluorescence-like nuclei patches (the haematoxylin channel of skimage's IHC sample, unmixed with
``skimage.color.rgb2hed`` and shown bright on dark, as a nuclear stain looks) are written as PNG folders. With one
(random, non-degenerate) Inception weights file, the FID between them is computed by

* ``torch_fidelity.calculate_metrics`` on the folders (the reference for the default mode);
* ooc-bench in each resize mode: ``torch-fidelity`` (default), ``pil-bicubic`` (the old default) and ``clean``;
* clean-fid's own pipeline (``cleanfid.fid.get_folder_features``: its PNG loading, resize and batching) with the
  same network as its feature model, the FID then taken from those features (the reference for ``clean``).

Run: ``nice -n 15 .venv/bin/python benchmarks/bench_resize.py`` (a few minutes of CPU).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def nuclei_patches(n: int, size: int, seed: int) -> np.ndarray:
    """``n`` random size x size RGB patches of a fluorescence-like nuclear channel (grey, bright nuclei)."""
    from skimage import color, data

    hed = color.rgb2hed(data.immunohistochemistry())[..., 0]
    lo, hi = np.percentile(hed, [1, 99.5])
    grey = (np.clip((hed - lo) / (hi - lo), 0, 1) * 255).round().astype(np.uint8)
    rng = np.random.default_rng(seed)
    ys, xs = rng.integers(0, grey.shape[0] - size, n), rng.integers(0, grey.shape[1] - size, n)
    return np.stack([grey[y:y + size, x:x + size] for y, x in zip(ys, xs)])[..., None].repeat(3, axis=-1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=24, help="images per set")
    ap.add_argument("--size", type=int, default=48)
    args = ap.parse_args()

    import torch
    import torch_fidelity
    from cleanfid.fid import get_folder_features
    from PIL import Image

    from ooc_bench.metrics import create_extractor, fid_from_features, random_inception_weights
    from ooc_bench.metrics.extractors import inception_pool_features, load_inception

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    a = nuclei_patches(args.n, args.size, seed=0)
    b = np.clip(nuclei_patches(args.n, args.size, seed=1).astype(int) * 0.85 + 20, 0, 255).astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights = random_inception_weights(tmp / "inception-random.pth", seed=0)
        for name, arr in (("a", a), ("b", b)):
            (tmp / name).mkdir()
            for i, im in enumerate(arr):
                Image.fromarray(im).save(tmp / name / f"{i:03d}.png")
        ref = torch_fidelity.calculate_metrics(input1=str(tmp / "b"), input2=str(tmp / "a"), fid=True, cuda=False,
                                               cache=False, verbose=False, save_cpu_ram=True,
                                               feature_extractor_weights_path=str(weights))["frechet_inception_distance"]
        model = load_inception(weights)
        clean_feats = [get_folder_features(str(tmp / name), model=lambda x: inception_pool_features(model, x),
                                           num_workers=0, batch_size=args.n, device=torch.device("cpu"), mode="clean",
                                           description="", verbose=False) for name in ("a", "b")]
        clean_ref = fid_from_features(*(np.asarray(f, np.float64) for f in clean_feats))
        ours = {}
        for mode in ("torch-fidelity", "pil-bicubic", "clean"):
            ext = create_extractor("inception", weights=str(weights), resize_mode=mode)
            ours[mode] = fid_from_features(ext.extract(a), ext.extract(b))
    print(f"{args.n} vs {args.n} fluorescence-like nuclei patches at {args.size} px, random Inception weights (seed 0)")
    print(f"torch-fidelity calculate_metrics:        FID {ref:.2f}")
    print(f"clean-fid pipeline, same network:        FID {clean_ref:.2f}")
    for mode, v in ours.items():
        against, rname = (clean_ref, "clean-fid") if mode == "clean" else (ref, "torch-fidelity")
        print(f"ooc-bench resize_mode={mode:<15} FID {v:.2f}  ({v / against - 1:+.2e} relative to {rname})")
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(f"wall {time.perf_counter() - t0:.1f} s, CPU {ru.ru_utime + ru.ru_stime:.1f} s (shared machine)")


if __name__ == "__main__":
    main()
