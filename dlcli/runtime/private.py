"""The one place dlcli reaches into Keras's and keras-tuner's private modules (``keras.src.*``,
``keras_tuner.src.*``).

Each function imports one private module lazily and returns it; the comment above it says why no public API
does the job. All were checked against Keras 3.15.1 and keras-tuner 1.4.8: when either moves its internals, this
file is the one to read. A function raises ``ImportError`` when the module is gone; its callers fall back to
the public API where one exists.

Who uses what:

- ``dlcli.runtime``: ``keras_module_utils``, ``keras_seed_generator``, ``keras_global_state``,
  ``keras_rng_utils``.
- ``dlcli.tune.keras_side``: ``keras_tuner_config`` (``DEBUG``), ``keras_tuner_utils`` (``save_json``),
  ``keras_tuner_protos``, ``keras_tuner_oracle_chief``, ``keras_tuner_oracle_client`` (``TIMEOUT``).
- ``dlcli.tune.leases``: ``keras_tuner_protos``, ``keras_tuner_oracle_chief``. Its ``TrialStatus`` is public:
  ``keras_tuner.engine.trial.TrialStatus``, no private import needed.

Nothing here imports Keras or keras-tuner until a function is called.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


# --- Keras (checked against 3.15.1) ---------------------------------------------------------------------------

def keras_module_utils() -> ModuleType:
    """``keras.src.utils.module_utils``: its ``tensorflow`` lazy-module flag (``_available``) is what keeps
    Keras on JAX/PyTorch from importing TensorFlow just to check object types; Keras offers no switch."""
    return _module("keras.src.utils.module_utils")


def keras_seed_generator() -> ModuleType:
    """``keras.src.random.seed_generator``: ``global_seed_generator()`` (its state is JAX's global randomness,
    saved and restored by ``runtime.rng_preserved``) and ``GLOBAL_SEED_GENERATOR`` (reset when seeding);
    ``keras.random`` exposes neither."""
    return _module("keras.src.random.seed_generator")


def keras_global_state() -> ModuleType:
    """``keras.src.backend.common.global_state``: ``set_global_attribute``, to seed Keras without
    ``keras.utils.set_random_seed``, which imports TensorFlow whenever it is installed."""
    return _module("keras.src.backend.common.global_state")


def keras_rng_utils() -> ModuleType:
    """``keras.src.utils.rng_utils``: the ``GLOBAL_RANDOM_SEED`` attribute name that
    ``keras.utils.set_random_seed`` sets (used with ``keras_global_state``)."""
    return _module("keras.src.utils.rng_utils")


# --- keras-tuner (checked against 1.4.8) ----------------------------------------------------------------------

def keras_tuner_config() -> ModuleType:
    """``keras_tuner.src.config``: its ``DEBUG`` flag decides whether each failed trial's traceback is printed;
    keras-tuner has no public setting for it."""
    return _module("keras_tuner.src.config")


def keras_tuner_utils() -> ModuleType:
    """``keras_tuner.src.utils``: ``save_json``, what keras-tuner's ``Stateful.save`` calls, replaced by an
    atomic write; there is no public hook for how the tuner writes its files."""
    return _module("keras_tuner.src.utils")


def keras_tuner_protos() -> ModuleType:
    """``keras_tuner.src.protos``: the gRPC service and messages of keras-tuner's chief/worker protocol, needed
    to serve the oracle ourselves (a chief that can stop, leases) and to call it (heartbeats)."""
    return _module("keras_tuner.src.protos")


def keras_tuner_oracle_chief() -> ModuleType:
    """``keras_tuner.src.distribute.oracle_chief``: ``OracleServicer`` (served, and subclassed for leases) and
    ``exit_chief``; keras-tuner only starts its chief from inside ``Tuner.search``, which blocks forever."""
    return _module("keras_tuner.src.distribute.oracle_chief")


def keras_tuner_oracle_client() -> ModuleType:
    """``keras_tuner.src.distribute.oracle_client``: its ``TIMEOUT`` (an hour per call by default) is the only
    way to make a worker give up on a chief that is gone."""
    return _module("keras_tuner.src.distribute.oracle_client")
