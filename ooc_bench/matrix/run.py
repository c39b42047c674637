"""`run_benchmark`: split → plan → execute (cached, resumable) → CSVs, provenance, tables and plots under results/<run-name>/."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import platform
import shlex
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..atomic import check_writable, write_json
from ..errors import UserInputError
from ..hashing import file_hash
from .executor import Runner, job_states, load_slurm_config, save_plan
from .plan import Job, Plan, SplitInfo, build_plan
from .progress import JobProgress, run_spelling
from .results import write_results
from .spec import BenchmarkSpec, load_spec
from .stages import job_threads
from .store import RunPaths, iter_records, read_record


EXIT_JOBS_FAILED = 4  # `ooc-bench run`: at least one (non-optional) job failed or could not run
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT): finished jobs are kept; the same command resumes


def demo_data_path() -> Path:
    """Where the built-in demo dataset lives (generated on first use)."""
    from ..data import default_cache_dir

    return default_cache_dir() / "demo" / "ooc_demo_seed0"


def ensure_demo_data(console: Console | None = None) -> Path:
    """The built-in demo dataset's folder, built there first if it is not complete (said on ``console``)."""
    from ..data import make_demo

    root = demo_data_path()
    if not (root / ".complete").exists():
        if console is not None:
            console.print(f"[dim]building the built-in demo dataset in {root}[/]")
        make_demo(root, seed=0)
        (root / ".complete").write_text("ok\n")
    return root


def resolve_data(spec: BenchmarkSpec, console: Console) -> Path:
    """The dataset folder: the spec's ``data.path``, or the built-in demo dataset (made on first use)."""
    path = spec.data.get("path")
    if path in (None, "", "demo", "builtin:demo"):
        return ensure_demo_data(console)
    p = Path(os.path.expanduser(str(path)))
    if not p.exists():
        raise UserInputError(f"--data {p} does not exist; pass a dataset folder, .npz or .csv manifest")
    return p


def prepare_split(spec: BenchmarkSpec, run_root: Path, console: Console) -> SplitInfo:
    """Load the dataset, apply the split policy and write ``split.csv`` (the manifest every stage reads)."""
    from ..data import load_dataset, make_split, manifest_hash, write_split_manifest
    from ..data.neardup import near_duplicate_warning

    data_path = resolve_data(spec, console)
    d = spec.data
    ds = load_dataset(data_path, layout=d.get("layout") if d.get("layout") not in (None, "auto") else None,
                      datasheet=d.get("datasheet"), skip_bad=bool(d.get("skip_bad", False)),
                      accept_folder_labels=bool(d.get("accept_folder_labels", False)))
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
    spec.data["resolved_path"] = str(Path(data_path).resolve())
    spec.data["resolved_split"] = policy
    spec.data["resolved_hash"] = dataset_hash(ds)
    warnings = list(ds.warnings) + data_warnings(ds, spec.image_size)
    pairs = cross_split_near_duplicates(ds, spec.image_size)
    near = near_duplicate_warning(pairs)
    if near:
        warnings.append(near)
    for w in warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)
    _notes(spec)["split_warnings"] = warnings
    _notes(spec)["near_duplicates"] = [dataclasses.asdict(p) for p in pairs[:200]]
    return SplitInfo(manifest=str(manifest), key=manifest_hash(manifest), classes=list(ds.classes),
                     train_counts={c: int(counts.get(c, 0)) for c in ds.classes})


def _notes(spec: BenchmarkSpec) -> dict[str, Any]:
    """Warnings and findings of this run (kept beside the spec, not in it: they are not settings)."""
    if not hasattr(spec, "_run_notes"):
        spec._run_notes = {}  # type: ignore[attr-defined]
    return spec._run_notes  # type: ignore[attr-defined]


def data_warnings(ds: Any, size: int) -> list[str]:
    """Images smaller than the working size; 16-bit images that use only the low bits."""
    from ..data.checks import bit_depth_warnings, small_image_warnings

    return small_image_warnings(ds.records, size) + bit_depth_warnings(ds.records)


