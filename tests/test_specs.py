"""Every shipped spec (benchmarks/*.toml) loads, validates every table and dry-runs on an OOC-layout dataset; bad values fail at load."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from ooc_bench.errors import UserInputError
from ooc_bench.matrix.spec import load_spec

SPECS = sorted((Path(__file__).parent.parent / "benchmarks").glob("*.toml"))


def test_there_are_shipped_specs():
    assert {p.name for p in SPECS} >= {"demo.toml", "ooc_thesis.toml", "ooc_thesis_grouped.toml", "ooc_spa2023.toml",
                                       "ooc_gan_vs_diffusion.toml"}


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_shipped_spec_loads_and_dry_runs(path, demo_root, tmp_path):
    from ooc_bench.matrix.plan import build_plan
    from ooc_bench.matrix.run import prepare_split

    spec = load_spec(path, data=str(demo_root))
    for g in spec.generators:  # every generator table was checked against its dataclass (and built once)
        assert g.type in ("aug", "gan", "ddpm", "sd", "sd-img2img", "folder")
    split = prepare_split(spec, tmp_path, Console(quiet=True))
    plan = build_plan(spec, split)
    kinds = {j.kind for j in plan.jobs}
    assert "cell" in kinds and (not spec.generators or {"fit", "sample"} <= kinds)
    n_models, n_seeds = len(spec.models), len(spec.seeds)
    assert len(plan.by_kind("cell")) >= n_models * n_seeds  # at least the real-only baselines


def test_thesis_img2img_makes_three_variants_per_real_image(demo_root, tmp_path):
    """per_image = 3 (the thesis) is a valid sd-img2img setting: the sample stage makes 3 x n_train per class."""
    from ooc_bench.matrix.plan import build_plan
    from ooc_bench.matrix.run import prepare_split

    spec = load_spec(SPECS[0].parent / "ooc_thesis.toml", data=str(demo_root))
    assert [g.config["per_image"] for g in spec.generators] == [3, 3]
    split = prepare_split(spec, tmp_path, Console(quiet=True))
    for job in build_plan(spec, split).by_kind("sample"):
        assert job.params["n_per_class"] == {c: 3 * n for c, n in split.train_counts.items()}


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bad.toml"
    p.write_text(text)
    return p


BASE = """
[generators.gan]
kimg = 0.5
[generators.i2i]
type = "sd-img2img"
strength = 0.15
[models.cnn]
epochs = 2
[matrix]
ratios = [0, 0.5]
seeds = [1]
"""


@pytest.mark.parametrize("edit,needles", [
    (("kimg = 0.5", "kimg = -1"), ["bad.toml", "[generators.gan]", "kimg", "valid: > 0"]),
    (("kimg = 0.5", "kimg = 'lots'"), ["[generators.gan]", "kimg = 'lots' is not"]),
    (("kimg = 0.5", "kimgs = 1"), ["[generators.gan]", "unknown setting(s) kimgs", "valid keys:", "kimg"]),
    (("strength = 0.15", "strength = 1.5"), ["[generators.i2i]", "strength", "(0, 1]"]),
    (("strength = 0.15", "strength = 0.01\nstrength_convention = 'diffusers'"),
     ["[generators.i2i]", "denoising steps"]),  # a cross-field check: int(steps x strength) < 1
    (("strength = 0.15", "per_image = -2"), ["[generators.i2i]", "per_image", ">= 0"]),
    (("epochs = 2", "epochs = 'two'"), ["[models.cnn]", "epochs", "not an integer"]),
    (("epochs = 2", "epochs = 0"), ["[models.cnn]", "epochs"]),
    (("epochs = 2", "optimizer = 'adam9'"), ["[models.cnn]", "optimizer", "adamw"]),
    (("seeds = [1]", "seeds = [1]\nprotocols = ['add', 'swap']"), ["[matrix]", "protocols", "add, replace"]),
    (("seeds = [1]", "seeds = [1]\nsample_seed = 1.5"), ["[matrix]", "sample_seed"]),
    (("[matrix]", "[quality]\nk = 0\n[matrix]"), ["[quality]", "k = 0", ">= 1"]),
    (("[matrix]", "[quality]\nfeatures = 'alexnet'\n[matrix]"), ["[quality]", "alexnet"]),
    (("[matrix]", "[data]\nimage_size = 'big'\n[matrix]"), ["[data]", "image_size"]),
    (("[matrix]", "[data]\nval = 1.5\n[matrix]"), ["[data]", "val", "[0, 1)"]),
])
def test_bad_value_fails_at_load_naming_file_table_key_and_range(tmp_path, edit, needles):
    text = BASE.replace(*edit)
    assert text != BASE
    with pytest.raises(UserInputError) as e:
        load_spec(_write(tmp_path, text))
    for needle in needles:
        assert needle in str(e.value), (needle, str(e.value))


def test_set_overrides_reach_every_table_and_are_checked(tmp_path):
    path = _write(tmp_path, BASE.replace("[generators.i2i]", '[generators."i2i-s0.10"]'))
    spec = load_spec(path, overrides=["generators.gan.kimg=0.01", "generators.i2i-s0.10.strength=0.5",
                                      "models.cnn.epochs=1", "training.batch_size=8", "matrix.seeds=[3, 4]",
                                      "data.image_size=16", "quality.enabled=false", "name=shrunk"])
    gan = next(g for g in spec.generators if g.label == "gan")
    i2i = next(g for g in spec.generators if g.label == "i2i-s0.10")
    assert gan.config["kimg"] == 0.01 and i2i.config["strength"] == 0.5
    assert spec.models[0].config["epochs"] == 1 and spec.training["batch_size"] == 8
    assert spec.seeds == [3, 4] and spec.image_size == 16 and spec.quality["enabled"] is False and spec.name == "shrunk"
    with pytest.raises(UserInputError, match=r"\[generators.gan\] kimg = 0 is out of range"):
        load_spec(path, overrides=["generators.gan.kimg=0"])
    with pytest.raises(UserInputError, match="unknown table 'generator'"):
        load_spec(path, overrides=["generator.gan.kimg=1"])
    with pytest.raises(UserInputError, match="expected KEY=VALUE"):
        load_spec(path, overrides=["generators.gan.kimg"])


def test_loaded_generator_configs_are_typed(tmp_path):
    spec = load_spec(_write(tmp_path, BASE.replace("kimg = 0.5", "kimg = 1\nmirror = true")))
    gan = next(g for g in spec.generators if g.label == "gan")
    assert gan.config == {"kimg": 1.0, "mirror": True} and isinstance(gan.config["kimg"], float)


def _make_demo_command() -> tuple[dict[str, str], list[str]]:
    """(environment assignments, ooc-bench arguments) of the Makefile's `demo` recipe."""
    makefile = (SPECS[0].parents[1] / "Makefile").read_text().splitlines()
    recipe = makefile[makefile.index("demo: $(STAMP)") + 1].split()
    at = next(i for i, w in enumerate(recipe) if w.endswith("/ooc-bench"))
    env = dict(w.split("=", 1) for w in recipe[:at])
    return env, recipe[at + 1:]


