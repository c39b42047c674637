"""Resumable training checkpoints for every generator trainer: weights, optimizers, RNG states and a step, as safetensors + JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ..atomic import atomic_path, write_json

LATEST = "latest.json"


def _save_tensors(tensors: dict[str, Any], path: Path) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))


def optimizer_tensors(optimizer: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Flatten an optimizer's state into tensors (``state.<param>.<name>``) plus JSON-able param groups and scalars."""
    import torch

    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for name, value in st.items():
            if torch.is_tensor(value):
                tensors[f"state.{pid}.{name}"] = value
            else:
                scalars[f"{pid}.{name}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer_tensors(optimizer: Any, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
    """Inverse of :func:`optimizer_tensors` (the optimizer moves the state to its parameters' device)."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = value
    for key, value in meta.get("scalars", {}).items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(root: Path, step: int, weights: dict[str, dict[str, Any]], optimizers: dict[str, Any],
                    rng: dict[str, Any], info: dict[str, Any], keep: int = 1, prefix: str = "checkpoint-",
                    step_name: str = "step") -> Path:
    """Write ``root/<prefix><step>/`` (one safetensors file per weights dict and per optimizer, the RNG states and
    ``state.json`` with ``info``), then point ``root/latest.json`` at it and delete all but the newest ``keep``."""
    root = Path(root)
    folder = root / f"{prefix}{int(step):010d}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, tensors in weights.items():
        _save_tensors(tensors, folder / f"{name}.safetensors")
    opt_meta = {}
    for name, optimizer in optimizers.items():
        tensors, opt_meta[name] = optimizer_tensors(optimizer)
        _save_tensors(tensors, folder / f"{name}.safetensors")
    _save_tensors(rng, folder / "rng.safetensors")
    write_json(folder / "state.json", {**info, step_name: int(step), "optimizers": opt_meta, "weights": sorted(weights)})
    write_json(root / LATEST, {"checkpoint": folder.name, step_name: int(step)})
    old = sorted(p for p in root.glob(f"{prefix}*") if p.is_dir() and p.name != folder.name)
    for p in old[: max(0, len(old) - (keep - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    return folder


def latest_checkpoint(root: Path | None) -> tuple[Path, dict[str, Any]] | None:
    """The folder and ``state.json`` of the newest complete checkpoint under ``root``, or None."""
    if root is None or not (Path(root) / LATEST).is_file():
        return None
    ref = json.loads((Path(root) / LATEST).read_text())
    folder = Path(root) / ref["checkpoint"]
    if not (folder / "state.json").is_file():
        return None
    return folder, json.loads((folder / "state.json").read_text())


def load_checkpoint(folder: Path, state: dict[str, Any], optimizers: dict[str, Any]
                    ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Restore the optimizers from a checkpoint; return its weight dicts by name and its RNG states."""
    from safetensors.torch import load_file

    for name, optimizer in optimizers.items():
        load_optimizer_tensors(optimizer, load_file(str(folder / f"{name}.safetensors")), state["optimizers"][name])
    weights = {name: load_file(str(folder / f"{name}.safetensors")) for name in state.get("weights", [])}
    return weights, load_file(str(folder / "rng.safetensors"))
