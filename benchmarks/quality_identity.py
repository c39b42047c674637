"""Before/after figures of issue 15 (items 1-3, 5) and class fidelity: one domain network, matched n, intervals.

On the built-in demo dataset (train 336, val 48, test 96 images, 32 px), with the demo's domain recipe (cnn, 8 epochs):

1. identity: two trainings of the same recipe that differ only in the torch thread count (what another worker or
   machine does). Before, both had one extractor id (config hash only), so features cached from one were compared
   with features of the other: FD between the *same* test images, FD(val, test) mixed vs unmixed. After: the ids.
2. floor: before, real train (n = 336) vs test while generators were scored at n = 168; after, the held-out val
   split vs test at the matched subset size, and a perfect "generator" (real train images) at that same n.
3. intervals: kid_std before (every subset = the whole set) and the 95 % intervals after.
4. class fidelity of the held-out floor set (the reference value) and of images labelled with the wrong class.

    nice -n 15 .venv/bin/python benchmarks/quality_identity.py [--data DIR] [--out results.json]

Prints one line per figure and the CPU time (user + sys) of each part.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="OOC-layout dataset (default: the built-in demo, generated once)")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args()

    import torch

    from ooc_bench.data import default_cache_dir, load_dataset, make_demo, make_split, split_arrays
    from ooc_bench.matrix.quality import (QUALITY_DEFAULTS, class_counts, domain_params, load_domain,
                                          matched_subset_sizes, quality_settings, score_sets, train_domain_network)
    from ooc_bench.metrics import FeatureCache, fid_from_features, kid

    data = Path(args.data) if args.data else default_cache_dir() / "demo" / "ooc_demo_seed0"
    if not (data / ".complete").exists() and args.data is None:
        make_demo(data, seed=0)
        (data / ".complete").write_text("ok\n")
    ds = make_split(load_dataset(data), keep_official=True, seed=0)
    classes = ds.classes
    tr, va, te = (split_arrays(ds, s, args.size) for s in ("train", "val", "test"))
    out: dict = {"n": {"train": len(tr[1]), "val": len(va[1]), "test": len(te[1])}}
    work = Path(tempfile.mkdtemp(prefix="quality-identity-"))
    q = quality_settings({"domain_epochs": args.epochs})
    params = domain_params(q, "demo", args.size)

    # 1. identity ------------------------------------------------------------------------------------------
    t0 = cpu()
    nets = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        info = train_domain_network(tr, classes, params, work / f"net-threads{threads}")
        nets[threads] = load_domain(work / f"net-threads{threads}")
        print(f"network trained with {threads} thread(s): weights sha {info['weights_sha']}, "
              f"hold-out accuracy {info['holdout_accuracy']:.3f}, extractor id {nets[threads].id()}")
    torch.set_num_threads(1)
    a, b = nets[1], nets[2]
    fa = {k: a.extract(x[0]) for k, x in (("val", va), ("test", te))}
    fb = {k: b.extract(x[0]) for k, x in (("val", va), ("test", te))}
    same = {"same_weights": a.provenance["weights_sha"] == b.provenance["weights_sha"],
            "fd_test_a_vs_test_b": fid_from_features(fa["test"], fb["test"]),
            "fd_val_a_vs_test_a": fid_from_features(fa["val"], fa["test"]),
            "fd_val_b_vs_test_a": fid_from_features(fb["val"], fa["test"]),
            "ids_after": [a.id(), b.id()]}
    cache = FeatureCache(work / "features")
    cache.get_or_compute(a, te[0], key="test")
    cache.get_or_compute(b, te[0], key="test")
    same["cache_passes_after"] = cache.passes  # 2: network b never reads network a's cached test features
    out["identity"] = same
    print(f"1. same recipe, 1 vs 2 threads: weights identical: {same['same_weights']}; FD(test by A, test by B) = "
          f"{same['fd_test_a_vs_test_b']:.4g} (same images); FD(val, test) one network {same['fd_val_a_vs_test_a']:.4g}, "
          f"mixed {same['fd_val_b_vs_test_a']:.4g}. Before: one id for both (config hash), so a cache mixed them; "
          f"after: ids {a.id()} / {b.id()}, cache passes {cache.passes} (no reuse across networks). "
          f"CPU {cpu() - t0:.1f} s")

    # 2. the floor at matched n ----------------------------------------------------------------------------
    t0 = cpu()
    ftr, fte, fva = a.extract(tr[0]), fa["test"], fa["val"]
    rng = np.random.default_rng(0)
    need = {c: int(round(0.5 * n)) for c, n in class_counts(tr[1], classes).items()}  # the demo's max ratio 0.5
    sub = [fid_from_features(ftr[np.concatenate([rng.choice(np.flatnonzero(tr[1] == i), need[c], replace=False)
                                                  for i, c in enumerate(classes)])], fte) for _ in range(20)]
    before = {"fd_train_full_vs_test": fid_from_features(ftr, fte), "n_train": len(ftr),
              "fd_train_at_generator_n_mean": float(np.mean(sub)), "fd_train_at_generator_n_sd": float(np.std(sub, ddof=1)),
              "generator_n": int(sum(need.values()))}
    sizes = matched_subset_sizes(q, class_counts(te[1], classes), class_counts(va[1], classes), need)
    floor = score_sets(te, va, classes, q, a, domain=a, size=args.size, subset_size=sizes, metrics=["fd", "kid", "class_fidelity"])
    perfect = score_sets(te, tr, classes, q, a, domain=a, size=args.size, subset_size=sizes, metrics=["fd", "kid", "class_fidelity"])
    pick = {r["metric"]: r for r in floor if r["class"] == "all"}
    pick_p = {r["metric"]: r for r in perfect if r["class"] == "all"}
    out["floor"] = {"before": before, "subset_size": sizes, "after_floor": pick, "after_real_train_same_n": pick_p}
    print(f"2. before: floor FD(train n={len(ftr)}, test) = {before['fd_train_full_vs_test']:.4g}, but the same real "
          f"images at the generators' n={before['generator_n']}: {before['fd_train_at_generator_n_mean']:.4g} ± "
          f"{before['fd_train_at_generator_n_sd']:.2g} (sd over 20 subsets). After: subset sizes {sizes} per side; "
          f"floor (val) FD {pick['fd']['value']:.4g} [{pick['fd']['ci_low']:.3g}, {pick['fd']['ci_high']:.3g}], "
          f"real train at the same n {pick_p['fd']['value']:.4g} [{pick_p['fd']['ci_low']:.3g}, {pick_p['fd']['ci_high']:.3g}]. "
          f"CPU {cpu() - t0:.1f} s")

    # 3. intervals -------------------------------------------------------------------------------------------
    mu, sd = kid(fte, fva, seed=0)  # before: subset size min(n_real, n_fake): the whole val set in every subset
    half = fte[np.random.default_rng(1).permutation(len(fte))[:len(fva)]]
    mu_eq, sd_eq = kid(half, fva, seed=0)  # equal n: every "subset" is both whole sets
    out["intervals"] = {"kid_before": [mu, sd], "kid_before_equal_n": [mu_eq, sd_eq], "kid_after": pick["kid"]}
    print(f"3. before: KID(test, val) {mu:.3g}, kid_std {sd:.2g} (100 subsets of {len(fva)}: always the whole val set, "
          f"only the test side varies); at equal n ({len(fva)} test vs {len(fva)} val) kid_std {sd_eq:.2g} (every "
          f"subset is both whole sets). After: KID {pick['kid']['value']:.3g} [{pick['kid']['ci_low']:.2g}, "
          f"{pick['kid']['ci_high']:.2g}] over {q['subsets']} subsets of {pick['kid']['n_real']} per side")

    # 4. class fidelity ----------------------------------------------------------------------------------------
    wrong = score_sets(te, (va[0], 1 - va[1]), classes, q, a, domain=a, size=args.size, metrics=["class_fidelity"])
    cf = {"floor_val": pick["class_fidelity"], "real_train_seen": pick_p["class_fidelity"],
          "wrong_labels": next(r for r in wrong if r["class"] == "all")}
    out["class_fidelity"] = cf
    print(f"4. class fidelity: held-out val (reference) {cf['floor_val']['value']:.3f} "
          f"[{cf['floor_val']['ci_low']:.3f}, {cf['floor_val']['ci_high']:.3f}] (n {cf['floor_val']['n_fake']}); "
          f"train images (seen in training) {cf['real_train_seen']['value']:.3f}; val with swapped labels "
          f"{cf['wrong_labels']['value']:.3f}")
    row = dict(pick["fd"])
    print("5. a quality row's identity: " + json.dumps({k: row.get(k) for k in ("feature_space", "extractor_id", "weights",
          "working_size", "resize_mode", "metric", "n_real", "n_fake", "subsets")}))
    out["row_identity"] = row
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    print(f"done ({time.strftime('%H:%M:%S')}); defaults {QUALITY_DEFAULTS['subsets']} subsets, "
          f"fraction {QUALITY_DEFAULTS['subset_fraction']}")


if __name__ == "__main__":
    main()
