"""Downstream statistics: hand-computed tests, adjustments and intervals; the null false-positive rates; the summary and verdict rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from ooc_bench.matrix.nullsim import NullRates, simulate_null
from ooc_bench.matrix.results import summary_rows, write_csv
from ooc_bench.matrix.stats import (StatsConfig, adjust, benjamini_hochberg, boot_metric, bootstrap_weights,
                                    hierarchical_bootstrap, holm, min_attainable_p, paired_compare, paired_t_p,
                                    sign_flip_p, summarize)

# ---------------------------------------------------------------- tests of one comparison


def test_sign_flip_matches_a_hand_enumeration():
    # d = (0.02, -0.01, 0.03): sum 0.04; the 8 sign patterns give sums ±0.06, ±0.04, ±0.02, 0, 0;
    # |sum| >= 0.04 for 4 of 8 patterns
    assert sign_flip_p([0.02, -0.01, 0.03]) == pytest.approx(0.5)
    # all four positive, and flipping the smallest (0.01) already lowers |mean| below 0.03: only ± the observed
    assert sign_flip_p([0.04, 0.01, 0.03, 0.04]) == pytest.approx(2 / 16)


def test_sign_flip_is_scipys_exact_permutation_test():
    rng = np.random.default_rng(3)
    for n in (3, 5, 7):
        d = rng.normal(0.01, 0.02, n)
        ref = sps.permutation_test((d,), lambda x, axis: np.mean(x, axis=axis), permutation_type="samples",
                                   n_resamples=10 ** 6, alternative="two-sided")  # >= 2**n: scipy enumerates
        assert sign_flip_p(d) == pytest.approx(ref.pvalue)


def test_identical_differences_are_never_certain():
    """Five seeds that each gain one test image of 120: p is 2/2**5, not 0; the t-interval is undefined, not zero-width."""
    d = np.full(5, 1 / 120)
    assert sign_flip_p(d) == pytest.approx(0.0625) == min_attainable_p(5)
    assert math.isnan(paired_t_p(d))
    treat = {s: 0.80 + 1 / 120 for s in range(5)}
    base = {s: 0.80 for s in range(5)}
    for test in ("sign-flip", "t"):
        pc = paired_compare(treat, base, test=test)
        assert not pc.p_value == 0.0 and math.isnan(pc.delta_ci_low) and math.isnan(pc.delta_ci_high)
    assert sign_flip_p(np.zeros(4)) == 1.0 and paired_t_p(np.zeros(4)) == 1.0
    s = summarize([0.9, 0.9, 0.9])
    assert s.std == 0.0 and math.isnan(s.ci_low)


def test_paired_t_matches_the_formula_and_scipy():
    d = np.array([0.04, 0.01, 0.03, 0.04])
    t = d.mean() / (d.std(ddof=1) / 2)
    assert paired_t_p(d) == pytest.approx(2 * sps.t.sf(t, 3))
    a, b = np.array([0.74, 0.73, 0.71, 0.75]), np.array([0.70, 0.72, 0.68, 0.71])
    assert paired_t_p(a - b) == pytest.approx(sps.ttest_rel(a, b).pvalue)


def test_min_attainable_p_and_probability_of_improvement():
    assert min_attainable_p(3) == 0.25 and min_attainable_p(10) == pytest.approx(2 / 1024)
    pc = paired_compare({1: 0.8, 2: 0.7, 3: 0.9, 4: 0.6}, {1: 0.7, 2: 0.7, 3: 0.8, 4: 0.7}, test="sign-flip")
    assert pc.prob_improvement == pytest.approx((1 + 0.5 + 1 + 0) / 4)  # wins, tie, win, loss


# ---------------------------------------------------------------- adjustments


def test_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    out = holm([0.01, math.nan, 0.04])  # NaN is not a member of the family: m = 2
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.04)
    rows = holm(np.array([[0.01, 0.04, 0.03, 0.005], [0.5, 0.01, 0.2, 0.03]]))
    assert rows[1] == pytest.approx([0.5, 0.04, 0.4, 0.09])


def test_benjamini_hochberg_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 -> p·4/k = 0.02, 0.02, 0.04, 0.04 -> running min from the top: unchanged
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert adjust([0.01, 0.2], "none") == pytest.approx([0.01, 0.2])
    with pytest.raises(ValueError):
        adjust([0.1], "bonferroni-ish")


# ---------------------------------------------------------------- hierarchical bootstrap


def test_bootstrap_statistic_by_hand():
    correct = np.array([[1, 0, 1, 1], [0, 0, 0, 1]], float)
    labels = np.array([0, 0, 1, 1])
    ws = np.array([[1.0, 1.0], [2.0, 0.0]])  # resample 1: both seeds; resample 2: seed 0 twice
    wi = np.array([[1.0, 1.0, 1.0, 1.0], [0.0, 2.0, 1.0, 1.0]])
    # resample 1: per-image means (0.5, 0, 0.5, 1) -> accuracy 0.5; resample 2: seed 0 on images 1,1,2,3 -> 2/4
    assert boot_metric(correct, labels, "accuracy", ws, wi) == pytest.approx([0.5, 0.5])
    # balanced: resample 1: class 0 recall (0.5+0)/2, class 1 (0.5+1)/2 -> 0.5; resample 2: class 0 0/2, class 1 2/2 -> 0.5
    assert boot_metric(correct, labels, "balanced_accuracy", ws, wi) == pytest.approx([0.5, 0.5])
    # images drawn (0, 1, 2, 2): resample 1: class 0 (0.5+0)/2 = 0.25, class 1 0.5 -> 0.375;
    # resample 2 (seed 0): class 0 (1+0)/2 = 0.5, class 1 1 -> 0.75
    wi2 = np.array([[1.0, 1.0, 2.0, 0.0], [1.0, 1.0, 2.0, 0.0]])
    assert boot_metric(correct, labels, "balanced_accuracy", ws, wi2) == pytest.approx([0.375, 0.75])


def test_bootstrap_interval_has_the_binomial_width_and_grows_with_seed_spread():
    rng = np.random.default_rng(0)
    n = 400
    labels = np.arange(n) % 2
    one_seed = (rng.random((1, n)) < 0.8).astype(float)
    lo, hi = hierarchical_bootstrap(one_seed, labels, n_resamples=2000)
    acc = one_seed.mean()
    expected = 2 * 1.96 * math.sqrt(acc * (1 - acc) / n)  # the binomial interval of one test set
    assert hi - lo == pytest.approx(expected, rel=0.15) and lo < acc < hi
    # five seeds that disagree a lot (accuracies 0.6 … 0.95): the interval must be wider than the test-set part alone
    spread = np.stack([(rng.random(n) < q) for q in (0.6, 0.7, 0.8, 0.9, 0.95)]).astype(float)
    lo2, hi2 = hierarchical_bootstrap(spread, labels, n_resamples=2000)
    assert hi2 - lo2 > 1.5 * expected


def test_paired_bootstrap_delta_keeps_the_pairing():
    n = 120
    labels = np.arange(n) % 2
    base = np.zeros((5, n))
    base[:, :96] = 1  # every seed right on the same 96 images
    cell = base.copy()
    cell[:, 100] = 1  # every seed gains the same one image: +1/120
    lo, hi = hierarchical_bootstrap(cell, labels, baseline=base, n_resamples=2000)
    assert lo >= 0 and 0 < hi and hi - lo > 0  # not a zero-width "certain" interval
    assert lo <= 1 / n <= hi
    assert hierarchical_bootstrap(base, labels, baseline=base) == (0.0, 0.0)  # identical predictions: no difference
    ws, wi = bootstrap_weights(5, n, 10, seed=1)
    assert ws.shape == (10, 5) and wi.shape == (10, n) and (ws.sum(1) == 5).all() and (wi.sum(1) == n).all()
    assert (bootstrap_weights(5, n, 10, seed=1)[1] == wi).all()  # seeded


# ---------------------------------------------------------------- null simulation (item 8)


def _fwer_bound(r: NullRates, method: str) -> float:
    return r.any_cell[method] - 3 * NullRates.mc_se(r.any_cell[method], r.reps)


def test_family_wise_error_is_controlled_under_the_null():
    """No generator helps: at most 5 % of runs colour any cell under Holm (and, here, BH), within 3 Monte-Carlo SE;
    without adjustment the same data colour a cell far more often, so the check could fail."""
    for n_cells, n_seeds, test, reps in ((8, 5, "t", 4000), (80, 5, "t", 1500), (8, 10, "sign-flip", 2000)):
        r = simulate_null(n_cells, n_seeds, reps, test=test, seed=n_cells + n_seeds)
        for method in ("holm", "bh"):
            assert _fwer_bound(r, method) <= 0.05, (n_cells, n_seeds, test, method, r.any_cell)
            assert r.verdict[method] <= r.any_cell[method]
        assert r.any_cell["none"] > 0.2  # raw p < 0.05 over a family: not controlled
        per = r.per_cell["none"]  # each raw test alone is calibrated (<= alpha within MC error)
        assert per <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / (reps * n_cells))
        assert r.legacy_any_cell > 0.2


def test_exact_sign_flip_with_five_seeds_cannot_reach_005():
    r = simulate_null(8, 5, 500, test="sign-flip")
    assert r.any_cell == {"holm": 0.0, "bh": 0.0, "none": 0.0}  # 2/32 = 0.0625 > 0.05, stated in every verdict


# ---------------------------------------------------------------- summary rows and verdict


def _downstream(values: dict[tuple[str, float], list[float]], val: dict[tuple[str, float], list[float]] | None = None):
    rows = []
    for (gen, ratio), vals in values.items():
        protocol = "none" if gen == "real-only" else "add"
        for seed, v in enumerate(vals):
            rows.append({"model": "m", "generator": gen, "protocol": protocol, "ratio": ratio, "seed": seed,
                         "split": "test", "metric": "accuracy", "value": v, "pretrained": False})
            if val and (gen, ratio) in val:
                rows.append({"model": "m", "generator": gen, "protocol": protocol, "ratio": ratio, "seed": seed,
                             "split": "val", "metric": "accuracy", "value": val[(gen, ratio)][seed], "pretrained": False})
    return rows


def test_summary_adjusts_per_family_and_marks_significance():
    base = [0.70, 0.71, 0.69, 0.72, 0.70, 0.71, 0.70, 0.69, 0.70, 0.71]
    up = [b + 0.05 + 0.001 * i for i, b in enumerate(base)]  # every seed better: p = 2/1024
    noise = [b + (0.01 if i % 2 else -0.012) for i, b in enumerate(base)]
    rows = _downstream({("real-only", 0.0): base, ("gan", 0.5): up, ("gan", 1.0): noise})
    summ = {(r["generator"], r["ratio"]): r for r in summary_rows(rows)}
    g = summ[("gan", 0.5)]
    assert g["p_value"] == pytest.approx(2 / 1024) and g["p_adjusted"] == pytest.approx(2 * 2 / 1024)  # Holm, m = 2
    assert g["significant"] == "true" and g["family_size"] == 2 and g["p_adjust_method"] == "holm"
    assert summ[("gan", 1.0)]["significant"] == "false" and g["prob_improvement"] == 1.0
    assert g["n_generator_fits"] == 1 and summ[("real-only", 0.0)]["n_generator_fits"] == 0
    none = {(r["generator"], r["ratio"]): r for r in summary_rows(rows, StatsConfig(p_adjust="none"))}
    assert none[("gan", 0.5)]["p_adjusted"] == pytest.approx(2 / 1024)


def test_summary_bootstrap_from_prediction_files(tmp_path):
    """Per-image prediction files give boot_ci95_* (cell) and boot_delta_ci95_* (paired by seed and image id)."""
    rng = np.random.default_rng(0)
    n, seeds = 60, [0, 1, 2]
    labels = rng.integers(0, 2, n)
    ids = [f"img{i:03d}.png" for i in range(n)]
    rows = []
    for gen, flip in (("real-only", 0.25), ("gan", 0.15)):
        for s in seeds:
            pred = np.where(rng.random(n) < flip, 1 - labels, labels)
            order = rng.permutation(n) if gen == "gan" else np.arange(n)  # another row order: pairing is by id
            rel = f"predictions/{gen}-{s}.csv"
            write_csv(tmp_path / rel, ["image_id", "label", "predicted"],
                      [{"image_id": ids[i], "label": int(labels[i]), "predicted": int(pred[i])} for i in order])
            rows.append({"model": "m", "generator": gen, "protocol": "none" if gen == "real-only" else "add",
                         "ratio": 0.0 if gen == "real-only" else 0.5, "seed": s, "split": "test", "metric": "accuracy",
                         "value": float((pred == labels).mean()), "pretrained": False, "predictions": rel})
    summ = {r["generator"]: r for r in summary_rows(rows, run_dir=tmp_path)}
    g = summ["gan"]
    assert g["boot_ci95_low"] < g["mean"] < g["boot_ci95_high"] and g["boot_resamples"] == 2000
    assert g["boot_delta_ci95_low"] < g["delta"] < g["boot_delta_ci95_high"]
    assert summ["real-only"]["boot_ci95_low"] < summ["real-only"]["mean"]
    assert "boot_ci95_low" not in summary_rows(rows)[0]  # no run folder: no per-image data, empty columns
    (tmp_path / "predictions" / "gan-1.csv").unlink()
    again = {r["generator"]: r for r in summary_rows(rows, run_dir=tmp_path)}
    assert "boot_ci95_low" not in again["gan"] and "boot_ci95_low" in again["real-only"]


def test_verdict_selects_on_validation_and_reports_the_adjusted_test_result():
    from ooc_bench.matrix.report import verdicts

    base = [0.70, 0.71, 0.69, 0.72, 0.70]
    good_test = [b + 0.06 for b in base]  # best on test, but not on validation
    val = {("real-only", 0.0): [0.7] * 5, ("gan", 0.5): [0.70, 0.69, 0.70, 0.71, 0.70], ("gan", 1.0): [0.75] * 5}
    rows = _downstream({("real-only", 0.0): base, ("gan", 0.5): good_test, ("gan", 1.0): [b + 0.01 for b in base]}, val)
    (line,) = verdicts(rows)
    assert "picked by validation mean" in line and "gan (add r=1)" in line
    assert "Holm-adjusted p=" in line and "over 2 comparisons" in line and "not significant" in line
    assert "smallest attainable p is 0.0625" in line  # 5 seeds: nothing can be significant at 0.05
    (line,) = verdicts([r for r in rows if r["split"] == "test"])
    assert "picked by TEST mean" in line and "gan (add r=0.5)" in line


# ---------------------------------------------------------------- generator seeds (item 5)

GEN_SPEC = """
name = "t"
[data]
image_size = 16
[generators.aug]
[models.cnn]
epochs = 2
[matrix]
ratios = [0, 0.5]
seeds = [1, 2, 3]
{extra}
"""


def _plan(tmp_path, extra: str = "", name: str = "s.toml"):
    from ooc_bench.matrix import SplitInfo, build_plan, load_spec

    p = tmp_path / name
    p.write_text(GEN_SPEC.format(extra=extra))
    split = SplitInfo(manifest="split.csv", key="k", classes=["a", "b"], train_counts={"a": 10, "b": 12})
    return load_spec(p), build_plan(load_spec(p), split)


def test_generator_seeds_refit_per_seed_paired_by_position_and_keep_old_keys(tmp_path):
    _, one = _plan(tmp_path)
    _, same = _plan(tmp_path, "generator_seeds = [0]", "same.toml")
    assert [j.key for j in one.jobs] == [j.key for j in same.jobs]  # the default is one fit with fit_seed 0
    spec, three = _plan(tmp_path, "generator_seeds = [0, 5, 6]", "three.toml")
    fits = three.by_kind("fit")
    assert sorted(j.params["seed"] for j in fits) == [0, 5, 6]
    samples = {j.params["generator_seed"]: j for j in three.by_kind("sample")}
    assert sorted(j.params["seed"] for j in samples.values()) == [0, 5, 6]  # sample_seed + (g - fit_seed)
    cells = [j for j in three.by_kind("cell") if j.params["generator"] == "aug"]
    assert {(j.params["seed"], j.params["generator_seed"]) for j in cells} == {(1, 0), (2, 5), (3, 6)}
    assert all(j.params["sample_key"] == samples[j.params["generator_seed"]].key for j in cells)
    # only what runs differently gets a new key: seed 1 (generator seed 0) and every baseline are shared
    shared = {j.key for j in one.jobs} & {j.key for j in three.jobs}
    assert {j.key for j in three.by_kind("cell") if j.params["seed"] == 1 or j.params["generator"] == "real-only"} <= shared
    assert len(three.by_kind("score")) == len(one.by_kind("score"))  # quality scores the first generator seed


def test_generator_seeds_must_pair_with_the_classifier_seeds(tmp_path):
    from ooc_bench.errors import UserInputError

    with pytest.raises(UserInputError, match="generator_seeds"):
        _plan(tmp_path, "generator_seeds = [0, 1]")
    with pytest.raises(UserInputError, match="stats"):
        _plan(tmp_path, "[stats]\np_adjust = 'bonferroni'")


def test_summary_counts_generator_fits():
    rows = _downstream({("real-only", 0.0): [0.7, 0.71, 0.69], ("gan", 0.5): [0.72, 0.7, 0.7]})
    for r in rows:
        r["generator_seed"] = "" if r["generator"] == "real-only" else r["seed"] * 10
    summ = {r["generator"]: r for r in summary_rows(rows)}
    assert summ["gan"]["n_generator_fits"] == 3 and summ["real-only"]["n_generator_fits"] == 0


def test_recomputing_the_summary_from_a_broken_downstream_csv_is_a_clear_error(tmp_path):
    from ooc_bench.errors import UserInputError
    from ooc_bench.matrix.results import write_summary

    with pytest.raises(UserInputError, match="downstream.csv not found"):
        write_summary(tmp_path)
    (tmp_path / "downstream.csv").write_text("model,generator\nm,g\n")
    with pytest.raises(UserInputError, match="missing column"):
        write_summary(tmp_path)
    (tmp_path / "downstream.csv").write_text("model,generator,protocol,ratio,seed,metric,value\nm,g,add,half,1,accuracy,0.5\n")
    with pytest.raises(UserInputError, match="line 2"):
        write_summary(tmp_path)
