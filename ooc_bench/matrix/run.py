"""`run_benchmark`: split → plan → execute (cached, resumable) → CSVs, provenance, tables and plots under results/<run-name>/."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..atomic import write_json
from ..errors import UserInputError
from ..hashing import file_hash
from .executor import Runner, job_states, load_slurm_config, save_plan
from .plan import Plan, SplitInfo, build_plan
from .results import write_results
from .spec import BenchmarkSpec, load_spec
from .stages import job_threads
from .store import RunPaths, iter_records, read_record


def demo_data_path() -> Path:
    """Where the built-in demo dataset lives (generated on first use)."""
    from ..data import default_cache_dir

    return default_cache_dir() / "demo" / "ooc_demo_seed0"


def resolve_data(spec: BenchmarkSpec, console: Console) -> Path:
    """The dataset folder: the spec's ``data.path``, or the built-in demo dataset (made on first use)."""
    path = spec.data.get("path")
    if path in (None, "", "demo", "builtin:demo"):
        from ..data import make_demo

        root = demo_data_path()
        if not (root / ".complete").exists():
            console.print(f"[dim]building the built-in demo dataset in {root}[/]")
            make_demo(root, seed=0)
            (root / ".complete").write_text("ok\n")
        return root
    p = Path(os.path.expanduser(str(path)))
    if not p.exists():
        raise UserInputError(f"--data {p} does not exist; pass a dataset folder, .npz or .csv manifest")
    return p


def prepare_split(spec: BenchmarkSpec, run_root: Path, console: Console) -> SplitInfo:
    """Load the dataset, apply the split policy and write ``split.csv`` (the manifest every stage reads)."""
    from ..data import load_dataset, make_split, manifest_hash, write_split_manifest

    data_path = resolve_data(spec, console)
    d = spec.data
    ds = load_dataset(data_path, layout=d.get("layout") if d.get("layout") not in (None, "auto") else None,
                      datasheet=d.get("datasheet"))
    policy = d.get("split", "official")
    if policy == "official" and not ds.has_splits:
        console.print("[yellow]the dataset has no official split: using a stratified split instead[/]")
        policy = "stratified"
    if policy == "official":
        ds = make_split(ds, keep_official=True, seed=int(d.get("seed", 0)))  # refuses broken splits, carves val if missing
    else:
        ds = make_split(ds, group_by=d.get("group_by") if policy == "grouped" else None, val=float(d.get("val", 0.15)),
                        test=float(d.get("test", 0.2)), seed=int(d.get("seed", 0)), keep_official=False)
    manifest = run_root / "split.csv"
    write_split_manifest(ds, manifest)
    counts = Counter(r.label for r in ds.split("train"))
    spec.data["resolved_path"] = str(data_path)
    spec.data["resolved_split"] = policy
    return SplitInfo(manifest=str(manifest), key=manifest_hash(manifest), classes=list(ds.classes),
                     train_counts={c: int(counts.get(c, 0)) for c in ds.classes})


def plan_table(plan: Plan, run_root: Path) -> Table:
    """Per stage: jobs in the plan, already done, failed, to run."""
    states = job_states(plan, run_root)
    t = Table(title=f"Plan for {run_root}", header_style="bold")
    for h in ("stage", "jobs", "cached", "failed/skipped", "to run"):
        t.add_column(h, justify="left" if h == "stage" else "right")
    for kind in ("fit", "domain", "sample", "score", "cell"):
        ks = [s for j, s, _ in states if j.kind == kind]
        if not ks:
            continue
        done = sum(s == "done" for s in ks)
        bad = sum(s in ("failed", "skipped") for s in ks)
        t.add_row(kind, str(len(ks)), str(done), str(bad), str(len(ks) - done - sum(s == "skipped" for s in ks)))
    return t


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True,
                              timeout=5).stdout.strip() or None
    except Exception:  # noqa: BLE001
        return None


