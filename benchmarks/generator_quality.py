"""Generator quality harness: fit any registered generator on real packaged data over a budget ladder; CSV + plot.

For each generator (registry name, e.g. ``gan``, ``ddpm``) and each budget of its ladder, the generator is
fitted on the *train split* of a real data set that ships in a package, sampled per class, and judged:

* ``class_fidelity``: accuracy with which a *judge* classifier (the project's ``cnn``, trained on the real
  train split only) assigns each synthetic image to the class it was generated for; ``class_fidelity_min``
  is the worst class. ``judge_real_acc`` is the judge's accuracy on held-out real test images (the ceiling).
* ``fd``: Fréchet distance between judge (penultimate-layer) features of the samples and of the held-out
  real test images (``ooc_bench.metrics.frechet``); ``fd_floor`` is real train vs real test in the same space.
* ``precision`` / ``recall`` (k-NN manifolds, ``ooc_bench.metrics.prdc``) against the same real test images;
  ``precision_floor`` / ``recall_floor`` for real train vs real test.
* ``spread_ratio_min`` / ``spread_ratio_mean``: within-class pixel spread of the samples (mean over pixels of the
  per-pixel standard deviation across the images of one class, grey levels) divided by the real train
  split's, worst class / mean over classes; ``collapsed`` when the worst class is below 0.5.
* ``fit_cpu_s``: process CPU seconds (all threads, ``time.process_time``) spent fitting up to this budget
  (cumulative: a larger budget resumes the previous fit from the same workdir unless ``--fresh``), plus
  ``fit_wall_s`` (wall time on a possibly shared machine) and ``judge_cpu_s``.

Data sets (all offline once installed): ``digits8`` / ``digits16`` / ``digits32`` / ``digits64`` — scikit-learn ``load_digits``
(8x8, 10 classes) as they are or upscaled with the data layer's resize policy; ``nuclei16`` / ``nuclei32`` — 32x32 patches of the
fluorescence nuclei image shipped in the ``stardist`` wheel (``stardist/data/images/img2d.tif`` and its
instance mask), two classes: ``nucleus`` (centred on an annotated nucleus) and ``background`` (no nucleus
centre within 8 px), 8 dihedral copies of each patch, split by source patch (no copy of a test patch is trained
on). The wheel is read as a zip file, never installed; it is fetched once with ``pip download --no-deps`` into
``--cache`` when it is not there (or pass ``--stardist-wheel FILE``).
``demo16`` / ``demo32`` — the built-in demo data set of ``make demo`` (480 procedural culture images, ``good`` /
``bad``, made in the cache folder on first use), grouped by culture date.

Writes ``OUT/quality.csv`` (one row per generator x budget, rewritten after each budget), ``OUT/quality.png``
(class fidelity, FD and spread ratio against fit CPU minutes), ``OUT/samples/<gen>_<budget>.png`` (one row
per class) and ``OUT/meta.json`` (judge, floors, command line).

    nice -n 15 .venv/bin/python benchmarks/generator_quality.py --generators gan,ddpm --dataset digits16 \
        --budgets gan=5,10,20 --budgets ddpm=1000,2000 --param gan.r1_gamma=0.05 --out /tmp/q --threads 1
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

DATASETS = ("digits8", "digits16", "digits32", "digits64", "nuclei16", "nuclei32", "demo16", "demo32")
BUDGET_KEYS = {"gan": "kimg", "ddpm": "steps"}  # the setting that measures training length, per generator
HARNESS_DEFAULTS = {"gan": {"verbose": False}}  # quiet progress bars in logs; overridable with --param
DEVICE_GENERATORS = ("gan", "ddpm", "sd", "sd-img2img")
RESOLUTION_GENERATORS = ("gan", "ddpm")  # generators trained from scratch at a ``resolution`` setting
STARDIST = "stardist==0.9.2"
COLUMNS = ["dataset", "generator", "budget_key", "budget", "fit_cpu_s", "fit_wall_s", "class_fidelity",
           "class_fidelity_min", "judge_real_acc", "fd", "fd_floor", "precision", "recall", "precision_floor",
           "recall_floor", "spread_ratio_min", "spread_ratio_mean", "collapsed", "n_per_class", "n_train",
           "judge_cpu_s", "sample_cpu_s", "config", "resolved_config"]


class HarnessError(Exception):
    """A bad option or missing input: printed as one line, exit status 2."""


# ----------------------------------------------------------------------------------------- options
def parse_value(text: str) -> Any:
    """``--param`` value: true/false/none, int, float, else the string."""
    t = text.strip()
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    if t.lower() in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(t)
        except ValueError:
            pass
    return t


def parse_params(items: list[str], generators: list[str]) -> dict[str, dict[str, Any]]:
    """``gen.key=value`` (or ``key=value`` for every generator) -> {generator: {key: value}}."""
    out: dict[str, dict[str, Any]] = {g: dict(HARNESS_DEFAULTS.get(g, {})) for g in generators}
    for item in items:
        if "=" not in item:
            raise HarnessError(f"--param {item!r}: use GENERATOR.KEY=VALUE (e.g. gan.r1_gamma=0.05)")
        key, value = item.split("=", 1)
        gen, _, name = key.rpartition(".")
        targets = [gen] if gen else generators
        for g in targets:
            if g not in out:
                raise HarnessError(f"--param {item!r}: generator {g!r} is not in --generators ({', '.join(generators)})")
            out[g][name.strip()] = parse_value(value)
    return out


def parse_budgets(items: list[str], generators: list[str]) -> dict[str, list[float]]:
    """``--budgets 1,2,4`` (every generator) or ``--budgets gan=1,2,4`` -> {generator: sorted budgets}."""
    out: dict[str, list[float]] = {}
    for item in items:
        gen, _, values = item.rpartition("=")
        targets = [gen.strip()] if gen else generators
        try:
            ladder = sorted(float(v) for v in values.split(",") if v.strip())
        except ValueError:
            raise HarnessError(f"--budgets {item!r}: use comma-separated numbers, e.g. gan=2,5,10") from None
        if not ladder or min(ladder) <= 0:
            raise HarnessError(f"--budgets {item!r}: budgets must be positive numbers")
        for g in targets:
            if g not in generators:
                raise HarnessError(f"--budgets {item!r}: generator {g!r} is not in --generators ({', '.join(generators)})")
            out[g] = ladder
    return out


def budget_value(key: str, budget: float) -> Any:
    """Integer budgets for integer settings (ddpm ``steps``)."""
    return int(round(budget)) if key == "steps" else float(budget)


# ----------------------------------------------------------------------------------------- data
def _stratified_split(labels: np.ndarray, groups: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """Boolean test mask: a ``test_fraction`` of each class's groups (all members of a group on one side)."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        g = rng.permutation(np.unique(groups[labels == c]))
        test |= np.isin(groups, g[: int(round(len(g) * test_fraction))]) & (labels == c)
    return test


