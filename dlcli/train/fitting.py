"""The one fit that ``train`` and every ``tune`` trial run, and train's fit with its resumable backup."""

from __future__ import annotations

from typing import Any

from dlcli import runtime
from dlcli.config import ExperimentConfig
from dlcli.data import Dataset, is_streamed, keras_inputs
from dlcli.integrations import Tracker
from dlcli.runs import Run
from dlcli.runtime import multihost
from dlcli.train.backup import BACKUP_DIR, TimedBackup, backup_epoch, is_trained
from dlcli.train.callbacks import RunMonitor, callbacks_for
from dlcli.train.experiment import Experiment


def fit_model(model: Any, cfg: ExperimentConfig, data: Dataset, callbacks: list[Any], verbose: int,
              **overrides: Any) -> Any:
    """``model.fit`` on train (validated on val) with the config's fit settings: the one fit that ``train``
    and every ``tune`` trial run. ``callbacks`` come after the config's own; ``overrides`` (epochs,
    initial_epoch) are for hyperband's shortened trials. Returns the History."""
    train = keras_inputs(*multihost.local_inputs(data.x_train, data.y_train, cfg.fit.batch_size))
    val = keras_inputs(*multihost.local_inputs(data.x_val, data.y_val, cfg.fit.batch_size)) if len(data.x_val) \
        else None
    # An image folder's loader reshuffles its files each epoch itself (Keras would warn that `shuffle` is ignored).
    shuffle = cfg.fit.shuffle and not is_streamed(data.x_train)
    settings = {"epochs": cfg.fit.epochs, "shuffle": shuffle, **overrides}
    history = model.fit(**train, validation_data=val and (val["x"], val.get("y")), verbose=verbose,
                        callbacks=[*callbacks_for(cfg), *callbacks], **settings)
    if multihost.process_count() > 1:  # every process holds the whole trained model: it scores and saves alone
        runtime.import_keras().distribution.set_distribution(None)
    return history


def fit(exp: Experiment, run: Run, verbose: int, extra: list[Any] | None = None,
        tracker: Tracker | None = None) -> tuple[Any, Any]:
    """``model.fit`` with dlcli's callbacks, ``extra`` ones (TensorBoard) and the ``tracker``'s (MLflow);
    returns (history, monitor).

    :class:`TimedBackup` keeps the training state of a recent epoch in ``<run>/backup/`` (every few
    seconds, and when the fit ends; until ``train`` has saved the trained model), so ``dlcli train --resume``
    continues from there; the tracker reports an epoch once that state holds it. A run resumed after its fit
    had finished (:func:`is_trained`) is not fitted again: its saved model is loaded.
    """
    monitor = RunMonitor(run, run.path / "history.csv")
    monitor.last_epoch = backup_epoch(run.path)  # where a resumed run starts
    if is_trained(run.info, run.path):
        monitor.last_epoch = int(run.info.get("last_epoch") or 0)
        exp.model.load_weights(run.path / "model.keras")
        return None, monitor
    backup = TimedBackup(run.path / BACKUP_DIR) if exp.cfg.fit.backup else None
    tracked = (tracker or Tracker()).callbacks(None if backup is None else lambda: backup.saved_epoch)
    # The backup comes before the tracker, so it has saved an epoch when the tracker asks; the monitor goes
    # last: it logs what the others add (learning_rate), after the state is saved.
    callbacks = [*([backup] if backup is not None else []), *(extra or []), *tracked, monitor]
    history = fit_model(exp.model, exp.cfg, exp.data, callbacks, verbose)
    return history, monitor
