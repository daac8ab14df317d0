"""keras-tuner, imported after Keras and set up once for dlcli: every module of ``dlcli.tune`` that uses
keras-tuner takes ``kt`` (and ``keras``) from here, so the settings below hold before any of them runs.

Imports keras_tuner and so TensorFlow: only ``keras_side`` and the modules it imports use this one, and
``dlcli.tune`` imports ``keras_side`` only inside the functions that run a search (start-up speed).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from dlcli import runtime
from dlcli.runs import atomic_write_text
from dlcli.runtime import private

keras = runtime.import_keras()
import keras_tuner as kt  # noqa: E402 - after import_keras, which hides TensorFlow's start-up noise

_VERBOSE = os.environ.get("DLCLI_VERBOSE") == "1"
# keras-tuner prints the traceback of every failed trial; dlcli reports the reason instead (the
# traceback stays in tuner/trial_<id>/trial.json). TensorFlow warns that each trial's new model
# retraces its functions, which is expected here. --verbose shows both.
private.keras_tuner_config().DEBUG = _VERBOSE
if not _VERBOSE:
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def _save_json(path: str, obj: Any) -> str:
    """keras-tuner's state files (oracle.json, trial.json, ...) written whole or not at all: keras-tuner writes
    them in place, and a search killed mid-write could not be resumed."""
    text = json.dumps(obj)
    atomic_write_text(Path(path), text)
    return text


private.keras_tuner_utils().save_json = _save_json  # what keras-tuner's Stateful.save calls

__all__ = ["keras", "kt"]
