"""Data layer: every layout is detected and read; decoding follows the one documented conversion."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ooc_bench.data import decode_image, detect_layout, load_dataset, make_demo, resize_square
from ooc_bench.errors import UserInputError


def _png(path: Path, value: int, size=(12, 10), mode="L") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
    return path


# ----------------------------------------------------------------------------- decoding
def test_16bit_tiff_is_scaled_not_clipped(tmp_path):
    import tifffile

    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (8, 1))
    tifffile.imwrite(tmp_path / "r.tif", ramp)
    out = decode_image(tmp_path / "r.tif")
    assert out.dtype == np.uint8 and out.shape == (8, 64, 3)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 0] == out[..., 2]).all()  # grey replicated
    np.testing.assert_array_equal(out[0, :, 0], np.rint(ramp[0] / 257.0).astype(np.uint8))
    assert out[0, 32, 0] == 130 and out[0, -1, 0] == 255 and len(np.unique(out[0, :, 0])) == 64  # clipping would saturate


def test_16bit_png_and_multisample_tiff(tmp_path):
    import tifffile

    a = (np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 100)
    Image.fromarray(a).save(tmp_path / "g16.png")
    np.testing.assert_array_equal(decode_image(tmp_path / "g16.png")[..., 0], np.rint(a / 257.0).astype(np.uint8))
    rgb16 = np.stack([a, a // 2, a // 4], -1)
    tifffile.imwrite(tmp_path / "c16.tiff", rgb16, photometric="rgb")
    np.testing.assert_array_equal(decode_image(tmp_path / "c16.tiff"), np.rint(rgb16 / 257.0).astype(np.uint8))


def test_greyscale_jpeg_exif_orientation(tmp_path):
    stored = np.zeros((20, 40), dtype=np.uint8)
    stored[:, :10] = 255  # bright left edge
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    Image.fromarray(stored).save(tmp_path / "o.jpg", exif=exif.tobytes(), quality=95)
    out = decode_image(tmp_path / "o.jpg")
    assert out.shape == (40, 20, 3)
    assert out[:10, :, 0].mean() > 200 and out[20:, :, 0].mean() < 50  # the bright edge is now on top


def test_palette_rgba_cmyk(tmp_path):
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    rgb[:4] = (200, 10, 10)
    rgb[4:] = (10, 10, 200)
    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=4).save(tmp_path / "p.png")
    np.testing.assert_array_equal(decode_image(tmp_path / "p.png"), rgb)
    rgba = np.dstack([np.full((4, 4, 3), 200, np.uint8), np.array([[0, 255, 128, 255]] * 4, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = decode_image(tmp_path / "a.png")
    assert out[0, 0].tolist() == [0, 0, 0]  # transparent -> black (composited on black)
    assert out[0, 1].tolist() == [200, 200, 200] and out[0, 2].tolist() == [100, 100, 100]
    cmyk = Image.fromarray(rgb).convert("CMYK")
    cmyk.save(tmp_path / "c.jpg", quality=95)
    out = decode_image(tmp_path / "c.jpg")
    assert out.shape == (8, 8, 3) and out[0, 0, 0] > 150 and out[-1, -1, 2] > 150


def test_real_image_resize_policy():
    from skimage import data

    cell = data.cell()  # real greyscale microscopy image shipped with scikit-image
    rgb = np.repeat(cell[..., None], 3, -1)
    out = resize_square(rgb, 64)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    side = min(cell.shape)
    top, left = (cell.shape[0] - side) // 2, (cell.shape[1] - side) // 2
    ref = np.asarray(Image.fromarray(cell[top:top + side, left:left + side]).resize((64, 64), Image.BICUBIC))
    assert np.abs(out[..., 0].astype(int) - ref).mean() < 2.0  # centre crop, then bicubic


# ----------------------------------------------------------------------------- layouts
def test_class_folders_nested(tmp_path):
    root = tmp_path / "set"
    _png(root / "cats" / "a.png", 1)
    _png(root / "cats" / "deep" / "er" / "b.jpg", 2, mode="RGB")
    _png(root / "dogs" / "c.bmp", 3)
    (root / "dogs" / "notes.txt").write_text("not an image")
    import tifffile

    tifffile.imwrite(root / "dogs" / "d16.tif", np.zeros((3, 9, 7), np.uint16), photometric="rgb",
                     planarconfig="separate")
    assert detect_layout(root) == "folders"
    ds = load_dataset(root)
    assert ds.classes == ["cats", "dogs"] and len(ds.records) == 4
    d16 = next(r for r in ds.records if r.path.endswith("d16.tif"))
    assert (d16.metadata["width"], d16.metadata["height"]) == ("7", "9") and decode_image(d16.path).shape == (9, 7, 3)
    assert all(r.split is None and len(r.hash) == 16 for r in ds.records)
    assert any("notes.txt" in w for w in ds.warnings)


def test_presplit_chest_xray_style(tmp_path):
    root = tmp_path / "xray"
    for k, (split, cls, i) in enumerate([(s, c, i) for s in ("train", "test") for c in ("NORMAL", "PNEUMONIA")
                                         for i in range(2)]):
        _png(root / split / cls / f"{split}{i}.png", k)
    assert detect_layout(root) == "presplit"
    ds = load_dataset(root)
    assert ds.has_splits and ds.classes == ["NORMAL", "PNEUMONIA"] and not ds.problems
    assert {r.split for r in ds.records} == {"train", "test"}


def _write_xlsx(csv_path: Path, xlsx_path: Path, flip: str | None = None) -> None:
    import openpyxl

    with open(csv_path, newline="") as fh:
        rows = list(csv.reader(fh))
    wb = openpyxl.Workbook()
    wb.active.title = "Notes"
    wb.active.append(["this sheet is not the data"])
    ws = wb.create_sheet("Main")
    for row in rows:
        if flip and row[0] == flip:
            row[5] = "1" if row[5] == "2" else "2"
        ws.append([int(v) if v.isdigit() else v for v in row])
    wb.save(xlsx_path)


@pytest.fixture(scope="module")
def small_ooc(tmp_path_factory):
    root = tmp_path_factory.mktemp("ooc") / "OOC_image_dataset"
    make_demo(root, seed=3, n_images=24, size=32)
    return root


def test_ooc_layout_with_csv_datasheet(small_ooc):
    assert detect_layout(small_ooc) == "ooc"
    ds = load_dataset(small_ooc)
    assert ds.layout == "ooc" and ds.classes == ["bad", "good"] and len(ds.records) == 24
    r = ds.records[0]
    assert set(r.metadata) >= {"cell_type", "day_bucket", "date", "decision", "seeding_density", "flow_rate"}
    assert r.metadata["cell_type"] in ("A549", "HepG2", "Caco2") and len(r.metadata["date"]) == 6
    assert Path(r.path).stem.startswith(r.metadata["date"])
    assert all(x.metadata["sheet_label"] == x.label for x in ds.records)


def test_ooc_layout_with_xlsx_datasheet_and_conflicts(small_ooc, tmp_path):
    import shutil

    top = tmp_path / "zenodo"
    shutil.copytree(small_ooc, top / "OOC_image_dataset", ignore=shutil.ignore_patterns("*.csv"))
    stem = next((top / "OOC_image_dataset").rglob("*.png")).stem
    _write_xlsx(small_ooc / "OOC_datasheet.csv", top / "OOC_datasheet.xlsx")
    ds = load_dataset(top)  # the download folder: steps into OOC_image_dataset, finds the xlsx beside it
    assert ds.layout == "ooc" and all("decision" in r.metadata for r in ds.records)
    _write_xlsx(small_ooc / "OOC_datasheet.csv", top / "OOC_datasheet.xlsx", flip=stem)
    with pytest.raises(UserInputError, match=stem):
        load_dataset(top / "OOC_image_dataset")
    ds = load_dataset(top, accept_folder_labels=True)
    assert any(stem in w for w in ds.warnings)


def test_npz_plain_and_split_keys(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (10, 8, 8), dtype=np.uint8)
    y = np.array([0, 1] * 5)
    np.savez(tmp_path / "plain.npz", images=x, labels=y, class_names=np.array(["neg", "pos"]))
    assert detect_layout(tmp_path / "plain.npz") == "npz"
    ds = load_dataset(tmp_path / "plain.npz")
    assert ds.classes == ["neg", "pos"] and len(ds.records) == 10 and not ds.has_splits
    np.testing.assert_array_equal(decode_image(ds.records[3].path)[..., 1], x[3])
    np.savez(tmp_path / "split.npz", train_x=x[:6], train_y=y[:6], test_x=x[6:], test_y=y[6:])
    ds = load_dataset(tmp_path / "split.npz")
    assert ds.has_splits and [len(ds.split(s)) for s in ("train", "test")] == [6, 4]
    assert ds.records[0].path.endswith("split.npz#train_x[0]")


def test_csv_manifest(tmp_path):
    _png(tmp_path / "imgs" / "a.png", 1)
    _png(tmp_path / "imgs" / "b.png", 2)
    _png(tmp_path / "imgs" / "c.png", 3)
    (tmp_path / "list.csv").write_text("path,label,group,site\nimgs/a.png,x,g1,s1\nimgs/b.png,y,g1,s2\n"
                                       f"{tmp_path / 'imgs' / 'c.png'},y,g2,s1\n")
    assert detect_layout(tmp_path / "list.csv") == "csv"
    ds = load_dataset(tmp_path / "list.csv")
    assert ds.classes == ["x", "y"] and [r.group for r in ds.records] == ["g1", "g1", "g2"]
    assert ds.records[1].metadata["site"] == "s2" and Path(ds.records[0].path).is_absolute()


def test_identical_image_in_two_splits_is_a_problem(tmp_path):
    root = tmp_path / "dup"
    for k, (split, cls) in enumerate([("train", "a"), ("train", "b"), ("test", "a"), ("test", "b")]):
        _png(root / split / cls / "x.png", k)
    _png(root / "test" / "a" / "copy.png", 0)  # same bytes as train/a/x.png
    ds = load_dataset(root)
    assert ds.problems and "copy.png" in ds.problems[0] and "two splits" in ds.problems[0]


def test_partial_class_folders_with_one_class_ok(tmp_path):
    root = tmp_path / "synthetic"
    _png(root / "bad" / "s0.png", 1)
    _png(root / "bad" / "s1.png", 2)
    (root / "good").mkdir()  # a generator asked for 0 images of this class
    with pytest.raises(UserInputError, match="empty class folder"):
        load_dataset(root, layout="folders")
    ds = load_dataset(root, layout="folders", one_class_ok=True)
    assert ds.classes == ["bad"] and len(ds.records) == 2 and all(len(r.hash) == 16 for r in ds.records)
    assert any("empty class folder" in w and "good" in w for w in ds.warnings)
    (root / "bad" / "s1.png").write_bytes((root / "bad" / "s1.png").read_bytes()[:-20])  # truncated: still checked
    with pytest.raises(UserInputError, match="s1.png"):
        load_dataset(root, layout="folders", one_class_ok=True)


def test_file_hash_memo_uses_rollback_journal_and_sees_changes(tmp_path, monkeypatch):
    import os
    import sqlite3

    from ooc_bench.data import filehash
    from ooc_bench.hashing import file_hash

    monkeypatch.setenv("OOC_BENCH_CACHE", str(tmp_path / "cache"))
    a, b = _png(tmp_path / "a.png", 1), _png(tmp_path / "b.png", 2)
    ha, hb = file_hash(a), file_hash(b)
    assert filehash.hash_files([str(a), str(b), str(tmp_path / "gone.png")]) == [ha, hb, None]
    con = sqlite3.connect(str(tmp_path / "cache" / "file-hashes.sqlite3"))
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # WAL does not work on network file systems
    con.close()
    hashed: list[str] = []
    monkeypatch.setattr(filehash, "file_hash", lambda p: hashed.append(p) or file_hash(p))
    assert filehash.hash_files([str(a), str(b)]) == [ha, hb] and hashed == []  # unchanged files: remembered
    mtime = a.stat().st_mtime_ns
    a.write_bytes(b.read_bytes())
    os.utime(a, ns=(mtime + 1_000_000, mtime + 1_000_000))  # a later mtime, even on a coarse-clock file system
    assert filehash.hash_files([str(a), str(b)]) == [hb, hb] and hashed == [str(a)]
