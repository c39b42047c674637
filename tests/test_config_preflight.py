"""Pre-flight: `run` and `--dry-run` check every weight source before any compute and list ALL missing ones."""

from __future__ import annotations

import pytest

from ooc_bench.matrix.preflight import PreflightError, check_sources, preflight
from ooc_bench.matrix.spec import load_spec
from tests.cli_helpers import run_cli


def _spec(tmp_path, name: str, data: object, body: str):
    """A spec file ``name`` under ``tmp_path`` with ``[data] path = data`` and the given tables, loaded."""
    f = tmp_path / name
    f.write_text(f'[data]\npath = "{data}"\n{body}')
    return load_spec(f)


def test_design_card_command_fails_in_seconds_listing_every_missing_source(demo_root, tmp_path, capsys):
    """`--generators sd,gan --models mnv2,effb7` offline: SD and both ImageNet weights are named, nothing runs."""
    code, out, err = run_cli(capsys, "run", "--data", str(demo_root), "--generators", "sd,gan", "--models", "mnv2,effb7",
                             "--sd-model", str(tmp_path / "no-sd-here"), "--out", str(tmp_path / "out"), "--dry-run")
    text = out + err
    assert code == 2, text
    flat = " ".join(text.split())
    assert "3 weight source(s)" in flat
    for needle in ("generator sd", "--sd-model DIR", "model mnv2", "model effb7", "--no-pretrained"):
        assert needle in flat, (needle, text)
    assert "generator gan" not in flat  # the GAN needs no weights
    assert not (tmp_path / "out" / "split.csv").exists()  # failed before the dataset was split or hashed
    assert not (tmp_path / "out" / "records").exists()  # and before any job ran (no timed assertion: no fit started)


def test_optional_generators_are_reported_as_skipped_not_fatal(demo_root, tmp_path):
    spec = _spec(tmp_path, "s.toml", demo_root, f"""[generators.aug]
[generators.sd]
optional = true
sd_model = "{tmp_path / 'missing-sd'}"
[models.cnn]
pretrained = false
""")
    problems = check_sources(spec)
    assert [(p.part, p.optional) for p in problems] == [("generator sd", True)]
    skipped = preflight(spec)
    assert list(skipped) == ["sd"] and "missing-sd" in skipped["sd"]


def test_present_sources_pass(demo_root, tmp_path, tiny_sd):
    """A real (tiny) diffusers folder, a local classifier weights file and random-init models: nothing missing."""
    from safetensors.torch import save_file

    from ooc_bench.classifiers import create_model

    weights = tmp_path / "cnn.safetensors"
    model, _ = create_model("cnn", num_classes=2, pretrained=False)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    spec = _spec(tmp_path, "ok.toml", demo_root, f"""[generators.i2i]
type = "sd-img2img"
sd_model = "{tiny_sd}"
[models.cnn]
weights = "{weights}"
[models.rand]
model = "mnv2"
pretrained = false
""")
    assert check_sources(spec) == []


def test_missing_weights_file_and_quality_weights_are_listed_together(demo_root, tmp_path):
    spec = _spec(tmp_path, "bad.toml", demo_root, f"""[models.cnn]
weights = "{tmp_path / 'nope.safetensors'}"
[matrix]
ratios = [0]
[quality]
features = "inception"
inception_weights = "{tmp_path / 'no-inception.pth'}"
""")
    with pytest.raises(PreflightError) as e:
        preflight(spec)
    msg = str(e.value)
    assert "2 weight source(s)" in msg and "nope.safetensors" in msg and "no-inception.pth" in msg
    assert "[quality] features = inception" in msg
