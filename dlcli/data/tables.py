"""Tables: read a .csv or .parquet file into a pandas DataFrame (checked, cached while the file is unchanged),
find its target column, and the plain numeric feature array of runs trained before typed columns."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from dlcli.config import DataConfig
from dlcli.data.checks import check_data_file, check_finite, check_unique_columns
from dlcli.errors import ConfigError, DataError, allowed_list, did_you_mean, first_line, quoted, shorten


def _header_names(df: Any, path: Path) -> list[str]:
    """The column names as the file spells them: pandas renames a repeated CSV name ``a`` to ``a.1``, so a
    name of that form sends us back to the header as written."""
    import pandas as pd  # lazy: start-up speed

    names = [str(c) for c in df.columns]
    if path.suffix.lower() == ".csv" and any(re.fullmatch(r".*\.\d+", n, flags=re.DOTALL) for n in names):
        header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
        names = [str(c) for c in header.iloc[0]]
    return names


def read_table(path: Path) -> Any:
    """Read a .csv or .parquet file into a DataFrame; unreadable files become DataError.

    The file is checked first (:func:`check_data_file`); a header that repeats a column name is an error.
    """
    import pandas as pd  # lazy: start-up speed

    check_data_file(path)
    try:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (no header, no rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise DataError(f"{path}: cannot read the file as {path.suffix[1:]}: {shorten(first_line(exc))}") from None
    except Exception as exc:  # pyarrow raises its own error types for truncated files
        if type(exc).__module__.startswith("pyarrow"):
            raise DataError(f"{path}: cannot read the file as parquet: {shorten(exc)}") from None
        raise
    check_unique_columns(_header_names(df, path), path)
    if len(df) == 0:
        raise DataError(f"{path}: the file has a header but no rows")
    return df


_TABLE_CACHE: dict[tuple, Any] = {}  # the last table read: a search re-prepares data without reading it again


def load_table(path: Path) -> Any:
    """``read_table`` with string column names, kept for the next call while the file is unchanged."""
    info = check_data_file(path)
    key = (str(path.resolve()), info.st_mtime_ns, info.st_size)
    if key not in _TABLE_CACHE:
        df = read_table(path)
        df.columns = [str(c) for c in df.columns]
        _TABLE_CACHE.clear()
        _TABLE_CACHE[key] = df
    return _TABLE_CACHE[key]


def check_target_column(columns: list[str], cfg: DataConfig, path: Path) -> str:
    """The target column's name, checked against the table's columns."""
    if cfg.target is None:
        raise ConfigError("data.target", f"required for {path.suffix} files: the column to predict "
                          f"(columns: {allowed_list(columns)})")
    if cfg.target not in columns:
        raise ConfigError("data.target", f"{cfg.target!r} is not a column of {path}.{did_you_mean(cfg.target, columns)}"
                          f" (columns: {allowed_list(columns)})")
    return cfg.target


def table_features(df: Any, features: list[str], path: Path | str) -> np.ndarray:
    """Feature columns as one float32 array (runs trained before typed columns); non-numeric or non-finite
    values are errors naming the column."""
    import pandas as pd  # lazy: start-up speed

    for name in features:
        col = df[name]
        if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
            bad = pd.to_numeric(col, errors="coerce").isna() & col.notna()
            example = col[bad].iloc[0] if bad.any() else col.iloc[0]
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 1 if bad.any() else 1
            raise DataError(f"{path}: column {quoted(name, 60)} is not numeric (data row {row} holds "
                            f"{quoted(example)}); "
                            f"encode it as numbers")
    x = df[features].to_numpy(dtype=np.float32)
    check_finite(x, features, path)
    return x
