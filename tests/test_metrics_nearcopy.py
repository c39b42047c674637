"""Near-copy detection: held-out calibration (expected share), pixel space with flips, several spaces at once."""

from __future__ import annotations

import numpy as np
import pytest

from ooc_bench.metrics.nearcopy import calibrated_rank, near_copy, near_copy_spaces, pixel_vectors


def _digits() -> np.ndarray:
    """sklearn's 8 x 8 digits as 32 x 32 RGB uint8 images, shuffled."""
    from sklearn.datasets import load_digits

    x = (load_digits().images / 16.0 * 255).round().astype(np.uint8)
    x = np.repeat(np.repeat(x, 4, axis=1), 4, axis=2)[..., None].repeat(3, axis=-1)
    return x[np.random.default_rng(0).permutation(len(x))]


def _blocks(x: np.ndarray) -> np.ndarray:
    """A cheap feature space: 8 x 8 block means (not flip-invariant)."""
    return x.astype(np.float64).reshape(len(x), 8, 4, 8, 4, 3).mean(axis=(2, 4)).reshape(len(x), -1)


def _noisy(x: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, x.shape)
    return np.clip(x.astype(float) + noise, 0, 255).round().astype(np.uint8)


def test_expected_share_is_what_independent_images_get_even_at_small_n():
    rng = np.random.default_rng(0)
    n_train = n_val = 16
    new, old = [], []
    for _ in range(300):
        train, val, fake = (rng.normal(size=(n, 6)) for n in (n_train, n_val, 40))
        res = near_copy(fake, train, val_feats=val)
        new.append(res["nearcopy_share"])
        old.append(near_copy(fake, train)["nearcopy_share"])
    assert res["calibration"] == "val-to-train" and res["n_ref"] == n_val
    assert res["nearcopy_expected"] == pytest.approx(1 / 17)  # k = max(1, floor(0.05 * 17)) = 1 of n + 1 = 17
    assert np.mean(new) == pytest.approx(1 / 17, abs=0.015)
    # the old reference (leave-one-out inside train) flags independent images far more often than 5 %
    assert np.mean(old) > 0.09
    assert [calibrated_rank(n) for n in (5, 16, 19, 99, 100, 1000)] == [1, 1, 1, 5, 5, 50]


def test_pixel_space_catches_noisy_and_flipped_copies_and_spares_independent_images():
    x = _digits()
    train, val, indep = x[:300], x[300:450], x[450:600]
    rng = np.random.default_rng(1)
    src = train[rng.choice(len(train), 60, replace=False)]
    noisy = _noisy(src, 3.0, 2)
    flips = np.concatenate([src[:20, :, ::-1], src[20:40, ::-1], np.rot90(src[40:], 1, axes=(1, 2))])

    def run(fake, **kw):
        return near_copy_spaces(fake, train, val, _blocks(fake), _blocks(train), _blocks(val), feature_space="blocks", **kw)

    res = run(noisy)
    assert res["pixel"]["nearcopy_share"] == 1.0 and res["blocks"]["nearcopy_share"] >= 0.95
    assert res["pixel"]["calibration"] == "val-to-train" and res["pixel"]["n_ref"] == 150
    flipped = run(flips)
    assert flipped["pixel"]["nearcopy_share"] == 1.0  # flip/rotation-invariant pixel distance
    assert flipped["blocks"]["nearcopy_share"] <= 0.2  # the feature space alone misses most of them
    assert flipped["any"]["nearcopy_share"] == 1.0
    assert run(flips, invariant=False)["pixel"]["nearcopy_share"] <= 0.2
    clean = run(indep)
    for space in ("pixel", "blocks", "any"):
        exp = clean[space]["nearcopy_expected"]
        assert clean[space]["nearcopy_share"] <= exp + 0.07, (space, clean[space]["nearcopy_share"], exp)
    e_pix, e_blk, e_any = (clean[s]["nearcopy_expected"] for s in ("pixel", "blocks", "any"))
    assert e_pix == pytest.approx(7 / 151) and max(e_pix, e_blk) <= e_any <= e_pix + e_blk + 1e-9
    np.testing.assert_array_equal(clean["any"]["flags"], clean["pixel"]["flags"] | clean["blocks"]["flags"])


def test_near_duplicate_pairs_inside_train_do_not_collapse_the_threshold():
    x = _digits()
    base, val = x[:200], x[200:350]
    train = np.concatenate([base, _noisy(base[:100], 2.0, 3)])  # half the images have a near twin in train
    fake = _noisy(base[100:160], 12.0, 4)  # copies with visible noise of images without a twin
    loo = near_copy(_blocks(fake), _blocks(train))
    cal = near_copy(_blocks(fake), _blocks(train), val_feats=_blocks(val))
    assert loo["nearcopy_threshold"] < 0.5 * cal["nearcopy_threshold"]  # the twins set the old threshold
    assert loo["nearcopy_share"] <= 0.2 and cal["nearcopy_share"] >= 0.9
    assert near_copy_spaces(fake, train, val)["pixel"]["nearcopy_share"] >= 0.9


