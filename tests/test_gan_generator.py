"""The `gan` generator end to end with a tiny network: fit, sample, save/load, resume, conditioning, pickle guard."""

import json
import warnings

import numpy as np
import pytest
from PIL import Image

from ooc_bench.errors import UserInputError
from ooc_bench.hashing import array_hash, config_hash, file_hash
from ooc_bench.generators import SampleSet, TrainingSet, create_generator, load_generator
from ooc_bench.generators.stylegan.trainer import Trainer

from .cli_helpers import run_cli
from .matrix_fixtures import make_digits_dataset

TINY = dict(resolution=16, channel_base=128, channel_max=16, z_dim=16, w_dim=16, mapping_layers=1,
            batch_size=8, kimg=0.016, verbose=False, device="cpu")


def _train_set(n=24, classes=("bad", "good"), metadata=None):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(n, 16, 16, 3), dtype=np.uint8)
    labels = np.arange(n) % len(classes)
    return TrainingSet.from_arrays(images, labels, list(classes), metadata=metadata)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    wd = tmp_path_factory.mktemp("gan_fit")
    gen = create_generator("gan", **TINY).fit(_train_set(), wd)
    return gen, wd


def test_fit_writes_grids_checkpoints_and_logs(fitted):
    gen, wd = fitted
    assert gen.nimg == 16
    assert (wd / "grids" / "reals.png").exists() and list((wd / "grids").glob("fakes*.png"))
    assert (wd / "checkpoints" / "latest.json").exists()
    lines = [json.loads(line) for line in (wd / "log.jsonl").read_text().splitlines()]
    assert lines[-1]["kimg"] == pytest.approx(0.016)
    assert {"loss_g", "loss_d", "p", "img_per_s"} <= set(lines[-1])
    assert np.isfinite(gen.seconds_per_kimg) and gen.seconds_per_kimg > 0


def test_same_seed_same_image_and_save_load_is_bitwise(fitted, tmp_path):
    gen, _ = fitted
    a = gen.generate(1, [0, 1, 2], [11, 12, 13], 16)
    b = gen.generate(1, [5, 6, 7], [11, 12, 13], 16)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], a[1])
    assert a[0].dtype == np.uint8 and a[0].shape == (16, 16, 3)
    gen.save(tmp_path / "g")
    assert not list((tmp_path / "g").glob("*.pkl"))
    assert (tmp_path / "g" / "G_ema.safetensors").exists() and (tmp_path / "g" / "D.safetensors").exists()
    loaded = load_generator(tmp_path / "g")
    assert loaded.name == "gan" and loaded.classes == ["bad", "good"]
    c = loaded.generate(1, [0, 1, 2], [11, 12, 13], 16)
    assert all(np.array_equal(x, y) for x, y in zip(a, c))
    big = loaded.generate(0, [0], [11], 24)[0]
    assert big.shape == (24, 24, 3)
    psi = loaded.generate(1, [0], [11], 16, truncation_psi=0.5)[0]
    assert not np.array_equal(psi, a[0])


def test_sample_returns_requested_classes_and_nested_subsets(fitted, tmp_path):
    gen, _ = fitted
    ss = gen.sample({"bad": 2, "good": 3}, tmp_path / "s", seed=5, size=16)
    assert isinstance(ss, SampleSet)
    assert [r["label"] for r in ss.rows] == ["bad"] * 2 + ["good"] * 3
    assert all(r["path"].split("/")[0] == r["label"] for r in ss.rows)
    assert len(list((tmp_path / "s" / "good").glob("*.png"))) == 3
    more = gen.sample(4, tmp_path / "s4", seed=5, size=16)
    first = {r["path"]: r["hash"] for r in ss.rows}
    assert all(first[r["path"]] == r["hash"] for r in more.rows if r["path"] in first)
    assert sum(r["path"] in first for r in more.rows) == 5


