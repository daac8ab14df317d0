"""A trained model's results: its scores beside the trivial baseline (``metrics.csv``), the fit diagnosis
(``diagnosis.json``) and the learning curves (``learning_curves.png``, drawn while the model is saved and scored)."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from dlcli.config import DiagnosisConfig, ExperimentConfig
from dlcli.data import Dataset
from dlcli.model.baseline import Baseline, score_baseline
from dlcli.model.scoring import keras_scores
from dlcli.report import plot_learning_curves
from dlcli.runs import atomic_write_json
from dlcli.runs.diagnosis import best_epoch, diagnose


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


def draw_learning_curves(history: dict[str, list[Any]], run_dir: Path) -> Future:
    """Start drawing ``learning_curves.png`` from the finished history (the columns of ``history.csv``, its
    ``epoch`` too, as :func:`~dlcli.runs.read_history` gives them) in a thread, and return its Future
    (``result()`` waits, and raises what the drawing raised).

    The plot needs only the history (the best epoch is the lowest validation loss), so it is drawn while the
    model is saved and scored: matplotlib's import and drawing (~0.5 s) no longer come after them, on the
    run's critical path. The file is written through a temporary name, so it is complete or absent.
    """
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dlcli-plot")
    future = pool.submit(plot_learning_curves, history, run_dir / "learning_curves.png", best_epoch(history)[0],
                         title=run_dir.name)
    pool.shutdown(wait=False)
    return future


def write_diagnosis(run_dir: Path, metrics: list[dict[str, Any]], history: dict[str, list[float]],
                    settings: DiagnosisConfig, baseline: Baseline) -> Any:
    """Diagnose the fit against the trivial baseline and save it as ``diagnosis.json``; returns the Diagnosis."""
    diagnosis = diagnose(metrics, history, settings, baseline.rows)
    atomic_write_json(run_dir / "diagnosis.json", diagnosis.to_dict())
    return diagnosis
