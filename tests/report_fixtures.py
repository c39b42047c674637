"""A hand-written results folder (the three CSVs, provenance) with awkward names, for the report tests."""

from __future__ import annotations

import csv
import json
from pathlib import Path

NASTY_GEN = "my_gen#1 $&%{}~^\\ Δ"
NASTY_CLASS = "Größe_é"

QUALITY_HEADER = ["generator", "class", "feature_space", "extractor_id", "weights", "working_size", "resize_mode", "metric",
                  "value", "ci_low", "ci_high", "n_real", "n_fake", "reference"]
SUMMARY_BASE = ["model", "generator", "protocol", "ratio", "metric", "n", "mean", "std", "ci95_low", "ci95_high",
                "baseline_mean", "delta", "delta_ci95_low", "delta_ci95_high", "p_value", "test", "n_pairs", "pretrained"]
SUMMARY_NEW = ["p_adjusted", "p_adjust_method", "significant", "alpha"]


def _write(path: Path, header: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def make_results(root: Path, name: str = "thesis_run", adjusted: bool = True) -> Path:
    """A results folder: real-train + two generators (one with a LaTeX-hostile name), two classes, 3 seeds, two
    ratios, accuracy (a CI reaching past 1, a negative Δ) and per-class recall; ``adjusted`` adds p_adjusted etc."""
    root.mkdir(parents=True, exist_ok=True)
    q = []
    for gen, fd, n_fake in (("real-train", 3.1, 80), ("aug", 12.5, 96), (NASTY_GEN, 40.25, 96)):
        for cls in ("all", "eight", NASTY_CLASS):
            nf = n_fake if cls == "all" else n_fake // 2
            q.append(dict(generator=gen, **{"class": cls}, feature_space="domain", extractor_id="cnn-domain-16",
                          weights="trained on real train", working_size=16, resize_mode="squash", metric="fd", value=fd,
                          ci_low=fd * 0.9, ci_high=fd * 1.1, n_real=40 if cls == "all" else 20, n_fake=nf, reference="test"))
            q.append(dict(generator=gen, **{"class": cls}, feature_space="domain", metric="precision", value=0.71,
                          n_real=40 if cls == "all" else 20, n_fake=nf, reference="test"))
            q.append(dict(generator=gen, **{"class": cls}, feature_space="domain", metric="kid", value=-0.0042,
                          ci_low=-0.009, ci_high=0.0011, n_real=40 if cls == "all" else 20, n_fake=nf, reference="test"))
            if gen != "real-train":  # near-copies use every training image: a different n
                q.append(dict(generator=gen, **{"class": cls}, feature_space="domain", metric="nearcopy_share", value=0.05,
                              n_real=168 if cls == "all" else 84, n_fake=nf, reference="train"))
    _write(root / "quality.csv", QUALITY_HEADER, q)

    s, d = [], []
    for metric, base in (("accuracy", 0.80), (f"recall_{NASTY_CLASS}", 0.7), ("recall_eight", 0.82)):
        s.append(dict(model="cnn", generator="real-only", protocol="none", ratio=0.0, metric=metric, n=3, mean=base,
                      std=0.02, ci95_low=base - 0.05, ci95_high=base + 0.05, baseline_mean=base))
        for gen, ratio, delta, p in (("aug", 0.5, 0.06, 0.001), ("aug", 1.0, -0.03, 0.2), (NASTY_GEN, 0.5, 0.15, 0.01)):
            mean = base + delta
            row = dict(model="cnn", generator=gen, protocol="add", ratio=ratio, metric=metric, n=3, mean=mean, std=0.04,
                       ci95_low=mean - 0.09, ci95_high=mean + 0.09, baseline_mean=base, delta=delta,
                       delta_ci95_low=delta - 0.04, delta_ci95_high=delta + 0.04, p_value=p, test="sign-flip exact",
                       n_pairs=3, pretrained=False)
            if adjusted:
                p_adj = min(1.0, p * 3)
                row.update(p_adjusted=p_adj, p_adjust_method="holm", significant=str(p_adj < 0.05).lower(), alpha=0.05)
            s.append(row)
    _write(root / "summary.csv", SUMMARY_BASE + (SUMMARY_NEW if adjusted else []), s)
    for r in s:  # every seed's value, consistent with the summary's means (`ooc-bench report` recomputes it)
        for seed, off in ((1, -0.01), (2, 0.0), (3, 0.01)):
            d.append(dict(model=r["model"], generator=r["generator"], protocol=r["protocol"], ratio=r["ratio"], seed=seed,
                          metric=r["metric"], value=r["mean"] + off * (1 if r["generator"] == "real-only" else 2),
                          n_train_real=80, n_train_synthetic=int(80 * r["ratio"]), pretrained=False))
    _write(root / "downstream.csv", ["model", "generator", "protocol", "ratio", "seed", "metric", "value", "n_train_real",
                                     "n_train_synthetic", "pretrained"], d)
    (root / "provenance.json").write_text(json.dumps({"spec": {"name": name}, "git": {"commit": "abc123", "dirty": True},
                                                      "command": ["ooc-bench", "run", "--spec", "x.toml"]}))
    return root
