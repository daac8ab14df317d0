"""Backend-specific set-up: choosing the Keras backend, importing Keras quietly, the device, seeding,
determinism, threads and distribution.

Everything that touches TensorFlow, JAX or PyTorch directly (rather than through ``keras.*``)
lives here, so that the rest of dlcli only uses Keras APIs and runs unchanged on every backend.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

from dlcli.config import BACKENDS
from dlcli.errors import ConfigError

# TensorFlow's C++ log level, read once when TensorFlow is imported: 3 also hides the "E0000 ..." lines it
# logs as errors for harmless conditions (no CUDA driver; "NodeDef mentions attribute use_unbounded_threadpool
# which is not in the op definition", once per fit, from tf.data). It is set whatever the environment says:
# the common TF_CPP_MIN_LOG_LEVEL=2 still lets those lines through. --verbose sets 0 and shows them all.
_QUIET_LOG_LEVEL, _VERBOSE_LOG_LEVEL = "3", "0"
_DEFAULT_ENV = {"TF_ENABLE_ONEDNN_OPTS": "0"}


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


# Each backend is the Python package of its name; the line that installs it.
_BACKEND_INSTALL = {"tensorflow": "pip install dlcli", "jax": "pip install 'dlcli[jax]'",
                    "torch": "pip install 'dlcli[torch]'   (CPU build: pip install torch==2.13.0)"}


def default_backend() -> str:
    """``$KERAS_BACKEND`` if set, else tensorflow."""
    return os.environ.get("KERAS_BACKEND") or "tensorflow"


def current_backend() -> str | None:
    """The backend Keras runs on in this process, or None before Keras is imported."""
    keras = sys.modules.get("keras")
    return keras.backend.backend() if keras is not None and hasattr(keras, "backend") else None


def select_backend(backend: str, device: str = "auto", deterministic: bool = True) -> None:
    """Choose the Keras backend for this process; must run before Keras is imported.

    For JAX and PyTorch, ``device: cpu`` hides the GPUs from them here (they read it at import), and
    ``deterministic`` asks XLA for deterministic GPU kernels.

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
        if deterministic and "xla_gpu_deterministic_ops" not in flags:
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
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = _QUIET_LOG_LEVEL if _quiet(verbose) else _VERBOSE_LOG_LEVEL
    with _stderr_silenced(_quiet(verbose)):
        import keras  # noqa: PLC0415 - deliberately lazy: a backend takes seconds to import
        if keras.backend.backend() == "tensorflow":
            import tensorflow  # noqa: F401,PLC0415 - finish the noisy part while stderr is silenced
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
        from keras.src.utils import module_utils
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


def distribution_strategy(distribution: str, device: str) -> Any:
    """The ``tf.distribute`` strategy for ``distribution`` (None for "none" and "data_parallel").

    "mirrored" is ``MirroredStrategy``: one copy of the model per GPU when ``device`` (the device used,
    from ``setup``) is "gpu", else one per logical CPU device (see ``split_cpu``). "data_parallel" (JAX)
    sets Keras's global ``DataParallel`` distribution instead, across every local device.
    """
    backend = import_keras().backend.backend()
    if distribution == "data_parallel":
        if backend != "jax":
            raise ConfigError("distribution", f"'data_parallel' uses Keras's distribution API, which runs on the "
                              f"jax backend (this run uses {backend!r}); use backend: jax, or distribution: "
                              f"mirrored on tensorflow")
        keras = import_keras()
        if os.environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES"):
            # Several hosts: every host runs the same command; Keras reads the job addresses, the number of
            # processes and this one's id from KERAS_DISTRIBUTION_* (see README, "Backends").
            keras.distribution.initialize()
        keras.distribution.set_distribution(keras.distribution.DataParallel(
            devices=keras.distribution.list_devices()))
        return None
    if distribution == "none":
        return None
    if backend != "tensorflow":
        raise ConfigError("distribution", f"'mirrored' is TensorFlow's MirroredStrategy; this run uses the "
                          f"{backend!r} backend (use backend: tensorflow, or distribution: data_parallel on jax)")
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
        keras = import_keras()
        dist = keras.distribution.distribution() if keras.backend.backend() == "jax" else None
        if dist is not None:
            devices = [str(d) for d in dist.device_mesh.devices.flatten()]
            return {"strategy": type(dist).__name__, "replicas": len(devices), "devices": devices}
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
    backend = keras.backend.backend()
    gpus = _gpus(backend)
    if device == "gpu" and not gpus:
        fix = {"tensorflow": "is tensorflow[and-cuda] installed and the driver loaded?",
               "jax": "is jax[cuda12] installed and the driver loaded?",
               "torch": "is a CUDA build of torch installed and the driver loaded?"}[backend]
        raise ConfigError("device", f"'gpu' was asked for, but the {backend} backend sees no GPU on this machine "
                          f"({fix}); use device: cpu or auto")
    used = "gpu" if gpus and device != "cpu" else "cpu"
    if backend == "tensorflow":
        import tensorflow as tf

        if device == "cpu" and gpus:
            with contextlib.suppress(RuntimeError):  # already initialised: keep what we have
                tf.config.set_visible_devices([], "GPU")
        if deterministic:
            tf.config.experimental.enable_op_determinism()
    elif backend == "torch" and deterministic:
        import torch

        torch.use_deterministic_algorithms(True, warn_only=True)
    # JAX on a CPU is deterministic already; on a GPU select_backend set --xla_gpu_deterministic_ops.
    set_seed(keras, seed)
    return used


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
        from keras.src.random import seed_generator

        generator = seed_generator.global_seed_generator()
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
        from keras.src.backend.common import global_state
        from keras.src.random import seed_generator
        from keras.src.utils import rng_utils
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


