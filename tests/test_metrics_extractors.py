"""DINOv2 (local random weights, offline failure) and domain-classifier feature extractors; the score CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ooc_bench.errors import WeightsUnavailableError
from ooc_bench.metrics import FeatureCache, create_extractor, fid_from_features, score


def _digits(n: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images[:n] / 16.0 * 255).round().astype(np.uint8)
    x = np.repeat(np.repeat(x, 4, axis=1), 4, axis=2)[..., None].repeat(3, axis=-1)
    return x, d.target[:n].astype(np.int64)


def test_dinov2_offline_without_weights_fails_fast(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(WeightsUnavailableError, match="--dinov2-weights"):
        create_extractor("dinov2")


def test_dinov2_from_local_weights_file(tmp_path):
    import timm
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = timm.create_model("vit_small_patch14_dinov2", pretrained=False, num_classes=0, img_size=56)
    with torch.no_grad():  # DINOv2 inits LayerScale at 1e-5 (near-constant CLS output): make random weights informative
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.fill_(1.0)
    path = tmp_path / "dinov2-random.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    ext = create_extractor("dino", weights=str(path), resolution=56)
    x, _ = _digits(12)
    f = ext.extract(x, batch_size=6)
    assert f.shape == (12, 384) and f.dtype == np.float64 and np.isfinite(f).all()
    assert f.std(axis=0).mean() > 1e-4
    assert ext.provenance["weights_sha"] and ext.provenance["resolution"] == 56
    assert np.allclose(ext.extract(x[:3]), f[:3], atol=1e-5)  # batch composition does not change features
    other = create_extractor("dinov2", weights=str(path), resolution=70)
    assert other.id() != ext.id()  # resolution is part of the cache key


def test_domain_extractor_trains_lazily_and_caches(tmp_path):
    x, y = _digits(600)
    keep = y < 2
    x, y = x[keep], y[keep]
    train, test = (x[:60], y[:60]), (x[60:], y[60:])
    ext = create_extractor("domain", train=train, classes=["zero", "one"], seed=0, epochs=2, img_size=32, batch_size=16)
    assert ext.result is None  # nothing trained yet
    cache = FeatureCache(tmp_path / "features")
    rows = score(test, (train[0][:20], train[1][:20]), ["zero", "one"], ext, metrics=("fid", "nearcopy"),
                 train_real=train, cache=cache, real_key="test-split")
    assert ext.result is not None and cache.passes == 3
    got = {(r["class"], r["metric"]): r["value"] for r in rows}
    assert got[("all", "nearcopy_share")] == 1.0  # the "synthetic" images are training images
    assert np.isfinite(got[("zero", "fid")]) and got[("all", "fid")] > 0
    assert all("trained on real train split" in r["weights"] for r in rows)
    # same config and data -> same id -> a fresh extractor reuses the cache without training
    ext2 = create_extractor("domain", train=train, classes=["zero", "one"], seed=0, epochs=2, img_size=32, batch_size=16)
    assert ext2.id() == ext.id()
    feats = cache.get_or_compute(ext2, test[0], key="test-split")
    assert ext2.result is None and cache.passes == 3 and feats.shape[0] == len(test[0])
    # features separate the two classes better than chance: zero vs one is far from two random halves
    f0, f1 = feats[test[1] == 0], feats[test[1] == 1]
    perm = np.random.default_rng(0).permutation(len(feats))
    chance = fid_from_features(feats[perm[: len(perm) // 2]], feats[perm[len(perm) // 2:]])
    assert fid_from_features(f0, f1) > 2 * chance


def test_score_cli_on_demo_dataset_with_domain_features(demo_root, tmp_path):
    from typer.testing import CliRunner

    from ooc_bench.cli import app
    from ooc_bench.data import load_dataset, make_split, training_set
    from ooc_bench.generators.aug import ClassicAugmentation

    ds = make_split(load_dataset(demo_root), seed=0)
    gen = ClassicAugmentation(resolution=32, strength=0.2).fit(training_set(ds))
    gen.sample(6, tmp_path / "samples", seed=0, size=32)
    out = tmp_path / "scores.json"
    runner = CliRunner()
    res = runner.invoke(app, ["score", "--real", str(demo_root), "--fake", str(tmp_path / "samples"),
                              "--features", "domain", "--domain-epochs", "1", "--size", "32",
                              "--metrics", "fid,kid,prdc,nearcopy", "--k", "3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    rows = data["rows"]
    assert data["extractor"]["name"] == "domain"
    classes = {r["class"] for r in rows}
    assert "all" in classes and len(classes) == 1 + len(ds.classes)
    metrics = {r["metric"] for r in rows}
    assert {"fid", "kid_mean", "kid_std", "precision", "coverage", "nearcopy_share", "source_similarity"} <= metrics
    fid_all = next(r for r in rows if r["class"] == "all" and r["metric"] == "fid")
    assert fid_all["n_real"] == len(ds.split("test")) and fid_all["n_fake"] == 6 * len(ds.classes)
    assert "fid" in res.output
    # CSV output and flat-folder fakes (compared with the whole reference only)
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in sorted((tmp_path / "samples").rglob("*.png"))[:8]:
        (flat / p.name).write_bytes(p.read_bytes())
    csv_out = tmp_path / "scores.csv"
    res = runner.invoke(app, ["score", "--real", str(demo_root), "--fake", str(flat), "--features", "domain",
                              "--domain-epochs", "1", "--size", "32", "--metrics", "fid,kid", "--out", str(csv_out)])
    assert res.exit_code == 0, res.output
    lines = csv_out.read_text().splitlines()
    assert len(lines) == 1 + 3 and all(ln.startswith("all,domain,") for ln in lines[1:])


def test_score_cli_errors_are_one_line(demo_root, tmp_path, capsys):
    from ooc_bench.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["score", "--real", str(demo_root), "--fake", str(tmp_path), "--metrics", "fid,bogus"])
    assert exc.value.code == 2
    assert "--metrics" in capsys.readouterr().err
