"""Data: load a source, encode labels for the loss, split, scale and reshape.

Everything here works on NumPy arrays and does not import TensorFlow (only the Keras dataset
loaders need Keras); an image folder becomes ``tf.data`` pipelines in ``dlcli/images.py``. The
preprocessing fitted on the train split is kept in a :class:`Preprocessing` object that the run
directory stores, so that ``evaluate`` and ``predict`` apply exactly what training applied.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import stat
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dlcli.config import BUNDLED_DATASETS, FILE_SUFFIXES, KERAS_DATASETS, DataConfig, ExperimentConfig
from dlcli.errors import ConfigError, DataError, allowed_list, did_you_mean, quoted, shorten

# Losses whose targets are class indices, one-hot rows or a single 0/1 column.
SPARSE_LOSSES = {"sparse_categorical_crossentropy", "sparse_categorical_focal_crossentropy"}
ONE_HOT_LOSSES = {"categorical_crossentropy", "categorical_focal_crossentropy", "categorical_hinge",
                  "kl_divergence", "kld", "kullback_leibler_divergence"}
BINARY_LOSSES = {"binary_crossentropy", "binary_focal_crossentropy", "hinge", "squared_hinge"}

Task = Literal["classification", "regression"]
ARRAY_FIELDS = ("offset", "factor", "row_hashes")  # saved in preprocessing.npz, the rest in preprocessing.json
Encoding = Literal["sparse", "one_hot", "binary", "none"]


def label_encoding(loss: str) -> Encoding:
    """How targets must be encoded for ``loss`` (``none`` means regression)."""
    if loss in SPARSE_LOSSES:
        return "sparse"
    if loss in ONE_HOT_LOSSES:
        return "one_hot"
    if loss in BINARY_LOSSES:
        return "binary"
    return "none"


@dataclass
class Preprocessing:
    """What was fitted on the train split and must be applied to any new input."""

    task: Task
    encoding: Encoding
    scale: str
    sample_shape: list[int]  # shape of one raw sample before reshape
    input_shape: list[int]  # shape the model sees
    feature_names: list[str] | None = None
    class_names: list[str] | None = None
    target: str | None = None
    # Tables: each input column's fitted encoding (dlcli.data.columns), in model-input order; the raw dtypes.
    columns: list[dict[str, Any]] | None = None
    dtypes: dict[str, str] | None = None
    input_names: list[str] | None = None  # what the config's first layer sees (one per one-hot value)
    # Tables with categorical columns: the encoded array holds codes, one-hot encoded by the model's first
    # layers (dlcli.data.columns.layout: dense inputs, code columns, tokens).
    onehot: dict[str, Any] | None = None
    # Regression with data.target_scale: standard: the model ends in Rescaling(target_std, target_mean).
    target_mean: float | None = None
    target_std: float | None = None
    offset: np.ndarray | None = field(default=None, repr=False)
    factor: np.ndarray | None = field(default=None, repr=False)
    # Hashes of the encoded training rows (features and label): evaluate warns when a file repeats them.
    row_hashes: np.ndarray | None = field(default=None, repr=False)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Scale and reshape raw samples (float32), in place where possible."""
        x = np.asarray(x, dtype=np.float32)
        if self.offset is not None:
            x -= self.offset
        if self.factor is not None:
            x *= self.factor
        return x.reshape((-1, *self.input_shape))

    def encode_labels(self, y: np.ndarray, where: str) -> np.ndarray:
        """Map raw labels to what the loss expects; unknown classes are an error."""
        if self.task == "regression":
            return _numeric_target(y, where)
        classes = np.asarray(self.class_names)
        as_str = np.asarray(y).astype(str)
        unknown = sorted(set(np.unique(as_str)) - set(classes))
        if unknown:
            shown = ", ".join(quoted(str(c), 60) for c in unknown[:5])
            raise DataError(f"{where}: classes [{shown}] were not seen in training (known: "
                            f"{allowed_list(classes.tolist())})")
        order = np.argsort(classes)
        index = order[np.searchsorted(classes[order], as_str)]
        return encode_indices(index, len(classes), self.encoding)

    def save(self, directory: Path) -> None:
        """Write ``preprocessing.json`` (and ``preprocessing.npz`` for scaling arrays) into ``directory``."""
        from dlcli.runs import atomic_write_text, replacing

        meta = {k: v for k, v in asdict(self).items() if k not in ARRAY_FIELDS}
        atomic_write_text(directory / "preprocessing.json", json.dumps(meta, indent=2))
        arrays = {k: getattr(self, k) for k in ARRAY_FIELDS if getattr(self, k) is not None}
        if arrays:
            with replacing(directory / "preprocessing.npz") as tmp:
                np.savez(tmp, **arrays)

    @classmethod
    def load(cls, directory: Path) -> Preprocessing:
        """Read what :meth:`save` wrote. Raises RunError naming the file if either is damaged."""
        from dlcli.runs import damaged, json_object, read_run_file

        meta = read_run_file(directory / "preprocessing.json", json_object)
        arrays: dict[str, Any] = {}
        path = directory / "preprocessing.npz"
        if path.exists():
            try:
                with np.load(path, allow_pickle=False) as npz:
                    arrays = {k: npz[k] for k in npz.files}
            except Exception as exc:  # a damaged zip raises zipfile, OSError or ValueError errors
                raise damaged(path, str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__) from None
        unknown = sorted((set(meta) | set(arrays)) - {f.name for f in fields(cls)})
        try:
            if unknown or not isinstance(meta.get("task"), str):
                raise ValueError(f"unexpected fields {unknown[:5]}" if unknown else "no task field")
            return cls(**meta, **arrays)
        except (TypeError, ValueError) as exc:
            raise damaged(directory / "preprocessing.json", str(exc)[:160]) from None


