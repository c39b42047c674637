"""Quality check: a short CPU training of `gan` on scikit-learn digits (32x32, 10 classes) vs. the untrained generator.

Distance in a domain feature space: an sklearn MLP classifier is trained on real digits (32x32 grey),
its hidden-layer activations are the features; FID is ``ooc_bench.metrics.frechet.fid_from_features``.
Also reported: accuracy of that classifier on generated images labelled with the class they were
asked for (does conditioning work?), and a real-vs-real FID floor (two halves of the real digits).

    nice .venv/bin/python benchmarks/gan_digits_quality.py [--kimg 6] [--per-class 100] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ooc_bench.generators import TrainingSet, create_generator
from ooc_bench.generators.stylegan.trainer import Trainer
from ooc_bench.metrics.frechet import fid_from_features as fid


def digits_training_set() -> TrainingSet:
    """sklearn digits (8x8, 0..16) as uint8 RGB, resized to the working size on request."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (d.images / 16 * 255).round().astype(np.uint8)
    return TrainingSet.from_arrays(images, d.target, [str(i) for i in range(10)])


def grey(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, H*W) float in [0, 1]."""
    return images.mean(axis=-1).reshape(len(images), -1) / 255.0


def sample_all(gen, per_class: int, seed: int = 123) -> tuple[np.ndarray, np.ndarray]:
    from ooc_bench.generators import per_image_seed

    ims, labels = [], []
    for c in range(10):
        idx = list(range(per_class))
        ims += gen.generate(c, idx, [per_image_seed(seed, c, i) for i in idx], 32)
        labels += [c] * per_class
    return np.stack(ims), np.array(labels)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kimg", type=float, default=6.0)
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from sklearn.neural_network import MLPClassifier

    train = digits_training_set()
    real = train.images(32)
    x_real, y_real = grey(real), train.labels
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(real))
    clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=0).fit(x_real[perm[:1200]], y_real[perm[:1200]])
    real_acc = clf.score(x_real[perm[1200:]], y_real[perm[1200:]])

    def features(x: np.ndarray) -> np.ndarray:
        return np.maximum(x @ clf.coefs_[0] + clf.intercepts_[0], 0)

    f_real = features(x_real)
    floor = fid(f_real[perm[:898]], f_real[perm[898:]])

    cfg = dict(resolution=32, kimg=args.kimg, seed=0, device="cpu", verbose=True)
    untrained = create_generator("gan", **cfg)
    untrained.classes = train.classes
    untrained._build_conditions(train)
    torch.manual_seed(0)
    untrained.G_ema = Trainer(untrained.config, untrained.c_dim, torch.device("cpu")).G_ema

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gan_digits_"))
    t0 = time.perf_counter()
    trained = create_generator("gan", **cfg).fit(train, workdir)
    seconds = time.perf_counter() - t0

    rows = {}
    for name, gen in (("untrained", untrained), ("trained", trained)):
        ims, labels = sample_all(gen, args.per_class)
        xg = grey(ims)
        rows[name] = {"fid": fid(f_real, features(xg)), "class_acc": float(clf.score(xg, labels))}
    result = {"kimg": args.kimg, "train_seconds": round(seconds, 1), "cpu_s_per_kimg": round(trained.seconds_per_kimg, 1),
              "final_p": trained.augment_p, "real_vs_real_fid": floor, "classifier_acc_on_real": real_acc, **rows,
              "workdir": str(workdir)}
    print(json.dumps(result, indent=2))
    (workdir / "quality.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
