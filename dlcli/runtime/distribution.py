"""Distribution: one model copy per device, TensorFlow's ``MirroredStrategy`` or Keras's JAX ``DataParallel``."""

from __future__ import annotations

import contextlib
from typing import Any

from dlcli.errors import ConfigError
from dlcli.runtime import multihost
from dlcli.runtime.backend import import_keras, quiet, stderr_silenced


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
        # Several processes (hosts): setup() joined them; each feeds its own share of the data (multihost).
        keras.distribution.set_distribution(keras.distribution.DataParallel(
            devices=keras.distribution.list_devices(), auto_shard_dataset=multihost.process_count() == 1))
        return None
    if distribution == "none":
        return None
    if backend != "tensorflow":
        raise ConfigError("distribution", f"'mirrored' is TensorFlow's MirroredStrategy; this run uses the "
                          f"{backend!r} backend (use backend: tensorflow, or distribution: data_parallel on jax)")
    import tensorflow as tf

    devices = None if device == "gpu" else [d.name for d in tf.config.list_logical_devices("CPU")]
    with stderr_silenced(quiet()):
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