def _gpus(backend: str) -> list[Any]:
    """The GPUs the backend can use."""
    if backend == "jax":
        import jax

        return [d for d in jax.devices() if d.platform != "cpu"]
    if backend == "torch":
        import torch

        return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    import tensorflow as tf

    split_cpu()  # in case Keras was imported before import_keras (a no-op once TensorFlow has its devices)
    with _stderr_silenced(_quiet()):  # the CUDA probe logs an "error" when there is no driver
        return tf.config.list_physical_devices("GPU")


def limit_threads(threads: int | None) -> None:
    """Let TensorFlow use at most ``threads`` CPU threads within an op and across ops (None: all cores).

    Must run before any tensor is created; later calls keep the threads already set.
    """
    if threads is None:
        return
    backend = import_keras().backend.backend()
    if backend == "torch":
        import torch

        torch.set_num_threads(threads)
        return
    if backend == "jax":
        return  # XLA sizes its CPU thread pool at start-up; workers share the cores through the OS
    import tensorflow as tf

    with contextlib.suppress(RuntimeError):  # already initialised: keep what we have
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


@contextlib.contextmanager
def releasing_traced_graphs() -> Iterator[None]:
    """Forget, when the block ends, the gradient functions ``tf.custom_gradient`` registered in it.

    While tracing a model's train step, TensorFlow registers one such function per traced function
    in a global registry and never removes it, and its closure holds the whole traced graph: fitting
    model after model (a ``tune`` search) grew the process by about 5 MiB per model here, even with
    ``keras.backend.clear_session()``. Use it only around models that are not trained again after it.
    """
    if import_keras().backend.backend() != "tensorflow":
        yield  # the registry is TensorFlow's
        return
    from tensorflow.python.framework import ops

    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    before = set(registry) if isinstance(registry, dict) else set()
    try:
        yield
    finally:
        if isinstance(registry, dict):
            for name in set(registry) - before:
                if name.startswith("CustomGradient-"):
                    registry.pop(name, None)


def backend_versions() -> dict[str, str]:
    """The backend in use and its version, with Keras's: what an evaluation records it ran on."""
    found = versions()
    return {"backend": found["backend"], "version": found.get(found["backend"], "unknown"), "keras": found["keras"]}


def versions() -> dict[str, str]:
    """Versions worth recording in run.json."""
    import platform

    from dlcli import __version__

    keras = import_keras()
    out = {"python": platform.python_version(), "dlcli": __version__, "keras": keras.__version__,
           "backend": keras.backend.backend()}
    import importlib.metadata

    for package in BACKENDS:
        if package in sys.modules:  # the backend in use (and TensorFlow only if it was imported)
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                out[package] = importlib.metadata.version(package)
    with contextlib.suppress(Exception):
        import numpy

        out["numpy"] = numpy.__version__
    return out
