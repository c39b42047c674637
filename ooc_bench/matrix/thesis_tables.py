"""Thesis tables from a run's CSVs: one table model (text and numbers with intervals) rendered as LaTeX, Markdown and HTML."""

from __future__ import annotations

import html
import json
import math
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from ..errors import UserInputError
from .results import as_float as _f
from .spec import BASELINE


def _nan(x: float) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


@dataclass
class Num:
    """A number with an optional 95 % interval, an optional paired difference (Δ) and a significance marker."""

    value: float
    lo: float = math.nan
    hi: float = math.nan
    delta: float = math.nan
    significant: bool = False
    digits: int = 3


Cell = Union[str, Num]  # a str may be a NumText (numeric text)


@dataclass
class Table:
    """Header, rows and the caption/label every rendering shares; ``numeric`` marks right-aligned columns."""

    name: str
    header: list[str]
    rows: list[list[Cell]]
    caption: str
    label: str
    numeric: list[bool] = field(default_factory=list)


# ---------------------------------------------------------------- LaTeX
_TEX_CHARS = {"\\": r"\textbackslash{}", "#": r"\#", "$": r"\$", "%": r"\%", "&": r"\&", "_": r"\_", "{": r"\{",
              "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "[": "{[}", "]": "{]}",
              "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}", '"': "''",
              "Δ": r"$\Delta$", "δ": r"$\delta$", "α": r"$\alpha$", "±": r"$\pm$", "−": "$-$", "×": r"$\times$",
              "·": r"$\cdot$", "≥": r"$\geq$", "≤": r"$\leq$", "≈": r"$\approx$", "–": "--", "—": "---", "…": r"\ldots{}",
              "µ": r"$\mu$", "μ": r"$\mu$", "°": r"$^\circ$", "→": r"$\rightarrow$", "†": r"\dag{}", "‡": r"\ddag{}",
              "'": "'", "‘": "`", "’": "'", "“": "``", "”": "''", "\u00a0": "~"}


def latex_escape(text: str) -> str:
    """Plain text → LaTeX that pdflatex (default OT1 fonts, UTF-8 input) typesets as written.

    Specials ``# $ % & _ { } ~ ^ \\ [ ] < > |`` are escaped, Greek letters and math signs become math, and other
    non-ASCII characters are kept when they are Latin letters pdflatex knows (é, ö, ß) or transliterated otherwise."""
    out = []
    for ch in str(text):
        if ch in _TEX_CHARS:
            out.append(_TEX_CHARS[ch])
        elif ord(ch) < 128:
            out.append(ch)
        elif "\u00c0" <= ch <= "\u00ff" and ch not in "×÷":
            out.append(ch)  # Latin-1 letters: utf8 inputenc (the LaTeX default since 2018) maps them to accents
        else:
            ascii_ = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            out.append(latex_escape(ascii_) if ascii_ else "?")
    return "".join(out)


def _number(x: float, digits: int, signed: bool, minus: str, plus: str, missing: str) -> str:
    """``x`` rounded to ``digits``, with a real minus sign (none for a value that rounds to zero) and, when
    ``signed``, a plus sign; ``missing`` for NaN."""
    if _nan(x):
        return missing
    s = f"{abs(x):.{digits}f}"
    if x < 0 and float(s) != 0:
        return minus + s
    return (plus + s) if signed else s


def _num_tex(x: float, digits: int, signed: bool = False) -> str:
    return _number(x, digits, signed, "$-$", "$+$", "--")


def _cell_tex(c: Cell) -> str:
    if isinstance(c, NumText):
        return _MINUS.sub("$-$", latex_escape(c))
    if isinstance(c, str):
        return latex_escape(c)
    out = _num_tex(c.value, c.digits)
    if not (_nan(c.lo) or _nan(c.hi)):
        out += f" [{_num_tex(c.lo, c.digits)}, {_num_tex(c.hi, c.digits)}]"
    if not _nan(c.delta):
        out += f" ($\\Delta$\\,{_num_tex(c.delta, c.digits, signed=True)}{'$^{*}$' if c.significant else ''})"
    return out if not out.startswith("[") else "{}" + out


