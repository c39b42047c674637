"""Tests of `ooc-bench generate`: every generator through one command, train-only image access, clear errors."""

from __future__ import annotations

import csv
import json


from .cli_helpers import run_cli


def _cli(argv, capsys):
    code, out, err = run_cli(capsys, *argv)
    return code, out + err


def _split_rows(out):
    with open(out / "split.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_generate_img2img_reads_only_train_images(demo_root, tiny_sd, tmp_path, capsys, monkeypatch, decode_spy):

    monkeypatch.setenv("OOC_BENCH_CACHE", str(tmp_path / "fresh-cache"))  # force real decoding
    seen = decode_spy
    out = tmp_path / "out"
    code, text = _cli(["generate", "--generator", "sd-img2img", "--data", str(demo_root), "--out", str(out),
                       "--sd-model", str(tiny_sd), "--working-size", "32", "--per-class", "2", "--output-size", "16",
                       "--steps", "20", "--strength", "0.1", "--param", "guidance_scale=29"], capsys)
    assert code == 0, text
    rows = _split_rows(out)
    train_paths = {str((out / r["path"]).resolve()) for r in rows if r["split"] == "train"}
    held_hashes = {r["hash"] for r in rows if r["split"] != "train"}
    assert seen and {str(__import__("pathlib").Path(p).resolve()) for p in seen} <= train_paths
    with open(out / "manifest.csv", newline="") as fh:
        manifest = list(csv.DictReader(fh))
    assert len(manifest) == 4 and all(r["source_hash"] and r["source_hash"] not in held_hashes for r in manifest)
    summary = json.loads((out / "generate.json").read_text())
    assert summary["config"]["guidance_scale"] == 29 and summary["config"]["strength"] == 0.1
    assert (out / "generator" / "config.json").is_file() and "sd-img2img" in text


def test_generate_aug_ddpm_folder_per_image_and_params(demo_root, tmp_path, capsys):
    code, text = _cli(["generate", "-g", "aug", "--data", str(demo_root), "--out", str(tmp_path / "aug"),
                       "--per-image", "1", "--output-size", "16", "--seed", "3", "--param", "resolution=16"], capsys)
    assert code == 0, text
    s = json.loads((tmp_path / "aug" / "generate.json").read_text())
    assert s["synthetic_images"] == s["train_images"] and "seed" not in s["config"]
    code, text = _cli(["generate", "-g", "ddpm", "--data", str(demo_root), "--out", str(tmp_path / "ddpm"),
                       "--per-class", "1", "--output-size", "16", "--working-size", "32", "--steps", "2",
                       "--param", "preset=tiny", "--param", "batch_size=2", "--param", "sample_steps=2"], capsys)
    assert code == 0, text
    assert json.loads((tmp_path / "ddpm" / "generate.json").read_text())["train_stats"]["steps"] == 2
    code, text = _cli(["generate", "-g", "folder", "--data", str(demo_root), "--out", str(tmp_path / "reg"),
                       "--path", str(tmp_path / "aug"), "--output-size", "16"], capsys)
    assert code == 0, text
    s2 = json.loads((tmp_path / "reg" / "generate.json").read_text())
    assert s2["synthetic_images"] == s["synthetic_images"]  # default for folder: every image it holds


def test_generate_errors_are_one_clear_line(demo_root, tmp_path, capsys):
    code, text = _cli(["generate", "-g", "sd", "--data", str(demo_root), "--out", str(tmp_path / "x"),
                       "--sd-model", str(tmp_path / "missing")], capsys)
    assert code == 2 and "local folder not found" in text and "Traceback" not in text
    code, text = _cli(["generate", "-g", "sd", "--data", str(demo_root), "--out", str(tmp_path / "x"),
                       "--sd-model", "stable-diffusion-v1-5/stable-diffusion-v1-5", "--steps", "1"], capsys)
    assert code == 2 and "--sd-model DIR" in text
    code, text = _cli(["generate", "-g", "aug", "--data", str(demo_root), "--out", str(tmp_path / "x"),
                       "--kimg", "5"], capsys)
    assert code == 2 and "has no option '--kimg'" in text
    code, text = _cli(["generate", "-g", "aug", "--data", str(demo_root), "--out", str(tmp_path / "x"),
                       "--per-class", "2", "--per-image", "1"], capsys)
    assert code == 2 and "not both" in text
    code, text = _cli(["generate", "-g", "nope", "--data", str(demo_root), "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "unknown generator" in text
