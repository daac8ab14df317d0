"""The training state a run keeps until its model is saved, so ``dlcli train --resume`` continues it:
Keras's ``BackupAndRestore`` files in ``<run>/backup/``, the disk check before each checkpoint, and the
saved model that replaces them."""

from __future__ import annotations

import csv
import io
import os
import shutil
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


class DiskSpaceGuard:
    """Keras callback: before each epoch's checkpoint, make sure the disk can hold it (h5py can crash the
    process when the disk fills during a write). Goes right before ``BackupAndRestore``."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        keras = runtime.import_keras()

        class _Guard(keras.callbacks.Callback):
            def __init__(self, backup_dir: Path):
                super().__init__()
                self.backup_dir = backup_dir

            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                weights = self.backup_dir / BACKUP_FILES[1]
                # Weights and optimizer state, kept twice (double_checkpoint).
                size = weights.stat().st_size if weights.exists() else checkpoint_bytes(self.model)
                check_free_space(self.backup_dir, 2 * size + (1 << 20), f"the epoch {epoch + 1} checkpoint")

        return _Guard(*args, **kwargs)


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
