"""Matched-n subsets with intervals, FD∞, and the names rows give the Fréchet distance (fd vs fid) and the weights."""

from __future__ import annotations

import numpy as np
import pytest

from ooc_bench.metrics import FeatureExtractor, fd_infinity, fid_from_features, matched_size, score
from ooc_bench.metrics.subsets import Stratum, subsampled


class Identity(FeatureExtractor):
    """Features = the first 8 pixel values (as float); provenance set by the test."""

    name = "toy"

    def __init__(self, **prov) -> None:
        super().__init__()
        self.provenance = {"name": self.name, "weights": "none", "weights_sha": None, **prov}

    def _extract_batch(self, images: np.ndarray) -> np.ndarray:
        return images.reshape(len(images), -1)[:, :8].astype(np.float64)


def _sets(n_real=60, n_fake=40, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)

    def img(n, mu):
        x = np.clip(rng.normal(128 + mu, 30, size=(n, 2, 2, 3)), 0, 255).astype(np.uint8)
        return x

    yr, yf = np.repeat([0, 1], n_real // 2), np.repeat([0, 1], n_fake // 2)
    return (img(n_real, 0), yr), (img(n_fake, shift), yf)


def test_every_distance_row_is_at_the_matched_n_with_an_interval():
    real, fake = _sets()
    rows = score(real, fake, ["a", "b"], Identity(), metrics=("fd", "kid", "prdc"), subsets=20, k=3)
    by = {(r["class"], r["metric"]): r for r in rows}
    # per class: floor(0.5 * min(30, 20)) = 10 per side; 'all' draws 10 from each class
    assert by[("a", "fd")]["n_real"] == by[("a", "fd")]["n_fake"] == 10
    assert by[("all", "kid")]["n_real"] == by[("all", "kid")]["n_fake"] == 20
    for r in rows:
        assert r["subsets"] == 20 and r["ci_low"] <= r["value"] <= r["ci_high"]
    assert by[("all", "fd")]["ci_low"] < by[("all", "fd")]["ci_high"]
    assert by[("all", "fd")]["pool_real"] == 60 and by[("all", "fd")]["pool_fake"] == 40
    # an explicit per-class size (the matrix passes the run's matched sizes) is used as given
    fixed = score(real, fake, ["a", "b"], Identity(), metrics=("fd",), subsets=5, subset_size={"a": 4, "b": 6})
    assert {r["class"]: r["n_fake"] for r in fixed} == {"all": 10, "a": 4, "b": 6}
    # a shifted synthetic set is further away, and its interval sits above the unshifted one
    _, far = _sets(shift=40.0)
    far_rows = score(real, far, ["a", "b"], Identity(), metrics=("fd",), subsets=20)
    far_all = next(r for r in far_rows if r["class"] == "all")
    assert far_all["ci_low"] > by[("all", "fd")]["ci_high"]


def test_subsets_are_drawn_without_replacement():
    a = np.arange(20, dtype=float)[:, None].repeat(3, 1) + np.random.default_rng(0).normal(size=(20, 3))
    whole = subsampled(a, a, [Stratum(np.arange(20), np.arange(20), 20)], ["fd"], subsets=5)
    assert np.allclose(whole["fd"], 0.0, atol=1e-9)  # m = pool on both sides: every subset is the whole set
    half = subsampled(a, a, [Stratum(np.arange(20), np.arange(20), 10)], ["fd"], subsets=5)
    assert half["fd"].std() > 0
    assert matched_size(30, 20) == 10 and matched_size(3) == 2 and matched_size(5000, fraction=1.0) == 1000


def test_fd_infinity_removes_most_of_the_small_n_bias():
    rng = np.random.default_rng(3)
    d = 16
    a, b = rng.normal(size=(400, d)), rng.normal(size=(400, d)) + 0.25  # true FD = 16 * 0.0625 = 1.0
    st = [Stratum(np.arange(400), np.arange(400), 400)]
    res = fd_infinity(a, b, st, seed=0)
    small = np.mean([fid_from_features(a[rng.choice(400, 100, replace=False)], b[rng.choice(400, 100, replace=False)])
                     for _ in range(5)])
    assert abs(res["fd_inf"] - 1.0) < abs(small - 1.0) and res["slope"] > 0 and res["n"] == 400


def test_only_standard_inception_weights_are_called_fid_and_random_weights_are_flagged():
    real, fake = _sets()
    std = Identity(name="inception", weights_sha="6726825d1234abcd", weights="hub")
    other = Identity(name="inception", weights_sha="0123456789abcdef", weights="local.pth")
    rand = Identity(name="inception", weights_sha="6726825d1234abcd", weights="rand.pth", random_weights=True)
    assert {r["metric"] for r in score(real, fake, ["a", "b"], std, metrics=("fd",))} == {"fid"}
    rows = score(real, fake, ["a", "b"], other, metrics=("fd",))
    assert {r["metric"] for r in rows} == {"fd"} and all(r["weights"].startswith("NON-STANDARD") for r in rows)
    rows = score(real, fake, ["a", "b"], rand, metrics=("fid",))
    assert {r["metric"] for r in rows} == {"fd"} and all(r["weights"].startswith("RANDOM WEIGHTS") for r in rows)
    toy = score(real, fake, ["a", "b"], Identity(), metrics=("fid",), working_size=32)
    assert {r["metric"] for r in toy} == {"fd"} and {r["working_size"] for r in toy} == {32}
    assert {r["feature_space"] for r in toy} == {"toy"}
    with pytest.raises(Exception, match="subsets"):
        score(real, fake, ["a", "b"], Identity(), metrics=("fd",), subsets=0)
