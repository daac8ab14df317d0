"""One ``dlcli train`` run by several processes (hosts) at once: JAX data-parallel across processes.

Every process runs the same command with ``KERAS_DISTRIBUTION_JOB_ADDRESSES`` (all the processes'
``host:port``, the first being the coordinator), ``KERAS_DISTRIBUTION_NUM_PROCESSES`` and
``KERAS_DISTRIBUTION_PROCESS_ID``. :func:`join_processes` makes this process one of the job through
``keras.distribution.initialize`` (``jax.distributed.initialize``; on a CPU the gradients travel over JAX's
gloo collectives). Keras's ``DataParallel`` then keeps one copy of the model per device of every
process and averages the gradients each step.

Keras shards only a ``tf.data.Dataset`` across processes by itself; dlcli's data are NumPy arrays, so
each process feeds its own slice of every global batch (:func:`local_inputs`): with ``fit.batch_size``
B and N processes, batch k of process p is samples ``[kB + pB/N, kB + (p+1)B/N)`` of the array, the
global batch the same B samples a single process would use. The fit's numbers therefore match a
one-process run up to float rounding when ``fit.shuffle`` is false; with shuffling each process
shuffles its own slice (same seed, so the same permutation), which gives different, equally valid
batches of size B.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from dlcli.errors import ConfigError

ADDRESSES_ENV = "KERAS_DISTRIBUTION_JOB_ADDRESSES"


def requested() -> bool:
    """Whether this process was asked to join a multi-process job."""
    return bool(os.environ.get(ADDRESSES_ENV))


def join_processes(keras: Any) -> None:
    """Join the multi-process job named by ``KERAS_DISTRIBUTION_*`` (JAX only; a no-op without the variable).

    Must run before JAX's first device query (jax.distributed.initialize refuses otherwise); waits until
    every process has joined. Once per process.
    """
    if not requested():
        return
    import jax

    if not jax.distributed.is_initialized():
        keras.distribution.initialize()


def process_count() -> int:
    """How many processes run this job (1 unless :func:`join_processes` joined one)."""
    if not requested():
        return 1
    import jax

    return jax.process_count() if jax.distributed.is_initialized() else 1


def local_inputs(x: np.ndarray, y: np.ndarray | None, batch_size: int,
                 where: str = "fit.batch_size") -> tuple[np.ndarray, np.ndarray | None, int]:
    """This process's share of ``x`` and ``y`` and its batch size (see the module docstring).

    With one process, returns the arguments unchanged. The last, shorter global batch is split evenly
    too; if its size is not a multiple of the number of processes, its last few samples (fewer than the
    number of processes) are left out of every epoch.

    Raises:
        ConfigError: ``batch_size`` is not a multiple of the number of processes.
    """
    count = process_count()
    if count == 1:
        return x, y, batch_size
    if not isinstance(x, np.ndarray):
        raise ConfigError("data", "an image folder (a tf.data pipeline) cannot be split across the processes of a "
                          "multi-process job yet; run it in one process (unset KERAS_DISTRIBUTION_JOB_ADDRESSES)")
    if batch_size % count:
        raise ConfigError(where, f"{batch_size} does not split evenly across the {count} processes of this "
                          f"job; use a multiple of {count}")
    import jax

    index = jax.process_index()
    rows = []
    for start in range(0, len(x), batch_size):
        share = (min(batch_size, len(x) - start)) // count
        rows.append(np.arange(start + index * share, start + (index + 1) * share))
    rows = np.concatenate(rows) if rows else np.arange(0)
    return x[rows], None if y is None else y[rows], batch_size // count
