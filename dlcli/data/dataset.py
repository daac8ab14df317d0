"""The prepared data: :class:`Dataset` (the splits for ``model.fit``) and :class:`Preprocessing` (what was
fitted on the train split, stored in the run directory so that ``evaluate`` and ``predict`` apply exactly
what training applied)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from dlcli.data.labels import Encoding, Task, encode_indices, numeric_target
from dlcli.errors import DataError, allowed_list, first_line, quoted
from dlcli.runs import atomic_write_text, damaged, json_object, read_run_file, replacing

ARRAY_FIELDS = ("offset", "factor", "row_hashes")  # saved in preprocessing.npz, the rest in preprocessing.json


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
            return numeric_target(y, where)
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
        meta = {k: v for k, v in asdict(self).items() if k not in ARRAY_FIELDS}
        atomic_write_text(directory / "preprocessing.json", json.dumps(meta, indent=2))
        arrays = {k: getattr(self, k) for k in ARRAY_FIELDS if getattr(self, k) is not None}
        if arrays:
            with replacing(directory / "preprocessing.npz") as tmp:
                np.savez(tmp, **arrays)

    @classmethod
    def load(cls, directory: Path) -> Preprocessing:
        """Read what :meth:`save` wrote. Raises RunError naming the file if either is damaged."""
        meta = read_run_file(directory / "preprocessing.json", json_object)
        arrays: dict[str, Any] = {}
        path = directory / "preprocessing.npz"
        if path.exists():
            try:
                with np.load(path, allow_pickle=False) as npz:
                    arrays = {k: npz[k] for k in npz.files}
            except Exception as exc:  # a damaged zip raises zipfile, OSError or ValueError errors
                raise damaged(path, first_line(exc, 160)) from None
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
        import tensorflow as tf  # lazy: imports TensorFlow (only an image folder's splits are tf.data)

        return {"x": x.batch(batch_size).prefetch(tf.data.AUTOTUNE)}
    return {"x": x, "batch_size": batch_size} | ({} if y is None else {"y": y})
