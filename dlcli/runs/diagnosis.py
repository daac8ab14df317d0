"""Fit diagnosis: does a trained model look underfit, overfit or a good fit?

The rule is the one from the course material (bias and variance), with each error measured against
the trivial baseline's (``dlcli/model/baseline.py``: a model that ignores its inputs and always predicts the
train split's class shares, or its mean target) on the same split:

- the *relative error* of a split is the model's error divided by the baseline's: 0 is perfect, 1 is
  no better than the baseline;
- **underfit** (high bias): the training relative error is high, and the held-out one is close to it;
- **overfit** (high variance): the training relative error is low, but the held-out one is much higher;
- **underfit and overfit**: both at once (high training relative error, and a wide gap);
- **good fit**: neither.

"High" and "much higher" are the two thresholds of the ``diagnosis:`` config section
(:class:`dlcli.config.DiagnosisConfig`, defaults ``high_error: 0.5`` and ``max_gap: 0.15``).
The *error* is ``1 - accuracy`` when the run tracks accuracy, else the loss (for ``mse`` the relative
error is ``1 - R²``). A fixed threshold on the error itself would call every model of a hard problem
underfit: on Titanic, a good model's training error of 0.17 is high next to 0.10, but it is 0.45 of
the 0.38 that always answering the majority class gets wrong.

Pure Python (no TensorFlow, no NumPy): ``dlcli runs show`` uses it too and must stay instant.
The inputs are the rows of ``metrics.csv``, the baseline's scores per split (computed in ``dlcli.train``,
saved in ``diagnosis.json``) and the columns of ``history.csv``.
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
    measure: str  # "1 - accuracy" or "loss" (in diagnosis.json files from before baselines: "loss / baseline loss")
    train_error: float | None  # the model's error on the train split
    held_split: str | None  # the split compared with train: val, or test when there is no val
    held_error: float | None
    gap: float | None  # held-out relative error minus training relative error
    high_error: float  # the thresholds, on relative errors
    max_gap: float
    train_baseline: float | None = None  # the trivial baseline's error on train (same measure)
    held_baseline: float | None = None  # ... and on the held-out split
    # False in diagnosis.json files from before baselines: their thresholds applied to the errors themselves.
    versus_baseline: bool = False
    best_epoch: int | None = None  # 1-based epoch with the lowest validation loss
    best_val_loss: float | None = None
    last_val_loss: float | None = None
    epochs: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def train_relative(self) -> float | None:
        """The training error the thresholds judge: error / baseline error (the error itself in an old file)."""
        return self._judged(self.train_error, self.train_baseline)

    @property
    def held_relative(self) -> float | None:
        return self._judged(self.held_error, self.held_baseline)

    def _judged(self, error: float | None, baseline: float | None) -> float | None:
        if not self.versus_baseline or error is None:
            return error
        return error / baseline if baseline else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"train_relative": self.train_relative, "held_relative": self.held_relative,
                               "text": self.text()}

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
        """Why the verdict: each number against its threshold, e.g. ``training error 0.170 = 0.447 of the
        baseline's 0.380, low (<= 0.5); val error 0.200 = 0.526 of the baseline's 0.380, close (gap +0.079
        <= 0.15)``."""
        train, held = self.train_relative, self.held_relative
        assert train is not None and held is not None and self.gap is not None
        level = "high" if train > self.high_error else "low"
        sign = ">" if level == "high" else "<="
        width = "much higher" if self.gap > self.max_gap else "close"
        wsign = ">" if width == "much higher" else "<="
        if not self.versus_baseline:
            return (f"training error {train:.4f} is {level} ({sign} {self.high_error:g}); "
                    f"{self.held_split} error {held:.4f} is {width} (gap {self.gap:+.4f} {wsign} {self.max_gap:g})")
        return (f"training error {_number(self.train_error)} = {train:.3f} of the baseline's "
                f"{_number(self.train_baseline)}, {level} ({sign} {self.high_error:g}); {self.held_split} error "
                f"{_number(self.held_error)} = {held:.3f} of the baseline's {_number(self.held_baseline)}, {width} "
                f"(gap {self.gap:+.3f} {wsign} {self.max_gap:g})")


def _number(value: float | None) -> str:
    """An error for the console: three decimals, or whole numbers for large losses (mse in target units²)."""
    return "?" if value is None else f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"


def verdict_for(train_error: float, held_error: float, high_error: float, max_gap: float) -> str:
    """The verdict for two (relative) errors and two thresholds.

    Example:
        >>> verdict_for(0.05, 0.40, high_error=0.5, max_gap=0.15)
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


