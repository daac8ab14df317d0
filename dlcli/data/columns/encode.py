"""Encoding a table with its fitted columns into the model's float32 inputs, and naming those inputs.

Vectorised pandas / NumPy (no scikit-learn transformers, no ``tf.data``): the same code serves the
TensorFlow, JAX and PyTorch backends and imports no TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dlcli.config import DataConfig, short_repr
from dlcli.data.columns.fit import fit_column
from dlcli.data.columns.infer import Planned, plan_columns
from dlcli.data.columns.values import column_codes, data_row, date_parts, to_numbers
from dlcli.errors import DataError

MISSING, OTHER = "<missing>", "<other>"  # the one-hot inputs of a missing value and of rare or unseen values
COLUMNS_PER_GROUP, ROWS_PER_BLOCK = 16, 4096  # how encode walks the array it fills


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
                            f"but data row {data_row(row, rows)} holds "
                            f"{short_repr(df[name].iloc[data_row(row, rows) - 1], 60)}")
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
