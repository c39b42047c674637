"""Tests of the from-scratch `ddpm` generator: training, checkpoints, resume with a continuing step count, sampling."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ooc_bench.errors import UserInputError
from ooc_bench.generators import TrainingSet, create_generator, load_generator

CFG = dict(resolution=32, preset="tiny", batch_size=4, checkpoint_every=2, sample_every=0, sample_steps=3, sample_batch=8)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    keep = np.flatnonzero(d.target < 3)[:60]
    images = (d.images[keep] / 16 * 255).astype(np.uint8)
    return TrainingSet.from_arrays(images, d.target[keep], ["zero", "one", "two"])


def _latest(workdir):
    return json.loads((workdir / "ddpm" / "latest.json").read_text())["step"]


def test_ddpm_checkpoints_resume_and_sample(digits, tmp_path):
    import torch

    full = create_generator("ddpm", steps=4, **CFG).fit(digits, workdir=tmp_path / "full")
    part = create_generator("ddpm", steps=2, **CFG).fit(digits, workdir=tmp_path / "resume")
    assert _latest(tmp_path / "resume") == 2 and part.train_stats["start_step"] == 0
    resumed = create_generator("ddpm", steps=4, **CFG).fit(digits, workdir=tmp_path / "resume")
    assert resumed.train_stats["start_step"] == 2 and _latest(tmp_path / "resume") == 4
    # an interrupted-and-resumed run equals the uninterrupted one (optimizer, EMA and RNG state restored)
    a, b = full._model.state_dict(), resumed._model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], part._model.state_dict()[k]) for k in a)
    assert (tmp_path / "resume" / "ddpm" / "samples" / "step_00000004.png").is_file()
    # a finished run resumes with nothing left to do
    again = create_generator("ddpm", steps=4, **CFG).fit(digits, workdir=tmp_path / "resume")
    assert again.train_stats["start_step"] == 4
    # a different config does not pick up the checkpoint
    other = create_generator("ddpm", steps=2, **{**CFG, "learning_rate": 5e-4}).fit(digits, workdir=tmp_path / "resume")
    assert other.train_stats["start_step"] == 0

    samples = full.sample({"zero": 2, "two": 1}, tmp_path / "out", seed=3, size=16)
    assert [r["label"] for r in samples.rows] == ["zero", "zero", "two"]
    from PIL import Image

    ims = [np.asarray(Image.open(p)) for p in samples.paths()]
    assert all(im.shape == (16, 16, 3) and im.dtype == np.uint8 for im in ims)
    assert not np.array_equal(ims[0], ims[1])
    full.save(tmp_path / "gen")
    loaded = load_generator(tmp_path / "gen")
    again_s = loaded.sample({"zero": 2, "two": 1}, tmp_path / "out2", seed=3, size=16)
    assert [r["hash"] for r in again_s.rows] == [r["hash"] for r in samples.rows]


def test_ddpm_class_conditioning_and_presets():
    from ooc_bench.generators.diffusion.ddpm import unet_config

    cfg = unet_config("small", 64, 2)
    assert cfg["num_class_embeds"] == 3  # two classes + the null class for classifier-free guidance
    assert len(cfg["block_out_channels"]) == 4 and "AttnDownBlock2D" in cfg["down_block_types"]
    assert len(unet_config("base", 128, 5)["block_out_channels"]) == 5
    with pytest.raises(UserInputError, match="resolution"):
        create_generator("ddpm", resolution=48)
    with pytest.raises(UserInputError, match="preset"):
        create_generator("ddpm", preset="huge")
    assert len(unet_config("tiny", 16, 10)["block_out_channels"]) == 2  # 16 px: levels 16 and 8
    with pytest.raises(UserInputError, match="sampler"):
        create_generator("ddpm", sampler="euler")


def test_ddpm_auto_preset_and_batch_resolve_per_device():
    """``preset = "auto"`` and ``batch_size = none`` are filled in for the device, and the filled-in values are hashed."""
    from ooc_bench.matrix.resolve import resolve_generator

    cpu = create_generator("ddpm", device="cpu").config
    assert (cpu["preset"], cpu["batch_size"], cpu["learning_rate"]) == ("tiny", 16, 1e-3)
    gpu = create_generator("ddpm", device="cuda").config  # resolving needs no GPU
    assert (gpu["preset"], gpu["batch_size"], gpu["learning_rate"]) == ("small", 32, 2e-4)
    given = create_generator("ddpm", device="cuda", preset="tiny", batch_size=8).config
    assert (given["preset"], given["batch_size"], given["learning_rate"]) == ("tiny", 8, 1e-3)
    (_, on_cpu), (_, on_cuda) = (resolve_generator("ddpm", {}, kind) for kind in ("cpu", "cuda"))
    assert on_cpu["preset"] == "tiny" and on_cuda["preset"] == "small" and "device" not in on_cpu


def test_ddpm_v_prediction_and_guidance(digits):
    gen = create_generator("ddpm", steps=1, prediction_type="v_prediction", guidance_scale=2.0,
                           **{**CFG, "checkpoint_every": 0})
    gen.fit(digits)
    ims = gen.generate(1, [0, 1], [1, 2], 32)
    assert len(ims) == 2 and ims[0].shape == (32, 32, 3)
    assert np.array_equal(ims[0], gen.generate(1, [0], [1], 32)[0])  # one seed per image, batch-independent


@pytest.fixture(scope="module")
def digits16():
    from sklearn.datasets import load_digits

    from ooc_bench.data import resize_square

    d = load_digits()
    ims = np.stack([resize_square(np.repeat((im / 16 * 255).astype(np.uint8)[..., None], 3, -1), 16) for im in d.images])
    return TrainingSet.from_arrays(ims, d.target, [str(i) for i in range(10)]), ims


def _fit150(train: TrainingSet, **config):
    """A short real-data fit: all scikit-learn digits at 16 px, tiny preset, 150 steps."""
    return create_generator("ddpm", resolution=16, preset="tiny", steps=150, batch_size=16, flip="none", sample_steps=20,
                            checkpoint_every=0, sample_every=0, device="cpu", **config).fit(train)


@pytest.fixture(scope="module")
def digits16_fit(digits16):
    """The sampler's regression case: an epsilon model (the old default) after the short fit."""
    train, ims = digits16
    return _fit150(train, prediction_type="epsilon"), ims


