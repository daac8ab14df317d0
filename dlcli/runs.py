"""Run directories, ``run.json``, the runs index and atomic file writes.

A run directory is created with ``os.mkdir`` (atomic: never two runs in one directory) only after
the config and data have been validated. Every file is written to a temporary name and renamed,
so a crash leaves either the old or the new version. ``runs/index.csv`` is rewritten under an
exclusive lock, so concurrent runs never corrupt it.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import fcntl
import io
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dlcli.errors import RunError

INDEX_NAME = "index.csv"
INDEX_FIRST_COLUMNS = ["run_id", "name", "command", "status", "started", "seconds", "epochs"]
# A running process rewrites its heartbeat at least this often (once per epoch, and at start and end);
# ``runs list`` shows a "running" run whose heartbeat is older than the stale limit as crashed.
HEARTBEAT_STALE_SECONDS = 600


def default_runs_dir() -> Path:
    """``$DLCLI_RUNS_DIR`` or ``./runs``."""
    return Path(os.environ.get("DLCLI_RUNS_DIR") or "runs")


def now_iso() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def safe_name(name: str) -> str:
    """A run name usable in a directory name: no separators, no leading dots, no ``..``."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")
    return cleaned[:60] or "run"


def create_run_dir(runs_dir: Path, name: str) -> Path:
    """Create ``runs_dir/<YYYYmmdd-HHMMSS>-<name>``, unique even within one second."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{safe_name(name)}"
    for attempt in range(1, 10_000):
        path = runs_dir / (stem if attempt == 1 else f"{stem}-{attempt}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise RunError(f"{runs_dir}: could not create a new run directory for {stem}")


@contextlib.contextmanager
def _locked(runs_dir: Path) -> Iterator[None]:
    runs_dir.mkdir(parents=True, exist_ok=True)
    with open(runs_dir / ".index.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_index(runs_dir: Path) -> list[dict[str, str]]:
    """The rows of ``runs_dir/index.csv`` (empty if there is none)."""
    path = runs_dir / INDEX_NAME
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def upsert_index(runs_dir: Path, row: dict[str, Any]) -> None:
    """Add or replace the index row whose ``run_id`` matches, under an exclusive lock."""
    with _locked(runs_dir):
        rows = [r for r in read_index(runs_dir) if r.get("run_id") != row["run_id"]]
        rows.append({k: "" if v is None else v for k, v in row.items()})
        columns = list(INDEX_FIRST_COLUMNS)
        for r in rows:
            columns += [k for k in r if k not in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(runs_dir / INDEX_NAME, buf.getvalue())


class Run:
    """One run directory and its ``run.json``, kept up to date as the run goes."""

    def __init__(self, runs_dir: Path, name: str, command: str, info: dict[str, Any]):
        self.runs_dir = runs_dir
        self.path = create_run_dir(runs_dir, name)
        self.id = self.path.name
        self._start = time.monotonic()
        self.info: dict[str, Any] = {
            "run_id": self.id, "name": name, "command": command, "status": "running", "reason": None,
            "started": now_iso(), "ended": None, "seconds": None, "heartbeat": now_iso(),
            "pid": os.getpid(), "host": socket.gethostname(), **info,
        }
        self.save()
        self.index()

    def elapsed(self) -> float:
        return round(time.monotonic() - self._start, 3)

    def save(self) -> None:
        atomic_write_json(self.path / "run.json", self.info)

    def update(self, **fields: Any) -> None:
        self.info.update(fields, heartbeat=now_iso())
        self.save()

    def index(self, test_metrics: dict[str, float] | None = None) -> None:
        row = {k: self.info.get(k) for k in INDEX_FIRST_COLUMNS}
        row["run_id"] = self.id
        for key, value in (test_metrics or {}).items():
            row[f"test_{key}"] = value
        upsert_index(self.runs_dir, row)

    def finish(self, status: str, reason: str | None = None, test_metrics: dict[str, float] | None = None,
               **fields: Any) -> None:
        """Mark the run ``completed`` / ``failed`` / ``interrupted`` in run.json and the index."""
        self.update(status=status, reason=reason, ended=now_iso(), seconds=self.elapsed(), **fields)
        self.index(test_metrics)


def effective_status(info: dict[str, Any]) -> str:
    """The status to show: a ``running`` run whose process is gone or silent is ``crashed``."""
    status = info.get("status") or "unknown"
    if status != "running":
        return status
    pid, host = info.get("pid"), info.get("host")
    if host == socket.gethostname() and isinstance(pid, int):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return "crashed"
        except PermissionError:
            pass
    beat = info.get("heartbeat")
    if beat:
        with contextlib.suppress(ValueError):
            age = dt.datetime.now().astimezone() - dt.datetime.fromisoformat(beat)
            if age.total_seconds() > HEARTBEAT_STALE_SECONDS:
                return "crashed"
    return status


def load_run_info(run_dir: Path) -> dict[str, Any]:
    """``run.json`` of a run directory; a clear RunError if it is not one."""
    path = Path(run_dir)
    if not path.is_dir():
        raise RunError(f"{path}: no such run directory (see `dlcli runs list`)")
    try:
        return json.loads((path / "run.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path}: not a dlcli run directory (it has no run.json)") from None
    except json.JSONDecodeError as exc:
        raise RunError(f"{path}/run.json: unreadable ({exc})") from None
