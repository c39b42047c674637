"""Cache keys hash resolved configs: device-dependent "auto" values change exactly the jobs that depend on them."""

from __future__ import annotations

import io

from rich.console import Console

from ooc_bench.matrix.plan import SplitInfo, build_plan
from ooc_bench.matrix.resolve import changed_jobs, executor_device_kind, report_changes
from ooc_bench.matrix.spec import load_spec

SPEC = """
[generators.aug]
[generators.gan]
resolution = 16
[generators.gan-fixed]
type = "gan"
resolution = 16
capacity = "tiny"
kimg = 0.5
batch_size = 16
[models.cnn]
pretrained = false
epochs = 2
[matrix]
ratios = [0, 0.5]
seeds = [1, 2]
[quality]
enabled = false
"""
SPLIT = SplitInfo(manifest="split.csv", key="s" * 16, classes=["a", "b"], train_counts={"a": 10, "b": 12})


def _plans(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(SPEC)
    spec = load_spec(p)
    return build_plan(spec, SPLIT, device_kind="cpu"), build_plan(spec, SPLIT, device_kind="cuda")


def _by_label(plan):
    return {j.label: j for j in plan.jobs}


def test_auto_values_are_resolved_before_hashing(tmp_path):
    cpu, cuda = _plans(tmp_path)
    a, b = _by_label(cpu), _by_label(cuda)
    assert a["fit gan"].params["config"]["capacity"] == "tiny" and a["fit gan"].params["config"]["kimg"] == 2.0
    assert b["fit gan"].params["config"]["capacity"] == "paper" and b["fit gan"].params["config"]["kimg"] == 1000.0
    assert a["fit gan"].params["device_kind"] == "cpu" and b["fit gan"].params["device_kind"] == "cuda"
    assert a["fit gan"].params["config"]["device"] == "auto"  # a runtime option: it runs wherever, not hashed
    changed = {label for label in a if a[label].key != b[label].key}
    # exactly the auto-resolved GAN and everything downstream of it, plus every classifier cell: on CUDA a cell
    # trains with mixed precision, which changes its numbers even when its recipe is the same
    cells = {j.label for j in cpu.jobs if j.kind == "cell"}
    assert changed == {label for label in a if "gan" in label and "gan-fixed" not in label} | cells
    assert "fit gan" in changed and "sample gan" in changed and any(" gan " in x for x in changed)
    assert a["fit aug"].key == b["fit aug"].key and a["fit gan-fixed"].key == b["fit gan-fixed"].key
    assert a["sample gan-fixed"].key == b["sample gan-fixed"].key
    assert a["cnn · real-only · seed 1"].params["numerics"] == "cpu-fp32"
    assert b["cnn · real-only · seed 1"].params["numerics"] == "cuda-amp+channels-last"


def test_cells_record_the_full_training_recipe(tmp_path):
    cpu, _ = _plans(tmp_path)
    cell = next(j for j in cpu.jobs if j.kind == "cell")
    tc = cell.params["train_config"]
    assert tc["epochs"] == 2 and tc["pretrained"] is False  # as written
    assert {"lr", "optimizer", "schedule", "augment", "weight_decay", "patience", "head"} <= set(tc)  # defaults filled


def test_resuming_on_another_device_kind_says_which_jobs_change_and_why(tmp_path):
    cpu, cuda = _plans(tmp_path)
    records = {kind: [{"kind": j.kind, "key": j.key, "label": j.label, "params": j.params, "status": "done"}
                      for j in cpu.jobs if j.kind == kind] for kind in ("fit", "sample", "cell")}
    changes = dict((j.label, why) for j, why in changed_jobs(cuda.jobs, records))
    cells = {j.label for j in cuda.jobs if j.kind == "cell"}
    assert set(changes) == {j.label for j in cuda.jobs if "gan" in j.label and "gan-fixed" not in j.label} | cells
    assert "numerics cpu-fp32 -> cuda-amp+channels-last" in changes["cnn · real-only · seed 1"]
    why = changes["fit gan"]
    assert "capacity tiny -> paper" in why and "kimg 2.0 -> 1000.0" in why and "recorded on cpu, now cuda" in why
    assert changed_jobs(cpu.jobs, records) == []  # the same machine: nothing changes


def test_report_changes_prints_them(tmp_path):
    import json

    cpu, cuda = _plans(tmp_path)
    folder = tmp_path / "run" / "records" / "fit"
    folder.mkdir(parents=True)
    for j in cpu.by_kind("fit"):
        (folder / f"{j.key}.json").write_text(json.dumps({"kind": "fit", "key": j.key, "label": j.label,
                                                          "params": j.params, "status": "done"}))
    console = Console(file=io.StringIO(), width=200)
    assert len(report_changes(cuda.jobs, tmp_path / "run", console)) == 1
    assert "fit gan: " in console.file.getvalue() and "capacity tiny -> paper" in console.file.getvalue()


def test_slurm_device_kind_comes_from_its_parameters():
    assert executor_device_kind("slurm", {"gpus_per_node": 1}) == "cuda"
    assert executor_device_kind("slurm", {"slurm_gres": "gpu:a100:1"}) == "cuda"
    assert executor_device_kind("slurm", {"slurm_partition": "cpu"}) == "cpu"


def test_stage_caches_are_keyed_by_manifest_content(tmp_path):
    from ooc_bench.data import load_dataset, write_split_manifest
    from ooc_bench.matrix.stages import real_arrays, split_dataset
    from tests.matrix_fixtures import make_digits_dataset

    data = make_digits_dataset(tmp_path / "digits", {"train": 4, "val": 2, "test": 2})
    (tmp_path / "r1").mkdir()
    write_split_manifest(load_dataset(data), tmp_path / "r1" / "split.csv")
    first = split_dataset(tmp_path / "r1")
    assert split_dataset(tmp_path / "r1") is first  # unchanged content: one cached read per process
    x, _ = real_arrays(tmp_path / "r1", "train", 8)
    assert len(x) == 8
    ds = load_dataset(data)
    ds.records = [r for r in ds.records if not r.path.endswith("three_000.png")]
    write_split_manifest(ds, tmp_path / "r1" / "split.csv")  # rewritten (possibly within one mtime tick)
    again = split_dataset(tmp_path / "r1")
    assert again is not first and len(again.records) == len(first.records) - 1  # never served stale
    assert len(real_arrays(tmp_path / "r1", "train", 8)[0]) == 7  # nor are the decoded arrays of the old split
