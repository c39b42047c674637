"""CLI commands: `run` (the benchmark matrix), `report` (re-render from CSVs) and `status` (done/running/failed cells)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table


def run(
    spec: Optional[Path] = typer.Option(None, "--spec", help="Benchmark spec TOML (see benchmarks/*.toml); flags override it."),
    data: Optional[str] = typer.Option(None, "--data", help="Dataset path (default: the built-in demo dataset)."),
    generators: Optional[str] = typer.Option(None, "--generators", help="Comma-separated generator labels/names, e.g. sd,gan,aug,folder:DIR."),
    models: Optional[str] = typer.Option(None, "--models", help="Comma-separated classifier names, e.g. mnv2,effb7,cnn."),
    ratios: Optional[str] = typer.Option(None, "--ratios", help="Synthetic ratios, e.g. 0,0.25,0.5 (0 = real-only baseline)."),
    protocol: Optional[str] = typer.Option(None, "--protocol", help="add | replace | synthetic-only (comma-separated for several)."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Classifier seeds as a list (7921,2048); a bare number < 1000 is still read as a count (deprecated: use --n-seeds)."),
    seed: list[int] = typer.Option([], "--seed", metavar="<int>", help="One explicit classifier seed (repeat for several: --seed 42 --seed 7)."),
    n_seeds: Optional[int] = typer.Option(None, "--n-seeds", help="Number of classifier seeds: the first N of the thesis seeds 7921,2048,1337,9876,5624 (then 1, 2, ...)."),
    sd_model: Optional[str] = typer.Option(None, "--sd-model", help="Stable Diffusion hub id, local diffusers folder or web-UI checkpoint file (.safetensors/.ckpt) for sd / sd-img2img."),
    sd_config: Optional[str] = typer.Option(None, "--sd-config", help="With a checkpoint file as --sd-model: local diffusers folder with its configs and tokenizer (loads offline)."),
    name: Optional[str] = typer.Option(None, "--name", help="Run name (default: the spec's name)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Results folder (default results/<run-name>/)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (counts per stage, what is cached) and stop."),
    executor: str = typer.Option("local", "--executor", help="local | slurm | submitit-local."),
    jobs: int = typer.Option(1, "--jobs", help="Parallel worker processes (local) or concurrent array tasks (slurm)."),
    slurm_config: Optional[str] = typer.Option(None, "--slurm-config", help="TOML file of submitit/Slurm parameters."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write the matplotlib figures (plots/)."),
    p_adjust: Optional[str] = typer.Option(None, "--p-adjust", help="Multiple-comparison adjustment: holm (default) | bh | none; overrides [stats] p_adjust."),
    working_size: Optional[int] = typer.Option(None, "--working-size", help="Working size in px of every stage ([data] image_size)."),
    layout: Optional[str] = typer.Option(None, "--layout", help="Dataset layout: folders | presplit | ooc | npz | csv | manifest (detected when omitted)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Leave unreadable images out (listed as warnings) instead of stopping."),
    datasheet: Optional[Path] = typer.Option(None, "--datasheet", help="OOC datasheet (.xlsx or .csv) to join ([data] datasheet)."),
    accept_folder_labels: bool = typer.Option(False, "--accept-folder-labels", help="Keep folder labels when the datasheet disagrees."),
    resplit: bool = typer.Option(False, "--resplit", help="Ignore the dataset's own split: make a new stratified one (grouped with --group-by)."),
    group_by: Optional[str] = typer.Option(None, "--group-by", help="Make a new split that keeps groups together: date, group or any metadata column."),
    val: Optional[float] = typer.Option(None, "--val", help="Validation fraction of a new split ([data] val, default 0.15)."),
    test: Optional[float] = typer.Option(None, "--test", help="Test fraction of a new split ([data] test, default 0.2)."),
    split_seed: Optional[int] = typer.Option(None, "--split-seed", help="Seed of a new split ([data] seed)."),
    no_pretrained: bool = typer.Option(False, "--no-pretrained", help="Train every classifier from random initialisation (no ImageNet weights)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Local classifier weights (.safetensors/.pth) or a JSON file mapping model -> file."),
    set_: list[str] = typer.Option([], "--set", help="Override any spec key: TABLE.KEY=VALUE, e.g. generators.gan.kimg=0.5, training.epochs=2 (repeatable; checked like the file)."),
    stale_after: Optional[float] = typer.Option(None, "--stale-after", help="Seconds after which another host's claim on a job counts as dead (default 86400; $OOC_BENCH_CLAIM_STALE_S)."),
) -> None:
    """Run the benchmark matrix: fit generators, sample, score, train and evaluate classifiers; cached and resumable.

    Exit codes: 0 all jobs done (optional generators may be skipped), 2 bad input (nothing ran),
    4 some jobs failed or could not run (listed with their log files; run again to retry only them),
    130 interrupted (Ctrl-C; run the same command again to resume).
    """
    from ..matrix.run import EXIT_JOBS_FAILED, run_benchmark, unfinished_jobs
    from ..matrix.executor import load_plan
    from ..matrix.spec import load_spec

    overrides = list(set_) + _data_overrides(working_size, skip_bad, resplit, group_by, val, test, split_seed)
    if datasheet is not None:
        overrides.append(f"data.datasheet={json.dumps(str(datasheet))}")
    if layout is not None:
        overrides.append(f"data.layout={json.dumps(layout)}")
    if accept_folder_labels:
        overrides.append("data.accept_folder_labels=true")
    seeds = _seeds_argument(seeds, seed, n_seeds)
    s = load_spec(spec, data=data, generators=generators, models=models, ratios=ratios, protocol=protocol, seeds=seeds,
                  sd_model=sd_model, name=name, overrides=overrides or None, sd_config=sd_config)
    if p_adjust is not None:
        s.stats.p_adjust = _check_p_adjust(p_adjust)
    if no_pretrained or weights is not None:
        for table in [s.training] + [m.config for m in s.models]:
            if no_pretrained:
                table["pretrained"] = False
            if weights is not None:
                table["weights"] = str(weights)
    if stale_after is not None:
        _set_stale_after(stale_after)
    from .. import cli as _cli

    root = run_benchmark(s, out=out, dry_run=dry_run, executor=executor, jobs=jobs, slurm_config=slurm_config,
                         plots=plots, command=_cli.invocation())
    if not dry_run:
        failed, not_run = unfinished_jobs(load_plan(root), root)
        if failed or not_run:
            raise typer.Exit(EXIT_JOBS_FAILED)


def _data_overrides(working_size: Optional[int], skip_bad: bool, resplit: bool, group_by: Optional[str],
                    val: Optional[float], test: Optional[float], split_seed: Optional[int]) -> list[str]:
    """The ``[data]`` options of `run` as ``--set``-style items (checked like the spec file's own keys)."""
    import json

    items = []
    if working_size is not None:
        items.append(f"data.image_size={working_size}")
    if skip_bad:
        items.append("data.skip_bad=true")
    if group_by:
        items += ["data.split=\"grouped\"", f"data.group_by={json.dumps(group_by)}"]
    elif resplit:
        items.append("data.split=\"stratified\"")
    for key, value in (("val", val), ("test", test), ("seed", split_seed)):
        if value is not None:
            items.append(f"data.{key}={json.dumps(value)}")
    return items


def _seeds_argument(seeds: Optional[str], seed: list[int], n_seeds: Optional[int]) -> Optional[str]:
    """One ``--seeds`` string for load_spec from --seeds, --seed (explicit, repeatable) and --n-seeds (a count)."""
    from ..errors import UserInputError
    from ..matrix.spec import THESIS_SEEDS

    given = [name for name, v in (("--seeds", seeds), ("--seed", seed or None), ("--n-seeds", n_seeds)) if v is not None]
    if len(given) > 1:
        raise UserInputError(f"pass only one of {', '.join(given)}: --seed S (one explicit seed, repeatable), "
                             "--seeds 7921,2048 (a list) or --n-seeds N (a count)")
    if seed:
        return ",".join(str(int(x)) for x in seed) + ","
    if n_seeds is not None:
        if n_seeds < 1:
            raise UserInputError(f"--n-seeds {n_seeds}: must be at least 1")
        chosen = (list(THESIS_SEEDS) + list(range(1, n_seeds)))[:n_seeds]
        return ",".join(str(x) for x in chosen) + ","
    if seeds is not None and "," not in seeds and seeds.strip().isdigit() and int(seeds) < 1000:
        from rich.markup import escape

        from . import err_console

        err_console.print(f"[yellow]note:[/] --seeds {escape(seeds)} is read as a count ({int(seeds)} seeds); "
                          f"write --n-seeds {int(seeds)} for that, or --seed {int(seeds)} for the one seed {int(seeds)}",
                          highlight=False, soft_wrap=True)
    return seeds


def _set_stale_after(seconds: float) -> None:
    from ..errors import UserInputError

    if seconds <= 0:
        raise UserInputError(f"--stale-after {seconds:g}: must be a positive number of seconds")
    from ..settings import set_env

    set_env("OOC_BENCH_CLAIM_STALE_S", repr(float(seconds)))


def _check_p_adjust(value: str) -> str:
    from ..errors import UserInputError
    from ..matrix.stats import P_ADJUST

    if value not in P_ADJUST:
        raise UserInputError(f"--p-adjust {value!r}: choose one of {', '.join(P_ADJUST)}")
    return value


def report(
    results_dir: Path = typer.Argument(..., help="A folder written by `ooc-bench run`."),
    latex: bool = typer.Option(False, "--latex", help="Write tables/*.tex (booktabs)."),
    markdown: bool = typer.Option(False, "--markdown", help="Write tables/*.md."),
    plots: bool = typer.Option(False, "--plots/--no-plots", help="Write plots/*.png."),
    per_class: bool = typer.Option(False, "--per-class", help="Quality table per class."),
    metric: str = typer.Option("accuracy", "--metric", help="Downstream metric for tables and plots."),
    p_adjust: Optional[str] = typer.Option(None, "--p-adjust", help="holm | bh | none (default: what summary.csv used, else holm)."),
) -> None:
    """Recompute summary.csv from downstream.csv, then re-render the tables (console, LaTeX, Markdown) and figures."""
    from ..matrix.report import print_tables, write_plots, write_tables
    from ..matrix.results import stats_config_of, write_summary

    console = Console()
    for name in ("quality.csv", "downstream.csv"):
        if not (Path(results_dir) / name).is_file():
            from ..errors import UserInputError

            raise UserInputError(f"{Path(results_dir) / name} not found: RESULTS_DIR must be a folder written by `ooc-bench run`")
    from ..atomic import check_writable

    check_writable(results_dir, "RESULTS_DIR")  # summary.csv, tables/ and plots/ are written there
    cfg = stats_config_of(results_dir, _check_p_adjust(p_adjust) if p_adjust is not None else None)
    write_summary(results_dir, cfg)
    print_tables(results_dir, console, per_class=per_class, metric=metric)
    written = []
    if latex or markdown:
        written += write_tables(results_dir, latex=latex, markdown=markdown, metric=metric)
    if plots:
        written += write_plots(results_dir, metric=metric)
    from ..matrix.html import write_html

    written.append(write_html(results_dir, metric=metric))  # always: the page a lab shares (tables, figures, provenance)
    for p in written:
        console.print(f"wrote {p}")


def status(results_dir: Path = typer.Argument(..., help="A folder written by `ooc-bench run`."),
           show: int = typer.Option(20, "--show", help="How many failed/running jobs to list."),
           stale_after: Optional[float] = typer.Option(None, "--stale-after", help="Seconds after which another host's claim counts as dead (default 86400; $OOC_BENCH_CLAIM_STALE_S).")) -> None:
    """Done / running / failed / missing jobs of the latest plan, with errors and log files.

    A running job shows the host, pid and age of its claim; a claim whose process died on this host, or that is
    older than the stale timeout (--stale-after), is stale: the next `ooc-bench run` takes the job over.
    """
    from collections import Counter

    from ..matrix.executor import job_states, load_plan
    from ..matrix.progress import format_duration
    from ..matrix.store import RunPaths, claim_info, stale_after_s

    if stale_after is not None:
        _set_stale_after(stale_after)

    console = Console()
    states = job_states(load_plan(results_dir), results_dir)
    t = Table(title=f"Status of {results_dir}", header_style="bold")
    for h in ("stage", "done", "running", "failed", "skipped", "missing"):
        t.add_column(h, justify="left" if h == "stage" else "right")
    for kind in ("fit", "domain", "sample", "score", "cell"):
        c = Counter(s for j, s, _ in states if j.kind == kind)
        if c:
            t.add_row(kind, *(str(c.get(k, 0)) for k in ("done", "running", "failed", "skipped", "missing")))
    console.print(t)
    from rich.markup import escape

    paths = RunPaths(Path(results_dir))
    listed = 0
    for j, s, rec in states:
        if listed >= show:
            break
        claim = claim_info(paths, j.kind, j.key) if s in ("running", "missing") else None
        if s == "running" and claim:
            left = max(stale_after_s() - claim["age_s"], 0.0)
            text = (f"claimed by {claim.get('host', '?')} pid {claim.get('pid', '?')}, "
                    f"{format_duration(claim['age_s'])} ago (counts as stale in {format_duration(left)}, --stale-after)")
        elif s == "missing" and claim and claim["stale"]:
            text = (f"stale claim by {claim.get('host', '?')} pid {claim.get('pid', '?')}, "
                    f"{format_duration(claim['age_s'])} old ({claim['why']}): the next `ooc-bench run` takes it over")
        elif s in ("failed", "skipped"):
            from ..matrix.progress import run_spelling

            text = f"{run_spelling((rec or {}).get('error', ''), j)} {(rec or {}).get('log', '')}".strip()
        else:
            continue
        listed += 1
        colour = "red" if s == "failed" else "yellow"
        console.print(f"[{colour}]{s}[/] {j.kind} {escape(j.label)}: {escape(text)}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add run, report and status to the main app."""
    app.command("run")(run)
    app.command("report")(report)
    app.command("status")(status)
