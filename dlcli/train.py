"""Train: validate everything, then fit on train/val, score train/val/test, save the run.

No printing here except Keras's own progress bar; ``cli.py`` formats the result.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlcli import interrupts, runtime, tracking
from dlcli.baseline import Baseline, score_baseline
from dlcli.config import DiagnosisConfig, ExperimentConfig, dump_yaml
from dlcli.data import Dataset, is_streamed, keras_inputs, prepare
from dlcli.diagnosis import diagnose
from dlcli.errors import ConfigError, RunError, RunFailed, RunInterrupted, StorageError, allowed_list
from dlcli.model import build_model, resolve_metrics, summary_text
from dlcli.runs import (Run, append_text, atomic_write_json, atomic_write_text, check_free_space, damaged,
                        json_object, read_csv_rows, read_run_file, replacing, resumable_info, storage_error)
from dlcli.scoring import keras_scores


@dataclass
class Experiment:
    """A validated experiment: prepared data and a compiled model, nothing written yet."""

    cfg: ExperimentConfig
    data: Dataset
    model: Any
    device: str
    strategy: Any = None  # the tf.distribute strategy the model was built in (distribution: mirrored)


@dataclass
class TrainResult:
    run_dir: Path
    run_id: str
    metrics: list[dict[str, Any]]
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    epochs_run: int = 0
    diagnosis: Any = None  # dlcli.diagnosis.Diagnosis: underfit / overfit / good fit, with its numbers
    baseline: Baseline | None = None  # the trivial predictor's scores: the `baseline` row of metrics


def history_keys(cfg: ExperimentConfig, with_val: bool) -> list[str]:
    """The keys Keras will put in the history for this config."""
    names = ["loss"] + [m.lower() if m.lower() in ("f1_score", "fbeta_score") else m for m in cfg.compile.metrics]
    keys = names + ([f"val_{n}" for n in names] if with_val else [])
    if cfg.fit.reduce_lr_on_plateau is not None:
        keys.append("learning_rate")
    return keys


def _check_monitors(cfg: ExperimentConfig, has_val: bool) -> None:
    keys = history_keys(cfg, has_val)
    for section in ("early_stopping", "reduce_lr_on_plateau"):
        sub = getattr(cfg.fit, section)
        if sub is not None and sub.monitor not in keys:
            hint = " (there is no validation split: data.split.val is 0)" if sub.monitor.startswith("val_") else ""
            raise ConfigError(f"fit.{section}.monitor", f"{sub.monitor!r} is not produced by this run{hint} "
                              f"(available: {allowed_list(keys)})")


def _dry_run(model: Any, cfg: ExperimentConfig, data: Dataset) -> None:
    """Evaluate two samples so a loss/metric/label mismatch is a config error, not a crash mid-run."""
    x, y = data.head(2)
    try:
        if runtime.import_keras().backend.backend() == "tensorflow":
            model.evaluate(x, y, verbose=0)
        else:
            # On JAX and PyTorch a first evaluate changes how the same seed trains afterwards (measured:
            # loss 1.0028 vs 1.0038 after the first epoch), so probe a copy and leave every RNG as it was.
            with runtime.rng_preserved():
                probe = runtime.import_keras().models.clone_model(model)
                probe.compile(loss=cfg.compile.loss, metrics=resolve_metrics(cfg.compile, data.prep))
                probe.evaluate(x, y, verbose=0)
        return
    except Exception as exc:  # every backend raises its own kinds here
        reason = _useful_line(exc)
    raise ConfigError(_culprit(model, cfg, data), f"cannot compare the model's output (shape "
                      f"{tuple(model.output_shape)}) with the labels (shape {tuple(y.shape)[1:] or 'one value'} "
                      f"per sample, encoded for loss {cfg.compile.loss!r}): {reason}")


def _culprit(model: Any, cfg: ExperimentConfig, data: Dataset) -> str:
    """Which of the loss and the metrics fails on the labels (only called once something did)."""
    keras = runtime.import_keras()
    x, y = data.head(2)
    for i, metrics in [(-1, [])] + list(enumerate([m] for m in resolve_metrics(cfg.compile, data.prep))):
        probe = keras.models.clone_model(model)
        probe.compile(loss=cfg.compile.loss, metrics=metrics)
        try:
            probe.evaluate(x, y, verbose=0)
        except Exception:
            return "compile.loss" if i < 0 else f"compile.metrics[{i}]"
    return "compile"


def _useful_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in reversed(lines):
        if not ln.startswith(("File ", "[[", "Detected at", "Graph execution error")):
            return ln
    return type(exc).__name__


def prepare_experiment(cfg: ExperimentConfig) -> Experiment:
    """Load data, set up the device and seeds, build and check the model. Writes nothing.

    Raises:
        ConfigError / DataError: anything wrong with the config or the data.
    """
    runtime.select_backend(cfg.backend, cfg.device, cfg.deterministic)  # before anything imports Keras
    data = prepare(cfg)
    _check_monitors(cfg, has_val=len(data.x_val) > 0)
    device = runtime.setup(cfg.device, cfg.seed, cfg.deterministic)
    strategy = runtime.distribution_strategy(cfg.distribution, device)
    with runtime.strategy_scope(strategy):  # the model's variables go where the strategy puts them
        model = build_model(cfg, data.prep)
        _dry_run(model, cfg, data)
    return Experiment(cfg=cfg, data=data, model=model, device=device, strategy=strategy)


def resume_experiment(run_dir: Path) -> Experiment:
    """The experiment of an interrupted or crashed run, rebuilt from its ``config.yaml``.

    Raises:
        RunError: not a run directory, or one that completed or is still running.
        DataError: the data changed since the run started (its fingerprint differs).
    """
    from dlcli.config import load_config
    from dlcli.errors import DataError

    info = resumable_info(run_dir)
    exp = prepare_experiment(load_config(Path(run_dir) / "config.yaml"))
    recorded = (info.get("data") or {}).get("fingerprint")
    if recorded and recorded != exp.data.fingerprint:
        raise DataError(f"{exp.data.source}: the data changed since run {Path(run_dir).name} started (fingerprint "
                        f"{exp.data.fingerprint}, the run recorded {recorded}); start a new run instead")
    return exp


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
                loss = _as_float(logs.get("loss"))
                if loss is None or not math.isfinite(loss):
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
    """A callback that stops training at the end of an epoch whose loss is NaN or infinite.

    Keras's ``TerminateOnNaN`` checks every batch, which makes every step wait for its logs; a NaN
    loss stays NaN, so the epoch's end is soon enough.
    """
    keras = runtime.import_keras()

    class StopOnNaN(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            loss = _as_float((logs or {}).get("loss"))
            if loss is None or not math.isfinite(loss):
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


def score_splits(model: Any, cfg: ExperimentConfig, data: Dataset) -> list[dict[str, Any]]:
    """Score the model on each non-empty split (:func:`~dlcli.scoring.keras_scores`, the definition
    ``evaluate`` uses on every backend): one row per split, loss first."""
    rows = []
    for split, (x, y) in data.splits().items():
        scores, _ = keras_scores(model, cfg, data.prep, x, y, cfg.fit.batch_size)
        rows.append({"split": split, **scores})
    return rows


def score_run(model: Any, cfg: ExperimentConfig, data: Dataset) -> tuple[list[dict[str, Any]], Baseline]:
    """The rows of ``metrics.csv``: the model on each split, then the trivial baseline (``split = baseline``)
    on the test split (val, else train, when there is none), with the same columns. Also returns the
    baseline's scores on every split, which the fit diagnosis measures the errors against."""
    metrics = score_splits(model, cfg, data)
    baseline = score_baseline(cfg, data, [k for k in (metrics[0] if metrics else {}) if k != "split"])
    return [*metrics, baseline.row()], baseline


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rows of dicts as a CSV file (atomic), columns in first-seen order."""
    import io

    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def _import_in_background(*modules: str) -> threading.Thread:
    """Start importing ``modules`` in a thread (matplotlib takes ~0.5 s, mostly while TensorFlow works
    outside the GIL), so the learning-curve plot adds next to nothing to a run's wall time."""
    import importlib

    def load() -> None:
        for module in modules:
            with contextlib.suppress(Exception):  # the real import later reports any problem
                importlib.import_module(module)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    return thread


