"""Data layer CLI: inspect / split / demo work, and every bad input gives one clear message, a non-zero exit, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from .cli_helpers import run_cli


def _png(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (10, 12), dtype=np.uint8)).save(path)
    return path


def _presplit(root: Path, classes=("a", "b"), test_classes=("a", "b")) -> Path:
    k = 0
    for split, names in (("train", classes), ("test", test_classes)):
        for c in names:
            for i in range(3):
                _png(root / split / c / f"{split}_{c}_{i}.png", k)
                k += 1
    return root


def test_inspect_split_and_demo_commands(capsys, tmp_path):
    demo = tmp_path / "demo"
    code, _, err = run_cli(capsys, "data", "demo", str(demo), "--n-images", "60", "--output-size", "32", "--seed", "1")
    assert code == 0 and (demo / "OOC_datasheet.csv").is_file()
    code, out, _ = run_cli(capsys, "data", "inspect", str(demo), "--json")
    info = json.loads(out)
    assert code == 0 and info["layout"] == "ooc" and info["n_images"] == 60 and info["classes"] == ["bad", "good"]
    assert info["groups"]["date"]["in_several_splits"] > 0
    code, out, _ = run_cli(capsys, "data", "inspect", str(demo))
    assert code == 0 and "ooc" in out and "train" in out
    # --group-by asks for a grouped split: it is made (no --resplit needed), not refused
    code, _, err = run_cli(capsys, "data", "split", str(demo), "--group-by", "date", "--out", str(tmp_path / "g.csv"))
    assert code == 0 and "grouped by date" in " ".join(err.split())
    code, _, err = run_cli(capsys, "data", "split", str(demo), "--group-by", "date", "--resplit", "--seed", "3",
                           "--val", "0.15", "--test", "0.25", "--out", str(tmp_path / "s.csv"))
    assert code == 0 and "s.csv" in err
    code, out, _ = run_cli(capsys, "data", "inspect", str(tmp_path / "s.csv"), "--json")
    assert code == 0 and json.loads(out)["groups"]["date"]["in_several_splits"] == 0
    code, _, err = run_cli(capsys, "data", "cache", str(tmp_path / "s.csv"), "--working-size", "16")
    assert code == 0 and "decoded 60" in err


def test_missing_path(capsys, tmp_path):
    code, _, err = run_cli(capsys, "data", "inspect", str(tmp_path / "nowhere"))
    assert code != 0 and "nowhere" in err


def test_truncated_image_and_skip_bad(capsys, tmp_path):
    root = _presplit(tmp_path / "set")
    victim = root / "train" / "a" / "train_a_1.png"
    victim.write_bytes(victim.read_bytes()[:-30])
    code, _, err = run_cli(capsys, "data", "inspect", str(root))
    assert code != 0 and "train_a_1.png" in err and "--skip-bad" in err
    code, out, _ = run_cli(capsys, "data", "inspect", str(root), "--skip-bad", "--json")
    assert code == 0 and json.loads(out)["n_images"] == 11
    assert any("train_a_1.png" in w for w in json.loads(out)["warnings"])


def test_non_image_files(capsys, tmp_path):
    root = _presplit(tmp_path / "set")
    (root / "test" / "b" / "fake.png").write_text("I am text, not a PNG")
    code, _, err = run_cli(capsys, "data", "split", str(root), "--out", str(tmp_path / "s.csv"))
    assert code != 0 and "fake.png" in err
    (tmp_path / "notes.txt").write_text("hello")
    code, _, err = run_cli(capsys, "data", "inspect", str(tmp_path / "notes.txt"))
    assert code != 0 and "notes.txt" in err


def test_empty_class_folder(capsys, tmp_path):
    root = tmp_path / "set"
    _png(root / "a" / "x.png", 1)
    _png(root / "b" / "y.png", 2)
    (root / "empty_class").mkdir()
    code, _, err = run_cli(capsys, "data", "inspect", str(root))
    assert code != 0 and "empty_class" in err


def test_single_class(capsys, tmp_path):
    root = tmp_path / "set"
    _png(root / "only" / "x.png", 1)
    _png(root / "only" / "y.png", 2)
    code, _, err = run_cli(capsys, "data", "split", str(root), "--out", str(tmp_path / "s.csv"))
    assert code != 0 and "only" in err and "one class" in err
    assert not (tmp_path / "s.csv").exists()


def test_class_missing_from_test(capsys, tmp_path):
    root = _presplit(tmp_path / "set", classes=("a", "b"), test_classes=("a",))
    code, out, err = run_cli(capsys, "data", "inspect", str(root))
    assert code != 0 and "b" in err and "test split" in err
    code, _, err = run_cli(capsys, "data", "split", str(root), "--out", str(tmp_path / "s.csv"))
    assert code != 0 and "--resplit" in err
    code, _, _ = run_cli(capsys, "data", "split", str(root), "--resplit", "--val", "0.1", "--test", "0.3",
                         "--out", str(tmp_path / "s.csv"))
    assert code == 0 and (tmp_path / "s.csv").is_file()


def test_same_image_in_two_splits(capsys, tmp_path):
    root = _presplit(tmp_path / "set")
    (root / "test" / "b" / "dupe.png").write_bytes((root / "train" / "a" / "train_a_0.png").read_bytes())
    code, _, err = run_cli(capsys, "data", "inspect", str(root))
    assert code != 0 and "dupe.png" in err and "train_a_0.png" in err


def test_datasheet_label_conflict(capsys, tmp_path):
    from ooc_bench.data import make_demo

    root = make_demo(tmp_path / "demo", seed=2, n_images=16, size=24)
    sheet = (root / "OOC_datasheet.csv").read_text().splitlines()
    first = sheet[1].split(",")
    first[5] = "1" if first[5] == "2" else "2"
    (root / "OOC_datasheet.csv").write_text("\n".join([sheet[0], ",".join(first)] + sheet[2:]) + "\n")
    code, _, err = run_cli(capsys, "data", "inspect", str(root))
    assert code != 0 and first[0] in err and "--accept-folder-labels" in err
    code, _, _ = run_cli(capsys, "data", "inspect", str(root), "--accept-folder-labels")
    assert code == 0


def test_bad_options(capsys, tmp_path):
    root = _presplit(tmp_path / "set")
    code, _, err = run_cli(capsys, "data", "split", str(root), "--resplit", "--test", "1.5", "--out", str(tmp_path / "s.csv"))
    assert code != 0 and "--test" in err
    code, _, err = run_cli(capsys, "data", "inspect", str(root), "--layout", "weird")
    assert code != 0 and "weird" in err


def test_console_script_has_no_traceback(tmp_path):
    env = dict(os.environ, OOC_BENCH_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-m", "ooc_bench", "data", "inspect", str(tmp_path / "missing_dir")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0 and "missing_dir" in proc.stderr and "Traceback" not in proc.stderr
