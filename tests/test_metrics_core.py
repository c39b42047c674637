"""Metric maths: Fréchet distance vs scipy, KID on tiny sets, PRDC, per-class scoring, near-copies, feature cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg

from ooc_bench.metrics import (FeatureCache, FeatureExtractor, feature_stats, fid_from_features, frechet_distance, kid,
                               near_copy, prdc, score, write_rows)


class PixelExtractor(FeatureExtractor):
    """Cheap test extractor: 8x8 block means of the image, flattened (192-d)."""

    name = "pixels"

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.provenance = {"name": self.name, "weights": "none", "weights_sha": None, "resolution": 8, "scale": scale}
        self.scale = scale
        self.batches = 0

    def _extract_batch(self, images: np.ndarray) -> np.ndarray:
        self.batches += 1
        n, h, w, _ = images.shape
        x = images.astype(np.float64).reshape(n, 8, h // 8, 8, w // 8, 3).mean(axis=(2, 4))
        return x.reshape(n, -1) * self.scale


def _reference_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_frechet_matches_scipy_sqrtm_reference():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 24)) @ rng.normal(size=(24, 24))
    b = rng.normal(loc=0.3, size=(300, 24)) @ rng.normal(size=(24, 24))
    ours = fid_from_features(a, b)
    assert ours == pytest.approx(_reference_fid(a, b), rel=1e-6)
    # (N >= D here, so fid_from_features *is* frechet_distance of the stats: check symmetry instead of that identity)
    assert fid_from_features(b, a) == pytest.approx(ours, rel=1e-9)
    assert ours > 1.0


def test_fid_of_a_set_with_itself_is_zero_even_when_singular():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(30, 64))  # N < D: singular covariance
    assert abs(fid_from_features(a, a)) < 1e-6
    assert fid_from_features(a, a + 0.5) == pytest.approx(64 * 0.25, rel=1e-6)


def test_kid_with_20_images_per_set_separates_distributions():
    from ooc_bench.metrics.kid import mmd2_unbiased

    rng = np.random.default_rng(2)
    real = rng.normal(size=(20, 32))
    same = rng.normal(size=(20, 32))
    shifted = rng.normal(loc=1.0, size=(20, 32))
    m_same, s_same = kid(real, same, seed=0)
    m_shift, _ = kid(real, shifted, seed=0)
    assert m_shift > 0.1 and abs(m_same) < m_shift / 5
    # subset size min(20, 20) = 20: every subset is the whole of both sets, so all 100 estimates are the same
    assert s_same == pytest.approx(0.0, abs=1e-9)
    assert m_same == pytest.approx(mmd2_unbiased(same, real), rel=1e-9)
    assert kid(real, same, seed=0) == kid(real, same, seed=0)  # seeded
    sub = kid(real, rng.normal(size=(50, 32)), seed=0, subsets=10)  # subset size min(20, 50) automatically
    assert np.isfinite(sub[0])
    with pytest.raises(ValueError):
        kid(real, shifted, subset_size=21)


def test_prdc_identical_and_disjoint_sets():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(60, 8))
    same = prdc(real, real.copy(), k=5)
    assert same["precision"] == 1.0 and same["recall"] == 1.0 and same["coverage"] == 1.0
    assert same["density"] >= 1.0
    far = prdc(real, real + 100.0, k=5)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    # half the fakes collapsed onto one real point: precision stays high, recall and coverage drop
    collapsed = np.repeat(real[:1], 60, axis=0) + rng.normal(scale=1e-3, size=(60, 8))
    col = prdc(real, collapsed, k=5)
    assert col["precision"] == 1.0 and col["coverage"] < 0.2 and col["recall"] < 0.2


def _digits(n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0 * 255).round().astype(np.uint8)
    x = np.repeat(np.repeat(x, 4, axis=1), 4, axis=2)[..., None].repeat(3, axis=-1)  # 32 x 32 RGB
    return (x[:n], d.target[:n].astype(np.int64)) if n else (x, d.target.astype(np.int64))


def test_near_copy_flags_exact_and_perturbed_copies_not_independent_images():
    x, y = _digits()
    ext = PixelExtractor()
    train, heldout = x[:1000], x[1000:1300]
    rng = np.random.default_rng(4)
    pick = rng.choice(len(train), 100, replace=False)
    exact = train[pick]
    noisy = np.clip(train[pick].astype(int) + rng.integers(-6, 7, size=exact.shape), 0, 255).astype(np.uint8)
    brighter = np.clip(train[pick].astype(int) + 5, 0, 255).astype(np.uint8)
    ft = ext.extract(train)
    for copies in (exact, noisy, brighter):
        res = near_copy(ext.extract(copies), ft)
        assert res["nearcopy_share"] >= 0.95, res["nearcopy_share"]
        assert res["nn_dist_ratio"] < 0.5
    indep = near_copy(ext.extract(heldout), ft)
    assert indep["nearcopy_share"] <= 0.15  # ~5% expected by construction of the threshold
    assert indep["nn_dist_ratio"] > 0.7
    # img2img-style source similarity: copies resemble their own sources, shuffled pairs do not
    hashes = [f"h{i}" for i in range(len(train))]
    own = near_copy(ext.extract(noisy), ft, fake_sources=[hashes[i] for i in pick], train_hashes=hashes)
    wrong = near_copy(ext.extract(noisy), ft, fake_sources=[hashes[i] for i in np.roll(pick, 1)], train_hashes=hashes)
    assert own["source_similarity"] > 0.95 and own["source_is_nn_share"] >= 0.95
    assert wrong["source_similarity"] < 0.7 and wrong["source_is_nn_share"] <= 0.05


def test_score_per_class_compares_like_classes_only():
    x, y = _digits(600)
    keep = y < 2
    x, y = x[keep], y[keep]
    real, fake = (x[::2], y[::2]), (x[1::2], y[1::2])
    ext = PixelExtractor()
    rows = score(real, fake, ["zero", "one"], ext, metrics=("fid", "kid", "prdc"), k=3)
    by = {(r["class"], r["metric"]): r for r in rows}
    assert {r["class"] for r in rows} == {"all", "zero", "one"}
    assert all(r["extractor"] == "pixels" and r["extractor_id"] == ext.id() and "weights" in r for r in rows)
    assert not any(r["metric"] == "fid" for r in rows)  # only the standard Inception space is called FID
    fr, ff = ext.extract(real[0]), ext.extract(fake[0])
    for ci, name in enumerate(["zero", "one"]):
        expect = fid_from_features(fr[real[1] == ci], ff[fake[1] == ci])
        assert by[(name, "fd")]["value"] == pytest.approx(expect, rel=1e-9)
        assert by[(name, "fd")]["n_real"] == int((real[1] == ci).sum())
        assert by[(name, "fd")]["n_fake"] == int((fake[1] == ci).sum())
    # swapping the fake labels makes every per-class comparison cross-class, hence much worse; 'all' is unchanged
    swapped = score(real, (fake[0], 1 - fake[1]), ["zero", "one"], ext, metrics=("fid",))
    sw = {r["class"]: r["value"] for r in swapped}
    assert sw["zero"] > 2 * by[("zero", "fd")]["value"] and sw["one"] > 2 * by[("one", "fd")]["value"]
    assert sw["all"] == pytest.approx(by[("all", "fd")]["value"])
    # unlabelled fakes (flat folder): only 'all'
    flat = score(real, (fake[0], None), ["zero", "one"], ext, metrics=("fid",))
    assert [r["class"] for r in flat] == ["all"]


def test_score_nearcopy_rows_and_outputs(tmp_path):
    x, y = _digits(400)
    train, test = (x[:300], y[:300]), (x[300:], y[300:])
    fake = (train[0][:50], train[1][:50])  # a "generator" that memorised its training set
    rows = score(test, fake, [str(i) for i in range(10)], PixelExtractor(), metrics=("nearcopy",), train_real=train,
                 fake_sources=None, train_hashes=None)
    allrow = {r["metric"]: r for r in rows if r["class"] == "all"}
    assert allrow["nearcopy_share"]["value"] == 1.0 and allrow["nearcopy_share"]["reference"] == "train"
    assert allrow["nearcopy_share"]["n_real"] == 300 and allrow["nearcopy_share"]["n_fake"] == 50
    # the reference is the training split itself (``score --split train``): its features are extracted once,
    # also when the images are a memmap (as the data layer's ImageCache returns them)
    np.save(tmp_path / "train.npy", train[0])
    mapped = (np.load(tmp_path / "train.npy", mmap_mode="r"), train[1])
    ext = PixelExtractor()
    again = score(mapped, fake, [str(i) for i in range(10)], ext, metrics=("fid", "nearcopy"), train_real=mapped)
    assert ext.passes == 2  # reference (= train) and fake
    assert {r["reference"] for r in again if r["metric"] == "nearcopy_share"} == {"train"}
    write_rows(tmp_path / "s.json", rows, {"extractor": {"name": "pixels"}})
    data = json.loads((tmp_path / "s.json").read_text())
    assert len(data["rows"]) == len(rows) and data["extractor"]["name"] == "pixels"
    write_rows(tmp_path / "s.csv", rows)
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0].startswith("class,feature_space,extractor_id,weights,working_size,resize_mode,metric,value,"
                               "ci_low,ci_high,n_real,n_fake,reference")
    assert len(lines) == len(rows) + 1


def test_feature_cache_second_call_does_no_pass_and_changed_images_invalidate(tmp_path):
    x, _ = _digits(64)
    ext = PixelExtractor()
    cache = FeatureCache(tmp_path / "features")
    a = cache.get_or_compute(ext, x)
    b = cache.get_or_compute(ext, x)
    assert cache.passes == 1 and ext.passes == 1 and np.array_equal(a, b)
    assert a.dtype == np.float64 and a.shape == (64, 192)
    changed = x.copy()
    changed[0, 0, 0, 0] ^= 1
    cache.get_or_compute(ext, changed)
    assert cache.passes == 2
    # a different extractor configuration (id) never reuses the features
    cache.get_or_compute(PixelExtractor(scale=2.0), x)
    assert cache.passes == 3
    # explicit keys (split-manifest keys) are reused across cache objects and runs
    cache.get_or_compute(ext, x, key="manifest-abc")
    again = FeatureCache(tmp_path / "features")
    again.get_or_compute(ext, x, key="manifest-abc")
    assert again.passes == 0
    # score() with a cache: scoring a second synthetic set re-extracts only the new set
    real, f1, f2 = (x[:32], None), (x[32:48], None), (x[48:], None)
    c2 = FeatureCache(tmp_path / "f2")
    score(real, f1, ["a"], ext, metrics=("fid",), cache=c2, real_key="real")
    score(real, f2, ["a"], ext, metrics=("fid",), cache=c2, real_key="real")
    assert c2.passes == 3
    score(real, f2, ["a"], ext, metrics=("fid",), cache=c2, real_key="real")
    assert c2.passes == 3


def test_low_rank_fid_path_equals_full_covariance_path():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(40, 300)) * rng.uniform(0.1, 3.0, size=300)
    b = rng.normal(loc=0.2, size=(55, 300))
    assert fid_from_features(a, b) == pytest.approx(frechet_distance(*feature_stats(a), *feature_stats(b)), rel=1e-7)


def test_kid_matches_direct_per_subset_computation():
    from ooc_bench.metrics.kid import mmd2_unbiased

    rng = np.random.default_rng(6)
    real, fake = rng.normal(size=(30, 16)), rng.normal(loc=0.3, size=(25, 16))
    r = np.random.RandomState(3)
    direct = []
    for _ in range(7):
        fi, ri = r.choice(25, 10, replace=False), r.choice(30, 10, replace=False)
        direct.append(mmd2_unbiased(fake[fi], real[ri]))
    mean, std = kid(real, fake, subset_size=10, subsets=7, seed=3)
    assert mean == pytest.approx(np.mean(direct), rel=1e-10) and std == pytest.approx(np.std(direct), rel=1e-8)