def fit_model(model: Any, cfg: ExperimentConfig, data: Dataset, callbacks: list[Any], verbose: int,
              **overrides: Any) -> Any:
    """``model.fit`` on train (validated on val) with the config's fit settings: the one fit that ``train``
    and every ``tune`` trial run. ``callbacks`` come after the config's own; ``overrides`` (epochs,
    initial_epoch) are for hyperband's shortened trials. Returns the History."""
    train = keras_inputs(data.x_train, data.y_train, cfg.fit.batch_size)
    val = keras_inputs(data.x_val, data.y_val, cfg.fit.batch_size) if len(data.x_val) else None
    # An image folder's loader reshuffles its files each epoch itself (Keras would warn that `shuffle` is ignored).
    shuffle = cfg.fit.shuffle and not is_streamed(data.x_train)
    settings = {"epochs": cfg.fit.epochs, "shuffle": shuffle, **overrides}
    return model.fit(**train, validation_data=val and (val["x"], val.get("y")), verbose=verbose,
                     callbacks=[*callbacks_for(cfg), *callbacks], **settings)


BACKUP_DIR = "backup"


BACKUP_FILES = ("training_metadata.json", "latest.weights.h5")  # what BackupAndRestore keeps; ".bkp": the one before


def backup_epoch(run_dir: Path) -> int:
    """The last epoch whose training state ``BackupAndRestore`` saved in the run (0 if none).

    A damaged newest state falls back to the one before it (``double_checkpoint``), which is put in its place
    so Keras restores the same epoch; a backup with no usable state is an error, and nothing is changed.

    Raises:
        RunError: the backup exists but neither state can be read.
    """
    backup = Path(run_dir) / BACKUP_DIR
    metadata, weights = (backup / name for name in BACKUP_FILES)
    if not backup.is_dir() or not (metadata.exists() or weights.exists()):
        return 0
    problems = []
    for suffix in ("", ".bkp"):
        try:
            epoch = _backup_state(Path(f"{metadata}{suffix}"), Path(f"{weights}{suffix}"))
        except RunError as exc:
            problems.append(str(exc))
            continue
        if suffix:  # the newest state was damaged: restore the previous epoch's instead
            for path in (metadata, weights):
                os.replace(f"{path}{suffix}", path)
        return epoch
    raise RunError(f"{problems[0]}; the backup holds no usable training state, so the run cannot resume. Its "
                   f"history and files are unchanged; delete {backup} to resume from the first epoch, or start a "
                   f"new run")


