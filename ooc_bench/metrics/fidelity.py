"""Class fidelity: how often a classifier trained on the real train split only assigns each image to its intended class."""

from __future__ import annotations

from typing import Any

import numpy as np


def wilson_interval(correct: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (scipy.stats.binomtest); (nan, nan) for n = 0."""
    if n <= 0:
        return float("nan"), float("nan")
    from scipy.stats import binomtest

    ci = binomtest(int(correct), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def class_fidelity(predicted: np.ndarray, intended: np.ndarray, classes: list[str]) -> dict[str, dict[str, Any]]:
    """Accuracy of ``predicted`` against ``intended`` class indices, overall (``all``) and for each intended class.

    Per class it is the share of the images meant to be class c that the classifier calls c (a recall); each
    entry has ``value``, a 95 % Wilson interval ``ci_low``/``ci_high`` and ``n``. Classes with no image are left out.
    """
    p, y = np.asarray(predicted, np.int64), np.asarray(intended, np.int64)
    if p.shape != y.shape:
        raise ValueError(f"predicted ({p.shape}) and intended ({y.shape}) labels differ in shape")
    out: dict[str, dict[str, Any]] = {}
    groups = [("all", np.ones(len(y), bool))] + [(c, y == i) for i, c in enumerate(classes)]
    for name, mask in groups:
        n = int(mask.sum())
        if n == 0:
            continue
        correct = int((p[mask] == y[mask]).sum())
        lo, hi = wilson_interval(correct, n)
        out[name] = {"value": correct / n, "ci_low": lo, "ci_high": hi, "n": n}
    return out
