"""The training state a run keeps until its model is saved, so ``dlcli train --resume`` continues it:
Keras's ``BackupAndRestore`` files in ``<run>/backup/``, saved every few seconds and when the fit ends
(:class:`TimedBackup`, which checks the disk before each checkpoint), and the saved model that replaces them."""

from __future__ import annotations

import csv
import io
import os
import shutil
import time
from pathlib import Path
from typing import Any

from dlcli import runtime
from dlcli.errors import RunError, first_line
from dlcli.runs import (Run, atomic_write_text, check_free_space, damaged, json_object, read_run_file,
                        replacing)
from dlcli.runtime import interrupts

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
        import h5py  # lazy: start-up speed

        with h5py.File(weights, "r"):
            pass
    except Exception as exc:  # missing, truncated or not HDF5
        raise damaged(weights, first_line(exc, 120)) from None
    return epoch


def checkpoint_bytes(model: Any) -> int:
    """About what a checkpoint of ``model`` takes on disk: weights and optimizer state (about 3x the weights
    for Adam), float32, plus 1 MB of HDF5 overhead."""
    return 12 * int(model.count_params()) + (1 << 20)


# The training state is saved at the end of the first epoch that ends BACKUP_SECONDS or more after the last
# save, and BACKUP_COST_FACTOR times that save's own duration or more (so saving takes at most 2% of the
# time), and once when the fit ends: a crash or Ctrl-C costs at most the last few seconds of epochs, and the
# save (22 ms per epoch for the digits MLP, far more for a large model) no longer runs after every epoch. A
# resumed run trains those epochs again, so MLflow, which cannot take back what it logged, is given only the
# epochs a save holds (``saved_epoch``, read by ``dlcli.integrations.mlflow``). Read at each epoch's end.
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

    It relies on ``BackupAndRestore``'s private ``_save_model``, ``_current_epoch`` and ``_last_batch_seen``
    and on the model's ``_initial_epoch`` that its restore sets (checked against Keras 3.15.1).
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

            @property
            def saved_epoch(self) -> int:
                """The last epoch whose state is saved (or was restored): where a resume would start."""
                return self._saved_epoch

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
