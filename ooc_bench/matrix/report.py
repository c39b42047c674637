"""Render a run's CSVs (and nothing else) as rich console tables, LaTeX booktabs, Markdown and matplotlib figures."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..atomic import atomic_path, write_text
from ..errors import UserInputError
from .results import read_csv
from .spec import BASELINE
from .stats import paired_compare

QUALITY_METRICS = [("fid", "FID"), ("kid_mean", "KID"), ("precision", "precision"), ("recall", "recall"),
                   ("density", "density"), ("coverage", "coverage"), ("nearcopy_share", "near-copy share")]


def _f(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


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


def quality_table(quality: list[dict[str, str]], per_class: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per generator (and class), one column per quality metric, with n."""
    cells: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    extractor, n = {}, {}
    for r in quality:
        if not per_class and r["class"] != "all":
            continue
        key = (r["generator"], r["class"])
        cells[key][r["metric"]] = _f(r["value"])
        extractor[key] = r["extractor"]
        n[key] = f"{r['n_fake']}/{r['n_real']}"
    metrics = [(m, h) for m, h in QUALITY_METRICS if any(m in v for v in cells.values())]
    header = ["generator"] + (["class"] if per_class else []) + [h for _, h in metrics] + ["features", "n fake/real"]
    rows = []
    for key in sorted(cells, key=lambda k: (k[0] != "real-train", k[0], k[1] != "all", k[1])):
        g, c = key
        vals = [_fmt(cells[key].get(m, math.nan), 4 if m == "kid_mean" else 3) for m, _ in metrics]
        rows.append([g] + ([c] if per_class else []) + vals + [extractor[key], n[key]])
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
                d, p = _f(r.get("delta")), _f(r.get("p_value"))
                style = "" if math.isnan(p) or p >= 0.05 else ("green" if d > 0 else "red")
                row.append((f"{_f(r['mean']):.3f} ± {_fmt(_f(r['std']))} ({d:+.3f})", style))
            out.append(row)
    return header, out


def verdicts(downstream: list[dict[str, str]], metric: str = "accuracy") -> list[str]:
    """One line per model: the best generator and ratio, and whether it beats real-only and `aug` (paired, p < 0.05)."""
    by: dict[tuple, dict[int, float]] = defaultdict(dict)
    for r in downstream:
        if r["metric"] == metric:
            by[(r["model"], r["generator"], r["protocol"], _f(r["ratio"]))][int(r["seed"])] = _f(r["value"])
    lines = []
    for model in sorted({k[0] for k in by}):
        base = by.get((model, BASELINE, "none", 0.0), {})
        cands = {k: v for k, v in by.items() if k[0] == model and k[1] != BASELINE}
        if not cands:
            lines.append(f"{model}: only the real-only baseline was run ({metric} {sum(base.values()) / max(len(base), 1):.3f}).")
            continue
        best = max(cands, key=lambda k: sum(cands[k].values()) / len(cands[k]))
        mean = sum(cands[best].values()) / len(cands[best])
        pc = paired_compare(cands[best], base)
        verdict = (f"{model}: best is {best[1]} ({best[2]} r={best[3]:g}) with {metric} {mean:.3f}; "
                   f"vs real-only Δ {pc.delta:+.3f} (p={_fmt(pc.p_value)}, n={pc.n_pairs})")
        sig = not math.isnan(pc.p_value) and pc.p_value < 0.05
        verdict += " — significant" if sig and pc.delta > 0 else (" — significantly worse" if sig else " — not significant")
        aug = {k: v for k, v in cands.items() if k[1] == "aug" and k[2:] == best[2:]}
        if best[1] != "aug" and aug:
            pa = paired_compare(cands[best], next(iter(aug.values())))
            sig_a = not math.isnan(pa.p_value) and pa.p_value < 0.05
            verdict += f"; vs aug Δ {pa.delta:+.3f} (p={_fmt(pa.p_value)}){' — beats aug' if sig_a and pa.delta > 0 else ''}"
        lines.append(verdict + ".")
    return lines


def print_tables(run_dir: Path, console: Console | None = None, per_class: bool = False, metric: str = "accuracy") -> None:
    """The three end-of-run tables: generator quality, downstream accuracy, one verdict per model."""
    console = console or Console()
    res = load_results(run_dir)
    header, rows = quality_table(res["quality"], per_class)
    t = Table(title="Generator quality (vs the real reference split)", header_style="bold")
    for h in header:
        t.add_column(h, justify="left" if h in ("generator", "class", "features") else "right")
    for r in rows:
        t.add_row(*r)
    console.print(t)
    header, rows2 = downstream_table(res["summary"], metric)
    t = Table(title=f"Downstream {metric} on held-out real test images: mean ± std over seeds (Δ vs real-only; "
                    f"green/red: paired t-test p < 0.05)", header_style="bold")
    for h in header:
        t.add_column(h, justify="left" if h in ("model", "generator", "protocol") else "right")
    for r in rows2:
        t.add_row(*[f"[{s}]{txt}[/]" if s else txt for txt, s in r])
    console.print(t)
    for line in verdicts(res["downstream"], metric):
        console.print("• " + line, highlight=False)


def _latex_escape(s: str) -> str:
    return s.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("%", r"\%").replace("&", r"\&").replace("±", r"$\pm$")


