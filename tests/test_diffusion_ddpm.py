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


def test_ddpm_v_prediction_and_guidance(digits):
    gen = create_generator("ddpm", steps=1, prediction_type="v_prediction", guidance_scale=2.0,
                           **{**CFG, "checkpoint_every": 0})
    gen.fit(digits)
    ims = gen.generate(1, [0, 1], [1, 2], 32)
    assert len(ims) == 2 and ims[0].shape == (32, 32, 3)
    assert np.array_equal(ims[0], gen.generate(1, [0], [1], 32)[0])  # one seed per image, batch-independent
