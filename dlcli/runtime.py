"""Backend-specific set-up: importing Keras quietly, choosing the device, seeding, threads.

Everything that touches TensorFlow directly (rather than through ``keras.*``) lives here, so
that the rest of dlcli only uses Keras APIs.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

from dlcli.errors import ConfigError

# Level 3 also hides the C++ "errors" TensorFlow logs for harmless conditions (no CUDA driver,
# op attributes newer than the runtime); --verbose shows them again.
_QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0"}


@contextlib.contextmanager
def _stderr_silenced(enabled: bool):
    """Silence C-level stderr (TensorFlow's absl start-up lines cannot be turned off otherwise)."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _quiet(verbose: bool = False) -> bool:
    return not verbose and os.environ.get("DLCLI_VERBOSE") != "1"


def import_keras(verbose: bool = False) -> Any:
    """Import Keras (and so TensorFlow), hiding TensorFlow's start-up noise unless ``verbose``."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)
    if os.environ.get("DLCLI_VERBOSE") == "1":
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    with _stderr_silenced(_quiet(verbose)):
        import keras  # noqa: PLC0415 - deliberately lazy: TensorFlow takes seconds to import
        import tensorflow  # noqa: F401,PLC0415 - finish the noisy part while stderr is silenced
    split_cpu()
    return keras


CPU_DEVICES_ENV = "DLCLI_CPU_DEVICES"


def split_cpu() -> None:
    """Split the CPU into ``$DLCLI_CPU_DEVICES`` logical devices (unset: leave it whole), so that
    ``distribution: mirrored`` can be tried, and tested, on a machine without GPUs.

    Must run before TensorFlow creates its devices: ``import_keras`` calls it right after the import.

    Raises:
        ConfigError: the variable is not a whole number from 1 to 64.
    """
    text = os.environ.get(CPU_DEVICES_ENV, "").strip()
    if not text:
        return
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise ConfigError(CPU_DEVICES_ENV, f"{text!r} is not a number of CPU devices from 1 to 64")
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    with contextlib.suppress(RuntimeError):  # already initialised (split earlier in this process): keep it
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * int(text))


def distribution_strategy(distribution: str, device: str) -> Any:
    """The ``tf.distribute`` strategy for ``distribution`` (None for "none").

    "mirrored" is ``MirroredStrategy``: one copy of the model per GPU when ``device`` (the device used,
    from ``setup``) is "gpu", else one per logical CPU device (see ``split_cpu``).
    """
    if distribution == "none":
        return None
    import tensorflow as tf

    devices = None if device == "gpu" else [d.name for d in tf.config.list_logical_devices("CPU")]
    with _stderr_silenced(_quiet()):
        return tf.distribute.MirroredStrategy(devices=devices)


@contextlib.contextmanager
def strategy_scope(strategy: Any):
    """Build and compile models inside this, so that their variables live where ``strategy`` puts them."""
    if strategy is None:
        yield
        return
    with strategy.scope():
        yield


def describe_strategy(strategy: Any) -> dict[str, Any]:
    """What run.json records: the strategy's class, its number of model copies and their devices."""
    if strategy is None:
        return {"strategy": None, "replicas": 1}
    return {"strategy": type(strategy).__name__, "replicas": int(strategy.num_replicas_in_sync),
            "devices": [str(d) for d in strategy.extended.worker_devices]}


def setup(device: str, seed: int, deterministic: bool = True) -> str:
    """Select the device, seed every generator and set determinism. Returns the device used.

    Must run before any tensor is created.

    Raises:
        ConfigError: ``device: gpu`` but no GPU is visible.
    """
    keras = import_keras()
    import tensorflow as tf

    split_cpu()  # in case Keras was imported before import_keras (a no-op once TensorFlow has its devices)
    with _stderr_silenced(_quiet()):  # the CUDA probe logs an "error" when there is no driver
        gpus = tf.config.list_physical_devices("GPU")
    if device == "gpu" and not gpus:
        raise ConfigError("device", "'gpu' was asked for, but TensorFlow sees no GPU on this machine (is "
                          "tensorflow[and-cuda] installed and the driver loaded?); use device: cpu or auto")
    used = "gpu" if gpus and device != "cpu" else "cpu"
    if device == "cpu" and gpus:
        with contextlib.suppress(RuntimeError):  # already initialised: keep what we have
            tf.config.set_visible_devices([], "GPU")
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    return used


def limit_threads(threads: int | None) -> None:
    """Let TensorFlow use at most ``threads`` CPU threads within an op and across ops (None: all cores).

    Must run before any tensor is created; later calls keep the threads already set.
    """
    if threads is None:
        return
    import_keras()
    import tensorflow as tf

    with contextlib.suppress(RuntimeError):  # already initialised: keep what we have
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def versions() -> dict[str, str]:
    """Versions worth recording in run.json."""
    import platform

    from dlcli import __version__

    keras = import_keras()
    out = {"python": platform.python_version(), "dlcli": __version__, "keras": keras.__version__,
           "backend": keras.backend.backend()}
    with contextlib.suppress(Exception):
        import tensorflow as tf

        out["tensorflow"] = tf.__version__
    with contextlib.suppress(Exception):
        import numpy

        out["numpy"] = numpy.__version__
    return out