@dataclass
class Dataset:
    """Prepared splits, ready for ``model.fit``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    prep: Preprocessing
    fingerprint: str
    source: str
    notes: list[str] = field(default_factory=list)  # what the user should know (dropped rows, ...)
    columns: list[dict[str, Any]] | None = None  # tables: what each column became (dlcli.data.columns.describe)

    @property
    def num_classes(self) -> int | None:
        return len(self.prep.class_names) if self.prep.class_names else None

    def splits(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The non-empty splits by name, in train / val / test order."""
        out = {"train": (self.x_train, self.y_train), "val": (self.x_val, self.y_val),
               "test": (self.x_test, self.y_test)}
        return {k: v for k, v in out.items() if len(v[0])}

    def head(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``n`` training samples and their labels, as arrays (a quick check of the model)."""
        return self.x_train[:n], self.y_train[:n]


def is_streamed(x: Any) -> bool:
    """Whether ``x`` is a ``tf.data.Dataset`` of (sample, label) pairs (an image folder's split), not an array."""
    return hasattr(x, "element_spec")


def keras_inputs(x: Any, y: Any, batch_size: int) -> dict[str, Any]:
    """``model.fit`` / ``evaluate`` / ``predict`` arguments for samples ``x`` and labels ``y`` (None to predict).

    Arrays go with their batch size; a ``tf.data.Dataset`` carries its labels and is batched and prefetched here.
    """
    if is_streamed(x):
        import tensorflow as tf

        return {"x": x.batch(batch_size).prefetch(tf.data.AUTOTUNE)}
    return {"x": x, "batch_size": batch_size} | ({} if y is None else {"y": y})


# ---------------------------------------------------------------------------------------------
# Loading raw samples


@dataclass
class RawData:
    x: np.ndarray
    y: np.ndarray
    feature_names: list[str] | None = None
    class_names: list[str] | None = None  # for bundled datasets whose y are indices into these
    x_test: np.ndarray | None = None  # a dataset's own test split
    y_test: np.ndarray | None = None


def _load_bundled(name: str) -> RawData:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    names = getattr(bunch, "target_names", None)
    return RawData(
        x=np.asarray(bunch.data, dtype=np.float32),
        y=np.asarray(bunch.target),
        feature_names=[str(f) for f in bunch.feature_names] if getattr(bunch, "feature_names", None) is not None else None,
        class_names=[str(c) for c in names] if names is not None else None,
    )


def _load_keras(name: str) -> RawData:
    from dlcli import runtime

    keras = runtime.import_keras()
    try:
        (x, y), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except Exception as exc:  # network down, corrupt cache: the user can act on it
        raise DataError(f"data.source: could not load the Keras dataset {name!r}: {exc}. It is downloaded to "
                        f"~/.keras/datasets on first use; check the network or use a local file") from None
    return RawData(x=np.asarray(x), y=np.asarray(y).reshape(len(y), -1).squeeze(-1),
                   x_test=np.asarray(x_test), y_test=np.asarray(y_test).reshape(len(y_test), -1).squeeze(-1))


# A data file is read into memory whole (pandas, NumPy): a larger one is refused before reading, with how to
# raise the limit. A sparse file counts at its full size, since that is what a reader would have to go through.
MAX_DATA_MB_ENV = "DLCLI_MAX_DATA_MB"
DEFAULT_MAX_DATA_MB = 1024
_NOT_REGULAR = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def max_data_mb() -> float:
    """The size limit of a data file in MB: ``$DLCLI_MAX_DATA_MB``, else 1024 (1 GiB)."""
    text = os.environ.get(MAX_DATA_MB_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_DATA_MB
    try:
        limit = float(text)
    except ValueError:
        limit = math.nan
    if not (math.isfinite(limit) and limit > 0):
        raise ConfigError(MAX_DATA_MB_ENV, f"{quoted(text, 60)} is not a size in MB; give a positive number, e.g. "
                          f"{MAX_DATA_MB_ENV}=4096 (unset, the limit is {DEFAULT_MAX_DATA_MB} MB)")
    return limit


def check_data_file(path: Path, where: str = "") -> os.stat_result:
    """The one gate before reading a user's data file: it must be a readable regular file within the size limit.

    Every reader of user data (tables, .npz files, images; train, tune, init, evaluate, predict) calls this
    first, so that a symlink loop, a directory, a pipe (reading one would wait forever), a file without read
    permission or one too large to load is one message, not a traceback, a hang or an exhausted memory.

    Args:
        path: the file.
        where: what named it (e.g. ``data.source``), put before the message.

    Returns:
        The file's ``os.stat`` (size, modification time).

    Raises:
        DataError: naming the path, what is wrong and how to fix it.
    """
    prefix = f"{where}: " if where else ""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        dangling = " (a symbolic link whose target does not exist)" if os.path.islink(path) else ""
        raise DataError(f"{prefix}file not found: {path}{dangling}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DataError(f"{prefix}{path} is a symbolic link loop (it leads back to itself); point the link at "
                            f"the real data file") from None
        if exc.errno == errno.EACCES:
            raise DataError(f"{prefix}{path}: permission denied (a folder on its path cannot be entered); check "
                            f"the folders' permissions") from None
        raise DataError(f"{prefix}{path}: cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise DataError(f"{prefix}{path} is a directory, not a file; give a .csv, .parquet or .npz file")
    kind = next((name for test, name in _NOT_REGULAR if test(info.st_mode)), None)
    if kind is not None or not stat.S_ISREG(info.st_mode):
        raise DataError(f"{prefix}{path} is {kind or 'not a regular file'}; dlcli reads data only from regular files "
                        f"(a pipe or device could be read forever): save the data to a file first")
    if not os.access(path, os.R_OK):
        raise DataError(f"{prefix}{path}: permission denied; the file cannot be read (e.g. chmod u+r {path})")
    limit = max_data_mb()
    if info.st_size > limit * 2**20:
        raise DataError(f"{prefix}{path} is {info.st_size / 2**20:,.1f} MB ({info.st_size:,} bytes), over the "
                        f"{limit:g} MB limit for a data file, which is read into memory whole; to read it anyway, "
                        f"raise the limit with the environment variable {MAX_DATA_MB_ENV}, e.g. "
                        f"{MAX_DATA_MB_ENV}={_raised_limit(info.st_size)}, or use a sample of the data")
    return info


def _raised_limit(size: int) -> int:
    """A round limit in MB (a power of two) that ``size`` bytes fit under."""
    mb = 1024
    while mb * 2**20 < size:
        mb *= 2
    return mb


def check_unique_columns(names: list[str], path: Path | str) -> None:
    """Raise DataError naming the column names a table's header repeats (empty names aside)."""
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(names, start=1):
        positions.setdefault(name, []).append(i)
    repeated = [(name, where) for name, where in positions.items() if len(where) > 1 and name != ""]
    if repeated:
        listed = ", ".join(f"{quoted(name, 60)} (columns {', '.join(map(str, where[:5]))})"
                           for name, where in repeated[:5])
        more = f" and {len(repeated) - 5} more" if len(repeated) > 5 else ""
        raise DataError(f"{path}: the header repeats the column name{'s' if len(repeated) > 1 else ''} {listed}"
                        f"{more}; each column needs a name of its own (pandas would silently rename a copy to "
                        f"'<name>.1'): rename or drop the copies")


def _header_names(df: Any, path: Path) -> list[str]:
    """The column names as the file spells them: pandas renames a repeated CSV name ``a`` to ``a.1``, so a
    name of that form sends us back to the header as written."""
    import pandas as pd

    names = [str(c) for c in df.columns]
    if path.suffix.lower() == ".csv" and any(re.fullmatch(r".*\.\d+", n, flags=re.DOTALL) for n in names):
        header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
        names = [str(c) for c in header.iloc[0]]
    return names


def read_table(path: Path) -> Any:
    """Read a .csv or .parquet file into a DataFrame; unreadable files become DataError.

    The file is checked first (:func:`check_data_file`); a header that repeats a column name is an error.
    """
    import pandas as pd

    check_data_file(path)
    try:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (no header, no rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot read the file as {path.suffix[1:]}: {shorten(first)}") from None
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
    import pandas as pd

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


def check_finite(x: np.ndarray, feature_names: list[str] | None, path: Path | str) -> None:
    """Raise DataError naming the first column holding NaN or inf."""
    flat = x.reshape(len(x), -1)
    bad = ~np.isfinite(flat)
    if bad.any():
        rows, cols = np.nonzero(bad)
        col = int(cols[0])
        name = feature_names[col] if feature_names and col < len(feature_names) else f"feature {col}"
        what = "NaN (missing)" if np.isnan(flat[rows[0], col]) else "infinite"
        raise DataError(f"{path}: column {name!r} has {int(bad[:, col].sum())} {what} value(s), first in data row "
                        f"{int(rows[0]) + 1}; fill or drop them before training")


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


# ---------------------------------------------------------------------------------------------
# Labels, splits, scaling


def encode_indices(index: np.ndarray, num_classes: int, encoding: Encoding) -> np.ndarray:
    """Class indices -> the array the loss expects."""
    if encoding == "one_hot":
        return np.eye(num_classes, dtype=np.float32)[index]
    if encoding == "binary":
        return index.astype(np.float32).reshape(-1, 1)
    return index.astype(np.int32)


def _numeric_target(y: np.ndarray, where: str) -> np.ndarray:
    try:
        out = np.asarray(y, dtype=np.float32)
    except (TypeError, ValueError):
        raise DataError(f"{where}: the target is not numeric, but the loss is a regression loss; use a "
                        f"classification loss such as sparse_categorical_crossentropy") from None
    if not np.isfinite(out).all():
        raise DataError(f"{where}: the target holds NaN or infinite values")
    return out


def _encode_classes(raw: RawData, encoding: Encoding, where: str) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    y = raw.y
    if raw.class_names is not None and y.dtype.kind in "iu":
        names = raw.class_names
        index = y.astype(np.int64)
        test_index = raw.y_test.astype(np.int64) if raw.y_test is not None else None
    else:
        labels = y.astype(str) if y.dtype.kind not in "iub" else y
        classes, index = np.unique(labels, return_inverse=True)
        names = [str(c) for c in classes]
        test_index = None
        if raw.y_test is not None:
            test_labels = raw.y_test.astype(str) if y.dtype.kind not in "iub" else raw.y_test
            test_index = np.searchsorted(classes, test_labels)
    present = np.unique(index)
    if len(present) < 2:
        raise DataError(f"{where}: the target has a single class ({names[int(present[0])]!r}); classification "
                        f"needs at least two")
    if encoding == "binary" and len(names) != 2:
        raise ConfigError("compile.loss", f"a binary loss needs exactly 2 classes, the target has {len(names)} "
                          f"({allowed_list(names, 6)}); use sparse_categorical_crossentropy with a softmax output")
    return index, names, test_index


def split_indices(n: int, cfg: DataConfig, seed: int, strata: np.ndarray | None, has_test: bool) -> tuple:
    from sklearn.model_selection import train_test_split

    split = cfg.split
    idx = np.arange(n)

    def cut(indices: np.ndarray, fraction: float, what: str) -> tuple[np.ndarray, np.ndarray]:
        if fraction <= 0:
            return indices, indices[:0]
        size = int(round(fraction * len(indices)))
        if size < 1 or size >= len(indices):
            raise DataError(f"data.split: {len(indices)} samples are too few for a {what} fraction of {fraction:g} "
                            f"(it would hold {size}); use more data or other fractions")
        strat = strata[indices] if strata is not None else None
        try:
            return tuple(train_test_split(indices, test_size=size, random_state=seed, stratify=strat))
        except ValueError as exc:
            if strat is None:
                raise
            raise DataError(f"data.split: cannot stratify ({exc}); set data.split.stratify: false or use more "
                            f"data") from None

    if has_test:
        rest, test = idx, idx[:0]
        val_fraction = split.val / (split.train + split.val)
    else:
        rest, test = cut(idx, split.test, "test")
        val_fraction = split.val / (split.train + split.val)
    train, val = cut(rest, val_fraction, "val")
    return train, val, test


def _fit_scaling(x_train: np.ndarray, kind: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    if kind == "none":
        return None, None
    if kind == "rescale":
        return None, np.float32(1.0 / 255.0)
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


def fingerprint_arrays(*arrays: np.ndarray) -> str:
    """A short SHA-256 of the raw arrays: the same data gives the same fingerprint."""
    digest = hashlib.sha256()
    for arr in arrays:
        arr = np.ascontiguousarray(arr if arr.dtype.kind != "O" else arr.astype(str))
        digest.update(str((arr.dtype.str, arr.shape)).encode())
        digest.update(memoryview(arr).cast("B"))
    return "sha256:" + digest.hexdigest()[:16]


def input_shape_for(sample_shape: tuple[int, ...], reshape: list[int] | None) -> list[int]:
    """The model's input shape: ``reshape`` if given (checked against the sample size), else the sample shape."""
    if reshape is None:
        return list(sample_shape)
    size, wanted = int(np.prod(sample_shape)), int(np.prod(reshape))
    if size != wanted:
        raise ConfigError("data.reshape", f"{reshape} holds {wanted} values per sample, but each sample has {size} "
                          f"(shape {list(sample_shape)}); the dimensions must multiply to {size}")
    return list(reshape)


def prepare(cfg: ExperimentConfig) -> Dataset:
    """Load, encode, split, scale and reshape the data an experiment config describes.

    Raises:
        ConfigError: a data setting does not fit the data (target column, reshape, loss vs classes).
        DataError: the data itself cannot be used (missing file, bad values, too few samples).
    """
    dcfg = cfg.data
    from dlcli.data import images  # TensorFlow is imported only to load an image folder

    if dcfg.kind == "folder":
        return images.prepare_folder(cfg)
    images.check_image_settings_unused(dcfg)
    if dcfg.kind == "file" and Path(dcfg.source).suffix.lower() in (".csv", ".parquet"):
        return prepare_table(cfg)
    if dcfg.columns:
        raise ConfigError("data.columns", f"is for .csv and .parquet tables; {dcfg.source!r} has no named columns")
    raw = load_raw(dcfg)
    where = dcfg.source if dcfg.kind == "file" else f"data.source {dcfg.source!r}"
    encoding = label_encoding(cfg.compile.loss)
    own_test = raw.x_test is not None and dcfg.split.source_test
    if encoding == "none":
        y_all = _numeric_target(raw.y, where)
        y_test_all = _numeric_target(raw.y_test, where) if own_test else None
        class_names, strata = None, None
    else:
        index, class_names, test_index = _encode_classes(raw, encoding, where)
        y_all = encode_indices(index, len(class_names), encoding)
        y_test_all = encode_indices(test_index, len(class_names), encoding) if own_test else None
        strata = index if dcfg.split.stratify else None
    fingerprint = fingerprint_arrays(raw.x, y_all, *((raw.x_test, y_test_all) if own_test else ()))

    x_all = raw.x
    if own_test:
        train, val, _ = split_indices(len(x_all), dcfg, cfg.seed, strata, has_test=True)
        x_test, y_test = raw.x_test.astype(np.float32), y_test_all
    else:
        train, val, test = split_indices(len(x_all), dcfg, cfg.seed, strata, has_test=False)
        x_test, y_test = x_all[test].astype(np.float32, copy=False), y_all[test]
    # Fancy indexing copies, so scaling below may work in place without touching the raw data.
    x_train = x_all[train].astype(np.float32, copy=False)
    x_val = x_all[val].astype(np.float32, copy=False)
    sample_shape = tuple(int(d) for d in x_all.shape[1:])
    input_shape = input_shape_for(sample_shape, dcfg.reshape)
    offset, factor = _fit_scaling(x_train, dcfg.scale)
    prep = Preprocessing(**target_scaling(dcfg, encoding, y_all[train]),
        task="regression" if encoding == "none" else "classification",
        encoding=encoding,
        scale=dcfg.scale,
        sample_shape=list(sample_shape),
        input_shape=input_shape,
        feature_names=raw.feature_names,
        class_names=class_names,
        target=dcfg.target,
        offset=offset,
        factor=None if factor is None else np.asarray(factor, dtype=np.float32),
    )
    return Dataset(
        x_train=prep.transform(x_train), y_train=y_all[train],
        x_val=prep.transform(x_val), y_val=y_all[val],
        x_test=prep.transform(x_test), y_test=y_test,
        prep=prep, fingerprint=fingerprint, source=dcfg.source,
    )


def target_scaling(dcfg: DataConfig, encoding: Encoding, y_train: np.ndarray) -> dict[str, float]:
    """``target_mean`` / ``target_std`` of the train split, for ``data.target_scale: standard`` (regression)."""
    if dcfg.target_scale == "none":
        return {}
    if encoding != "none":
        raise ConfigError("data.target_scale", "standard is for regression targets; a classification loss needs the "
                          "labels as they are: set target_scale: none")
    std = float(np.std(y_train, dtype=np.float64))
    return {"target_mean": float(np.mean(y_train, dtype=np.float64)), "target_std": std if std > 0 else 1.0}


def row_hashes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """One 64-bit hash per row of features and label (pandas' hash, combined column by column)."""
    import pandas as pd

    flat_y = y.reshape(len(y), -1)
    out = np.zeros(len(x), dtype=np.uint64)
    for column in (*x.reshape(len(x), -1).T, *flat_y.T):
        out = out * np.uint64(1_000_003) ^ pd.util.hash_array(np.ascontiguousarray(column))
    return out


def prepare_table(cfg: ExperimentConfig, fitted: Preprocessing | None = None) -> Dataset:
    """A .csv / .parquet table: type its columns, drop unusable rows, split, then encode with state fitted on
    the train split only (or with ``fitted``, a run's saved preprocessing, to rebuild its splits exactly).

    The encoded rows are written in train, val, test order into one float32 array whose slices are the
    splits, so the table costs one extra copy (the encoded array) beside pandas' frame.
    """
    import pandas as pd

    from dlcli.data import columns as cols

    dcfg = cfg.data
    path = source_path(dcfg)
    where = str(path)
    df = load_table(path)
    names = list(df.columns)
    target = check_target_column(names, dcfg, path)
    plans = cols.plan_columns(df, dcfg, where)
    notes: list[str] = []
    left_out = [f"{p.name} ({p.reason.removeprefix('ignore: ')})" for p in plans if p.kind == "ignore" and not p.listed
                and dcfg.features is None]
    if left_out:
        notes.append(f"left out {len(left_out)} column(s) not listed in data.columns: {'; '.join(left_out)}")
    drop = df[target].isna().to_numpy()
    if drop.any():
        notes.append(f"dropped {int(drop.sum())} row(s) whose target {target!r} is missing")
    drop_cols = [p.name for p in plans if p.kind == "numeric" and p.spec.missing == "drop"]
    if drop_cols:
        empty = df[drop_cols].isna().to_numpy().any(axis=1) & ~drop
        if empty.any():
            notes.append(f"dropped {int(empty.sum())} row(s) with a missing value in {', '.join(drop_cols)} "
                         f"(missing: drop)")
        drop |= empty
    rows = np.flatnonzero(~drop)
    if not len(rows):
        raise DataError(f"{where}: no row is left after dropping rows with a missing target or value")
    encoding = label_encoding(cfg.compile.loss)
    y_raw = df[target].to_numpy()[rows]
    if encoding == "none":
        y_all = _numeric_target(y_raw, where)
        class_names, strata = None, None
    else:
        index, class_names, _ = _encode_classes(RawData(x=y_raw[:0], y=y_raw), encoding, where)
        y_all = encode_indices(index, len(class_names), encoding)
        strata = index if dcfg.split.stratify else None
    train, val, test = split_indices(len(rows), dcfg, cfg.seed, strata, has_test=False)
    order = np.concatenate([train, val, test])
    used = [p for p in plans if p.kind != "ignore"]
    if fitted is not None:
        states = fitted.columns or []
    else:
        train_rows = np.sort(rows[train])  # file order: a bad value is reported at its first row
        states = [cols.fit_column(p, df, where, train_rows) for p in used]
    encoded = cols.encode(df, states, where, rows=rows[order])
    x, y = encoded.x, y_all[order]
    bounds = np.cumsum([len(train), len(val)])
    onehot = cols.layout(states)
    if onehot is not None and dcfg.reshape is not None:
        raise ConfigError("data.reshape", "cannot reshape a table with categorical columns (the model one-hot encodes "
                          "them first); remove data.reshape")
    x = x.reshape((len(x), *input_shape_for((x.shape[1],), dcfg.reshape)))
    hashes = row_hashes(x, y)
    prep = Preprocessing(
        task="regression" if encoding == "none" else "classification", encoding=encoding, scale=dcfg.scale,
        sample_shape=[int(encoded.x.shape[1])], input_shape=list(x.shape[1:]),
        feature_names=[p.name for p in used], class_names=class_names, target=target,
        columns=states, dtypes={p.name: str(df[p.name].dtype) for p in used}, input_names=cols.input_names(states),
        onehot=onehot,
        row_hashes=np.sort(hashes[: bounds[0]]), **target_scaling(dcfg, encoding, y[: bounds[0]]))
    # The file's content, whatever the column settings: a search that tunes them, or evaluate with a run's
    # fitted state, sees the same fingerprint for the same file.
    raw_hashes = pd.util.hash_pandas_object(df, index=False).to_numpy()
    fingerprint = "sha256:" + hashlib.sha256(raw_hashes.tobytes() + str(list(df.columns)).encode()).hexdigest()[:16]
    return Dataset(x_train=x[: bounds[0]], y_train=y[: bounds[0]], x_val=x[bounds[0]: bounds[1]],
                   y_val=y[bounds[0]: bounds[1]], x_test=x[bounds[1]:], y_test=y[bounds[1]:], prep=prep,
                   fingerprint=fingerprint, source=dcfg.source, notes=notes,
                   columns=cols.describe(plans, states))