def cross_split_near_duplicates(ds: Any, size: int) -> list[Any]:
    """Perceptual near-duplicate pairs between the train split and val/test (decoded once, through the image cache)."""
    from ..data import split_arrays
    from ..data.neardup import matching_pairs, phash

    def hashes(split: str) -> np.ndarray:
        x = split_arrays(ds, split, size)[0]  # memory-mapped: the same packed arrays every stage reads later
        return np.concatenate([phash(x[i:i + 256]) for i in range(0, len(x), 256)])  # bounded float memory

    train = ds.split("train")
    held = [s for s in ("val", "test") if ds.split(s)]
    if not train or not held:
        return []
    return matching_pairs(hashes("train"), [r.path for r in train],
                          {s: (hashes(s), [r.path for r in ds.split(s)]) for s in held})


def spec_warnings(spec: BenchmarkSpec) -> list[str]:
    """Settings that run but are probably not what was meant: ratios above 1 for add, duplicate or too few seeds.

    Duplicate seeds are dropped here (they would be the same cells, silently shrinking n). Negative seeds are an error.
    """
    out = []
    bad = [s for s in spec.seeds if int(s) < 0]
    if bad:
        raise UserInputError(f"seeds {', '.join(map(str, bad))} are negative; seeds must be >= 0 (--seed 42, "
                             "--seeds 7921,2048 or --n-seeds 5)")
    seen: list[int] = []
    for s in spec.seeds:
        if s not in seen:
            seen.append(s)
    if len(seen) < len(spec.seeds):
        dup = sorted({s for s in spec.seeds if spec.seeds.count(s) > 1})
        out.append(f"duplicate seed(s) {', '.join(map(str, dup))} in {spec.seeds}: each seed runs once, so n = {len(seen)}")
        spec.seeds = seen
    if len(spec.seeds) < 3:
        out.append(f"only {len(spec.seeds)} classifier seed(s): confidence intervals and significance need at least 3 "
                   "(5 for the thesis protocol; --n-seeds 5)")
    for protocol in spec.protocols:
        if protocol == "replace":
            continue
        for r in spec.ratios_for(protocol):
            if r > 1:
                guess = r / 100 if r >= 5 else r / 10
                out.append(f"ratio {r:g} with protocol {protocol} means {r:g} synthetic images per real image "
                           f"({r:g}x the training set); did you mean {guess:g}?")
    return out


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


def dataset_hash(ds: Any) -> str:
    """sha256 over every image's (path relative to the dataset root, label, content hash), in sorted order."""
    root = str(Path(ds.root).resolve())
    h = hashlib.sha256()
    for r in sorted(ds.records, key=lambda r: r.path):
        path = str(Path(r.path).resolve()) if "#" not in r.path else r.path
        rel = path[len(root):].lstrip("/\\") if path.startswith(root) else path
        h.update(f"{rel}\t{r.label}\t{r.hash}\n".encode())
    return h.hexdigest()[:32]


def _git(*args: str) -> str | None:
    try:
        p = subprocess.run(["git", *args], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10)
    except Exception:  # noqa: BLE001 - no git on this machine
        return None
    return p.stdout if p.returncode == 0 else None


def _git_commit() -> str | None:
    out = _git("rev-parse", "HEAD")
    return out.strip() or None if out else None


def git_state() -> dict[str, Any]:
    """The commit of the ooc-bench checkout and whether tracked files differ from it (None outside a git checkout)."""
    commit = _git_commit()
    if commit is None:
        return {"commit": None, "dirty": None, "changed_files": []}
    status = _git("status", "--porcelain", "--untracked-files=no") or ""
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    return {"commit": commit, "dirty": bool(changed), "changed_files": changed[:50]}


