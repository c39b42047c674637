"""Classification metrics with scikit-learn: accuracy, balanced accuracy, per-class and macro P/R/F1, ROC-AUC, confusion."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, classes: list[str]) -> tuple[dict[str, float], list[list[int]]]:
    """Metrics of predicted class probabilities ``proba`` (N, K) against integer labels.

    Returns ``(metrics, confusion)``: metrics holds accuracy, balanced_accuracy, precision/recall/f1 macro and per
    class (``precision_<class>``…), roc_auc (binary: positive = classes[1]; multi-class: one-vs-rest macro; NaN when
    a class is missing from ``y_true``) and n; confusion is the K x K matrix (rows = true, columns = predicted).
    """
    from sklearn import metrics as skm

    y_true = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    k = len(classes)
    labels = list(range(k))
    y_pred = proba.argmax(1)
    out: dict[str, float] = {"n": float(len(y_true))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["accuracy"] = float(skm.accuracy_score(y_true, y_pred))
        out["balanced_accuracy"] = float(skm.balanced_accuracy_score(y_true, y_pred))
        p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
        out["precision_macro"], out["recall_macro"], out["f1_macro"] = float(p.mean()), float(r.mean()), float(f.mean())
        for i, c in enumerate(classes):
            out[f"precision_{c}"], out[f"recall_{c}"], out[f"f1_{c}"] = float(p[i]), float(r[i]), float(f[i])
        present = np.unique(y_true)
        auc = math.nan
        if len(present) == k and k >= 2:
            try:
                if k == 2:
                    auc = float(skm.roc_auc_score(y_true, proba[:, 1]))
                else:
                    auc = float(skm.roc_auc_score(y_true, proba / proba.sum(1, keepdims=True), multi_class="ovr",
                                                  average="macro", labels=labels))
            except ValueError:
                auc = math.nan
        out["roc_auc"] = auc
    confusion = skm.confusion_matrix(y_true, y_pred, labels=labels).astype(int).tolist()
    return out, confusion


def jsonable(obj: Any) -> Any:
    """Replace NaN/inf floats by None (strict JSON), recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    return obj


def plot_curves(curves: list[dict[str, Any]], path: str, title: str = "") -> None:
    """Write train/val loss and accuracy per epoch as a PNG (matplotlib, Agg backend), atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..atomic import atomic_path

    ep = [c["epoch"] for c in curves]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key in zip(axes, ("loss", "accuracy")):
        for split in ("train", "val"):
            vals = [c.get(f"{split}_{key}") for c in curves]
            if any(v is not None for v in vals):
                ax.plot(ep, [math.nan if v is None else v for v in vals], marker="o", label=split)
        stages = sorted({c.get("stage", 1) for c in curves})
        for s in stages[1:]:
            first = min(c["epoch"] for c in curves if c.get("stage") == s)
            ax.axvline(first - 0.5, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
