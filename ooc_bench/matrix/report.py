"""Render a run's CSVs (and nothing else) as rich console tables, LaTeX booktabs, Markdown and matplotlib figures."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..atomic import write_text
from ..errors import UserInputError
from .results import as_float as _f
from .results import read_csv
from .spec import BASELINE
from .stats import paired_compare

QUALITY_METRICS = [("fd", "FD"), ("fid", "FID"), ("kid", "KID"), ("precision", "precision"), ("recall", "recall"),
                   ("density", "density"), ("coverage", "coverage"), ("nearcopy_share", "near-copy share"),
                   ("nearcopy_expected", "near-copy expected"), ("class_fidelity", "class fidelity")]
_LEGACY_METRICS = {"kid_mean": "kid"}  # quality.csv written before intervals and identity columns


def _fmt(x: float, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def load_results(run_dir: Path) -> dict[str, list[dict[str, str]]]:
    """The three CSVs of a results folder; a clear error when they are missing."""
    run_dir = Path(run_dir)
    out = {}
    for name in ("quality", "downstream", "summary"):
        p = run_dir / f"{name}.csv"
        if not p.is_file():
            raise UserInputError(f"{p} not found: RESULTS_DIR must be a folder written by `ooc-bench run`")
        out[name] = read_csv(p)
    return out


def _cell(r: dict[str, Any], digits: int, sep: str = " ") -> str:
    """'value [ci_low, ci_high]' of a quality row (just the value when it has no interval)."""
    v, lo, hi = _f(r.get("value")), _f(r.get("ci_low")), _f(r.get("ci_high"))
    if math.isnan(v):
        return "–"
    return f"{v:.{digits}g}" + ("" if math.isnan(lo) or math.isnan(hi) else f"{sep}[{lo:.2g}, {hi:.2g}]")


def quality_table(quality: list[dict[str, str]], per_class: bool = False, sep: str = " ") -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per generator (and class), one column per quality metric as 'value [95 % interval]'.

    ``n/subset`` is what the distances were really computed at: images per side in each of the ``subsets``
    matched subsets (fake/real); ``n judged`` the synthetic (or held-out real) images class fidelity judged.
    ``sep`` goes between a value and its interval (the console puts the interval on a second line).
    Reads older quality.csv files too (``fid``/``kid_mean`` rows, an ``extractor`` column, no intervals)."""
    cells: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    space: dict[tuple[str, str], str] = {}
    for r in quality:
        if not per_class and r["class"] != "all":
            continue
        nc_space = r.get("nearcopy_space") or ""
        if nc_space and nc_space != "any":  # near-copy rows per space: the table shows 'any' (pixel or features)
            continue
        key = (r["generator"], r["class"])
        metric = _LEGACY_METRICS.get(r["metric"], r["metric"])
        cells[key][metric] = r
        if metric != "class_fidelity" and not nc_space:  # the features column names the distances' space
            space[key] = r.get("feature_space") or r.get("extractor") or ""
    metrics = [(m, h) for m, h in QUALITY_METRICS if any(m in v for v in cells.values())]
    header = (["generator"] + (["class"] if per_class else []) + [h for _, h in metrics]
              + ["features", "n/subset fake/real", "subsets", "n judged"])
    rows = []
    for key in sorted(cells, key=lambda k: (not k[0].startswith("real-"), k[0], k[1] != "all", k[1])):
        g, c = key
        got = cells[key]
        vals = [_cell(got[m], 3, sep) if m in got else "–" for m, _ in metrics]
        dist = next((got[m] for m in ("fd", "fid", "kid", "precision") if m in got), None)
        n = f"{dist.get('n_fake', '')}/{dist.get('n_real', '')}" if dist else "–"
        subsets = (dist.get("subsets") or "–") if dist else "–"
        judged = got["class_fidelity"].get("n_fake", "–") if "class_fidelity" in got else "–"
        label = f"{g} (floor)" if g.startswith("real-") and g != "real-only" else g
        rows.append([label] + ([c] if per_class else []) + vals + [space.get(key, ""), n, str(subsets), str(judged)])
    return header, rows


