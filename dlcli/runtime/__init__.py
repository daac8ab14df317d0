"""Backend-specific set-up: choosing the Keras backend, importing Keras quietly, the device, seeding,
determinism, threads and distribution.

Everything that touches TensorFlow, JAX or PyTorch directly (rather than through ``keras.*``) lives here, so that
the rest of dlcli only uses Keras APIs and runs unchanged on every backend; every reach into Keras's or
keras-tuner's private modules goes through ``private``.

Modules: ``backend`` (select and import it), ``devices`` (GPU/CPU, threads, ``setup``), ``seeding``,
``distribution``, ``graphs`` (TensorFlow's traced-graph memory), ``collector`` (Python's garbage collector),
``versions``, ``multihost`` (several processes), ``interrupts`` (Ctrl-C, SIGTERM), ``private`` (``keras.src`` /
``keras_tuner.src``).

Importing this package does not import Keras or TensorFlow. May import: ``dlcli.config``, ``dlcli.errors``.
"""

from dlcli.runtime.backend import allow_tensorflow as allow_tensorflow
from dlcli.runtime.backend import import_keras as import_keras
from dlcli.runtime.backend import select_backend as select_backend
from dlcli.runtime.collector import big_import as big_import
from dlcli.runtime.collector import collecting_only_new_objects as collecting_only_new_objects
from dlcli.runtime.devices import determinism_on as determinism_on
from dlcli.runtime.devices import limit_threads as limit_threads
from dlcli.runtime.devices import setup as setup
from dlcli.runtime.distribution import describe_strategy as describe_strategy
from dlcli.runtime.distribution import distribution_strategy as distribution_strategy
from dlcli.runtime.distribution import strategy_scope as strategy_scope
from dlcli.runtime.graphs import releasing_traced_graphs as releasing_traced_graphs
from dlcli.runtime.seeding import rng_preserved as rng_preserved
from dlcli.runtime.versions import backend_versions as backend_versions
from dlcli.runtime.versions import versions as versions
