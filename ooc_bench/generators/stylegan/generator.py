"""The `gan` generator: StyleGAN2-ADA trained on the training split, sampled per class with one seed per image."""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...config import check_table, defaults, option, runtime_keys
from ...errors import UserInputError
from ..base import Generator, TrainingSet

log = logging.getLogger(__name__)

@dataclass
class GanConfig:
    """Settings of the `gan` generator; ``None`` / ``auto`` are resolved from resolution, capacity and device."""

    resolution: int = option(64, "working resolution (px), a power of two", low=8, high=1024)
    kimg: float | None = option(None, "training length in thousands of real images shown (none: 1000 on CUDA, 2 on CPU)",
                                low=0.0, low_open=True)
    batch_size: int | None = option(None, "batch size (none: 8 on CPU up to 32 px, else min(32, max(4, 4096 // resolution)))", low=1)
    capacity: str = option("auto", "network size preset (auto: paper on CUDA, tiny on CPU)",
                           choices=("auto", "tiny", "small", "paper", "large"))
    channel_base: int | None = option(None, "channel budget (none: the capacity's)", low=1)
    channel_max: int | None = option(None, "most channels per layer (none: the capacity's)", low=1)
    z_dim: int | None = option(None, "latent size (none: the capacity's)", low=1)
    w_dim: int | None = option(None, "style size (none: the capacity's)", low=1)
    mapping_layers: int | None = option(None, "mapping-network depth (none: the capacity's)", low=1)
    mbstd_group: int = option(4, "minibatch-stddev group size", low=1)
    conditional: bool = option(True, "class-conditional (false: one unconditional network, one-class sets only)")
    condition_on: str | None = option(None, "also condition on this metadata column (e.g. cell_type)")
    r1_gamma: float | None = option(None, "R1 regularisation weight (none: max(floor, 0.0002 * resolution^2 / "
                                          "batch_size); floor 3.2 for capacity tiny, else 0.2)", low=0.0)
    r1_interval: int = option(16, "minibatches between R1 steps (lazy regularisation)", low=1)
    pl_weight: float = option(0.0, "path-length regularisation weight", low=0.0)
    pl_interval: int = option(4, "minibatches between path-length steps", low=1)
    style_mixing: float | None = option(None, "style-mixing probability (none: the capacity's)", low=0.0, high=1.0)
    lr: float = option(0.0025, "Adam learning rate of G and D", low=0.0, low_open=True)
    betas: tuple[float, float] = option((0.0, 0.99), "Adam betas")
    ema_kimg: float | None = option(None, "EMA half-life in kimg (none: batch_size * 10 / 32)", low=0.0)
    ema_rampup: float | None = option(0.05, "EMA ramp-up (none: off)", low=0.0)
    ada_target: float = option(0.6, "ADA overfitting-heuristic target r_t", low=0.0, high=1.0)
    ada_interval: int = option(4, "minibatches between ADA adjustments", low=1)
    ada_kimg: float = option(100.0, "kimg for p to go 0 -> 1 at most", low=0.0, low_open=True)
    fixed_p: float | None = option(None, "fixed augmentation probability (none: adaptive)", low=0.0, high=1.0)
    augment_pipe: str | list[str] = option("bgc", "ADA transforms (NVlabs names, e.g. bgc, bgcfnc, or a list)")
    ada_antialias: bool = option(True, "resample ADA's rotations/scalings at 2x between low-pass filters (false: "
                                       "one bilinear grid_sample, faster, leaks more)")
    mirror: bool = option(False, "x-flip the training images")
    truncation_psi: float = option(1.0, "truncation psi when sampling (1: none)", low=0.0)
    noise_mode: str = option("random", "per-pixel noise when sampling: random (seeded per image; what NVlabs' metrics "
                                       "sample) | const (one fixed draw, NVlabs' generate.py) | none",
                             choices=("const", "random", "none"))
    checkpoint_kimg: float | None = option(None, "kimg between checkpoints (none: kimg / 10, at most 50)", low=0.0,
                                           low_open=True, runtime=True)
    grid_kimg: float | None = option(None, "kimg between sample grids (none: kimg / 10, at most 50)", low=0.0,
                                     low_open=True, runtime=True)
    amp: bool = option(True, "mixed precision on CUDA", runtime=True)
    channels_last: bool = option(True, "channels-last memory format on CUDA", runtime=True)
    fused_modconv: bool | None = option(None, "fused modulated convolution (none: false)")
    device: str = option("auto", "auto | cpu | cuda | cuda:N", runtime=True)
    seed: int = option(0, "training seed")
    gan_pkl: str | None = option(None, "NVlabs network pickle to start from or sample")
    allow_pickle: bool = option(False, "allow loading an NVlabs pickle (runs code from the file)")
    verbose: bool = option(True, "progress lines while training", runtime=True)
    gen_batch: int = option(1, "images per generator forward pass when sampling", low=1)
    num_threads: int | None = option(None, "torch CPU threads (none: the job's)", low=1, runtime=True)