def downstream_table(summary: list[dict[str, str]], metric: str = "accuracy") -> tuple[list[str], list[list[tuple[str, str]]]]:
    """Header and rows (model, generator, protocol, then one 'mean ± std (Δ)' per ratio) with a significance style."""
    rows_src = [r for r in summary if r["metric"] == metric]
    ratios = sorted({_f(r["ratio"]) for r in rows_src if r["generator"] != BASELINE})
    header = ["model", "generator", "protocol", "r = 0 (real only)"] + [f"r = {r:g}" for r in ratios]
    by_model: dict[str, dict] = defaultdict(lambda: defaultdict(dict))
    base = {}
    for r in rows_src:
        if r["generator"] == BASELINE:
            base[r["model"]] = r
        else:
            by_model[r["model"]][(r["generator"], r["protocol"])][_f(r["ratio"])] = r
    out = []
    for model in sorted(set(by_model) | set(base)):
        b = base.get(model)
        b_txt = (f"{_f(b['mean']):.3f} ± {_fmt(_f(b['std']))}", "") if b else ("–", "")
        if not by_model.get(model):
            out.append([(model, ""), ("–", ""), ("–", ""), b_txt] + [("", "")] * len(ratios))
        for (gen, protocol), per_ratio in sorted(by_model.get(model, {}).items()):
            row = [(model, ""), (gen, ""), (protocol, ""), b_txt]
            for ratio in ratios:
                r = per_ratio.get(ratio)
                if r is None:
                    row.append(("", ""))
                    continue
                d = _f(r.get("delta"))
                p, alpha = significance(r)  # the multiplicity-adjusted p when the summary has it
                style = "" if math.isnan(p) or p >= alpha else ("green" if d > 0 else "red")
                row.append((f"{_f(r['mean']):.3f} ± {_fmt(_f(r['std']))} ({d:+.3f})", style))
            out.append(row)
    return header, out


def significance(r: dict[str, Any]) -> tuple[float, float]:
    """(p that decides significance, alpha) of a summary row: the adjusted p when the row has one (older folders:
    the raw p), and the row's alpha (default 0.05)."""
    p = _f(r.get("p_adjusted"))
    if math.isnan(p):
        p = _f(r.get("p_value"))
    alpha = _f(r.get("alpha"))
    return p, (0.05 if math.isnan(alpha) else alpha)


def significance_rule(summary: list[dict[str, Any]], metric: str = "accuracy") -> str:
    """How the table marks significance, read from the summary rows (e.g. 'sign-flip exact test, Holm-adjusted p < 0.05')."""
    rows = [r for r in summary if r["metric"] == metric and r["generator"] != BASELINE and r.get("test")]
    if not rows:
        return "no paired comparisons"
    r = rows[0]
    method = r.get("p_adjust_method") or ""
    adj = {"holm": "Holm-adjusted ", "bh": "Benjamini–Hochberg-adjusted ", "none": "unadjusted "}.get(method, "unadjusted ")
    _, alpha = significance(r)
    return f"{r['test']} test over seeds, {adj}p < {alpha:g}"


def _test_values(downstream: list[dict[str, Any]], metric: str) -> dict[tuple, dict[int, float]]:
    by: dict[tuple, dict[int, float]] = defaultdict(dict)
    for r in downstream:
        if r["metric"] == metric and (r.get("split") or "test") == "test":
            by[(r["model"], r["generator"], r["protocol"], _f(r["ratio"]))][int(r["seed"])] = _f(r["value"])
    return by


_ADJ_TEXT = {"holm": "Holm-adjusted", "bh": "Benjamini–Hochberg-adjusted", "none": "unadjusted"}


