"""Python's garbage collector in a process that builds model after model (a ``tune`` search)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collecting_only_new_objects() -> Iterator[None]:
    """Leave the objects alive when the block starts out of the collections run inside it (``gc.freeze``).

    ``keras.backend.clear_session()``, which each trial calls (and keras-tuner calls ``gc.collect()`` once more
    after it), runs a full collection. With TensorFlow loaded that walks about half a million objects (its
    modules, Keras's, the prepared data), 0.45 s each time here: 0.9 s per trial, for garbage that is almost
    all the previous trial's. Frozen, the old objects are skipped and what the block creates (each trial's
    model and traced graphs) is collected as before. Garbage already there when the block starts stays until
    it ends, when everything is unfrozen; results do not change, only when memory is given back.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
