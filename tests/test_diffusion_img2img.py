"""img2img strength conventions (AUTOMATIC1111 web UI vs diffusers) and single-file (web-UI) SD checkpoints, on the tiny pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from ooc_bench.errors import UserInputError
from ooc_bench.generators import TrainingSet, create_generator

RES = 32


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(0)
    ims = (rng.random((2, RES, RES, 3)) * 255).astype(np.uint8)
    return TrainingSet.from_arrays(ims, np.array([0, 1]), ["bad", "good"])


def _recorded_timesteps(gen, monkeypatch) -> list[float]:
    """The UNet timesteps of one img2img call (one UNet call per sampler step; CFG batches cond + uncond)."""
    import torch

    pipe = gen._pipeline()
    seen: list[float] = []
    forward = pipe.unet.forward

    def spy(sample, timestep, *args, **kwargs):
        t = timestep if torch.is_tensor(timestep) else torch.tensor(timestep)
        seen.append(float(t.flatten()[0]))
        return forward(sample, timestep, *args, **kwargs)

    monkeypatch.setattr(pipe.unet, "forward", spy)
    gen.generate(0, [0], [1], RES)
    return seen


def _kdiffusion_sigma(alphas_cumprod, t: float) -> float:
    """sigma at a fractional t as k-diffusion's DiscreteSchedule.t_to_sigma computes it (log-linear between steps)."""
    s = np.log(np.sqrt((1 - alphas_cumprod) / alphas_cumprod))
    lo, hi = int(np.floor(t)), int(np.ceil(t))
    return float(np.exp((1 - (t - lo)) * s[lo] + (t - lo) * s[hi]))


def test_webui_strength_015_at_20_euler_steps(tiny_sd, pair, monkeypatch):
    """The thesis setting: the web UI runs int(0.15 * 20) + 1 = 4 Euler steps on its 20-point schedule
    t = linspace(999, 0, 20), starting at t = 3 * 999 / 19 = 157.7; diffusers' own meaning runs 3 (from t = 101
    with SD 1.5's 'leading' spacing)."""
    web = create_generator("sd-img2img", sd_model=str(tiny_sd), resolution=RES, strength=0.15, steps=20).fit(pair)
    assert web.config["strength_convention"] == "webui"  # the default
    t_web = _recorded_timesteps(web, monkeypatch)
    assert t_web == pytest.approx([999 * k / 19 for k in (3, 2, 1, 0)], abs=1e-3)
    sched = web._pipeline().scheduler
    ac = sched.alphas_cumprod.numpy().astype(np.float64)
    assert float(sched.sigmas[0]) == pytest.approx(_kdiffusion_sigma(ac, 999 * 3 / 19), rel=1e-5)
    assert float(sched.sigmas[-1]) == 0.0
    assert web.describe()["denoising_steps"] == 4

    dif = create_generator("sd-img2img", sd_model=str(tiny_sd), resolution=RES, strength=0.15, steps=20,
                           strength_convention="diffusers").fit(pair)
    t_dif = _recorded_timesteps(dif, monkeypatch)
    assert t_dif == [101.0, 51.0, 1.0]
    pipe = dif._pipeline()
    pipe.scheduler.set_timesteps(20)
    expected, n = pipe.get_timesteps(20, 0.15, "cpu")  # diffusers' own img2img arithmetic
    assert n == 3 and [float(t) for t in expected] == t_dif
    assert dif.describe()["denoising_steps"] == 3


def test_webui_strength_010_and_other_samplers(tiny_sd, pair, monkeypatch):
    """strength 0.10: 3 web-UI steps from t = 105.2 (diffusers: 2); a sampler without custom sigmas (DPM++)
    still runs the web UI's number of steps, on a linspace grid."""
    web = create_generator("sd-img2img", sd_model=str(tiny_sd), resolution=RES, strength=0.10, steps=20).fit(pair)
    assert _recorded_timesteps(web, monkeypatch) == pytest.approx([999 * k / 19 for k in (2, 1, 0)], abs=1e-3)
    dif = create_generator("sd-img2img", sd_model=str(tiny_sd), resolution=RES, strength=0.10, steps=20,
                           strength_convention="diffusers").fit(pair)
    assert len(_recorded_timesteps(dif, monkeypatch)) == 2
    dpm = create_generator("sd-img2img", sd_model=str(tiny_sd), resolution=RES, strength=0.15, steps=20,
                           sampler="dpm++").fit(pair)
    t = _recorded_timesteps(dpm, monkeypatch)
    assert len(t) == 4 and t == sorted(t, reverse=True)


