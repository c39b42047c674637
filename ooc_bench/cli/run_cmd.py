"""CLI commands: `run` (the benchmark matrix), `report` (re-render from CSVs) and `status` (done/running/failed cells)."""

from __future__ import annotations

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
    seeds: Optional[str] = typer.Option(None, "--seeds", help="A count (5: the thesis seeds) or a list (7921,2048)."),
    sd_model: Optional[str] = typer.Option(None, "--sd-model", help="Stable Diffusion hub id or local diffusers folder for sd / sd-img2img."),
    name: Optional[str] = typer.Option(None, "--name", help="Run name (default: the spec's name)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Results folder (default results/<run-name>/)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (counts per stage, what is cached) and stop."),
    executor: str = typer.Option("local", "--executor", help="local | slurm | submitit-local."),
    jobs: int = typer.Option(1, "--jobs", help="Parallel worker processes (local) or concurrent array tasks (slurm)."),
    slurm_config: Optional[str] = typer.Option(None, "--slurm-config", help="TOML file of submitit/Slurm parameters."),
    no_plots: bool = typer.Option(False, "--no-plots", help="Skip the matplotlib figures."),
    p_adjust: Optional[str] = typer.Option(None, "--p-adjust", help="Multiple-comparison adjustment: holm (default) | bh | none; overrides [stats] p_adjust."),
) -> None:
    """Run the benchmark matrix: fit generators, sample, score, train and evaluate classifiers; cached and resumable."""
    from ..matrix.run import run_benchmark
    from ..matrix.spec import load_spec

    s = load_spec(spec, data=data, generators=generators, models=models, ratios=ratios, protocol=protocol, seeds=seeds,
                  sd_model=sd_model, name=name)
    if p_adjust is not None:
        s.stats.p_adjust = _check_p_adjust(p_adjust)
    run_benchmark(s, out=out, dry_run=dry_run, executor=executor, jobs=jobs, slurm_config=slurm_config, plots=not no_plots)


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
    plots: bool = typer.Option(False, "--plots", help="Write plots/*.png."),
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
           show: int = typer.Option(20, "--show", help="How many failed/running jobs to list.")) -> None:
    """Done / running / failed / missing jobs of the latest plan, with errors and log files."""
    from collections import Counter

    from ..matrix.executor import job_states, load_plan

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
    for j, s, rec in [x for x in states if x[1] in ("failed", "running", "skipped")][:show]:
        extra = (rec or {}).get("error", "")
        log = (rec or {}).get("log", "")
        console.print(f"[{'red' if s == 'failed' else 'yellow'}]{s}[/] {j.kind} {j.label}: {extra} {log}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add run, report and status to the main app."""
    app.command("run")(run)
    app.command("report")(report)
    app.command("status")(status)