def load_digits_data(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """scikit-learn digits as uint8 RGB at ``size`` px (PIL bicubic, the data layer's policy)."""
    from sklearn.datasets import load_digits

    from ooc_bench.data import resize_square

    d = load_digits()
    grey = (d.images / 16 * 255).round().astype(np.uint8)
    rgb = np.stack([resize_square(np.repeat(im[..., None], 3, -1), size) for im in grey])
    return rgb, d.target.astype(np.int64), np.arange(len(grey)), [str(i) for i in range(10)]


def stardist_wheel(cache: Path, given: Path | None) -> Path:
    """The stardist wheel file: ``given``, else one in ``cache``, else ``pip download --no-deps`` into ``cache``."""
    if given is not None:
        if not given.is_file():
            raise HarnessError(f"--stardist-wheel {given}: no such file")
        return given
    found = sorted(cache.glob("stardist-*.whl"))
    if found:
        return found[-1]
    cache.mkdir(parents=True, exist_ok=True)
    print(f"fetching the {STARDIST} wheel (data only, not installed) into {cache}", file=sys.stderr)
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", STARDIST, "-d", str(cache)],
                          capture_output=True, text=True)
    found = sorted(cache.glob("stardist-*.whl"))
    if proc.returncode != 0 or not found:
        raise HarnessError(f"could not download the {STARDIST} wheel ({proc.stderr.strip().splitlines()[-1:] or '?'}); "
                           "download it yourself and pass --stardist-wheel FILE")
    return found[-1]


