"""Resumable training checkpoints (weights, optimizer, RNG, step) as safetensors + JSON, written atomically."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ...atomic import atomic_path, write_json

LATEST = "latest.json"


def _save_tensors(tensors: dict[str, Any], path: Path) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))


def optimizer_tensors(optimizer: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Flatten an optimizer's state into tensors (``state.<param>.<name>``) plus JSON-able param groups."""
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
    """Inverse of :func:`optimizer_tensors`."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = value
    for key, value in meta.get("scalars", {}).items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(workdir: Path, step: int, weights: dict[str, dict[str, Any]], optimizer: Any,
                    rng: Any, info: dict[str, Any], keep: int = 1) -> Path:
    """Write ``workdir/checkpoint-<step>/`` (one safetensors file per entry of ``weights``, the optimizer, the
    torch RNG state and ``state.json``), then point ``workdir/latest.json`` at it and delete older ones."""
    workdir = Path(workdir)
    folder = workdir / f"checkpoint-{step:08d}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, tensors in weights.items():
        _save_tensors(tensors, folder / f"{name}.safetensors")
    opt_tensors, opt_meta = optimizer_tensors(optimizer)
    _save_tensors(opt_tensors, folder / "optimizer.safetensors")
    _save_tensors({"rng": rng.get_state()}, folder / "rng.safetensors")
    write_json(folder / "state.json", {"step": int(step), "optimizer": opt_meta, "weights": sorted(weights), **info})
    write_json(workdir / LATEST, {"checkpoint": folder.name, "step": int(step)})
    old = sorted(p for p in workdir.glob("checkpoint-*") if p.is_dir() and p.name != folder.name)
    for p in old[: max(0, len(old) - (keep - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    return folder


def latest_checkpoint(workdir: Path | None) -> tuple[Path, dict[str, Any]] | None:
    """The folder and ``state.json`` of the newest complete checkpoint in ``workdir``, or None."""
    if workdir is None or not (Path(workdir) / LATEST).is_file():
        return None
    ref = json.loads((Path(workdir) / LATEST).read_text())
    folder = Path(workdir) / ref["checkpoint"]
    if not (folder / "state.json").is_file():
        return None
    return folder, json.loads((folder / "state.json").read_text())


def load_checkpoint(folder: Path, state: dict[str, Any], optimizer: Any, rng: Any) -> dict[str, dict[str, Any]]:
    """Restore optimizer and RNG from a checkpoint; return its weight dicts by name."""
    from safetensors.torch import load_file

    load_optimizer_tensors(optimizer, load_file(str(folder / "optimizer.safetensors")), state["optimizer"])
    rng.set_state(load_file(str(folder / "rng.safetensors"))["rng"])
    return {name: load_file(str(folder / f"{name}.safetensors")) for name in state.get("weights", [])}