def to_latex(header: list[str], rows: list[list[str]], caption: str, label: str) -> str:
    """A booktabs table."""
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{_latex_escape(caption)}}}", rf"\label{{{label}}}",
             r"\begin{tabular}{" + "l" * 1 + "r" * (len(header) - 1) + "}", r"\toprule",
             " & ".join(_latex_escape(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(_latex_escape(c) for c in r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def to_markdown(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def write_tables(run_dir: Path, latex: bool = True, markdown: bool = True, metric: str = "accuracy") -> list[Path]:
    """Write tables/quality.{tex,md} and tables/downstream.{tex,md} from the CSVs."""
    res = load_results(run_dir)
    qh, qr = quality_table(res["quality"])
    dh, dr = downstream_table(res["summary"], metric)
    dr_txt = [[txt for txt, _ in r] for r in dr]
    out_dir = Path(run_dir) / "tables"
    written = []
    if latex:
        for name, h, r, cap in (("quality", qh, qr, "Synthetic-image quality against the real reference split."),
                                ("downstream", dh, dr_txt, f"Test {metric}: mean ± std over seeds (Δ vs real-only).")):
            p = out_dir / f"{name}.tex"
            write_text(p, to_latex(h, r, cap, f"tab:ooc-{name}"))
            written.append(p)
    if markdown:
        for name, h, r in (("quality", qh, qr), ("downstream", dh, dr_txt)):
            p = out_dir / f"{name}.md"
            write_text(p, to_markdown(h, r))
            written.append(p)
    return written


def _save_figure(fig, path: Path, dpi: int = 120) -> Path:
    """Lay out, write atomically as PNG, close; returns the path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    return path


def write_plots(run_dir: Path, metric: str = "accuracy") -> list[Path]:
    """accuracy-vs-ratio per model (CI bands) and FID vs Δaccuracy, as PNGs under plots/."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = load_results(run_dir)
    out_dir = Path(run_dir) / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    summ = [r for r in res["summary"] if r["metric"] == metric]
    for model in sorted({r["model"] for r in summ}):
        fig, ax = plt.subplots(figsize=(6, 4))
        base = [r for r in summ if r["model"] == model and r["generator"] == BASELINE]
        series = defaultdict(list)
        for r in summ:
            if r["model"] == model and r["generator"] != BASELINE:
                series[(r["generator"], r["protocol"])].append(r)
        for (gen, protocol), rs in sorted(series.items()):
            pts = ([(0.0, base[0])] if base and protocol != "synthetic-only" else []) + sorted(((_f(r["ratio"]), r) for r in rs), key=lambda t: t[0])
            x = [p[0] for p in pts]
            y = [_f(p[1]["mean"]) for p in pts]
            lo = [_f(p[1]["ci95_low"]) for p in pts]
            hi = [_f(p[1]["ci95_high"]) for p in pts]
            ax.plot(x, y, marker="o", label=f"{gen} ({protocol})")
            ax.fill_between(x, lo, hi, alpha=0.15)
        if base:
            ax.axhline(_f(base[0]["mean"]), color="grey", ls="--", lw=1, label="real only")
        ax.set_xlabel("synthetic ratio r")
        ax.set_ylabel(f"test {metric} (mean, 95 % CI)")
        ax.set_title(model)
        ax.legend(fontsize=8)
        written.append(_save_figure(fig, out_dir / f"{metric}_vs_ratio_{model}.png"))
    fid = {r["generator"]: _f(r["value"]) for r in res["quality"] if r["metric"] == "fid" and r["class"] == "all"}
    pts = [(fid[r["generator"]], _f(r["delta"]), r) for r in summ if r["generator"] in fid and r.get("delta") not in ("", None)]
    if pts:
        fig, ax = plt.subplots(figsize=(5, 4))
        for gen in sorted({p[2]["generator"] for p in pts}):
            gp = [p for p in pts if p[2]["generator"] == gen]
            ax.scatter([p[0] for p in gp], [p[1] for p in gp], label=gen)
        ax.axhline(0, color="grey", lw=1)
        ax.set_xlabel(f"FID ({next(r['extractor'] for r in res['quality'] if r['metric'] == 'fid')} features)")
        ax.set_ylabel(f"Δ {metric} vs real only")
        ax.legend(fontsize=8)
        written.append(_save_figure(fig, out_dir / f"fid_vs_delta_{metric}.png"))
    return written


def write_sample_grid(out: Path, columns: dict[str, dict[str, list[Path]]], per_class: int = 6) -> Path:
    """A grid PNG: one row per (source, class), ``per_class`` images each; ``columns`` maps source -> class -> paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    rows = [(src, cls, paths[:per_class]) for src, by_cls in columns.items() for cls, paths in sorted(by_cls.items())]
    fig, axes = plt.subplots(len(rows), per_class, figsize=(per_class * 1.2, len(rows) * 1.25), squeeze=False)
    for i, (src, cls, paths) in enumerate(rows):
        for j in range(per_class):
            ax = axes[i][j]
            ax.axis("off")
            if j < len(paths):
                ax.imshow(Image.open(paths[j]).convert("RGB"))
        axes[i][0].set_title(f"{src} · {cls}", fontsize=7, loc="left")
    return _save_figure(fig, out, dpi=100)
