"""Inception features: agreement with torch-fidelity on the same folders and weights; fast offline failure."""

from __future__ import annotations

import time

import numpy as np
import pytest

from ooc_bench.errors import WeightsUnavailableError
from ooc_bench.metrics import create_extractor, fid_from_features, kid, random_inception_weights, resize_uint8

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


def test_fid_kid_agree_with_torch_fidelity_on_same_folders(weights, tmp_path):
    import torch_fidelity
    from PIL import Image
    from skimage import data

    rng = np.random.default_rng(0)
    tissue = data.immunohistochemistry()
    real = _crops(tissue, N_PER_SET, rng)
    fake = np.clip(_crops(tissue, N_PER_SET, rng).astype(int) * 0.8 + 30, 0, 255).astype(np.uint8)
    ext = create_extractor("inception", weights=str(weights))
    assert ext.provenance["weights_sha"] and ext.provenance["resolution"] == 299
    fr, ff = ext.extract(real, batch_size=N_PER_SET), ext.extract(fake, batch_size=N_PER_SET)
    assert fr.shape == (N_PER_SET, 2048) and fr.dtype == np.float64
    assert fr.std(axis=0).mean() > 1e-3  # non-degenerate features
    # the preprocessing policy (PIL bicubic to 299, uint8) written as PNGs is exactly what torch-fidelity sees
    for name, arr in (("real", real), ("fake", fake)):
        (tmp_path / name).mkdir()
        for i, im in enumerate(resize_uint8(arr, 299)):
            Image.fromarray(im).save(tmp_path / name / f"{i:03d}.png")
    ref = torch_fidelity.calculate_metrics(
        input1=str(tmp_path / "fake"), input2=str(tmp_path / "real"), fid=True, kid=True, kid_subset_size=N_PER_SET,
        kid_subsets=20, rng_seed=0, cuda=False, cache=False, verbose=False, save_cpu_ram=True,
        feature_extractor_weights_path=str(weights))
    fid = fid_from_features(fr, ff)
    kid_mean, _ = kid(fr, ff, subsets=20, seed=0)
    assert fid > 1.0
    assert fid == pytest.approx(ref["frechet_inception_distance"], rel=1e-4)
    assert kid_mean == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-4)
    assert fid_from_features(fr, fr) == pytest.approx(0.0, abs=1e-6 * fid)


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


def test_inception_weights_file_errors_name_the_option(tmp_path):
    from ooc_bench.errors import UserInputError

    with pytest.raises(UserInputError, match="--inception-weights"):
        create_extractor("inception", weights=str(tmp_path / "missing.pth"))
    with pytest.raises(UserInputError, match="--features"):
        create_extractor("nope")
