"""Fitting a column's encoding on the train split only: fill values, scaler statistics, the binary mapping
and the kept categories, as plain JSON (``preprocessing.json``; nothing is pickled, so loading a run never
runs code)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlcli.config import short_repr
from dlcli.data.columns.infer import Planned
from dlcli.data.columns.values import TRUE_WORDS, column_codes, date_parts, default_positive, to_numbers
from dlcli.data.scaling import PIXEL_MAX
from dlcli.errors import ConfigError, DataError

MAX_RARE = 10_000  # rare training values remembered (so that only truly new values count as unseen)


def fit_column(plan: Planned, df: Any, where: str, rows: np.ndarray | None = None) -> dict[str, Any] | None:
    """The fitted state of one column of ``df`` from the train split's ``rows`` (positions in the file;
    None: every row), or None for an ignored column."""
    spec, name = plan.spec, plan.name
    if spec is None or spec.type == "ignore":
        return None
    if spec.type in ("numeric", "date"):
        series = df[name] if rows is None else df[name].take(rows)
    if spec.type == "numeric":
        numbers = to_numbers(series, name, where, rows)
        present = numbers[~np.isnan(numbers)]
        if not len(present):
            raise DataError(f"{where}: column {name!r} has no value in the train split; set data.columns.{name}: "
                            f"ignore")
        fill = {"median": lambda: float(np.median(present)), "mean": lambda: float(present.mean()),
                "constant": lambda: float(spec.fill_value), "drop": lambda: None}[spec.missing]()
        state = {"name": name, "type": "numeric", "missing": spec.missing, "fill": fill,
                 "indicator": bool(spec.indicator and spec.missing != "drop" and len(present) < len(numbers))}
        return state | _scaling(present.reshape(-1, 1), spec.scale or "none")
    if spec.type == "date":
        parts = date_parts(series, spec.parts, name, where, rows)
        fill = [float(np.nanmedian(col)) if np.isfinite(col).any() else 0.0 for col in parts.T]
        parts = np.where(np.isnan(parts), fill, parts)
        state = {"name": name, "type": "date", "parts": list(spec.parts), "fill": fill}
        return state | _scaling(parts, spec.scale or "none")
    codes, labels = column_codes(df, name, rows)
    counts = np.bincount(codes[codes >= 0], minlength=len(labels))
    uniques, counts = labels[counts > 0].astype(str), counts[counts > 0]
    has_missing = bool((codes < 0).any())
    if spec.type == "binary":
        values_ = [str(v) for v in uniques]
        if len(values_) > 2:
            raise DataError(f"{where}: column {name!r} is set as binary but has {len(values_)} values in the train "
                            f"split "
                            f"({', '.join(map(repr, values_[:5]))}...); set data.columns.{name}: categorical")
        positive = _positive_key(spec.positive, values_, name)
        negative = next((v for v in values_ if v != positive), None)
        common = values_[int(np.argmax(counts))] if len(values_) else positive
        return {"name": name, "type": "binary", "positive": positive, "negative": negative,
                "fill": 1.0 if common == positive else 0.0}
    order = np.lexsort((uniques, -counts))  # most common first, ties by value
    uniques, counts = uniques[order], counts[order]
    kept = [str(v) for v, c in zip(uniques, counts) if c >= spec.min_frequency]
    use_missing_slot = has_missing and spec.missing == "category"
    slots = spec.max_categories - (1 if use_missing_slot else 0)
    rare = len(kept) < len(uniques) or len(kept) > slots
    if rare:
        kept = kept[: max(1, slots - 1)]  # one slot goes to <other>
    most_common = str(uniques[0]) if spec.missing == "most_frequent" and len(uniques) else None
    kept_set = set(kept)
    return {"name": name, "type": "categorical", "categories": kept, "missing_slot": use_missing_slot,
            "other_slot": rare, "fill": most_common,
            # Values seen in training but not kept: <other> expects them; anything else is counted as unseen.
            "rare": [str(v) for v in uniques if v not in kept_set][:MAX_RARE]}


def _positive_key(positive: Any, values: list[str], name: str) -> str:
    """Which of a binary column's values is 1: the configured one (matched loosely) or the default."""
    if positive is None:
        if not values:
            return "True"
        return default_positive(values)
    wanted = str(positive).strip()
    if isinstance(positive, bool):  # YAML reads yes / true as a boolean
        matches = [v for v in values if (v.lower() in TRUE_WORDS) == positive]
    else:
        if isinstance(positive, float) and positive == int(positive):
            wanted = str(int(positive))
        matches = [v for v in values if v == wanted] or [v for v in values if v.lower() == wanted.lower()]
    if len(matches) != 1:
        raise ConfigError(f"data.columns.{name}.positive", f"{short_repr(positive)} is not one of the column's values "
                          f"({', '.join(map(repr, values))})")
    return matches[0]


def _scaling(x: np.ndarray, kind: str) -> dict[str, Any]:
    """Offset and factor per output column (``(x - offset) * factor``), from train values without NaN."""
    width = x.shape[1]
    if kind == "standard":
        offset, spread = x.mean(axis=0), x.std(axis=0)
    elif kind == "minmax":
        offset, spread = x.min(axis=0), x.max(axis=0) - x.min(axis=0)
    elif kind == "rescale":
        offset, spread = np.zeros(width), np.full(width, PIXEL_MAX)
    else:
        offset, spread = np.zeros(width), np.ones(width)
    spread = np.where(spread > 0, spread, 1.0)  # a constant stays constant instead of becoming NaN
    return {"scale": kind, "offset": [float(v) for v in offset], "factor": [float(1 / v) for v in spread]}
