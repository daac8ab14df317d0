"""Table columns: infer each column's type, fit its encoding on the train split, encode any table.

A column is ``numeric`` (missing values filled, optional ``<name>_missing`` flag, scaled),
``categorical`` (one-hot of the most common values, with a ``<missing>`` input and an ``<other>``
input for rare and unseen values), ``binary`` (two values -> 0/1), ``date`` (numeric parts) or
``ignore``. :func:`infer_column` applies the rules ``dlcli init`` writes into the config (and that
columns the config does not list get); :func:`fit_column` learns everything from the train split
only; :func:`encode` turns a raw DataFrame into the model's float32 inputs with that fitted state.

The fitted state is plain JSON (``preprocessing.json``): categories in their order, fill values,
scaler statistics, the binary mapping. Nothing is pickled, so loading a run never runs code.
Vectorised pandas / NumPy (no scikit-learn transformers, no ``tf.data``): the same code serves the
TensorFlow, JAX and PyTorch backends and imports no TensorFlow.

Inference thresholds (each overridable per column in ``data.columns``):

- the first column, unnamed (``""`` or ``Unnamed: 0``): a row index as ``to_csv`` writes it -> ignore
- every value missing, or a single value -> ignore
- integers that differ in every row and count up (a row number), or a name such as ``id`` / ``rownames`` with
  a different value in (almost) every row (>= 99%) -> ignore
- strings with a different value in >= 99% of rows -> ignore (an ID), or free text if they average >= 3 words
- two distinct values (or a boolean column) -> binary
- integer codes with at most 20 distinct values -> categorical (fastai's ``max_card``)
- other numbers -> numeric; strings of which >= 95% parse as numbers -> numeric (the others are then named as errors);
  strings that look like dates -> date
- strings averaging >= 3 words with distinct values in over half of the rows -> free text (not modelled: an error
  at training time that names the column, and ``ignore`` with that comment in ``init``'s config)
- other strings with distinct values in over half of the rows (and over 20 of them) -> ignore (codes such as
  ticket numbers; Ludwig's rule: a category has fewer distinct values than half the rows)
- other strings -> categorical
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from dlcli.config import (BinaryColumn, CategoricalColumn, DataConfig, DateColumn, IgnoreColumn, NumericColumn,
                          short_repr)
from dlcli.errors import ConfigError, DataError

MAX_CODES = 20  # integer columns with at most this many distinct values are categories
ID_RATIO = 0.99  # distinct values in at least this share of the rows: an ID
TEXT_WORDS = 3.0  # strings averaging at least this many words (and mostly distinct) are free text
TEXT_RATIO = 0.5
MANY_VALUES = 20  # strings with more distinct values than this and than half the rows are left out
NUMERIC_SHARE = 0.95  # strings of which at least this share parse as numbers are a numeric column
# In a column of numbers, these strings mean "missing" (UCI files write '?'); pandas already reads NA, NULL, ...
MISSING_MARKERS = ("?", "-", "--", ".", "na", "n/a", "nan", "null", "none", "missing", "unknown")
COLUMNS_PER_GROUP, ROWS_PER_BLOCK = 16, 4096  # how encode walks the array it fills
MAX_RARE = 10_000  # rare training values remembered (so that only truly new values count as unseen)
ID_NAMES = re.compile(r"(?i)^(id|index|idx|rownames?|row_?names?|row_?(id|num|number)|unnamed: ?\d+"
                      r"|.*[_ ]id|id[_ ].*)$")
DATE_LIKE = re.compile(r"^\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}"  # 2021-03-04, 3/4/2021, 04.03.21
                       r"([ T]\d{1,2}:\d{2}(:\d{2})?(\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})?$")  # an optional time
TRUE_WORDS = ("true", "yes", "y", "t", "1", "1.0")
MISSING, OTHER = "<missing>", "<other>"
Spec = NumericColumn | CategoricalColumn | BinaryColumn | DateColumn | IgnoreColumn


@dataclass
class Planned:
    """A column's type and settings, and why: from the config, or inferred (``reason`` says from what)."""

    name: str
    spec: Spec | None  # None: free text, which is not modelled
    reason: str
    listed: bool = False  # set in data.columns

    @property
    def kind(self) -> str:
        return "text" if self.spec is None else self.spec.type


