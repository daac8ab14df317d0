"""A trial's bookkeeping, below the CLI: the best epoch's checkpoint, written once per trial, and the garbage
collector's frozen start-up objects during a search."""

from __future__ import annotations

import gc
import weakref

import numpy as np


def _h5_arrays(path) -> dict[str, np.ndarray]:
    import h5py

    arrays = {}
    with h5py.File(path) as fh:
        fh.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return arrays


def test_the_best_epoch_checkpoint_is_the_file_keras_tuners_own_callback_writes(tmp_path):
    import keras_tuner as kt
    from keras_tuner.src.engine.tuner_utils import SaveBestEpoch  # keras-tuner's, to compare with

    from dlcli.tune.trials import BestEpoch, keras

    objective = kt.Objective("val_accuracy", "max")
    theirs, ours = SaveBestEpoch(objective, str(tmp_path / "theirs.weights.h5")), BestEpoch(objective)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 3, 64)
    for execution in range(2):  # the best epoch over both executions, as keras-tuner keeps it
        keras.utils.set_random_seed(execution)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dense(3, activation="softmax")])
        model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(x, y, validation_data=(x[:16], y[:16]), epochs=6, batch_size=16, verbose=0,
                  callbacks=[theirs, ours])
    ours.save(tmp_path / "ours.weights.h5")

    assert ours.best_value == theirs.best_value
    expected, written = _h5_arrays(tmp_path / "theirs.weights.h5"), _h5_arrays(tmp_path / "ours.weights.h5")
    assert sorted(written) == sorted(expected) and any(k.startswith("optimizer") for k in written)
    assert all(np.array_equal(written[k], expected[k]) for k in expected)
    assert not list(tmp_path.glob(".*.tmp*"))  # written through a temporary file, renamed


def test_collections_in_a_search_skip_the_objects_alive_before_it_and_free_its_own_garbage():
    from dlcli.runtime import collecting_only_new_objects

    class Node:
        pass

    with collecting_only_new_objects():
        assert gc.get_freeze_count() > 0  # what was alive before the block
        node = Node()
        node.self = node  # a cycle: only the collector frees it
        freed = weakref.ref(node)
        del node
        gc.collect()
        assert freed() is None
    assert gc.get_freeze_count() == 0