def _sample_stats(gen) -> tuple[float, float]:
    """Saturated-pixel share (exactly 0 or 255) of 2 samples per class, and max |x_t| seen while sampling them."""
    out, worst = [], 0.0
    for c in range(10):
        out += gen.generate(c, [0, 1], [100 * c, 100 * c + 1], 16)
        worst = max(worst, gen.sampling_stats["max_abs_x"])
    return float(np.isin(np.stack(out), (0, 255)).mean()), worst


def test_ddpm_default_sampler_matches_real_pixel_statistics(digits16_fit):
    """Regression test for the divergent sampler (DPM-Solver++ on an epsilon model, cosine schedule, unclipped x0):
    it saturated ~100 % of the pixels and reached |x| ~ 10^4. The default clips the predicted x0 to [-1, 1]."""
    gen, real = digits16_fit
    assert gen.config["clip_x0"] is True and gen.config["sampler"] == "dpm++" and gen.config["guidance_scale"] > 1
    real_share = float(np.isin(real, (0, 255)).mean())  # 0.36: the digits' black background
    share, worst = _sample_stats(gen)
    assert abs(share - real_share) < 0.15, (share, real_share)
    assert worst < 6.0  # x_t stays at the scale of the initial noise (max |N(0,1)| over 768 values is ~4)


def test_ddpm_defaults_v_prediction_matches_real_pixel_statistics(digits16):
    """The default model (v-prediction) with the default sampler passes the same checks after the same short fit."""
    train, real = digits16
    gen = _fit150(train)
    assert gen.config["prediction_type"] == "v_prediction" and gen.config["clip_x0"] is True
    share, worst = _sample_stats(gen)
    assert abs(share - float(np.isin(real, (0, 255)).mean())) < 0.15, share
    assert worst < 6.0


def test_ddpm_unclipped_sampler_is_caught_by_the_same_checks(digits16_fit):
    """The checks above fail on the old behaviour (clip_x0=False reproduces it), so they can catch a regression."""
    gen, real = digits16_fit
    old = create_generator("ddpm", **{**gen.config, "clip_x0": False, "guidance_scale": 1.0})
    old.classes, old._model = gen.classes, gen._model
    share, worst = _sample_stats(old)
    assert share > 0.9 and worst > 100.0
