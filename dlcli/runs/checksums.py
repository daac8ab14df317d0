"""Checksums of a finished run's files: recorded in run.json, checked before a later command trusts them."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from dlcli.errors import RunError

# Files a finished run needs; their SHA-256 goes into run.json (``files``) so a later command can tell a
# missing or changed file from a good one.
CHECKED_FILES = ("config.yaml", "model.keras", "preprocessing.json", "preprocessing.npz", "metrics.csv",
                 "best_config.yaml")


def file_digest(path: Path) -> str:
    with open(path, "rb") as fh:
        return "sha256:" + hashlib.file_digest(fh, "sha256").hexdigest()


def file_digests(run_dir: Path, names: tuple[str, ...] = CHECKED_FILES) -> dict[str, str]:
    """SHA-256 of each of ``names`` present in ``run_dir``."""
    return {name: file_digest(run_dir / name) for name in names if (run_dir / name).is_file()}


def verify_recorded(run_dir: Path, info: dict[str, Any]) -> None:
    """:func:`verify_files` for every file whose checksum run.json recorded (none for an unfinished run)."""
    recorded = info.get("files")
    if isinstance(recorded, dict):
        verify_files(run_dir, info, tuple(recorded))


def verify_files(run_dir: Path, info: dict[str, Any], needed: tuple[str, ...]) -> None:
    """Check that each of ``needed`` is in ``run_dir`` and unchanged since the run finished (its checksum in
    run.json). Runs from before checksums are checked for presence only; optional files (a run without
    scaling arrays has no preprocessing.npz) are required only when run.json recorded them.

    Raises:
        RunError: one message naming the first missing or changed file.
    """
    run_dir = Path(run_dir)
    recorded = info.get("files") if isinstance(info.get("files"), dict) else {}
    for name in needed:
        path = run_dir / name
        must_exist = name in recorded or (not recorded and name != "preprocessing.npz")
        if not path.is_file():
            if must_exist:
                raise RunError(f"{run_dir}: the run has no {name}; it cannot be used without it (was it deleted or "
                               f"moved?). Restore it, or train the run again")
            continue
        if name in recorded and file_digest(path) != recorded[name]:
            raise RunError(f"{path}: changed since the run finished (its SHA-256 differs from the one in "
                           f"run.json); restore the original file, or train the run again")
