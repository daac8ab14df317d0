"""Fingerprints of the data: whether two runs (or a run and ``evaluate``) saw the same samples, and which
rows of a file repeat training rows."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np


def fingerprint_arrays(*arrays: np.ndarray) -> str:
    """A short SHA-256 of the raw arrays: the same data gives the same fingerprint."""
    digest = hashlib.sha256()
    for arr in arrays:
        arr = np.ascontiguousarray(arr if arr.dtype.kind != "O" else arr.astype(str))
        digest.update(str((arr.dtype.str, arr.shape)).encode())
        digest.update(memoryview(arr).cast("B"))
    return "sha256:" + digest.hexdigest()[:16]


def fingerprint_table(df: Any) -> str:
    """A short SHA-256 of a table's content and column names, whatever the column settings: a search that
    tunes them, or evaluate with a run's fitted state, sees the same fingerprint for the same file."""
    import pandas as pd  # lazy: start-up speed

    raw_hashes = pd.util.hash_pandas_object(df, index=False).to_numpy()
    return "sha256:" + hashlib.sha256(raw_hashes.tobytes() + str(list(df.columns)).encode()).hexdigest()[:16]


def row_hashes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """One 64-bit hash per row of features and label (pandas' hash, combined column by column)."""
    import pandas as pd  # lazy: start-up speed

    flat_y = y.reshape(len(y), -1)
    out = np.zeros(len(x), dtype=np.uint64)
    for column in (*x.reshape(len(x), -1).T, *flat_y.T):
        out = out * np.uint64(1_000_003) ^ pd.util.hash_array(np.ascontiguousarray(column))
    return out
