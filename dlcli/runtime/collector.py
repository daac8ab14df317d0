"""Python's garbage collector around the big imports (TensorFlow, scikit-learn) and in a process that builds model
after model (a ``tune`` search)."""

from __future__ import annotations

import contextlib
import gc
import sys
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


@contextlib.contextmanager
def big_import(package: str) -> Iterator[None]:
    """Import a large library (TensorFlow with Keras, scikit-learn) in the block without Python's garbage
    collector, and leave what it loaded out of later collections.

    An import makes objects, hardly any garbage; yet every few thousand of them the collector runs, and the
    full collections walk everything loaded so far: TensorFlow's import ran eight of them, 0.8-1.4 s of its 4-5 s
    here (``import keras, sklearn``: 4.7-4.9 s with the collector, 3.5-4.2 s without, 4 alternating pairs). The
    garbage made before the block is collected first (a collection of the small heap there is, before the
    library), then the library's modules and objects are frozen (``gc.freeze``): they live as long as the
    process, and later collections (the first epoch traces a graph and makes many objects) skip them. Frozen
    objects are still freed when nothing refers to them; only a cycle among them would be kept. Nothing is done
    when ``package`` is already imported.
    """
    if package in sys.modules:
        yield
        return
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
