"""Tests of the `sd` (LoRA) and `sd-img2img` generators on a tiny SD-1.5-shaped pipeline saved as a local diffusers folder."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ooc_bench.errors import UserInputError
from ooc_bench.generators import TrainingSet, create_generator, load_generator

RES = 32


@pytest.fixture(scope="module")
def cells():
    """Six real 32 px images (skimage), two classes, with metadata on some images only."""
    from PIL import Image
    from skimage import data

    srcs = [data.cell(), data.immunohistochemistry(), data.retina(), data.astronaut(), data.coffee(), data.chelsea()]
    ims = []
    for s in srcs:
        s = np.repeat(s[..., None], 3, -1) if s.ndim == 2 else s[..., :3]
        ims.append(np.asarray(Image.fromarray(s).resize((RES, RES), Image.BICUBIC)))
    md = [{"day": "3", "cell_type": "hepatocytes"}, {}, {"day": "7"}, {}, {"cell_type": "kidney"}, {}]
    return TrainingSet.from_arrays(np.stack(ims), np.array([0, 0, 0, 1, 1, 1]), ["bad", "good"], metadata=md)


@pytest.fixture(scope="module")
def fitted_sd(tiny_sd, cells, tmp_path_factory):
    """An `sd` generator with UNet + text-encoder LoRA trained 2 steps (rank 4, alpha 8), saved once."""
    gen = create_generator("sd", sd_model=str(tiny_sd), resolution=RES, steps=2, rank=4, alpha=8, batch_size=2,
                           grad_accum=2, train_text_encoder=True, sample_steps=3, checkpoint_every=0)
    gen.fit(cells, workdir=tmp_path_factory.mktemp("sd-work"))
    out = tmp_path_factory.mktemp("sd-saved")
    gen.save(out)
    return gen, out


def test_only_lora_parameters_train(fitted_sd):
    gen, _ = fitted_sd
    pipe = gen._pipe
    for module in (pipe.unet, pipe.text_encoder):
        named = dict(module.named_parameters())
        trainable = {n for n, p in named.items() if p.requires_grad}
        with_grad = {n for n, p in named.items() if p.grad is not None}
        assert trainable and all("lora_" in n for n in trainable)
        assert with_grad == trainable  # gradients of the last step: every LoRA parameter, nothing else
        assert all(float(named[n].grad.abs().sum()) > 0 for n in with_grad if "lora_B" in n)
    assert not any(p.requires_grad or p.grad is not None for p in pipe.vae.parameters())


def test_lora_round_trip_identical_tensors_and_samples(fitted_sd):
    from peft.utils import get_peft_model_state_dict

    from ooc_bench.generators.diffusion.lora import ADAPTER

    gen, saved = fitted_sd
    assert (saved / "lora" / "pytorch_lora_weights.safetensors").is_file()
    again = load_generator(saved)
    for comp in ("unet", "text_encoder"):
        a = get_peft_model_state_dict(getattr(gen._pipe, comp), adapter_name=ADAPTER)
        b = get_peft_model_state_dict(getattr(again._pipe, comp), adapter_name=ADAPTER)
        assert a.keys() == b.keys() and len(a) > 0
        assert all(np.array_equal(a[k].detach().numpy(), b[k].detach().numpy()) for k in a)
    assert again._pipe.unet.peft_config[ADAPTER].lora_alpha == 8  # alpha survives (scale alpha/rank = 2)
    ims_a = gen.generate(1, [0, 1], [11, 12], RES)
    ims_b = again.generate(1, [0, 1], [11, 12], RES)
    assert all(np.array_equal(x, y) for x, y in zip(ims_a, ims_b))
    assert not np.array_equal(ims_a[0], ims_a[1])  # different seeds, different images


def test_lora_changes_samples(fitted_sd, tiny_sd):
    gen, _ = fitted_sd
    base = create_generator("sd", sd_model=str(tiny_sd), resolution=RES, steps=0, sample_steps=3)
    base.fit(TrainingSet.from_arrays(np.zeros((2, RES, RES, 3), np.uint8), np.array([0, 1]), ["bad", "good"]))
    # same prompt for both (no metadata in the base's set and image 0 of "good" in the fitted set has none)
    assert gen._prompts(1, gen._source_index(1, [0])) == base._prompts(1, base._source_index(1, [0])) == ["good cells"]
    a = gen.generate(1, [0], [5], RES)[0].astype(int)
    b = base.generate(1, [0], [5], RES)[0].astype(int)
    assert np.abs(a - b).max() > 0


def test_kohya_export_keys_and_shapes(fitted_sd):
    from safetensors import safe_open
    from safetensors.torch import load_file

    _, saved = fitted_sd
    path = saved / "lora" / "lora_kohya.safetensors"
    sd = load_file(str(path))
    pat = re.compile(r"^lora_(unet|te)_([a-z0-9_]+)\.(lora_down\.weight|lora_up\.weight|alpha)$")
    modules: dict[str, set[str]] = {}
    for key in sd:
        m = pat.match(key)
        assert m, key
        modules.setdefault(f"lora_{m.group(1)}_{m.group(2)}", set()).add(m.group(3))
    assert all(v == {"lora_down.weight", "lora_up.weight", "alpha"} for v in modules.values())
    unet = [k for k in modules if k.startswith("lora_unet_")]
    te = [k for k in modules if k.startswith("lora_te_")]
    assert unet and te and len(unet) + len(te) == len(modules)
    assert all(re.search(r"_(to_q|to_k|to_v|to_out_0)$", k) for k in unet)
    assert all(re.search(r"_self_attn_(q|k|v|out)_proj$", k) for k in te)
    assert "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q" in modules
    for k in modules:
        down, up = sd[f"{k}.lora_down.weight"], sd[f"{k}.lora_up.weight"]
        assert down.shape[0] == 4 and up.shape[1] == 4  # rank
        assert float(sd[f"{k}.alpha"]) == 8.0
    q = sd["lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight"]
    assert tuple(q.shape) == (4, 64)  # attention at the 64-channel level of the tiny UNet
    with safe_open(str(path), framework="pt") as fh:
        assert fh.metadata()["ss_network_dim"] == "4" and fh.metadata()["ss_network_alpha"] == "8.0"


def test_prompts_follow_metadata(fitted_sd):
    gen, _ = fitted_sd
    order = gen._source_index(0, [0, 1, 2])
    prompts = gen._prompts(0, order)
    expected = {0: "bad cells, hepatocytes, age: 3", 1: "bad cells", 2: "bad cells, age: 7"}
    assert prompts == [expected[i] for i in order]


def test_img2img_small_strength_returns_vae_reconstruction(tiny_sd, cells):
    """strength 0.04 with 20 Euler steps runs (web UI: int(0.04 * 20) + 1 =) one step from t = 0, sigma ~0.03
    (latents have unit std), so the output must be the VAE reconstruction up to a few grey levels; at strength
    1 it is far from it."""
    import torch

    gen = create_generator("sd-img2img", sd_model=str(tiny_sd), resolution=RES, strength=0.04, steps=20)
    gen.fit(cells)
    far = create_generator("sd-img2img", sd_model=str(tiny_sd), resolution=RES, strength=1.0, steps=4)
    far.fit(cells)
    src = gen._source_index(0, [0, 1, 2])
    near_out = np.stack(gen.generate(0, [0, 1, 2], [1, 2, 3], RES)).astype(np.float32) / 255
    far_out = np.stack(far.generate(0, [0, 1, 2], [1, 2, 3], RES)).astype(np.float32) / 255
    vae = gen._pipeline().vae
    x = torch.from_numpy(cells.images(RES)[src]).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        rec = vae.decode(vae.encode(x).latent_dist.mode()).sample
    rec = ((rec.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()
    near_err = float(np.abs(near_out - rec).mean())
    far_err = float(np.abs(far_out - rec).mean())
    assert near_err < 0.03  # < 8 grey levels on average
    assert near_err < far_err / 4


def test_img2img_sources_variants_and_superset(tiny_sd, cells, tmp_path):
    gen = create_generator("sd-img2img", sd_model=str(tiny_sd), resolution=RES, steps=20, strength=0.15)
    gen.fit(cells)
    small = gen.sample(2, tmp_path / "a", seed=7, size=16)
    big = gen.sample(4, tmp_path / "b", seed=7, size=16)
    train_by_class = {c: {h for h, l in zip(cells.hashes, cells.labels) if l == i} for i, c in enumerate(cells.classes)}
    for row in big.rows:
        assert row["source_hash"] in train_by_class[row["label"]]  # label inherited from its source
    for c in cells.classes:
        rows = [r for r in big.rows if r["label"] == c]
        assert len({r["source_hash"] for r in rows[:3]}) == 3  # first a variant of every source ...
        assert rows[3]["source_hash"] == rows[0]["source_hash"]  # ... then the 2nd variants, in the same order
    prefix = [r for r in big.rows if int(r["path"].split("_")[-1][:6]) < 2]
    assert len(small.rows) == len(prefix) == 4  # zip below must compare something
    for a, b in zip(small.rows, prefix):
        assert (a["path"], a["hash"], a["source_hash"]) == (b["path"], b["hash"], b["source_hash"])
    # save -> load keeps sources and outputs
    gen.save(tmp_path / "gen")
    again = load_generator(tmp_path / "gen")
    again_s = again.sample(2, tmp_path / "c", seed=7, size=16)
    assert [r["hash"] for r in again_s.rows] == [r["hash"] for r in small.rows]


def test_missing_local_sd_model_fails_fast(cells, tmp_path):
    gen = create_generator("sd", sd_model=str(tmp_path / "no-such-folder"), resolution=RES, steps=1)
    with pytest.raises(UserInputError, match="local folder not found"):
        gen.fit(cells)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="model_index.json"):
        create_generator("sd-img2img", sd_model=str(tmp_path / "empty")).fit(cells)


def test_unreachable_hub_id_fails_fast_with_advice(cells):
    from ooc_bench.errors import WeightsUnavailableError
    from ooc_bench.generators.diffusion.pipeline import load_sd_pipeline

    with pytest.raises(UserInputError, match="--sd-model") as info:
        load_sd_pipeline("stable-diffusion-v1-5/stable-diffusion-v1-5")
    assert isinstance(info.value, WeightsUnavailableError)
    assert "local" in str(info.value) and "model_index.json" in str(info.value)
    with pytest.raises(UserInputError, match="--sd-model"):  # through the generator, before any image is read
        create_generator("sd", sd_model="stable-diffusion-v1-5/stable-diffusion-v1-5", steps=1).fit(cells)


def test_img2img_rejects_zero_step_strength(tiny_sd):
    with pytest.raises(UserInputError, match="denoising"):  # diffusers' meaning: int(20 * 0.01) = 0 steps
        create_generator("sd-img2img", sd_model=str(tiny_sd), strength=0.01, steps=20, strength_convention="diffusers")
    with pytest.raises(UserInputError, match="strength"):
        create_generator("sd-img2img", sd_model=str(tiny_sd), strength=0.0)
