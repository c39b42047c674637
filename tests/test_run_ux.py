"""`ooc-bench run` for people and logs: exit codes, per-job progress lines, Ctrl-C, provenance, warnings, stale claims."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from ooc_bench.matrix import stages as stages_mod
from ooc_bench.matrix.plan import Job
from ooc_bench.matrix.progress import JobProgress

from .cli_helpers import run_cli
from .matrix_fixtures import make_digits_dataset

SPEC = """
name = "ux"
[data]
path = "{data}"
image_size = 16
[generators.ext]
type = "folder"
path = "{missing}"
optional = true
[models.cnn]
pretrained = false
epochs = 1
batch_size = 32
[matrix]
ratios = [0, 0.5]
seeds = [1]
[quality]
enabled = false
"""

PROGRESS = re.compile(r"^\[\s*\d+/\d+\] (done|failed|skipped) ")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("ux")
    data = make_digits_dataset(root / "digits", {"train": 12, "val": 6, "test": 8})
    spec = root / "ux.toml"
    spec.write_text(SPEC.format(data=str(data).replace("\\", "/"), missing=str(root / "no-such-folder")))
    return root, data, spec


@pytest.fixture()
def umask_002():
    old = os.umask(0o002)
    yield
    os.umask(old)


def test_failed_jobs_exit_4_with_logs_then_rerun_retries_only_them_and_exits_0(tiny, tmp_path, monkeypatch, capsys,
                                                                              umask_002):
    root, data, spec = tiny
    out = tmp_path / "run"

    def boom(job, paths):
        raise RuntimeError("boom: the cell crashed")

    monkeypatch.setitem(stages_mod.RUNNERS, "cell", boom)
    code, stdout, stderr = run_cli(capsys, "run", "--spec", spec, "--out", out, "--no-plots")
    assert code == 4, stdout + stderr
    assert "1 job(s) failed" in stdout and "boom: the cell crashed" in stdout
    log = re.search(r"log: (\S+\.log)", stdout)
    assert log and Path(log.group(1)).is_file() and "boom" in Path(log.group(1)).read_text()
    assert "skipped generator ext" in stdout  # the optional generator is skipped, not a failure
    skip_line = " ".join(stdout.split("skipped generator ext")[1].split("\n")[:3])
    assert "--path" not in skip_line and "--set generators.ext.path=VALUE" in " ".join(skip_line.split())
    lines = [ln for ln in stdout.splitlines() if PROGRESS.match(ln)]
    assert len(lines) == 4 and all(len(ln) <= 80 for ln in lines), lines  # fit, sample, 2 cells
    assert all("elapsed" in ln and "ETA" in ln for ln in lines)
    assert sum(ln.split()[1] == "failed" for ln in lines) == 1

    monkeypatch.undo()
    code, stdout, stderr = run_cli(capsys, "run", "--spec", spec, "--out", out, "--no-plots")
    assert code == 0, stdout + stderr
    lines = [ln for ln in stdout.splitlines() if PROGRESS.match(ln)]
    assert len(lines) == 1 and lines[0].startswith("[1/1] done    cnn · real-only")  # only the failed job ran again
    assert "job(s) failed" not in stdout and "did not run" not in stdout

    # outputs follow the umask (0o002 here: group-writable), not mkstemp's 0600
    for f in ("provenance.json", "split.csv", "downstream.csv", "plan.json"):
        assert (out / f).stat().st_mode & 0o777 == 0o664, f
    records = list((out / "records").rglob("*.json"))
    assert records and all(r.stat().st_mode & 0o777 == 0o664 for r in records)

    # provenance reproduces the run
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["command"].startswith("ooc-bench run --spec ") and "--no-plots" in prov["command"]
    assert prov["argv"][:2] == ["ooc-bench", "run"]
    ds = prov["dataset"]
    assert ds["path"] == str(data.resolve()) and Path(ds["path"]).is_absolute()
    assert re.fullmatch(r"[0-9a-f]{32}", ds["hash"])
    assert prov["git_dirty"] in (True, False, None) and "git_commit" in prov
    cells = [j for j in prov["jobs"] if j["kind"] == "cell"]
    done = [j for j in cells if j["status"] == "done"]
    assert len(cells) == 2 and len(done) == 1
    cfg = done[0].get("resolved_config") or done[0]["params"]["train_config"]
    text = json.dumps(cfg)
    for key in ("lr", "optimizer", "augment", "pretrained", "epochs"):
        assert f'"{key}"' in text, key  # every training option, defaults filled in, not only {img_size, model}
    assert any("only 1 classifier seed" in w for w in ds["spec_warnings"])
    assert isinstance(ds["split_warnings"], list) and isinstance(ds["near_duplicates"], list)


def test_ctrl_c_says_how_to_resume_and_exits_130(tiny, tmp_path, monkeypatch, capsys):
    root, data, spec = tiny
    from ooc_bench.matrix import executor

    def interrupted(self, plan, retry_failed=True):
        raise KeyboardInterrupt

    monkeypatch.setattr(executor.Runner, "run", interrupted)
    code, stdout, stderr = run_cli(capsys, "run", "--spec", spec, "--out", tmp_path / "r", "--no-plots")
    assert code == 130
    text = stdout + stderr
    assert "To resume, run the same command again: ooc-bench run --spec" in text.replace("\n", " ")


def test_progress_lines_fit_80_columns_and_count_down():
    buf = io.StringIO()
    console = Console(file=buf, width=80, force_terminal=False)
    label = "mnv2 · sd-img2img-strength-0.15-guidance-7.5 · synthetic-only 0.5 · seed 7921"
    with JobProgress(console, total=12) as p:
        for i in range(12):
            p.update(Job("cell", f"k{i}", label, {}), {"status": "failed" if i == 3 else "done", "time_s": 1.5})
    lines = [ln for ln in buf.getvalue().splitlines() if PROGRESS.match(ln)]
    assert len(lines) == 12 and all(len(ln) <= 80 for ln in lines)
    assert lines[0].startswith("[ 1/12] done") and lines[-1].startswith("[12/12] done")
    assert "…" in lines[0] and "ETA" in lines[-1] and "1 failed" in lines[-1]
    assert "error:" in buf.getvalue()


def test_spec_warnings_ratios_duplicate_and_few_seeds(tiny, tmp_path, capsys):
    root, data, spec = tiny
    code, stdout, stderr = run_cli(capsys, "run", "--spec", spec, "--out", tmp_path / "w", "--ratios", "0,50",
                                   "--seeds", "3,3", "--dry-run")
    text = " ".join((stdout + stderr).split())
    assert code == 0
    assert "ratio 50 with protocol add" in text and "did you mean 0.5?" in text
    assert "duplicate seed(s) 3" in text and "n = 1" in text
    assert "only 1 classifier seed(s)" in text


def test_one_explicit_seed_and_a_count(tiny, tmp_path, capsys):
    from ooc_bench.matrix.executor import load_plan

    root, data, spec = tiny
    code, stdout, stderr = run_cli(capsys, "run", "--spec", spec, "--out", tmp_path / "s", "--seed", "42", "--dry-run")
    assert code == 0, stderr
    seeds = {j.params["seed"] for j in load_plan(tmp_path / "s").jobs if j.kind == "cell"}
    assert seeds == {42}
    code, stdout, stderr = run_cli(capsys, "run", "--spec", spec, "--out", tmp_path / "n", "--n-seeds", "3", "--dry-run")
    seeds = {j.params["seed"] for j in load_plan(tmp_path / "n").jobs if j.kind == "cell"}
    assert code == 0 and seeds == {7921, 2048, 1337}
    code, _, stderr = run_cli(capsys, "run", "--spec", spec, "--seed", "1", "--n-seeds", "2", "--dry-run")
    assert code == 2 and "pass only one of" in stderr


def test_negative_seeds_are_an_error_before_any_work(tiny, tmp_path, capsys):
    root, data, spec = tiny
    code, _, stderr = run_cli(capsys, "run", "--spec", spec, "--out", tmp_path / "neg", "--seeds", "-3,1")
    assert code == 2 and "negative" in stderr
    assert not (tmp_path / "neg" / "split.csv").exists()


def test_status_shows_host_pid_and_age_of_claims_and_stale_ones(tiny, tmp_path, capsys):
    from ooc_bench.matrix.executor import load_plan
    from ooc_bench.matrix.store import RunPaths

    root, data, spec = tiny
    out = tmp_path / "st"
    assert run_cli(capsys, "run", "--spec", spec, "--out", out, "--dry-run")[0] == 0
    cells = [j for j in load_plan(out).jobs if j.kind == "cell"]
    paths = RunPaths(out)
    live = paths.claim_path("cell", cells[0].key)
    live.parent.mkdir(parents=True, exist_ok=True)
    live.write_text(json.dumps({"host": "gpu-node-7", "pid": 4242, "time": time.time() - 3 * 3600}))
    dead = paths.claim_path("cell", cells[1].key)
    dead.write_text(json.dumps({"host": socket.gethostname(), "pid": 2 ** 22 + 12345, "time": time.time() - 60}))
    code, stdout, _ = run_cli(capsys, "status", out)
    text = " ".join(stdout.split())
    assert code == 0
    assert "claimed by gpu-node-7 pid 4242, 3:00:00 ago" in text and "--stale-after" in text
    assert "stale claim by" in text and "its process is gone" in text
    code, stdout, _ = run_cli(capsys, "status", out, "--stale-after", "3600")  # another host's 3 h old claim: stale now
    text = " ".join(stdout.split())
    assert "claimed by gpu-node-7" not in text and "older than the stale timeout (3600 s)" in text


@pytest.mark.parametrize("argv", [
    ["run", "--spec", "{spec}", "--out", "/proc/1/ooc-out"],
    ["train", "--data", "{data}", "--model", "cnn", "--out", "/proc/1/ooc-out"],
    ["generate", "-g", "aug", "--data", "{data}", "--out", "/proc/1/ooc-out"],
    ["score", "--data", "{data}", "--fake", "{data}", "--out", "/proc/1/ooc-out/s.csv"],
    ["data", "split", "{data}", "--out", "/proc/1/ooc-out/split.csv"],
    ["data", "demo", "/proc/1/ooc-out"],
    ["export", "{data}", "--onnx", "/proc/1/ooc-out/m.onnx"],
])
def test_an_unwritable_output_folder_is_a_clear_error_before_any_work(tiny, argv, capsys, decode_spy):
    root, data, spec = tiny
    args = [a.format(spec=spec, data=data) for a in argv]
    code, stdout, stderr = run_cli(capsys, *args)
    assert code == 2, stdout + stderr
    assert "is not writable" in stderr and "/proc/1" in stderr
    assert decode_spy == []  # nothing was decoded (nor trained, fitted or scored) before the error


def test_near_duplicates_across_splits_are_found_and_warned(tmp_path):
    from ooc_bench.data.neardup import near_duplicate_warning, near_duplicates, phash

    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (40, 32, 32, 3), dtype=np.uint8)
    fields = np.stack([gaussian_filter(rng.normal(size=(32, 32, 3)), (3, 3, 0)) for _ in range(40)])  # blob images
    lo, span = fields.min(axis=(1, 2, 3), keepdims=True), np.ptp(fields, axis=(1, 2, 3), keepdims=True)
    smooth = ((fields - lo) / span * 200 + 20).astype(np.uint8)
    train = smooth[:30]
    copy = np.clip(train[7].astype(int) * 1.05 + 4, 0, 255).astype(np.uint8)  # a re-exposed copy of train image 7
    test = np.concatenate([smooth[30:], copy[None]])
    pairs = near_duplicates(train, [f"tr{i}.png" for i in range(30)], {"test": (test, [f"te{i}.png" for i in range(11)])})
    assert [(p.train, p.other, p.other_split) for p in pairs] == [("tr7.png", "te10.png", "test")]
    warning = near_duplicate_warning(pairs)
    assert "1 near-duplicate pair(s)" in warning and "tr7.png" in warning and "te10.png" in warning
    h = phash(base)
    assert h.dtype == np.uint64 and len(set(h.tolist())) == 40


def test_split_warnings_and_near_duplicates_reach_the_run_and_provenance(tmp_path, capsys):
    from PIL import Image

    data = make_digits_dataset(tmp_path / "d", {"train": 10, "val": 4, "test": 6})
    src = sorted((data / "train" / "three").glob("*.png"))[0]
    img = np.asarray(Image.open(src)).astype(int)
    Image.fromarray(np.clip(img * 1.02 + 2, 0, 255).astype(np.uint8)).save(data / "test" / "three" / "copy.png")
    small = tmp_path / "small.toml"
    small.write_text(SPEC.format(data=str(data), missing=str(tmp_path / "none")).replace("image_size = 16",
                                                                                      "image_size = 32"))
    code, stdout, stderr = run_cli(capsys, "run", "--spec", small, "--out", tmp_path / "r", "--dry-run")
    text = " ".join((stdout + stderr).split())
    assert code == 0, text
    assert "near-duplicate pair(s) across splits" in text and "copy.png" in text
    assert "smaller than the working size 32 px (smallest 24x24" in text


def test_sixteen_bit_images_are_scaled_by_their_declared_depth_and_warned_about(tmp_path):
    import tifffile

    from ooc_bench.data.checks import bit_depth_warnings
    from ooc_bench.data.decode import decode_image
    from ooc_bench.data.records import ImageRecord

    a = np.full((8, 8), 4095, np.uint16)
    tifffile.imwrite(tmp_path / "plain.tif", a)
    tifffile.imwrite(tmp_path / "tagged.tif", a, extratags=[(281, "H", 1, 4095, False)])
    assert decode_image(str(tmp_path / "plain.tif")).max() == 16  # 4095 * 255 / 65535: near-black
    assert decode_image(str(tmp_path / "tagged.tif")).max() == 255  # scaled by the declared 12 bits
    recs = [ImageRecord(str(tmp_path / f), "a", "h", metadata={"mode": "uint16x1"}) for f in ("plain.tif", "tagged.tif")]
    w = bit_depth_warnings(recs)
    assert len(w) == 1 and "1 16-bit image(s) use only the low 12 bits" in w[0] and "plain.tif" in w[0]
    assert "MaxSampleValue = 4095" in w[0]


def test_run_can_skip_bad_files_and_ignore_pretrained_weights(tmp_path, capsys):
    from ooc_bench.matrix.executor import load_plan

    data = make_digits_dataset(tmp_path / "d", {"train": 8, "val": 4, "test": 4})
    good = sorted((data / "train" / "three").glob("*.png"))[0].read_bytes()
    (data / "train" / "three" / "broken.png").write_bytes(good[: len(good) // 2])  # truncated
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(data=str(data), missing=str(tmp_path / "none")))
    code, _, err = run_cli(capsys, "run", "--spec", spec, "--out", tmp_path / "a", "--dry-run")
    assert code == 2 and "broken.png" in err and "--skip-bad" in err
    code, out, err = run_cli(capsys, "run", "--spec", spec, "--out", tmp_path / "b", "--dry-run", "--skip-bad")
    assert code == 0, err
    assert "broken.png" in " ".join((out + err).split())  # listed as skipped
    manifest = (tmp_path / "b" / "split.csv").read_text()
    assert "broken.png" not in manifest and manifest.count("three_") == 16
    code, out, err = run_cli(capsys, "run", "--spec", spec, "--out", tmp_path / "c", "--dry-run", "--skip-bad",
                             "--models", "mnv3s", "--no-pretrained", "--working-size", "32")
    assert code == 0, err
    cells = [j for j in load_plan(tmp_path / "c").jobs if j.kind == "cell"]
    assert cells and all(j.params["train_config"]["pretrained"] is False for j in cells)
    assert all(j.params["train_config"]["img_size"] == 32 for j in cells)


def test_a_terminal_gets_the_live_bar_not_log_lines():
    buf = io.StringIO()
    console = Console(file=buf, width=100, force_terminal=True)
    with JobProgress(console, total=2) as p:
        assert p.live
        p.update(Job("fit", "k", "fit aug", {}), {"status": "done", "time_s": 0.1})
        p.update(Job("cell", "k2", "cnn · aug", {}), {"status": "failed", "error": "boom", "time_s": 0.1})
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buf.getvalue())  # drop the terminal's colour/cursor codes
    assert "benchmark" in text and "2/2" in text and "failed: cnn · aug: boom" in text
    assert not any(PROGRESS.match(ln) for ln in text.splitlines())
