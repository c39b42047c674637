"""Thesis tables: every LaTeX table compiles with a real pdflatex; CIs, significance markers, labels, escaping, n, files."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ooc_bench.matrix.report import write_tables
from ooc_bench.matrix.thesis_tables import latex_escape, markdown_escape

from .cli_helpers import run_cli
from .external_tools import require
from .report_fixtures import NASTY_CLASS, NASTY_GEN, make_results

HOW_TEX = ("install Debian's texlive-latex-base and texlive-latex-recommended (booktabs): "
           "apt-get install -y --no-install-recommends texlive-latex-base texlive-latex-recommended, or run .ci/run")


def _compile(tex_files: list[Path], work: Path) -> str:
    """Compile one article that \\input s every table; returns pdflatex's log (fails the test on any error)."""
    require(shutil.which("pdflatex") is not None, "pdflatex", HOW_TEX)
    work.mkdir(parents=True, exist_ok=True)
    body = "\n".join(rf"\input{{{p.resolve().as_posix()}}}\clearpage" for p in tex_files)
    (work / "doc.tex").write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
                                  f"{body}\n\\end{{document}}\n")
    p = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=work,
                       capture_output=True, text=True, timeout=120)
    log = (work / "doc.log").read_text(errors="replace") if (work / "doc.log").exists() else p.stdout
    assert p.returncode == 0, log[-3000:]
    assert (work / "doc.pdf").stat().st_size > 1000
    for bad in ("Missing character", "Undefined control sequence", "multiply defined", "Unicode character"):
        assert bad not in log, bad
    return log


@pytest.fixture()
def runs(tmp_path):
    return make_results(tmp_path / "adjusted", name="thesis_run"), make_results(tmp_path / "old", name="old run", adjusted=False)


def test_every_table_compiles_with_pdflatex(runs, tmp_path):
    files = []
    for run in runs:
        write_tables(run, metric="accuracy")
        write_tables(run, metric="recall_eight", markdown=False)
        files += sorted((run / "tables").glob("*.tex"))
    names = {p.name for p in files}
    assert {"quality.tex", "quality_per_class.tex", "downstream_accuracy.tex", "downstream_accuracy_per_class.tex",
            "downstream_recall_eight.tex"} <= names
    log = _compile(files, tmp_path / "latex")
    assert "Output written on doc.pdf" in log
    labels = [re.search(r"\\label\{([^}]*)\}", p.read_text()).group(1) for p in files]
    assert len(labels) == len(set(labels))  # unique across tables, metrics and the two runs
    assert "tab:thesis-run-downstream-accuracy" in labels and "tab:old-run-downstream-accuracy" in labels


def test_escaping_minus_signs_and_unicode():
    assert latex_escape("# $ % & _ { } ~ ^ \\") == (r"\# \$ \% \& \_ \{ \} \textasciitilde{} \textasciicircum{} "
                                                    r"\textbackslash{}")
    assert latex_escape("Δ accuracy ± 1") == r"$\Delta$ accuracy $\pm$ 1"
    assert latex_escape("[x]") == "{[}x{]}"  # a cell starting with [ would be read as \\[…] otherwise
    assert markdown_escape("a|b*c_d$e") == r"a\|b\*c\_d\$e"


