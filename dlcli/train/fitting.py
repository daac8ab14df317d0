"""The one fit that ``train`` and every ``tune`` trial run, and train's fit with its resumable backup."""

from __future__ import annotations

from typing import Any

from dlcli import runtime
from dlcli.config import ExperimentConfig
from dlcli.data import Dataset, is_streamed, keras_inputs
from dlcli.runs import Run
from dlcli.runtime import multihost
from dlcli.train.backup import BACKUP_DIR, DiskSpaceGuard, backup_epoch, is_trained
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


def fit(exp: Experiment, run: Run, verbose: int, extra: list[Any] | None = None) -> tuple[Any, Any]:
    """``model.fit`` with dlcli's callbacks and ``extra`` ones (TensorBoard, MLflow); returns (history, monitor).

    ``BackupAndRestore`` keeps the training state of the last finished epoch in ``<run>/backup/``
    (until ``train`` has saved the trained model), so ``dlcli train --resume`` continues from there. A run
    resumed after its fit had finished (:func:`is_trained`) is not fitted again: its saved model is loaded.
    """
    keras = runtime.import_keras()
    monitor = RunMonitor(run, run.path / "history.csv")
    monitor.last_epoch = backup_epoch(run.path)  # where a resumed run starts
    if is_trained(run.info, run.path):
        monitor.last_epoch = int(run.info.get("last_epoch") or 0)
        exp.model.load_weights(run.path / "model.keras")
        return None, monitor
    callbacks = []
    if exp.cfg.fit.backup:
        callbacks.append(DiskSpaceGuard(run.path / BACKUP_DIR))
        # Kept when the fit ends (unlike Keras's default): until the model is saved, it is the trained state.
        backup = keras.callbacks.BackupAndRestore(str(run.path / BACKUP_DIR), double_checkpoint=True,
                                                  delete_checkpoint=False)
        # Saving per epoch, its per-batch hook does nothing; without this flag its mere presence turns off
        # Keras's asynchronous batch dispatch and every step waits for its logs.
        backup.async_safe = True
        callbacks.append(backup)
    # The monitor goes last: it logs what the others add (learning_rate), after the state is saved.
    history = fit_model(exp.model, exp.cfg, exp.data, [*callbacks, *(extra or []), monitor], verbose)
    return history, monitor
