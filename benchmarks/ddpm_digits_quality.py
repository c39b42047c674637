"""Quality check: `ddpm` on scikit-learn digits at 32 px, untrained vs trained, by FID in a digit-classifier feature space.

Usage: nice python benchmarks/ddpm_digits_quality.py [--steps 800] [--per-class 20] [--threads 1]

A small CNN is trained on the real digits (32 px); its penultimate 64-d features define the space in which
the Fréchet distance (FID formula, ooc_bench.metrics.frechet) between real and generated images is computed. The same
ddpm config is sampled untrained (0 steps: random weights) and after ``--steps`` steps; a lower distance
after training shows it learns the data. Also reports the classifier's accuracy on the generated images
(does class conditioning work?).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ooc_bench.metrics.frechet import fid_from_features as frechet  # the project's Fréchet distance


def digits32() -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    ims = [np.asarray(Image.fromarray((im / 16 * 255).astype(np.uint8)).resize((32, 32), Image.BICUBIC)) for im in d.images]
    return np.stack(ims), d.target.astype(np.int64)


def train_classifier(x: np.ndarray, y: np.ndarray, seed: int = 0):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(32 * 8 * 8, 64), nn.ReLU(), nn.Linear(64, 10))
    xt = torch.from_numpy(x).float()[:, None] / 255
    yt = torch.from_numpy(y)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(8):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            idx = perm[i:i + 64]
            loss = nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def features(net, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import torch

    with torch.no_grad():
        xt = torch.from_numpy(x).float()[:, None] / 255
        f = net[:-1](xt)
        return f.numpy(), net[-1](f).argmax(1).numpy()


def main() -> None:
    import torch

    from ooc_bench.generators import TrainingSet, create_generator

    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--per-class", type=int, default=20)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x, y = digits32()
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(x))
    tr, ho = perm[:1400], perm[1400:]
    net = train_classifier(x[tr], y[tr])
    f_real, pred = features(net, x[ho])
    print(f"feature classifier accuracy on held-out real digits: {(pred == y[ho]).mean():.3f}")
    ts = TrainingSet.from_arrays(x[tr], y[tr], [str(i) for i in range(10)])
    for steps in (0, args.steps):
        gen = create_generator("ddpm", resolution=32, preset=args.preset, steps=steps, batch_size=args.batch,
                               flip="none", checkpoint_every=0, sample_every=0, sample_steps=20, seed=0)
        t0 = time.perf_counter()
        gen.fit(ts)
        t_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        ims, labels = [], []
        for c in range(10):
            seeds = [1000 * c + i for i in range(args.per_class)]
            ims += gen.generate(c, list(range(args.per_class)), seeds, 32)
            labels += [c] * args.per_class
        t_sample = time.perf_counter() - t0
        gray = np.stack(ims)[..., 0]
        f_fake, pred = features(net, gray)
        acc = (pred == np.array(labels)).mean()
        print(f"ddpm {args.preset} steps={steps}: FID(digit-CNN features)={frechet(f_real, f_fake):.1f}, "
              f"classifier accuracy on samples={acc:.3f}, fit {t_fit:.0f} s, sampling {len(ims)} images {t_sample:.0f} s",
              flush=True)


if __name__ == "__main__":
    main()
