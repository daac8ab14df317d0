"""A table column's values: as category keys (each column factorized once per table), as numbers, as date
parts. A value that cannot be read as its column's type is one error naming its column, data row and value."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from dlcli.config import short_repr
from dlcli.errors import DataError

# In a column of numbers, these strings mean "missing" (UCI files write '?'); pandas already reads NA, NULL, ...
MISSING_MARKERS = ("?", "-", "--", ".", "na", "n/a", "nan", "null", "none", "missing", "unknown")
TRUE_WORDS = ("true", "yes", "y", "t", "1", "1.0")  # which value of a binary column is 1 by default


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
    import pandas as pd  # lazy: start-up speed

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
    import pandas as pd  # lazy: start-up speed

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

def is_marker(text: Any) -> Any:
    """Which strings are a missing-value marker (``?``, ``-``, ``n/a``, ...) in a column of numbers."""
    return text.str.strip().str.lower().isin(MISSING_MARKERS)


def pd_is_numeric(series: Any) -> bool:
    """Whether a column holds numbers or booleans (pandas' dtype, no values read)."""
    import pandas as pd  # lazy: start-up speed

    return pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def pd_unique_size(values: np.ndarray) -> int:
    """How many distinct values ``values`` holds."""
    import pandas as pd  # lazy: start-up speed

    return int(pd.unique(values).size)  # a hash table: faster than sorting with np.unique


def default_positive(values: list[str]) -> str:
    """Which of a binary column's two values (sorted keys) is 1 by default: a true-like word, else the last."""
    true_like = [v for v in values if v.lower() in TRUE_WORDS]
    return true_like[0] if true_like else values[-1]


def data_row(position: int, rows: np.ndarray | None) -> int:
    """The 1-based data row of a position in the encoded order."""
    return int(position if rows is None else rows[position]) + 1


def to_numbers(series: Any, name: str, where: str, rows: np.ndarray | None = None) -> np.ndarray:
    """A column as float64 (NaN where missing); a value that is not a number is one error naming it."""
    import pandas as pd  # lazy: start-up speed

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
            raise DataError(f"{where}: column {name!r} is numeric, but data row {data_row(row, rows)} holds "
                            f"{short_repr(series.iloc[row], 60)} ({int(bad.sum())} such value(s)); fix the value, "
                            f"leave it empty (missing), or set data.columns.{name}: categorical")
    inf = np.isinf(numbers)
    if inf.any():
        row = int(np.flatnonzero(inf)[0])
        raise DataError(f"{where}: column {name!r} has {int(inf.sum())} infinite value(s), first in data row "
                        f"{data_row(row, rows)}; replace them with numbers or leave them empty (missing)")
    return numbers


def date_parts(series: Any, parts: list[str], name: str, where: str, rows: np.ndarray | None = None) -> np.ndarray:
    """The numeric parts of a date column (float64, NaN where missing); an unreadable date is an error."""
    import pandas as pd  # lazy: start-up speed

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dates = pd.to_datetime(series, errors="coerce", format="mixed")
    bad = dates.isna().to_numpy() & series.notna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{where}: column {name!r} is a date, but data row {data_row(row, rows)} holds "
                        f"{short_repr(series.iloc[row], 60)}, which is not one; fix it or set data.columns.{name}: "
                        f"categorical")
    names = {"dayofweek": "day_of_week", "dayofyear": "day_of_year"}  # the config's names -> pandas' accessors
    return np.stack([getattr(dates.dt, names.get(part, part)).to_numpy(dtype=np.float64, na_value=np.nan)
                     for part in parts], axis=1)