def test_resume_after_interrupt_continues_the_kimg_count(tmp_path, monkeypatch):
    train = _train_set()
    calls = {"n": 0}
    original = Trainer._ema_update

    def interrupt_on_third(self):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        original(self)

    monkeypatch.setattr(Trainer, "_ema_update", interrupt_on_third)
    with pytest.raises(KeyboardInterrupt):
        create_generator("gan", **{**TINY, "kimg": 0.04}).fit(train, tmp_path)
    latest = json.loads((tmp_path / "checkpoints" / "latest.json").read_text())
    assert latest["nimg"] == 24
    monkeypatch.setattr(Trainer, "_ema_update", original)
    gen = create_generator("gan", **{**TINY, "kimg": 0.04}).fit(train, tmp_path)
    assert gen.nimg == 40
    kimgs = [json.loads(line)["kimg"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    # the interrupted step (0.024) was checkpointed before its log line; training goes on from there, not from zero
    assert kimgs == pytest.approx([0.008, 0.016, 0.032, 0.04])
    written = {p: p.stat().st_mtime_ns for p in (tmp_path / "checkpoints").rglob("*")}
    again = create_generator("gan", **{**TINY, "kimg": 0.04}).fit(train, tmp_path)  # budget reached: no training
    assert again.nimg == 40 and len((tmp_path / "log.jsonl").read_text().splitlines()) == 4
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "checkpoints").rglob("*")} == written  # nothing rewritten
    with pytest.raises(UserInputError, match="different configuration"):
        create_generator("gan", **{**TINY, "kimg": 0.05, "z_dim": 8}).fit(train, tmp_path)


def test_training_only_sees_the_training_set(tmp_path):
    base = _train_set()
    requested = []

    def loader(size):
        requested.append(size)
        return base.images(size)

    train = TrainingSet(classes=base.classes, labels=base.labels, loader=loader, hashes=base.hashes,
                        metadata=base.metadata)
    gen = create_generator("gan", **TINY)
    gen.fit(train, tmp_path)
    assert requested == [16]
    record = json.loads((tmp_path / "training_set.json").read_text())
    assert record["n_images"] == 24 and record["classes"] == ["bad", "good"]
    assert record["pixels_hash"] == array_hash(base.images(16))  # exactly these pixels were trained on
    assert record["images_hash"] == config_hash(list(base.hashes))
    assert gen._trainer.G.c_dim == 2


def test_condition_on_metadata_combines_class_and_value(tmp_path):
    md = [{"cell_type": ["hepato", "endo", "hepato"][i % 3]} for i in range(24)]
    gen = create_generator("gan", **TINY, condition_on="cell_type").fit(_train_set(metadata=md), None)
    assert gen.c_dim == 4  # 2 classes x 2 cell types, all combinations present
    assert [r[:2] for r in gen.cond_table] == [[0, "endo"], [0, "hepato"], [1, "endo"], [1, "hepato"]]
    for k in (0, 1):
        conds = {gen._condition_for(k, u) for u in np.linspace(0, 0.999, 50)}
        assert {gen.cond_table[c][0] for c in conds} == {k} and len(conds) == 2
    with pytest.raises(UserInputError, match="not a metadata column"):
        create_generator("gan", **TINY, condition_on="donor").fit(_train_set(metadata=md), None)


def test_unconditional_mode(tmp_path):
    one = TrainingSet.from_arrays(np.zeros((8, 16, 16, 3), np.uint8), np.zeros(8, np.int64), ["only"])
    gen = create_generator("gan", **TINY, conditional=False).fit(one, None)
    assert gen.c_dim == 0 and gen.generate(0, [0], [1], 16)[0].shape == (16, 16, 3)
    with pytest.raises(UserInputError, match="conditional"):
        create_generator("gan", **TINY, conditional=False).fit(_train_set(), None)