# ---------------------------------------------------------------------------------------------
# Values as category keys


_FACTORS: dict[Any, Any] = {}  # {"table": the last table, column: (codes, labels)}: each column factorized once


def column_codes(df: Any, name: str, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`factor` of column ``name`` at ``rows`` (None: all), factorizing the whole column once per table
    (fitting on the train rows and encoding every row then share it, as does every trial of a search)."""
    if _FACTORS.get("table") is not df:
        _FACTORS.clear()
        _FACTORS["table"] = df
    if name not in _FACTORS:
        codes, labels = factor(df[name])
        _FACTORS[name] = (codes.astype(np.int32), labels)
    codes, labels = _FACTORS[name]
    return (codes if rows is None else codes[rows]), labels


def factor(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """A column as (codes, labels): ``labels[codes[i]]`` is row i's key (see :func:`keys`), code -1 where missing.

    pandas' hash-based ``factorize`` does the per-row work in C; only the distinct values are normalised here.
    """
    import pandas as pd

    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if not len(uniques):
        return codes.astype(np.int64), np.array([], dtype=object)
    normalised = keys(np.asarray(uniques, dtype=object) if not hasattr(uniques, "dtype") or uniques.dtype == object
                      else uniques).astype(str)
    labels, inverse = np.unique(normalised, return_inverse=True)  # ' a' and 'a', or 1 and 1.0, are one key
    return np.where(codes >= 0, inverse[np.maximum(codes, 0)], -1).astype(np.int64), labels.astype(object)


def keys(values: Any) -> np.ndarray:
    """A column's values as strings for matching categories (object array; None where missing).

    Integral numbers lose their ``.0`` (a code read as 1.0 because of a missing value still matches 1),
    strings lose surrounding spaces, booleans become ``True`` / ``False``.
    """
    import pandas as pd

    series = pd.Series(values, copy=False)
    missing = series.isna().to_numpy()
    if pd.api.types.is_bool_dtype(series):
        out = series.astype(object).map({True: "True", False: "False"}).to_numpy(dtype=object)
    elif pd.api.types.is_numeric_dtype(series):
        numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
        integral = np.isfinite(numbers) & (numbers == np.round(numbers)) & (np.abs(numbers) < 2**53)
        out = np.where(integral, np.char.mod("%d", np.where(integral, numbers, 0).astype(np.int64)).astype(object),
                       np.char.mod("%r", numbers).astype(object))
    else:
        out = series.astype(object).to_numpy(dtype=object, copy=True)
        strings = np.fromiter((isinstance(v, str) for v in out), bool, len(out))
        if not strings.all():
            out[~strings & ~missing] = [str(v) for v in out[~strings & ~missing]]
        out = np.asarray(pd.Series(out, dtype=object).str.strip().to_numpy(dtype=object))
    out = np.array(out, dtype=object)  # writable (pandas may hand out read-only views)
    out[missing] = None
    return out


# ---------------------------------------------------------------------------------------------
# Inference


def infer_column(series: Any, name: str, position: int, labels: np.ndarray | None = None) -> Planned:
    """The type ``dlcli init`` gives a column, and a short reason for its config comment.

    ``labels``: the column's distinct values if already known (:func:`column_codes`), to save counting them.
    """
    import pandas as pd

    n = len(series)
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    if numeric:  # NumPy all the way: no pandas copy of the present values
        numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
        numbers = numbers[~np.isnan(numbers)]
        present, count = None, len(numbers)
    else:
        numbers, present = None, series.dropna()
        count = len(present)
    share_missing = 1 - count / max(1, n)
    missing_note = f", {_percent(share_missing)} missing" if share_missing else ""
    if position == 0 and (name == "" or re.fullmatch(r"Unnamed: ?0", name)):
        return Planned(name, IgnoreColumn(), "ignore: an unnamed first column, a row index as to_csv writes it")
    if not count:
        return Planned(name, IgnoreColumn(), "ignore: every value is missing")
    integral = numbers is not None and bool(np.all(numbers == np.round(numbers)))
    distinct = _distinct(present, numbers, integral, labels)
    if distinct == 1:
        first = series.dropna().iloc[0]
        return Planned(name, IgnoreColumn(), f"ignore: constant ({short_repr(first, 30)}{missing_note})")
    if distinct is None and ID_NAMES.fullmatch(name):
        distinct = int(pd.unique(numbers).size)
    unique_ratio = distinct / count if distinct is not None else 0.0  # None: fractions, many values
    if ID_NAMES.fullmatch(name) and unique_ratio >= ID_RATIO:
        return Planned(name, IgnoreColumn(), "ignore: a different value in every row and an ID's name")
    if pd.api.types.is_bool_dtype(series) or distinct == 2:
        values = sorted(keys(pd.unique(numbers) if numbers is not None else present.unique()).tolist())
        positive = _default_positive(values)
        filled = f"{missing_note}, filled with the most common" if missing_note else ""
        return Planned(name, BinaryColumn(), f"binary: 2 values, {positive!r} -> 1{filled}")
    if numbers is not None:
        if integral and unique_ratio == 1 and numbers.max() - numbers.min() + 1 == len(numbers):
            return Planned(name, IgnoreColumn(), "ignore: a different whole number in every row, counting up: looks "
                           "like a row number")
        if integral and distinct <= MAX_CODES:
            return Planned(name, CategoricalColumn(), f"categorical: {distinct} distinct integer codes{missing_note}")
        return Planned(name, NumericColumn(), _numeric_reason(share_missing))
    text = present.astype(str)
    # Numbers written as text, perhaps with a missing-value marker such as '?' or a few typos: numeric, so
    # that training names each bad value (one error with its row) instead of treating the column as categories.
    if _numbers_share(text.head(1000)) >= NUMERIC_SHARE and _numbers_share(text) >= NUMERIC_SHARE:
        markers = sorted(set(text[is_marker(text)]))
        share = (n - len(present) + int(is_marker(text).sum())) / max(1, n)
        read = f" ({', '.join(map(repr, markers))} read as missing)" if markers else ""
        return Planned(name, NumericColumn(), _numeric_reason(share) + f", numbers written as text{read}")
    sample = text.head(500)
    if sample.str.match(DATE_LIKE).mean() >= 0.8:
        return Planned(name, DateColumn(), f"date: parsed into year, month, day and day of week{missing_note}")
    words = float(sample.str.split().str.len().mean())
    if words >= TEXT_WORDS and unique_ratio > TEXT_RATIO:
        return Planned(name, None, f"ignore: free text ({words:.1f} words on average); dlcli does not model text")
    if unique_ratio >= ID_RATIO:
        return Planned(name, IgnoreColumn(), "ignore: a different value in every row, looks like an ID")
    if unique_ratio > TEXT_RATIO and distinct >= MANY_VALUES:  # Ludwig: a category has fewer than 0.5 x rows
        return Planned(name, IgnoreColumn(), f"ignore: {distinct} distinct values in {len(present)} rows, too many "
                       f"to learn as categories (an identifier or code?); set categorical to keep the most common")
    cap = CategoricalColumn().max_categories
    capped = f", the {cap} most common kept" if distinct > cap else ""
    return Planned(name, CategoricalColumn(), f"categorical: {distinct} distinct strings{missing_note}{capped}")


def is_marker(text: Any) -> Any:
    """Which strings are a missing-value marker (``?``, ``-``, ``n/a``, ...) in a column of numbers."""
    return text.str.strip().str.lower().isin(MISSING_MARKERS)


def _numbers_share(text: Any) -> float:
    """The share of strings that parse as numbers, missing-value markers left aside."""
    import pandas as pd

    values = text[~is_marker(text)]
    return float(pd.to_numeric(values, errors="coerce").notna().mean()) if len(values) else 0.0


def _distinct(present: Any, numbers: np.ndarray | None, integral: bool, labels: np.ndarray | None) -> int | None:
    """How many distinct values; None for numbers with fractions and more than two values (counting them
    would hash every row, and no rule needs the count)."""
    if numbers is None:
        return len(labels) if labels is not None else int(present.nunique())
    if integral:
        return int(pd_unique_size(numbers))
    low, high = numbers.min(), numbers.max()
    if low == high:
        return 1
    return 2 if bool(np.all((numbers == low) | (numbers == high))) else None


def pd_is_numeric(series: Any) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def pd_unique_size(values: np.ndarray) -> int:
    import pandas as pd

    return int(pd.unique(values).size)  # a hash table: faster than sorting with np.unique


def _numeric_reason(share_missing: float) -> str:
    if not share_missing:
        return "numeric: no missing values"
    return f"numeric: {_percent(share_missing)} missing, filled with the median"


def _percent(share: float) -> str:
    return f"{share:.0%}" if share >= 0.01 else f"{share:.1%}" if share >= 0.001 else "<0.1%"


def _default_positive(values: list[str]) -> str:
    true_like = [v for v in values if v.lower() in TRUE_WORDS]
    return true_like[0] if true_like else values[-1]


def plan_columns(df: Any, dcfg: DataConfig, where: str, text_ok: bool = False) -> list[Planned]:
    """Every column but the target: its type from ``data.columns`` or inferred; checked against the table.

    Raises:
        ConfigError: ``data.columns`` names a column the table does not have, or a listed type cannot read it.
        DataError: an unlisted column holds free text (dlcli does not model text).
    """
    columns = [str(c) for c in df.columns]
    for name in dcfg.columns:
        if name not in columns:
            from dlcli.errors import allowed_list, did_you_mean

            raise ConfigError(f"data.columns.{name}", f"{name!r} is not a column of {where}."
                              f"{did_you_mean(name, columns)} (columns: {allowed_list(columns)})")
    selected = set(dcfg.features) if dcfg.features is not None else None
    plans = []
    for position, name in enumerate(columns):
        if name == dcfg.target:
            continue
        if name in dcfg.columns:
            plans.append(Planned(name, dcfg.columns[name], f"{dcfg.columns[name].type}: set in data.columns",
                                 listed=True))
        elif selected is not None and name not in selected:
            plans.append(Planned(name, IgnoreColumn(), "ignore: not in data.features"))
        else:
            plan = _inferred(df, name, position)
            if isinstance(plan.spec, (NumericColumn, DateColumn)):
                plan.spec.scale = dcfg.scale
            plans.append(plan)
    for plan in plans:
        if plan.spec is None and not text_ok:
            words = plan.reason.split("(")[1].split(")")[0]
            raise DataError(f"{where}: column {plan.name!r} looks like free text ({words}); "
                            f"dlcli does not model text. Set data.columns.{plan.name}: ignore to leave it out, or "
                            f"categorical to one-hot its most common values")
    if all(p.kind in ("ignore", "text") for p in plans):
        raise DataError(f"{where}: no feature column is left besides the target {dcfg.target!r}: "
                        + "; ".join(f"{p.name}: {p.reason}" for p in plans)[:400])
    return plans


_INFERRED: list[Any] = [None, {}]  # [the last table typed, {column: Planned}]: a search types its table once


def _inferred(df: Any, name: str, position: int) -> Planned:
    """``infer_column``, remembered for the last table (``data.load_table`` hands out the same frame while the
    file is unchanged); a fresh copy each time, since the caller fills in defaults."""
    if _INFERRED[0] is not df:
        _INFERRED[:] = [df, {}]
    cache = _INFERRED[1]
    if name not in cache:
        column = df[name]
        strings = not (pd_is_numeric(column))
        cache[name] = infer_column(column, name, position, column_codes(df, name)[1] if strings else None)
    plan = cache[name]
    return Planned(plan.name, None if plan.spec is None else plan.spec.model_copy(), plan.reason)


# ---------------------------------------------------------------------------------------------
# Fitting (train split only) and encoding


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
        return _default_positive(values)
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
        offset, spread = np.zeros(width), np.full(width, 255.0)
    else:
        offset, spread = np.zeros(width), np.ones(width)
    spread = np.where(spread > 0, spread, 1.0)  # a constant stays constant instead of becoming NaN
    return {"scale": kind, "offset": [float(v) for v in offset], "factor": [float(1 / v) for v in spread]}


def output_names(state: dict[str, Any]) -> list[str]:
    """The model inputs one fitted column yields, named ``<column>`` or ``<column>=<value>``."""
    name = state["name"]
    kind = state["type"]
    if kind == "numeric":
        return [name] + ([f"{name}_missing"] if state["indicator"] else [])
    if kind == "binary":
        return [name]
    if kind == "date":
        return [f"{name}_{part}" for part in state["parts"]]
    return ([f"{name}={v}" for v in state["categories"]] + ([f"{name}={MISSING}"] if state["missing_slot"] else [])
            + ([f"{name}={OTHER}"] if state["other_slot"] else []))


@dataclass
class Encoded:
    """A table encoded for the model, and what the user should hear about it."""

    x: np.ndarray  # float32, one row per kept input row
    keep: np.ndarray | None  # bool per input row: False where a ``missing: drop`` column was empty (None: all kept)
    unseen: dict[str, int]  # column -> values not seen in training (sent to <other>, or all zeros)


def layout(states: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Where each column's inputs sit in the encoded array, when there are categorical columns.

    Numeric, binary and date inputs come first (``dense`` of them, in column order); then one number per
    categorical column: its code offset into one shared range of ``tokens`` (each column's one-hot inputs,
    in column order, then one last "nothing" token). The model's first layers (``model.build_model``) turn
    the codes into the one-hot inputs with Keras's ``CategoryEncoding``, so the table is stored compact.
    """
    hot = [s for s in states if s["type"] == "categorical"]
    if not hot:
        return None
    offsets, at = {}, 0
    for state in hot:
        offsets[state["name"]] = at
        at += len(output_names(state))
    dense = sum(len(output_names(s)) for s in states if s["type"] != "categorical")
    return {"dense": dense, "codes": len(hot), "tokens": at + 1, "offsets": offsets}


def input_names(states: list[dict[str, Any]]) -> list[str]:
    """The inputs the config's first layer sees, in order: dense inputs, then every one-hot input."""
    dense = [s for s in states if s["type"] != "categorical"]
    hot = [s for s in states if s["type"] == "categorical"]
    return [n for s in dense + hot for n in output_names(s)]


def encode(df: Any, states: list[dict[str, Any]], where: str, rows: np.ndarray | None = None) -> Encoded:
    """Encode the columns of ``df`` with their fitted ``states`` into one float32 array (see :func:`layout`).

    Args:
        df: the raw table (every column of ``states`` present).
        states: the fitted columns, in model-input order.
        where: the file, for messages.
        rows: row positions to encode, in this order (default: every row); the output is written
            straight in that order, so splits can be contiguous slices of one array.

    Raises:
        DataError: a value that cannot be read as its column's type (naming column, row and value), or a
            binary column with a third value.
    """
    n = len(df) if rows is None else len(rows)
    keep = np.ones(n, dtype=bool)
    unseen: dict[str, int] = {}
    plan = layout(states)
    dense = [s for s in states if s["type"] != "categorical"]
    hot = [s for s in states if s["type"] == "categorical"]
    x = np.empty((n, sum(len(output_names(s)) for s in dense) + len(hot)), dtype=np.float32)
    ordered = dense + hot
    at = 0
    # A few columns at a time, written into x one block of rows at a time: writing a whole column of a
    # row-major array would pull every row through the CPU cache once per column.
    for first in range(0, len(ordered), COLUMNS_PER_GROUP):
        parts = []
        for state in ordered[first:first + COLUMNS_PER_GROUP]:
            part = _encode_column(state, df, keep, unseen, where, rows)
            if state["type"] == "categorical":  # local code -> the shared range; -1 -> the "nothing" token
                part = np.where(part >= 0, part + plan["offsets"][state["name"]], plan["tokens"] - 1)
            parts.append(part.reshape(n, -1))
        width = sum(part.shape[1] for part in parts)
        for start in range(0, n, ROWS_PER_BLOCK):
            block = x[start:start + ROWS_PER_BLOCK, at:at + width]
            block[:] = np.concatenate([part[start:start + ROWS_PER_BLOCK] for part in parts], axis=1)
        at += width
    return Encoded(x=x, keep=None if keep.all() else keep, unseen=unseen)


def one_hot(x: np.ndarray, plan: dict[str, Any] | None) -> np.ndarray:
    """What the model's input stage makes of encoded rows: dense inputs, then the one-hot inputs (NumPy)."""
    if plan is None:
        return x
    codes = x[:, plan["dense"]:].astype(np.int64)
    hot = np.zeros((len(x), plan["tokens"]), dtype=np.float32)
    np.put_along_axis(hot, codes, 1.0, axis=1)
    return np.concatenate([x[:, :plan["dense"]], hot[:, :-1]], axis=1)


def _encode_column(state: dict[str, Any], df: Any, keep: np.ndarray, unseen: dict[str, int], where: str,
                   rows: np.ndarray | None) -> np.ndarray:
    """One column's inputs at ``rows``: float32 values (rows x inputs), or for a categorical column the int32
    index of each row's 1 within its one-hot block (-1: none)."""
    name, kind = state["name"], state["type"]
    if kind in ("numeric", "date"):  # a Series: pandas' arrow-backed strings parse without a detour via objects
        values = df[name] if rows is None else df[name].take(rows)
    if kind == "numeric":
        numbers = to_numbers(values, name, where, rows)
        missing = np.isnan(numbers)
        if state["fill"] is None:
            keep &= ~missing
        numbers = np.where(missing, 0.0 if state["fill"] is None else state["fill"], numbers)
        scaled = (numbers - state["offset"][0]) * state["factor"][0]
        return np.stack([scaled, missing], axis=1).astype(np.float32) if state["indicator"] \
            else scaled.astype(np.float32).reshape(-1, 1)
    if kind == "date":
        parts = date_parts(values, state["parts"], name, where, rows)
        parts = np.where(np.isnan(parts), state["fill"], parts)
        return ((parts - np.asarray(state["offset"])) * np.asarray(state["factor"])).astype(np.float32)
    # Work on the distinct values (a handful) and index arrays: no Python loop over rows.
    raw_codes, labels = column_codes(df, name, rows)
    if kind == "binary":
        lookup = np.array([1.0 if v == state["positive"] else 0.0 if v == state["negative"] else np.nan
                           for v in labels] + [state["fill"]])
        encoded = lookup[raw_codes]  # code -1 (missing) takes the last entry: the fill value
        if np.isnan(encoded).any():
            row = int(np.flatnonzero(np.isnan(encoded))[0])
            raise DataError(f"{where}: column {name!r} is binary ({state['negative']!r} -> 0, "
                            f"{state['positive']!r} -> 1), "
                            f"but data row {_row(row, rows)} holds "
                            f"{short_repr(df[name].iloc[_row(row, rows) - 1], 60)}")
        return encoded.astype(np.float32).reshape(-1, 1)
    categories = state["categories"]
    index = {v: i for i, v in enumerate(categories)}
    width = len(output_names(state))
    missing_code = (index.get(state["fill"], -1) if state["fill"] is not None
                    else len(categories) if state["missing_slot"] else -1)
    other_code = width - 1 if state["other_slot"] else -1
    lookup = np.array([index.get(v, other_code) for v in labels] + [missing_code], dtype=np.int32)
    seen = set(categories) | set(state.get("rare") or ())
    new = [i for i, v in enumerate(labels) if v not in seen]
    if new:  # values never seen in training, in <other> (or all zeros without one): counted for a warning
        unseen[name] = int(np.isin(raw_codes, new).sum())
    return lookup[raw_codes]


def _row(position: int, rows: np.ndarray | None) -> int:
    """The 1-based data row of a position in the encoded order."""
    return int(position if rows is None else rows[position]) + 1


def to_numbers(series: Any, name: str, where: str, rows: np.ndarray | None = None) -> np.ndarray:
    """A column as float64 (NaN where missing); a value that is not a number is one error naming it."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_numeric_dtype(series):
        numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isnan(numbers) & series.notna().to_numpy()
        if bad.any():  # a missing-value marker is missing, not a bad value
            bad &= ~is_marker(series.astype(str)).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{where}: column {name!r} is numeric, but data row {_row(row, rows)} holds "
                            f"{short_repr(series.iloc[row], 60)} ({int(bad.sum())} such value(s)); fix the value, "
                            f"leave it empty (missing), or set data.columns.{name}: categorical")
    inf = np.isinf(numbers)
    if inf.any():
        row = int(np.flatnonzero(inf)[0])
        raise DataError(f"{where}: column {name!r} has {int(inf.sum())} infinite value(s), first in data row "
                        f"{_row(row, rows)}; replace them with numbers or leave them empty (missing)")
    return numbers


def date_parts(series: Any, parts: list[str], name: str, where: str, rows: np.ndarray | None = None) -> np.ndarray:
    """The numeric parts of a date column (float64, NaN where missing); an unreadable date is an error."""
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dates = pd.to_datetime(series, errors="coerce", format="mixed")
    bad = dates.isna().to_numpy() & series.notna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{where}: column {name!r} is a date, but data row {_row(row, rows)} holds "
                        f"{short_repr(series.iloc[row], 60)}, which is not one; fix it or set data.columns.{name}: "
                        f"categorical")
    accessor = dates.dt
    return np.stack([getattr(accessor, {"dayofweek": "day_of_week", "dayofyear": "day_of_year"}.get(part, part)).to_numpy(dtype=np.float64, na_value=np.nan) for part in parts], axis=1)


def describe(plans: list[Planned], states: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One row per column: name, type, inputs it yields, and why (for ``config show`` / ``validate``)."""
    fitted = {s["name"]: s for s in states or []}
    rows = []
    for plan in plans:
        state = fitted.get(plan.name)
        inputs = len(output_names(state)) if state else (0 if plan.kind in ("ignore", "text") else None)
        rows.append({"column": plan.name, "type": plan.kind, "inputs": inputs,
                     "why": plan.reason if not plan.listed else "set in data.columns"})
    return rows


def encode_table(df: Any, target: str) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Type every column but ``target``, fit on every row and encode: the whole column pipeline in one call
    (the benchmark's measure of typing and encoding speed; training fits on the train split instead)."""
    plans = plan_columns(df, DataConfig(source="table", target=target, scale="standard"), "table")
    states = [s for p in plans if (s := fit_column(p, df, "table")) is not None]
    return encode(df, states, "table").x, states
