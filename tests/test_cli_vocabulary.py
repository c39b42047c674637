"""One CLI vocabulary: every hint names an option of the command that prints it; old names still work; 80 columns."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import click
import pytest
import typer

from ooc_bench.cli import app

from .cli_helpers import run_cli

PKG = Path(__file__).resolve().parents[1] / "ooc_bench"
LOADERS = ("run", "train", "generate", "score", "data inspect", "data split")


def _commands() -> dict[str, click.Command]:
    root = typer.main.get_command(app)
    out: dict[str, click.Command] = {}
    for name, cmd in root.commands.items():
        if hasattr(cmd, "commands"):  # a group (typer vendors its own click: no isinstance check)
            for sub, c in cmd.commands.items():
                out[f"{name} {sub}"] = c
        else:
            out[name] = cmd
    return out


def _options(cmd: click.Command) -> set[str]:
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts) if o.startswith("--")}


def _strings(path: Path) -> list[str]:
    """The string literals of a module (f-strings joined), docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    docs |= {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}  # parts of f-strings
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            out.append("".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if not re.fullmatch(r"--[a-z][\w-]*(=\S*)?", node.value):  # a bare "--flag" is an argv element (typer, git), not a hint
                out.append(node.value)
    return out


SNIPPET = re.compile(r"`ooc-bench ([^`]+)`")
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")

# which commands can print the hints of which module (the modules every dataset-reading command goes through)
AUDIENCE = {
    "data/layouts.py": LOADERS, "data/datasheet.py": LOADERS, "data/decode.py": LOADERS + ("predict",),
    "data/split.py": ("run", "data split"), "classifiers/weights.py": ("run", "train"),
    "data/opening.py": ("train", "generate"),  # open_split (score always passes --data)
    "data/rules.py": LOADERS,
    "classifiers/training.py": ("run", "train"), "matrix/run.py": ("run",), "matrix/executor.py": ("run",),
}


def test_every_backticked_command_in_a_hint_exists_with_its_options():
    commands = _commands()
    checked = 0
    for path in sorted(PKG.rglob("*.py")):
        for s in _strings(path):
            for snippet in SNIPPET.findall(s):
                words = snippet.split()
                if words[0].startswith("{"):
                    continue  # a template (`ooc-bench {command}`): the command is filled in at run time
                name = " ".join(words[:2]) if " ".join(words[:2]) in commands else words[0]
                assert name in commands, f"{path}: `ooc-bench {snippet}` names no command"
                missing = set(OPTION.findall(snippet)) - _options(commands[name])
                assert not missing, f"{path}: `ooc-bench {snippet}`: {name} has no {missing}"
                checked += 1
    assert checked >= 5


@pytest.mark.parametrize("module", sorted(AUDIENCE))
def test_hints_of_shared_code_name_options_of_every_command_that_prints_them(module):
    commands = _commands()
    tokens = set()
    assert (PKG / module).is_file(), f"{module} moved: update AUDIENCE (which commands print its hints)"
    for s in _strings(PKG / module):
        tokens |= set(OPTION.findall(SNIPPET.sub("", s)))
    for name in AUDIENCE[module]:
        missing = tokens - _options(commands[name])
        assert not missing, f"hints in {module} name {sorted(missing)}, which `ooc-bench {name}` does not have"


def test_the_same_thing_has_the_same_name_in_every_command():
    c = _commands()
    for name in ("train", "generate", "score", "run", "data inspect", "data split", "data cache"):
        assert "--data" in _options(c[name]), name
    for name in ("train", "generate"):
        assert "--split-manifest" in _options(c[name])
    assert "--split-name" in _options(c["score"])
    for name in ("train", "score", "generate", "run", "data cache"):
        assert "--working-size" in _options(c[name]), name
    for name in ("generate", "data demo"):
        assert "--output-size" in _options(c[name]), name
    for name in ("train", "run", "report"):
        assert {"--plots", "--no-plots"} <= _options(c[name]), name
    assert {"--seed", "--seeds", "--n-seeds", "--skip-bad", "--no-pretrained", "--weights"} <= _options(c["run"])
    # old names are hidden aliases: accepted, not advertised
    for name, old in (("train", "--img-size"), ("train", "--split"), ("train", "--plot"), ("score", "--real"),
                      ("score", "--size"), ("score", "--split"), ("generate", "--resolution"), ("generate", "--size")):
        param = next(p for p in c[name].params if old in p.opts)
        assert param.hidden, (name, old)


def test_an_old_option_name_still_works_with_a_note(tmp_path, capsys):
    from ooc_bench.data import make_demo

    root = make_demo(tmp_path / "demo", seed=0, n_images=24, size=32)
    code, _, err = run_cli(capsys, "data", "cache", root, "--size", "16")
    assert code == 0 and "--size is deprecated; use --working-size" in err and "decoded 24" in err
    code, _, err = run_cli(capsys, "data", "cache", "--data", root, "--working-size", "16", "--size", "16")
    assert code == 2 and "pass only --working-size" in err


def test_data_split_group_by_makes_that_split_without_resplit(tmp_path, capsys):
    from ooc_bench.data import make_demo, read_split_manifest
    from ooc_bench.data.layouts import group_leaks

    root = make_demo(tmp_path / "demo", seed=0, n_images=96, size=32)  # its official split shares dates
    code, _, err = run_cli(capsys, "data", "split", root, "--group-by", "date", "--out", tmp_path / "s.csv")
    assert code == 0, err
    ds = read_split_manifest(tmp_path / "s.csv")
    tmp = [r for r in ds.records]
    assert group_leaks(tmp, "date")[0] == 0 and "grouped by date" in " ".join(err.split())


def test_help_is_never_cut_at_80_columns(monkeypatch):
    from typer.testing import CliRunner

    monkeypatch.setenv("COLUMNS", "80")
    runner = CliRunner()
    for name, cmd in _commands().items():
        res = runner.invoke(app, [*name.split(), "--help"], terminal_width=80)
        assert res.exit_code == 0, name
        assert "…" not in res.output, name
        lines = res.output.splitlines()
        assert all(len(ln) <= 80 for ln in lines), (name, [ln for ln in lines if len(ln) > 80])
        for p in cmd.params:  # every visible option name appears whole
            if isinstance(p, click.Option) and not p.hidden:
                assert p.opts[0] in res.output, (name, p.opts[0])
    top = runner.invoke(app, ["--help"], terminal_width=80).output
    assert "..." not in top.split("Commands:")[1]


def test_list_shows_whole_timm_names_at_80_columns(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run_cli(capsys, "list")
    assert code == 0 and "…" not in out
    assert "mobilenetv3_large_100" in out and "tf_efficientnet_b7" in out
    rows = [ln for ln in out.splitlines() if re.match(r"^\s*(alias|cnn|mnv|eff|xception)\S*\s{2,}", ln)]
    assert len(rows) >= 10 and all(len(ln) <= 80 for ln in rows)  # the table itself fits (prose below may wrap)


def test_train_epoch_lines_fit_80_columns():
    from ooc_bench.cli.train_cmd import epoch_line

    row = {"epoch": 100, "trainable": "all", "train_loss": 0.69314, "train_accuracy": 0.5, "val_loss": 12.3456,
           "val_accuracy": 0.98765, "time_s": 1234.5}
    line = epoch_line(row, 100)
    assert len(line) < 80 and "1234s" in line and "val loss 12.3456 acc 0.9877" in line and line.startswith("epoch 100/100 all")


def test_atomic_writes_follow_the_umask(tmp_path):
    from ooc_bench.atomic import atomic_path, make_temp_dir, write_json

    old = os.umask(0o027)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        with atomic_path(tmp_path / "b.npy") as tmp:
            tmp.write_bytes(b"x")
        d = make_temp_dir(tmp_path / "folder")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o640  # was 0o600 (mkstemp)
    assert (tmp_path / "b.npy").stat().st_mode & 0o777 == 0o640
    assert d.stat().st_mode & 0o777 == 0o750  # was 0o700 (mkdtemp)


def test_train_at_80_columns_removes_a_stale_curves_png_and_predict_shows_whole_names(tmp_path, capsys, monkeypatch):
    from .matrix_fixtures import make_digits_dataset

    monkeypatch.setenv("COLUMNS", "80")
    data = make_digits_dataset(tmp_path / "d", {"train": 8, "val": 4, "test": 4})
    out = tmp_path / "model"
    out.mkdir()
    (out / "curves.png").write_bytes(b"from an earlier run")
    code, stdout, err = run_cli(capsys, "train", "--data", data, "--model", "cnn", "--no-pretrained", "--epochs", "2",
                                "--working-size", "16", "--batch-size", "16", "--out", out)
    assert code == 0, err
    assert not (out / "curves.png").exists()  # it belonged to another model
    epochs = [ln for ln in stdout.splitlines() if ln.startswith("epoch ")]
    assert len(epochs) == 2 and all(len(ln) < 80 and "val loss" in ln for ln in epochs)
    long_dir = tmp_path / "a_rather_long_folder_name_of_microscopy_images" / "acquired_on_2021_03_14"
    long_dir.mkdir(parents=True)
    img = long_dir / "culture_plate_7_well_B3_position_12_brightfield.png"
    img.write_bytes(sorted((data / "test" / "three").glob("*.png"))[0].read_bytes())
    code, stdout, err = run_cli(capsys, "predict", out, img, "--backend", "torch")
    assert code == 0, err
    assert "…" not in stdout and "brightfield.png" in stdout.replace("│", "").replace("\n", "").replace(" ", "")
    assert all(len(ln) <= 80 for ln in stdout.splitlines())


def test_job_errors_of_generators_and_metrics_are_spelled_for_run():
    """Generators and metrics name `generate`/`score` options in their errors; `run` prints those errors through
    run_spelling, so every such option must exist in `run` or have a run spelling."""
    from ooc_bench.matrix.progress import RUN_SPELLING, run_spelling

    run_opts = _options(_commands()["run"])
    tokens = set()
    for path in sorted((PKG / "generators").rglob("*.py")) + sorted((PKG / "metrics").rglob("*.py")):
        for s in _strings(path):
            tokens |= set(OPTION.findall(re.sub(r"`[^`]*`", "", s)))  # `other-tool --flag` snippets name their tool
    missing = sorted(t for t in tokens if t not in run_opts and t not in RUN_SPELLING)
    assert not missing, f"job errors name {missing}: add them to `run` or to progress.RUN_SPELLING"
    text = run_spelling("--path /x: no such folder; pass a local copy with --inception-weights FILE")
    assert "--path" not in text and "generators.LABEL.path /x" in text and "quality.inception_weights FILE" in text
