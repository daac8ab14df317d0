"""One trial = one ``dlcli train`` with the trial's config: keras-tuner's HyperModel and Tuner around
``model.build_model`` and ``train.fit_model``, and the record each trial leaves in ``tuner/trial_<id>/``."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from dlcli import runtime
from dlcli.config import ExperimentConfig
from dlcli.data import Dataset, prepare
from dlcli.errors import ConfigError, first_line
from dlcli.model import build_model
from dlcli.runs import atomic_write_json, check_free_space, damaged, replacing, write_csv
from dlcli.runtime import interrupts
from dlcli.train import checkpoint_bytes, fit_model, order_keys, stop_on_nan
from dlcli.tune.keras_setup import keras, kt
from dlcli.tune.search import Search
from dlcli.tune.space import declare_space, trial_values


def _data_key(cfg: ExperimentConfig) -> str:
    # Everything data.prepare reads: the data section, the loss (label encoding) and the seed (splits).
    return json.dumps([cfg.data.model_dump(mode="json"), cfg.compile.loss, cfg.seed], sort_keys=True)


class Datasets:
    """Prepared data, reused by every trial with the same data settings (re-prepared only when a
    searched ``data.*`` value changes them). Holds one dataset at a time, so memory stays flat."""

    def __init__(self, cfg: ExperimentConfig, data: Dataset):
        self._key, self._data = _data_key(cfg), data

    def get(self, cfg: ExperimentConfig) -> Dataset:
        key = _data_key(cfg)
        if key != self._key:
            self._data = None
            self._data, self._key = prepare(cfg), key
        return self._data


class TrialModel(kt.HyperModel):
    """Builds a trial's model with ``model.build_model`` and fits it with ``train.fit_model``.

    ``TrialTuner.run_trial`` sets ``cfg`` (the trial's config) before keras-tuner calls ``build`` and
    ``fit`` once per execution; execution i is seeded with ``seed + i``, so execution 0 is exactly what
    ``dlcli train`` does with the trial's config. Its final weights are saved for the best model.
    """

    def __init__(self, search: Search, datasets: Datasets):
        super().__init__(name="dlcli_trial")
        self.search = search
        self.datasets = datasets
        self.begin(None, None)

    def begin(self, cfg: ExperimentConfig | None, trial_dir: Path | None) -> None:
        self.cfg, self.trial_dir = cfg, trial_dir
        self.execution = 0
        self.epochs_run = 0
        self.finals: list[dict[str, float]] = []

    def declare_hyperparameters(self, hp: kt.HyperParameters) -> None:
        declare_space(hp, self.search.tune.space)

    def build(self, hp: kt.HyperParameters) -> Any:
        keras.utils.set_random_seed(self.cfg.seed + self.execution)
        return build_model(self.cfg, self.datasets.get(self.cfg).prep)

    def fit(self, hp: kt.HyperParameters, model: Any, *args: Any, **kwargs: Any) -> Any:
        cfg = self.cfg
        hyperband = {k: kwargs[k] for k in ("epochs", "initial_epoch") if k in kwargs}
        nan_stop = stop_on_nan()
        history = fit_model(model, cfg, self.datasets.get(cfg), [nan_stop, *kwargs.get("callbacks", [])], verbose=0,
                            **hyperband)
        logs = history.history
        self.epochs_run += len(history.epoch)
        if nan_stop.nan_epoch is not None:
            raise kt.errors.FailedTrialError(f"the loss became NaN at epoch {nan_stop.nan_epoch}; try a lower "
                                             f"learning rate")
        self.finals.append({k: float(v[-1]) for k, v in logs.items() if v})
        if self.execution == 0:
            save_weights(model, self.trial_dir / "model.weights.h5", "the trial's weights")
            rows = [{"epoch": e + 1, **{k: float(logs[k][i]) for k in order_keys(logs)}}
                    for i, e in enumerate(history.epoch)]
            write_csv(self.trial_dir / "history.csv", rows)
        self.execution += 1
        return history


class TrialTuner(kt.Tuner):
    """keras-tuner's Tuner, running each trial through ``TrialModel`` and recording, in
    ``tuner/trial_<id>/dlcli.json``, what trials.csv shows beyond keras-tuner's own trial.json."""

    def __init__(self, search: Search, **kwargs: Any):
        self.spec = search  # not `self.search`: that is keras-tuner's search()
        super().__init__(**kwargs)
        if self._is_worker():
            ask = self.oracle.create_trial

            def create_trial(tuner_id: str) -> Any:
                trial = ask(tuner_id)
                if trial.status == "IDLE":  # keras-tuner's worker loop asks again at once: do not spin
                    time.sleep(0.5)
                return trial

            self.oracle.create_trial = create_trial

    def on_trial_end(self, trial: Any) -> None:
        with interrupts.deferred():  # the oracle's end of the trial and the tuner's state, saved together
            super().on_trial_end(trial)

    def _populate_initial_space(self) -> None:
        # keras-tuner also builds the model here to discover conditional hyperparameters; a dlcli
        # space has none, and one invalid default combination must fail one trial, not the search.
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def _build_hypermodel(self, hp: kt.HyperParameters) -> Any:
        model = super()._build_hypermodel(hp)
        if "tuner/trial_id" in hp.values:  # hyperband continues an earlier trial from its best epoch
            load_weights(model, self._get_checkpoint_fname(hp.values["tuner/trial_id"]))
        return model

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        hp = trial.hyperparameters.values
        values = trial_values(hp, self.spec.tune.space)
        trial_dir = Path(self.get_trial_dir(trial.trial_id))
        record: dict[str, Any] = {"trial_id": trial.trial_id, "worker": self.tuner_id, "values": values}
        start = time.monotonic()
        model: TrialModel = self.hypermodel
        try:
            model.begin(self.spec.trial_config(values), trial_dir)
            if "tuner/epochs" in hp:  # hyperband: a shortened run, or the continuation of an earlier trial
                kwargs.update(epochs=hp["tuner/epochs"], initial_epoch=hp["tuner/initial_epoch"])
            with runtime.releasing_traced_graphs():  # keeps memory flat from trial to trial
                results = self._fit_executions(trial, *args, **kwargs)
        except kt.errors.FatalError:
            raise
        except Exception as exc:
            reason = str(exc) if isinstance(exc, (ConfigError, kt.errors.FailedTrialError)) else \
                f"{type(exc).__name__}: {first_line(exc)}"
            record.update(status="failed", reason=reason, epochs_run=model.epochs_run,
                          seconds=round(time.monotonic() - start, 3))
            atomic_write_json(trial_dir / "dlcli.json", record)
            raise kt.errors.FailedTrialError(reason) from exc
        finals = model.finals
        final = {k: sum(f[k] for f in finals) / len(finals) for k in order_keys(finals[0])
                 if all(k in f for f in finals)}
        record.update(status="completed", reason=None, final=final, epochs_run=model.epochs_run,
                      seconds=round(time.monotonic() - start, 3))
        atomic_write_json(trial_dir / "dlcli.json", record)
        return results

    def _fit_executions(self, trial: Any, *args: Any, **kwargs: Any) -> list[Any]:
        """keras-tuner's ``Tuner.run_trial`` (1.4.8) with :class:`BestEpoch` in place of its ``SaveBestEpoch``:
        each execution builds and fits the model; the best epoch's weights are written once, at the end.

        keras-tuner also adds a ``TunerCallback`` that forwards each batch and epoch to the tuner's
        ``on_batch_*`` / ``on_epoch_*`` hooks; they do nothing in ``kt.Tuner`` and this class does not
        override them, so it is left out.
        """
        best = BestEpoch(self.oracle.objective)
        callbacks = kwargs.pop("callbacks", [])
        histories = []
        for execution in range(self.executions_per_trial):
            copied = self._deepcopy_callbacks(callbacks)
            self._configure_tensorboard_dir(copied, trial, execution)  # TensorBoard's per-trial directory
            histories.append(self._build_and_fit_model(trial, *args, **kwargs, callbacks=[*copied, best]))
        best.save(self._get_checkpoint_fname(trial.trial_id))
        return histories


class BestEpoch(keras.callbacks.Callback):
    """keras-tuner's ``SaveBestEpoch`` with the weights kept in memory until the trial ends.

    Tracks the epoch with the best objective over all of a trial's executions (the first of equals), as
    keras-tuner's does, but copies the values of the model's and the optimizer's variables instead of writing
    the whole HDF5 checkpoint at every epoch that improves (7 to 9 of 10 in the benchmark's grid, 30 ms each).
    :meth:`save` puts them back into the model and writes the file once: the same file keras-tuner would have
    left, which hyperband's continued trials load.
    """

    def __init__(self, objective: Any):
        super().__init__()
        self.objective = objective
        self.best_value = -math.inf if objective.direction == "max" else math.inf
        self.values: list[Any] | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.objective.has_value(logs):  # without the objective, keras-tuner keeps every epoch
            value = self.objective.get_value(logs)
            if not self.objective.better_than(value, self.best_value):
                return
            self.best_value = value
        self.values = [v.numpy() for v in _state(self.model)]

    def save(self, path: str | Path) -> None:
        """Write the best epoch's weights (nothing if no epoch ended) with the last execution's model."""
        if self.values is None:
            return
        for variable, value in zip(_state(self.model), self.values):
            variable.assign(value)
        save_weights(self.model, Path(path), "the trial's best epoch")


def _state(model: Any) -> list[Any]:
    """Every variable ``save_weights`` writes: the layers' and the optimizer's (a superset: seed states too)."""
    return [*model.variables, *model.optimizer.variables]


def save_weights(model: Any, path: Path, what: str) -> None:
    """``model.save_weights`` written whole or not at all, after checking the disk can hold it."""
    check_free_space(path.parent, checkpoint_bytes(model), what)
    with replacing(path) as tmp:
        model.save_weights(tmp)


def load_weights(model: Any, path: str | Path) -> None:
    """Load weights saved by ``save_weights``, optimizer state included (so the optimizer is built first)."""
    model.optimizer.build(model.trainable_variables)
    try:
        model.load_weights(path)
    except Exception as exc:  # missing, truncated or not HDF5: h5py and Keras raise several kinds
        raise damaged(Path(path), first_line(exc, 160), "restore it, or run that trial again in a new "
                      "search") from None
