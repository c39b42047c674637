"""Training throughput (images/s): ooc-bench's data path (decode-once cache → uint8 arrays → batched on-device
augmentation) against a naive pipeline (PIL decode + torchvision transforms in a DataLoader every epoch), same model,
same batch, same optimizer step, in one run. Data time and compute time are measured separately.

    .venv/bin/python benchmarks/bench_train_throughput.py [--n-images 48] [--model mnv3s] [--size 224] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-images", type=int, default=48)
    ap.add_argument("--model", default="mnv3s")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3, help="epochs timed per pipeline (medians reported)")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers of the naive pipeline")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()

    import torch
    from PIL import Image
    from torchvision.transforms import v2 as T

    from ooc_bench.classifiers import create_model
    from ooc_bench.classifiers.augment import AugmentConfig, augment_batch
    from ooc_bench.classifiers.training import Preprocess
    from ooc_bench.data import ImageCache, load_dataset, make_demo

    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="ooc-bench-throughput-"))
    t = time.perf_counter()
    root = make_demo(work / "demo", seed=0, n_images=args.n_images, full_size=True)
    print(f"demo: {args.n_images} full-size PNGs rendered in {time.perf_counter() - t:.1f}s ({root})")
    ds = load_dataset(root)
    records = [r for r in ds.records]
    index = ds.class_index()
    labels = np.array([index[r.label] for r in records], dtype=np.int64)
    paths = [r.path for r in records]
    with Image.open(paths[0]) as im:
        print(f"image size {im.size}, mode {im.mode}; model {args.model} (random init) at {args.size}px, "
              f"batch {args.batch_size}, torch threads {torch.get_num_threads()}")

    model, info = create_model(args.model, num_classes=len(ds.classes), pretrained=False)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()

    def step(xb: torch.Tensor, yb: torch.Tensor) -> None:
        loss = loss_fn(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # -- naive: decode every PNG every epoch, torchvision transforms per image, DataLoader batching
    class PngSet(torch.utils.data.Dataset):
        tf = T.Compose([T.ToImage(), T.Resize(args.size, antialias=True), T.CenterCrop(args.size),
                        T.RandomHorizontalFlip(), T.RandomVerticalFlip(),
                        T.RandomAffine(degrees=10, translate=(0.05, 0.05), scale=(1.0, 1.1)),
                        T.ToDtype(torch.float32, scale=True), T.Normalize(list(info.mean), list(info.std))])

        def __len__(self) -> int:
            return len(paths)

        def __getitem__(self, i: int):
            with Image.open(paths[i]) as im:
                return self.tf(im.convert("RGB")), int(labels[i])

    loader = torch.utils.data.DataLoader(PngSet(), batch_size=args.batch_size, shuffle=True,
                                         num_workers=args.workers, generator=torch.Generator().manual_seed(0))

    def naive_epoch() -> tuple[float, float]:
        data = compute = 0.0
        t0 = time.perf_counter()
        for xb, yb in loader:
            t1 = time.perf_counter()
            data += t1 - t0
            step(xb, yb)
            t0 = time.perf_counter()
            compute += t0 - t1
        return data, compute

    # -- ooc-bench: decode once into the cache; per epoch only uint8 indexing + batched tensor augmentation
    cache = ImageCache(work / "cache")
    t = time.perf_counter()
    arrays = cache.load(records, args.size)
    cache_build = time.perf_counter() - t
    pre = Preprocess(args.size, info.mean, info.std, info.interpolation)
    store = pre.as_uint8_nchw(arrays)
    yt = torch.from_numpy(labels)
    g_order, g_aug = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)

    def ooc_epoch() -> tuple[float, float]:
        data = compute = 0.0
        perm = torch.randperm(len(yt), generator=g_order)
        for b in range(0, len(yt), args.batch_size):
            t0 = time.perf_counter()
            idx = perm[b:b + args.batch_size]
            xb = pre.normalize(augment_batch(store[idx].float().div_(255.0), g_aug, AugmentConfig()))
            yb = yt[idx]
            t1 = time.perf_counter()
            step(xb, yb)
            compute += time.perf_counter() - t1
            data += t1 - t0
        return data, compute

    naive_epoch(), ooc_epoch()  # warm-up (allocator, oneDNN kernels)
    res: dict[str, list[tuple[float, float]]] = {"naive": [], "ooc": []}
    for _ in range(args.repeats):  # interleaved, so load changes on the shared machine hit both alike
        res["naive"].append(naive_epoch())
        res["ooc"].append(ooc_epoch())
    n = len(yt)
    print(f"\none-time cache build (decode {n} PNGs + resize + store): {cache_build:.2f}s\n")
    print(f"{'pipeline':<10}{'images/s':>10}{'data s/ep':>11}{'compute s/ep':>14}{'data share':>12}")
    med = {}
    for name, rows in res.items():
        ips = statistics.median(n / (d + c) for d, c in rows)
        d, c = statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)
        share = statistics.median(r[0] / (r[0] + r[1]) for r in rows)
        med[name] = (ips, share)
        print(f"{name:<10}{ips:>10.1f}{d:>11.3f}{c:>14.3f}{share:>11.1%}")
    ratio = med["ooc"][0] / med["naive"][0]
    print(f"\nspeed-up ooc-bench / naive (median of {args.repeats} epochs): {ratio:.2f}x; "
          f"ooc-bench data share of step time: {med['ooc'][1]:.1%}")
    sys.stdout.flush()


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
