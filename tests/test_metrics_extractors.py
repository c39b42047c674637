"""DINOv2 feature extractor (local random weights, offline failure); score CLI errors."""

from __future__ import annotations


import numpy as np
import pytest

from ooc_bench.errors import WeightsUnavailableError
from ooc_bench.metrics import create_extractor


def _digits(n: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images[:n] / 16.0 * 255).round().astype(np.uint8)
    x = np.repeat(np.repeat(x, 4, axis=1), 4, axis=2)[..., None].repeat(3, axis=-1)
    return x, d.target[:n].astype(np.int64)


def _tiny_dinov2_file(path, resolution: int = 56, seed: int = 0):
    """Random weights of a tiny ViT-L/14-shaped DINOv2 (2 blocks, width 64) in timm's format: the test config."""
    import timm
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = timm.create_model("vit_large_patch14_dinov2", pretrained=False, num_classes=0, img_size=resolution,
                              **TINY)
    with torch.no_grad():  # DINOv2 inits LayerScale at 1e-5 (near-constant CLS output): make random weights informative
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.fill_(1.0)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


TINY = {"depth": 2, "embed_dim": 64, "num_heads": 2}


def test_dinov2_sizes_resolve_and_vitl14_is_the_default(monkeypatch, tmp_path):
    import inspect

    from ooc_bench.errors import UserInputError
    from ooc_bench.metrics.extractors import DINOV2_DEFAULT, DINOV2_MODELS, DinoV2Extractor, resolve_dinov2_model

    assert DINOV2_DEFAULT == "vitl14" and inspect.signature(DinoV2Extractor).parameters["model"].default == "vitl14"
    assert list(DINOV2_MODELS) == ["vits14", "vitb14", "vitl14", "vitg14"]
    for name, arch in DINOV2_MODELS.items():
        for spelling in (name, f"dinov2_{name}", arch, f"{arch}.lvd142m", name.upper()):
            assert resolve_dinov2_model(spelling) == (name, arch, f"{arch}.lvd142m"), spelling
    assert resolve_dinov2_model("dinov2-vit-b-14")[0] == "vitb14"  # torch-fidelity's spelling
    with pytest.raises(UserInputError, match="--dinov2-model.*vits14, vitb14, vitl14, vitg14"):
        create_extractor("dinov2", model="vitx14")
    # offline without weights: fails at once, naming the option and the default model's hub id
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(WeightsUnavailableError, match="vit_large_patch14_dinov2.*--dinov2-weights"):
        create_extractor("dinov2")
    with pytest.raises(WeightsUnavailableError, match="vit_small_patch14_dinov2"):
        create_extractor("dinov2", model="vits14")
    with pytest.raises(UserInputError, match="--dinov2-weights: file .*missing.safetensors does not exist"):
        create_extractor("dinov2", weights=str(tmp_path / "missing.safetensors"))


def test_dinov2_tiny_random_config_from_local_file_and_hub_id(monkeypatch, tmp_path):
    from ooc_bench.errors import UserInputError

    path = _tiny_dinov2_file(tmp_path / "dinov2-tiny.safetensors")
    ext = create_extractor("dino", model="vitl14", weights=str(path), resolution=56, model_kwargs=TINY)
    x, _ = _digits(12)
    f = ext.extract(x, batch_size=6)
    assert f.shape == (12, 64) and f.dtype == np.float64 and np.isfinite(f).all()
    assert f.std(axis=0).mean() > 1e-4
    prov = ext.provenance
    assert prov["weights_sha"] and prov["resolution"] == 56 and prov["feature_space"] == "dinov2-vitl14"
    assert prov["resize_mode"] == "pil-bicubic" and prov["model_kwargs"] == TINY
    assert np.allclose(ext.extract(x[:3]), f[:3], atol=1e-5)  # batch composition does not change features
    ids = {ext.id(), create_extractor("dinov2", model="vitl14", weights=str(path), resolution=70, model_kwargs=TINY).id(),
           create_extractor("dinov2", model="vitl14", weights=str(path), resolution=56, model_kwargs=TINY,
                            resize_mode="clean").id()}
    assert len(ids) == 3  # resolution and resize mode are part of the cache key
    # the same file as a hub id, found in the (offline) Hugging Face cache
    cache = tmp_path / "hf"
    snap = cache / "models--test-org--tiny-dinov2" / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    (snap / "model.safetensors").write_bytes(path.read_bytes())
    (cache / "models--test-org--tiny-dinov2" / "refs").mkdir()
    (cache / "models--test-org--tiny-dinov2" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    hub = create_extractor("dinov2", model="vitl14", weights="hf-hub:test-org/tiny-dinov2", resolution=56,
                           model_kwargs=TINY)
    assert hub.provenance["weights"] == "hf-hub:test-org/tiny-dinov2" and hub.id() == ext.id()
    np.testing.assert_allclose(hub.extract(x[:3]), f[:3], atol=1e-5)
    # a weights file of another shape fails with a message naming the option
    with pytest.raises(UserInputError, match="--dinov2-weights: could not load"):
        create_extractor("dinov2", model="vits14", weights=str(path), resolution=56).extract(x[:1])


def test_dinov2_resize_modes_match_dgm_eval_and_torch_fidelity_preprocessing():
    import torch
    import torchvision.transforms as T
    from cleanfid.resize import make_resizer
    from PIL import Image
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    from ooc_bench.metrics.extractors import resized_for_network

    x, _ = _digits(3)
    x = x[:, :30, :30]  # a non-multiple size
    dev = torch.device("cpu")
    # dgm-eval's default transform: torchvision Resize((224, 224), BICUBIC) on the PIL image, ToTensor
    ref = torch.stack([T.Compose([T.Resize((224, 224), T.InterpolationMode.BICUBIC), T.ToTensor()])(Image.fromarray(im))
                       for im in x])
    np.testing.assert_allclose((resized_for_network(x, 224, "pil-bicubic", dev) / 255).numpy(), ref.numpy(), atol=1e-6)
    # dgm-eval --clean_resize: float PIL bicubic per channel, clipped, /255 (clean-fid's resizer at 224)
    clean = np.stack([make_resizer("PIL", False, "bicubic", (224, 224))(im) for im in x]).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(resized_for_network(x, 224, "clean", dev).numpy(), clean)
    # torch-fidelity's dinov2 extractors: TF1-compatible bilinear on the float image
    tf1 = interpolate_bilinear_2d_like_tensorflow1x(torch.from_numpy(x).permute(0, 3, 1, 2).float(), size=(224, 224),
                                                    align_corners=False)
    np.testing.assert_array_equal(resized_for_network(x, 224, "torch-fidelity", dev).numpy(), tf1.numpy())


# the domain extractor and the score CLI on it: tests/test_metrics_domain.py


def test_score_cli_errors_are_one_line(demo_root, tmp_path, capsys):
    from ooc_bench.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["score", "--data", str(demo_root), "--fake", str(tmp_path), "--metrics", "fid,bogus"])
    assert exc.value.code == 2
    assert "--metrics" in capsys.readouterr().err
