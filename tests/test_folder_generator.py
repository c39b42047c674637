"""Tests of the `folder` generator: external images registered as a generator output, bad folders rejected."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ooc_bench.errors import UserInputError
from ooc_bench.generators import TrainingSet, create_generator, load_generator
from ooc_bench.hashing import file_hash


def _folder(root, classes=("bad", "good"), n=3, size=40):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (size, size + 8, 3), dtype=np.uint8)).save(root / c / f"img_{i}.png")
    return root


@pytest.fixture
def train():
    return TrainingSet.from_arrays(np.zeros((4, 8, 8, 3), np.uint8), np.array([0, 0, 1, 1]), ["bad", "good"])


def test_folder_registers_and_samples_first_n_sorted(tmp_path, train):
    root = _folder(tmp_path / "webui")
    gen = create_generator("folder", path=str(root)).fit(train)
    assert gen.available() == {"bad": 3, "good": 3}
    s = gen.sample({"bad": 2, "good": 3}, tmp_path / "out", seed=0, size=16)
    assert [r["label"] for r in s.rows] == ["bad"] * 2 + ["good"] * 3
    for p in s.paths():
        assert np.asarray(Image.open(p)).shape == (16, 16, 3)
    # the first image of "bad" is img_0.png, centre-cropped and resized
    from ooc_bench.data.decode import decode_image, resize_square

    expected = resize_square(decode_image(str(root / "bad" / "img_0.png")), 16)
    assert np.array_equal(np.asarray(Image.open(s.paths("bad")[0])), expected)
    assert {r["hash"] for r in s.rows} == {file_hash(p) for p in s.paths()}
    gen.save(tmp_path / "gen")
    again = load_generator(tmp_path / "gen").sample({"bad": 2, "good": 3}, tmp_path / "out2", seed=0, size=16)
    assert [r["hash"] for r in again.rows] == [r["hash"] for r in s.rows]
    with pytest.raises(UserInputError, match="has 3 images but 4 were requested"):
        gen.sample(4, tmp_path / "out3", seed=0, size=16)
    (root / "bad" / "img_0.png").write_bytes((root / "bad" / "img_1.png").read_bytes())
    with pytest.raises(UserInputError, match="changed"):
        gen.sample(1, tmp_path / "out4", seed=0, size=16)


def test_folder_rejects_bad_folders(tmp_path, train):
    with pytest.raises(UserInputError, match="needs path"):
        create_generator("folder")
    with pytest.raises(UserInputError, match="no such folder"):
        create_generator("folder", path=str(tmp_path / "nope")).fit(train)
    (tmp_path / "flat").mkdir()
    with pytest.raises(UserInputError, match="no class sub-folders"):
        create_generator("folder", path=str(tmp_path / "flat")).fit(train)
    mismatch = _folder(tmp_path / "mismatch", classes=("bad", "ugly"))
    with pytest.raises(UserInputError, match="missing class folder.*good.*unknown class folder.*ugly"):
        create_generator("folder", path=str(mismatch)).fit(train)
    empty = _folder(tmp_path / "empty")
    for f in (empty / "good").iterdir():
        f.unlink()
    with pytest.raises(UserInputError, match="hold no images"):
        create_generator("folder", path=str(empty)).fit(train)


def test_folder_carries_source_hashes_of_an_ooc_bench_sample_folder(tmp_path, train):
    gen = create_generator("aug", resolution=8)
    gen.fit(TrainingSet.from_arrays(np.random.default_rng(1).integers(0, 255, (4, 8, 8, 3), dtype=np.uint8),
                                    np.array([0, 0, 1, 1]), ["bad", "good"]))
    first = gen.sample(2, tmp_path / "aug", seed=0, size=8)
    reg = create_generator("folder", path=str(tmp_path / "aug")).fit(train)
    second = reg.sample(2, tmp_path / "out", seed=0, size=8)
    assert [r["source_hash"] for r in second.rows] == [r["source_hash"] for r in first.rows]
    assert all(r["source_hash"] for r in second.rows)
