"""The hand-written Keras script dlcli is measured against.

It does what a user would write without dlcli: load the data, split it, scale it, build the same
model, fit the same epochs with the same batch size, score the test split. It prints one JSON line
with its timings. Run by ``bench.py``; ``python benchmarks/plain_keras.py --help`` lists the cases.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def load(case: str, path: str | None):
    import numpy as np

    if case in ("digits_mlp", "digits_cnn", "grid"):
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        return x.astype("float32"), y
    import pandas as pd

    df = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
    y = df.pop("label").to_numpy()
    return df.to_numpy(dtype=np.float32), y


def build(case: str, keras, input_shape, classes: int):
    if case == "digits_cnn":
        layers = [keras.layers.Conv2D(32, 3, padding="same", activation="relu"), keras.layers.BatchNormalization(),
                  keras.layers.Conv2D(32, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D(2),
                  keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
                  keras.layers.GlobalAveragePooling2D(), keras.layers.Dropout(0.3),
                  keras.layers.Dense(classes, activation="softmax")]
    elif case == "digits_mlp":
        layers = [keras.layers.Dense(128, activation="relu", kernel_regularizer=keras.regularizers.L1L2(l2=1e-4)),
                  keras.layers.Dropout(0.2), keras.layers.Dense(64, activation="relu"),
                  keras.layers.Dense(classes, activation="softmax")]
    else:  # the large tabular set
        layers = [keras.layers.Dense(64, activation="relu"), keras.layers.Dense(32, activation="relu"),
                  keras.layers.Dense(classes, activation="softmax")]
    model = keras.Sequential([keras.Input(input_shape), *layers])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


GRID = [(units, rate, batch) for rate in (1e-3, 3e-3) for batch in (32, 64) for units in (32, 64)]


def grid_by_hand(keras, x, y, train, val, classes: int, epochs: int, start: float, trials: int) -> None:
    """The fits of the benchmark's grid search (the first ``trials`` of 8), one after another in this process."""
    best = 0.0
    for units, rate, batch in GRID[:trials]:
        keras.backend.clear_session()
        model = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.Dense(units, activation="relu"),
                                  keras.layers.Dense(classes, activation="softmax")])
        model.compile(optimizer=keras.optimizers.Adam(rate), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        history = model.fit(x[train], y[train], validation_data=(x[val], y[val]), epochs=epochs, batch_size=batch,
                            verbose=0)
        best = max(best, max(history.history["val_accuracy"]))
    print(json.dumps({"seconds": time.perf_counter() - start, "best_val_accuracy": best, "trials": trials}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("case", choices=["digits_mlp", "digits_cnn", "table", "grid"])
    parser.add_argument("--data", help="CSV or Parquet file for the table case")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--trials", type=int, default=8, help="grid case: how many of the 8 fits to run")
    args = parser.parse_args()
    start = time.perf_counter()

    import keras
    import numpy as np
    from sklearn.model_selection import train_test_split

    keras.utils.set_random_seed(42)
    x, y = load(args.case, args.data)
    classes, y = np.unique(y, return_inverse=True)
    idx = np.arange(len(x))
    # The split sizes dlcli uses (rounded counts; a float test_size would round up), so both sides train and
    # score the very same samples and their test accuracies can be compared.
    rest, test = train_test_split(idx, test_size=round(0.15 * len(idx)), random_state=42, stratify=y)
    train, val = train_test_split(rest, test_size=round(0.15 / 0.85 * len(rest)), random_state=42, stratify=y[rest])
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    std[std == 0] = 1
    x = (x - mean) / std
    if args.case == "digits_cnn":
        x = x.reshape(-1, 8, 8, 1)
    if args.case == "grid":
        return grid_by_hand(keras, x, y, train, val, len(classes), args.epochs, start, args.trials)
    model = build(args.case, keras, x.shape[1:], len(classes))

    epoch_times: list[float] = []
    first_epoch_end: list[float] = []  # unix time, against the benchmark's start of this process

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_times.append(time.perf_counter() - self.t)
            if len(epoch_times) == 1:
                first_epoch_end.append(time.time())

    model.fit(x[train], y[train], validation_data=(x[val], y[val]), epochs=args.epochs, batch_size=args.batch_size,
              verbose=0, callbacks=[Timer()])
    scores = model.evaluate(x[test], y[test], batch_size=args.batch_size, verbose=0, return_dict=True)
    print(json.dumps({"epoch_seconds": epoch_times, "test_accuracy": float(scores["accuracy"]),
                      "first_epoch_end_unix": first_epoch_end[0],
                      "seconds": time.perf_counter() - start, "train_samples": int(len(train))}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
