"""Paper figures: PDF + 300-dpi PNG, CI bands clipped to the metric's range, FD vs Δ with error bars and the real
reference, and a sample grid that crops real and synthetic images the same way and labels every row."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ooc_bench.matrix import figures
from ooc_bench.matrix.report import write_plots, write_sample_grid

from .report_fixtures import NASTY_GEN, make_results


@pytest.fixture()
def captured(monkeypatch):
    """Figures as save_figure receives them (then saved for real)."""
    figs = []
    real = figures.save_figure

    def spy(fig, path, **kw):
        figs.append((path, fig))
        out = real(fig, path, **kw)
        return out

    monkeypatch.setattr(figures, "save_figure", spy)
    return figs


def test_plots_are_pdf_and_300_dpi_png_with_clipped_bands_and_error_bars(tmp_path, captured):
    run = make_results(tmp_path / "run")
    written = write_plots(run)
    names = {p.name for p in written}
    assert names == {"accuracy_vs_ratio_cnn.png", "accuracy_vs_ratio_cnn.pdf", "fd_vs_delta_accuracy.png",
                     "fd_vs_delta_accuracy.pdf"}
    for p in written:
        if p.suffix == ".png":
            with Image.open(p) as im:
                assert round(im.info["dpi"][0]) == 300 and im.width >= 1500
        else:
            assert p.read_bytes()[:5] == b"%PDF-"
    figs = {p.name: f for p, f in captured}
    ax = figs["accuracy_vs_ratio_cnn.png"].axes[0]
    bands = [c for c in ax.collections if c.get_paths()]
    ys = np.concatenate([p.vertices[:, 1] for c in bands for p in c.get_paths()])
    assert ys.max() <= 1.0 + 1e-9 and ys.min() >= 0.0  # the t-interval of NASTY_GEN reaches 1.04: clipped to 1
    assert np.isclose(ys.max(), 1.0)
    assert ax.get_ylim()[1] <= 1.005
    ax = figs["fd_vs_delta_accuracy.png"].axes[0]
    bars = ax.containers
    assert len(bars) == 3 and all(b.has_xerr and b.has_yerr for b in bars)  # aug r=0.5, r=1, NASTY_GEN r=0.5
    floor = [ln for ln in ax.lines if "floor" in ln.get_label()]
    assert floor and np.allclose(floor[0].get_xdata(), 3.1)  # the real training images' FD
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(NASTY_GEN.replace("$", r"\$") == t for t in labels)  # a $ in a name is text, not mathtext


def test_sample_grid_crops_real_and_synthetic_alike_and_labels_rows(tmp_path, captured):
    real, syn = [], []
    for i in range(3):
        a = np.full((60, 80, 3), 200, np.uint8)  # 4:3 real image with a red stripe at the left edge
        a[:, :10] = (255, 0, 0)
        Image.fromarray(a).save(tmp_path / f"real{i}.png")
        real.append(tmp_path / f"real{i}.png")
        Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(tmp_path / f"syn{i}.png")
        syn.append(tmp_path / f"syn{i}.png")
    out = write_sample_grid(tmp_path / "plots" / "samples.png", {"real (train)": {"good": real}, "aug": {"good": syn}},
                            per_class=3)
    assert out.is_file() and out.with_suffix(".pdf").is_file()
    fig = captured[-1][1]
    shown = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(shown) == 6 and {a.shape for a in shown} == {(96, 96, 3)}  # every image the same square
    assert not (shown[0][:, :3, 0] == 255).all()  # the centred square crop dropped the real image's stripe
    rows = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert rows == ["real (train)\ngood", "aug\ngood"]


def test_metric_range():
    assert figures.metric_range("accuracy") == (0.0, 1.0) and figures.metric_range("f1_macro") == (0.0, 1.0)
    assert figures.metric_range("loss") is None
