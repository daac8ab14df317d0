"""``train``: a prepared experiment into a run directory (or the run it resumes), with its run state,
TensorBoard and MLflow, and a clear end: completed, failed or interrupted."""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlcli.config import dump_yaml
from dlcli.errors import RunError, RunFailed, RunInterrupted, StorageError
from dlcli.integrations import TENSORBOARD_DIR, open_tracker, tensorboard_callbacks
from dlcli.model import summary_text
from dlcli.model.baseline import Baseline
from dlcli.runs import Run, atomic_write_text, read_history, resumable_info, storage_error, write_csv
from dlcli.runtime import interrupts
from dlcli.train.backup import BACKUP_DIR, backup_epoch, is_trained, save_trained, truncate_history
from dlcli.train.experiment import Experiment, backend_error_line, run_info
from dlcli.train.fitting import fit
from dlcli.train.results import draw_learning_curves, score_run, write_diagnosis


@dataclass
class TrainResult:
    run_dir: Path
    run_id: str
    metrics: list[dict[str, Any]]
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    epochs_run: int = 0
    diagnosis: Any = None  # dlcli.runs.diagnosis.Diagnosis: underfit / overfit / good fit, with its numbers
    baseline: Baseline | None = None  # the trivial predictor's scores: the `baseline` row of metrics


def train(exp: Experiment, runs_dir: Path, command: str = "train", verbose: int = 1,
          resume: Path | None = None) -> TrainResult:
    """Run a prepared experiment into a new run directory, or continue the run in ``resume``.

    Raises:
        RunFailed: training failed (e.g. NaN loss); the run is marked failed.
        RunInterrupted: Ctrl-C / SIGTERM; the run is marked interrupted.
    """
    cfg = exp.cfg
    tracker = open_tracker(cfg)  # MLflow's store is opened before anything is written
    if resume is not None:
        info = resumable_info(Path(resume))
        # A damaged backup or history is an error before the run is touched.
        restored = backup_epoch(Path(resume))
        if is_trained(info, Path(resume)):  # the fit had finished: every epoch of its history stays
            restored = int(info.get("last_epoch") or 0)
        logged = len(read_history(Path(resume)).get("loss", []))
        if logged < restored:
            raise RunError(f"{Path(resume) / 'history.csv'}: damaged (it logs {logged} epochs, the backup holds "
                           f"{restored}); restore it, or start a new run: resuming would lose those epochs' history")
        run = Run.reopen(resume)
    else:
        run = Run(runs_dir, cfg.name or "run", command, run_info(exp))
    previous = interrupts.install()
    monitor = curves = None
    try:
        if resume is not None:
            truncate_history(run.path / "history.csv", restored)
            run.update(epoch_seconds=(run.info.get("epoch_seconds") or [])[:restored])
        else:
            atomic_write_text(run.path / "config.yaml", dump_yaml(cfg.to_yaml_dict()))
            atomic_write_text(run.path / "summary.txt", summary_text(exp.model))
            exp.data.prep.save(run.path)
        tracker.start(run, command)
        interrupts.checkpoint("before_fit")
        history, monitor = fit(exp, run, verbose, tensorboard_callbacks(cfg, run.path / TENSORBOARD_DIR), tracker)
        if monitor.nan_epoch is not None:
            reason = f"loss became NaN at epoch {monitor.nan_epoch}"
            shutil.rmtree(run.path / BACKUP_DIR, ignore_errors=True)  # a NaN state: a resume starts over
            run.finish("failed", reason, epochs=monitor.last_epoch, last_epoch=monitor.last_epoch)
            tracker.end("FAILED")
            raise RunFailed(f"run {run.id} failed: {reason}; try a lower learning rate or scaled inputs "
                            f"(data.scale: standard). Run directory: {run.path}")
        full_history = read_history(run.path)  # every epoch, those before a resume too
        curves = draw_learning_curves(full_history, run.path)  # in a thread, while the model is saved and scored
        interrupts.checkpoint("saving")
        save_trained(exp.model, run, monitor.last_epoch)
        interrupts.checkpoint("scoring")
        metrics, baseline = score_run(exp.model, cfg, exp.data)
        write_csv(run.path / "metrics.csv", metrics)
        diagnosis = write_diagnosis(run.path, metrics, full_history, cfg.diagnosis, baseline)
        curves.result()
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
            run.finish("failed", str(error) if error else f"{type(exc).__name__}: {backend_error_line(exc)}")
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
        if curves is not None:  # a run that failed or was stopped after the fit: no half-drawn plot behind it
            curves.exception()
        interrupts.restore(previous)
    return TrainResult(run_dir=run.path, run_id=run.id, metrics=metrics, history=full_history,
                       seconds=run.info["seconds"], epochs_run=epochs, diagnosis=diagnosis,
                       baseline=baseline)
