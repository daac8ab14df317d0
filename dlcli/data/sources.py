"""Sources of array data: scikit-learn's bundled datasets, Keras's downloadable datasets and .npz files,
loaded whole as :class:`RawData` (no splitting, no scaling). Tables are read by ``tables.py`` and image
folders by ``images.py``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlcli import runtime
from dlcli.config import BUNDLED_DATASETS, FILE_SUFFIXES, KERAS_DATASETS, DataConfig
from dlcli.data.checks import check_data_file, check_finite
from dlcli.errors import ConfigError, DataError, did_you_mean, shorten


@dataclass
class RawData:
    """Samples and labels as a source holds them."""

    x: np.ndarray
    y: np.ndarray
    feature_names: list[str] | None = None
    class_names: list[str] | None = None  # for bundled datasets whose y are indices into these
    x_test: np.ndarray | None = None  # a dataset's own test split
    y_test: np.ndarray | None = None


def _load_bundled(name: str) -> RawData:
    with runtime.big_import("sklearn"):
        from sklearn import datasets  # lazy: start-up speed

    bunch = getattr(datasets, f"load_{name}")()
    names = getattr(bunch, "target_names", None)
    features = getattr(bunch, "feature_names", None)
    return RawData(
        x=np.asarray(bunch.data, dtype=np.float32),
        y=np.asarray(bunch.target),
        feature_names=[str(f) for f in features] if features is not None else None,
        class_names=[str(c) for c in names] if names is not None else None,
    )


def _load_keras(name: str) -> RawData:
    keras = runtime.import_keras()
    try:
        (x, y), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except Exception as exc:  # network down, corrupt cache: the user can act on it
        raise DataError(f"data.source: could not load the Keras dataset {name!r}: {exc}. It is downloaded to "
                        f"~/.keras/datasets on first use; check the network or use a local file") from None
    return RawData(x=np.asarray(x), y=np.asarray(y).reshape(len(y), -1).squeeze(-1),
                   x_test=np.asarray(x_test), y_test=np.asarray(y_test).reshape(len(y_test), -1).squeeze(-1))


def _load_npz(path: Path) -> RawData:
    check_data_file(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
            missing = [k for k in ("x", "y") if k not in keys]
            if missing:
                raise DataError(f"{path}: an .npz source needs arrays named 'x' and 'y'; it has {keys}")
            x, y = npz["x"], npz["y"]
    except DataError:
        raise
    except Exception as exc:  # zipfile / pickle / EOF errors for corrupt files
        raise DataError(f"{path}: cannot read the file as .npz: {shorten(exc)}") from None
    if len(x) != len(y):
        raise DataError(f"{path}: 'x' has {len(x)} samples but 'y' has {len(y)}; they must match")
    if len(x) == 0:
        raise DataError(f"{path}: 'x' and 'y' hold no samples")
    if x.dtype.kind not in "biuf":
        raise DataError(f"{path}: 'x' must be numeric, it holds {x.dtype}")
    x = x.astype(np.float32, copy=False)
    check_finite(x, None, path)
    return RawData(x=x, y=y)


def load_raw(cfg: DataConfig) -> RawData:
    """Load the samples a data config points at (no splitting, no scaling)."""
    if cfg.kind == "bundled":
        return _load_bundled(cfg.source)
    if cfg.kind == "keras":
        return _load_keras(cfg.source)
    path = source_path(cfg)
    if path.suffix.lower() != ".npz":
        raise ValueError(f"{path}: tables are prepared by prepare_table")  # a bug, not a user error
    return _load_npz(path)


def source_path(cfg: DataConfig) -> Path:
    """The data file a config names, checked: a .csv / .parquet / .npz file that exists."""
    path = Path(cfg.source)
    if path.suffix.lower() not in FILE_SUFFIXES:
        names = BUNDLED_DATASETS + KERAS_DATASETS
        missing = ("" if path.exists() else f" ({path} is a broken symbolic link or a link loop)" if path.is_symlink()
                   else f" ({path} does not exist)")
        raise ConfigError("data.source", f"{Path(cfg.source).name!r} is not a bundled dataset, a Keras dataset, "
                          f"a .csv/.parquet/.npz file or an image folder{missing}.{did_you_mean(path.name, names)} "
                          f"(datasets: {', '.join(names)})")
    check_data_file(path, "data.source")
    return path
