"""Labels: how the loss wants its targets (class indices, one-hot rows, one 0/1 column or numbers)."""

from __future__ import annotations

from typing import Literal

import numpy as np

from dlcli.errors import ConfigError, DataError, allowed_list

# Losses whose targets are class indices, one-hot rows or a single 0/1 column.
SPARSE_LOSSES = {"sparse_categorical_crossentropy", "sparse_categorical_focal_crossentropy"}
ONE_HOT_LOSSES = {"categorical_crossentropy", "categorical_focal_crossentropy", "categorical_hinge",
                  "kl_divergence", "kld", "kullback_leibler_divergence"}
BINARY_LOSSES = {"binary_crossentropy", "binary_focal_crossentropy", "hinge", "squared_hinge"}

Task = Literal["classification", "regression"]
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


def encode_indices(index: np.ndarray, num_classes: int, encoding: Encoding) -> np.ndarray:
    """Class indices -> the array the loss expects."""
    if encoding == "one_hot":
        return np.eye(num_classes, dtype=np.float32)[index]
    if encoding == "binary":
        return index.astype(np.float32).reshape(-1, 1)
    return index.astype(np.int32)


def numeric_target(y: np.ndarray, where: str) -> np.ndarray:
    """A regression target as float32; text, NaN or infinite values are an error naming ``where``."""
    try:
        out = np.asarray(y, dtype=np.float32)
    except (TypeError, ValueError):
        raise DataError(f"{where}: the target is not numeric, but the loss is a regression loss; use a "
                        f"classification loss such as sparse_categorical_crossentropy") from None
    if not np.isfinite(out).all():
        raise DataError(f"{where}: the target holds NaN or infinite values")
    return out


def encode_classes(y: np.ndarray, class_names: list[str] | None, y_test: np.ndarray | None, encoding: Encoding,
                   where: str) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    """Class labels as indices into the sorted class names (or into ``class_names``, a bundled dataset's own).

    Args:
        y: the labels.
        class_names: the names integer labels index, or None to number the sorted distinct labels.
        y_test: a dataset's own test labels, numbered the same way (None: none).
        encoding: the loss's encoding (a binary loss needs exactly two classes).
        where: the data, for messages.

    Returns:
        The indices of ``y``, the class names, and the indices of ``y_test`` (or None).
    """
    if class_names is not None and y.dtype.kind in "iu":
        names = class_names
        index = y.astype(np.int64)
        test_index = y_test.astype(np.int64) if y_test is not None else None
    else:
        labels = y.astype(str) if y.dtype.kind not in "iub" else y
        classes, index = np.unique(labels, return_inverse=True)
        names = [str(c) for c in classes]
        test_index = None
        if y_test is not None:
            test_labels = y_test.astype(str) if y.dtype.kind not in "iub" else y_test
            test_index = np.searchsorted(classes, test_labels)
    present = np.unique(index)
    if len(present) < 2:
        raise DataError(f"{where}: the target has a single class ({names[int(present[0])]!r}); classification "
                        f"needs at least two")
    if encoding == "binary":
        check_two_classes(names, "the target")
    return index, names, test_index


def check_two_classes(names: list[str], holder: str) -> None:
    """A binary loss needs exactly two classes; ``holder`` (the target, the folder) says whose they are."""
    if len(names) != 2:
        raise ConfigError("compile.loss", f"a binary loss needs exactly 2 classes, {holder} has {len(names)} "
                          f"({allowed_list(names, 6)}); use sparse_categorical_crossentropy with a softmax output")