def test_cells_have_ci_markers_n_and_minus_signs(runs):
    adjusted, old = runs
    write_tables(adjusted)
    tex = (adjusted / "tables" / "downstream_accuracy.tex").read_text()
    assert "Δ" not in tex and "±" not in tex and "−" not in tex
    aug = next(line for line in tex.splitlines() if line.startswith("cnn & aug"))
    cells = aug.split(" & ")
    assert cells[3] == "3"  # n seeds
    assert cells[4] == "0.800 [0.750, 0.850]"  # the real-only baseline with its CI
    assert cells[5] == r"0.860 [0.770, 0.950] ($\Delta$\,$+$0.060$^{*}$)"  # Holm p = 0.003 < 0.05
    assert cells[6].startswith(r"0.770 [0.680, 0.860] ($\Delta$\,$-$0.030)")  # p_adjusted 0.6: no marker, a real minus
    nasty = next(line for line in tex.splitlines() if "my\\_gen" in line)
    assert r"my\_gen\#1 \$\&\%\{\}\textasciitilde{}\textasciicircum{}\textbackslash{} $\Delta$" in nasty
    assert "0.950 [0.860, 1.000]" in nasty  # the t-interval (…, 1.040) clipped to accuracy's range
    assert "Holm" in tex and "tab:thesis-run-downstream-accuracy" in tex
    q = (adjusted / "tables" / "quality.tex").read_text()
    header = next(line for line in q.splitlines() if line.startswith("generator &"))
    assert "n/subset fake/real" in header and "FD" in header and "tab:thesis-run-quality" in q
    assert "reference images (test split)" in q  # the distances' split only, not near-copy's train set
    aug_q = next(line for line in q.splitlines() if line.startswith("aug &")).rstrip(" \\").split(" & ")
    assert aug_q[1] == "12.5 {[}11, 14{]}" and "96/40" in aug_q  # the n FD used (96), not near-copy's 168
    assert "$-$0.0042 {[}$-$0.009, 0.0011{]}" in q  # a negative KID with real minus signs
    per_class = (adjusted / "tables" / "quality_per_class.tex").read_text()
    assert "Größe\\_é" in per_class and "48/20" in per_class

    write_tables(old)  # an older summary.csv without p_adjusted/significant: raw p, and the caption says so
    old_tex = (old / "tables" / "downstream_accuracy.tex").read_text()
    assert "unadjusted p" in old_tex and "$^{*}$" in old_tex


def test_markdown_has_the_same_content(runs):
    adjusted, _ = runs
    write_tables(adjusted, latex=False)
    md = (adjusted / "tables" / "downstream_accuracy.md").read_text()
    assert "(tab:thesis-run-downstream-accuracy)" in md
    rows = [line for line in md.splitlines() if line.startswith("|")]
    widths = {len(re.findall(r"(?<!\\)\|", line)) for line in rows}
    assert widths == {8}  # 7 columns in every row: escaped pipes do not split cells
    assert "0.860 \\[0.770, 0.950\\] (Δ +0.060\\*)" in md and "(Δ −0.030)" in md
    assert "my\\_gen\\#1 \\$\\&%{}\\~^\\\\ Δ" in md
    assert not (adjusted / "tables" / "downstream_accuracy.tex").exists()


def test_report_cli_writes_one_file_per_metric_and_per_class(runs, capsys):
    adjusted, _ = runs
    code, out, _ = run_cli(capsys, "report", adjusted, "--latex", "--markdown", "--per-class")
    assert code == 0, out
    acc = (adjusted / "tables" / "downstream_accuracy.tex").read_text()
    code, out, _ = run_cli(capsys, "report", adjusted, "--latex", "--metric", "recall_eight")
    assert code == 0, out
    assert (adjusted / "tables" / "downstream_accuracy.tex").read_text() == acc  # not overwritten by another metric
    assert "tab:thesis-run-downstream-recall-eight" in (adjusted / "tables" / "downstream_recall_eight.tex").read_text()
    pc = (adjusted / "tables" / "downstream_accuracy_per_class.tex").read_text()
    assert "eight" in pc and "Größe\\_é" in pc and "per-class accuracy" in pc
    code, _, err = run_cli(capsys, "report", adjusted, "--latex", "--metric", "nope")
    assert code != 0 and "--metric nope" in err and "accuracy" in err
    assert NASTY_GEN and NASTY_CLASS


def test_a_missing_tool_fails_on_ci_and_skips_elsewhere(monkeypatch):
    from .external_tools import require

    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true but pdflatex is not available: apt-get"):
        require(False, "pdflatex", "apt-get install texlive-latex-base")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="pdflatex is not available"):
        require(False, "pdflatex", "apt-get install texlive-latex-base")
    require(True, "pdflatex", "")  # available: neither