def test_split_leaks_in_val_are_left_out_of_the_reference_and_counted():
    x = _digits()
    train, val = x[:200], np.concatenate([x[200:300], x[:5]])  # five val images are training images
    res = near_copy_spaces(x[300:340], train, val, _blocks(x[300:340]), _blocks(train), _blocks(val), "blocks")
    for space in ("pixel", "blocks"):
        assert res[space]["n_ref"] == 100 and res[space]["n_ref_duplicates"] == 5
        assert res[space]["nearcopy_threshold"] > 0
    assert res["any"]["n_ref"] == 100


def test_without_val_it_falls_back_to_train_leave_one_out_and_says_so():
    x = _digits()
    res = near_copy_spaces(x[:40], x[:200], None)
    assert res["pixel"]["calibration"] == "train-loo" and res["pixel"]["nearcopy_share"] == 1.0
    assert set(res) == {"pixel"}  # no features: pixel space only


def test_pixel_vectors_area_average_and_bad_input():
    img = np.zeros((2, 64, 96, 1), np.uint8)
    img[:, :, 16:48] = 255  # the centre-cropped square is columns 16..79: its left half is white
    v = pixel_vectors(img, 32)
    assert v.shape == (2, 32, 32, 3) and v.dtype == np.float32
    assert v[0, :, :16].mean() == pytest.approx(1.0) and v[0, :, 16:].mean() == pytest.approx(0.0)
    with pytest.raises(ValueError, match="uint8"):
        pixel_vectors(img.astype(np.float32))
    with pytest.raises(ValueError, match="differ in size"):
        near_copy_spaces(np.zeros((2, 16, 16, 3), np.uint8), np.zeros((4, 32, 32, 3), np.uint8), None)


def test_score_rows_per_space_with_expected_share_and_honest_identity():
    from ooc_bench.metrics import FeatureExtractor, score

    class Blocks(FeatureExtractor):
        name = "blocks"

        def __init__(self) -> None:
            super().__init__()
            self.provenance = {"name": self.name, "feature_space": "blocks", "weights": "none", "weights_sha": None,
                               "resize_mode": "none"}

        def _extract_batch(self, images: np.ndarray) -> np.ndarray:
            return _blocks(images)

    x = _digits()
    y = np.zeros(len(x), np.int64)
    train, val, test = (x[:200], y[:200]), (x[200:300], y[200:300]), (x[300:400], y[300:400])
    fake = (np.ascontiguousarray(train[0][:30, :, ::-1]), train[1][:30])  # flipped training images
    rows = score(test, fake, ["digit"], Blocks(), metrics=("nearcopy",), train_real=train, heldout_real=val,
                 per_class=False, working_size=32)
    got = {(r["nearcopy_space"], r["metric"]): r for r in rows}
    assert [r["nearcopy_space"] for r in rows if r["metric"] == "nearcopy_share"] == ["pixel", "blocks", "any"]
    assert got[("pixel", "nearcopy_share")]["value"] == 1.0 and got[("any", "nearcopy_share")]["value"] == 1.0
    assert got[("blocks", "nearcopy_share")]["value"] <= 0.2
    exp = got[("pixel", "nearcopy_expected")]
    assert exp["value"] == pytest.approx(5 / 101) and 0 < exp["ci_low"] < exp["value"] < exp["ci_high"] < 0.15
    pixel = got[("pixel", "nearcopy_share")]
    assert pixel["feature_space"] == "pixel" and pixel["weights"] == "none" and "flips" in pixel["resize_mode"]
    assert pixel["calibration"] == "val-to-train" and pixel["reference"] == "train" and pixel["n_real"] == 200
    assert got[("blocks", "nearcopy_share")]["feature_space"] == "blocks"
    assert got[("any", "nearcopy_share")]["feature_space"] == "pixel+blocks"


def test_expected_share_interval_covers_the_flag_rate_of_one_threshold():
    rng = np.random.default_rng(5)
    inside, width = [], []
    for _ in range(200):
        train, val, fake = rng.normal(size=(30, 4)), rng.normal(size=(40, 4)), rng.normal(size=(2000, 4))
        res = near_copy(fake, train, val_feats=val)
        inside.append(res["nearcopy_expected_low"] <= res["nearcopy_share"] <= res["nearcopy_expected_high"])
        width.append(res["nearcopy_expected_high"] - res["nearcopy_expected_low"])
    assert res["nearcopy_expected"] == pytest.approx(2 / 41)
    assert 0.88 <= np.mean(inside) <= 1.0 and np.mean(width) > 0.05  # a 95 % band, wide at n_val = 40


def test_report_table_shows_the_any_row_and_the_distances_space():
    from ooc_bench.matrix.report import quality_table

    base = {"generator": "g", "class": "all"}
    rows = [{**base, "metric": "fd", "value": "1.5", "feature_space": "domain-cnn", "n_fake": "10", "n_real": "10"}]
    for space, fs, share in (("pixel", "pixel", "0.9"), ("domain-cnn", "domain-cnn", "0.1"), ("any", "pixel+domain-cnn", "0.95")):
        rows += [{**base, "metric": "nearcopy_share", "value": share, "feature_space": fs, "nearcopy_space": space},
                 {**base, "metric": "nearcopy_expected", "value": "0.05", "feature_space": fs, "nearcopy_space": space}]
    header, body = quality_table(rows)
    row = dict(zip(header, body[0]))
    assert row["near-copy share"] == "0.95" and row["near-copy expected"] == "0.05" and row["features"] == "domain-cnn"