def verdicts(downstream: list[dict[str, Any]], metric: str = "accuracy", summary: list[dict[str, Any]] | None = None,
             config: Any = None) -> list[str]:
    """One line per model. Rule: the best generator/protocol/ratio is picked by its VALIDATION mean; the line
    reports that cell's TEST result against real-only with its multiplicity-adjusted p (family: every comparison
    against real-only for this model and metric), and the unadjusted comparison with `aug` at the same setting."""
    from .results import summary_rows

    summ = summary if summary is not None else summary_rows(downstream, config)
    rows = [r for r in summ if r["metric"] == metric]
    by = _test_values(downstream, metric)
    lines = []
    for model in sorted({r["model"] for r in rows}):
        base = next((r for r in rows if r["model"] == model and r["generator"] == BASELINE), None)
        cands = [r for r in rows if r["model"] == model and r["generator"] != BASELINE]
        if not cands:
            lines.append(f"{model}: only the real-only baseline was run ({metric} {_fmt(_f(base['mean']) if base else math.nan)}).")
            continue
        by_val = all(not math.isnan(_f(r.get("val_mean"))) for r in cands)
        best = max(cands, key=lambda r: (_f(r["val_mean"]) if by_val else _f(r["mean"])))
        rule = ("picked by validation mean" if by_val else
                "picked by TEST mean because this folder has no validation rows: optimistic, do not cite as a test")
        p, alpha = significance(best)
        raw, delta = _f(best.get("p_value")), _f(best.get("delta"))
        method = best.get("p_adjust_method") or "none"
        fam = best.get("family_size") or len(cands)
        val_txt = f"val {_fmt(_f(best['val_mean']))}, " if by_val else ""
        verdict = (f"{model}: best cell ({rule}) is {best['generator']} ({best['protocol']} r={_f(best['ratio']):g}): "
                   f"{val_txt}test {metric} {_fmt(_f(best['mean']))}; vs real-only Δ {delta:+.3f} "
                   f"({best.get('test') or 'no test'}, {_ADJ_TEXT.get(method, method + '-adjusted')} p={_fmt(p)} "
                   f"over {fam} comparisons, "
                   f"raw p={_fmt(raw)}, n={best.get('n_pairs') or 0})")
        sig = not math.isnan(p) and p < alpha
        verdict += (f" — significant at {alpha:g}" if sig and delta > 0 else
                    (f" — significantly worse at {alpha:g}" if sig else f" — not significant at {alpha:g}"))
        p_min = _f(best.get("p_min_attainable"))
        floor = p_min * (int(fam) if method == "holm" else 1)
        if not math.isnan(p_min) and p_min > 0 and floor >= alpha:
            verdict += (f" (with {best.get('n_pairs')} seeds the smallest attainable p is {p_min:.4g}"
                        f"{f', {min(floor, 1.0):.4g} after Holm over {fam}' if method == 'holm' else ''}: no cell can reach "
                        f"{alpha:g}; add seeds)")
        key = (model, best["generator"], best["protocol"], _f(best["ratio"]))
        aug = (model, "aug", best["protocol"], _f(best["ratio"]))
        if best["generator"] != "aug" and aug in by and key in by:
            test = "t" if best.get("test") == "paired t" else "sign-flip"
            pa = paired_compare(by[key], by[aug], test=test)
            sig_a = not math.isnan(pa.p_value) and pa.p_value < alpha
            verdict += (f"; vs aug Δ {pa.delta:+.3f} (unadjusted p={_fmt(pa.p_value)})"
                        f"{' — beats aug' if sig_a and pa.delta > 0 else ''}")
        lines.append(verdict + ".")
    return lines


def _column_chunks(header: list[str], rows: list[list[str]], keys: int, width: int
                   ) -> list[tuple[list[str], list[list[str]]]]:
    """Split a wide table into tables that each fit ``width`` columns, repeating the first ``keys`` columns, so
    that no header or value is cut on a narrow (80-column) terminal or in a log file."""
    def col_width(i: int) -> int:
        cells = [header[i]] + [r[i] for r in rows]
        return max(len(line) for c in cells for line in str(c).split("\n")) + 3  # padding and border

    key_w = sum(col_width(i) for i in range(keys)) + 1
    chunks: list[list[int]] = [[]]
    used = key_w
    for i in range(keys, len(header)):
        w = col_width(i)
        if chunks[-1] and used + w > width:
            chunks.append([])
            used = key_w
        chunks[-1].append(i)
        used += w
    out = []
    for chunk in chunks:
        idx = list(range(keys)) + chunk
        out.append(([header[i] for i in idx], [[r[i] for i in idx] for r in rows]))
    return out


