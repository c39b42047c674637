"""Where classifier weights come from: a local file, a per-model mapping, the Hugging Face cache/hub, or nowhere (random)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import UserInputError, WeightsUnavailableError
from ..hashing import file_hash
from ..runtime import is_offline

WEIGHTS_ENV = "OOC_BENCH_WEIGHTS"  # optional: a JSON file mapping model alias / timm name -> weights file
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")


def _mapping_lookup(mapping: dict[str, Any], name: str, timm_name: str, origin: str) -> Path | None:
    for key in (name, name.lower(), timm_name, timm_name.split(".", 1)[0]):
        if key in mapping:
            path = Path(os.path.expanduser(str(mapping[key])))
            if not path.is_absolute() and origin:
                path = Path(origin).parent / path
            return path
    return None


def resolve_weights_file(weights: Any, name: str, timm_name: str, use_env: bool) -> Path | None:
    """The weights file to load for this model: ``weights`` may be a file, a checkpoint folder (with
    model.safetensors), a dict or a JSON file mapping model names to files; else the mapping named by
    $OOC_BENCH_WEIGHTS (when ``use_env``). None when no file applies."""
    origin = ""
    if weights is None or weights == "":
        from ..settings import weights_mapping

        env = weights_mapping()
        if not (use_env and env):
            return None
        weights, origin = env, env
        if not Path(env).is_file():
            raise UserInputError(f"${WEIGHTS_ENV} points to {env!r}, which does not exist; fix or unset it")
    if isinstance(weights, dict):
        return _mapping_lookup(weights, name, timm_name, "")
    path = Path(os.path.expanduser(str(weights)))
    if path.suffix.lower() == ".json":
        if not path.is_file():
            raise UserInputError(f"weights mapping {path} not found; pass an existing JSON file or a weights file to --weights")
        try:
            mapping = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UserInputError(f"weights mapping {path} is not valid JSON ({exc})") from exc
        if not isinstance(mapping, dict):
            raise UserInputError(f"weights mapping {path} must be a JSON object {{model name: weights file}}")
        found = _mapping_lookup(mapping, name, timm_name, str(path))
        if found is None and not origin:
            raise UserInputError(f"weights mapping {path} has no entry for {name!r} or {timm_name!r}")
        return found
    if path.is_dir():
        path = path / "model.safetensors"
    return path


def read_state_dict(path: Path) -> dict[str, Any]:
    """Tensors of a .safetensors file, or of a torch checkpoint loaded with ``weights_only=True`` (no pickle code)."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    obj = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise UserInputError(f"weights file {path} does not hold a state dict")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _head_classes(state: dict[str, Any], classifier: str | None) -> int | None:
    if not classifier:
        return None
    w = state.get(f"{classifier}.weight")
    return int(w.shape[0]) if w is not None and getattr(w, "ndim", 0) >= 1 else None


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise UserInputError(f"weights file {path} not found; pass an existing .safetensors/.pth file to --weights "
                             "(or --no-pretrained to train from random initialisation)")


def _unavailable(name: str, timm_name: str, reason: str) -> WeightsUnavailableError:
    return WeightsUnavailableError(
        f"no pretrained weights for {name!r} ({timm_name}): {reason}. Pass --weights FILE (an ImageNet checkpoint "
        f"for {timm_name}, .safetensors or .pth) or --no-pretrained to train from random initialisation"
    )


def _cached_pretrained(timm_name: str) -> tuple[bool, str]:
    """Whether timm's pretrained file is in the local cache (Hugging Face or torch hub), and its source label."""
    import timm

    cfg = timm.models.get_pretrained_cfg(timm_name)
    if cfg is None:
        return False, ""
    hub_id = getattr(cfg, "hf_hub_id", None)
    url = getattr(cfg, "url", None)
    if hub_id:
        from huggingface_hub import try_to_load_from_cache

        for fname in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
            hit = try_to_load_from_cache(hub_id.split("@")[0], fname)
            if isinstance(hit, str):
                return True, f"hub:{hub_id}"
        return False, f"hub:{hub_id}"
    if url:
        import torch

        return (Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name).is_file(), f"url:{url}"
    return False, ""