def test_demo_spec_runs_end_to_end_with_budgets_shrunk_by_overrides(demo_root, tmp_path, capsys, monkeypatch):
    """`make demo`'s own command (the shipped demo spec, unchanged on disk, two one-thread workers) run through the CLI
    with --set overrides: every generator that can run does (sd and sd-img2img are optional and have no weights here:
    skipped at pre-flight), every cell trains."""
    import csv

    from tests.cli_helpers import run_cli

    env, args = _make_demo_command()
    assert args[:3] == ["run", "--spec", "benchmarks/demo.toml"] and "--jobs" in args
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    args[2] = str(SPECS[0].parent / "demo.toml")
    out = tmp_path / "demo"
    code, stdout, stderr = run_cli(
        capsys, *args, "--data", str(demo_root), "--out", str(out),
        "--no-plots", "--set", "data.image_size=16", "--set", "generators.gan.resolution=16",
        "--set", "generators.gan.kimg=0.008", "--set", "generators.gan.batch_size=4", "--set", "generators.ddpm.resolution=16",
        "--set", "generators.ddpm.steps=1", "--set", "generators.ddpm.sample_steps=2",
        "--set", "generators.aug.resolution=16", "--set", "models.cnn.epochs=1", "--set", "matrix.seeds=[1]",
        "--set", "matrix.ratios=[0, 0.25]", "--set", "quality.enabled=false")
    text = stdout + stderr
    assert code == 0, text
    assert "skipping optional generator sd" in " ".join(text.split())
    with open(out / "downstream.csv", newline="") as fh:
        generators = {r["generator"] for r in csv.DictReader(fh)}
    assert generators == {"real-only", "aug", "gan", "ddpm"}
    import json

    fit = [json.loads(p.read_text()) for p in (out / "records" / "fit").glob("*.json")]
    gan = next(r for r in fit if r["params"]["generator"] == "gan")
    assert gan["status"] == "done" and gan["params"]["config"]["kimg"] == 0.008  # the override is what ran
    assert gan["params"]["config"]["capacity"] == "tiny" and gan["params"]["device_kind"] in ("cpu", "cuda")
