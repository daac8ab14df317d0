"""Finding runs and listing them (``dlcli runs list``, a run given by path or id): read-only, and light on
purpose: ``dlcli runs ...`` must not import TensorFlow, pandas or matplotlib."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlcli.errors import RunError, did_you_mean
from dlcli.runs.index import index_rows
from dlcli.runs.reading import to_number
from dlcli.runs.record import effective_status, load_run_info

# Metric names where a lower value is better; ``runs list --sort`` puts the best runs first.
LOWER_IS_BETTER = ("loss", "error", "mae", "mse", "rmse", "mape", "msle", "hinge", "crossentropy", "divergence")
LIST_COLUMNS = ["run_id", "name", "command", "status", "epochs"]


def find_run_dir(run: str | Path, runs_dir: Path) -> Path:
    """A run directory from a path or a run id (looked up under ``runs_dir``).

    Raises:
        RunError: neither a run directory nor a known run id (with the closest id, if any).
    """
    path = Path(run)
    for candidate in (path, runs_dir / str(run)):
        if candidate.is_dir():
            if not (candidate / "run.json").is_file():
                raise RunError(f"{candidate}: not a dlcli run directory (it has no run.json)")
            return candidate
    ids = [str(r.get("run_id") or "") for r in index_rows(runs_dir)[0]]
    close = did_you_mean(str(run), ids)
    hint = f";{close}" if close else ""
    raise RunError(f"{run}: no such run directory, and no run with that id in {runs_dir}{hint} "
                   f"(see `dlcli runs list`)")



def list_runs(runs_dir: Path) -> list[dict[str, Any]]:
    """One row per run in ``runs_dir/index.csv``: id, name, command, status, epochs and the test metrics.

    The status is :func:`effective_status`, so a ``running`` run whose process died shows as ``crashed``.
    """
    rows = []
    for entry in index_rows(runs_dir)[0]:
        status = entry.get("status") or "unknown"
        run_dir = runs_dir / str(entry.get("run_id") or "")
        if run_dir.is_dir() and entry.get("run_id"):
            try:
                info = load_run_info(run_dir)
                status = effective_status(info) if status == "running" else status
            except RunError:
                status = "damaged"  # run.json unreadable: `dlcli runs show` names the problem
        row: dict[str, Any] = {k: to_number(entry.get(k, "")) for k in LIST_COLUMNS}
        row["status"] = status
        row.update({k: to_number(v) for k, v in entry.items() if k.startswith("test_")})
        rows.append(row)
    return rows


def sort_runs(rows: list[dict[str, Any]], column: str | None, top: int | None = None,
              reverse: bool = False) -> list[dict[str, Any]]:
    """Rows sorted by ``column``, best first for metrics (lower first for losses and errors,
    higher first for the rest), ascending for other columns; ``reverse`` flips it; runs without
    a value go last; ``top`` keeps the first N.

    Raises:
        RunError: ``column`` is not a column of the table (the message lists the columns).
    """
    if column is not None:
        columns = list(dict.fromkeys(k for row in rows for k in row)) or list(LIST_COLUMNS)
        if column not in columns:
            hint = did_you_mean(column, columns)
            raise RunError(f"--sort: {column!r} is not a column{';' + hint if hint else ''} "
                           f"(columns: {', '.join(columns)})")
        is_metric = column.startswith(("test_", "val_", "train_"))
        descending = is_metric and not any(word in column.lower() for word in LOWER_IS_BETTER)
        descending ^= reverse
        present = [r for r in rows if r.get(column) not in ("", None)]
        missing = [r for r in rows if r.get(column) in ("", None)]
        numeric = all(isinstance(r[column], (int, float)) for r in present)
        key = (lambda r: r[column]) if numeric else (lambda r: str(r[column]))
        rows = sorted(present, key=key, reverse=descending) + missing
    return rows[:top] if top is not None else rows
