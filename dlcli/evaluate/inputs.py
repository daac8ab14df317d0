"""Samples read from a file for ``evaluate --data`` and ``predict``: the training columns (or an .npz array of
the training sample shape), checked and encoded the way the run was trained."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlcli.data import Preprocessing, check_data_file, check_finite, read_table, row_hashes, table_features
from dlcli.errors import DataError, allowed_list

INPUT_SUFFIXES = (".csv", ".parquet", ".npz")
# A --data table for a run trained on a bundled dataset names its label column like scikit-learn's frames.
DEFAULT_TARGET = "target"


@dataclass
class Inputs:
    """Samples read from a file for evaluate / predict: raw arrays, or (tables) already encoded."""

    x: np.ndarray
    y: np.ndarray | None
    notes: list[str] = field(default_factory=list)


def read_inputs(path: Path, prep: Preprocessing, with_target: bool) -> Inputs:
    """Raw features (and, if ``with_target``, raw labels) from a .csv, .parquet or .npz file.

    The columns must be exactly the training features (in any order); for ``predict`` the target
    column may be present and is ignored. An .npz file holds ``x`` (and ``y``).

    Raises:
        DataError: a missing or extra column, a non-numeric or missing value, a wrong sample shape.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in INPUT_SUFFIXES:
        raise DataError(f"{path}: unsupported file type {suffix or '(none)'!r}; use .csv, .parquet or .npz")
    if suffix == ".npz":
        x, y = _read_npz(path, with_target)
        if prep.columns is not None:  # columns in the training order, encoded like the table's
            import pandas as pd  # lazy: start-up speed

            if x.ndim != 2 or x.shape[1] != len(prep.feature_names or []):
                raise DataError(f"{path}: 'x' has shape {list(x.shape)}; the model was trained on the columns "
                                f"{allowed_list(prep.feature_names or [], 12)}: give one column each, in that order")
            frame = pd.DataFrame(x, columns=prep.feature_names)
            return _encode_typed(frame, path, prep, y, [])
    elif prep.columns is not None:
        return _read_typed_table(path, prep, with_target)
    else:
        x, y = _read_table(path, prep, with_target)
    return Inputs(_check_sample_shape(x, prep, path), y)


def _read_typed_table(path: Path, prep: Preprocessing, with_target: bool) -> Inputs:
    """A raw table for a run trained on typed columns: the training columns (strings, missing values and all),
    encoded with the state saved at training time. Extra columns are ignored (one note); rows whose target is
    missing are dropped (evaluate) and rows empty in a ``missing: drop`` column are dropped (evaluate) or refused
    (predict); values never seen in training are counted in one note."""
    df = read_table(path)
    df.columns = [str(c) for c in df.columns]
    columns = list(df.columns)
    target = prep.target or DEFAULT_TARGET
    needed = list(prep.feature_names or [])
    missing = [c for c in needed if c not in columns]
    if missing:
        raise DataError(f"{path}: column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing[:8]))} "
                        f"{'are' if len(missing) > 1 else 'is'} missing; the model was trained on "
                        f"{allowed_list(needed, 12)}")
    if with_target and target not in columns:
        raise DataError(f"{path}: the target column {target!r} is missing; evaluation needs the true labels "
                        f"(columns: {allowed_list(columns)})")
    notes = []
    extra = [c for c in columns if c not in needed and c != target]
    if extra:
        notes.append(f"ignored {len(extra)} column(s) the model does not use: {allowed_list(extra, 8)}")
    if with_target:
        empty = df[target].isna().to_numpy()
        if empty.all():
            raise DataError(f"{path}: every value of the target column {target!r} is missing")
        if empty.any():
            notes.append(f"dropped {int(empty.sum())} row(s) whose target {target!r} is missing")
            df = df[~empty]
    return _encode_typed(df, path, prep, df[target].to_numpy() if with_target else None, notes)


def _encode_typed(df: Any, path: Path, prep: Preprocessing, y: np.ndarray | None, notes: list[str]) -> Inputs:
    from dlcli.data.columns import encode  # lazy: start-up speed

    encoded = encode(df, prep.columns or [], str(path))
    x = encoded.x
    with_target = y is not None
    if encoded.keep is not None:
        dropped = [s["name"] for s in prep.columns or [] if s["type"] == "numeric" and s["fill"] is None]
        if not with_target:
            row = int(np.flatnonzero(~encoded.keep)[0]) + 1
            raise DataError(f"{path}: data row {row} has no value in {allowed_list(dropped, 5)}, which the model was "
                            f"trained without (missing: drop); fill it in")
        notes.append(f"dropped {int((~encoded.keep).sum())} row(s) with a missing value in "
                     f"{allowed_list(dropped, 5)} (missing: drop)")
        x, y = x[encoded.keep], y[encoded.keep]
    if not len(x):
        raise DataError(f"{path}: no rows to use")
    if encoded.unseen:
        counts = ", ".join(f"{name}: {count}" for name, count in encoded.unseen.items())
        notes.append(f"values never seen in training went to the 'other' input (or none): {counts}")
    x = x.reshape((len(x), *prep.input_shape))
    return Inputs(x, y, notes)