def provenance(spec: BenchmarkSpec, split: SplitInfo, plan: Plan, run_root: Path, wall_s: float) -> dict[str, Any]:
    """Everything needed to reproduce and audit the numbers of this run."""
    import torch

    from ..runtime import versions

    paths = RunPaths(run_root)
    per_stage: dict[str, float] = {}
    for kind in ("fit", "domain", "sample", "score", "cell"):
        per_stage[kind] = round(sum(float(r.get("time_s", 0.0)) for r in iter_records(paths, kind)), 2)
    return {
        "spec": spec.to_dict(), "versions": versions(), "git_commit": _git_commit(),
        "hardware": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "machine": platform.machine(),
                     "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                     "torch_threads_per_job": job_threads()},
        "dataset": {"path": spec.data.get("resolved_path"), "split_policy": spec.data.get("resolved_split"),
                    "split_manifest": "split.csv", "split_hash": split.key, "split_file_sha256": file_hash(split.manifest, 64),
                    "classes": split.classes, "train_counts": split.train_counts},
        "plan": dict(Counter(j.kind for j in plan.jobs)), "time_per_stage_s": per_stage, "wall_s_last_run": round(wall_s, 2),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _sample_grid(plan: Plan, run_root: Path) -> Path:
    """plots/samples.png: a few real training images and a few images of every finished sample set, per class."""
    from ..data import read_split_manifest
    from ..generators import SampleSet
    from .report import write_sample_grid

    paths = RunPaths(run_root)
    ds = read_split_manifest(run_root / "split.csv")
    cols: dict[str, dict[str, list[Path]]] = {"real (train)": {}}
    for c in ds.classes:
        cols["real (train)"][c] = [Path(r.path) for r in ds.split("train") if r.label == c][:6]
    for j in plan.by_kind("sample"):
        rec = read_record(paths, "sample", j.key)
        if not rec or rec.get("status") != "done":
            continue
        ss = SampleSet.load(paths.artifact_dir("sample", j.key))
        cols[j.params["generator"]] = {c: ss.paths(c, 6) for c in ds.classes}
    if any(str(p).find("#") >= 0 for v in cols["real (train)"].values() for p in v):
        cols.pop("real (train)")  # npz-stored images have no file to show
    return write_sample_grid(run_root / "plots" / "samples.png", cols)


def run_benchmark(spec: BenchmarkSpec, out: str | Path | None = None, dry_run: bool = False, executor: str = "local",
                  jobs: int = 1, slurm_config: str | None = None, console: Console | None = None,
                  plots: bool = True) -> Path:
    """Run (or resume) the whole benchmark; returns the results folder. Nothing already recorded is recomputed."""
    from .report import print_tables, write_plots, write_tables

    console = console or Console()
    run_root = Path(out) if out else Path("results") / spec.name
    run_root.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    split = prepare_split(spec, run_root, console)
    plan = build_plan(spec, split)
    save_plan(plan, run_root)
    console.print(plan_table(plan, run_root))
    if dry_run:
        return run_root
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[last]}"), console=console, transient=False) as progress:
        todo = sum(1 for _, s, _ in job_states(plan, run_root) if s not in ("done", "skipped"))
        task = progress.add_task("benchmark", total=todo, last="")

        def on_record(job, rec):
            status = rec.get("status")
            colour = {"done": "green", "failed": "red", "skipped": "yellow"}.get(status, "white")
            progress.update(task, advance=1, last=f"[{colour}]{status}[/] {job.label} ({rec.get('time_s', 0):.1f}s)")
            if status == "failed":
                progress.console.print(f"[red]failed:[/] {job.label}: {rec.get('error')}", highlight=False)

        Runner(run_root, executor=executor, jobs=jobs, slurm_config=load_slurm_config(slurm_config),
               on_record=on_record).run(plan)
    keys = {j.key for j in plan.jobs}
    write_results(run_root, keys, stats=spec.stats)
    write_json(run_root / "provenance.json", provenance(spec, split, plan, run_root, time.time() - t0))
    write_tables(run_root)
    if plots:
        write_plots(run_root)
        try:
            _sample_grid(plan, run_root)
        except Exception as exc:  # noqa: BLE001 - a missing image must not hide the results
            console.print(f"[yellow]sample grid not written: {exc}[/]")
    try:
        from .html import write_html

        write_html(run_root)  # report.html: verdict, tables, the figures above (embedded) and provenance
    except Exception as exc:  # noqa: BLE001 - the CSVs and tables are written already; say why the page is missing
        console.print(f"[yellow]report.html not written: {type(exc).__name__}: {exc}[/]", highlight=False)
    states = job_states(plan, run_root)
    skipped = {j.params["generator"]: rec.get("reason") for j, s, rec in reversed(states)
               if s == "skipped" and j.kind in ("fit", "sample")}  # the earliest stage's reason wins
    for generator, reason in skipped.items():
        console.print(f"[yellow]skipped generator {generator}:[/] {reason}", highlight=False)
    failed = [(j, rec) for j, s, rec in states if s == "failed"]
    if failed:
        console.print(f"[red]{len(failed)} job(s) failed[/] — see `ooc-bench status {run_root}`; `ooc-bench run` again retries them.")
    print_tables(run_root, console)
    console.print(f"[bold]results:[/] {run_root}/ (summary.csv, downstream.csv, quality.csv, provenance.json, tables/, plots/)")
    return run_root


__all__ = ["run_benchmark", "load_spec", "prepare_split", "plan_table"]