def test_config_from_cli_strings_and_aliases():
    gen = create_generator("stylegan2-ada", resolution="32", kimg="0.5", betas="0,0.99", mirror="true",
                           augment_pipe="blit,color", fixed_p="0.3", device="cpu")
    c = gen.config
    assert c["resolution"] == 32 and c["kimg"] == 0.5 and c["betas"] == [0.0, 0.99] and c["mirror"] is True
    assert c["fixed_p"] == 0.3 and c["capacity"] == "tiny" and c["batch_size"] == 8  # CPU default up to 32 px
    assert c["r1_gamma"] == 3.2  # resolved with the config: the tiny preset's floor (heuristic 0.0002 * 32^2 / 8)
    with pytest.raises(UserInputError, match="unknown setting"):
        create_generator("gan", learning_rate=1)
    with pytest.raises(UserInputError, match="unknown setting.*per_class"):  # a sampling count, not a setting
        create_generator("gan", per_class=5)
    with pytest.raises(UserInputError, match="power of two"):
        create_generator("gan", resolution=48)
    with pytest.raises(UserInputError, match="augment_pipe"):
        create_generator("gan", augment_pipe="cutout")


def test_network_pickle_needs_opt_in_and_the_nvlabs_repo(tmp_path):
    pkl = tmp_path / "network-snapshot.pkl"
    pkl.write_bytes(b"not really a pickle")
    train = _train_set()
    with pytest.raises(UserInputError, match="allow_pickle"):
        create_generator("gan", gan_pkl=str(pkl), device="cpu").fit(train, None)
    with pytest.raises(UserInputError, match="file not found"):
        create_generator("gan", gan_pkl=str(tmp_path / "missing.pkl"), allow_pickle="true", device="cpu").fit(train)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(UserInputError, match="PYTHONPATH"):
            create_generator("gan", gan_pkl=str(pkl), allow_pickle=True, device="cpu").fit(train, None)
    assert any("runs arbitrary code" in str(w.message) for w in caught)


def test_all_regularisers_and_options_run(tmp_path):
    gen = create_generator("gan", **TINY, pl_weight=2.0, pl_interval=1, style_mixing=0.9, r1_interval=1,
                           fixed_p=0.5, mirror=True, noise_mode="random", augment_pipe=["xflip", "rotate", "hue"],
                           fused_modconv=True, num_threads=1).fit(_train_set(), None)
    tr = gen._trainer
    assert float(tr.augment.p) == 0.5 and tr.ada is None  # fixed p: no adaptation
    assert tr.r1_gamma == 3.2  # the ADA heuristic (0.0002 * 16^2 / 8 = 0.0064) is below the tiny preset's floor
    assert "pl" in tr.stats and "r1" in tr.stats and np.isfinite(tr.stats["pl"])
    a = gen.generate(0, [0, 1], [3, 4], 16)
    b = gen.generate(0, [0, 1], [3, 4], 16)  # random noise is drawn from the image's seed as well
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_cli_per_class_is_a_sampling_count_and_manifest_hashes_are_file_hashes(tmp_path, capsys):
    data = make_digits_dataset(tmp_path / "digits", {"train": 4, "val": 1, "test": 1})
    out = tmp_path / "synth"
    params = [f"--param={k}={json.dumps(v)}" for k, v in TINY.items() if k not in ("resolution", "kimg")]
    code, stdout, _ = run_cli(capsys, "generate", "-g", "gan", "--data", data, "--out", out, "--per-class", "3",
                              "--output-size", "20", "--working-size", "16", "--kimg", "0.008", *params)
    assert code == 0, stdout
    summary = json.loads((out / "generate.json").read_text())
    assert "per_class" not in summary["config"] and summary["synthetic_images"] == {"eight": 3, "three": 3}
    ss = SampleSet.load(out)
    assert len(ss.rows) == 6
    for row in ss.rows:  # hashed from the encoded bytes, identical to hashing the written file
        assert row["hash"] == file_hash(out / row["path"])
        assert np.asarray(Image.open(out / row["path"])).shape == (20, 20, 3)
