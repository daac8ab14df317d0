"""The devices a run uses: GPU or CPU (``setup``, which also seeds and sets determinism), and the CPU threads."""

from __future__ import annotations

import contextlib
from typing import Any

from dlcli.errors import ConfigError
from dlcli.runtime import multihost
from dlcli.runtime.backend import import_keras, quiet, split_cpu, stderr_silenced
from dlcli.runtime.seeding import set_seed


def setup(device: str, seed: int, deterministic: bool | str = "auto") -> str:
    """Select the device, seed every generator and set determinism (:func:`determinism_on`). Returns the
    device used.

    Must run before any tensor is created.

    Raises:
        ConfigError: ``device: gpu`` but no GPU is visible.
    """
    keras = import_keras()
    backend = keras.backend.backend()
    if backend == "jax":
        multihost.join_processes(keras)  # before _gpus: it must precede JAX's first device query
    gpus = _gpus(backend)
    if device == "gpu" and not gpus:
        fix = {"tensorflow": "is tensorflow[and-cuda] installed and the driver loaded?",
               "jax": "is jax[cuda12] installed and the driver loaded?",
               "torch": "is a CUDA build of torch installed and the driver loaded?"}[backend]
        raise ConfigError("device", f"'gpu' was asked for, but the {backend} backend sees no GPU on this machine "
                          f"({fix}); use device: cpu or auto")
    used = "gpu" if gpus and device != "cpu" else "cpu"
    deterministic = determinism_on(deterministic, used)
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


def determinism_on(deterministic: bool | str, device_used: str) -> bool:
    """Whether a run on ``device_used`` ("cpu" or "gpu") turns on op determinism: ``deterministic`` true or
    false as it says; ``auto`` (the default) on a GPU only.

    On a GPU, kernels that add in whatever order their threads finish (cuDNN convolutions, atomics) give other
    numbers each run without it. On a CPU the same seed gives the same numbers without it (benchmark section 9
    checks it on every backend: digits MLP and CNN, two runs each, identical), while it costs there: on
    TensorFlow up to 1.07x per CNN epoch and 0.2-0.3 s more to the end of its first batch (in-process, 3
    alternating pairs), on PyTorch 1.04-1.09x per epoch. It changes TensorFlow's numbers (other kernels run):
    runs saved while ``true`` was the default record it in their ``config.yaml`` and train again as they did.
    """
    if deterministic == "auto":
        return device_used == "gpu"
    return bool(deterministic)


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
    with stderr_silenced(quiet()):  # the CUDA probe logs an "error" when there is no driver
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