def job_configuration(job: Job, rec: dict[str, Any] | None) -> dict[str, Any]:
    """The resolved configuration of one job: the record's own (the config layer's) when present, else the plan's
    parameters with the classifier recipe completed from ``TrainConfig``'s defaults and the weights actually used."""
    rec = rec or {}
    out: dict[str, Any] = {"kind": job.kind, "key": job.key, "label": job.label, "status": rec.get("status", "missing")}
    resolved = rec.get("resolved_config") or job.params.get("resolved_config")
    params = dict(job.params)
    if job.kind == "cell" and "train_config" in params and not resolved:
        from ..classifiers import TrainConfig

        try:
            params["train_config"] = dataclasses.asdict(TrainConfig(**params["train_config"]))
        except TypeError:  # a recipe this version cannot build: keep what the plan holds
            pass
    out["params"] = params
    if resolved:
        out["resolved_config"] = resolved
    for k in ("weights", "config", "config_hash", "extractor_provenance", "time_s"):
        if k in rec:
            out[k] = rec[k]
    return out


def provenance(spec: BenchmarkSpec, split: SplitInfo, plan: Plan, run_root: Path, wall_s: float,
               command: list[str] | None = None) -> dict[str, Any]:
    """Everything needed to reproduce and audit the numbers of this run: the command, the code (commit, dirty
    flag), the data (absolute path, content hash, split), and the resolved configuration of every job."""
    import torch

    from ..runtime import versions

    paths = RunPaths(run_root)
    per_stage: dict[str, float] = {}
    for kind in ("fit", "domain", "sample", "score", "cell"):
        per_stage[kind] = round(sum(float(r.get("time_s", 0.0)) for r in iter_records(paths, kind)), 2)
    git = git_state()
    states = job_states(plan, run_root)
    return {
        "spec": spec.to_dict(), "versions": versions(), "git_commit": git["commit"], "git_dirty": git["dirty"],
        "git_changed_files": git["changed_files"],
        "command": shlex.join(command) if command else None, "argv": list(command) if command else None,
        "cwd": os.getcwd(),
        "jobs": [job_configuration(j, rec) for j, _, rec in states],
        "hardware": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "machine": platform.machine(),
                     "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                     "torch_threads_per_job": job_threads()},
        "dataset": {"path": spec.data.get("resolved_path"), "hash": spec.data.get("resolved_hash"),
                    "split_warnings": _notes(spec).get("split_warnings", []),
                    "near_duplicates": _notes(spec).get("near_duplicates", []),
                    "spec_warnings": _notes(spec).get("spec_warnings", []),
                    "split_policy": spec.data.get("resolved_split"),
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


def unfinished_jobs(plan: Plan, run_root: Path) -> tuple[list[tuple[Job, dict[str, Any]]], list[Job]]:
    """(failed jobs with their records, jobs that did not run) — skipped jobs of optional generators are neither."""
    states = job_states(plan, run_root)
    failed = [(j, rec or {}) for j, s, rec in states if s == "failed"]
    not_run = [j for j, s, _ in states if s in ("missing", "running")]
    return failed, not_run


def _log_of(run_root: Path, job: Job, rec: dict[str, Any]) -> str:
    log = rec.get("log") or str(RunPaths(run_root).log_path(job.kind, job.key))
    return log if Path(log).is_file() else "(no log)"


def _report_failures(plan: Plan, run_root: Path, console: Console, show: int = 20) -> int:
    """Print the failed jobs (error and log file) and the jobs left unrun; the exit code `ooc-bench run` should give."""
    failed, not_run = unfinished_jobs(plan, run_root)
    if not failed and not not_run:
        return 0
    if failed:
        console.print(f"[red]{len(failed)} job(s) failed:[/]", highlight=False)
        for j, rec in failed[:show]:
            err = run_spelling(str(rec.get("error", "")).splitlines()[0], j) if rec.get("error") else ""
            console.print(f"  [red]failed[/] {escape(j.label)}: {escape(err)}", highlight=False, soft_wrap=True)
            console.print(f"    log: {escape(_log_of(run_root, j, rec))}", highlight=False, soft_wrap=True)
        if len(failed) > show:
            console.print(f"  ... and {len(failed) - show} more (`ooc-bench status {run_root} --show N`)", highlight=False)
    if not_run:
        console.print(f"[red]{len(not_run)} job(s) did not run[/] (a job they need failed, or another process still "
                      "holds them)", highlight=False, soft_wrap=True)
    console.print(f"see `ooc-bench status {run_root}`; running the same `ooc-bench run` again retries only these jobs "
                  f"(exit code {EXIT_JOBS_FAILED})", highlight=False, soft_wrap=True)
    return EXIT_JOBS_FAILED


def run_benchmark(spec: BenchmarkSpec, out: str | Path | None = None, dry_run: bool = False, executor: str = "local",
                  jobs: int = 1, slurm_config: str | None = None, console: Console | None = None,
                  plots: bool = True, command: list[str] | None = None, live: bool | None = None) -> Path:
    """Run (or resume) the whole benchmark; returns the results folder. Nothing already recorded is recomputed.

    ``command`` is the command line recorded in provenance.json (and shown for resuming after Ctrl-C);
    ``live`` forces the progress bar on/off (default: a bar on a terminal, one line per job otherwise).
    Whether jobs failed: :func:`unfinished_jobs` (the CLI exits with ``EXIT_JOBS_FAILED`` then).
    """
    from .report import print_tables, write_plots, write_tables

    console = console or Console()
    from .preflight import preflight

    _notes(spec)["preflight_skipped"] = preflight(spec, console)  # every weight source, before any compute
    command = list(command) if command else ["ooc-bench", *sys.argv[1:]]
    run_root = Path(out) if out else Path("results") / spec.name
    check_writable(run_root, "--out")  # before the dataset is read or hashed
    from ..data import default_cache_dir

    check_writable(default_cache_dir(), "the image cache ($OOC_BENCH_CACHE)")
    run_root.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    notes = spec_warnings(spec)
    for w in notes:
        console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)
    _notes(spec)["spec_warnings"] = notes
    split = prepare_split(spec, run_root, console)
    from .resolve import executor_device_kind, report_changes

    plan = build_plan(spec, split, device_kind=executor_device_kind(executor, load_slurm_config(slurm_config)))
    save_plan(plan, run_root)
    console.print(plan_table(plan, run_root))
    report_changes(plan.jobs, run_root, console)  # which recorded jobs are recomputed, and why
    if dry_run:
        return run_root
    runner = Runner(run_root, executor=executor, jobs=jobs, slurm_config=load_slurm_config(slurm_config))
    todo = sum(1 for _, s, _ in job_states(plan, run_root) if s not in ("done", "skipped"))
    try:
        with JobProgress(console, todo, live=live) as progress:
            runner.on_record = progress.update
            runner.run(plan)
    except KeyboardInterrupt:
        done = sum(1 for _, s, _ in job_states(plan, run_root) if s in ("done", "skipped"))
        console.print(f"[yellow]interrupted:[/] {done} of {len(plan.jobs)} jobs are finished and kept in {run_root}. "
                      f"To resume, run the same command again: {escape(shlex.join(command))}",
                      highlight=False, soft_wrap=True)
        raise
    keys = {j.key for j in plan.jobs}
    write_results(run_root, keys, stats=spec.stats)
    write_json(run_root / "provenance.json", provenance(spec, split, plan, run_root, time.time() - t0, command=command))
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
    skipped = {j.params["generator"]: run_spelling(rec.get("reason"), j) for j, s, rec in reversed(states)
               if s == "skipped" and j.kind in ("fit", "sample")}  # the earliest stage's reason wins
    for generator, reason in skipped.items():
        console.print(f"[yellow]skipped generator {generator}:[/] {escape(str(reason))}", highlight=False, soft_wrap=True)
    print_tables(run_root, console)
    console.print(f"[bold]results:[/] {run_root}/ (summary.csv, downstream.csv, quality.csv, provenance.json, tables/, plots/)",
                  highlight=False, soft_wrap=True)
    _report_failures(plan, run_root, console)
    return run_root


__all__ = ["run_benchmark", "load_spec", "prepare_split", "plan_table", "unfinished_jobs", "EXIT_JOBS_FAILED",
           "EXIT_INTERRUPTED"]
