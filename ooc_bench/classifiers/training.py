"""The training recipe: TrainConfig → train_classifier(uint8 arrays) → TrainResult (metrics, curves, embed, save)."""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..config import option
from ..errors import UserInputError
from .augment import AugmentConfig, augment_batch
from .evaluate import classification_metrics, jsonable
from .registry import ModelInfo, create_model

MODES = ("linear", "finetune", "two-stage")
OPTIMIZERS = ("adamw", "sgd", "rmsprop")
SCHEDULES = ("cosine", "plateau", "none")
STOP_METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "loss")
CHECKPOINT_FORMAT = "ooc-bench-classifier/1"


@dataclass
class TrainConfig:
    """One training recipe; the same config gives the same result for the same data and seed (on CPU).

    ``mode``: "linear" trains only a new head on a frozen backbone (backbone BatchNorm statistics frozen too);
    "finetune" trains all layers; "two-stage" trains the head for ``stage1_epochs`` (default: half of ``epochs``,
    at least 1) and then all layers for the remaining epochs at ``lr * stage2_lr_factor``.
    ``early_stopping``: the validation metric to monitor ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc",
    "loss") or None to keep the last epoch; the best epoch's weights are restored at the end of each stage.
    ``img_size`` None uses the model's default input size; ``pretrained`` True/"optional"/False (see create_model);
    ``head`` "linear" or "bn-dropout" (GAP → BatchNorm → Dropout → Linear, the Keras recipe of the source projects).
    """

    model: str = option("cnn", "alias (ooc-bench list) or any timm model name")
    mode: str = option("finetune", "linear (head only) | finetune (all layers) | two-stage (head, then all at lr/10)",
                       choices=MODES)
    epochs: int = option(10, "epochs in total (two-stage: split between the stages)", low=1)
    batch_size: int = option(32, "batch size (BatchNorm needs >= 2)", low=2)
    img_size: int | None = option(None, "square input size (none: the model's; in a spec: [data] image_size)", low=1)
    lr: float = option(1e-3, "learning rate", low=0.0, low_open=True)
    optimizer: str = option("adamw", "adamw | sgd | rmsprop")
    schedule: str = option("cosine", "cosine | plateau | none")
    weight_decay: float = option(1e-4, "weight decay", low=0.0)
    label_smoothing: float = option(0.0, "label smoothing", low=0.0, high=1.0, high_open=True)
    class_weighted: bool = option(False, "weight the loss by inverse class frequency")
    early_stopping: str | None = option("accuracy", "validation metric to monitor (accuracy, balanced_accuracy, "
                                                    "f1_macro, roc_auc, loss) or none: keep the last epoch")
    patience: int = option(5, "epochs without improvement before stopping", low=1)
    pretrained: bool | str = option(True, "ImageNet weights: true (required), optional, or false (random init)")
    weights: str | None = option(None, "local weights file, checkpoint folder or JSON mapping model -> file")
    augment: bool = option(True, "flips, 90-degree rotations and a small affine, on the device")
    color_jitter: float = option(0.0, "brightness/contrast jitter strength (0: off)", low=0.0)
    in_chans: int = option(3, "input channels: 3 (grey replicated) or 1", choices=(1, 3))
    stage1_epochs: int | None = option(None, "two-stage: frozen-backbone epochs (none: half)", low=1)
    stage2_lr_factor: float = option(0.1, "two-stage: learning-rate factor of the second stage", low=0.0, low_open=True)
    drop_rate: float | None = option(None, "dropout before the classifier (none: the model's; bn-dropout 0.5)",
                                     low=0.0, high=1.0)
    head: str = option("linear", "linear (the model's own) | bn-dropout (GAP, BatchNorm, Dropout, Linear)",
                       choices=("linear", "bn-dropout"))
    device: str = option("auto", "auto | cpu | cuda | cuda:N", runtime=True)
    amp: bool = option(True, "mixed precision on CUDA (bf16 or fp16)")
    channels_last: bool = option(True, "channels-last memory format on CUDA", runtime=True)

    def validate(self) -> None:
        """Raise UserInputError for an invalid option value, naming the option."""
        def bad(opt: str, msg: str) -> UserInputError:
            return UserInputError(f"invalid --{opt.replace('_', '-')}: {msg}")

        if self.mode not in MODES:
            raise bad("mode", f"{self.mode!r}; choose one of {', '.join(MODES)}")
        if self.optimizer.lower() not in OPTIMIZERS:
            raise bad("optimizer", f"{self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.schedule.lower() not in SCHEDULES:
            raise bad("schedule", f"{self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if self.early_stopping not in (None, "none", *STOP_METRICS):
            raise bad("early_stopping", f"{self.early_stopping!r}; choose one of {', '.join(STOP_METRICS)} or none")
        if self.epochs < 1 or (self.mode == "two-stage" and self.epochs < 2):
            raise bad("epochs", f"{self.epochs} (need >= 1, and >= 2 for two-stage)")
        if self.batch_size < 2:
            raise bad("batch_size", f"{self.batch_size} (need >= 2: BatchNorm needs two images per batch)")
        if self.img_size is not None and self.img_size < 1:
            raise bad("img_size", str(self.img_size))
        if not self.lr > 0:
            raise bad("lr", str(self.lr))
        if not 0 <= self.label_smoothing < 1:
            raise bad("label_smoothing", str(self.label_smoothing))
        if self.patience < 1:
            raise bad("patience", str(self.patience))

    def stage_plan(self) -> list[tuple[str, int, float]]:
        """(trainable part, epochs, learning rate) per stage."""
        if self.mode == "linear":
            return [("head", self.epochs, self.lr)]
        if self.mode == "finetune":
            return [("all", self.epochs, self.lr)]
        e1 = self.stage1_epochs if self.stage1_epochs is not None else max(1, self.epochs // 2)
        e1 = min(max(1, e1), self.epochs - 1)
        return [("head", e1, self.lr), ("all", self.epochs - e1, self.lr * self.stage2_lr_factor)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able copy."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Inverse of to_dict (unknown keys rejected with a clear message)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise UserInputError(f"unknown classifier option(s): {', '.join(unknown)}")
        return cls(**d)


# ---------------------------------------------------------------- preprocessing


@dataclass
class Preprocess:
    """uint8 images → model input: resize to ``img_size``, scale to [0,1], (greyscale), normalise with mean/std."""

    img_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"
    in_chans: int = 3

    def to_dict(self) -> dict[str, Any]:
        return {"img_size": self.img_size, "mean": list(self.mean), "std": list(self.std),
                "interpolation": self.interpolation, "in_chans": self.in_chans}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Preprocess":
        return cls(int(d["img_size"]), tuple(d["mean"]), tuple(d["std"]), d.get("interpolation", "bilinear"),
                   int(d.get("in_chans", 3)))

    def as_uint8_nchw(self, x: np.ndarray, device: Any = "cpu", chunk: int = 256) -> "Any":
        """Check and convert N x H x W (x 3|1) uint8 images to a uint8 (N, 3, S, S) tensor at ``img_size`` on
        ``device``; resizing (antialiased, the model's interpolation) runs once here, in chunks, not per epoch."""
        import torch

        x = np.asarray(x)
        if x.dtype != np.uint8:
            raise UserInputError(f"images must be uint8 arrays (N x H x W x 3), got dtype {x.dtype}")
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4 or x.shape[-1] not in (1, 3, 4):
            raise UserInputError(f"images must be N x H x W x 3 uint8 arrays, got shape {x.shape}")
        x = x[..., :3] if x.shape[-1] == 4 else x
        out = torch.empty((len(x), 3, self.img_size, self.img_size), dtype=torch.uint8, device=device)
        for i in range(0, len(x), chunk):
            t = torch.from_numpy(np.ascontiguousarray(x[i:i + chunk])).to(device).permute(0, 3, 1, 2)
            if t.shape[1] == 1:
                t = t.expand(-1, 3, -1, -1)
            if t.shape[-2:] != (self.img_size, self.img_size):
                mode = self.interpolation if self.interpolation in ("bilinear", "bicubic", "nearest") else "bilinear"
                kw = {"antialias": True, "align_corners": False} if mode != "nearest" else {}
                t = torch.nn.functional.interpolate(t.float(), size=(self.img_size, self.img_size), mode=mode, **kw)
                t = t.round_().clamp_(0, 255).to(torch.uint8)
            out[i:i + len(t)] = t
        return out

    def normalize(self, xb: "Any", channels_last: bool = False) -> "Any":
        """uint8 (N, 3, S, S) or float [0,1] batch on the compute device → normalised float input."""
        import torch

        x = xb.float().div_(255.0) if xb.dtype == torch.uint8 else xb
        if self.in_chans == 1:
            x = x.mean(1, keepdim=True)
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        x = (x - mean) / std
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x


# ---------------------------------------------------------------- result


@dataclass
class TrainResult:
    """A trained classifier with its test/val metrics, learning curves and provenance."""

    model: Any
    info: ModelInfo
    config: TrainConfig
    classes: list[str]
    seed: int
    preprocess: Preprocess
    metrics: dict[str, float] = field(default_factory=dict)
    val_metrics: dict[str, float] = field(default_factory=dict)
    confusion: list[list[int]] | None = None
    val_confusion: list[list[int]] | None = None
    curves: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    device: str = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)  # free-form provenance added by callers (data hashes, paths)
    test_proba: np.ndarray | None = None  # (N_test, n_classes) softmax scores of the kept model, not in record()

    def _batches(self, x: np.ndarray, fn: Callable, batch_size: int) -> np.ndarray:
        import torch

        from ..runtime import amp_dtype

        dev = next(self.model.parameters()).device
        dtype = amp_dtype(dev) if self.config.amp else None
        self.model.eval()
        outs = []
        n = len(x)
        with torch.inference_mode():
            for i in range(0, n, batch_size):
                xb = self.preprocess.as_uint8_nchw(x[i:i + batch_size], dev)
                xb = self.preprocess.normalize(xb, channels_last=dev.type == "cuda" and self.config.channels_last)
                with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
                    outs.append(fn(xb).float().cpu().numpy())
        if not outs:
            return np.zeros((0, 0), dtype=np.float32)
        return np.concatenate(outs).astype(np.float32)

    def embed(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """(N, D) penultimate (pre-logits) features of uint8 N x H x W x 3 images, with the training preprocessing."""
        m = self.model
        return self._batches(x, lambda t: m.forward_head(m.forward_features(t), pre_logits=True).flatten(1), batch_size)

    def predict_proba(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """(N, n_classes) softmax class probabilities of uint8 N x H x W x 3 images."""
        return self._batches(x, lambda t: self.model(t).float().softmax(1), batch_size)

    def predict(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """(N,) predicted class indices."""
        return self.predict_proba(x, batch_size).argmax(1)

    def model_config(self) -> dict[str, Any]:
        """What is needed to rebuild the network and preprocess images (saved as model_config.json)."""
        return {"format": CHECKPOINT_FORMAT, "model": self.info.name, "timm_name": self.info.timm_name,
                "num_classes": len(self.classes), "classes": list(self.classes), "in_chans": self.info.in_chans,
                "drop_rate": self.config.drop_rate, "head": self.config.head, "preprocess": self.preprocess.to_dict()}

    def record(self) -> dict[str, Any]:
        """JSON-able record: metrics, val metrics, confusion matrices, curves, config, seed, versions, weight provenance, timings."""
        from ..runtime import versions

        return jsonable({
            "metrics": self.metrics, "val_metrics": self.val_metrics, "confusion": self.confusion,
            "val_confusion": self.val_confusion, "curves": self.curves, "best_epoch": self.best_epoch,
            "config": self.config.to_dict(), "seed": self.seed, "classes": list(self.classes),
            "model": self.info.to_dict(), "preprocess": self.preprocess.to_dict(),
            "weights": {"pretrained": self.info.pretrained, "source": self.info.pretrained_source,
                        "sha256": self.info.weights_sha256, "notes": list(self.info.notes)},
            "sizes": self.sizes, "timings": self.timings, "device": self.device, "versions": versions(),
            "extra": self.extra,
        })

    def save(self, out_dir: str | Path) -> Path:
        """Write record.json, model.safetensors and model_config.json into ``out_dir`` (each atomically)."""
        from safetensors.torch import save_file

        from ..atomic import atomic_path, write_json

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.model.state_dict().items()}
        with atomic_path(out / "model.safetensors") as tmp:
            save_file(state, str(tmp), metadata={"format": CHECKPOINT_FORMAT, "timm_name": self.info.timm_name})
        write_json(out / "model_config.json", self.model_config())
        write_json(out / "record.json", self.record())
        return out


def load_checkpoint(path: str | Path, device: str = "cpu") -> TrainResult:
    """Rebuild a TrainResult (model in eval mode, metrics from record.json when present) from a folder written by save()."""
    import torch
    from safetensors.torch import load_file

    from .registry import apply_head, build_architecture, count_params

    root = Path(path)
    cfg_path = root / "model_config.json"
    if not cfg_path.is_file() or not (root / "model.safetensors").is_file():
        raise UserInputError(f"{root} is not a classifier checkpoint folder (needs model_config.json and "
                             "model.safetensors, as written by `ooc-bench train --out DIR`)")
    mc = json.loads(cfg_path.read_text())
    with torch.device("cpu"):
        model = build_architecture(mc["timm_name"], mc["num_classes"], mc.get("in_chans", 3), mc.get("drop_rate"))
        drop = mc.get("drop_rate")
        apply_head(model, mc.get("head", "linear"), mc["num_classes"], 0.5 if drop is None else drop)
    model.load_state_dict(load_file(str(root / "model.safetensors")), strict=True)
    model.to(device).eval()
    pre = Preprocess.from_dict(mc["preprocess"])
    rec = json.loads((root / "record.json").read_text()) if (root / "record.json").is_file() else {}
    config = TrainConfig.from_dict(rec["config"]) if "config" in rec else TrainConfig(model=mc["model"])
    config.device = str(device)
    w = rec.get("weights", {})
    info = ModelInfo(name=mc["model"], timm_name=mc["timm_name"], pretrained_source=w.get("source", "none"),
                     input_size=pre.img_size, mean=pre.mean, std=pre.std, interpolation=pre.interpolation,
                     n_params=count_params(model), pretrained=bool(w.get("pretrained", False)),
                     weights_sha256=w.get("sha256"), num_classes=mc["num_classes"], in_chans=pre.in_chans)
    return TrainResult(model=model, info=info, config=config, classes=list(mc["classes"]), seed=int(rec.get("seed", 0)),
                       preprocess=pre, metrics=rec.get("metrics") or {}, val_metrics=rec.get("val_metrics") or {},
                       confusion=rec.get("confusion"), curves=rec.get("curves") or [], best_epoch=rec.get("best_epoch"),
                       device=str(device))


# ---------------------------------------------------------------- training


def _check_split(name: str, data: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise UserInputError(f"{name} must be a pair (images uint8 N x H x W x 3, labels int64 N)")
    x, y = np.asarray(data[0]), np.asarray(data[1])
    if len(x) != len(y):
        raise UserInputError(f"{name}: {len(x)} images but {len(y)} labels")
    if len(x) == 0:
        raise UserInputError(f"{name} split is empty")
    if not np.issubdtype(y.dtype, np.integer):
        raise UserInputError(f"{name} labels must be integers (class indices), got {y.dtype}")
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= k:
        raise UserInputError(f"{name} labels must lie in 0..{k - 1} (one per class), found {y.min()}..{y.max()}")
    return x, y


def _set_trainable(model: Any, part: str) -> list[Any]:
    """Freeze all but the classifier head (``part="head"``) or unfreeze everything; returns the trainable params."""
    head = model.get_classifier()
    head_ids = {id(p) for p in head.parameters()}
    for p in model.parameters():
        p.requires_grad_(part == "all" or id(p) in head_ids)
    return [p for p in model.parameters() if p.requires_grad]


def _train_mode(model: Any, part: str) -> None:
    """train() everywhere, but frozen-backbone BatchNorm layers keep their (pretrained) running statistics."""
    from torch import nn

    model.train()
    if part == "head":
        head_mods = set(model.get_classifier().modules())
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m not in head_mods:
                m.eval()


def _make_optimizer(name: str, params: list[Any], lr: float, wd: float):
    import torch

    name = name.lower()
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=0.9, momentum=0.9, eps=1e-3, weight_decay=wd)
    return torch.optim.AdamW(params, lr=lr, weight_decay=wd)


def _evaluate(model: Any, data: Any, y: np.ndarray, pre: Preprocess, device: Any, batch_size: int,
              amp: Any, channels_last: bool, loss_fn: Any, classes: list[str], return_proba: bool = False):
    """(loss, metrics, confusion) of ``model`` on uint8 tensor ``data`` (on its storage device); with
    ``return_proba`` also the (N, K) softmax scores."""
    import torch

    model.eval()
    probs, loss_sum = [], 0.0
    yt = torch.from_numpy(y)
    with torch.inference_mode():
        for i in range(0, len(y), batch_size):
            xb = pre.normalize(data[i:i + batch_size].to(device, non_blocking=True), channels_last)
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                logits = model(xb)
            logits = logits.float()
            yb = yt[i:i + batch_size].to(device)
            loss_sum += float(loss_fn(logits, yb)) * len(yb)
            probs.append(logits.softmax(1).cpu().numpy())
    proba = np.concatenate(probs)
    metrics, confusion = classification_metrics(y, proba, classes)
    if return_proba:
        return loss_sum / len(y), metrics, confusion, proba
    return loss_sum / len(y), metrics, confusion


def train_classifier(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray] | None,
                     test: tuple[np.ndarray, np.ndarray] | None = None, classes: list[str] | None = None,
                     config: TrainConfig | None = None, seed: int = 0,
                     progress: Callable[[dict[str, Any]], None] | None = None) -> TrainResult:
    """Train ``config.model`` on uint8 N x H x W x 3 images with int64 labels; early-stop on ``val``; evaluate on ``test``.

    Images are resized once to ``config.img_size`` and kept as uint8 (on the GPU when it fits); every batch is
    converted to float, augmented and normalised on the training device. ``progress`` is called after each epoch
    with that epoch's curve row. Deterministic on CPU for a given seed.
    """
    import torch

    from ..runtime import amp_dtype, pick_device, seed_everything

    cfg = copy.deepcopy(config) if config is not None else TrainConfig()
    cfg.validate()
    cfg.optimizer, cfg.schedule = cfg.optimizer.lower(), cfg.schedule.lower()  # validate() accepts any case
    if classes is None:
        k = int(max(np.max(s[1]) for s in (train, val, test) if s is not None)) + 1
        classes = [str(i) for i in range(k)]
    classes = [str(c) for c in classes]
    k = len(classes)
    if k < 2:
        raise UserInputError(f"need at least two classes to train a classifier, got {classes}")
    x_tr, y_tr = _check_split("train", train, k)
    x_va, y_va = _check_split("val", val, k) if val is not None else (None, None)
    x_te, y_te = _check_split("test", test, k) if test is not None else (None, None)
    counts = np.bincount(y_tr, minlength=k)
    if (counts == 0).any():
        missing = [classes[i] for i in np.flatnonzero(counts == 0)]
        raise UserInputError(f"the training split has no images of class(es) {missing}")

    t0 = time.perf_counter()
    seed_everything(seed)
    device = pick_device(cfg.device)
    amp = amp_dtype(device) if cfg.amp else None
    channels_last = cfg.channels_last and device.type == "cuda"
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    model, info = create_model(cfg.model, num_classes=k, pretrained=cfg.pretrained, weights=cfg.weights,
                               in_chans=cfg.in_chans, drop_rate=cfg.drop_rate, head=cfg.head)
    img_size = int(cfg.img_size or info.input_size)
    if img_size < info.min_size:
        raise UserInputError(f"--working-size {img_size} is too small for {cfg.model!r} ({info.timm_name}): it needs "
                             f"at least {info.min_size} px (its total stride); use --working-size {max(info.min_size, 32)} "
                             "or more")
    cfg.img_size = img_size
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    pre = Preprocess(img_size, info.mean, info.std, info.interpolation, cfg.in_chans)

    # uint8 data, resized once; on the GPU when it fits in a quarter of its memory
    store = torch.device("cpu")
    n_bytes = sum(len(a) for a in (x_tr, x_va, x_te) if a is not None) * 3 * img_size**2
    if device.type == "cuda" and n_bytes < 0.25 * torch.cuda.get_device_properties(device).total_memory:
        store = device
    d_tr = pre.as_uint8_nchw(x_tr, store)
    d_va = pre.as_uint8_nchw(x_va, store) if x_va is not None else None
    d_te = pre.as_uint8_nchw(x_te, store) if x_te is not None else None
    if store.type == "cpu" and device.type == "cuda":
        d_tr = d_tr.pin_memory()
    t_prep = time.perf_counter() - t0

    weight = None
    if cfg.class_weighted:
        weight = torch.tensor(len(y_tr) / (k * counts), dtype=torch.float32, device=device)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)
    eval_loss_fn = torch.nn.CrossEntropyLoss()
    aug_cfg = AugmentConfig(color_jitter=cfg.color_jitter)
    g_order = torch.Generator().manual_seed(seed)
    g_aug = torch.Generator().manual_seed(seed + 1_000_003)
    yt_tr = torch.from_numpy(y_tr)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)

    monitor = None if cfg.early_stopping in (None, "none") or d_va is None else cfg.early_stopping
    sign = -1.0 if monitor == "loss" else 1.0
    best_score, best_state, best_epoch = -math.inf, None, None
    curves: list[dict[str, Any]] = []
    epoch = 0
    bs = cfg.batch_size
    n = len(y_tr)
    t_data = t_compute = t_eval = 0.0
    val_metrics, val_conf = {}, None
    for stage_i, (part, n_epochs, lr) in enumerate(cfg.stage_plan()):
        params = _set_trainable(model, part)
        opt = _make_optimizer(cfg.optimizer, params, lr, cfg.weight_decay)
        n_batches = n // bs + (1 if n % bs >= 2 else 0)  # a last batch of one image is dropped (BatchNorm)
        sched = None
        if cfg.schedule == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, n_epochs * n_batches))
        elif cfg.schedule == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.1, patience=max(1, cfg.patience // 2))
        bad_epochs = 0
        for _ in range(n_epochs):
            epoch += 1
            te = time.perf_counter()
            _train_mode(model, part)
            perm = torch.randperm(n, generator=g_order)
            loss_sum, correct, seen = 0.0, 0, 0
            for b in range(n_batches):
                ta = time.perf_counter()
                idx = perm[b * bs:(b + 1) * bs]
                xb = d_tr[idx.to(store)].to(device, non_blocking=True).float().div_(255.0)
                if cfg.augment:
                    xb = augment_batch(xb, g_aug, aug_cfg)
                xb = pre.normalize(xb, channels_last)
                yb = yt_tr[idx].to(device, non_blocking=True)
                tb = time.perf_counter()
                with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                    logits = model(xb)
                    loss = loss_fn(logits.float(), yb)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                if cfg.schedule == "cosine":
                    sched.step()
                loss_sum += float(loss.detach()) * len(idx)
                correct += int((logits.detach().argmax(1) == yb).sum())
                seen += len(idx)
                t_data += tb - ta
                t_compute += time.perf_counter() - tb
            row: dict[str, Any] = {"epoch": epoch, "stage": stage_i + 1, "trainable": part,
                                   "lr": float(opt.param_groups[0]["lr"]),
                                   "train_loss": loss_sum / max(seen, 1), "train_accuracy": correct / max(seen, 1)}
            tv = time.perf_counter()
            if d_va is not None:
                v_loss, v_m, v_conf = _evaluate(model, d_va, y_va, pre, device, bs * 2, amp, channels_last,
                                                eval_loss_fn, classes)
                row.update({"val_loss": v_loss, "val_accuracy": v_m["accuracy"],
                            "val_balanced_accuracy": v_m["balanced_accuracy"], "val_f1_macro": v_m["f1_macro"],
                            "val_roc_auc": v_m["roc_auc"]})
            t_eval += time.perf_counter() - tv
            row["time_s"] = time.perf_counter() - te
            curves.append(row)
            if progress is not None:
                progress(dict(row))
            if d_va is not None:
                score = sign * (v_loss if monitor == "loss" else v_m.get(monitor or "accuracy", math.nan))
                if sched is not None and cfg.schedule == "plateau":
                    sched.step(score if math.isfinite(score) else -math.inf)
                if monitor is not None:
                    if math.isfinite(score) and score > best_score:
                        best_score, best_epoch, bad_epochs = score, epoch, 0
                        best_state = {kk: v.detach().clone() for kk, v in model.state_dict().items()}
                        val_metrics, val_conf = v_m, v_conf
                    else:
                        bad_epochs += 1
                        if bad_epochs >= cfg.patience:
                            break
        if best_state is not None:
            model.load_state_dict(best_state)
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    if best_epoch is None:  # nothing monitored (or never finite): the model is the last epoch's, already evaluated
        best_epoch = epoch
        if d_va is not None:
            val_metrics, val_conf = v_m, v_conf
    metrics, conf, te_proba = {}, None, None
    if d_te is not None:
        te_loss, metrics, conf, te_proba = _evaluate(model, d_te, y_te, pre, device, bs * 2, amp, channels_last,
                                                     eval_loss_fn, classes, return_proba=True)
        metrics["loss"] = te_loss
    total = time.perf_counter() - t0
    timings = {"total_s": total, "prepare_s": t_prep, "train_data_s": t_data, "train_compute_s": t_compute,
               "eval_s": t_eval, "epochs_run": float(epoch),
               "train_images_per_s": float(n * epoch / max(t_data + t_compute, 1e-9))}
    return TrainResult(model=model, info=info, config=cfg, classes=classes, seed=seed, preprocess=pre,
                       metrics=metrics, val_metrics=val_metrics, confusion=conf, val_confusion=val_conf,
                       curves=curves, best_epoch=best_epoch, timings=timings,
                       sizes={"train": len(y_tr), "val": 0 if y_va is None else len(y_va),
                              "test": 0 if y_te is None else len(y_te)},
                       device=str(device), test_proba=te_proba)
