"""What a run's files hold, read back: metrics, history, diagnosis, config and evaluations.

Read-only and light on purpose: ``dlcli runs ...`` must not import TensorFlow, pandas or matplotlib.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlcli.runs.reading import json_object, read_csv_rows, read_run_file

# The `split` of the metrics.csv row that holds the trivial baseline's scores (dlcli/model/baseline.py) on the
# test split (val, else train, when there is none; run.json's baseline_split says which).
BASELINE_SPLIT = "baseline"


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """``metrics.csv`` of a run (one row per split, then the ``baseline`` row), or [] if it has none."""
    path = Path(run_dir) / "metrics.csv"
    return read_csv_rows(path, ("split",)) if path.is_file() else []


def read_history(run_dir: Path) -> dict[str, list[Any]]:
    """``history.csv`` of a run as columns (``{"epoch": [1, 2], "loss": [..], ...}``), or {}."""
    path = Path(run_dir) / "history.csv"
    if not path.is_file():
        return {}
    rows = read_csv_rows(path, ("epoch",) if path.stat().st_size else ())  # empty: resumed from epoch 0
    columns: dict[str, list[Any]] = {k: [] for k in (rows[0] if rows else {})}
    for row in rows:
        for key in columns:
            value = row.get(key)
            columns[key].append(None if value in ("", None) else value)
    return columns


def read_diagnosis(run_dir: Path) -> dict[str, Any] | None:
    """``diagnosis.json`` of a run, or None (a run from before diagnoses, or one that did not finish)."""
    path = Path(run_dir) / "diagnosis.json"
    if not path.is_file():
        return None
    return read_run_file(path, json_object)


def list_evaluations(run_dir: Path) -> list[Path]:
    """The run's evaluation directories, oldest first."""
    root = Path(run_dir) / "evaluations"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """``config.yaml`` of a run as plain data (safe YAML loader; {} if missing)."""
    from dlcli.config import read_yaml  # lazy: start-up speed (pydantic; `runs list` needs no config)

    path = Path(run_dir) / "config.yaml"
    data = read_yaml(path) if path.is_file() else None
    return data if isinstance(data, dict) else {}
