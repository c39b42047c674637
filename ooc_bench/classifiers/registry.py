"""Classifier registry: short aliases (mnv2, mnv3, effb0…effb7, xception, cnn) or any timm name → a model and its ModelInfo."""

from __future__ import annotations

import difflib
import functools
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import UserInputError
from .architectures import CNN_NAME, build_architecture  # noqa: F401 - re-exported

# alias -> (timm name for random init, timm name when pretrained weights are wanted, description)
ALIASES: dict[str, tuple[str, str, str]] = {
    "cnn": (CNN_NAME, CNN_NAME, "small from-scratch CNN (4 conv blocks), for quick CPU runs"),
    "mnv2": ("mobilenetv2_100", "mobilenetv2_100", "MobileNetV2 1.0 (the thesis' two-stage recipe)"),
    "mnv3": ("mobilenetv3_large_100", "mobilenetv3_large_100", "MobileNetV3-Large 1.0 (OOC dataset paper baseline)"),
    "mnv3s": ("mobilenetv3_small_100", "mobilenetv3_small_100", "MobileNetV3-Small 1.0"),
    **{f"effb{i}": (f"efficientnet_b{i}", f"efficientnet_b{i}", f"EfficientNet-B{i}") for i in range(6)},
    "effb6": ("efficientnet_b6", "tf_efficientnet_b6", "EfficientNet-B6 (pretrained: tf_efficientnet_b6, 528 px)"),
    "effb7": ("efficientnet_b7", "tf_efficientnet_b7", "EfficientNet-B7 (pretrained: tf_efficientnet_b7, 600 px)"),
    "xception": ("legacy_xception", "legacy_xception", "Xception (Keras-style; xception41/65/71 by timm name)"),
}


@dataclass
class ModelInfo:
    """What was built: names, where its weights came from, and the preprocessing it expects."""

    name: str
    timm_name: str
    pretrained_source: str  # "hub:<hf id>", "url:<url>", "file:<path>", or "none"
    input_size: int  # default square input size of the pretrained config
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str
    n_params: int
    pretrained: bool = False
    weights_sha256: str | None = None
    min_size: int = 32
    num_classes: int = 2
    in_chans: int = 3
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able copy."""
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d


def _timm():
    import timm

    return timm


def resolve_model_name(name: str, pretrained: bool | str = False) -> str:
    """An alias or timm model name → the timm architecture name (``"cnn"`` for the built-in CNN).

    ``pretrained`` picks the pretrained-capable variant where they differ (effb6/effb7 → tf_efficientnet_b6/b7).
    Raises UserInputError for unknown names, with close matches.
    """
    key = str(name).strip()
    if key.lower() in ALIASES:
        plain, with_weights, _ = ALIASES[key.lower()]
        return with_weights if pretrained else plain
    timm = _timm()
    base = key.split(".", 1)[0]
    if timm.is_model(base):
        return key
    candidates = list(ALIASES) + timm.list_models()
    close = difflib.get_close_matches(key.lower(), candidates, n=4, cutoff=0.6)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UserInputError(
        f"unknown model {name!r}.{hint} Use an alias ({', '.join(ALIASES)}) or any timm model name "
        "(run `ooc-bench list` to see the aliases)."
    )


def _alias_of(timm_name: str) -> str | None:
    for alias, (plain, with_weights, _) in ALIASES.items():
        if timm_name in (plain, with_weights):
            return alias
    return None


HEADS = ("linear", "bn-dropout")


def apply_head(model: Any, head: str, num_classes: int, drop: float = 0.5) -> Any:
    """Replace the final linear layer: "linear" keeps it; "bn-dropout" puts BatchNorm → Dropout(``drop``) → Linear
    after global average pooling (the Keras transfer-learning head of the source projects)."""
    from torch import nn

    if head not in HEADS:
        raise UserInputError(f"invalid --head {head!r}; choose one of {', '.join(HEADS)}")
    if head == "linear":
        return model
    old = model.get_classifier()
    if not isinstance(old, nn.Linear):
        raise UserInputError(f"--head {head} needs a model whose classifier is one linear layer; "
                             f"{type(model).__name__} has {type(old).__name__}")
    new = nn.Sequential(nn.BatchNorm1d(old.in_features), nn.Dropout(drop), nn.Linear(old.in_features, num_classes))
    for name, module in model.named_modules():
        if module is old:
            parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
            setattr(parent, name.rpartition(".")[2], new)
            break
    if getattr(model, "head", None) is old:  # the built-in CNN
        model.head = new
    if model.get_classifier() is not new:
        raise UserInputError(f"--head {head}: could not replace the classifier of {type(model).__name__}")
    return model


def data_config(model: Any, in_chans: int = 3) -> dict[str, Any]:
    """Normalisation and default input size from the model's pretrained config (timm.data.resolve_data_config)."""
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    if isinstance(model, _cnn_class()):
        out = {"input_size": cfg["input_size"], "mean": cfg["mean"], "std": cfg["std"], "interpolation": cfg["interpolation"]}
    else:
        out = _timm().data.resolve_data_config({}, model=model)
    mean, std = tuple(float(v) for v in out["mean"]), tuple(float(v) for v in out["std"])
    if in_chans != len(mean):  # timm adapts the first conv for other channel counts: average the statistics
        mean, std = (sum(mean) / len(mean),) * in_chans, (sum(std) / len(std),) * in_chans
    return {"input_size": int(out["input_size"][-1]), "mean": mean, "std": std,
            "interpolation": str(out.get("interpolation", "bilinear"))}


