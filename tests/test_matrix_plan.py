"""Benchmark matrix without training: spec validation, plan expansion, keys, protocol counts and paired statistics."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from ooc_bench.errors import UserInputError
from ooc_bench.matrix import SplitInfo, build_plan, load_spec, synthetic_counts
from ooc_bench.matrix.results import summary_rows
from ooc_bench.matrix.stats import StatsConfig, paired_compare, summarize

SPLIT = SplitInfo(manifest="split.csv", key="splitkey", classes=["bad", "good"], train_counts={"bad": 40, "good": 60})


def _spec(tmp_path, text: str, **kw):
    p = tmp_path / "s.toml"
    p.write_text(text)
    return load_spec(p, **kw)


BASE = """
name = "t"
[data]
image_size = 16
[generators.aug]
[generators.gan]
kimg = 0.1
[models.cnn]
epochs = 2
[matrix]
ratios = [0, 0.5, 1.0]
seeds = [1, 2, 3]
"""


def test_plan_counts_and_nested_sampling(tmp_path):
    spec = _spec(tmp_path, BASE)
    plan = build_plan(spec, SPLIT)
    kinds = [j.kind for j in plan.jobs]
    assert kinds.count("fit") == 2 and kinds.count("sample") == 2
    assert kinds.count("score") == 3  # two generators + the held-out real floor (real-val)
    assert kinds.count("cell") == 3 * (1 + 2 * 2)  # seeds x (baseline + generators x non-zero ratios)
    # one sample set per generator, large enough for the largest ratio; smaller ratios take prefixes
    for s in plan.by_kind("sample"):
        assert s.params["n_per_class"] == {"bad": 40, "good": 60}
        assert s.params["optional"] is False
    cells = [j for j in plan.by_kind("cell") if j.params["generator"] == "aug" and j.params["seed"] == 1]
    assert sorted(j.params["n_synthetic"]["good"] for j in cells) == [30, 60]
    assert len({j.key for j in plan.jobs}) == len(plan.jobs)
    # every cell's sample dependency is in an earlier wave
    waves = plan.waves()
    pos = {j.key: i for i, w in enumerate(waves) for j in w}
    assert all(pos[d] < pos[j.key] for j in plan.jobs for d in j.deps)


def test_changing_a_classifier_parameter_changes_only_cell_keys(tmp_path):
    a = build_plan(_spec(tmp_path, BASE), SPLIT)
    b = build_plan(_spec(tmp_path, BASE.replace("epochs = 2", "epochs = 3")), SPLIT)
    ka = {j.kind: set() for j in a.jobs}
    kb = {j.kind: set() for j in b.jobs}
    for j in a.jobs:
        ka[j.kind].add(j.key)
    for j in b.jobs:
        kb[j.kind].add(j.key)
    for kind in ("fit", "sample", "score"):
        assert ka[kind] == kb[kind]
    assert not (ka["cell"] & kb["cell"])
    c = build_plan(_spec(tmp_path, BASE.replace("kimg = 0.1", "kimg = 0.2")), SPLIT)
    changed = {j.kind for j in c.jobs if j.key not in {x.key for x in a.jobs}}
    unchanged_cells = [j for j in c.jobs if j.kind == "cell" and j.params["generator"] in ("aug", "real-only")]
    assert changed == {"fit", "sample", "score", "cell"}
    assert all(j.key in ka["cell"] for j in unchanged_cells)  # aug and baseline cells stay cached


def test_protocol_counts():
    n = {"a": 10, "b": 30}
    assert synthetic_counts("add", 0.5, n) == ({"a": 10, "b": 30}, {"a": 5, "b": 15})
    assert synthetic_counts("replace", 0.5, n) == ({"a": 5, "b": 15}, {"a": 5, "b": 15})
    assert synthetic_counts("synthetic-only", 1.0, n) == ({"a": 0, "b": 0}, {"a": 10, "b": 30})


@pytest.mark.parametrize("text,needle", [
    (BASE + "\n[bogus]\nx = 1\n", "unknown key(s) bogus"),
    (BASE.replace("[generators.gan]", "[generators.nope]"), "unknown generator 'nope'"),
    (BASE.replace("[models.cnn]", "[models.notamodel123]"), "notamodel123"),
    (BASE.replace("ratios = [0, 0.5, 1.0]", "ratios = [0, -1]"), "out of range"),
    (BASE.replace("ratios = [0, 0.5, 1.0]", "protocols = ['add', 'replace']\nratios = [0, 1.5]"),
     "ratio 1.5 out of range for protocol replace"),
    (BASE.replace("[data]", "[data]\nsplit = 'weird'"), "valid: official, stratified, grouped"),
    (BASE.replace("epochs = 2", "epochs = 2\nepochz = 3"), "unknown key(s) epochz in [models.cnn]"),
])
def test_bad_spec_gives_clear_error(tmp_path, text, needle):
    with pytest.raises(UserInputError) as e:
        _spec(tmp_path, text)
    assert needle in str(e.value)


def test_unknown_generator_error_lists_valid_names(tmp_path):
    with pytest.raises(UserInputError) as e:
        _spec(tmp_path, BASE, generators="aug,stylegan9")
    assert "aug" in str(e.value) and "valid generators" in str(e.value)


def test_cli_overrides(tmp_path):
    spec = _spec(tmp_path, BASE, generators="aug,folder:/tmp/x", ratios="0,0.25", seeds="2", protocol="add,replace")
    assert [g.label for g in spec.generators] == ["aug", "folder:/tmp/x"]
    assert spec.generators[1].type == "folder" and spec.generators[1].config["path"] == "/tmp/x"
    assert spec.ratios == [0.0, 0.25] and spec.seeds == [7921, 2048] and spec.protocols == ["add", "replace"]
    assert spec.ratios_for("synthetic-only") == [0.25]


def test_summary_statistics_match_a_hand_computed_example():
    base = {1: 0.70, 2: 0.72, 3: 0.68, 4: 0.71}
    treat = {1: 0.74, 2: 0.73, 3: 0.71, 4: 0.75}
    d = [0.04, 0.01, 0.03, 0.04]
    mean_d = sum(d) / 4  # 0.03
    sd_d = math.sqrt(sum((x - mean_d) ** 2 for x in d) / 3)  # sqrt(0.0006/3)
    t = mean_d / (sd_d / 2)
    p_expected = 2 * sps.t.sf(abs(t), 3)
    pc = paired_compare(treat, base)
    assert pc.n_pairs == 4 and pc.delta == pytest.approx(0.03)
    assert pc.p_value == pytest.approx(p_expected, rel=1e-9)
    half = sps.t.ppf(0.975, 3) * sd_d / 2
    assert (pc.delta_ci_low, pc.delta_ci_high) == pytest.approx((0.03 - half, 0.03 + half))
    s = summarize([0.70, 0.72, 0.68, 0.71])
    assert s.mean == pytest.approx(0.7025) and s.std == pytest.approx(0.017078251, rel=1e-6)
    rows = [{"model": "m", "generator": g, "protocol": p, "ratio": r, "seed": k, "metric": "accuracy", "value": v, "pretrained": False}
            for g, p, r, vals in (("real-only", "none", 0.0, base), ("gan", "add", 0.5, treat)) for k, v in vals.items()]
    summ = {r["generator"]: r for r in summary_rows(rows, StatsConfig(test="t"))}
    assert summ["gan"]["delta"] == pytest.approx(0.03) and summ["gan"]["p_value"] == pytest.approx(p_expected)
    assert summ["gan"]["test"] == "paired t" and summ["gan"]["p_adjusted"] == pytest.approx(p_expected)  # family of one
    assert summ["gan"]["baseline_mean"] == pytest.approx(0.7025)
    assert "delta" not in summ["real-only"]
    # the default test: exact sign-flip; all four differences positive and only the pattern (+,+,+,+) and its
    # mirror reach |mean| >= 0.03 (flipping 0.01 gives 0.025), so p = 2/16
    summ = {r["generator"]: r for r in summary_rows(rows)}
    assert summ["gan"]["test"] == "sign-flip exact" and summ["gan"]["p_value"] == pytest.approx(2 / 16)
    assert summ["gan"]["p_min_attainable"] == pytest.approx(2 / 16)


def test_seed_pairs_use_only_common_seeds():
    """Two identical non-zero differences: never p = 0 and never a zero-width interval."""
    pc = paired_compare({1: 0.9, 2: 0.8, 3: 0.7}, {2: 0.7, 3: 0.6})
    assert pc.n_pairs == 2 and pc.delta == pytest.approx(0.1)
    assert math.isnan(pc.p_value) and math.isnan(pc.delta_ci_low) and math.isnan(pc.delta_ci_high)
    pc = paired_compare({1: 0.9, 2: 0.8, 3: 0.7}, {2: 0.7, 3: 0.6}, test="sign-flip")
    assert pc.p_value == pytest.approx(0.5) and pc.prob_improvement == 1.0
