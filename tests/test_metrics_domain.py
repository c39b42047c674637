"""The domain network's identity (weights hash in the id, numerics in the cache key), class fidelity, the score CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ooc_bench.errors import UserInputError
from ooc_bench.matrix.quality import QUALITY_DEFAULTS, domain_params, load_domain, train_domain_network
from ooc_bench.metrics import DomainExtractor, FeatureCache, cache_id, create_extractor, fid_from_features, numerics, score


def _digits(n: int = 400, scale: int = 2) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    keep = d.target < 2
    x = (d.images[keep][:n] / 16.0 * 255).round().astype(np.uint8)
    x = np.repeat(np.repeat(x, scale, axis=1), scale, axis=2)[..., None].repeat(3, axis=-1)
    return x, d.target[keep][:n].astype(np.int64)


def _params(seed: int = 0, epochs: int = 2) -> dict:
    q = {**QUALITY_DEFAULTS, "domain_epochs": epochs, "domain_seed": seed, "domain_batch_size": 16}
    return domain_params(q, "digits", 16)


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    """Two domain networks trained on the same real train split with different seeds (one epoch each)."""
    x, y = _digits()
    train = (x[:120], y[:120])
    root = tmp_path_factory.mktemp("domain")
    info_a = train_domain_network(train, ["zero", "one"], _params(0, 3), root / "a")
    info_b = train_domain_network(train, ["zero", "one"], _params(1, 3), root / "b")
    return root, info_a, info_b, (x[120:], y[120:])


def test_domain_network_is_saved_with_its_hash_and_a_new_network_never_meets_old_features(nets, tmp_path):
    root, info_a, info_b, test = nets
    assert (root / "a" / "model.safetensors").is_file() and info_a["n_holdout"] > 0
    a, b = load_domain(root / "a"), load_domain(root / "b")
    assert isinstance(a, DomainExtractor) and a.provenance["weights_sha"] == info_a["weights_sha"]
    assert info_a["weights_sha"] != info_b["weights_sha"] and a.id() != b.id()
    assert info_a["weights_sha"] in a.weights
    cache = FeatureCache(tmp_path / "features")
    fa = cache.get_or_compute(a, test[0], key="test-split")
    fb = cache.get_or_compute(b, test[0], key="test-split")  # same images, same key: still a fresh pass
    assert cache.passes == 2 and cache.hits == 0 and not np.allclose(fa, fb)
    assert cache.path(a, test[0], "test-split").parent != cache.path(b, test[0], "test-split").parent
    # the same weights loaded again (another process would do the same): same id, cached features reused
    from ooc_bench.matrix import quality

    quality._load.cache_clear()
    again = load_domain(root / "a")
    assert again is not a and again.id() == a.id()
    assert np.array_equal(cache.get_or_compute(again, test[0], key="test-split"), fa) and cache.hits == 1
    # the features of one network separate the classes far better than two random halves
    f0, f1 = fa[test[1] == 0], fa[test[1] == 1]
    perm = np.random.default_rng(0).permutation(len(fa))
    assert fid_from_features(f0, f1) > 2 * fid_from_features(fa[perm[::2]], fa[perm[1::2]])


def test_feature_cache_key_holds_device_dtype_and_library_versions(nets):
    root = nets[0]
    ext = load_domain(root / "a")
    num = numerics(ext)
    assert num["device"] == "cpu" and num["dtype"] == "float32" and "torch" in num and "numpy" in num
    before = cache_id(ext)
    ext.provenance["dtype"] = "bfloat16"  # as if the network ran in reduced precision
    try:
        assert cache_id(ext) != before and cache_id(ext).startswith(ext.id())
    finally:
        ext.provenance["dtype"] = "float32"


def test_metrics_layer_trains_nothing_and_needs_an_identity():
    x, y = _digits(40)
    with pytest.raises(UserInputError, match="does not train"):
        create_extractor("domain", train=(x, y), classes=["zero", "one"], epochs=1)

    class Net:
        classes = ["zero", "one"]

        def embed(self, x, batch_size=64):
            return x.reshape(len(x), -1)[:, :4].astype(np.float64)

        def predict_proba(self, x, batch_size=64):
            p = (x.reshape(len(x), -1).mean(1) > 60).astype(float)
            return np.stack([1 - p, p], 1)

    with pytest.raises(UserInputError, match="weights_file"):
        DomainExtractor(network=Net())
    ext = DomainExtractor(network=Net(), weights_sha="abc", info={"model": "toy", "img_size": 16})
    assert ext.extract(x).shape == (40, 4) and ext.predict(x).shape == (40,)
    assert DomainExtractor(network=Net(), weights_sha="abd", info={"model": "toy", "img_size": 16}).id() != ext.id()


def test_class_fidelity_of_real_held_out_images_and_of_mislabelled_ones(nets):
    root, info_a, _, test = nets
    ext = load_domain(root / "a")
    x, y = test
    good = score((x, y), (x, y), ["zero", "one"], ext, metrics=("class_fidelity",))
    by = {r["class"]: r for r in good}
    assert set(by) == {"all", "zero", "one"} and by["all"]["n_fake"] == len(y)
    acc = float((ext.predict(x) == y).mean())
    assert by["all"]["value"] == pytest.approx(acc) and acc > 0.9  # digits 0 vs 1: an easy task
    assert by["all"]["ci_low"] < acc < by["all"]["ci_high"] <= 1.0
    assert by["all"]["feature_space"] == "domain-cnn" and by["all"]["extractor_id"] == ext.id()
    # images generated "for" the wrong class: fidelity collapses
    bad = score((x, y), (x, 1 - y), ["zero", "one"], ext, metrics=("class_fidelity",))
    assert next(r for r in bad if r["class"] == "all")["value"] == pytest.approx(1 - acc)


def test_score_cli_trains_the_domain_network_once_and_reports_identity(demo_root, tmp_path):
    from typer.testing import CliRunner

    from ooc_bench.cli import app
    from ooc_bench.data import load_dataset, make_split, training_set
    from ooc_bench.generators.aug import ClassicAugmentation

    ds = make_split(load_dataset(demo_root), seed=0)
    gen = ClassicAugmentation(resolution=32, strength=0.2).fit(training_set(ds))
    gen.sample(6, tmp_path / "samples", seed=0, size=32)
    out = tmp_path / "scores.json"
    runner = CliRunner()
    args = ["score", "--data", str(demo_root), "--fake", str(tmp_path / "samples"), "--domain-epochs", "1",
            "--working-size", "32", "--k", "3", "--subsets", "10", "--floor", "val"]
    res = runner.invoke(app, args + ["--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    rows = data["rows"]
    assert data["extractor"]["name"] == "domain" and data["domain"]["weights_sha"]
    metrics = {r["metric"] for r in rows}
    assert {"fd", "kid", "precision", "coverage", "nearcopy_share", "source_similarity", "class_fidelity"} <= metrics
    assert "fid" not in metrics
    syn = [r for r in rows if r["set"] == "synthetic" and r["metric"] == "fd"]
    flo = [r for r in rows if r["set"].startswith("floor") and r["metric"] == "fd"]
    assert {r["class"] for r in syn} == {r["class"] for r in flo} == {"all", *ds.classes}
    for s_row in syn:  # the floor is computed at exactly the synthetic rows' n
        f_row = next(r for r in flo if r["class"] == s_row["class"])
        assert (s_row["n_real"], s_row["n_fake"]) == (f_row["n_real"], f_row["n_fake"])
        assert s_row["n_real"] == s_row["n_fake"] and s_row["subsets"] == 10
        assert s_row["ci_low"] <= s_row["value"] <= s_row["ci_high"]
        assert s_row["working_size"] == 32 and data["domain"]["weights_sha"] in s_row["weights"]
    assert all(r["extractor_id"] for r in rows) and {r["feature_space"] for r in rows} == {"domain-cnn", "pixel", "pixel+domain-cnn"}
    # only near-copy rows are in another space (pixel space, and flagged in pixel or domain space)
    assert {r["metric"] for r in rows if r["feature_space"] != "domain-cnn"} <= {"nearcopy_share", "nearcopy_expected", "nearcopy_threshold", "nn_dist_median", "nn_dist_ratio"}
    # a second call reuses the saved network (same weights, same id) instead of training again
    res2 = runner.invoke(app, args + ["--out", str(tmp_path / "again.json")])
    assert res2.exit_code == 0, res2.output
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["domain"]["weights_sha"] == data["domain"]["weights_sha"]
    assert [r["value"] for r in again["rows"]] == [r["value"] for r in rows]
    # flat folder (no labels): class 'all' only, no class fidelity
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in sorted((tmp_path / "samples").rglob("*.png"))[:8]:
        (flat / p.name).write_bytes(p.read_bytes())
    csv_out = tmp_path / "scores.csv"
    res = runner.invoke(app, ["score", "--data", str(demo_root), "--fake", str(flat), "--domain-epochs", "1",
                              "--working-size", "32", "--metrics", "fid,kid", "--subsets", "5", "--out", str(csv_out)])
    assert res.exit_code == 0, res.output
    lines = csv_out.read_text().splitlines()
    assert len(lines) == 1 + 2 and all(ln.startswith("all,domain-cnn,") for ln in lines[1:])