DEFAULTS: dict[str, Any] = defaults(GanConfig)  # kept for callers of the old dict
# settings that do not change the trained model or its samples (kept out of config_hash)
_RUNTIME_ONLY = tuple(sorted(runtime_keys(GanConfig)))
_CAPACITY = {  # preset: (channel_base, channel_max, z/w dim, mapping layers, style mixing, R1 gamma floor)
    # R1 floors: tiny measured (8-64 px, docs/gan.md "R1 γ"); small measured once at 16 px; paper / large: the
    # project-wide floor, inside NVlabs' tuned range wherever it replaces their heuristic
    "tiny": (1024, 64, 128, 2, 0.0, 3.2),
    "small": (4096, 256, 256, 2, 0.0, 0.2),
    "paper": (16384, 512, 512, 8, 0.9, 0.2),
    "large": (32768, 512, 512, 8, 0.9, 0.2),
}


def resolve_config(**config: Any) -> dict[str, Any]:
    """Fill every ``None`` default from resolution, capacity preset and device; validate values."""
    cfg = {**defaults(GanConfig), **check_table(GanConfig, config, "gan")}  # names, types, ranges: GanConfig
    from ...runtime import pick_device

    on_cuda = pick_device(cfg["device"]).type == "cuda"
    res = int(cfg["resolution"])
    if res < 8 or res > 1024 or res & (res - 1):
        raise UserInputError(f"gan: resolution must be a power of two between 32 and 1024, got {res}")
    cap = cfg["capacity"]
    if cap == "auto":
        cap = "paper" if on_cuda else "tiny"
    if cap not in _CAPACITY:
        raise UserInputError(f"gan: capacity={cap!r}; valid: auto, {', '.join(_CAPACITY)}")
    cfg["capacity"] = cap
    cbase, cmax, zw, nmap, mix, r1_floor = _CAPACITY[cap]
    for key, val in (("channel_base", cbase), ("channel_max", cmax), ("z_dim", zw), ("w_dim", zw),
                     ("mapping_layers", nmap), ("style_mixing", mix)):
        if cfg[key] is None:
            cfg[key] = val
    if cfg["kimg"] is None:
        cfg["kimg"] = 1000.0 if on_cuda else 2.0
    cfg["kimg"] = float(cfg["kimg"])
    if cfg["kimg"] <= 0:
        raise UserInputError(f"gan: kimg must be > 0, got {cfg['kimg']}")
    if cfg["batch_size"] is None:  # CPU at <= 32 px: 8 (4x the steps per CPU-minute; measured in docs/gan.md)
        cfg["batch_size"] = 8 if (not on_cuda and res <= 32) else int(min(32, max(4, 4096 // res)))
    if cfg["ema_kimg"] is None:
        cfg["ema_kimg"] = cfg["batch_size"] * 10 / 32
    if cfg["r1_gamma"] is None:  # resolved here, so the value that trains is the one hashed into cache keys
        from .loss import default_r1_gamma

        cfg["r1_gamma"] = default_r1_gamma(res, int(cfg["batch_size"]), r1_floor)
    if cfg["checkpoint_kimg"] is None:
        cfg["checkpoint_kimg"] = float(min(50.0, max(cfg["kimg"] / 10, 0.001)))
    if cfg["grid_kimg"] is None:
        cfg["grid_kimg"] = float(min(50.0, max(cfg["kimg"] / 10, 0.001)))
    if cfg["fused_modconv"] is None:
        cfg["fused_modconv"] = False  # one ordinary conv on activations: faster on CPU and GPU for batch > 1
    if cfg["noise_mode"] not in ("const", "random", "none"):
        raise UserInputError(f"gan: noise_mode must be const, random or none, got {cfg['noise_mode']!r}")
    if cfg["fixed_p"] is not None and not 0 <= float(cfg["fixed_p"]) <= 1:
        raise UserInputError(f"gan: fixed_p must be in [0, 1], got {cfg['fixed_p']}")
    if isinstance(cfg["augment_pipe"], (list, tuple)):
        cfg["augment_pipe"] = ",".join(cfg["augment_pipe"])
    from .augment import resolve_transforms
    try:
        resolve_transforms(cfg["augment_pipe"])
    except ValueError as exc:
        raise UserInputError(f"gan: augment_pipe: {exc}") from exc
    cfg["betas"] = list(cfg["betas"])
    cfg["resolution"] = res
    return cfg


class StyleGAN2ADA(Generator):
    """StyleGAN2 with adaptive discriminator augmentation, class-conditional, trained on the training split only."""

    name = "gan"
    config_class = GanConfig

    def __init__(self, **config: Any) -> None:
        super().__init__(**resolve_config(**config))
        self.G_ema = None
        self.G = None
        self.D = None
        self.c_dim = 0
        self.cond_table: list[list[Any]] = []  # [class_index, metadata value, count] per conditioning label
        self.nimg = 0
        self.augment_p = 0.0
        self.seconds_per_kimg = float("nan")
        self._nvlabs = None
        self._centers: dict[int, Any] = {}

    @property
    def config_hash(self) -> str:
        from ...hashing import config_hash

        return config_hash({"generator": self.name, **{k: v for k, v in self.config.items() if k not in _RUNTIME_ONLY}})

    @property
    def train_stats(self) -> dict[str, Any]:
        """Training summary for ``generate.json``: images shown, speed, final ADA probability."""
        return {"kimg": self.nimg / 1000, "seconds_per_kimg": round(self.seconds_per_kimg, 3)
                if np.isfinite(self.seconds_per_kimg) else None, "augment_p": round(self.augment_p, 4),
                "conditions": len(self.cond_table), "pickle": bool(self._nvlabs is not None)}

    # ------------------------------------------------------------------ conditioning
    def _build_conditions(self, train: TrainingSet) -> np.ndarray:
        """Conditioning label per training image; fills ``c_dim`` and ``cond_table``."""
        labels = np.asarray(train.labels, dtype=np.int64)
        if not self.config["conditional"]:
            if len(set(labels.tolist())) > 1:
                raise UserInputError("gan: conditional=false trains one unconditional network, which cannot sample "
                                     "per class; fit it on a one-class training set or use conditional=true")
            self.c_dim = 0
            self.cond_table = [[int(labels[0]) if len(labels) else 0, "", int(len(labels))]]
            return np.zeros(len(labels), dtype=np.int64)
        col = self.config["condition_on"]
        if col is None:
            keys = [(int(c), "") for c in labels]
        else:
            md = train.metadata or [{} for _ in labels]
            if not any(col in m for m in md):
                present = sorted({k for m in md for k in m})
                raise UserInputError(f"gan: condition_on={col!r} is not a metadata column of the training set "
                                     f"(columns: {', '.join(present) or 'none'})")
            keys = [(int(c), str(m.get(col, ""))) for c, m in zip(labels, md)]
        combos = sorted(set(keys))
        index = {k: i for i, k in enumerate(combos)}
        counts = {k: 0 for k in combos}
        for k in keys:
            counts[k] += 1
        self.cond_table = [[c, v, counts[(c, v)]] for c, v in combos]
        self.c_dim = len(combos)
        return np.array([index[k] for k in keys], dtype=np.int64)

    def _condition_for(self, class_index: int, u: float) -> int:
        """Conditioning label for an image of ``class_index``: a metadata value drawn ∝ training frequency (u in [0,1))."""
        if self.c_dim == 0:
            return -1
        rows = [(i, r[2]) for i, r in enumerate(self.cond_table) if r[0] == class_index]
        if not rows:
            raise UserInputError(f"gan: class {self.classes[class_index]!r} has no training images to condition on")
        counts = np.array([r[1] for r in rows], dtype=np.float64)
        k = int(np.searchsorted(np.cumsum(counts) / counts.sum(), u, side="right"))
        return rows[min(k, len(rows) - 1)][0]

    # ------------------------------------------------------------------ fit
    def _device(self):
        from ...runtime import pick_device

        return pick_device(self.config["device"])

    def fit(self, train: TrainingSet, workdir: Path | None = None) -> "StyleGAN2ADA":
        """Train on ``train`` (resuming from ``workdir/checkpoints`` when present); with ``gan_pkl`` load that instead."""
        import torch

        from ...atomic import write_json
        from ...hashing import array_hash, config_hash
        from ...runtime import seed_everything
        from .trainer import Trainer

        if len(train) == 0:
            raise UserInputError("gan: the training set is empty")
        self.classes = list(train.classes)
        cfg = self.config
        if cfg["gan_pkl"]:
            self._load_pkl(train)
            return self
        cond = self._build_conditions(train)
        res = cfg["resolution"]
        arr = np.asarray(train.images(res))
        if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[1:] != (res, res, 3):
            raise UserInputError(f"gan: TrainingSet.images({res}) returned {arr.dtype} {arr.shape}; "
                                 f"expected uint8 (N, {res}, {res}, 3)")
        images = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).contiguous()
        device = self._device()
        seed_everything(int(cfg["seed"]))
        trainer = Trainer(cfg, self.c_dim, device)
        self._trainer = trainer
        if workdir is not None:
            workdir = Path(workdir)
            workdir.mkdir(parents=True, exist_ok=True)
            write_json(workdir / "training_set.json", {
                "n_images": len(train), "classes": self.classes, "images_hash": config_hash(list(train.hashes)),
                "pixels_hash": array_hash(arr),
                "conditions": self.cond_table, "config": cfg})
            ck = Trainer.latest_checkpoint(workdir)
            if ck is not None:
                trainer.load_checkpoint(ck)
                log.info("gan: resuming from %s at %.3f kimg", ck, trainer.nimg / 1000)
            self._save_grid(workdir / "grids" / "reals.png", arr, cond)
        labels = torch.from_numpy(cond) if self.c_dim > 0 else None
        grid_fn = (lambda tr, nimg: self._fake_grid(tr, workdir / "grids" / f"fakes{nimg / 1000:09.3f}.png")) \
            if workdir is not None else None
        threads_before = torch.get_num_threads()
        if cfg["num_threads"]:
            torch.set_num_threads(int(cfg["num_threads"]))
        try:
            trainer.train(images, labels, workdir, grid_fn=grid_fn, verbose=bool(cfg["verbose"]))
        finally:
            torch.set_num_threads(threads_before)
        self.G, self.G_ema, self.D = trainer.G, trainer.G_ema, trainer.D
        self.nimg = trainer.nimg
        self.augment_p = float(trainer.augment.p)
        self.seconds_per_kimg = trainer.seconds_per_kimg()
        self._centers = {}
        return self

    def _grid_conditions(self, n_rows: int = 10) -> list[int]:
        return list(range(min(self.c_dim, n_rows))) if self.c_dim > 0 else [-1]

    def _save_grid(self, path: Path, arr: np.ndarray, cond: np.ndarray, cols: int = 8) -> None:
        from PIL import Image

        from ...atomic import atomic_path
        from .trainer import make_grid

        rows = []
        for c in self._grid_conditions():
            idx = np.flatnonzero(cond == c) if c >= 0 else np.arange(len(arr))
            pick = np.concatenate([idx[:cols], np.repeat(idx[:1], max(0, cols - len(idx)))])
            rows.append(arr[pick])
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            Image.fromarray(make_grid(np.concatenate(rows), len(rows))).save(tmp, format="PNG")

    def _fake_grid(self, trainer, path: Path, cols: int = 8) -> None:
        conds = self._grid_conditions()
        z_seeds = [[1_000_003 * (r + 1) + k for k in range(cols)] for r in range(len(conds))]
        ims = [self._synthesize(trainer.G_ema, [c] * cols, s, psi=1.0) for c, s in zip(conds, z_seeds)]
        self._save_grid(path, np.concatenate(ims), np.repeat(np.array(conds), cols), cols)

    # ------------------------------------------------------------------ sampling
    def _class_center(self, G, cond: int):
        """Per-conditioning-label average w (truncation centre) from 2,000 fixed latents."""
        import torch

        if cond not in self._centers:
            gen = torch.Generator().manual_seed(12345)
            z = torch.randn(2000, G.z_dim, generator=gen).to(self._dev_of(G))
            c = self._onehot([cond] * 2000, G)
            with torch.no_grad():
                self._centers[cond] = G.mapping(z, c)[:, 0].mean(0)
        return self._centers[cond]

    @staticmethod
    def _dev_of(G):
        return next(G.parameters()).device

    def _onehot(self, conds: list[int], G):
        import torch

        if self.c_dim == 0:
            return None
        return torch.eye(self.c_dim, device=self._dev_of(G))[torch.tensor(conds)]

    def _synthesize(self, G, conds: list[int], seeds: list[int], psi: float) -> np.ndarray:
        """uint8 (N, R, R, 3) images: z and noise of image k drawn from a torch.Generator seeded with ``seeds[k]``."""
        import torch

        dev = self._dev_of(G)
        mode = self.config["noise_mode"]
        gb = max(1, int(self.config["gen_batch"]))
        out = []
        with torch.no_grad():
            for s in range(0, len(seeds), gb):
                zs, noises = [], []
                for seed in seeds[s:s + gb]:
                    g = torch.Generator().manual_seed(int(seed) % (2 ** 63))
                    zs.append(torch.randn(G.z_dim, generator=g))
                    if mode == "random":
                        noises.append([torch.randn(1, r, r, generator=g) for r in G.synthesis.noise_shapes()])
                z = torch.stack(zs).to(dev)
                cc = conds[s:s + gb]
                centers = (torch.stack([self._class_center(G, c) for c in cc]) if psi != 1.0 and self.c_dim > 0
                           else None)  # per-class truncation centres; unconditional: the tracked w average
                ws = G.mapping(z, self._onehot(cc, G), truncation_psi=psi, w_center=centers)
                if mode == "random":
                    noise = [torch.stack([n[i] for n in noises]).to(dev) for i in range(len(noises[0]))]
                    img = G.synthesis(ws, noise=noise, fused=G.fused_modconv)
                else:
                    img = G.synthesis(ws, noise_mode=mode, fused=G.fused_modconv)
                img = (img.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
                out.append(img.permute(0, 2, 3, 1).cpu().numpy())
        return np.concatenate(out)

    def generate(self, class_index: int, indices: list[int], seeds: list[int], size: int,
                 truncation_psi: float | None = None) -> list[np.ndarray]:
        """One uint8 (size, size, 3) image per seed for class ``class_index`` (truncation ``psi`` from config by default)."""
        from ...data import resize_square

        if not 0 <= class_index < len(self.classes):
            raise UserInputError(f"gan: class index {class_index} out of range (classes: {self.classes})")
        psi = float(self.config["truncation_psi"] if truncation_psi is None else truncation_psi)
        if self._nvlabs is not None:
            images = self._generate_pkl(class_index, seeds, psi)
        else:
            if self.G_ema is None:
                raise UserInputError("gan: call fit() or load a saved generator before sampling")
            conds = []
            for seed in seeds:  # metadata value (when conditioning on one) from the image's own seed
                u = float(np.random.default_rng([int(seed), 7]).random())
                conds.append(self._condition_for(class_index, u))
            images = self._synthesize(self.G_ema, conds, seeds, psi)
        return [resize_square(im, size) for im in images]  # the data layer's resize policy, only when size differs

    # ------------------------------------------------------------------ NVlabs pickles
    def _load_pkl(self, train: TrainingSet | None) -> None:
        from .nvlabs import load_nvlabs_generator

        self._nvlabs = load_nvlabs_generator(self.config["gan_pkl"], bool(self.config["allow_pickle"]), self._device())
        c_dim = int(getattr(self._nvlabs, "c_dim", 0))
        if c_dim not in (0, len(self.classes)):
            raise UserInputError(f"gan_pkl: the network has {c_dim} class labels but the dataset has "
                                 f"{len(self.classes)} classes ({self.classes})")
        self.c_dim = c_dim

    def _generate_pkl(self, class_index: int, seeds: list[int], psi: float) -> np.ndarray:
        import torch

        G = self._nvlabs
        dev = self._dev_of(G)
        out = []
        with torch.no_grad():
            for seed in seeds:
                z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(int(seed) % (2 ** 63))).to(dev)
                c = torch.zeros(1, G.c_dim, device=dev)
                if G.c_dim:
                    c[0, class_index] = 1
                img = G(z, c, truncation_psi=psi, noise_mode="const")
                out.append((img.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())
        return np.concatenate(out)

    # ------------------------------------------------------------------ save / load
    def save(self, path: Path) -> None:
        """``config.json`` + ``state.json`` + ``G_ema``/``G``/``D`` safetensors (no pickle)."""
        from ...atomic import write_json
        from .trainer import save_module

        path = Path(path)
        super().save(path)
        state = {"c_dim": self.c_dim, "cond_table": self.cond_table, "nimg": self.nimg, "augment_p": self.augment_p,
                 "seconds_per_kimg": self.seconds_per_kimg}
        if self._nvlabs is None:
            if self.G_ema is None:
                raise UserInputError("gan: nothing to save; call fit() first")
            for name in ("G_ema", "G", "D"):
                save_module(getattr(self, name), path / f"{name}.safetensors")
        else:
            from ...hashing import file_hash
            state["gan_pkl_hash"] = file_hash(self.config["gan_pkl"])
        write_json(path / "state.json", state)

    def load_state(self, path: Path) -> None:
        from .trainer import load_module, build_networks

        path = Path(path)
        state = json.loads((path / "state.json").read_text())
        self.c_dim, self.cond_table = int(state["c_dim"]), [list(r) for r in state["cond_table"]]
        self.nimg, self.augment_p = int(state["nimg"]), float(state["augment_p"])
        self.seconds_per_kimg = float(state.get("seconds_per_kimg", float("nan")))
        if self.config["gan_pkl"]:
            self._load_pkl(None)
            return
        device = self._device()
        self.G, self.D = build_networks(self.config, self.c_dim)
        self.G_ema = copy.deepcopy(self.G)  # same architecture; weights come from the file (no second D built)
        for name in ("G_ema", "G", "D"):
            module = getattr(self, name)
            load_module(module, path / f"{name}.safetensors")
            module.to(device).eval().requires_grad_(False)
        self._centers = {}
