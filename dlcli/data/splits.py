"""Train / validation / test split of samples: scikit-learn's ``train_test_split``, seeded, optionally
stratified by class."""

from __future__ import annotations

import numpy as np

from dlcli import runtime
from dlcli.config import DataConfig
from dlcli.errors import DataError


def split_indices(n: int, cfg: DataConfig, seed: int, strata: np.ndarray | None, has_test: bool) -> tuple:
    """Train, val and test positions of ``n`` samples for ``data.split``.

    Args:
        n: the number of samples.
        cfg: the data config (its ``split`` fractions).
        seed: the experiment's seed.
        strata: each sample's class index to stratify by, or None.
        has_test: the dataset brings its own test split; only train and val are cut here.

    Raises:
        DataError: too few samples for a fraction, or a class too small to stratify.
    """
    with runtime.big_import("sklearn"):
        from sklearn.model_selection import train_test_split  # lazy: start-up speed

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
    else:
        rest, test = cut(idx, split.test, "test")
    train, val = cut(rest, split.val / (split.train + split.val), "val")
    return train, val, test
