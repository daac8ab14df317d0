"""The versions a run records (run.json) and an evaluation notes it ran on."""

from __future__ import annotations

import contextlib
import importlib.metadata
import platform
import sys

from dlcli import __version__
from dlcli.config import BACKENDS
from dlcli.runtime.backend import import_keras


def backend_versions() -> dict[str, str]:
    """The backend in use and its version, with Keras's: what an evaluation records it ran on."""
    found = versions()
    return {"backend": found["backend"], "version": found.get(found["backend"], "unknown"), "keras": found["keras"]}


def versions() -> dict[str, str]:
    """Versions worth recording in run.json."""
    keras = import_keras()
    out = {"python": platform.python_version(), "dlcli": __version__, "keras": keras.__version__,
           "backend": keras.backend.backend()}
    for package in BACKENDS:
        if package in sys.modules:  # the backend in use (and TensorFlow only if it was imported)
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                out[package] = importlib.metadata.version(package)
    with contextlib.suppress(Exception):
        import numpy

        out["numpy"] = numpy.__version__
    return out
