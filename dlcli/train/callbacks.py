"""The callbacks dlcli adds to every fit: the config's own (early stopping, learning-rate schedule), the run
monitor that logs each epoch, and the one rule for stopping on a NaN loss.

The Keras classes are defined inside functions so this module imports without Keras (start-up speed).
"""

from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path
from typing import Any

from dlcli import runtime
from dlcli.config import ExperimentConfig
from dlcli.runs import Run, append_text
from dlcli.runtime import interrupts


def loss_is_nan(logs: dict[str, Any] | None) -> bool:
    """Whether an epoch's logs end the run: its loss is NaN, infinite or missing (the one NaN rule of
    ``train`` and of every ``tune`` trial). A NaN loss stays NaN, so nothing is gained by going on."""
    loss = _as_float((logs or {}).get("loss"))
    return loss is None or not math.isfinite(loss)


class RunMonitor:
    """Keras callback (built lazily so this module imports without Keras): appends each epoch to
    ``history.csv`` as it ends, refreshes the heartbeat in ``run.json`` and stops on a NaN loss."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        keras = runtime.import_keras()

        class _Monitor(keras.callbacks.Callback):
            def __init__(self, run: Run, history_path: Path):
                super().__init__()
                self.run = run
                self.history_path = history_path
                self.columns: list[str] | None = None
                self.nan_epoch: int | None = None
                self.last_epoch = 0
                self._epoch_start = 0.0
                self._first_epoch_done = False

            def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
                self._epoch_start = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                seconds = round(time.perf_counter() - self._epoch_start, 4)  # fit + validation of this epoch
                logs = dict(logs or {})
                lines = io.StringIO()
                if self.columns is None:
                    self.columns = ["epoch"] + order_keys(logs)
                    if not self.history_path.exists() or self.history_path.stat().st_size == 0:
                        csv.writer(lines, lineterminator="\n").writerow(self.columns)
                row = [epoch + 1] + [_as_float(logs.get(k)) for k in self.columns[1:]]
                csv.writer(lines, lineterminator="\n").writerow(row)
                append_text(self.history_path, lines.getvalue())
                self.last_epoch = epoch + 1
                if loss_is_nan(logs):
                    self.nan_epoch = epoch + 1
                    self.model.stop_training = True
                first = {} if self._first_epoch_done else {"first_epoch_end_unix": round(time.time(), 3)}
                self._first_epoch_done = True
                # first_epoch_end_unix: when this process finished its first epoch (the benchmark's time to
                # the first epoch, against the moment it started the process).
                self.run.update(durable=False, last_epoch=self.last_epoch,
                                epoch_seconds=[*self.run.info.get("epoch_seconds", []), seconds], **first)
                interrupts.checkpoint(f"epoch_end:{self.last_epoch}")

        return _Monitor(*args, **kwargs)


def stop_on_nan() -> Any:
    """A callback that stops training at the end of an epoch whose loss is NaN or infinite (:func:`loss_is_nan`);
    its ``nan_epoch`` is then that epoch (1, 2, ...), else None.

    Keras's ``TerminateOnNaN`` checks every batch, which makes every step wait for its logs; a NaN
    loss stays NaN, so the epoch's end is soon enough.
    """
    keras = runtime.import_keras()

    class StopOnNaN(keras.callbacks.Callback):
        nan_epoch: int | None = None

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if loss_is_nan(logs):
                self.nan_epoch = epoch + 1
                self.model.stop_training = True
            interrupts.checkpoint(f"epoch_end:{epoch + 1}")  # a tune trial's epoch: a lost signal is raised here

    return StopOnNaN()


def _as_float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def order_keys(logs: dict[str, Any]) -> list[str]:
    """History keys in reading order: loss, metrics, val_loss, val_metrics, then the rest."""
    train = [k for k in logs if not k.startswith("val_") and k != "learning_rate"]
    train.sort(key=lambda k: k != "loss")
    val = [f"val_{k}" for k in train if f"val_{k}" in logs]
    rest = [k for k in logs if k not in train and k not in val]
    return train + val + rest


def callbacks_for(cfg: ExperimentConfig) -> list[Any]:
    """EarlyStopping / ReduceLROnPlateau from ``fit``."""
    keras = runtime.import_keras()
    out = []
    if cfg.fit.early_stopping is not None:
        out.append(keras.callbacks.EarlyStopping(**cfg.fit.early_stopping.model_dump()))
    if cfg.fit.reduce_lr_on_plateau is not None:
        out.append(keras.callbacks.ReduceLROnPlateau(**cfg.fit.reduce_lr_on_plateau.model_dump()))
    return out
