"""report.html: self-contained (no external resources), rendered by a real headless Chromium with its tables and images."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from ooc_bench.matrix.html import write_html
from ooc_bench.matrix.report import write_plots, write_sample_grid

from .cli_helpers import run_cli
from .external_tools import require
from .report_fixtures import NASTY_GEN, make_results

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                  "--proxy-server=127.0.0.1:9", "--virtual-time-budget=10000"]  # any network request would fail
PROBE = ("<script>window.addEventListener('load',function(){var o=[];for(var i=0;i<document.images.length;i++){"
         "var im=document.images[i];o.push([im.complete,im.naturalWidth,im.naturalHeight]);}"
         "var d=document.createElement('pre');d.id='ooc-probe';d.textContent=JSON.stringify({images:o,"
         "tables:document.querySelectorAll('table.results').length,"
         "rows:document.querySelectorAll('table.results tbody tr').length,"
         "text:document.body.innerText.length});document.body.appendChild(d);});</script>")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("html")
    out = make_results(tmp_path / "run")
    write_plots(out)
    imgs = []
    for i in range(2):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(p)
        imgs.append(p)
    write_sample_grid(out / "plots" / "samples.png", {"real (train)": {"eight": imgs}, "aug": {"eight": imgs}}, per_class=2)
    return out


def test_report_html_is_self_contained(run):
    page = write_html(run).read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", page, re.I)
    assert "<link" not in page and "@import" not in page and "url(" not in page and "<script" not in page
    srcs = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    pngs = sorted((run / "plots").glob("*.png"))
    assert len(srcs) == len(pngs) == 3
    assert {base64.b64decode(s) for s in srcs} == {p.read_bytes() for p in pngs}
    for needle in ("Verdict", "Downstream results", "Generator quality", "Provenance", "tab:thesis-run-downstream-accuracy",
                   "0.860 [0.770, 0.950] (Δ +0.060*)", "abc123", "ooc-bench run --spec x.toml"):
        assert needle in page, needle
    assert "my_gen#1 $&amp;%{}~^\\ Δ" in page and NASTY_GEN not in page.replace("&amp;", "&x")  # escaped once


def test_chromium_renders_the_tables_and_images(run, tmp_path):
    chromium = _chromium()
    require(chromium is not None, "chromium", "install Debian's chromium package (apt-get install -y --no-install-recommends "
                                             "chromium) or run .ci/run")
    page = write_html(run).read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    shot = tmp_path / "shot.png"
    p = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1600",
                        f"--screenshot={shot}", "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="ooc-probe">([^<]*)</pre>', p.stdout)
    assert m, (p.returncode, p.stderr[-2000:])
    got = json.loads(m.group(1))
    assert len(got["images"]) == 3 and all(ok and w > 0 and h > 0 for ok, w, h in got["images"]), got
    assert got["tables"] >= 4 and got["rows"] >= 10 and got["text"] > 500
    with Image.open(shot) as im:  # a page was really painted: text, table rules and the figures, not a blank
        a = np.asarray(im.convert("L"))
    assert a.shape[1] == 1280 and (a < 128).mean() > 0.005 and len(np.unique(a)) > 50


def test_report_cli_writes_report_html(run, capsys):
    (run / "report.html").unlink(missing_ok=True)
    code, out, _ = run_cli(capsys, "report", run)
    assert code == 0, out
    assert "<table" in (run / "report.html").read_text()
