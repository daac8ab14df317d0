"""Scores of a reloaded model: the run's own loss and metrics (Keras, as ``train`` wrote metrics.csv), and
scikit-learn's: confusion matrix, per-class report, F1 and ROC AUC for classification; MAE, MSE, RMSE and R²
for regression."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dlcli.evaluate.reload import TrainedRun
from dlcli.model.scoring import keras_scores
from dlcli.runs import read_metrics


def class_probabilities(outputs: np.ndarray, encoding: str) -> np.ndarray:
    """Model outputs as one probability per class (a sigmoid output p becomes [1 - p, p])."""
    out = np.asarray(outputs, dtype=np.float64)
    if encoding == "binary":
        p = out.reshape(-1)
        if p.min() < 0 or p.max() > 1:  # a linear output: logits
            p = 1.0 / (1.0 + np.exp(-p))
        return np.stack([1.0 - p, p], axis=1)
    if out.min() < 0 or not np.allclose(out.sum(axis=1), 1.0, atol=1e-3):  # not softmax: treat as logits
        out = np.exp(out - out.max(axis=1, keepdims=True))
    return out / out.sum(axis=1, keepdims=True)


def true_indices(y: np.ndarray, encoding: str) -> np.ndarray:
    """Encoded labels back to class indices."""
    y = np.asarray(y)
    if encoding == "one_hot":
        return y.argmax(axis=1)
    return y.reshape(-1).astype(np.int64)


def classification_scores(y_true: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Confusion matrix, per-class report (scikit-learn's ``classification_report``), F1 and ROC AUC (binary, or
    one-vs-rest) with scikit-learn."""
    from sklearn import metrics as skm  # lazy: start-up speed

    k = len(class_names)
    labels = list(range(k))
    y_pred = probs.argmax(axis=1)
    matrix = skm.confusion_matrix(y_true, y_pred, labels=labels)
    report = skm.classification_report(y_true, y_pred, labels=labels, output_dict=True, zero_division=0)
    per_class = [{"class": name, **_report_row(report[str(i)]), "roc_auc": _auc(y_true == i, probs[:, i])}
                 for i, name in enumerate(class_names)]
    per_class += [{"class": f"{average} avg", **_report_row(report[f"{average} avg"])}
                  for average in ("macro", "weighted")]
    if k == 2:
        auc = _auc(y_true == 1, probs[:, 1])
    else:
        aucs = [row["roc_auc"] for row in per_class[:k]]
        auc = float(np.mean(aucs)) if all(a is not None for a in aucs) else None
    scores = {"samples": len(y_true), "accuracy": float(skm.accuracy_score(y_true, y_pred)),
              "f1_macro": per_class[k]["f1"], "f1_weighted": per_class[k + 1]["f1"],
              "roc_auc" if k == 2 else "roc_auc_ovr_macro": auc}
    return {"scores": scores, "per_class": per_class, "matrix": matrix.tolist()}


def _report_row(row: dict[str, float]) -> dict[str, Any]:
    """One row of ``classification_report(output_dict=True)`` with dlcli's column names."""
    return {"precision": float(row["precision"]), "recall": float(row["recall"]), "f1": float(row["f1-score"]),
            "support": int(row["support"])}


def _auc(is_class: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC of one class against the rest; None when the labels hold only one side."""
    from sklearn.metrics import roc_auc_score  # lazy: start-up speed

    if is_class.all() or not is_class.any():
        return None
    return float(roc_auc_score(is_class, score))


def regression_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """MAE, MSE, RMSE and R² with scikit-learn."""
    from sklearn import metrics as skm  # lazy: start-up speed

    y_true, y_pred = np.asarray(y_true, dtype=np.float64).reshape(-1), np.asarray(y_pred, np.float64).reshape(-1)
    mse = float(skm.mean_squared_error(y_true, y_pred))
    r2 = float(skm.r2_score(y_true, y_pred)) if len(y_true) > 1 else None
    return {"scores": {"samples": len(y_true), "mae": float(skm.mean_absolute_error(y_true, y_pred)), "mse": mse,
                       "rmse": math.sqrt(mse), "r2": r2}}


def keras_metrics_row(run: TrainedRun, x: np.ndarray, y: np.ndarray,
                      split: str) -> tuple[dict[str, Any], np.ndarray]:
    """The run's loss and metrics (:func:`~dlcli.model.scoring.keras_scores`, the definition ``train`` wrote
    metrics.csv with, the same on every backend) as one row with the columns of the run's own metrics.csv;
    and the model's predictions."""
    scores, outputs = keras_scores(run.model, run.cfg, run.prep, x, y, run.cfg.fit.batch_size)
    saved = read_metrics(run.path)
    columns = [c for c in (saved[0] if saved else {}) if c != "split"] or list(scores)
    columns += [c for c in scores if c not in columns]
    return {"split": split, **{c: scores.get(c) for c in columns}}, outputs