def _cnn_class():
    from .cnn import SmallCNN

    return SmallCNN


def total_stride(model: Any) -> int:
    """The network's output stride (smallest sensible input size)."""
    info = getattr(model, "feature_info", None)
    try:
        if info:
            last = info[-1] if isinstance(info, list) else info.info[-1]
            return int(last["reduction"])
    except (KeyError, IndexError, TypeError, AttributeError):
        pass
    return 32


def count_params(model: Any) -> int:
    """Number of parameters (works on the ``meta`` device)."""
    return int(sum(p.numel() for p in model.parameters()))


@functools.lru_cache(maxsize=None)
def model_summary(name: str, pretrained: bool = False, num_classes: int = 2) -> dict[str, Any]:
    """Parameter count, default input size and normalisation, computed on the ``meta`` device (no memory, no weights)."""
    import torch

    timm_name = resolve_model_name(name, pretrained)
    with torch.device("meta"):
        model = build_architecture(timm_name, num_classes)
    dc = data_config(model)
    return {"name": name, "timm_name": timm_name, "n_params": count_params(model), "input_size": dc["input_size"],
            "mean": dc["mean"], "std": dc["std"], "interpolation": dc["interpolation"], "min_size": total_stride(model)}


def list_models(num_classes: int = 2) -> list[dict[str, Any]]:
    """One row per alias: alias, timm names (random / pretrained), whether ImageNet weights exist, parameter count
    (with a ``num_classes`` head) and default input size."""
    timm = _timm()
    rows = []
    for alias, (plain, with_weights, desc) in ALIASES.items():
        s = model_summary(alias, pretrained=True, num_classes=num_classes)
        cfg = timm.models.get_pretrained_cfg(with_weights) if with_weights != CNN_NAME else None
        has_weights = cfg is not None and bool(getattr(cfg, "hf_hub_id", None) or getattr(cfg, "url", None))
        rows.append({"alias": alias, "timm_name": plain, "pretrained_timm_name": with_weights if has_weights else None,
                     "n_params": s["n_params"], "input_size": s["input_size"], "min_size": s["min_size"],
                     "description": desc})
    return rows


def create_model(name: str, num_classes: int = 2, pretrained: bool | str = False, weights: Any = None,
                 in_chans: int = 3, drop_rate: float | None = None, head: str = "linear", **timm_kwargs: Any):
    """Build a classifier by alias or timm name, with weights from ``weights`` (a file, or a JSON mapping
    model → file), the Hugging Face cache/hub (``pretrained=True``), or random init.

    ``pretrained``: True → ImageNet weights are required (WeightsUnavailableError when none can be had);
    "optional" → use them when obtainable, else random init; False → random init (unless ``weights`` is given).
    ``head``: "linear" (the model's own) or "bn-dropout" (BatchNorm → Dropout → Linear, see apply_head).
    Returns ``(model, ModelInfo)``; the model is on the CPU in train mode.
    """
    from .weights import load_weights

    if num_classes < 1:
        raise UserInputError(f"num_classes must be >= 1, got {num_classes}")
    if in_chans not in (1, 3):
        raise UserInputError(f"in_chans must be 1 or 3, got {in_chans}")
    want = pretrained if isinstance(pretrained, bool) else str(pretrained).lower()
    if want not in (True, False, "optional", "true", "false"):
        raise UserInputError(f"pretrained must be true, false or 'optional', got {pretrained!r}")
    want = {"true": True, "false": False}.get(want, want) if isinstance(want, str) else want
    timm_name = resolve_model_name(name, pretrained=bool(want) or weights is not None)
    if head not in HEADS:
        raise UserInputError(f"invalid --head {head!r}; choose one of {', '.join(HEADS)}")
    model, source, sha, notes = load_weights(name, timm_name, num_classes, in_chans, want, weights, drop_rate, timm_kwargs)
    apply_head(model, head, num_classes, 0.5 if drop_rate is None else drop_rate)
    dc = data_config(model, in_chans)
    info = ModelInfo(name=str(name), timm_name=timm_name, pretrained_source=source, input_size=dc["input_size"],
                     mean=dc["mean"], std=dc["std"], interpolation=dc["interpolation"], n_params=count_params(model),
                     pretrained=source != "none", weights_sha256=sha, min_size=total_stride(model),
                     num_classes=num_classes, in_chans=in_chans, notes=notes)
    return model, info
