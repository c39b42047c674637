"""Data layer: the decoded-image cache decodes each image once per size and policy and returns identical arrays."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ooc_bench.data import ImageCache, decode_image, load_dataset, resize_square


@pytest.fixture()
def real_set(tmp_path):
    """Two classes of real microscopy crops from scikit-image, saved as PNG (grey) and JPEG (colour)."""
    from skimage import data

    cell, ihc = data.cell(), data.immunohistochemistry()
    root = tmp_path / "real"
    for i in range(3):
        (root / "cell").mkdir(parents=True, exist_ok=True)
        (root / "ihc").mkdir(parents=True, exist_ok=True)
        Image.fromarray(cell[i * 60:i * 60 + 300, i * 50:i * 50 + 400]).save(root / "cell" / f"c{i}.png")
        Image.fromarray(ihc[i * 40:i * 40 + 300, i * 30:i * 30 + 400]).save(root / "ihc" / f"h{i}.jpg", quality=90)
    Image.fromarray(cell[:300, :400]).save(root / "cell" / "c0_copy.png")  # identical content to c0.png
    return load_dataset(root)


@pytest.fixture()
def count_decodes(decode_spy):
    return decode_spy


def test_second_load_does_not_decode(real_set, tmp_path, count_decodes):
    recs = real_set.records
    assert len({r.hash for r in recs}) == len(recs) - 1  # the copy shares its hash
    cache = ImageCache(tmp_path / "c")
    a = cache.load(recs, 32)
    assert len(count_decodes) == len(recs) - 1  # duplicates decoded once
    assert a.shape == (len(recs), 32, 32, 3) and a.dtype == np.uint8
    for r, img in zip(recs, a):
        np.testing.assert_array_equal(img, resize_square(decode_image(r.path), 32))
    count_decodes.clear()
    b = ImageCache(tmp_path / "c").load(recs, 32)  # a fresh instance, as in a new process
    c = cache.load(list(reversed(recs)), 32)  # another order: a new pack, built from stored images
    assert count_decodes == []
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[::-1], c)
    assert isinstance(b, np.memmap)
    b[0] = 0  # copy-on-write: the cached file is untouched
    np.testing.assert_array_equal(ImageCache(tmp_path / "c").load(recs, 32), a)


def test_other_size_and_gray_policy_are_separate_entries(real_set, tmp_path, count_decodes):
    cache = ImageCache(tmp_path / "c")
    rgb = cache.load(real_set.records, 16)
    n = len(count_decodes)
    gray = cache.load(real_set.records, 16, channels="gray")
    assert len(count_decodes) == 2 * n and gray.shape == rgb.shape[:3] + (1,)
    luma = np.asarray(Image.fromarray(resize_square(decode_image(real_set.records[-1].path), 16)).convert("L"))
    assert np.abs(gray[-1, ..., 0].astype(int) - luma).max() <= 3  # luma of the same image (order of ops differs)
    cache.load(real_set.records, 20)
    assert len(count_decodes) == 3 * n
    assert cache.image_path(real_set.records[0].hash, 20).is_file()


def test_unpacked_mode_and_empty_request(real_set, tmp_path):
    packed = ImageCache(tmp_path / "c").load(real_set.records, 24)
    plain = ImageCache(tmp_path / "c", pack=False).load(real_set.records, 24)
    assert not isinstance(plain, np.memmap)
    np.testing.assert_array_equal(packed, plain)
    assert ImageCache(tmp_path / "c").load([], 24).shape == (0, 24, 24, 3)


def test_damaged_cache_entry_is_rebuilt(real_set, tmp_path):
    cache = ImageCache(tmp_path / "c", pack=False)
    good = cache.load(real_set.records, 16)
    cache.image_path(real_set.records[0].hash, 16).write_bytes(b"garbage")
    np.testing.assert_array_equal(cache.load(real_set.records, 16), good)
