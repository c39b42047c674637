"""The training recipe: accuracy on real digits, determinism, freezing in two-stage, augmentation, metrics, save/load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ooc_bench.classifiers import TrainConfig, create_model, load_checkpoint, train_classifier
from ooc_bench.classifiers.augment import AugmentConfig, augment_batch
from ooc_bench.classifiers.evaluate import classification_metrics
from ooc_bench.classifiers.training import _set_trainable
from ooc_bench.errors import UserInputError


def _tiny(n=24, size=16, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.integers(0, 120, (n, size, size, 3)).astype(np.uint8)
    x[y == 1, : size // 2] += 100  # learnable: brighter top half for class 1
    return x, y.astype(np.int64)


def _cfg(**kw):
    base = dict(model="cnn", epochs=2, batch_size=8, img_size=16, lr=3e-3, pretrained=False)
    base.update(kw)
    return TrainConfig(**base)


def test_cnn_reaches_95_percent_on_digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.repeat((d.images / 16 * 255).astype(np.uint8)[..., None], 3, -1)  # 8x8 -> upscaled to 32 by the recipe
    y = d.target.astype(np.int64)
    p = np.random.default_rng(0).permutation(len(y))
    tr, va, te = p[:1100], p[1100:1300], p[1300:]
    cfg = TrainConfig(model="cnn", epochs=5, batch_size=32, img_size=32, lr=5e-3, pretrained=False, augment=False)
    r = train_classifier((x[tr], y[tr]), (x[va], y[va]), (x[te], y[te]), [str(i) for i in range(10)], cfg, seed=0)
    assert r.metrics["accuracy"] >= 0.95, r.metrics
    assert r.metrics["n"] == len(te) and len(r.confusion) == 10
    assert r.val_metrics["accuracy"] == max(c["val_accuracy"] for c in r.curves)  # best epoch restored
    assert r.embed(x[te][:7]).shape == (7, 128)
    proba = r.predict_proba(x[te][:7])
    assert proba.shape == (7, 10) and np.allclose(proba.sum(1), 1, atol=1e-5)


def test_same_seed_identical_different_seed_differs():
    x, y = _tiny()
    cfg = _cfg(color_jitter=0.2)
    a = train_classifier((x, y), (x[:8], y[:8]), (x[8:], y[8:]), ["a", "b"], cfg, seed=3)
    b = train_classifier((x, y), (x[:8], y[:8]), (x[8:], y[8:]), ["a", "b"], cfg, seed=3)
    c = train_classifier((x, y), (x[:8], y[:8]), (x[8:], y[8:]), ["a", "b"], cfg, seed=4)
    strip = lambda curves: [{k: v for k, v in row.items() if k != "time_s"} for row in curves]  # noqa: E731
    assert a.metrics == b.metrics and strip(a.curves) == strip(b.curves)
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert strip(a.curves) != strip(c.curves)


def test_two_stage_freezes_then_unfreezes(tmp_path):
    from safetensors.torch import save_file

    model, _ = create_model("mnv3s", num_classes=2, pretrained=False)
    trainable = {id(p) for p in _set_trainable(model, "head")}
    head = {id(p) for p in model.get_classifier().parameters()}
    assert trainable == head and not any(p.requires_grad for n, p in model.named_parameters() if not n.startswith("classifier"))
    assert len(_set_trainable(model, "all")) == len(list(model.parameters()))

    # end to end: after stage 1 only the head moved (BatchNorm statistics too stay frozen); stage 2 moves the backbone
    init, _ = create_model("cnn", num_classes=2, pretrained=False)
    w = tmp_path / "init.safetensors"
    save_file({k: v.contiguous() for k, v in init.state_dict().items()}, str(w))
    x, y = _tiny()
    lin = train_classifier((x, y), (x[:8], y[:8]), None, ["a", "b"], _cfg(mode="linear", weights=str(w)), seed=0)
    for k, v in init.state_dict().items():
        same = torch.equal(lin.model.state_dict()[k], v)
        assert same == (not k.startswith("head.")), k
    two = train_classifier((x, y), (x[:8], y[:8]), None, ["a", "b"],
                           _cfg(mode="two-stage", epochs=4, lr=1e-2, weights=str(w), early_stopping=None), seed=0)
    assert [c["trainable"] for c in two.curves] == ["head", "head", "all", "all"]
    assert two.best_epoch == 4 and two.val_metrics["accuracy"] == two.curves[-1]["val_accuracy"]  # nothing monitored
    assert two.curves[2]["lr"] < 1e-3  # stage 2 at lr / 10 (cosine-annealed within the stage)
    assert not torch.equal(two.model.state_dict()["stem.0.weight"], init.state_dict()["stem.0.weight"])
    assert all(p.requires_grad for p in two.model.parameters())


def test_options_run_and_record_is_json(tmp_path):
    x, y = _tiny(n=30)
    cfg = _cfg(optimizer="sgd", schedule="plateau", class_weighted=True, label_smoothing=0.1, early_stopping="loss",
               patience=1, epochs=3)
    r = train_classifier((x, y), (x[:10], y[:10]), (x[10:], y[10:]), ["bad", "good"], cfg, seed=0)
    rec = json.loads(json.dumps(r.record(), allow_nan=False))
    assert rec["weights"] == {"pretrained": False, "source": "none", "sha256": None, "notes": []}
    assert {"accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "precision_bad", "recall_good"} <= set(rec["metrics"])
    assert rec["config"]["optimizer"] == "sgd" and torch.__version__.startswith(rec["versions"]["torch"])
    r.save(tmp_path / "ck")
    again = load_checkpoint(tmp_path / "ck")
    assert again.classes == ["bad", "good"] and again.metrics["accuracy"] == r.metrics["accuracy"]
    np.testing.assert_allclose(again.predict_proba(x[:5]), r.predict_proba(x[:5]), atol=1e-6)
    r2 = train_classifier((x, y), (x[:10], y[:10]), None, ["bad", "good"], _cfg(optimizer="rmsprop", epochs=1), seed=0)
    assert r2.metrics == {} and r2.val_metrics["n"] == 10
    # option values in any case are honoured, not just accepted; classes default to the label range
    r3 = train_classifier((x, y), None, None, None, _cfg(optimizer="SGD", schedule="Cosine", epochs=2), seed=0)
    assert r3.classes == ["0", "1"] and r3.curves[1]["lr"] < r3.curves[0]["lr"] < 3e-3 and r3.val_metrics == {}


def test_bad_inputs_give_clear_errors():
    x, y = _tiny()
    with pytest.raises(UserInputError, match=r"--working-size 16 is too small for 'mnv3s'.*at least 32"):
        train_classifier((x, y), (x, y), None, ["a", "b"], _cfg(model="mnv3s", img_size=16), seed=0)
    with pytest.raises(UserInputError, match="unknown model"):
        train_classifier((x, y), (x, y), None, ["a", "b"], _cfg(model="resnet9000"), seed=0)
    with pytest.raises(UserInputError, match="--mode"):
        train_classifier((x, y), (x, y), None, ["a", "b"], _cfg(mode="half"), seed=0)
    with pytest.raises(UserInputError, match="uint8"):
        train_classifier((x.astype(np.float32), y), (x, y), None, ["a", "b"], _cfg(), seed=0)
    with pytest.raises(UserInputError, match="labels must lie in 0..1"):
        train_classifier((x, y + 1), (x, y), None, ["a", "b"], _cfg(), seed=0)
    with pytest.raises(UserInputError, match=r"no images of class\(es\) \['b'\]"):
        train_classifier((x, np.zeros_like(y)), (x, y), None, ["a", "b"], _cfg(), seed=0)


def test_augmentation_geometry_is_exact_and_seeded():
    x = torch.rand(16, 3, 12, 12)
    g = torch.Generator().manual_seed(0)
    # with the small affine switched off, the single grid_sample must be an exact flip / 90° rotation
    exact = augment_batch(x, g, AugmentConfig(degrees=0, scale=0, translate=0))
    g = torch.Generator().manual_seed(0)
    cheap = augment_batch(x, g, AugmentConfig(affine=False))
    torch.testing.assert_close(exact, cheap, atol=1e-5, rtol=0)
    variants = [torch.rot90(x[i].flip(d) if d else x[i], k, (-2, -1)) for i in range(16)
                for d in (None, -1) for k in range(4)]
    for i in range(16):
        assert any(torch.allclose(exact[i], v, atol=1e-5) for v in variants[i * 8:(i + 1) * 8])
    assert not torch.allclose(exact, x)
    a = augment_batch(x, torch.Generator().manual_seed(5), AugmentConfig(color_jitter=0.3))
    b = augment_batch(x, torch.Generator().manual_seed(5), AugmentConfig(color_jitter=0.3))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1


def test_metrics_against_hand_computed_values():
    y = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    proba = np.array([[.9, .1], [.8, .2], [.4, .6], [.3, .7], [.2, .8], [.6, .4], [.1, .9], [.35, .65]])
    m, conf = classification_metrics(y, proba, ["bad", "good"])
    assert conf == [[2, 1], [1, 4]]
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["recall_bad"] == pytest.approx(2 / 3) and m["precision_good"] == pytest.approx(4 / 5)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    # AUC: pairs (bad, good) ranked correctly: scores good .7 .8 .4 .9 .65 vs bad .1 .2 .6
    assert m["roc_auc"] == pytest.approx(14 / 15)
    m3, _ = classification_metrics(np.array([0, 1, 2, 2]), np.eye(3)[[0, 1, 2, 1]] * 0.8 + 0.1 / 1.5, ["a", "b", "c"])
    assert 0 < m3["roc_auc"] <= 1 and m3["accuracy"] == 0.75


def test_bn_dropout_head_trains_saves_and_loads(tmp_path):
    model, _ = create_model("mnv3", num_classes=2, pretrained=False, head="bn-dropout")
    head = model.get_classifier()
    assert isinstance(head, torch.nn.Sequential) and isinstance(head[0], torch.nn.BatchNorm1d)
    assert {id(p) for p in _set_trainable(model, "head")} == {id(p) for p in head.parameters()}
    model.eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 2)
    with pytest.raises(UserInputError, match="--head"):
        create_model("cnn", pretrained=False, head="mlp")
    x, y = _tiny()
    r = train_classifier((x, y), (x[:8], y[:8]), None, ["a", "b"], _cfg(head="bn-dropout", mode="linear"), seed=0)
    r.save(tmp_path / "ck")
    np.testing.assert_allclose(load_checkpoint(tmp_path / "ck").predict_proba(x[:4]), r.predict_proba(x[:4]), atol=1e-6)
