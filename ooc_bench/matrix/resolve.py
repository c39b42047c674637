"""Resolved configs: the device kind jobs run on, each job's config with its "auto"/device values filled in, and what changed.

Cache keys hash what actually runs: a generator's config after its own resolution (the GAN's ``capacity = "auto"``
becomes ``paper`` on CUDA and ``tiny`` on a CPU, ``kimg`` 1000 or 2), a classifier's full recipe with every
default. The device kind is recorded with every job (not hashed: a job whose resolved config is the same on
another machine is the same job). Resuming on another kind of machine therefore recomputes exactly the jobs
whose resolved config changed, and :func:`changed_jobs` says which and why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from .plan import Job


def default_device_kind() -> str:
    """The device kind jobs of a local run use: ``$OOC_BENCH_DEVICE``, else cuda when present, else cpu."""
    from ..runtime import pick_device

    return pick_device("auto").type


def executor_device_kind(executor: str = "local", slurm_config: dict[str, Any] | None = None) -> str:
    """The device kind the jobs will run on: local runs use this machine's; Slurm jobs get GPUs when the
    Slurm parameters ask for them (``gpus_per_node``, ``slurm_gpus_per_node``, ``gpus_per_task`` or a gpu gres)."""
    if executor == "slurm":
        cfg = slurm_config or {}
        gpus = [cfg.get(k) for k in ("gpus_per_node", "slurm_gpus_per_node", "gpus_per_task", "slurm_gpus_per_task")]
        gres = str(cfg.get("slurm_gres", cfg.get("gres", "")))
        return "cuda" if any(g not in (None, 0, "0", "") for g in gpus) or "gpu" in gres else "cpu"
    return default_device_kind()


def resolve_generator(gtype: str, config: dict[str, Any], device_kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config to run with, the part that is hashed) of a generator on ``device_kind``.

    ``device = "auto"`` is resolved as if on ``device_kind`` (the value itself stays ``auto``, a runtime option);
    options marked ``runtime`` (device, progress output, checkpoint interval) are kept out of the hashed part.
    """
    from ..generators.registry import generator_config_class, generator_runtime_keys, resolve_generator_config

    cls = generator_config_class(gtype)
    has_device = cls is not None and "device" in getattr(cls, "__dataclass_fields__", {})
    probe = dict(config)
    if has_device and str(config.get("device", "auto")) == "auto":
        probe["device"] = device_kind
    resolved = resolve_generator_config(gtype, probe)
    if has_device:
        resolved["device"] = config.get("device", "auto")
    skip = generator_runtime_keys(gtype)
    return resolved, {k: v for k, v in resolved.items() if k not in skip}


def resolve_training(config: dict[str, Any]) -> dict[str, Any]:
    """A classifier recipe with every option of ``TrainConfig`` filled in (its defaults where not given)."""
    from ..classifiers import TrainConfig

    return TrainConfig(**config).to_dict()


def training_numerics(config: dict[str, Any], device_kind: str) -> str:
    """How a classifier recipe computes on ``device_kind``: ``cpu-fp32``, ``cuda-fp32`` or ``cuda-amp`` (+ channels-last).

    Part of every cell key: mixed precision changes the numbers, so a cell recorded on a CPU is recomputed on a GPU
    even when its recipe is unchanged (and the reason is shown)."""
    device = str(config.get("device", "auto"))
    kind = device_kind if device == "auto" else device.split(":")[0]
    if kind != "cuda":
        return f"{kind}-fp32"
    out = "cuda-amp" if config.get("amp", True) else "cuda-fp32"
    return out + ("+channels-last" if config.get("channels_last", True) else "")


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: d}


def _why(old: dict[str, Any], new: dict[str, Any], limit: int = 8) -> str:
    """The settings that differ between a recorded job's params and the new job's (runtime options left out)."""
    skip = {"optional", "device_kind"}
    runtime: set[str] = set()
    if new.get("type"):
        from ..generators.registry import generator_runtime_keys

        runtime = generator_runtime_keys(str(new["type"]))

    def flat(params: dict[str, Any]) -> dict[str, Any]:
        out = _flat({k: v for k, v in params.items() if k not in skip})
        return {k.removeprefix("config.").removeprefix("train_config."): v for k, v in out.items()
                if not (k.startswith("config.") and k.split(".", 1)[1] in runtime)}

    a, b = flat(old), flat(new)
    keys = [k for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]
    diffs = [f"{k} {a.get(k, '-')!s} -> {b.get(k, '-')!s}" for k in keys if not k.endswith("_key")]
    if not diffs and keys:  # only an upstream key differs: a dependency was recomputed
        diffs = [f"its input {keys[0].removesuffix('_key')} changed"]
    more = f", +{len(diffs) - limit} more" if len(diffs) > limit else ""
    return ", ".join(diffs[:limit]) + more


def changed_jobs(jobs: Iterable["Job"], records: dict[str, list[dict[str, Any]]]) -> list[tuple["Job", str]]:
    """Jobs of the new plan that replace a recorded job of the same stage and label, with the reason.

    ``records`` maps a stage to its job records (each with ``label`` and ``params``, as execute_job writes
    them). A job whose key is recorded is unchanged; one whose label is recorded under another key was
    recomputed because its resolved config (or an input upstream) changed: the reason names the settings.
    """
    by_label: dict[tuple[str, str], dict[str, Any]] = {}
    known: set[tuple[str, str]] = set()
    for kind, recs in records.items():
        for r in recs:
            if r.get("key"):
                known.add((kind, str(r["key"])))
            if r.get("label") and r.get("status") in ("done", "skipped"):
                by_label.setdefault((kind, str(r["label"])), r)
    out: list[tuple["Job", str]] = []
    for j in jobs:
        if (j.kind, j.key) in known:
            continue
        old = by_label.get((j.kind, j.label))
        if old is None:
            continue
        why = _why(old.get("params", {}), j.params)
        dev_old, dev_new = old.get("params", {}).get("device_kind"), j.params.get("device_kind")
        if dev_old and dev_new and dev_old != dev_new:
            why += f" (recorded on {dev_old}, now {dev_new})"
        out.append((j, why))
    return out


__all__ = ["default_device_kind", "executor_device_kind", "resolve_generator", "resolve_training", "changed_jobs"]


def report_changes(jobs: Iterable["Job"], run_root: Any, console: Any, show: int = 12) -> list[tuple["Job", str]]:
    """Print which jobs of the plan replace recorded ones and why (e.g. a GAN resolved for another device)."""
    from pathlib import Path

    from rich.markup import escape

    from .store import RunPaths, iter_records

    paths = RunPaths(Path(run_root))
    records = {kind: list(iter_records(paths, kind)) for kind in ("fit", "domain", "sample", "score", "cell")}
    changes = changed_jobs(jobs, records)
    if changes and console is not None:
        console.print(f"[yellow]{len(changes)} job(s) will be recomputed because their resolved config changed:[/]",
                      highlight=False)
        for j, why in changes[:show]:
            console.print(f"  {escape(j.label)}: {escape(why)}", highlight=False, soft_wrap=True)
        if len(changes) > show:
            console.print(f"  ... and {len(changes) - show} more", highlight=False)
    return changes
