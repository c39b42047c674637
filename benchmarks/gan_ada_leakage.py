"""Benchmark: does ADA's geometric augmentation leak? Spectral distortion and detectability of rotated / shifted images.

ADA only works if augmented images follow the same distribution as the data whenever the data is invariant
to the transform; otherwise the discriminator can tell augmented images apart and the generator learns the
artefacts ("leaking"). Test material is invariant by construction: isotropic band-limited Gaussian random
fields (flat power spectrum up to ``--cutoff`` of Nyquist: 0.5 = smooth content, 0.9 = detail up to the pixel; a circular pass band, so the distribution is invariant to
rotation and translation). Each field is augmented with the rotation-and-fractional-translation subset of the
pipeline (``rotate,xfrac``; scaling changes the spectrum legitimately and is left out) at p = 1, with and
without anti-aliasing, and the central crop (away from padding effects) is compared with an unaugmented crop:

* ``band_ratio_*``: radially averaged power of augmented / original in frequency bands (1.0 = no distortion);
* ``detect_acc``: 5-fold cross-validated accuracy of a logistic regression on the 16-band log power spectrum
  telling augmented from unaugmented crops (0.5 = cannot tell = no leak), mean of ``--repeats`` seeds.

    nice -n 15 .venv/bin/python benchmarks/gan_ada_leakage.py [--size 32] [--n 400] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from ooc_bench.generators.stylegan.augment import AugmentPipe


def random_fields(n: int, size: int, cutoff: float, seed: int) -> torch.Tensor:
    """(n, 3, size, size) isotropic Gaussian fields, unit variance, power flat for |f| < cutoff * Nyquist."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, 3, size, size, generator=g, dtype=torch.float64)
    f = torch.fft.fftfreq(size, dtype=torch.float64) * 2  # units of Nyquist
    mask = ((f[:, None] ** 2 + f[None, :] ** 2).sqrt() < cutoff).to(torch.float64)
    x = torch.fft.ifft2(torch.fft.fft2(noise) * mask).real
    return (x / x.std(dim=(1, 2, 3), keepdim=True)).float()


def radial_power(x: torch.Tensor, bands: int) -> np.ndarray:
    """(n, bands) radially averaged power spectrum (Hann-windowed, grey channel), bands up to Nyquist."""
    grey = x.double().mean(1)
    s = grey.shape[-1]
    win = torch.hann_window(s, periodic=False, dtype=torch.float64)
    p = torch.fft.fft2((grey - grey.mean(dim=(1, 2), keepdim=True)) * win[:, None] * win[None, :]).abs().square()
    f = torch.fft.fftfreq(s, dtype=torch.float64) * 2
    r = (f[:, None] ** 2 + f[None, :] ** 2).sqrt()
    idx = torch.clamp((r * bands).long(), max=bands)  # band `bands` holds the corners beyond Nyquist (dropped)
    out = torch.zeros(len(x), bands + 1, dtype=torch.float64)
    out.index_add_(1, idx.flatten(), p.flatten(1))
    counts = torch.bincount(idx.flatten(), minlength=bands + 1).double()
    return (out / counts)[:, :bands].numpy()


def measure(n: int, size: int, antialias: bool, seed: int, cutoff: float, bands: int = 16) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    big = random_fields(2 * n, 2 * size, cutoff, seed)
    q = size // 2
    crop = lambda t: t[:, :, q:q + size, q:q + size]  # noqa: E731  central crop, far from the padded border
    pipe = AugmentPipe("rotate,xfrac", p=1.0, antialias=antialias)
    torch.manual_seed(seed)
    t0 = time.process_time()
    with torch.no_grad():
        aug = crop(pipe(big[:n]))
    cpu = time.process_time() - t0
    ref = crop(big[n:])
    pa, pr = radial_power(aug, bands), radial_power(ref, bands)
    ratio = pa.mean(0) / pr.mean(0)
    keep = np.linspace(0, 1, bands + 1)[1:] <= cutoff  # only bands where the fields have power
    feats = np.log(np.concatenate([pa, pr])[:, keep] + 1e-12)
    y = np.r_[np.ones(n), np.zeros(n)]
    acc = cross_val_score(LogisticRegression(max_iter=2000), (feats - feats.mean(0)) / feats.std(0), y, cv=5).mean()
    edges = np.linspace(0, 1, bands + 1)
    lo = ratio[edges[:-1] < 0.5].mean()
    hi = ratio[(edges[:-1] >= 0.5) & (edges[1:] <= cutoff)].mean() if cutoff > 0.5 else float("nan")
    return {"band_ratio_low(<0.5 Nyq)": float(lo), "band_ratio_high(0.5-cutoff)": float(hi),
            "band_ratio_max_dev": float(np.abs(np.log(ratio[edges[1:] <= cutoff])).max()), "detect_acc": float(acc),
            "aug_cpu_ms_per_image": 1000 * cpu / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cutoff", type=float, nargs="+", default=[0.5, 0.9], help="field band limits (x Nyquist)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    result = {}
    for cutoff in args.cutoff:
        for antialias in (False, True):
            runs = [measure(args.n, args.size, antialias, seed, cutoff) for seed in range(args.repeats)]
            name = f"cutoff {cutoff}: " + ("antialias" if antialias else "plain bilinear")
            result[name] = {k: round(statistics.median(r[k] for r in runs), 4) for k in runs[0]}
    print(json.dumps({"size": args.size, "n": args.n, "repeats": args.repeats, **result}, indent=2))


if __name__ == "__main__":
    main()
