"""R1 γ sweep for the `gan` generator: the quality harness over a γ × training-seed grid, summarised per γ and budget.

Each (γ, seed) pair is one run of ``benchmarks/generator_quality.py`` in its own process and folder
(``OUT/g<γ>_s<seed>``), resumed with ``--extend`` when the sweep is started again, so an interrupted
sweep loses at most one fit. The harness's own ``--seed`` (split, judge, sampling) stays fixed, so only
the GAN's training seed varies between the seeds of one γ: the spread is training variance. Finished
runs from elsewhere join the summary with ``--include DIR`` (γ and seed are read from their CSVs).

Writes ``OUT/summary.csv`` (one row per dataset, settings variant, γ and budget) and ``OUT/summary.md``: class fidelity mean and
range over seeds, worst class, FD, recall, and the paired difference in class fidelity against the
reference γ (same seed, same budget) with the number of seeds on which it was higher.

    python benchmarks/gan_r1_sweep.py --dataset digits16 --gammas 0.05,0.2,0.8 --seeds 0,1,2 \\
        --budgets 10,20 --out runs/r1_digits16
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "benchmarks" / "generator_quality.py"
METRICS = ("class_fidelity", "class_fidelity_min", "fd", "recall", "spread_ratio_min", "fit_cpu_s")
# settings that a sweep varies or that do not change the training: runs differing only in these are compared
NOT_A_VARIANT = ("r1_gamma", "seed", "kimg", "device", "verbose", "resolution")


def variant(config: dict[str, Any]) -> str:
    """The non-default settings a harness row was given besides γ, seed and budget ("" for none).

    Rows are compared only within one variant, so a sweep with ``capacity=small`` is never paired with tiny runs.
    """
    from ooc_bench.config import defaults
    from ooc_bench.generators.stylegan.generator import GanConfig

    base = defaults(GanConfig)
    return ", ".join(f"{k}={config[k]}" for k in sorted(config)
                     if k not in NOT_A_VARIANT and config[k] != base.get(k, object()))


class SweepError(Exception):
    """Bad sweep options; reported as one line, exit code 2."""


def _floats(text: str, option: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SweepError(f"{option} {text!r}: give comma-separated numbers") from None
    if not values:
        raise SweepError(f"{option}: give at least one value")
    return values


def _ints(text: str, option: str) -> list[int]:
    values = _floats(text, option)
    if any(v != int(v) for v in values):
        raise SweepError(f"{option} {text!r}: give whole numbers")
    return [int(v) for v in values]


def run_folder(out: Path, gamma: float, seed: int) -> Path:
    """Where the run of one (γ, seed) pair lives."""
    return out / f"g{gamma:g}_s{seed}"


def _harness():
    """The quality harness as a module (it is a script, not a package member)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("generator_quality", HARNESS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def preflight(args: argparse.Namespace) -> None:
    """Every run's data set and gan settings checked here, so a bad option fails once, before any training."""
    from ooc_bench.errors import UserInputError
    from ooc_bench.generators import create_generator

    harness = _harness()
    if args.dataset not in harness.DATASETS:
        raise SweepError(f"--dataset {args.dataset!r}: choose one of {', '.join(harness.DATASETS)}")
    try:
        params = harness.parse_params(args.param, ["gan"])["gan"]
        for gamma in args.gammas:
            for b in args.budgets:
                create_generator("gan", **params, r1_gamma=gamma, kimg=b, device="cpu",
                                 resolution=harness.dataset_size(args.dataset))
    except (harness.HarnessError, UserInputError) as exc:
        raise SweepError(str(exc)) from None


def is_complete(folder: Path, budgets: list[float]) -> bool:
    """Whether the run in ``folder`` has measured every budget already (then it is not started again)."""
    path = folder / "quality.csv"
    if not path.is_file():
        return False
    with open(path, newline="", encoding="utf-8") as fh:
        done = {float(r["budget"]) for r in csv.DictReader(fh) if r["generator"] == "gan"}
    return all(any(abs(b - d) < 1e-9 for d in done) for b in budgets)


def harness_argv(args: argparse.Namespace, gamma: float, seed: int) -> list[str]:
    """The harness command line for one (γ, seed) pair (resumable: ``--extend``)."""
    argv = [sys.executable, str(HARNESS), "--generators", "gan", "--dataset", args.dataset,
            "--budgets", "gan=" + ",".join(f"{b:g}" for b in args.budgets),
            "--param", f"gan.r1_gamma={gamma:g}", "--param", f"gan.seed={seed}",
            "--per-class", str(args.per_class), "--judge-epochs", str(args.judge_epochs),
            "--threads", "1", "--extend", "--out", str(run_folder(args.out, gamma, seed))]
    if args.max_train_per_class:
        argv += ["--max-train-per-class", str(args.max_train_per_class)]
    for p in args.param:
        argv += ["--param", p]
    return argv


def effective_gamma(config: dict[str, Any], resolved: dict[str, Any] | None = None,
                    default_floor: float | None = None) -> float:
    """The R1 γ a harness row trained with: from its resolved config when recorded, else its explicit ``r1_gamma``,
    else the default resolved from its settings, with ``default_floor`` in place of today's floor when given
    (for CSVs written before the harness recorded resolved configs, by a version with another floor)."""
    if resolved and resolved.get("r1_gamma") is not None:
        return float(resolved["r1_gamma"])
    if config.get("r1_gamma") is not None:
        return float(config["r1_gamma"])
    from ooc_bench.generators.stylegan.generator import resolve_config
    from ooc_bench.generators.stylegan.loss import default_r1_gamma

    cfg = resolve_config(**config)
    if default_floor is None:
        return float(cfg["r1_gamma"])
    return default_r1_gamma(int(cfg["resolution"]), int(cfg["batch_size"]), default_floor)


def load_rows(folders: list[Path], default_floor: float | None = None) -> list[dict[str, Any]]:
    """Every gan row of the ``quality.csv`` files under ``folders``, with its γ and training seed."""
    rows = []
    for folder in folders:
        for path in sorted(folder.rglob("quality.csv")):
            with open(path, newline="", encoding="utf-8") as fh:
                for r in csv.DictReader(fh):
                    if r["generator"] != "gan":
                        continue
                    config = json.loads(r["config"])
                    resolved = json.loads(r["resolved_config"]) if r.get("resolved_config") else None
                    gamma = effective_gamma(config, resolved, default_floor)
                    row: dict[str, Any] = {"dataset": r["dataset"], "variant": variant(config), "budget": float(r["budget"]),
                                           "gamma": gamma, "seed": int(config.get("seed", 0)),
                                           "run": str(path.parent), "judge_real_acc": float(r["judge_real_acc"])}
                    row.update({m: float(r[m]) for m in METRICS})
                    rows.append(row)
    return rows


def summarise(rows: list[dict[str, Any]], reference: float | None = None) -> list[dict[str, Any]]:
    """One row per (dataset, variant, γ, budget): mean/min/max over seeds, and paired differences to ``reference``.

    With no ``reference`` the smallest γ of each dataset and variant is the reference. A (γ, seed, budget)
    measured twice (the same run included twice) counts once.
    """
    unique: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        unique.setdefault((r["dataset"], r.get("variant", ""), r["gamma"], r["seed"], r["budget"]), r)
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for (ds, var, g, _s, b), r in sorted(unique.items()):
        groups[(ds, var, g, b)].append(r)
    out = []
    for (ds, var, g, b), members in sorted(groups.items()):
        ref = reference if reference is not None else min(k[2] for k in groups if k[:2] == (ds, var))
        cf = [m["class_fidelity"] for m in members]
        row: dict[str, Any] = {"dataset": ds, "variant": var, "gamma": g, "budget": b, "n_seeds": len(members),
                               "seeds": " ".join(str(m["seed"]) for m in members),
                               "class_fidelity_mean": statistics.fmean(cf), "class_fidelity_lo": min(cf),
                               "class_fidelity_hi": max(cf)}
        for m in METRICS[1:]:
            row[f"{m}_mean"] = statistics.fmean(x[m] for x in members)
        row["reference_gamma"] = ref
        ref_by_seed = {x["seed"]: x["class_fidelity"] for x in groups.get((ds, var, ref, b), [])}
        paired = [m["class_fidelity"] - ref_by_seed[m["seed"]] for m in members if m["seed"] in ref_by_seed]
        row["n_paired"] = len(paired) if g != ref else 0
        row["delta_vs_reference_mean"] = statistics.fmean(paired) if paired and g != ref else math.nan
        row["wins_vs_reference"] = sum(d > 0 for d in paired) if g != ref else 0
        out.append(row)
    return out


def to_markdown(summary: list[dict[str, Any]]) -> str:
    """The summary as Markdown tables, one per dataset and variant."""
    lines = []
    for ds, var in sorted({(s["dataset"], s["variant"]) for s in summary}):
        lines += [f"**{ds}**" + (f" ({var})" if var else ""), "",
                  ("| γ | kimg | seeds | class fidelity mean [min, max] | worst class (mean) | FD (mean) "
                   "| recall (mean) | fit CPU-min (mean) | Δ class fidelity vs reference (higher / paired) |"),
                  "|---|---|---|---|---|---|---|---|---|"]
        for s in (x for x in summary if (x["dataset"], x["variant"]) == (ds, var)):
            if s["gamma"] == s["reference_gamma"]:
                delta = "reference"
            elif s["n_paired"]:
                delta = f"{s['delta_vs_reference_mean']:+.3f} ({s['wins_vs_reference']}/{s['n_paired']})"
            else:
                delta = "–"
            lines.append(f"| {s['gamma']:g} | {s['budget']:g} | {s['n_seeds']} | {s['class_fidelity_mean']:.3f} "
                         f"[{s['class_fidelity_lo']:.3f}, {s['class_fidelity_hi']:.3f}] "
                         f"| {s['class_fidelity_min_mean']:.3f} | {s['fd_mean']:.2f} | {s['recall_mean']:.2f} "
                         f"| {s['fit_cpu_s_mean'] / 60:.1f} | {delta} |")
        lines.append("")
    return "\n".join(lines)


def write_summary(out: Path, summary: list[dict[str, Any]]) -> None:
    """``summary.csv`` and ``summary.md`` in ``out``, each written to a temporary name and renamed."""
    from ooc_bench.atomic import atomic_open, write_text

    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "summary.csv", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(summary[0]) if summary else ["dataset"])
        writer.writeheader()
        writer.writerows(summary)
    write_text(out / "summary.md", to_markdown(summary))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="digits16", help="a harness data set (see generator_quality.py --help)")
    ap.add_argument("--gammas", default="0.05,0.2,0.8", help="comma-separated R1 γ values")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated GAN training seeds")
    ap.add_argument("--budgets", default="10,20", help="comma-separated kimg ladder")
    ap.add_argument("--param", action="append", default=[], help="further gan.KEY=VALUE settings (repeatable)")
    ap.add_argument("--per-class", type=int, default=100, help="synthetic images per class and budget")
    ap.add_argument("--judge-epochs", type=int, default=15)
    ap.add_argument("--max-train-per-class", type=int, default=None, help="use at most this many train images per class")
    ap.add_argument("--reference", type=float, default=None, help="γ the others are compared with (default: smallest)")
    ap.add_argument("--jobs", type=int, default=1, help="runs at once, each on one thread")
    ap.add_argument("--include", type=Path, action="append", default=[],
                    help="finished harness folders to add to the summary (repeatable)")
    ap.add_argument("--default-floor", type=float, default=None,
                    help="for rows that recorded neither a γ nor a resolved config: the floor of the version that "
                         "wrote them (default: today's)")
    ap.add_argument("--summarise-only", action="store_true", help="train nothing; summarise OUT and --include")
    ap.add_argument("--out", type=Path, required=True, help="sweep folder")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Run the missing (γ, seed) runs, then write the summary. Exit 0, 1 if a run failed, 2 on bad options."""
    try:
        args = build_parser().parse_args(argv)
        args.gammas = _floats(args.gammas, "--gammas")
        args.seeds = _ints(args.seeds, "--seeds")
        args.budgets = _floats(args.budgets, "--budgets")
        if any(g < 0 for g in args.gammas):
            raise SweepError(f"--gammas: R1 γ must be >= 0, got {min(args.gammas):g}")
        for p in args.param:
            key = p.partition("=")[0].strip()
            if not key.startswith("gan.") or "=" not in p:
                raise SweepError(f"--param {p!r}: use gan.KEY=VALUE")
            if key in ("gan.r1_gamma", "gan.seed"):
                raise SweepError(f"--param {p!r}: {key} is set by --{'gammas' if key.endswith('gamma') else 'seeds'}")
        if args.jobs < 1:
            raise SweepError("--jobs must be >= 1")
        for folder in args.include:
            if not folder.is_dir():
                raise SweepError(f"--include {folder}: no such folder")
        if not args.summarise_only:
            preflight(args)
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = []
    if not args.summarise_only:
        from joblib import Parallel, delayed

        pairs = [(g, s) for g in args.gammas for s in args.seeds
                 if not is_complete(run_folder(args.out, g, s), args.budgets)]

        def one(gamma: float, seed: int) -> int:
            folder = run_folder(args.out, gamma, seed)
            folder.parent.mkdir(parents=True, exist_ok=True)
            with open(f"{folder}.log", "a", encoding="utf-8") as log:
                return subprocess.run(harness_argv(args, gamma, seed), stdout=log, stderr=subprocess.STDOUT,
                                      check=False).returncode

        codes = Parallel(n_jobs=args.jobs, prefer="threads")(delayed(one)(g, s) for g, s in pairs)
        failed = [f"{run_folder(args.out, g, s)}.log" for (g, s), c in zip(pairs, codes) if c != 0]
        for log in failed:
            print(f"run failed, see {log}", file=sys.stderr)
    summary = summarise(load_rows([args.out, *args.include], args.default_floor), args.reference)
    write_summary(args.out, summary)
    print(to_markdown(summary))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