def test_zero_step_rule_depends_on_convention(tiny_sd):
    from ooc_bench.generators.diffusion.img2img import denoising_steps

    assert denoising_steps(20, 0.01, "webui") == 1 and denoising_steps(20, 0.01, "diffusers") == 0
    assert denoising_steps(20, 1.0, "webui") == 20 and denoising_steps(20, 1.0, "diffusers") == 20
    create_generator("sd-img2img", sd_model=str(tiny_sd), strength=0.01, steps=20)  # web UI: 1 step, allowed
    with pytest.raises(UserInputError, match="denoising"):
        create_generator("sd-img2img", sd_model=str(tiny_sd), strength=0.01, steps=20, strength_convention="diffusers")
    with pytest.raises(UserInputError, match="strength_convention"):
        create_generator("sd-img2img", sd_model=str(tiny_sd), strength_convention="a1111")


@pytest.fixture(scope="module")
def checkpoint_files(tiny_sd, tmp_path_factory):
    """The tiny pipeline written as web-UI checkpoint files (original CompVis key layout)."""
    from ooc_bench.testing.tiny_sd import save_single_file_checkpoint

    d = tmp_path_factory.mktemp("ckpt")
    return {s: save_single_file_checkpoint(tiny_sd, d / f"tiny{s}") for s in (".safetensors", ".ckpt")}


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_single_file_checkpoint_loads_offline_with_config_folder(tiny_sd, checkpoint_files, suffix):
    import torch
    from safetensors.torch import load_file

    from ooc_bench.generators.diffusion.pipeline import load_sd_pipeline

    f = checkpoint_files[suffix]
    if suffix == ".safetensors":
        keys = set(load_file(str(f)))
        assert any(k.startswith("model.diffusion_model.input_blocks.") for k in keys)  # the web UI's layout
        assert any(k.startswith("first_stage_model.encoder.down.") for k in keys)
    ref = load_sd_pipeline(str(tiny_sd))
    pipe = load_sd_pipeline(str(f), sd_config=str(tiny_sd))
    for name in ("unet", "vae", "text_encoder"):
        a, b = getattr(ref, name).state_dict(), getattr(pipe, name).state_dict()
        assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a), name


def test_single_file_checkpoint_through_the_generator(tiny_sd, checkpoint_files, pair):
    f = str(checkpoint_files[".safetensors"])
    a = create_generator("sd-img2img", sd_model=f, sd_config=str(tiny_sd), resolution=RES, strength=0.3, steps=10)
    b = create_generator("sd-img2img", sd_model=str(tiny_sd), resolution=RES, strength=0.3, steps=10)
    ia = a.fit(pair).generate(1, [0], [5], RES)[0]
    ib = b.fit(pair).generate(1, [0], [5], RES)[0]
    assert np.array_equal(ia, ib)  # same weights, same seed: the same image


def test_single_file_checkpoint_errors_say_what_to_pass(tiny_sd, checkpoint_files, pair, tmp_path):
    f = str(checkpoint_files[".ckpt"])
    gen = create_generator("sd-img2img", sd_model=f, resolution=RES)
    with pytest.raises(UserInputError, match="--sd-config DIR") as info:  # offline (tests): no hub configs
        gen.fit(pair)
    assert "model_index.json" in str(info.value) and "tokenizer" in str(info.value)
    with pytest.raises(UserInputError, match="not a diffusers folder"):
        create_generator("sd", sd_model=f, sd_config=str(tmp_path), steps=1).fit(pair)
    bad = tmp_path / "weights.bin"
    bad.write_bytes(b"x")
    with pytest.raises(UserInputError, match=r"\.safetensors or \.ckpt"):
        create_generator("sd-img2img", sd_model=str(bad)).fit(pair)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a checkpoint")
    from ooc_bench.generators.diffusion.pipeline import load_sd_pipeline

    with pytest.raises(UserInputError, match="could not load the checkpoint file"):
        load_sd_pipeline(str(broken), sd_config=str(tiny_sd))


def test_generate_cli_single_file_checkpoint(demo_root, tiny_sd, checkpoint_files, tmp_path, capsys):
    """`ooc-bench generate --sd-model FILE`: a one-line error naming --sd-config offline, then works with it."""
    from .cli_helpers import run_cli

    argv = ["generate", "--generator", "sd-img2img", "--data", str(demo_root), "--working-size", "32",
            "--per-class", "1", "--output-size", "16", "--steps", "10", "--strength", "0.2",
            "--sd-model", str(checkpoint_files[".safetensors"])]
    code, out, err = run_cli(capsys, *argv, "--out", str(tmp_path / "a"))
    text = out + err
    assert code != 0 and "--sd-config DIR" in text and "Traceback" not in text
    code, out, err = run_cli(capsys, *argv, "--out", str(tmp_path / "b"), "--sd-config", str(tiny_sd))
    assert code == 0, out + err
    assert len(list((tmp_path / "b").glob("*/*.png"))) == 2
