"""What ``train`` and ``tune`` report beyond their run directory, whichever integrations are on.

A ``Tracker`` reports nothing (MLflow tracking off); ``dlcli.integrations.mlflow.MlflowTracker`` overrides
each of its methods.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlcli.config import ExperimentConfig


class Tracker:
    """Reports nothing: what ``open_tracker`` returns when MLflow tracking is off."""

    def start(self, run: Any, command: str) -> None:
        """A dlcli run (``runs.Run``) started, or was reopened by ``--resume``."""

    def callbacks(self, saved_epoch: Callable[[], int] | None = None) -> list[Any]:
        """Keras callbacks that report each epoch.

        Args:
            saved_epoch: the last epoch the resume checkpoint holds, asked at each epoch's end and when the
                fit ends (after the checkpoint's own save); an epoch is reported once it holds it, since a
                resume trains the later ones again. None (no checkpoint): each epoch as it ends.
        """
        return []

    def log_results(self, exp: Any, metrics: list[dict[str, Any]], run_dir: Path) -> None:
        """The run's final scores (metrics.csv rows), its model and its files."""

    def end(self, status: str) -> None:
        """The run ended: FINISHED, FAILED or KILLED."""

    def log_search(self, cfg: ExperimentConfig, result: Any) -> None:
        """A finished ``dlcli tune`` search (``tune.TuneResult``): the search and one nested run per trial."""