def _read_table(path: Path, prep: Preprocessing, with_target: bool) -> tuple[np.ndarray, np.ndarray | None]:
    df = read_table(path)
    df.columns = [str(c) for c in df.columns]
    columns = list(df.columns)
    target = prep.target or DEFAULT_TARGET
    if prep.feature_names is None:
        raise DataError(f"{path}: the model was trained on array data without column names; give an .npz file "
                        f"with an array 'x' of samples shaped {prep.sample_shape}")
    if with_target and target not in columns:
        raise DataError(f"{path}: the target column {target!r} is missing; evaluation needs the true labels "
                        f"(columns: {allowed_list(columns)})")
    missing = [c for c in prep.feature_names if c not in columns]
    if missing:
        raise DataError(f"{path}: feature column {missing[0]!r} is missing"
                        f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}; the model needs "
                        f"{allowed_list(prep.feature_names)}")
    extra = [c for c in columns if c not in prep.feature_names and c != target]
    if extra:
        raise DataError(f"{path}: column {extra[0]!r} was not a feature in training"
                        f"{f' (and {len(extra) - 1} more: {allowed_list(extra[1:], 5)})' if len(extra) > 1 else ''}; "
                        f"drop it (the model needs {allowed_list(prep.feature_names)})")
    x = table_features(df, list(prep.feature_names), path)
    if not with_target:
        return x, None
    if df[target].isna().any():
        row = int(np.flatnonzero(df[target].isna().to_numpy())[0])
        raise DataError(f"{path}: column {target!r} (the target) has a missing value in data row {row + 1}")
    return x, df[target].to_numpy()


def _read_npz(path: Path, with_target: bool) -> tuple[np.ndarray, np.ndarray | None]:
    wanted = ("x", "y") if with_target else ("x",)
    check_data_file(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in wanted if k not in npz.files]
            if missing:
                raise DataError(f"{path}: an .npz input needs array(s) named {', '.join(map(repr, wanted))}; it has "
                                f"{npz.files}")
            x = npz["x"]
            y = npz["y"] if with_target else None
    except DataError:
        raise
    except Exception as exc:  # zipfile / pickle / EOF errors for corrupt files
        raise DataError(f"{path}: cannot read the file as .npz: {exc}") from None
    if x.dtype.kind not in "biuf":
        raise DataError(f"{path}: array 'x' must be numeric, it holds {x.dtype}")
    if y is not None and len(y) != len(x):
        raise DataError(f"{path}: 'x' has {len(x)} samples but 'y' has {len(y)}; they must match")
    x = x.astype(np.float32)
    check_finite(x, None, path)
    return x, y


def _check_sample_shape(x: np.ndarray, prep: Preprocessing, path: Path) -> np.ndarray:
    if len(x) == 0:
        raise DataError(f"{path}: no samples")
    shape, wanted = tuple(x.shape[1:]), tuple(prep.sample_shape)
    if shape != wanted and (x.ndim != 2 or x.shape[1] != math.prod(wanted)):
        raise DataError(f"{path}: each sample has shape {list(shape)}, but the model was trained on samples shaped "
                        f"{list(wanted)}" + (f" ({math.prod(wanted)} values, flattened)" if len(wanted) > 1 else ""))
    # Preprocessing.transform scales in place: it needs a writable array (pyarrow's may be read-only).
    return np.require(x.reshape((len(x), *wanted)), np.float32, ["C_CONTIGUOUS", "WRITEABLE"])


def encode_targets(y: np.ndarray, prep: Preprocessing, where: str) -> np.ndarray:
    """Labels as the loss expects them; for a bundled dataset, class indices (0, 1, ..) work as well as names."""
    y = np.asarray(y)
    names = prep.class_names
    if prep.task == "classification" and names and y.dtype.kind in "iu":
        known = set(np.unique(y.astype(str))) <= set(names)
        if not known and y.min() >= 0 and y.max() < len(names):
            y = np.asarray(names)[y]
    return prep.encode_labels(y, where)


def training_rows_note(prep: Preprocessing, x: np.ndarray, y: np.ndarray, data_path: Path) -> list[str]:
    """A warning when rows of an evaluation file were in the run's training split (same encoded row and label)."""
    if prep.row_hashes is None or not len(prep.row_hashes):
        return []
    seen = np.isin(row_hashes(x, y), prep.row_hashes)
    if not seen.any():
        return []
    return [f"warning: {int(seen.sum())} of {len(seen)} rows of {Path(data_path).name} were in the run's training "
            f"split; scores on them are not a fair test of the model"]
