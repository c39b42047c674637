"""report.html: one self-contained page per results folder (verdict, tables with intervals, embedded figures, provenance)."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from ..atomic import write_text

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;max-width:78em;padding:0 1em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.meta{color:#666;font-size:.9em}
table.results{border-collapse:collapse;margin:.8em 0 1.4em;font-size:.88em}
table.results caption{caption-side:top;text-align:left;color:#444;font-size:.92em;padding-bottom:.4em;max-width:70em}
table.results th,table.results td{padding:.25em .7em;border-bottom:1px solid #e4e4e4;white-space:nowrap}
table.results thead th{border-bottom:2px solid #999}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}td.txt,th.txt{text-align:left}
td.sig{font-weight:600;background:#eef7ee}
ul.verdict li{margin:.3em 0}
figure{margin:1em 0 2em}figure img{max-width:min(100%,60em);height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}
pre{background:#f6f6f6;padding:.8em;overflow:auto;font-size:.8em;max-height:40em}
dl.prov{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dl.prov dt{font-weight:600}dl.prov dd{margin:0}
.warn{color:#a00}
.scroll{overflow-x:auto;max-width:100%}
"""

_FIGURE_CAPTIONS = {
    "samples": "Real training images and every generator's samples, one row per source and class, all centre-cropped "
               "to squares the same way.",
}


def _img(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}">'


def _figure_caption(stem: str) -> str:
    if stem in _FIGURE_CAPTIONS:
        return _FIGURE_CAPTIONS[stem]
    if "_vs_ratio_" in stem:
        metric, model = stem.split("_vs_ratio_", 1)
        return f"Test {metric} vs synthetic ratio for {model}: mean over seeds with 95 % CI bands (clipped to the metric's range)."
    if stem.startswith("fd_vs_delta_"):
        return (f"Generator FD vs Δ test {stem[len('fd_vs_delta_'):]} against real only, with 95 % intervals; the dotted "
                "line is the real-data floor.")
    return stem


def _provenance(run_dir: Path) -> tuple[str, str]:
    p = Path(run_dir) / "provenance.json"
    if not p.is_file():
        return "<p class='meta'>No provenance.json in this folder (tables re-rendered from the CSVs alone).</p>", ""
    try:
        prov = json.loads(p.read_text())
    except ValueError:
        return "<p class='warn'>provenance.json is not valid JSON.</p>", ""
    git = prov.get("git") or {}
    ds = prov.get("dataset") or {}
    facts: list[tuple[str, Any]] = [
        ("command", " ".join(map(str, prov["command"])) if isinstance(prov.get("command"), list) else prov.get("command")),
        ("git commit", git.get("commit") or prov.get("git_commit")),
        ("uncommitted changes", git.get("dirty") if "dirty" in git else prov.get("git_dirty")),
        ("dataset", ds.get("path")), ("dataset hash", ds.get("hash") or ds.get("content_hash")),
        ("split", ds.get("split_policy")), ("split hash", ds.get("split_hash")),
        ("finished", prov.get("finished_at")), ("wall time (s)", prov.get("wall_s_last_run")),
        ("hardware", (prov.get("hardware") or {}).get("platform")),
    ]
    versions = prov.get("versions") or {}
    if isinstance(versions, dict) and versions:
        facts.append(("versions", ", ".join(f"{k} {v}" for k, v in sorted(versions.items()) if not isinstance(v, dict))))
    dl = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in facts if v not in (None, ""))
    full = html.escape(json.dumps(prov, indent=2, sort_keys=True, default=str))
    name = ((prov.get("spec") or {}).get("name")) or ""
    return (f"<dl class='prov'>{dl}</dl><details><summary>provenance.json (every job's resolved configuration)</summary>"
            f"<pre>{full}</pre></details>"), str(name)


def render_html(run_dir: Path, metric: str = "accuracy") -> str:
    """The page as a string: every table, figure (plots/*.png, base64) and the provenance are inside it."""
    from .report import load_results, verdicts
    from .thesis_tables import run_name, tables_for, to_html_table

    run_dir = Path(run_dir)
    res = load_results(run_dir)
    run = run_name(run_dir)
    tables = tables_for(res, run, metric=metric, per_class=True)
    try:
        lines = verdicts(res["downstream"], metric, summary=res["summary"])
    except Exception as exc:  # noqa: BLE001 - an old or partial folder must still get a page
        lines = [f"(no verdict: {type(exc).__name__}: {exc})"]
    prov_html, _ = _provenance(run_dir)
    figs = sorted((run_dir / "plots").glob("*.png")) if (run_dir / "plots").is_dir() else []
    samples = [p for p in figs if p.stem.startswith("samples")]
    plots = [p for p in figs if p not in samples]
    body = [f"<h1>ooc-bench results: {html.escape(run)}</h1>",
            f"<p class='meta'>{html.escape(str(run_dir.resolve()))} · downstream metric: {html.escape(metric)}</p>",
            "<h2 id='verdict'>Verdict</h2>", "<ul class='verdict'>" + "".join(f"<li>{html.escape(v)}</li>" for v in lines)
            + "</ul>", "<h2 id='downstream'>Downstream results</h2>"]
    body += [f"<div class='scroll'>{to_html_table(t)}</div>" for t in tables if t.name.startswith("downstream")]
    body.append("<h2 id='quality'>Generator quality</h2>")
    body += [f"<div class='scroll'>{to_html_table(t)}</div>" for t in tables if t.name.startswith("quality")]
    if plots:
        body.append("<h2 id='figures'>Figures</h2>")
        body += [f"<figure>{_img(p)}<figcaption>{html.escape(_figure_caption(p.stem))}</figcaption></figure>" for p in plots]
    if samples:
        body.append("<h2 id='samples'>Samples</h2>")
        body += [f"<figure>{_img(p)}<figcaption>{html.escape(_figure_caption(p.stem))}</figcaption></figure>" for p in samples]
    body += ["<h2 id='provenance'>Provenance</h2>", prov_html]
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>ooc-bench: {html.escape(run)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def write_html(run_dir: Path, metric: str = "accuracy") -> Path:
    """Write RESULTS_DIR/report.html atomically (umask permissions); returns its path."""
    out = Path(run_dir) / "report.html"
    write_text(out, render_html(run_dir, metric))
    return out
