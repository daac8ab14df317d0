"""The Keras backend of this process: choosing it before Keras is imported, importing Keras quietly, keeping
TensorFlow out of JAX and PyTorch runs, and splitting the CPU into logical devices right after TensorFlow starts."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

from dlcli.errors import ConfigError
from dlcli.runtime import private
from dlcli.runtime.collector import big_import

# TensorFlow's C++ log level, read once when TensorFlow is imported: 3 also hides the "E0000 ..." lines it
# logs as errors for harmless conditions (no CUDA driver; "NodeDef mentions attribute use_unbounded_threadpool
# which is not in the op definition", once per fit, from tf.data). It is set whatever the environment says:
# the common TF_CPP_MIN_LOG_LEVEL=2 still lets those lines through. --verbose sets 0 and shows them all.
_QUIET_LOG_LEVEL, _VERBOSE_LOG_LEVEL = "3", "0"
_DEFAULT_ENV = {"TF_ENABLE_ONEDNN_OPTS": "0"}


@contextlib.contextmanager
def stderr_silenced(enabled: bool):
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


def quiet(verbose: bool = False) -> bool:
    """Whether TensorFlow's start-up noise is hidden: not with ``verbose`` or ``$DLCLI_VERBOSE=1``."""
    return not verbose and os.environ.get("DLCLI_VERBOSE") != "1"


# Each backend is the Python package of its name; the line that installs it.
_BACKEND_INSTALL = {"tensorflow": "pip install dlcli", "jax": "pip install 'dlcli[jax]'",
                    "torch": "pip install 'dlcli[torch]'   (CPU build: pip install torch==2.13.0)"}


def current_backend() -> str | None:
    """The backend Keras runs on in this process, or None before Keras is imported."""
    keras = sys.modules.get("keras")
    return keras.backend.backend() if keras is not None and hasattr(keras, "backend") else None


def select_backend(backend: str, device: str = "auto", deterministic: bool | str = "auto") -> None:
    """Choose the Keras backend for this process; must run before Keras is imported.

    For JAX and PyTorch, ``device: cpu`` hides the GPUs from them here (they read it at import), and
    ``deterministic`` (true or auto: on a GPU, see :func:`~dlcli.runtime.devices.determinism_on`) asks XLA for
    deterministic GPU kernels.

    Raises:
        ConfigError: the backend's package is not installed (with the pip line that installs it), or
            Keras already runs on another backend in this process.
    """
    import importlib.util

    if importlib.util.find_spec(backend) is None:
        raise ConfigError("backend", f"{backend!r} is not installed in this Python environment; install it with: "
                          f"{_BACKEND_INSTALL[backend]}")
    running = current_backend()
    if running is not None:
        if running != backend:
            raise ConfigError("backend", f"Keras already runs on {running!r} in this process and cannot switch to "
                              f"{backend!r}; run dlcli again (a new process) with --backend {backend}")
        return
    os.environ["KERAS_BACKEND"] = backend
    if backend == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        cpus = os.environ.get(CPU_DEVICES_ENV, "").strip()
        if cpus.isdigit() and "xla_force_host_platform_device_count" not in flags:
            flags += f" --xla_force_host_platform_device_count={cpus}"  # several CPU devices, as split_cpu does
        if deterministic is not False and "xla_gpu_deterministic_ops" not in flags:  # it only acts on a GPU
            flags += " --xla_gpu_deterministic_ops=true"
        os.environ["XLA_FLAGS"] = flags.strip()
        if device == "cpu":
            os.environ["JAX_PLATFORMS"] = "cpu"
    elif backend == "torch" and device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""


def import_keras(verbose: bool = False) -> Any:
    """Import Keras on the selected backend (TensorFlow's start-up noise hidden unless ``verbose``).

    Only the tensorflow backend imports TensorFlow: on JAX and PyTorch it is never imported.
    """
    if "keras" in sys.modules:
        return sys.modules["keras"]
    for key, value in _DEFAULT_ENV.items():
        os.environ.setdefault(key, value)
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = _QUIET_LOG_LEVEL if quiet(verbose) else _VERBOSE_LOG_LEVEL
    with stderr_silenced(quiet(verbose)), big_import("keras"):
        import keras  # lazy: a backend takes seconds to import
        if keras.backend.backend() == "tensorflow":
            import tensorflow  # noqa: F401 - finish the noisy part while stderr is silenced
    if keras.backend.backend() == "tensorflow":
        split_cpu()
    else:
        _hide_tensorflow_from_keras(True)
    return keras


def _hide_tensorflow_from_keras(hide: bool) -> None:
    """On JAX and PyTorch, keep Keras from importing TensorFlow (seconds, and memory) just to check
    whether objects are TensorFlow types (it does so when seeding and when saving a model, whenever
    TensorFlow is installed). ``allow_tensorflow`` lifts this for ``tf.data`` pipelines."""
    try:
        module_utils = private.keras_module_utils()
    except ImportError:  # Keras moved its internals: it may import TensorFlow, nothing breaks
        return
    if "tensorflow" not in sys.modules:
        module_utils.tensorflow._available = False if hide else None


def allow_tensorflow() -> None:
    """Let this process use TensorFlow (``tf.data``) whatever the backend: image folders need it."""
    _hide_tensorflow_from_keras(False)


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