def print_tables(run_dir: Path, console: Console | None = None, per_class: bool = False, metric: str = "accuracy") -> None:
    """The three end-of-run tables: generator quality, downstream accuracy, one verdict per model."""
    console = console or Console()
    res = load_results(run_dir)
    header, rows = quality_table(res["quality"], per_class, sep="\n")  # the interval under the value
    title = ("Generator quality vs the real reference split: mean [95 % interval] over matched subsets\n"
             "(floor): held-out real images at the same n · class fidelity: accuracy of the real-train classifier")
    for part, (h_part, r_part) in enumerate(_column_chunks(header, rows, 2 if per_class else 1, console.width)):
        t = Table(title=title if part == 0 else None, header_style="bold")
        for h in h_part:
            t.add_column(h, justify="left" if h in ("generator", "class", "features") else "right", no_wrap=True)
        for r in r_part:
            t.add_row(*r)
        console.print(t)
    for space, weights in dict.fromkeys((r.get("feature_space") or r.get("extractor") or "", r.get("weights") or "")
                                        for r in res["quality"] if r.get("weights")):
        loud = weights.startswith(("RANDOM", "NON-STANDARD"))
        console.print(f"{'[bold red]' if loud else '[dim]'}{space} weights: {weights}[/]", highlight=False)
    header, rows2 = downstream_table(res["summary"], metric)
    t = Table(title=f"Downstream {metric} on held-out real test images: mean ± std over seeds (Δ vs real-only; "
                    f"green/red: {significance_rule(res['summary'], metric)})", header_style="bold")
    for h in header:
        t.add_column(h, justify="left" if h in ("model", "generator", "protocol") else "right")
    for r in rows2:
        t.add_row(*[f"[{s}]{txt}[/]" if s else txt for txt, s in r])
    console.print(t)
    for line in verdicts(res["downstream"], metric, summary=res["summary"]):
        console.print("• " + line, highlight=False)
    summ = [r for r in res["summary"] if r["metric"] == metric]
    if summ and not any(r.get("boot_ci95_low") not in (None, "") for r in summ):
        console.print(f"[dim]hierarchical-bootstrap intervals (boot_ci95_*): not computed for {metric} — this folder has "
                      "no per-image predictions (predictions/), or the metric is not accuracy/balanced_accuracy[/]",
                      highlight=False)


def _latex_escape(s: str) -> str:
    from .thesis_tables import latex_escape

    return latex_escape(s)


def to_latex(header: list[str], rows: list[list[str]], caption: str, label: str) -> str:
    """A booktabs table of plain-text cells (everything escaped); the thesis tables use ``thesis_tables``."""
    from .thesis_tables import Table, to_latex_table

    return to_latex_table(Table("table", header, rows, caption, label, [False] + [True] * (len(header) - 1)))


def to_markdown(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table of plain-text cells (Markdown specials escaped)."""
    from .thesis_tables import markdown_escape

    out = ["| " + " | ".join(markdown_escape(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(markdown_escape(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def write_tables(run_dir: Path, latex: bool = True, markdown: bool = True, metric: str = "accuracy",
                 per_class: bool = True) -> list[Path]:
    """Write tables/quality.{tex,md}, tables/downstream_<metric>.{tex,md} and, with ``per_class``, the per-class
    tables (quality_per_class, downstream_<metric>_per_class) — each file named by its metric, never overwritten by
    another metric's; labels are unique to the run, table and metric."""
    from .thesis_tables import run_name, tables_for, to_latex_table, to_markdown_table

    res = load_results(run_dir)
    out_dir = Path(run_dir) / "tables"
    written = []
    for t in tables_for(res, run_name(run_dir), metric=metric, per_class=per_class):
        if latex:
            write_text(out_dir / f"{t.name}.tex", to_latex_table(t))
            written.append(out_dir / f"{t.name}.tex")
        if markdown:
            write_text(out_dir / f"{t.name}.md", to_markdown_table(t))
            written.append(out_dir / f"{t.name}.md")
    return written


def _save_figure(fig, path: Path, dpi: int = 300) -> Path:
    """Lay out, write atomically as PNG (300 dpi) and PDF beside it, close; returns the PNG path."""
    from .figures import save_figure

    return save_figure(fig, path, dpi=dpi)[0]


def write_plots(run_dir: Path, metric: str = "accuracy") -> list[Path]:
    """plots/<metric>_vs_ratio_<model> per model (CI bands clipped to the metric's range) and
    plots/fd_vs_delta_<metric> (error bars, the real-train floor), each as 300-dpi PNG and PDF."""
    from .figures import fd_vs_delta, metric_vs_ratio

    res = load_results(run_dir)
    out_dir = Path(run_dir) / "plots"
    written: list[Path] = []
    summ = [r for r in res["summary"] if r["metric"] == metric]
    for model in sorted({r["model"] for r in summ}):
        written += metric_vs_ratio(summ, metric, model, out_dir / f"{metric}_vs_ratio_{model}.png")
    written += fd_vs_delta(res["quality"], summ, metric, out_dir / f"fd_vs_delta_{metric}.png")
    return written


def write_sample_grid(out: Path, columns: dict[str, dict[str, list[Path]]], per_class: int = 6) -> Path:
    """A grid (PNG + PDF): one labelled row per (source, class), ``per_class`` images each, real and synthetic images
    centre-cropped to squares the same way; ``columns`` maps source -> class -> paths. Returns the PNG path."""
    from .figures import sample_grid

    return sample_grid(Path(out), columns, per_class=per_class)[0]