def to_latex_table(t: Table) -> str:
    """A booktabs ``table`` float (needs ``\\usepackage{booktabs}``); the caption and label come from ``t``."""
    numeric = t.numeric or [False] * len(t.header)
    cols = "".join("r" if n else "l" for n in numeric)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\caption{{{latex_escape(t.caption)}}}",
             rf"\label{{{t.label}}}", rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
             " & ".join(latex_escape(h) for h in t.header) + r" \\", r"\midrule"]
    lines += [" & ".join(_cell_tex(c) for c in r) + r" \\" for r in t.rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- Markdown and HTML
_MD_SPECIAL = re.compile(r"([\\|*_`<>\[\]#$~&])")  # $ (GitHub math), ~ (strike-through), & (entities)


def markdown_escape(text: str) -> str:
    """Escape the characters GitHub-flavoured Markdown would read as markup inside a table cell."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def _num_txt(x: float, digits: int, signed: bool = False) -> str:
    return _number(x, digits, signed, "−", "+", "–")


def cell_text(c: Cell, marker: str = "*") -> str:
    """The cell as plain Unicode text: ``0.812 [0.790, 0.834] (Δ +0.012*)``."""
    if isinstance(c, NumText):
        return _MINUS.sub("−", c)
    if isinstance(c, str):
        return c
    out = _num_txt(c.value, c.digits)
    if not (_nan(c.lo) or _nan(c.hi)):
        out += f" [{_num_txt(c.lo, c.digits)}, {_num_txt(c.hi, c.digits)}]"
    if not _nan(c.delta):
        out += f" (Δ {_num_txt(c.delta, c.digits, signed=True)}{marker if c.significant else ''})"
    return out


def to_markdown_table(t: Table) -> str:
    """A GitHub-flavoured Markdown table preceded by its caption (and label, for cross-referencing)."""
    numeric = t.numeric or [False] * len(t.header)
    out = [f"**Table ({t.label}).** {markdown_escape(t.caption)}", "",
           "| " + " | ".join(markdown_escape(h) for h in t.header) + " |",
           "|" + "|".join("---:" if n else ":---" for n in numeric) + "|"]
    out += ["| " + " | ".join(markdown_escape(cell_text(c)) for c in r) + " |" for r in t.rows]
    return "\n".join(out) + "\n"


def to_html_table(t: Table) -> str:
    """An HTML ``<table>`` with a caption; significant cells carry ``class="sig"``."""
    numeric = t.numeric or [False] * len(t.header)
    out = [f'<table id="{html.escape(t.label)}" class="results"><caption>{html.escape(t.caption)}</caption>', "<thead><tr>"]
    out += [f'<th class="{"num" if n else "txt"}">{html.escape(h)}</th>' for h, n in zip(t.header, numeric)]
    out.append("</tr></thead><tbody>")
    for r in t.rows:
        tds = []
        for c, n in zip(r, numeric):
            cls = ("num" if n else "txt") + (" sig" if isinstance(c, Num) and c.significant else "")
            tds.append(f'<td class="{cls}">{html.escape(cell_text(c))}</td>')
        out.append("<tr>" + "".join(tds) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


# ---------------------------------------------------------------- building the tables from the CSVs
def run_name(run_dir: Path) -> str:
    """The run's name (provenance.json's spec name, else the folder name)."""
    p = Path(run_dir) / "provenance.json"
    try:
        name = json.loads(p.read_text())["spec"]["name"]
    except (OSError, ValueError, KeyError, TypeError):
        name = Path(run_dir).resolve().name
    return str(name)


def label(run: str, *parts: str) -> str:
    """A LaTeX label unique to the run and table, e.g. ``tab:tiny-downstream-accuracy`` (letters, digits, -, :)."""
    slug = "-".join(re.sub(r"[^A-Za-z0-9]+", "-", p).strip("-") for p in (run, *parts) if p)
    return "tab:" + (slug or "ooc")


def _bool(x: Any) -> bool | None:
    s = str(x).strip().lower()
    return True if s in ("true", "1", "yes") else False if s in ("false", "0", "no") else None


def _significant(r: dict[str, Any]) -> tuple[bool, bool]:
    """(is significant, whether the decision came from a multiplicity-adjusted p) for one summary row."""
    sig = _bool(r.get("significant"))
    if sig is not None:
        return sig, True
    p, alpha = _f(r.get("p_adjusted")), _f(r.get("alpha"))
    alpha = 0.05 if _nan(alpha) else alpha
    if not _nan(p):
        return p < alpha, True
    p = _f(r.get("p_value"))
    return (not _nan(p) and p < alpha), False


def _significance_note(rows: list[dict[str, Any]]) -> str:
    tested = [r for r in rows if r.get("generator") != BASELINE and (r.get("p_value") or r.get("p_adjusted"))]
    if not tested:
        return "no paired comparisons"
    r = tested[0]
    alpha = _f(r.get("alpha"))
    alpha = 0.05 if _nan(alpha) else alpha
    test = r.get("test") or "paired test"
    if _significant(r)[1]:
        method = {"holm": "Holm", "bh": "Benjamini–Hochberg", "none": "no"}.get(r.get("p_adjust_method") or "", "")
        how = f"{method} adjustment" if method else "adjusted"
        return f"*: {test} over seeds, p < {alpha:g} after {how}"
    return f"*: {test} over seeds, unadjusted p < {alpha:g} (this summary.csv has no adjusted p-values)"


def _n_text(values: set[int]) -> str:
    vals = sorted(v for v in values if v >= 0)
    if not vals:
        return "–"
    return str(vals[0]) if vals[0] == vals[-1] else f"{vals[0]}–{vals[-1]}"


def _ci(r: dict[str, Any], metric: str) -> tuple[float, float]:
    """The row's 95 % CI of the mean, clipped to the metric's range (a t-interval can pass 1 for accuracy)."""
    from .figures import metric_range

    lo, hi = _f(r.get("ci95_low")), _f(r.get("ci95_high"))
    rng = metric_range(metric)
    if rng is not None:
        lo = lo if _nan(lo) else max(lo, rng[0])
        hi = hi if _nan(hi) else min(hi, rng[1])
    return lo, hi


def summary_metrics(summary: list[dict[str, Any]]) -> list[str]:
    return sorted({r["metric"] for r in summary})


def downstream(summary: list[dict[str, Any]], metric: str, run: str) -> Table:
    """Per (model, generator, protocol): the real-only baseline and every ratio as mean [95 % CI] (Δ vs real-only, *)."""
    rows_src = [r for r in summary if r["metric"] == metric]
    ratios = sorted({_f(r["ratio"]) for r in rows_src if r["generator"] != BASELINE})
    header = ["model", "generator", "protocol", "n seeds", "r = 0 (real only)"] + [f"r = {x:g}" for x in ratios]
    base: dict[str, dict[str, Any]] = {}
    groups: dict[str, dict[tuple, dict[float, dict[str, Any]]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows_src:
        if r["generator"] == BASELINE:
            base[r["model"]] = r
        else:
            groups[r["model"]][(r["generator"], r["protocol"])][_f(r["ratio"])] = r
    out: list[list[Cell]] = []
    for model in sorted(set(base) | set(groups)):
        b = base.get(model)
        b_cell: Cell = Num(_f(b["mean"]), *_ci(b, metric)) if b else "–"
        if not groups.get(model):
            out.append([model, "–", "–", _n_text({int(_f(b["n"]))} if b else set()), b_cell] + [""] * len(ratios))
        for (gen, protocol), per_ratio in sorted(groups.get(model, {}).items()):
            ns = {int(_f(r["n"])) for r in per_ratio.values() if not _nan(_f(r["n"]))} | ({int(_f(b["n"]))} if b else set())
            row: list[Cell] = [model, gen, protocol, _n_text(ns), b_cell]
            for x in ratios:
                r = per_ratio.get(x)
                if r is None:
                    row.append("")
                    continue
                row.append(Num(_f(r["mean"]), *_ci(r, metric), _f(r.get("delta")), _significant(r)[0]))
            out.append(row)
    from .figures import metric_range

    clip = " (clipped to the metric's range)" if metric_range(metric) else ""
    caption = (f"Test {metric} on held-out real images: mean over seeds [95 % CI{clip}] (Δ vs real only, paired by seed). "
               + _significance_note(rows_src) + ".")
    return Table(f"downstream_{_file_part(metric)}", header, out, caption, label(run, "downstream", metric),
                 [False, False, False, True] + [True] * (1 + len(ratios)))


def _per_class_base(metric: str) -> str:
    return {"accuracy": "recall", "balanced_accuracy": "recall"}.get(metric, re.sub(r"_(macro|weighted|micro)$", "", metric))


def downstream_per_class(summary: list[dict[str, Any]], metric: str, run: str) -> Table | None:
    """Per (model, generator, protocol, r): one column per class of the per-class variant of ``metric``
    (recall, i.e. per-class accuracy, for accuracy); None when the summary has no per-class rows."""
    base = _per_class_base(metric)
    skip = {f"{base}_{s}" for s in ("macro", "weighted", "micro")}
    per = [r for r in summary if r["metric"].startswith(base + "_") and r["metric"] not in skip]
    if not per:
        return None
    classes = sorted({r["metric"][len(base) + 1:] for r in per})
    cells: dict[tuple, dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in per:
        cells[(r["model"], r["generator"] != BASELINE, r["generator"], r["protocol"], _f(r["ratio"]))][r["metric"][len(base) + 1:]] = r
    rows: list[list[Cell]] = []
    for key in sorted(cells):
        model, _, gen, protocol, ratio = key
        ns = {int(_f(r["n"])) for r in cells[key].values() if not _nan(_f(r["n"]))}
        row: list[Cell] = [model, gen, protocol, f"{ratio:g}", _n_text(ns)]
        for c in classes:
            r = cells[key].get(c)
            row.append(Num(_f(r["mean"]), *_ci(r, r["metric"]), _f(r.get("delta")), _significant(r)[0]) if r else "")
        rows.append(row)
    what = f"{base} per class" + (" (per-class accuracy)" if base == "recall" and metric != "recall" else "")
    caption = (f"Test {what} on held-out real images: mean over seeds [95 % CI, clipped to [0, 1]] (Δ vs real only). "
               + _significance_note(per) + ".")
    return Table(f"downstream_{_file_part(metric)}_per_class", ["model", "generator", "protocol", "r", "n seeds"] + classes,
                 rows, caption, label(run, "downstream", metric, "per-class"), [False, False, False, True, True] + [True] * len(classes))


class NumText(str):
    """Text of a numeric column (e.g. ``12.5 [11.2, 13.8]``): its minus signs are typeset as minus signs."""


_MINUS = re.compile(r"(?<![\w.])-(?=\d)")


def quality(quality_rows: list[dict[str, Any]], run: str, per_class: bool = False) -> Table:
    """The console's quality table (report.quality_table: every metric as value [95 % interval], the feature space and
    the n each distance was computed at) with a caption and a label, for LaTeX/Markdown/HTML."""
    from .report import quality_table

    header, rows = quality_table(quality_rows, per_class=per_class, sep=" ")
    numeric = [h not in ("generator", "class", "features") for h in header]
    cells: list[list[Cell]] = [[NumText(c) if n else c for c, n in zip(r, numeric)] for r in rows]
    # the split the distances compare with (class-fidelity and near-copy rows name their judge / train set there)
    distances = {"fd", "fid", "fd_inf", "kid", "kid_mean", "precision", "recall", "density", "coverage"}
    refs = sorted({str(r["reference"]) for r in quality_rows if r.get("reference") and r.get("metric") in distances})
    ref = f" ({', '.join(refs)} split)" if refs else ""
    caption = (f"Synthetic-image quality{' per class' if per_class else ''} against the real reference images{ref}: "
               "value [95 % interval where the metric has one]; (floor): held-out real images scored like a generator, "
               "what a perfect generator would reach. FD/KID are biased at small n: compare rows with the same n only.")
    name = "quality_per_class" if per_class else "quality"
    return Table(name, header, cells, caption, label(run, name.replace("_", "-")), numeric)


def _file_part(metric: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", metric)


def tables_for(res: dict[str, list[dict[str, Any]]], run: str, metric: str = "accuracy",
               per_class: bool = True) -> list[Table]:
    """Every thesis table of a run for one downstream metric (a clear error when the metric is not in summary.csv)."""
    available = summary_metrics(res["summary"])
    if res["summary"] and metric not in available:
        raise UserInputError(f"--metric {metric}: not in summary.csv; available: {', '.join(available)}")
    out = [quality(res["quality"], run), downstream(res["summary"], metric, run)]
    if per_class:
        if any((r.get("class") or "all") != "all" for r in res["quality"]):
            out.append(quality(res["quality"], run, per_class=True))
        pc = downstream_per_class(res["summary"], metric, run)
        if pc is not None:
            out.append(pc)
    return out