def _backup_state(metadata: Path, weights: Path) -> int:
    """The epoch of one saved training state, checked readable (RunError naming the damaged file)."""
    def epoch_of(text: str) -> int:
        epoch = json_object(text)["epoch"]
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch {epoch!r} is not a count")
        return epoch

    try:
        epoch = read_run_file(metadata, epoch_of, "training state")
    except FileNotFoundError:
        raise RunError(f"{metadata}: missing") from None
    try:
        import h5py

        with h5py.File(weights, "r"):
            pass
    except Exception as exc:  # missing, truncated or not HDF5
        raise damaged(weights, str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__) from None
    return epoch


def checkpoint_bytes(model: Any) -> int:
    """About what a checkpoint of ``model`` takes on disk: weights and optimizer state (about 3x the weights
    for Adam), float32, plus 1 MB of HDF5 overhead."""
    return 12 * int(model.count_params()) + (1 << 20)


# The training state is saved at the end of the first epoch that ends BACKUP_SECONDS or more after the last
# save, and BACKUP_COST_FACTOR times that save's own duration or more (so saving takes at most 2% of the
# time): a crash or Ctrl-C costs at most the last few seconds of epochs, and the save (22 ms per epoch for the
# digits MLP, far more for a large model) no longer runs after every epoch. Read at each epoch's end.
BACKUP_SECONDS = 5.0
BACKUP_COST_FACTOR = 50.0


