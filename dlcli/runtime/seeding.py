"""Seeding: every random generator a run draws from (Python, NumPy, Keras's global seed generator, the backend)
seeded from ``seed``, and their state saved and put back around a block."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from dlcli.runtime import private
from dlcli.runtime.backend import import_keras


@contextlib.contextmanager
def rng_preserved() -> Iterator[None]:
    """Put Python's, NumPy's, PyTorch's and Keras's global random state back as it was when the block ends
    (JAX's randomness lives in Keras's global seed generator)."""
    import random

    import numpy as np

    keras = import_keras()
    saved = (random.getstate(), np.random.get_state())
    torch_state = None
    if keras.backend.backend() == "torch":
        import torch

        torch_state = torch.get_rng_state()
    try:
        generator = private.keras_seed_generator().global_seed_generator()
        generator_state = keras.ops.convert_to_numpy(generator.state.value).copy()
    except (ImportError, AttributeError):  # Keras moved its internals: restore what we can
        generator = None
    try:
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        if torch_state is not None:
            import torch

            torch.set_rng_state(torch_state)
        if generator is not None:
            generator.state.assign(generator_state)


def set_seed(keras: Any, seed: int) -> None:
    """Seed Python, NumPy, Keras's global generator and the backend.

    ``keras.utils.set_random_seed`` also seeds TensorFlow whenever it is installed, which imports it
    (seconds, and the import a JAX or PyTorch run must not make), so on those backends the same steps
    are taken here without that one.
    """
    if keras.backend.backend() == "tensorflow":
        keras.utils.set_random_seed(seed)
        return
    import random

    import numpy as np

    try:
        global_state = private.keras_global_state()
        seed_generator = private.keras_seed_generator()
        rng_utils = private.keras_rng_utils()
    except ImportError:  # Keras moved its internals: fall back to the public call
        keras.utils.set_random_seed(seed)
        return
    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)
