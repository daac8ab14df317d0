"""Prepare the data an experiment config describes: load, encode labels for the loss, split, scale and
reshape into a :class:`~dlcli.data.dataset.Dataset`.

Arrays (bundled, Keras and .npz datasets) go through :func:`prepare`; tables through :func:`prepare_table`
(typed columns, ``dlcli.data.columns``); image folders through ``images.prepare_folder``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlcli.config import ExperimentConfig
from dlcli.data.columns.encode import describe, encode, input_names, layout
from dlcli.data.columns.fit import fit_column
from dlcli.data.columns.infer import plan_columns
from dlcli.data.dataset import Dataset, Preprocessing
from dlcli.data.fingerprints import fingerprint_arrays, fingerprint_table, row_hashes
from dlcli.data.images import check_image_settings_unused, prepare_folder
from dlcli.data.labels import encode_classes, encode_indices, label_encoding, numeric_target
from dlcli.data.scaling import fit_scaling, input_shape_for, target_scaling
from dlcli.data.sources import load_raw, source_path
from dlcli.data.splits import split_indices
from dlcli.data.tables import check_target_column, load_table
from dlcli.errors import ConfigError, DataError


def prepare(cfg: ExperimentConfig) -> Dataset:
    """Load, encode, split, scale and reshape the data an experiment config describes.

    Raises:
        ConfigError: a data setting does not fit the data (target column, reshape, loss vs classes).
        DataError: the data itself cannot be used (missing file, bad values, too few samples).
    """
    dcfg = cfg.data
    if dcfg.kind == "folder":
        return prepare_folder(cfg)
    check_image_settings_unused(dcfg)
    if dcfg.kind == "file" and Path(dcfg.source).suffix.lower() in (".csv", ".parquet"):
        return prepare_table(cfg)
    if dcfg.columns:
        raise ConfigError("data.columns", f"is for .csv and .parquet tables; {dcfg.source!r} has no named columns")
    raw = load_raw(dcfg)
    where = dcfg.source if dcfg.kind == "file" else f"data.source {dcfg.source!r}"
    encoding = label_encoding(cfg.compile.loss)
    own_test = raw.x_test is not None and dcfg.split.source_test
    if encoding == "none":
        y_all = numeric_target(raw.y, where)
        y_test_all = numeric_target(raw.y_test, where) if own_test else None
        class_names, strata = None, None
    else:
        index, class_names, test_index = encode_classes(raw.y, raw.class_names, raw.y_test, encoding, where)
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
    offset, factor = fit_scaling(x_train, dcfg.scale)
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


def prepare_table(cfg: ExperimentConfig, fitted: Preprocessing | None = None) -> Dataset:
    """A .csv / .parquet table: type its columns, drop unusable rows, split, then encode with state fitted on
    the train split only (or with ``fitted``, a run's saved preprocessing, to rebuild its splits exactly).

    The encoded rows are written in train, val, test order into one float32 array whose slices are the
    splits, so the table costs one extra copy (the encoded array) beside pandas' frame.
    """
    dcfg = cfg.data
    path = source_path(dcfg)
    where = str(path)
    df = load_table(path)
    names = list(df.columns)
    target = check_target_column(names, dcfg, path)
    plans = plan_columns(df, dcfg, where)
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
        y_all = numeric_target(y_raw, where)
        class_names, strata = None, None
    else:
        index, class_names, _ = encode_classes(y_raw, None, None, encoding, where)
        y_all = encode_indices(index, len(class_names), encoding)
        strata = index if dcfg.split.stratify else None
    train, val, test = split_indices(len(rows), dcfg, cfg.seed, strata, has_test=False)
    order = np.concatenate([train, val, test])
    used = [p for p in plans if p.kind != "ignore"]
    if fitted is not None:
        states = fitted.columns or []
    else:
        train_rows = np.sort(rows[train])  # file order: a bad value is reported at its first row
        states = [fit_column(p, df, where, train_rows) for p in used]
    encoded = encode(df, states, where, rows=rows[order])
    x, y = encoded.x, y_all[order]
    bounds = np.cumsum([len(train), len(val)])
    onehot = layout(states)
    if onehot is not None and dcfg.reshape is not None:
        raise ConfigError("data.reshape", "cannot reshape a table with categorical columns (the model one-hot encodes "
                          "them first); remove data.reshape")
    x = x.reshape((len(x), *input_shape_for((x.shape[1],), dcfg.reshape)))
    hashes = row_hashes(x, y)
    prep = Preprocessing(
        task="regression" if encoding == "none" else "classification", encoding=encoding, scale=dcfg.scale,
        sample_shape=[int(encoded.x.shape[1])], input_shape=list(x.shape[1:]),
        feature_names=[p.name for p in used], class_names=class_names, target=target,
        columns=states, dtypes={p.name: str(df[p.name].dtype) for p in used}, input_names=input_names(states),
        onehot=onehot,
        row_hashes=np.sort(hashes[: bounds[0]]), **target_scaling(dcfg, encoding, y[: bounds[0]]))
    return Dataset(x_train=x[: bounds[0]], y_train=y[: bounds[0]], x_val=x[bounds[0]: bounds[1]],
                   y_val=y[bounds[0]: bounds[1]], x_test=x[bounds[1]:], y_test=y[bounds[1]:], prep=prep,
                   fingerprint=fingerprint_table(df), source=dcfg.source, notes=notes,
                   columns=describe(plans, states))
