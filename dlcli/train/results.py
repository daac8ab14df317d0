"""A trained model's results: its scores beside the trivial baseline (``metrics.csv``), the fit diagnosis
(``diagnosis.json``) and the learning curves (``learning_curves.png``)."""

from __future__ import annotations

import contextlib
import importlib
import threading
from pathlib import Path
from typing import Any

from dlcli.config import DiagnosisConfig, ExperimentConfig
from dlcli.data import Dataset
from dlcli.model.baseline import Baseline, score_baseline
from dlcli.model.scoring import keras_scores
from dlcli.report import plot_learning_curves
from dlcli.runs import atomic_write_json
from dlcli.runs.diagnosis import diagnose
from dlcli.train.experiment import Experiment


def score_splits(model: Any, cfg: ExperimentConfig, data: Dataset) -> list[dict[str, Any]]:
    """Score the model on each non-empty split (:func:`~dlcli.model.scoring.keras_scores`, the definition
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


def import_in_background(*modules: str) -> threading.Thread:
    """Start importing ``modules`` in a thread (matplotlib takes ~0.5 s, mostly while TensorFlow works
    outside the GIL), so the learning-curve plot adds next to nothing to a run's wall time."""

    def load() -> None:
        for module in modules:
            with contextlib.suppress(Exception):  # the real import later reports any problem
                importlib.import_module(module)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    return thread


def write_diagnosis(run_dir: Path, metrics: list[dict[str, Any]], history: dict[str, list[float]],
                    settings: DiagnosisConfig, baseline: Baseline) -> Any:
    """Diagnose the fit against the trivial baseline and save it as ``diagnosis.json``; returns the Diagnosis."""
    diagnosis = diagnose(metrics, history, settings, baseline.rows)
    atomic_write_json(run_dir / "diagnosis.json", diagnosis.to_dict())
    return diagnosis


def write_fit_report(exp: Experiment, run_dir: Path, metrics: list[dict[str, Any]],
                     history: dict[str, list[float]], baseline: Baseline) -> Any:
    """Diagnose the fit (``diagnosis.json``) and draw ``learning_curves.png``; returns the Diagnosis."""
    diagnosis = write_diagnosis(run_dir, metrics, history, exp.cfg.diagnosis, baseline)
    curves = {"epoch": list(range(1, len(history.get("loss", [])) + 1)), **history}
    plot_learning_curves(curves, run_dir / "learning_curves.png", diagnosis.best_epoch, title=run_dir.name)
    return diagnosis
