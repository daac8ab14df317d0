"""The trivial baseline: what a model that ignores its inputs scores, the yardstick for every run.

Classification: it always predicts the train split's class shares, so its accuracy is that of always
answering the train split's majority class, and its AUC is 0.5. Regression: it always predicts the
train split's mean target, so its R² is 0. It is scored by Keras with the run's own loss and metrics
(:func:`dlcli.model.scoring.score_predictions` on that constant, repeated for every sample), on every split:
``metrics.csv`` gets its row on the test split (``split = baseline``) and the fit diagnosis measures each
error against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dlcli.config import ExperimentConfig
from dlcli.data import Dataset, Preprocessing
from dlcli.runs import BASELINE_SPLIT
from dlcli.model.scoring import score_predictions, scorer


def trivial_prediction(y_train: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """What the trivial predictor outputs for every sample, encoded like the model's output.

    Args:
        y_train: the train split's labels, encoded for the loss (``prep.encoding``).
        prep: the run's preprocessing (task, encoding, class names).

    Returns:
        One value per model output: class shares (``sparse`` / ``one_hot``), the share of class 1
        (``binary``) or the mean target (``none``), float32.

    Example:
        >>> trivial_prediction(np.array([0, 2, 2, 2]), prep)  # sparse, 3 classes
        array([0.25, 0.  , 0.75], dtype=float32)
    """
    if prep.encoding == "sparse":
        counts = np.bincount(np.asarray(y_train, dtype=np.int64).ravel(), minlength=len(prep.class_names or []))
        return (counts / max(1, counts.sum())).astype(np.float32)
    y = np.asarray(y_train, dtype=np.float64).reshape(len(y_train), -1)
    return y.mean(axis=0).astype(np.float32)


def describe(prediction: np.ndarray, prep: Preprocessing) -> str:
    """What the trivial predictor predicts, in words (for the note under the metrics table)."""
    if prep.task == "regression":
        return f"the train split's mean target, {float(prediction[0]):.4g}"
    names = prep.class_names or []
    if prep.encoding == "binary":
        share = float(prediction[0])
        index, share = (1, share) if share > 0.5 else (0, 1 - share)
    else:
        index = int(np.argmax(prediction))
        share = float(prediction[index])
    name = names[index] if index < len(names) else str(index)
    return f"the train split's class shares, so it always answers the majority class {name!r} ({share:.0%} of train)"


@dataclass
class Baseline:
    """The trivial predictor's scores on each split, and which split ``metrics.csv`` reports."""

    rows: list[dict[str, Any]]  # like metrics.csv's: {"split": "train", "loss": .., "accuracy": ..}
    predicts: str  # in words, see describe()

    @property
    def split(self) -> str | None:
        """The split reported beside the run's metrics: test, else val, else train."""
        present = {row["split"] for row in self.rows}
        return next((s for s in ("test", "val", "train") if s in present), None)

    def row(self) -> dict[str, Any]:
        """The ``metrics.csv`` row: ``split = baseline`` and its scores on :attr:`split`."""
        scores = next((row for row in self.rows if row["split"] == self.split), {})
        return {**scores, "split": BASELINE_SPLIT}

    def run_info(self) -> dict[str, Any]:
        """What ``run.json`` records about it when the run finishes."""
        return {"baseline_split": self.split, "baseline_predicts": self.predicts,
                "baseline_metrics": {k: v for k, v in self.row().items() if k != "split"}}


def score_baseline(cfg: ExperimentConfig, data: Dataset, columns: list[str] | None = None) -> Baseline:
    """Score the trivial predictor (fitted on ``data.y_train``) on every non-empty split with Keras.

    The target is in its own units: a regression model that ends in a ``Rescaling`` layer is still
    compared with the plain mean of ``data.y_train``.

    Args:
        cfg: the run's config (its loss and metrics).
        data: the prepared splits.
        columns: the scores to keep, in this order: the columns of the model's own metrics rows
            (default: all of Keras's, in its order).
    """
    prediction = trivial_prediction(data.y_train, data.prep)
    scoring = scorer(cfg, data.prep, prediction.shape)
    labels = {"train": data.y_train, "val": data.y_val, "test": data.y_test}
    rows = []
    for split, y in labels.items():
        if y is None or len(y) == 0:
            continue
        scores = score_predictions(scoring, np.broadcast_to(prediction, (len(y), *prediction.shape)), y)
        # The trivial model has no regularizers: where the run's rows split its loss, all of it is data loss.
        scores = {**scores, "data_loss": scores["loss"], "regularization": 0.0} if columns else scores
        rows.append({"split": split, **{k: float(scores[k]) for k in columns or scores if k in scores}})
    return Baseline(rows=rows, predicts=describe(prediction, data.prep))
