"""Inception features: torch-fidelity's FID on non-299 images, clean-fid's resize, the legacy mode; offline failure."""

from __future__ import annotations

import time

import numpy as np
import pytest

from ooc_bench.errors import UserInputError, WeightsUnavailableError
from ooc_bench.metrics import create_extractor, fid_from_features, kid, random_inception_weights
from ooc_bench.metrics.extractors import (RESIZE_MODES, inception_pool_features, load_inception, resize_clean,
                                          resize_pil_bicubic)

N_PER_SET = 8


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A randomly initialised, non-degenerate InceptionV3 state_dict file torch-fidelity can load."""
    return random_inception_weights(tmp_path_factory.mktemp("inc") / "inception-random.pth", seed=0,
                                    calib_batches=1, calib_batch_size=4)


def _crops(img: np.ndarray, n: int, rng: np.random.Generator, size: int = 48) -> np.ndarray:
    ys = rng.integers(0, img.shape[0] - size, n)
    xs = rng.integers(0, img.shape[1] - size, n)
    return np.stack([img[y:y + size, x:x + size] for y, x in zip(ys, xs)])


def _tissue_sets(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Two sets of 48 px crops of a real microscopy image (skimage's IHC sample); the second one dimmed."""
    from skimage import data

    rng = np.random.default_rng(0)
    tissue = data.immunohistochemistry()
    real = _crops(tissue, n, rng)
    fake = np.clip(_crops(tissue, n, rng).astype(int) * 0.8 + 30, 0, 255).astype(np.uint8)
    return real, fake


def _write_pngs(folder, images) -> None:
    from PIL import Image

    folder.mkdir()
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / f"{i:03d}.png")


def test_default_mode_reproduces_torch_fidelity_fid_on_48px_images(weights, tmp_path):
    import torch_fidelity

    real, fake = _tissue_sets(N_PER_SET)
    ext = create_extractor("inception", weights=str(weights))
    assert ext.resize_mode == "torch-fidelity" and ext.provenance["resize_mode"] == "torch-fidelity"
    assert ext.provenance["weights_sha"] and ext.provenance["resolution"] == 299
    fr, ff = ext.extract(real, batch_size=N_PER_SET), ext.extract(fake, batch_size=N_PER_SET)
    assert fr.shape == (N_PER_SET, 2048) and fr.dtype == np.float64
    assert fr.std(axis=0).mean() > 1e-3  # non-degenerate features
    # torch-fidelity reads the 48 px PNGs as they are and resizes inside its network
    _write_pngs(tmp_path / "real", real)
    _write_pngs(tmp_path / "fake", fake)
    ref = torch_fidelity.calculate_metrics(
        input1=str(tmp_path / "fake"), input2=str(tmp_path / "real"), fid=True, kid=True, kid_subset_size=N_PER_SET,
        kid_subsets=20, rng_seed=0, cuda=False, cache=False, verbose=False, save_cpu_ram=True,
        feature_extractor_weights_path=str(weights))
    fid = fid_from_features(fr, ff)
    kid_mean, _ = kid(fr, ff, subsets=20, seed=0)
    assert fid > 1.0
    assert fid == pytest.approx(ref["frechet_inception_distance"], rel=1e-4)
    assert kid_mean == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-4)


def test_legacy_mode_equals_torch_fidelity_mode_on_pre_resized_299px_images(weights):
    real, _ = _tissue_sets(4)
    legacy = create_extractor("inception", weights=str(weights), resize_mode="pil-bicubic")
    default = create_extractor("inception", weights=str(weights))
    big = resize_pil_bicubic(real, 299)
    assert big.dtype == np.uint8 and big.shape == (4, 299, 299, 3)
    # at 299 px torch-fidelity's resize is the identity, so both modes see the same network input
    f_legacy = legacy.extract(real)
    np.testing.assert_array_equal(f_legacy, default.extract(big))
    # on the 48 px images themselves the two modes differ (TF1 bilinear vs PIL bicubic + rounding) well beyond
    # the 1e-4 agreement asserted against torch-fidelity above
    f_default = default.extract(real)
    assert np.abs(f_default - f_legacy).max() > 1e-3 * np.abs(f_default).max()
    assert len({default.id(), legacy.id()}) == 2  # the mode is part of the extractor id (and so of cache keys)


