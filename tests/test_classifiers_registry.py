"""Classifier registry and weights: aliases build, local weights load exactly, clear errors for bad names/files/offline."""

from __future__ import annotations

import pytest
import torch

from ooc_bench.classifiers import ALIASES, create_model, list_models, resolve_model_name
from ooc_bench.errors import UserInputError, WeightsUnavailableError


def test_every_alias_builds_with_sizes_and_params():
    rows = {r["alias"]: r for r in list_models(num_classes=2)}
    assert set(rows) == set(ALIASES)
    assert rows["effb7"]["pretrained_timm_name"] == "tf_efficientnet_b7" and rows["effb7"]["input_size"] == 600
    assert rows["effb6"]["input_size"] == 528 and rows["mnv2"]["input_size"] == 224
    assert rows["xception"]["input_size"] == 299 and rows["cnn"]["pretrained_timm_name"] is None
    # parameter counts grow with the EfficientNet scale and are in the published ballpark
    effs = [rows[f"effb{i}"]["n_params"] for i in range(8)]
    assert effs == sorted(effs) and 3.5e6 < effs[0] < 4.5e6 and 60e6 < effs[7] < 68e6
    assert 2.0e6 < rows["mnv2"]["n_params"] < 2.6e6


def test_alias_resolution():
    assert resolve_model_name("mnv2") == "mobilenetv2_100"
    assert resolve_model_name("MNV3") == "mobilenetv3_large_100"
    assert resolve_model_name("effb7") == "efficientnet_b7"
    assert resolve_model_name("effb7", pretrained=True) == "tf_efficientnet_b7"
    assert resolve_model_name("xception") == "legacy_xception"
    assert resolve_model_name("xception65") == "xception65"  # any timm name verbatim
    with pytest.raises(UserInputError, match=r"unknown model 'mnv9'.*ooc-bench list"):
        resolve_model_name("mnv9")
    with pytest.raises(UserInputError, match="Did you mean"):
        create_model("efficientnet_b99", pretrained=False)


@pytest.mark.parametrize("alias", ["cnn", "mnv2", "mnv3", "mnv3s", "effb0", "xception"])
def test_family_forward_backward_small(alias):
    torch.manual_seed(0)
    model, info = create_model(alias, num_classes=3, pretrained=False)
    assert info.pretrained is False and info.pretrained_source == "none" and info.n_params > 0
    x = torch.randn(2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in model.get_classifier().parameters())
    feats = model.forward_head(model.forward_features(x), pre_logits=True)
    assert feats.ndim == 2 and feats.shape[0] == 2


def _save_timm(tmp_path, timm_name, num_classes, fmt="safetensors", in_chans=3):
    import timm

    torch.manual_seed(1)
    m = timm.create_model(timm_name, pretrained=False, num_classes=num_classes, in_chans=in_chans)
    sd = {k: v.contiguous() for k, v in m.state_dict().items()}
    path = tmp_path / f"w_{num_classes}.{fmt}"
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file(sd, str(path))
    else:
        torch.save(sd, str(path))
    return path, sd


def test_local_imagenet_weights_load_exactly_with_new_head(tmp_path):
    path, sd = _save_timm(tmp_path, "mobilenetv3_small_100", 1000)
    model, info = create_model("mnv3s", num_classes=2, weights=str(path))
    got = model.state_dict()
    for k, v in sd.items():
        if k.startswith("classifier."):
            continue
        assert torch.equal(got[k], v), k
    assert got["classifier.weight"].shape[0] == 2
    assert info.pretrained and info.pretrained_source == f"file:{path}" and len(info.weights_sha256) == 16
    assert any("head replaced" in n for n in info.notes)


def test_local_weights_with_matching_head_keep_it(tmp_path):
    # a 2-class checkpoint: timm would drop the head unless num_classes is passed in the overlay
    path, sd = _save_timm(tmp_path, "mobilenetv3_small_100", 2, fmt="pth")
    model, _ = create_model("mnv3s", num_classes=2, weights=str(path))
    assert torch.equal(model.state_dict()["classifier.weight"], sd["classifier.weight"])


def test_greyscale_in_chans_one_uses_adapted_weights(tmp_path):
    path, sd = _save_timm(tmp_path, "mobilenetv3_small_100", 1000)
    model, info = create_model("mnv3s", num_classes=2, weights=str(path), in_chans=1)
    w = model.state_dict()["conv_stem.weight"]
    assert w.shape[1] == 1 and torch.allclose(w, sd["conv_stem.weight"].sum(1, keepdim=True))
    assert len(info.mean) == 1


def test_weights_mapping_json(tmp_path):
    import json

    path, sd = _save_timm(tmp_path, "mobilenetv3_small_100", 1000)
    mapping = tmp_path / "weights.json"
    mapping.write_text(json.dumps({"mnv3s": path.name}))  # relative to the JSON file
    model, info = create_model("mnv3s", num_classes=2, pretrained=True, weights=str(mapping))
    assert torch.equal(model.state_dict()["conv_stem.weight"], sd["conv_stem.weight"]) and info.pretrained


def test_missing_weights_file(tmp_path):
    with pytest.raises(UserInputError, match=r"nope\.safetensors not found.*--weights"):
        create_model("mnv3s", weights=str(tmp_path / "nope.safetensors"))


def test_weights_file_for_another_model(tmp_path):
    path, _ = _save_timm(tmp_path, "mobilenetv3_small_100", 1000)
    with pytest.raises(UserInputError, match="does not fit model 'mnv2'"):
        create_model("mnv2", weights=str(path))


def test_pretrained_unavailable_offline_fails_fast(monkeypatch, tmp_path):
    import huggingface_hub.constants as hc

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))  # nothing cached
    with pytest.raises(WeightsUnavailableError, match=r"--weights.*--no-pretrained"):
        create_model("mnv3s", num_classes=2, pretrained=True)
    model, info = create_model("mnv3s", num_classes=2, pretrained="optional")
    assert info.pretrained is False and info.pretrained_source == "none"
    assert any("random initialisation" in n for n in info.notes)