def load_nuclei_data(size: int, wheel: Path, patch: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Nucleus-centred and background patches of stardist's ``img2d.tif`` (8 dihedral copies each)."""
    import tifffile
    from scipy import ndimage

    from ooc_bench.data import resize_square

    with zipfile.ZipFile(wheel) as z:
        img = tifffile.imread(io.BytesIO(z.read("stardist/data/images/img2d.tif"))).astype(np.float64)
        mask = tifffile.imread(io.BytesIO(z.read("stardist/data/images/mask2d.tif")))
    img = np.clip(img / np.percentile(img, 99.8) * 255, 0, 255).astype(np.uint8)
    ids = [i for i in np.unique(mask) if i]
    centres = np.array(ndimage.center_of_mass(mask > 0, mask, ids)).round().astype(int)
    h = patch // 2
    inside = lambda y, x: h <= y < img.shape[0] - h and h <= x < img.shape[1] - h  # noqa: E731
    pos = [(y, x) for y, x in centres if inside(y, x)]
    rng = np.random.default_rng(seed)
    neg: list[tuple[int, int]] = []
    for _ in range(200_000):
        if len(neg) >= len(pos):
            break
        y, x = (int(v) for v in rng.integers(h, np.array(img.shape) - h))
        if np.min(np.hypot(centres[:, 0] - y, centres[:, 1] - x)) > 8:
            neg.append((y, x))
    ims, labels, groups = [], [], []
    for label, points in ((0, pos), (1, neg)):
        for y, x in points:
            p = img[y - h:y + h, x - h:x + h]
            for k in range(8):
                q = np.rot90(p, k % 4)
                q = q.T if k >= 4 else q
                ims.append(resize_square(np.repeat(np.ascontiguousarray(q)[..., None], 3, -1), size))
                labels.append(label)
                groups.append(len(groups) // 8)
    return np.stack(ims), np.array(labels, np.int64), np.array(groups), ["nucleus", "background"]


def load_demo_data(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The built-in demo set (the one `make demo` uses, made on first use), all splits, grouped by culture date.

    The harness splits per class, so within a class no date is on both sides, but a date's good and bad images can
    fall on different sides (the judge's ceiling on ``demo*`` is therefore a little optimistic, as on the demo's
    own official split)."""
    from ooc_bench.data import load_dataset
    from ooc_bench.data.decode import decode_resized
    from ooc_bench.matrix.run import ensure_demo_data

    ds = load_dataset(ensure_demo_data())
    ims = np.stack([decode_resized(r.path, size) for r in ds.records])
    labels = np.array([ds.classes.index(r.label) for r in ds.records], np.int64)
    dates = [r.metadata["date"] for r in ds.records]  # parsed by the data layer's OOC layout
    groups = np.unique(dates, return_inverse=True)[1]
    return ims, labels, groups, list(ds.classes)


def dataset_size(name: str) -> int:
    """Image size in a data set's name (``digits16`` -> 16)."""
    return int(name.rstrip("0123456789") and name[len(name.rstrip("0123456789")):])


def load_dataset(name: str, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(images uint8 N x S x S x 3, labels, split groups, class names) of a named data set."""
    size = dataset_size(name)
    if name.startswith("digits"):
        return load_digits_data(size)
    if name.startswith("demo"):
        return load_demo_data(size)
    return load_nuclei_data(size, stardist_wheel(args.cache, args.stardist_wheel))


# ----------------------------------------------------------------------------------------- measures
def pixel_spread(images: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Per class: mean over pixels of the across-image standard deviation of grey levels (0..255)."""
    grey = images.astype(np.float64).mean(-1)
    return np.array([grey[labels == c].std(axis=0).mean() if (labels == c).sum() > 1 else np.nan for c in range(k)])


def make_grid(images: np.ndarray, labels: np.ndarray, k: int, cols: int = 10) -> np.ndarray:
    """One row per class, the first ``cols`` images of each."""
    s = images.shape[1]
    grid = np.zeros((k * s, cols * s, 3), np.uint8)
    for c in range(k):
        for j, im in enumerate(images[labels == c][:cols]):
            grid[c * s:(c + 1) * s, j * s:(j + 1) * s] = im
    return grid


def save_png(path: Path, array: np.ndarray, scale: int = 1) -> None:
    """Atomic PNG write (nearest-neighbour enlargement by ``scale``)."""
    from PIL import Image

    from ooc_bench.atomic import atomic_path

    im = Image.fromarray(array)
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG")


def _typed(value: str) -> Any:
    """A CSV cell read back: number or bool where it is one."""
    if value in ("True", "False"):
        return value == "True"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    from ooc_bench.atomic import write_text

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    write_text(path, buf.getvalue())


def plot(path: Path, rows: list[dict[str, Any]], title: str) -> None:
    """Class fidelity, FD and spread ratio against cumulative fit CPU minutes, one line per generator."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ooc_bench.atomic import atomic_path

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for gen in dict.fromkeys(r["generator"] for r in rows):
        rs = [r for r in rows if r["generator"] == gen]
        x = [r["fit_cpu_s"] / 60 for r in rs]
        for ax, key in zip(axes, ("class_fidelity", "fd", "spread_ratio_min")):
            ax.plot(x, [r[key] for r in rs], "o-", label=gen)
            for xi, r in zip(x, rs):
                ax.annotate(f"{r['budget']:g}", (xi, r[key]), fontsize=7, textcoords="offset points", xytext=(3, 3))
    if rows:
        axes[0].axhline(rows[0]["judge_real_acc"], ls="--", c="grey", lw=1, label="judge on real test")
        axes[1].axhline(rows[0]["fd_floor"], ls="--", c="grey", lw=1, label="real train vs test")
    axes[2].axhline(0.5, ls=":", c="red", lw=1, label="collapse threshold")
    axes[2].axhline(1.0, ls="--", c="grey", lw=1)
    for ax, lab in zip(axes, ("class fidelity (judge accuracy on samples)", "Fréchet distance (judge features)",
                              "within-class pixel spread / real (worst class)")):
        ax.set_xlabel("fit CPU minutes (cumulative; labels: budget)")
        ax.set_title(lab, fontsize=9)
        ax.legend(fontsize=7)
    axes[1].set_yscale("log")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--generators", default="gan", help="comma-separated registry names (default: gan)")
    ap.add_argument("--dataset", default="digits16", help=f"one of {', '.join(DATASETS)}")
    ap.add_argument("--budgets", action="append", default=[],
                    help="ladder, e.g. 2,5,10 (every generator) or gan=2,5,10 (repeatable); units: the budget key")
    ap.add_argument("--budget-key", action="append", default=[],
                    help=f"GENERATOR=SETTING that measures training length (defaults: {BUDGET_KEYS})")
    ap.add_argument("--param", action="append", default=[], help="GENERATOR.KEY=VALUE setting (repeatable)")
    ap.add_argument("--out", type=Path, required=True, help="output folder")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--device", default="cpu", help="device for gan/ddpm/sd (default cpu; 'keep' leaves it to the config)")
    ap.add_argument("--per-class", type=int, default=100, help="synthetic images per class and budget")
    ap.add_argument("--max-train-per-class", type=int, default=None, help="use at most this many train images per class")
    ap.add_argument("--test-fraction", type=float, default=1 / 3, help="held-out real test share (default 1/3)")
    ap.add_argument("--judge-epochs", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0, help="split, judge and sampling seed")
    ap.add_argument("--fresh", action="store_true", help="fit every budget from scratch instead of resuming")
    ap.add_argument("--extend", action="store_true",
                    help="continue an earlier run in --out: keep its rows, skip budgets it measured, resume its fits "
                         "(cumulative CPU time continues from its last row)")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "ooc-bench" / "wheels",
                    help="where the stardist wheel is kept (nuclei data sets)")
    ap.add_argument("--stardist-wheel", type=Path, default=None, help="a local stardist-*.whl (nuclei data sets)")
    return ap


def run(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Parse options, validate every generator config, then fit/sample/judge the ladders. Returns the CSV rows."""
    import torch

    from ooc_bench.generators import TrainingSet, create_generator, resolve_generator_name
    from ooc_bench.metrics.frechet import fid_from_features
    from ooc_bench.metrics.prdc import prdc

    args = build_parser().parse_args(argv)
    if args.dataset not in DATASETS:
        raise HarnessError(f"--dataset {args.dataset!r}: choose one of {', '.join(DATASETS)}")
    if args.per_class < 6:
        raise HarnessError("--per-class must be >= 6 (precision/recall use 5 nearest neighbours)")
    if not 0 < args.test_fraction < 1:
        raise HarnessError("--test-fraction must be between 0 and 1")
    gens = [resolve_generator_name(g) for g in args.generators.split(",") if g.strip()]
    if not gens:
        raise HarnessError("--generators: name at least one generator")
    keys = dict(BUDGET_KEYS)
    for item in args.budget_key:
        g, _, k = item.partition("=")
        if not k:
            raise HarnessError(f"--budget-key {item!r}: use GENERATOR=SETTING")
        keys[resolve_generator_name(g)] = k.strip()
    params = parse_params(args.param, gens)
    budgets = parse_budgets(args.budgets, gens)
    ladders: dict[str, list[float | None]] = {}
    for g in gens:
        if args.device != "keep" and g in DEVICE_GENERATORS:
            params[g].setdefault("device", args.device)
        if g in RESOLUTION_GENERATORS:  # train at the data set's size unless told otherwise
            params[g].setdefault("resolution", dataset_size(args.dataset))
        if g in budgets and g not in keys:
            raise HarnessError(f"--budgets for {g}: no budget setting known; pass --budget-key {g}=SETTING")
        ladders[g] = budgets.get(g) or [None]
        for b in ladders[g]:  # every config is checked now, before any data is loaded or anything is trained
            cfg = dict(params[g]) | ({keys[g]: budget_value(keys[g], b)} if b is not None else {})
            create_generator(g, **cfg)
    torch.set_num_threads(max(1, args.threads))
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    # ---- data, split, judge
    images, labels, groups, classes = load_dataset(args.dataset, args)
    k = len(classes)
    test = _stratified_split(labels, groups, args.test_fraction, args.seed)
    tr = np.flatnonzero(~test)
    if args.max_train_per_class:
        tr = np.concatenate([tr[labels[tr] == c][: args.max_train_per_class] for c in range(k)])
    te = np.flatnonzero(test)
    x_tr, y_tr, x_te, y_te = images[tr], labels[tr], images[te], labels[te]
    size = images.shape[1]
    from ooc_bench.classifiers import TrainConfig, train_classifier

    t0 = time.process_time()
    rng = np.random.default_rng(args.seed)
    val = np.zeros(len(y_tr), bool)
    val[rng.permutation(len(y_tr))[: max(k, len(y_tr) // 7)]] = True  # early-stopping slice of the TRAIN split
    judge_cfg = TrainConfig(model="cnn", pretrained=False, epochs=args.judge_epochs, batch_size=64,
                            img_size=max(32, size), augment=not args.dataset.startswith("digits"), device="cpu",
                            patience=4 if args.dataset.startswith("digits") else 8)
    judge = train_classifier(train=(x_tr[~val], y_tr[~val]), val=(x_tr[val], y_tr[val]), test=(x_te, y_te),
                             classes=classes, config=judge_cfg, seed=args.seed)
    judge_cpu = time.process_time() - t0
    judge_acc = float((judge.predict(x_te) == y_te).mean())
    f_tr, f_te = judge.embed(x_tr).astype(np.float64), judge.embed(x_te).astype(np.float64)
    fd_floor = fid_from_features(f_tr, f_te)
    pr_floor = prdc(f_te, f_tr)
    real_spread = pixel_spread(x_tr, y_tr, k)
    meta = {"argv": sys.argv if argv is None else ["generator_quality.py", *argv], "dataset": args.dataset,
            "classes": classes, "n_train": len(tr), "n_test": len(te), "judge": judge_cfg.to_dict(),
            "judge_real_acc": judge_acc, "judge_cpu_s": judge_cpu, "fd_floor": fd_floor, "pr_floor": pr_floor,
            "real_spread": real_spread.tolist(), "threads": args.threads, "torch": torch.__version__}
    from ooc_bench.atomic import write_json

    write_json(out / "meta.json", meta)
    save_png(out / "samples" / "real.png", make_grid(x_tr, y_tr, k), scale=max(1, 64 // size))
    print(f"{args.dataset}: {len(tr)} train / {len(te)} test real images, judge accuracy on real test {judge_acc:.3f}, "
          f"FD floor {fd_floor:.3f}", flush=True)

    train_set = TrainingSet.from_arrays(x_tr, y_tr, classes)
    rows: list[dict[str, Any]] = []
    if args.extend and (out / "quality.csv").is_file():
        if args.fresh:
            raise HarnessError("--extend resumes earlier fits; it cannot be combined with --fresh")
        with open(out / "quality.csv", newline="", encoding="utf-8") as fh:
            rows = [{k: _typed(v) for k, v in r.items()} for r in csv.DictReader(fh)]
    for g in gens:
        done = [r for r in rows if r["generator"] == g and r["dataset"] == args.dataset]
        fit_cpu = float(done[-1]["fit_cpu_s"]) if done else 0.0
        fit_wall = float(done[-1]["fit_wall_s"]) if done else 0.0
        for b in ladders[g]:
            if b is not None and any(abs(float(r["budget"]) - b) < 1e-9 for r in done):
                continue
            if b is not None and done and b < float(done[-1]["budget"]):
                raise HarnessError(f"--extend: budget {b:g} of {g} is below the last measured one "
                                   f"({done[-1]['budget']}); its checkpoint is further along")
            cfg = dict(params[g]) | ({keys[g]: budget_value(keys[g], b)} if b is not None else {})
            gen = create_generator(g, **cfg)
            tag = f"{g}_{b:g}" if b is not None else g
            workdir = out / "work" / (tag if args.fresh else g)
            if args.fresh:
                fit_cpu = fit_wall = 0.0
            c0, w0 = time.process_time(), time.perf_counter()
            gen.fit(train_set, workdir=workdir)
            fit_cpu += time.process_time() - c0
            fit_wall += time.perf_counter() - w0
            c0 = time.process_time()
            sample_dir = out / "work" / "samples" / tag
            gen.sample(args.per_class, sample_dir, seed=args.seed + 1, size=size)
            from PIL import Image

            fake, y_fake = [], []
            for ci, name in enumerate(classes):
                for p in sorted((sample_dir / name).glob("*.png")):
                    fake.append(np.asarray(Image.open(p).convert("RGB")))
                    y_fake.append(ci)
            fake_x, fake_y = np.stack(fake), np.array(y_fake)
            sample_cpu = time.process_time() - c0
            pred = judge.predict(fake_x)
            per_class = [float((pred[fake_y == c] == c).mean()) for c in range(k)]
            f_fake = judge.embed(fake_x).astype(np.float64)
            pr = prdc(f_te, f_fake)
            ratio = pixel_spread(fake_x, fake_y, k) / real_spread
            row = {"dataset": args.dataset, "generator": g, "budget_key": keys.get(g, ""), "budget": b if b is not None else 0,
                   "fit_cpu_s": round(fit_cpu, 1), "fit_wall_s": round(fit_wall, 1),
                   "class_fidelity": round(float((pred == fake_y).mean()), 4), "class_fidelity_min": round(min(per_class), 4),
                   "judge_real_acc": round(judge_acc, 4), "fd": round(fid_from_features(f_te, f_fake), 4),
                   "fd_floor": round(fd_floor, 4), "precision": round(pr["precision"], 4), "recall": round(pr["recall"], 4),
                   "precision_floor": round(pr_floor["precision"], 4), "recall_floor": round(pr_floor["recall"], 4),
                   "spread_ratio_min": round(float(np.nanmin(ratio)), 4), "spread_ratio_mean": round(float(np.nanmean(ratio)), 4),
                   "collapsed": bool(np.nanmin(ratio) < 0.5), "n_per_class": args.per_class, "n_train": len(tr),
                   "judge_cpu_s": round(judge_cpu, 1), "sample_cpu_s": round(sample_cpu, 1),
                   "config": json.dumps(cfg, sort_keys=True, default=str),  # the settings given
                   "resolved_config": json.dumps(gen.config, sort_keys=True, default=str)}  # what trained
            rows.append(row)
            save_png(out / "samples" / f"{tag}.png", make_grid(fake_x, fake_y, k), scale=max(1, 64 // size))
            write_csv(out / "quality.csv", rows)
            plot(out / "quality.png", rows, f"{args.dataset}: {', '.join(gens)}")
            print(f"{tag}: fit {fit_cpu / 60:.1f} CPU-min | class fidelity {row['class_fidelity']:.3f} "
                  f"(worst class {row['class_fidelity_min']:.2f}) | FD {row['fd']:.2f} | P {row['precision']:.2f} "
                  f"R {row['recall']:.2f} | spread {row['spread_ratio_min']:.2f}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    from ooc_bench.errors import UserInputError

    try:
        run(argv)
    except (HarnessError, UserInputError) as exc:
        print(f"generator_quality: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