def test_clean_resize_equals_cleanfid_and_clean_mode_reproduces_its_features(weights, tmp_path):
    import torch
    from cleanfid.fid import get_folder_features
    from cleanfid.resize import make_resizer

    real, _ = _tissue_sets(6)
    theirs = make_resizer("PIL", False, "bicubic", (299, 299))
    ours = resize_clean(real, 299)
    assert ours.dtype == np.float32 and (ours != ours.round()).mean() > 0.5  # not re-quantised
    np.testing.assert_array_equal(ours, np.stack([theirs(im) for im in real]))
    wide = real[:2, :, :40]  # non-square: stretched, as clean-fid does
    np.testing.assert_array_equal(resize_clean(wide, 299), np.stack([theirs(np.ascontiguousarray(im)) for im in wide]))

    ext = create_extractor("inception", weights=str(weights), resize_mode="clean")
    assert ext.provenance["resize_mode"] == "clean" and "not re-quantised" in ext.provenance["preprocessing"]
    feats = ext.extract(real)
    # clean-fid's own pipeline (its PNG loading, resize and batching) with the same network in its feature model
    model = load_inception(weights)
    _write_pngs(tmp_path / "real", real)
    ref = get_folder_features(str(tmp_path / "real"), model=lambda x: inception_pool_features(model, x),
                              num_workers=0, batch_size=6, device=torch.device("cpu"), mode="clean",
                              description="", verbose=False)
    np.testing.assert_allclose(feats, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    # and the clean resize changes the features relative to the uint8 modes
    assert np.abs(feats - create_extractor("inception", weights=str(weights)).extract(real)).max() > 1e-3 * np.abs(ref).max()


def test_float_forward_equals_torch_fidelity_forward_on_uint8_values(weights):
    import torch

    model = load_inception(weights)
    x = torch.from_numpy(resize_pil_bicubic(_tissue_sets(2)[0], 299)).permute(0, 3, 1, 2).contiguous()
    with torch.inference_mode():
        np.testing.assert_array_equal(inception_pool_features(model, x.float()).numpy(), model(x)[0].numpy())
    with pytest.raises(ValueError, match="299"):
        inception_pool_features(model, x[:, :, :48, :48].float())


def test_inception_offline_without_weights_fails_fast(monkeypatch, tmp_path):
    import torch

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # an empty hub cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match="--inception-weights"):
        create_extractor("inception")
    assert time.perf_counter() - t0 < 5  # generous; it is a file check, no network
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("OOC_BENCH_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError, match="--inception-weights"):
        create_extractor("inception")


def test_inception_option_errors_name_the_option(tmp_path, weights):
    with pytest.raises(UserInputError, match="--inception-weights"):
        create_extractor("inception", weights=str(tmp_path / "missing.pth"))
    with pytest.raises(UserInputError, match="--features"):
        create_extractor("nope")
    with pytest.raises(UserInputError, match="--resize-mode.*torch-fidelity, clean, pil-bicubic"):
        create_extractor("inception", weights=str(weights), resize_mode="bilinear")
    assert list(RESIZE_MODES) == ["torch-fidelity", "clean", "pil-bicubic"]
    # the old keyword still works
    assert create_extractor("inception", weights=str(weights), resize="torch-fidelity").resize_mode == "torch-fidelity"


def test_run_settings_choose_the_resize_mode_and_rows_name_it(weights):
    from ooc_bench.matrix.quality import build_extractor, quality_settings
    from ooc_bench.metrics import identity

    auto = build_extractor(quality_settings({"features": "inception", "inception_weights": str(weights)}))
    clean = build_extractor(quality_settings({"features": "inception", "inception_weights": str(weights),
                                              "resize_mode": "clean"}))
    assert auto.resize_mode == "torch-fidelity" and clean.resize_mode == "clean"
    assert identity(auto, 64)["resize_mode"] == "torch-fidelity" and identity(clean, 64)["resize_mode"] == "clean"
    assert auto.passes == clean.passes == 0  # nothing extracted, nothing loaded: choosing a mode is free
