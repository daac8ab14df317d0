"""``fit.tensorboard``: ``keras.callbacks.TensorBoard`` writing to ``runs/<run-id>/tensorboard/``. For
``dlcli tune`` the callback goes to keras-tuner's ``search``, which gives each trial its own directory and
adds the HParams dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlcli import runtime
from dlcli.config import ExperimentConfig

TENSORBOARD_DIR = "tensorboard"


def tensorboard_callbacks(cfg: ExperimentConfig, log_dir: Path) -> list[Any]:
    """``[keras.callbacks.TensorBoard]`` writing to ``log_dir`` as ``fit.tensorboard`` says; ``[]`` when off.

    Keras writes ``log_dir/train`` and ``log_dir/validation`` (scalars such as ``epoch_loss``).
    """
    settings = cfg.fit.tensorboard
    if settings is None:
        return []
    keras = runtime.import_keras()
    return [keras.callbacks.TensorBoard(log_dir=str(log_dir), **settings.model_dump())]
