"""Near-copy detection before/after calibration: detection rates of noisy copies and flips, share for independent images.

On the built-in demo dataset (64 px, the official-style split), a domain CNN is trained on the train split as the
run's domain job does (8 epochs, 15 % held out for early stopping). Synthetic "generators" are simulated:
training images with imperceptible Gaussian noise (sigma 2 grey levels), horizontally / vertically flipped and
90-degree-rotated training images, and the independent real test split (an ideal generator). Reported:

* before: the old detector (threshold = 5th percentile of leave-one-out distances inside train) in domain
  features and in raw pixels;
* after: ``near_copy_spaces`` (threshold from val -> train distances, flip/rotation-invariant pixel space at
  32 px, domain features, and 'any'), with the expected share for independent images beside the observed one;
* the share of independent images flagged at n_train = n_val = 16 (per-class sizes of small sets), old vs new,
  averaged over repeats, against the expected share.

Run: ``nice -n 15 .venv/bin/python benchmarks/bench_nearcopy.py`` (about 1-2 min of CPU).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-images", type=int, default=480)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args()

    import torch

    from ooc_bench.classifiers import TrainConfig, train_classifier
    from ooc_bench.data import load_dataset, make_demo, make_split, split_arrays
    from ooc_bench.metrics.nearcopy import near_copy, near_copy_spaces

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_demo(Path(tmp) / "demo", seed=0, n_images=args.n_images, size=args.size)
        ds = make_split(load_dataset(root), seed=0)
        train, val, test = (split_arrays(ds, s, args.size) for s in ("train", "val", "test"))
    xt, yt = train
    rng = np.random.default_rng(0)
    hold = np.zeros(len(yt), bool)
    hold[rng.choice(len(yt), max(1, int(0.15 * len(yt))), replace=False)] = True
    cfg = TrainConfig(model="cnn", epochs=args.epochs, img_size=args.size, batch_size=32, pretrained=False, device="cpu")
    net = train_classifier(train=(xt[~hold], yt[~hold]), val=(xt[hold], yt[hold]), test=None, classes=ds.classes,
                           config=cfg, seed=0)

    def feats(x: np.ndarray) -> np.ndarray:
        return np.asarray(net.embed(x, batch_size=64), np.float64)

    pick = rng.choice(len(xt), min(200, len(xt)), replace=False)
    src = xt[pick]
    noisy = np.clip(src.astype(float) + rng.normal(0, 2.0, src.shape), 0, 255).round().astype(np.uint8)
    sets = {"noisy copies (sigma 2)": noisy, "h-flipped copies": np.ascontiguousarray(src[:, :, ::-1]),
            "v-flipped copies": np.ascontiguousarray(src[:, ::-1]),
            "rot90 copies": np.ascontiguousarray(np.rot90(src, 1, axes=(1, 2))), "independent (test split)": test[0]}
    ft, fv = feats(xt), feats(val[0])
    flat = lambda a: a.reshape(len(a), -1).astype(np.float64) / 255.0  # noqa: E731
    print(f"demo: {len(xt)} train, {len(val[0])} val, {len(test[0])} test images at {args.size} px; "
          f"domain CNN {args.epochs} epochs (hold-out accuracy {net.val_metrics.get('accuracy', float('nan')):.3f})")
    print(f"{'set':<26} | before: domain  pixels | after: pixel  domain    any | expected: pixel domain  any"
          "  (95 % band of one threshold's rate)")
    for name, x in sets.items():
        ff = feats(x)
        old_dom = near_copy(ff, ft)["nearcopy_share"]
        old_pix = near_copy(flat(x), flat(xt))["nearcopy_share"]
        new = near_copy_spaces(x, xt, val[0], ff, ft, fv, feature_space="domain")
        p, d, a = (new[s] for s in ("pixel", "domain", "any"))
        print(f"{name:<26} |        {old_dom:6.3f}  {old_pix:6.3f} |      {p['nearcopy_share']:6.3f}  "
              f"{d['nearcopy_share']:6.3f} {a['nearcopy_share']:6.3f} |       {p['nearcopy_expected']:6.3f} "
              f"{d['nearcopy_expected']:6.3f} {a['nearcopy_expected']:6.3f}  "
              f"[{p['nearcopy_expected_low']:.3f}, {p['nearcopy_expected_high']:.3f}]")

    # independent images at small n: 16 training and 16 held-out real images, the rest of the real images as "fakes"
    allx = np.concatenate([xt, val[0], test[0]])
    allf = np.concatenate([ft, fv, feats(test[0])])
    old, new, exp = [], [], []
    for _ in range(args.repeats):
        perm = rng.permutation(len(allx))
        tr, va, fk = perm[:16], perm[16:32], perm[32:96]
        old.append(near_copy(allf[fk], allf[tr])["nearcopy_share"])
        r = near_copy(allf[fk], allf[tr], val_feats=allf[va])
        new.append(r["nearcopy_share"])
        exp.append(r["nearcopy_expected"])
    print(f"independent images, n_train = n_val = 16, domain features, {args.repeats} draws: "
          f"before (train leave-one-out) {np.mean(old):.3f}, after (val -> train) {np.mean(new):.3f}, "
          f"expected {np.mean(exp):.3f}")
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(f"wall {time.perf_counter() - t0:.1f} s, CPU {ru.ru_utime + ru.ru_stime:.1f} s (shared machine)")


if __name__ == "__main__":
    main()
