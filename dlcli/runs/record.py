"""A run's record, ``run.json``: reading it, and the status to show (a silent "running" run has crashed)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
from pathlib import Path
from typing import Any

from dlcli.errors import RunError
from dlcli.runs.reading import json_object, read_run_file

# A running process rewrites its heartbeat at least this often (once per epoch, and at start and end);
# ``runs list`` shows a "running" run whose heartbeat is older than the stale limit as crashed.
HEARTBEAT_STALE_SECONDS = 600


def now_iso() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


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


def resumable_info(run_dir: Path, command: str = "train") -> dict[str, Any]:
    """``run.json`` of a run that ``--resume`` may continue; RunError saying why not otherwise."""
    info = load_run_info(run_dir)
    if info.get("command") != command:
        raise RunError(f"{run_dir}: a `{info.get('command')}` run; resume it with `dlcli {info.get('command')} "
                       f"--resume`")
    status = effective_status(info)
    if status == "completed":
        raise RunError(f"{run_dir}: the run already completed; to train again, start a new run with "
                       f"`dlcli {command} {Path(run_dir) / 'config.yaml'}`")
    if status == "running":
        raise RunError(f"{run_dir}: the run is still running (pid {info.get('pid')} on {info.get('host')})")
    return info


def load_run_info(run_dir: Path) -> dict[str, Any]:
    """``run.json`` of a run directory; a clear RunError if it is not one."""
    path = Path(run_dir)
    if not path.is_dir():
        raise RunError(f"{path}: no such run directory (see `dlcli runs list`)")
    try:
        return read_run_file(path / "run.json", _run_record)
    except FileNotFoundError:
        raise RunError(f"{path}: not a dlcli run directory (it has no run.json)") from None


def _run_record(text: str) -> dict[str, Any]:
    info = json_object(text)
    wrong = [k for k in ("run_id", "command", "status") if not isinstance(info.get(k, ""), str)]
    if wrong or not isinstance(info.get("status"), str):
        raise ValueError(f"no text {', '.join(wrong or ['status'])} field")
    return info
