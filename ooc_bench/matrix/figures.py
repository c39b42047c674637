"""Paper figures from a run's CSVs (PDF + 300-dpi PNG): metric vs ratio, FD vs Δ with error bars, the sample grid."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..atomic import atomic_path
from .results import as_float as _f
from .spec import BASELINE


PNG_DPI = 300
#: downstream metrics that live in [0, 1] (intervals and axes are clipped to it)
_UNIT_METRICS = re.compile(r"^(accuracy|balanced_accuracy|roc_auc|pr_auc|average_precision|(precision|recall|f1)(_.+)?)$")


def metric_range(metric: str) -> tuple[float, float] | None:
    """The range a downstream metric can take ((0, 1) for accuracy, F1, AUC …), or None when unbounded."""
    return (0.0, 1.0) if _UNIT_METRICS.match(metric) else None


def _t(text: Any) -> str:
    """Text for a matplotlib label: a ``$`` in a name must not start mathtext."""
    return str(text).replace("$", r"\$")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path, dpi: int = PNG_DPI, pdf: bool = True) -> list[Path]:
    """Lay out and write ``path`` (PNG at ``dpi``) and the same figure as vector PDF beside it, atomically; close it."""
    plt = _plt()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    written = []
    for p, kw in ((path, {"dpi": dpi, "format": "png"}), (path.with_suffix(".pdf"), {"format": "pdf"})):
        if p.suffix == ".pdf" and not pdf:
            continue
        with atomic_path(p) as tmp:
            fig.savefig(tmp, metadata={"CreationDate": None} if p.suffix == ".pdf" else None, **kw)
        written.append(p)
    plt.close(fig)
    return written


def _clip(values: Sequence[float], rng: tuple[float, float] | None) -> list[float]:
    if rng is None:
        return list(values)
    return [v if math.isnan(v) else min(max(v, rng[0]), rng[1]) for v in values]


def metric_vs_ratio(summary: list[dict[str, Any]], metric: str, model: str, out: Path) -> list[Path]:
    """Mean test ``metric`` vs synthetic ratio per generator/protocol with 95 % CI bands (clipped to the metric's
    range), and the real-only baseline with its band."""
    plt = _plt()
    rng = metric_range(metric)
    rows = [r for r in summary if r["metric"] == metric and r["model"] == model]
    base = [r for r in rows if r["generator"] == BASELINE]
    series: dict[tuple, list] = defaultdict(list)
    for r in rows:
        if r["generator"] != BASELINE:
            series[(r["generator"], r["protocol"])].append(r)
    fig, ax = plt.subplots(figsize=(6, 4))
    b = base[0] if base else None
    if b is not None:
        lo, hi = _clip([_f(b["ci95_low"]), _f(b["ci95_high"])], rng)
        ax.axhline(_f(b["mean"]), color="grey", ls="--", lw=1, label=f"real only (n={b.get('n', '?')})")
        if not (math.isnan(lo) or math.isnan(hi)):
            ax.axhspan(lo, hi, color="grey", alpha=0.12, lw=0)
    for (gen, protocol), rs in sorted(series.items()):
        pts = ([(0.0, b)] if b is not None and protocol != "synthetic-only" else []) + sorted(
            ((_f(r["ratio"]), r) for r in rs), key=lambda t: t[0])
        x = [p[0] for p in pts]
        y = [_f(p[1]["mean"]) for p in pts]
        lo = _clip([_f(p[1]["ci95_low"]) for p in pts], rng)
        hi = _clip([_f(p[1]["ci95_high"]) for p in pts], rng)
        ns = sorted({str(p[1].get("n", "?")) for p in pts})
        line, = ax.plot(x, y, marker="o", label=_t(f"{gen} ({protocol}, n={'/'.join(ns)})"))
        ax.fill_between(x, lo, hi, alpha=0.18, color=line.get_color(), lw=0)
    if rng is not None:
        vals = [v for r in rows for v in (_f(r["mean"]), _f(r["ci95_low"]), _f(r["ci95_high"])) if not math.isnan(v)]
        lo_v, hi_v = (min(vals), max(vals)) if vals else rng
        lo_v, hi_v = max(rng[0], lo_v), min(rng[1], hi_v)
        pad = max(0.02, 0.08 * (hi_v - lo_v))
        ax.set_ylim(max(rng[0] - 0.005, lo_v - pad), min(rng[1] + 0.005, hi_v + pad))
    ax.set_xlabel("synthetic ratio r")
    ax.set_ylabel(f"test {metric} (mean, 95 % CI)")
    ax.set_title(_t(model))
    ax.grid(alpha=0.3, lw=0.5)
    ax.legend(fontsize=7)
    return save_figure(fig, out)


def _quality_rows(quality: list[dict[str, Any]], metric: str) -> dict[str, dict[str, Any]]:
    return {r["generator"]: r for r in quality if r["metric"] == metric and (r.get("class") or "all") == "all"}


def fd_vs_delta(quality: list[dict[str, Any]], summary: list[dict[str, Any]], metric: str, out: Path) -> list[Path]:
    """One point per (model, generator, protocol, r): the generator's FD (x, with its interval when quality.csv has one)
    against Δmetric vs real only (y, paired 95 % CI); the real training images' FD is drawn as the reference."""
    plt = _plt()
    fd_name = next((m for m in ("fd", "fid") if _quality_rows(quality, m)), None)
    if fd_name is None:
        return []
    fd = _quality_rows(quality, fd_name)
    pts = [r for r in summary if r["metric"] == metric and r["generator"] in fd and r["generator"] != BASELINE
           and not r["generator"].startswith("real-")
           and not math.isnan(_f(r.get("delta")))]
    if not pts:
        return []
    fig, ax = plt.subplots(figsize=(6, 4.2))
    markers = "osD^vP*Xh"
    protocols = sorted({r["protocol"] for r in pts})
    for gi, gen in enumerate(sorted({r["generator"] for r in pts})):
        q = fd[gen]
        x, xlo, xhi = _f(q["value"]), _f(q.get("ci_low")), _f(q.get("ci_high"))
        for k, r in enumerate(sorted((r for r in pts if r["generator"] == gen), key=lambda r: (r["protocol"], _f(r["ratio"])))):
            y, ylo, yhi = _f(r["delta"]), _f(r.get("delta_ci95_low")), _f(r.get("delta_ci95_high"))
            xerr = None if math.isnan(xlo) or math.isnan(xhi) else [[max(0.0, x - xlo)], [max(0.0, xhi - x)]]
            yerr = None if math.isnan(ylo) or math.isnan(yhi) else [[max(0.0, y - ylo)], [max(0.0, yhi - y)]]
            ax.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt=markers[protocols.index(r["protocol"]) % len(markers)],
                        color=f"C{gi % 10}", capsize=3, ms=6, lw=1,
                        label=_t(gen) if r is next(iter(rr for rr in pts if rr["generator"] == gen)) else None)
            ax.annotate(_t(f"r={_f(r['ratio']):g}" + (f" {r['model']}" if len({p['model'] for p in pts}) > 1 else "")),
                        (x, y), textcoords="offset points", xytext=(6, 2 + 9 * (k // 2)) if k % 2 == 0 else
                        (-6, 2 + 9 * (k // 2)), ha="left" if k % 2 == 0 else "right", fontsize=7)
            # one generator's ratios share x (one FD per sample set): alternate right/left so close y's stay legible
    ax.axhline(0, color="grey", lw=1, ls="--", label="real only (Δ = 0)")
    floors = [g for g in fd if g.startswith("real-") and g != BASELINE]  # held-out real images scored like a generator
    for k, g in enumerate(sorted(floors)):
        if not math.isnan(_f(fd[g]["value"])):
            ax.axvline(_f(fd[g]["value"]), color="black", lw=1, ls=(":", "-.", "--")[k % 3],
                       label=_t(f"{g} images ({fd_name.upper()} floor, real data)"))
    space = fd[next(iter(fd))].get("feature_space") or fd[next(iter(fd))].get("extractor") or ""
    ax.set_xlabel(f"{fd_name.upper()} vs real reference" + (f" ({space} features)" if space else "") + ", lower is better")
    ax.set_ylabel(f"Δ test {metric} vs real only (95 % CI)")
    if len(protocols) > 1:
        ax.set_title("markers: " + ", ".join(f"{markers[i % len(markers)]} {p}" for i, p in enumerate(protocols)), fontsize=8)
    ax.grid(alpha=0.3, lw=0.5)
    ax.legend(fontsize=7)
    return save_figure(fig, out)


def square_crop(img: np.ndarray, size: int) -> np.ndarray:
    """The largest centred square of an HxWx3 image, resized to ``size`` × ``size`` (the same for real and synthetic)."""
    from PIL import Image

    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    sq = Image.fromarray(img[top:top + s, left:left + s])
    return np.asarray(sq.resize((size, size), Image.BICUBIC if s < size else Image.LANCZOS))


def sample_grid(out: Path, columns: dict[str, dict[str, list[Any]]], per_class: int = 6, cell_px: int = 96) -> list[Path]:
    """A grid: one labelled row per (source, class), ``per_class`` images each, every image centre-cropped to a square
    and resized to ``cell_px`` the same way; ``columns`` maps source → class → image paths (or ``FILE.npz#KEY[i]``)."""
    plt = _plt()
    from ..data.decode import decode_image

    rows = [(src, cls, list(paths)[:per_class]) for src, by_cls in columns.items() for cls, paths in sorted(by_cls.items())]
    if not rows:
        raise ValueError("no images to show")
    fig, axes = plt.subplots(len(rows), per_class, figsize=(1.0 + per_class * 1.05, len(rows) * 1.1 + 0.2), squeeze=False)
    for i, (src, cls, paths) in enumerate(rows):
        for j in range(per_class):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if j < len(paths):
                ax.imshow(square_crop(decode_image(paths[j]), cell_px), interpolation="nearest")
        axes[i][0].set_ylabel(_t(f"{src}\n{cls}"), fontsize=7, rotation=0, ha="right", va="center", labelpad=6)
    return save_figure(fig, out)