def load_weights(name: str, timm_name: str, num_classes: int, in_chans: int, pretrained: bool | str,
                 weights: Any, drop_rate: float | None, timm_kwargs: dict[str, Any]) -> tuple[Any, str, str | None, list[str]]:
    """Build the model and load its weights. Returns (model, source, sha256-16 of the file or None, notes)."""
    from .architectures import CNN_NAME, build_architecture

    notes: list[str] = []
    path = resolve_weights_file(weights, name, timm_name, use_env=bool(pretrained))
    if path is not None:
        _check_file(path)
        sha = file_hash(path)
        state = read_state_dict(path)
        if timm_name == CNN_NAME:
            model = build_architecture(timm_name, num_classes, in_chans, drop_rate)
            if _head_classes(state, "head") != num_classes:
                state = {k: v for k, v in state.items() if not k.startswith("head.")}
                notes.append("classifier head replaced (class count differs from the weights file)")
            missing, unexpected = model.load_state_dict(state, strict=False)
            bad_missing = [k for k in missing if not k.startswith("head.")]
            if bad_missing or unexpected:
                raise UserInputError(f"weights file {path} does not fit model {name!r}: missing {bad_missing[:5]}, "
                                     f"unexpected {list(unexpected)[:5]}")
            return model, f"file:{path}", sha, notes
        import timm

        base_cfg = timm.models.get_pretrained_cfg(timm_name)
        classifier = getattr(base_cfg, "classifier", None) if base_cfg is not None else None
        file_classes = _head_classes(state, classifier if isinstance(classifier, str) else None)
        overlay = {"file": str(path)}
        if file_classes is not None:
            overlay["num_classes"] = file_classes  # without it timm assumes 1000 and may silently drop the head
            if file_classes != num_classes:
                notes.append(f"classifier head replaced ({file_classes} classes in the file, {num_classes} wanted)")
        kwargs = dict(num_classes=num_classes, in_chans=in_chans, pretrained_cfg_overlay=overlay, **timm_kwargs)
        if drop_rate is not None:
            kwargs["drop_rate"] = drop_rate
        try:
            model = timm.create_model(timm_name, pretrained=True, **kwargs)
        except (RuntimeError, KeyError, ValueError) as exc:
            raise UserInputError(f"weights file {path} does not fit model {name!r} ({timm_name}): "
                                 f"{str(exc).splitlines()[0][:300]}") from exc
        return model, f"file:{path}", sha, notes

    if not pretrained:
        return build_architecture(timm_name, num_classes, in_chans, drop_rate, **timm_kwargs), "none", None, notes
    if timm_name == CNN_NAME:
        notes.append("cnn is a from-scratch model: no pretrained weights exist, random initialisation used")
        return build_architecture(timm_name, num_classes, in_chans, drop_rate), "none", None, notes

    import timm

    cached, source = _cached_pretrained(timm_name)
    reason = None
    if not source:
        reason = "timm has no pretrained weights for this architecture"
    elif not cached and is_offline():
        reason = "they are not in the local cache and HF_HUB_OFFLINE=1 forbids downloading them"
    if reason is None:
        kwargs = dict(num_classes=num_classes, in_chans=in_chans, **timm_kwargs)
        if drop_rate is not None:
            kwargs["drop_rate"] = drop_rate
        try:
            return timm.create_model(timm_name, pretrained=True, **kwargs), source, None, notes
        except Exception as exc:  # network errors come in many types (OSError, HTTPError, URLError, hub errors)
            reason = f"download failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
    if pretrained == "optional":
        notes.append(f"pretrained weights unavailable ({reason}); random initialisation used")
        return build_architecture(timm_name, num_classes, in_chans, drop_rate, **timm_kwargs), "none", None, notes
    raise _unavailable(name, timm_name, reason)


def weights_problem(name: str, timm_name: str, pretrained: bool | str, weights: Any = None) -> str | None:
    """Why the weights classifier ``name`` would start from cannot be had now; None when they can (or none are needed).

    ``timm_name`` is the architecture (``classifiers.resolve_model_name(name, pretrained)``). The same rules as
    :func:`load_weights` without building the model: a ``weights`` file (or mapping, or
    $OOC_BENCH_WEIGHTS) must exist; ImageNet weights must be in the local cache unless downloads are allowed;
    ``pretrained="optional"`` and the from-scratch ``cnn`` need nothing. Used by the run's pre-flight check.
    """
    from .architectures import CNN_NAME

    try:
        path = resolve_weights_file(weights, name, timm_name, use_env=bool(pretrained))
    except UserInputError as exc:
        return str(exc)
    if path is not None:
        return None if path.is_file() else f"weights file {path} not found"
    if not pretrained or pretrained == "optional" or timm_name == CNN_NAME:
        return None
    cached, source = _cached_pretrained(timm_name)
    if not source:
        return f"timm has no pretrained weights for {timm_name}"
    if not cached and is_offline():
        return f"ImageNet weights of {timm_name} ({source}) are not in the local cache and HF_HUB_OFFLINE=1 forbids downloading them"
    return None
