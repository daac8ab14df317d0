"""One run as it goes: its directory (created atomically, only after the config and data were validated),
``run.json`` kept up to date, and its row in the index."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

from dlcli.errors import StorageError
from dlcli.runs.checksums import file_digests
from dlcli.runs.files import atomic_write_json, check_tree_has_no_symlinks, create_unique_dir
from dlcli.runs.index import INDEX_FIRST_COLUMNS, upsert_index
from dlcli.runs.record import now_iso, resumable_info


def safe_name(name: str) -> str:
    """A run name usable in a directory name: letters and digits of any script, ``.``, ``_`` and ``-`` kept; no
    separators, no leading dots, no ``..``."""
    cleaned = re.sub(r"[^\w.-]+", "_", name).strip("._-")
    return cleaned[:60] or "run"


def create_run_dir(runs_dir: Path, name: str) -> Path:
    """Create ``runs_dir/<YYYYmmdd-HHMMSS>-<name>``, unique even within one second."""
    return create_unique_dir(runs_dir, f"{time.strftime('%Y%m%d-%H%M%S')}-{safe_name(name)}")


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
        try:
            self.save()
            self.index()
        except StorageError:  # the disk refused even the record: leave no empty run behind
            with contextlib.suppress(OSError):
                (self.path / "run.json").unlink(missing_ok=True)
                self.path.rmdir()
            raise

    @classmethod
    def reopen(cls, run_dir: Path, command: str = "train") -> Run:
        """Continue an interrupted or crashed run in its own directory (``dlcli train/tune --resume``)."""
        run_dir = Path(run_dir)
        info = resumable_info(run_dir, command)
        check_tree_has_no_symlinks(run_dir)
        self = cls.__new__(cls)
        self.runs_dir, self.path, self.id = run_dir.parent, run_dir, run_dir.name
        # Seconds keep adding up across resumes.
        self._start = time.monotonic() - float(info.get("seconds") or 0)
        self.info = {**info, "status": "running", "reason": None, "ended": None, "pid": os.getpid(),
                     "host": socket.gethostname(), "resumed": int(info.get("resumed") or 0) + 1}
        self.update()
        self.index()
        return self

    def elapsed(self) -> float:
        return round(time.monotonic() - self._start, 3)

    def save(self, durable: bool = True) -> None:
        atomic_write_json(self.path / "run.json", self.info, durable)

    def update(self, durable: bool = True, **fields: Any) -> None:
        self.info.update(fields, heartbeat=now_iso())
        self.save(durable)

    def index(self, test_metrics: dict[str, float] | None = None) -> None:
        row = {k: self.info.get(k) for k in INDEX_FIRST_COLUMNS}
        row["run_id"] = self.id
        for key, value in (test_metrics or {}).items():
            row[f"test_{key}"] = value
        upsert_index(self.runs_dir, row)

    def finish(self, status: str, reason: str | None = None, test_metrics: dict[str, float] | None = None,
               **fields: Any) -> None:
        """Mark the run ``completed`` / ``failed`` / ``interrupted`` in run.json and the index."""
        if status == "completed":  # what evaluate / predict check before they trust the files
            fields["files"] = file_digests(self.path)
        self.update(status=status, reason=reason, ended=now_iso(), seconds=self.elapsed(), **fields)
        self.index(test_metrics)
