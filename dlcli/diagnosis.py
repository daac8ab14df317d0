"""Fit diagnosis: does a trained model look underfit, overfit or a good fit?

The rule is the one from the course material (bias and variance):

- **underfit** (high bias): the training error is high, and the held-out error is close to it;
- **overfit** (high variance): the training error is low, but the held-out error is much higher;
- **underfit and overfit**: both at once (high training error, and a wide gap);
- **good fit**: neither.

"High" and "much higher" are the two thresholds of the ``diagnosis:`` config section
(:class:`dlcli.config.DiagnosisConfig`, defaults ``high_error: 0.10`` and ``max_gap: 0.05``).
The *error* is ``1 - accuracy`` when the run tracks accuracy, else the loss divided by a baseline
loss: that of always predicting the train split's mean label (class frequencies, or the mean
value), so that an error of 1 means "no better than guessing" whatever the loss; for ``mse`` this
is ``1 - R²``.

Pure Python (no TensorFlow, no NumPy): ``dlcli runs show`` uses it too and must stay instant.
The inputs are the rows of ``metrics.csv`` and the columns of ``history.csv``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from dlcli.config import DiagnosisConfig

UNDERFIT, OVERFIT, BOTH, GOOD, UNKNOWN = "underfit", "overfit", "underfit and overfit", "good fit", "unknown"


@dataclass
class Diagnosis:
    """The verdict and every number that led to it (all of it goes into ``diagnosis.json``)."""

    verdict: str
    measure: str  # "1 - accuracy" or "loss / baseline loss"
    train_error: float | None
    held_split: str | None  # the split compared with train: val, or test when there is no val
    held_error: float | None
    gap: float | None
    high_error: float
    max_gap: float
    baseline_loss: float | None = None
    best_epoch: int | None = None  # 1-based epoch with the lowest validation loss
    best_val_loss: float | None = None
    last_val_loss: float | None = None
    epochs: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"text": self.text()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Diagnosis:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})

    def text(self) -> str:
        """One line for the console: the verdict, the numbers behind it and the best epoch."""
        line = f"diagnosis: {self.verdict}"
        if self.verdict != UNKNOWN:
            line += f" ({self.reason()}; error = {self.measure})"
        else:
            line += f" ({'; '.join(self.notes) or 'not enough numbers'})"
        if self.best_epoch is not None:
            line += (f". Validation loss was lowest at epoch {self.best_epoch} of {self.epochs} "
                     f"({self.best_val_loss:.4g}")
            if self.last_val_loss is not None and self.best_epoch != self.epochs:
                line += f"; {self.last_val_loss:.4g} at the last epoch"
            line += ")"
        return line

    def reason(self) -> str:
        """Why the verdict: each number against its threshold."""
        assert self.train_error is not None and self.held_error is not None and self.gap is not None
        level = "high" if self.train_error > self.high_error else "low"
        sign = ">" if level == "high" else "<="
        width = "much higher" if self.gap > self.max_gap else "close"
        wsign = ">" if width == "much higher" else "<="
        return (f"training error {self.train_error:.4f} is {level} ({sign} {self.high_error:g}); "
                f"{self.held_split} error {self.held_error:.4f} is {width} "
                f"(gap {self.gap:+.4f} {wsign} {self.max_gap:g})")


def verdict_for(train_error: float, held_error: float, high_error: float, max_gap: float) -> str:
    """The verdict for two errors and two thresholds.

    Example:
        >>> verdict_for(0.01, 0.11, high_error=0.10, max_gap=0.05)
        'overfit'
    """
    high = train_error > high_error
    wide = held_error - train_error > max_gap
    if high and wide:
        return BOTH
    if high:
        return UNDERFIT
    if wide:
        return OVERFIT
    return GOOD


def _finite(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _errors(rows: dict[str, dict[str, Any]], measure: str, baseline: float | None) -> tuple[str | None, dict]:
    """Per-split errors for a measure: (description, {split: error})."""
    if measure in ("auto", "accuracy"):
        errors = {s: 1.0 - a for s, row in rows.items()
                  if (a := _finite(row.get("accuracy", row.get("acc")))) is not None}
        if errors or measure == "accuracy":
            return "1 - accuracy", errors
    if baseline is None or baseline <= 0:
        return None, {}
    errors = {s: loss / baseline for s, row in rows.items() if (loss := _finite(row.get("loss"))) is not None}
    return "loss / baseline loss", errors


def best_epoch(history: dict[str, list[Any]]) -> tuple[int | None, float | None, float | None]:
    """(1-based epoch with the lowest validation loss, that loss, the last epoch's) from a history."""
    values = [_finite(v) for v in history.get("val_loss") or []]
    finite = [(v, i) for i, v in enumerate(values) if v is not None]
    if not finite:
        return None, None, None
    low, index = min(finite)
    return index + 1, low, values[-1]


def diagnose(
    metrics: list[dict[str, Any]],
    history: dict[str, list[Any]],
    settings: DiagnosisConfig | None = None,
    baseline_loss: float | None = None,
) -> Diagnosis:
    """Diagnose a run from its scores per split and its per-epoch history.

    Args:
        metrics: rows of ``metrics.csv``: ``{"split": "train", "loss": .., "accuracy": ..}``.
        history: ``history.csv`` as columns: ``{"loss": [...], "val_loss": [...], ...}``.
        settings: the thresholds (``diagnosis:`` config section); defaults if None.
        baseline_loss: the loss of always predicting the train split's mean label; needed when
            the error is measured by the loss (runs without accuracy).

    Returns:
        The diagnosis; its verdict is ``unknown`` (with a note) when the numbers are missing.
    """
    settings = settings or DiagnosisConfig()
    rows = {str(r.get("split")): r for r in metrics}
    measure, errors = _errors(rows, settings.measure, baseline_loss)
    held = settings.split if settings.split in errors else next((s for s in ("val", "test") if s in errors), None)
    epoch, low, last = best_epoch(history)
    epochs = len(history.get("loss") or []) or None
    out = Diagnosis(verdict=UNKNOWN, measure=measure or settings.measure, train_error=errors.get("train"),
                    held_split=held, held_error=errors.get(held) if held else None, gap=None,
                    high_error=settings.high_error, max_gap=settings.max_gap, baseline_loss=baseline_loss,
                    best_epoch=epoch, best_val_loss=low, last_val_loss=last, epochs=epochs)
    if measure is None:
        out.notes.append("no accuracy was tracked and there is no baseline loss to compare the loss with")
    elif out.train_error is None:
        out.notes.append("the train split has no score")
    elif out.held_error is None:
        out.notes.append("there is no validation or test split to compare with")
    else:
        out.gap = out.held_error - out.train_error
        out.verdict = verdict_for(out.train_error, out.held_error, settings.high_error, settings.max_gap)
    return out


def rejudge(saved: dict[str, Any], high_error: float | None = None, max_gap: float | None = None) -> Diagnosis:
    """A saved diagnosis (``diagnosis.json``) judged again with other thresholds, for ``runs show``."""
    diag = Diagnosis.from_dict(saved)
    diag.high_error = diag.high_error if high_error is None else high_error
    diag.max_gap = diag.max_gap if max_gap is None else max_gap
    if diag.train_error is not None and diag.held_error is not None:
        diag.gap = diag.held_error - diag.train_error
        diag.verdict = verdict_for(diag.train_error, diag.held_error, diag.high_error, diag.max_gap)
    return diag