class TimedBackup:
    """Keras ``BackupAndRestore`` on a time cadence (Keras saves every epoch or every N batches; it has no
    time option): at the end of an epoch once ``BACKUP_SECONDS`` have passed since the last save (or
    ``BACKUP_COST_FACTOR`` times the last save's duration, if more). Checks at each epoch's end that the
    disk can hold the save (h5py can crash the process when the disk fills during a write).

    It also saves when the fit ends, so a run stopped between the fit and the save of its model resumes
    without training again. A resumed run restarts from the epoch the backup holds and
    :func:`truncate_history` drops the rows logged after it, so ``history.csv`` has every epoch once;
    after a Ctrl-C or a crash mid-fit at most the last few seconds of epochs are trained again.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        keras = runtime.import_keras()

        class _TimedBackup(keras.callbacks.BackupAndRestore):
            def __init__(self, backup_dir: Path):
                # Kept when the fit ends (unlike Keras's default): until the model is saved, it is the trained
                # state; two states, so a damaged newest one falls back to the one before (backup_epoch).
                super().__init__(str(backup_dir), double_checkpoint=True, delete_checkpoint=False)
                self.backup_path = Path(backup_dir)
                self._last_save = 0.0
                self._save_cost = 0.0
                self._current_epoch = self._saved_epoch = 0
                # Saving at an epoch's end, its per-batch hook does nothing; without this flag its mere presence
                # turns off Keras's asynchronous batch dispatch and every step waits for its logs.
                self.async_safe = True

            def on_train_begin(self, logs: dict | None = None) -> None:
                super().on_train_begin(logs)  # restores the saved state, if any
                self._last_save = time.monotonic()
                # Where Keras's restore put the fit (its own private field; 0 when nothing was restored).
                self._current_epoch = self._saved_epoch = getattr(self.model, "_initial_epoch", None) or 0

            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                self._current_epoch = epoch + 1
                self._last_batch_seen = 0
                # Every epoch (a few microseconds), so a disk too full for the checkpoint stops the run at once.
                weights = self.backup_path / BACKUP_FILES[1]
                # Weights and optimizer state, kept twice (double_checkpoint).
                size = weights.stat().st_size if weights.exists() else checkpoint_bytes(self.model)
                check_free_space(self.backup_path, 2 * size + (1 << 20), f"the epoch {epoch + 1} checkpoint")
                waited = time.monotonic() - self._last_save
                if waited < max(BACKUP_SECONDS, BACKUP_COST_FACTOR * self._save_cost):
                    return
                self._save()

            def on_train_end(self, logs: dict | None = None) -> None:
                # The fit is over: save the state it left (after EarlyStopping restored its best weights), so a
                # run stopped before its model is saved resumes without training again. Keras calls this only
                # when the fit ends normally, never after a Ctrl-C in the middle of an epoch.
                if self._current_epoch > self._saved_epoch:
                    self._save()

            def _save(self) -> None:
                started = time.monotonic()
                self._save_model()
                self._last_save = time.monotonic()
                self._save_cost = self._last_save - started
                self._saved_epoch = self._current_epoch

        return _TimedBackup(*args, **kwargs)


def read_history(path: Path) -> dict[str, list[float]]:
    """``history.csv`` as {column: values}, without the epoch column."""
    if not path.exists():
        return {}
    rows = read_csv_rows(path, ("epoch",) if path.stat().st_size else ())
    columns = [c for c in (rows[0] if rows else {}) if c != "epoch"]
    try:
        return {c: [float(r[c]) if r[c] not in ("", None) else float("nan") for r in rows] for c in columns}
    except ValueError as exc:
        raise damaged(path, str(exc)) from None


def truncate_history(path: Path, last_epoch: int) -> None:
    """Keep the rows of epochs ``<= last_epoch``, so a resumed run logs each epoch once."""
    def kept_rows(text: str) -> list[list[str]]:
        rows = list(csv.reader(io.StringIO(text, newline="")))
        return rows[:1] + [r for r in rows[1:] if r and int(r[0]) <= last_epoch]

    if not path.exists():
        return
    kept = read_run_file(path, kept_rows)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(kept if last_epoch > 0 else [])
    atomic_write_text(path, buf.getvalue())


def fit(exp: Experiment, run: Run, verbose: int, extra: list[Any] | None = None) -> tuple[Any, Any]:
    """``model.fit`` with dlcli's callbacks and ``extra`` ones (TensorBoard, MLflow); returns (history, monitor).

    :class:`TimedBackup` keeps the training state of a recent epoch in ``<run>/backup/`` (every few
    seconds, and when the fit ends; until ``train`` has saved the trained model), so ``dlcli train --resume``
    continues from there. A run resumed after its fit had finished (:func:`is_trained`) is not fitted again:
    its saved model is loaded.
    """
    monitor = RunMonitor(run, run.path / "history.csv")
    monitor.last_epoch = backup_epoch(run.path)  # where a resumed run starts
    if is_trained(run.info, run.path):
        monitor.last_epoch = int(run.info.get("last_epoch") or 0)
        exp.model.load_weights(run.path / "model.keras")
        return None, monitor
    callbacks = [TimedBackup(run.path / BACKUP_DIR)] if exp.cfg.fit.backup else []
    # The monitor goes last: it logs what the others add (learning_rate), after the state is saved.
    history = fit_model(exp.model, exp.cfg, exp.data, [*callbacks, *(extra or []), monitor], verbose)
    return history, monitor


def is_trained(info: dict[str, Any], run_dir: Path) -> bool:
    """Whether the run's fit had finished and saved its model (``trained`` in run.json): resuming it only
    scores that model and writes the reports."""
    return bool(info.get("trained")) and (Path(run_dir) / "model.keras").is_file()


def save_trained(model: Any, run: Run, last_epoch: int) -> None:
    """Save the model the fit left and record it in run.json, then drop the backup it replaces; a signal
    waits until all three are done."""
    with interrupts.deferred():
        save_model(model, run.path)
        run.update(trained=True, last_epoch=last_epoch)
        shutil.rmtree(run.path / BACKUP_DIR, ignore_errors=True)


def save_model(model: Any, run_dir: Path) -> None:
    with replacing(run_dir / "model.keras") as tmp:
        model.save(tmp)


def run_info(exp: Experiment) -> dict[str, Any]:
    """What run.json records about an experiment before it starts."""
    data = exp.data
    return {
        "seed": exp.cfg.seed, "device": exp.cfg.device, "device_used": exp.device,
        "distribution": runtime.describe_strategy(exp.strategy),
        "params": int(exp.model.count_params()), "versions": runtime.versions(),
        "data": {"source": data.source, "fingerprint": data.fingerprint, "task": data.prep.task,
                 "train": len(data.x_train), "val": len(data.x_val), "test": len(data.x_test),
                 "input_shape": data.prep.input_shape, "classes": data.prep.class_names,
                 **({"columns": data.columns, "notes": data.notes, "inputs": data.prep.input_names,
                     "target_scale": {"mean": data.prep.target_mean, "std": data.prep.target_std},
                     "preprocessing": "preprocessing.json (fitted on the train split)"}
                    if data.columns is not None else {})},
        "config": exp.cfg.to_yaml_dict(),
    }


def train(exp: Experiment, runs_dir: Path, command: str = "train", verbose: int = 1,
          resume: Path | None = None) -> TrainResult:
    """Run a prepared experiment into a new run directory, or continue the run in ``resume``.

    Raises:
        RunFailed: training failed (e.g. NaN loss); the run is marked failed.
        RunInterrupted: Ctrl-C / SIGTERM; the run is marked interrupted.
    """
    cfg = exp.cfg
    tracker = tracking.open_tracker(cfg)  # MLflow's store is opened before anything is written
    if resume is not None:
        info = resumable_info(Path(resume))
        # A damaged backup or history is an error before the run is touched.
        restored = backup_epoch(Path(resume))
        if is_trained(info, Path(resume)):  # the fit had finished: every epoch of its history stays
            restored = int(info.get("last_epoch") or 0)
        logged = len(read_history(Path(resume) / "history.csv").get("loss", []))
        if logged < restored:
            raise RunError(f"{Path(resume) / 'history.csv'}: damaged (it logs {logged} epochs, the backup holds "
                           f"{restored}); restore it, or start a new run: resuming would lose those epochs' history")
        run = Run.reopen(resume)
    else:
        run = Run(runs_dir, cfg.name or "run", command, run_info(exp))
    previous = interrupts.install()
    monitor = None
    try:
        if resume is not None:
            truncate_history(run.path / "history.csv", restored)
            run.update(epoch_seconds=(run.info.get("epoch_seconds") or [])[:restored])
        else:
            atomic_write_text(run.path / "config.yaml", dump_yaml(cfg.to_yaml_dict()))
            atomic_write_text(run.path / "summary.txt", summary_text(exp.model))
            exp.data.prep.save(run.path)
        tracker.start(run, command)
        extra = [*tracking.tensorboard_callbacks(cfg, run.path / tracking.TENSORBOARD_DIR), *tracker.callbacks()]
        interrupts.checkpoint("before_fit")
        history, monitor = fit(exp, run, verbose, extra)
        if monitor.nan_epoch is not None:
            reason = f"loss became NaN at epoch {monitor.nan_epoch}"
            shutil.rmtree(run.path / BACKUP_DIR, ignore_errors=True)  # a NaN state: a resume starts over
            run.finish("failed", reason, epochs=monitor.last_epoch, last_epoch=monitor.last_epoch)
            tracker.end("FAILED")
            raise RunFailed(f"run {run.id} failed: {reason}; try a lower learning rate or scaled inputs "
                            f"(data.scale: standard). Run directory: {run.path}")
        # The learning-curve plot needs matplotlib: import it while the model is scored and saved.
        plotting = _import_in_background("matplotlib.figure", "matplotlib.backends.backend_agg")
        interrupts.checkpoint("saving")
        save_trained(exp.model, run, monitor.last_epoch)
        interrupts.checkpoint("scoring")
        metrics, baseline = score_run(exp.model, cfg, exp.data)
        write_csv(run.path / "metrics.csv", metrics)
        plotting.join()
        full_history = read_history(run.path / "history.csv")  # every epoch, those before a resume too
        diagnosis = write_fit_report(exp, run.path, metrics, full_history, baseline)
        tracker.log_results(exp, metrics, run.path)
        interrupts.checkpoint("finish")
    except KeyboardInterrupt:
        last = int(run.info.get("last_epoch") or 0)  # the monitor records each finished epoch there
        run.finish("interrupted", f"interrupted after epoch {last}", epochs=last, last_epoch=last)
        tracker.end("KILLED")
        raise RunInterrupted(f"run {run.id} interrupted after epoch {last}: {run.path}") from None
    except RunFailed:
        raise
    except Exception as exc:
        error = storage_error(exc, Path(getattr(exc, "filename", None) or run.path))
        with contextlib.suppress(StorageError):  # a full disk may not take even the failed status
            run.finish("failed", str(error) if error else f"{type(exc).__name__}: {_useful_line(exc)}")
        tracker.end("FAILED")
        if error is not None:
            raise error from None
        raise
    else:
        interrupts.hold()  # done: a signal from here on no longer stops the run
        epochs = monitor.last_epoch  # counts the epochs before a resume too
        test = next((row for row in metrics if row["split"] == "test"), {})
        run.finish("completed", epochs=epochs, last_epoch=monitor.last_epoch,
                   test_metrics={k: v for k, v in test.items() if k != "split"}, **baseline.run_info())
        tracker.end("FINISHED")
    finally:
        interrupts.restore(previous)
    return TrainResult(run_dir=run.path, run_id=run.id, metrics=metrics, history=full_history,
                       seconds=run.info["seconds"], epochs_run=epochs, diagnosis=diagnosis,
                       baseline=baseline)


def write_diagnosis(run_dir: Path, metrics: list[dict[str, Any]], history: dict[str, list[float]],
                    settings: DiagnosisConfig, baseline: Baseline) -> Any:
    """Diagnose the fit against the trivial baseline and save it as ``diagnosis.json``; returns the Diagnosis."""
    diagnosis = diagnose(metrics, history, settings, baseline.rows)
    atomic_write_json(run_dir / "diagnosis.json", diagnosis.to_dict())
    return diagnosis


def write_fit_report(exp: Experiment, run_dir: Path, metrics: list[dict[str, Any]],
                     history: dict[str, list[float]], baseline: Baseline) -> Any:
    """Diagnose the fit (``diagnosis.json``) and draw ``learning_curves.png``; returns the Diagnosis."""
    from dlcli.report import plot_learning_curves

    diagnosis = write_diagnosis(run_dir, metrics, history, exp.cfg.diagnosis, baseline)
    curves = {"epoch": list(range(1, len(history.get("loss", [])) + 1)), **history}
    plot_learning_curves(curves, run_dir / "learning_curves.png", diagnosis.best_epoch, title=run_dir.name)
    return diagnosis