ACCURACY, LOSS = "1 - accuracy", "loss"


def _accuracy(row: dict[str, Any]) -> float | None:
    return _finite(row.get("accuracy", row.get("acc")))


def _measure(rows: list[dict[str, Any]], setting: str) -> str:
    """What the error is: ``1 - accuracy`` (``auto``: when the run tracks accuracy) or the loss."""
    if setting == "accuracy" or setting == "auto" and any(_accuracy(row) is not None for row in rows):
        return ACCURACY
    return LOSS


def _errors(rows: list[dict[str, Any]], measure: str) -> dict[str, float]:
    """{split: error} for the rows that have a number for the measure."""
    values = {str(row.get("split")): _accuracy(row) if measure == ACCURACY else _finite(row.get("loss"))
              for row in rows}
    return {split: 1.0 - v if measure == ACCURACY else v for split, v in values.items() if v is not None}


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
    baseline: list[dict[str, Any]] | None = None,
) -> Diagnosis:
    """Diagnose a run from its scores per split, the trivial baseline's and its per-epoch history.

    Args:
        metrics: rows of ``metrics.csv``: ``{"split": "train", "loss": .., "accuracy": ..}``.
        history: ``history.csv`` as columns: ``{"loss": [...], "val_loss": [...], ...}``.
        settings: the thresholds (``diagnosis:`` config section); defaults if None.
        baseline: the trivial baseline's scores on each split, rows like ``metrics`` (``Baseline.rows``
            in ``dlcli/model/baseline.py``); without them the verdict is ``unknown``.

    Returns:
        The diagnosis; its verdict is ``unknown`` (with a note) when the numbers are missing.

    Example:
        >>> diagnose([{"split": "train", "accuracy": 0.83}, {"split": "val", "accuracy": 0.79}], {},
        ...          baseline=[{"split": "train", "accuracy": 0.62}, {"split": "val", "accuracy": 0.62}]).verdict
        'good fit'
    """
    settings = settings or DiagnosisConfig()
    measure = _measure(metrics, settings.measure)
    errors, base = _errors(metrics, measure), _errors(baseline or [], measure)
    held = settings.split if settings.split in errors else next((s for s in ("val", "test") if s in errors), None)
    epoch, low, last = best_epoch(history)
    epochs = len(history.get("loss") or []) or None
    out = Diagnosis(verdict=UNKNOWN, measure=measure, train_error=errors.get("train"), held_split=held,
                    held_error=errors.get(held) if held else None, gap=None, high_error=settings.high_error,
                    max_gap=settings.max_gap, train_baseline=base.get("train"),
                    held_baseline=base.get(held) if held else None, versus_baseline=True,
                    best_epoch=epoch, best_val_loss=low, last_val_loss=last, epochs=epochs)
    if out.train_error is None:
        out.notes.append("no accuracy was tracked (add accuracy to compile.metrics, or set diagnosis.measure: loss)"
                         if measure == ACCURACY and not errors else "the train split has no score")
    elif out.held_error is None:
        out.notes.append("there is no validation or test split to compare with")
    elif out.train_baseline is None or out.held_baseline is None:
        out.notes.append("there are no baseline scores to measure the errors against (a run from before dlcli "
                         "scored the trivial baseline)")
    elif out.train_relative is None or out.held_relative is None:
        perfect = "train" if out.train_relative is None else held
        out.notes.append(f"the baseline makes no errors on {perfect} (one class only?), so no error can be "
                         f"measured against it")
    else:
        out.gap = out.held_relative - out.train_relative
        out.verdict = verdict_for(out.train_relative, out.held_relative, settings.high_error, settings.max_gap)
    return out


def rejudge(saved: dict[str, Any], high_error: float | None = None, max_gap: float | None = None) -> Diagnosis:
    """A saved diagnosis (``diagnosis.json``) judged again with other thresholds, for ``runs show``."""
    diag = Diagnosis.from_dict(saved)
    diag.high_error = diag.high_error if high_error is None else high_error
    diag.max_gap = diag.max_gap if max_gap is None else max_gap
    train, held = diag.train_relative, diag.held_relative
    if train is not None and held is not None:
        diag.gap = held - train
        diag.verdict = verdict_for(train, held, diag.high_error, diag.max_gap)
    return diag
