"""The runs directory and its index, ``runs/index.csv``: one row per run, rewritten under an exclusive lock,
so concurrent runs never corrupt it; a damaged index is rebuilt from the run directories (it only repeats them).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dlcli.errors import RunError
from dlcli.runs.contents import read_metrics
from dlcli.runs.files import make_dir, storage_error, write_csv
from dlcli.runs.reading import csv_table, read_run_file
from dlcli.runs.record import load_run_info

INDEX_NAME = "index.csv"
INDEX_FIRST_COLUMNS = ["run_id", "name", "command", "status", "started", "seconds", "epochs"]


def default_runs_dir() -> Path:
    """``$DLCLI_RUNS_DIR`` or ``./runs``."""
    return Path(os.environ.get("DLCLI_RUNS_DIR") or "runs")


@contextlib.contextmanager
def _locked(runs_dir: Path) -> Iterator[None]:
    make_dir(runs_dir)
    try:
        fd = os.open(runs_dir / ".index.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        lock = os.fdopen(fd, "r+")
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RunError(f"{runs_dir / '.index.lock'}: is a symlink; remove it and run again") from None
        raise (storage_error(exc, runs_dir / ".index.lock") or exc) from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_index(runs_dir: Path) -> list[dict[str, str]]:
    """The rows of ``runs_dir/index.csv`` (empty if there is none).

    Raises:
        RunError: the index is damaged (:func:`index_rows` rebuilds it from the run directories instead).
    """
    try:
        return read_run_file(runs_dir / INDEX_NAME, lambda text: csv_table(text or "(empty)", ("run_id",)),
                             fix="dlcli rebuilds it from the run directories on the next train or tune")
    except FileNotFoundError:
        return []


def index_rows(runs_dir: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The index's rows and None; if ``index.csv`` is damaged, rows rebuilt from each run's run.json and
    metrics.csv (the index only repeats them) and the reason it was damaged."""
    try:
        return read_index(runs_dir), None
    except RunError as exc:
        problem = str(exc)
    rows = []
    for run_json in sorted(Path(runs_dir).glob("*/run.json")):
        try:
            info = load_run_info(run_json.parent)
            test = next((r for r in read_metrics(run_json.parent) if r.get("split") == "test"), {})
        except RunError:
            info, test = {"run_id": run_json.parent.name, "status": "damaged"}, {}
        row = {k: info.get(k) for k in INDEX_FIRST_COLUMNS} | {"run_id": run_json.parent.name}
        rows.append(row | {f"test_{k}": v for k, v in test.items() if k != "split"})
    return rows, problem


def upsert_index(runs_dir: Path, row: dict[str, Any]) -> None:
    """Add or replace the index row whose ``run_id`` matches, under an exclusive lock (a damaged index is
    rebuilt from the run directories first)."""
    with _locked(runs_dir):
        rows = [r for r in index_rows(runs_dir)[0] if r.get("run_id") != row["run_id"]]
        rows.append({k: "" if v is None else v for k, v in row.items()})
        write_csv(runs_dir / INDEX_NAME, rows, first=INDEX_FIRST_COLUMNS)
