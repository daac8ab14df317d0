"""Column types: what each column of a table is, from ``data.columns`` or inferred from its values.

:func:`infer_column` applies the rules ``dlcli init`` writes into the config (and that columns the
config does not list get); :func:`plan_columns` gives every column but the target its type, checked
against the table.

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
from dataclasses import dataclass
from typing import Any

import numpy as np

from dlcli.config import (BinaryColumn, CategoricalColumn, DataConfig, DateColumn, IgnoreColumn, NumericColumn,
                          short_repr)
from dlcli.data.columns.values import column_codes, default_positive, is_marker, keys, pd_is_numeric, pd_unique_size
from dlcli.errors import ConfigError, DataError, allowed_list, did_you_mean

MAX_CODES = 20  # integer columns with at most this many distinct values are categories
ID_RATIO = 0.99  # distinct values in at least this share of the rows: an ID
TEXT_WORDS = 3.0  # strings averaging at least this many words (and mostly distinct) are free text
TEXT_RATIO = 0.5
MANY_VALUES = 20  # strings with more distinct values than this and than half the rows are left out
NUMERIC_SHARE = 0.95  # strings of which at least this share parse as numbers are a numeric column
ID_NAMES = re.compile(r"(?i)^(id|index|idx|rownames?|row_?names?|row_?(id|num|number)|unnamed: ?\d+"
                      r"|.*[_ ]id|id[_ ].*)$")
DATE_LIKE = re.compile(r"^\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}"  # 2021-03-04, 3/4/2021, 04.03.21
                       r"([ T]\d{1,2}:\d{2}(:\d{2})?(\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})?$")  # an optional time
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


def infer_column(series: Any, name: str, position: int, labels: np.ndarray | None = None) -> Planned:
    """The type ``dlcli init`` gives a column, and a short reason for its config comment.

    ``labels``: the column's distinct values if already known (:func:`column_codes`), to save counting them.
    """
    import pandas as pd  # lazy: start-up speed

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
        positive = default_positive(values)
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

def _numbers_share(text: Any) -> float:
    """The share of strings that parse as numbers, missing-value markers left aside."""
    import pandas as pd  # lazy: start-up speed

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

def _numeric_reason(share_missing: float) -> str:
    if not share_missing:
        return "numeric: no missing values"
    return f"numeric: {_percent(share_missing)} missing, filled with the median"


def _percent(share: float) -> str:
    return f"{share:.0%}" if share >= 0.01 else f"{share:.1%}" if share >= 0.001 else "<0.1%"

def plan_columns(df: Any, dcfg: DataConfig, where: str, text_ok: bool = False) -> list[Planned]:
    """Every column but the target: its type from ``data.columns`` or inferred; checked against the table.

    Raises:
        ConfigError: ``data.columns`` names a column the table does not have, or a listed type cannot read it.
        DataError: an unlisted column holds free text (dlcli does not model text).
    """
    columns = [str(c) for c in df.columns]
    for name in dcfg.columns:
        if name not in columns:
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
