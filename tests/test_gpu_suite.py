"""benchmarks/gpu_suite.py at tiny sizes on the CPU: every section runs through the real code paths and reports its figures."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_suite():
    spec = importlib.util.spec_from_file_location("gpu_suite", ROOT / "benchmarks" / "gpu_suite.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_suite"] = mod
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop("gpu_suite", None)


@pytest.fixture(scope="module")
def quick_run(gpu_suite, tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-suite")
    rc = gpu_suite.main(["--out", str(out), "--quick", "--device", "cpu"])
    return rc, json.loads((out / "gpu_suite.json").read_text()), (out / "gpu_suite.md").read_text()


def _figures(report, section):
    return [f for f in report["figures"] if f["section"] == section]


def test_every_section_runs_and_reports(quick_run, gpu_suite):
    rc, report, md = quick_run
    assert {k: v["status"] for k, v in report["sections"].items()} == {s: "ok" for s in gpu_suite.SECTIONS}, \
        report["sections"]
    assert rc == 0
    env = report["environment"]
    assert env["device"] == "cpu" and env["torch"] and "packages" in env
    for section in gpu_suite.SECTIONS:
        assert _figures(report, section), section
        assert gpu_suite.ANCHORS[section] in md  # every section is compared with its published anchor
    assert md.count("\n| ") >= len(report["figures"])  # one Markdown row per figure


def test_classifier_figures_cover_models_and_precisions(quick_run):
    _, report, _ = quick_run
    rates = [f for f in _figures(report, "classifiers") if f["metric"] == "images/s"]
    checks = {f["check"].split()[0] for f in rates}
    assert checks == {"mnv2", "effb0", "effb7"}
    assert {f["variant"] for f in rates} == {"fp32", "bf16"}  # CPU: fp32 against bf16 autocast (mnv2)
    assert all(f["value"] > 0 and math.isfinite(f["value"]) for f in rates)
    shares = [f["value"] for f in _figures(report, "classifiers") if f["metric"] == "data path share"]
    assert all(0 < s < 1 for s in shares)
    det = [f for f in _figures(report, "classifiers") if f["metric"] == "max |metric difference|"]
    assert det and det[0]["value"] == 0.0  # CPU training is deterministic for the same seed


def test_gan_resume_and_rate(quick_run):
    _, report, _ = quick_run
    gan = _figures(report, "gan")
    assert any(f["metric"] == "s/kimg" and f["value"] > 0 for f in gan)
    resume = [f for f in gan if f["metric"] == "max |difference|"]
    assert resume and resume[0]["value"] < 1e-4, resume  # resumed fit matches the uninterrupted one on CPU
    assert [f["value"] for f in gan if f["metric"] == "kimg"] == [pytest.approx(0.032)]


def test_sd_sampling_compares_samplers_and_counts_steps(quick_run):
    _, report, _ = quick_run
    sd = _figures(report, "sd")
    calls = {f["variant"]: f["value"] for f in sd if f["metric"] == "UNet calls per batch"}
    fast = next(v for k, v in calls.items() if k.startswith("ooc-bench"))
    slow = next(v for k, v in calls.items() if k.startswith("diffusers"))
    assert slow > fast > 0  # PNDM with twice the steps runs more UNet passes
    # img2img at strength 0.15 / 20 Euler steps, web-UI semantics: int(0.15 * 20) + 1 = 4 denoising steps, not 20
    assert calls["denoising"] == 4
    assert any(f["metric"] == "s/step" and f["value"] > 0 for f in sd)


def test_missing_package_is_named_and_fails(gpu_suite, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(gpu_suite.NEEDS, "sd", ("diffusers", "no_such_package_xyz"))
    rc = gpu_suite.main(["--out", str(tmp_path), "--quick", "--device", "cpu", "--only", "sd"])
    assert rc == 1
    report = json.loads((tmp_path / "gpu_suite.json").read_text())
    assert report["sections"]["sd"]["status"] == "missing"
    assert "no_such_package_xyz" in report["sections"]["sd"]["error"]
    assert "no_such_package_xyz" in capsys.readouterr().out


def test_package_whose_own_dependency_is_missing_names_that_dependency(gpu_suite, tmp_path, monkeypatch, capsys):
    # diffusers without requests: found by find_spec, but its import raises; the suite names requests, runs on
    lib = tmp_path / "lib"
    (lib / "needs_module_xyz").mkdir(parents=True)
    (lib / "needs_module_xyz" / "__init__.py").write_text("import absent_module_xyz\n")
    (lib / "needs_dist_xyz").mkdir()
    (lib / "needs_dist_xyz" / "__init__.py").write_text(  # what diffusers' import-time version check raises
        "import importlib.metadata\nraise importlib.metadata.PackageNotFoundError(\"The 'absent_dist_xyz' "
        "distribution was not found and is required by this application.\")\n")
    (lib / "mismatched_xyz").mkdir()  # peft 0.17 under transformers 5: a name its dependency no longer has
    (lib / "mismatched_xyz" / "__init__.py").write_text("from json import no_such_name_xyz\n")
    monkeypatch.syspath_prepend(str(lib))
    monkeypatch.setitem(gpu_suite.NEEDS, "sd", ("needs_module_xyz", "needs_dist_xyz", "mismatched_xyz"))
    rc = gpu_suite.main(["--out", str(tmp_path / "out"), "--quick", "--device", "cpu", "--only", "sd"])
    assert rc == 1
    sd = json.loads((tmp_path / "out" / "gpu_suite.json").read_text())["sections"]["sd"]
    assert sd["status"] == "missing"
    for named in ("absent_module_xyz (needed by needs_module_xyz)", "absent_dist_xyz (needed by needs_dist_xyz)"):
        assert named in sd["error"]
    assert "mismatched_xyz (import fails, version mismatch?: cannot import name 'no_such_name_xyz'" in sd["error"]
    assert "json (needed by" not in sd["error"]  # json is there: not named as missing
    assert "pip download --no-deps absent-module-xyz absent-dist-xyz mismatched-xyz`" in capsys.readouterr().out


def test_bad_options_fail_fast(gpu_suite, tmp_path, capsys):
    assert gpu_suite.main(["--out", str(tmp_path), "--only", "gan,nope"]) == 2
    assert "nope" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert gpu_suite.main(["--out", str(blocker / "sub"), "--quick", "--device", "cpu"]) == 2
    assert "--out" in capsys.readouterr().err
