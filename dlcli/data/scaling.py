"""Feature scaling fitted on the train split (``data.scale``), the target's scaling (``data.target_scale``)
and the model's input shape (``data.reshape``)."""

from __future__ import annotations

import numpy as np

from dlcli.config import DataConfig
from dlcli.data.labels import Encoding
from dlcli.errors import ConfigError

# scale: rescale divides by this, mapping pixels 0..255 to 0..1: arrays, image folders and table columns alike.
PIXEL_MAX = 255.0


def fit_scaling(x_train: np.ndarray, kind: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The offset and factor (``(x - offset) * factor``, per feature) of scaling ``kind`` on the train samples."""
    if kind == "none":
        return None, None
    if kind == "rescale":
        return None, np.float32(1.0 / PIXEL_MAX)
    flat = x_train.reshape(len(x_train), -1)
    if kind == "standard":
        offset = flat.mean(axis=0, dtype=np.float64).astype(np.float32)
        spread = flat.std(axis=0, dtype=np.float64).astype(np.float32)
    else:  # minmax
        offset = flat.min(axis=0)
        spread = flat.max(axis=0) - offset
    spread[spread == 0] = 1.0  # constant features stay constant instead of becoming NaN
    shape = x_train.shape[1:]
    return offset.reshape(shape), (1.0 / spread).reshape(shape).astype(np.float32)


def input_shape_for(sample_shape: tuple[int, ...], reshape: list[int] | None) -> list[int]:
    """The model's input shape: ``reshape`` if given (checked against the sample size), else the sample shape."""
    if reshape is None:
        return list(sample_shape)
    size, wanted = int(np.prod(sample_shape)), int(np.prod(reshape))
    if size != wanted:
        raise ConfigError("data.reshape", f"{reshape} holds {wanted} values per sample, but each sample has {size} "
                          f"(shape {list(sample_shape)}); the dimensions must multiply to {size}")
    return list(reshape)


def target_scaling(dcfg: DataConfig, encoding: Encoding, y_train: np.ndarray) -> dict[str, float]:
    """``target_mean`` / ``target_std`` of the train split, for ``data.target_scale: standard`` (regression)."""
    if dcfg.target_scale == "none":
        return {}
    if encoding != "none":
        raise ConfigError("data.target_scale", "standard is for regression targets; a classification loss needs the "
                          "labels as they are: set target_scale: none")
    std = float(np.std(y_train, dtype=np.float64))
    return {"target_mean": float(np.mean(y_train, dtype=np.float64)), "target_std": std if std > 0 else 1.0}
