"""Reporting runs beyond their run directory: the tracker ``train`` and ``tune`` use, and the lines the console
shows about where a run also went (TensorBoard logs, its MLflow run)."""

from __future__ import annotations

from pathlib import Path

from dlcli.config import ExperimentConfig
from dlcli.errors import DlcliError
from dlcli.integrations.mlflow import MlflowTracker, check_mlflow_installed, mlflow_settings
from dlcli.integrations.tensorboard import TENSORBOARD_DIR
from dlcli.integrations.tracker import Tracker
from dlcli.runs import load_run_info


def tracking_lines(run_dir: Path) -> list[str]:
    """What the console shows after a run about where else it went: its TensorBoard logs and MLflow run."""
    lines = []
    if (Path(run_dir) / TENSORBOARD_DIR).is_dir():
        lines.append(f"tensorboard: tensorboard --logdir {Path(run_dir) / TENSORBOARD_DIR}")
    try:
        logged = load_run_info(Path(run_dir)).get("mlflow")
    except DlcliError:
        logged = None
    if logged:
        model = f", model {logged['model_uri']}" if logged.get("model_uri") else ""
        lines.append(f"mlflow: run {logged['run_id']} in experiment {logged['experiment']!r}{model} at "
                     f"{logged['tracking_uri']}")
    return lines


def open_tracker(cfg: ExperimentConfig) -> Tracker:
    """The tracker for this config: MLflow's when tracking.mlflow is on (its store opened and its experiment
    found or created now, before anything is trained or written), else one that reports nothing.

    Raises:
        DlcliError: MLflow is not installed, or its store cannot be used.
    """
    settings = mlflow_settings(cfg)
    if settings is None:
        return Tracker()
    check_mlflow_installed(cfg)
    return MlflowTracker(settings, cfg)
