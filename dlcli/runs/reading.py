"""The one owner of run-file reads: every run file is read through :func:`read_run_file`, so any
parse failure becomes one RunError naming the file (and what to do about it)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlcli.errors import RunError, first_line


def damaged(path: Path, why: str, fix: str | None = None) -> RunError:
    """The RunError for a run file that exists but cannot be used."""
    fix = fix or ("restore it, or delete the run directory if the run is no longer needed; the other runs "
                  "are unaffected")
    return RunError(f"{path}: damaged or unreadable ({why}); {fix}")


def read_run_file(path: Path, parse: Callable[[str], Any], what: str = "", fix: str | None = None) -> Any:
    """Read a run file as UTF-8 text and ``parse`` it: the one place where a run file's parse failure becomes
    a RunError naming the file. ``parse`` raises (anything) on text of the wrong shape.

    Raises:
        RunError: the file is missing (FileNotFoundError is left to callers that allow it), unreadable,
            not UTF-8, or ``parse`` failed.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise
    except UnicodeDecodeError:
        raise damaged(path, "not UTF-8 text", fix) from None
    except OSError as exc:
        raise damaged(path, exc.strerror or type(exc).__name__, fix) from None
    try:
        return parse(text)
    except Exception as exc:
        raise damaged(path, f"{what + ': ' if what else ''}{first_line(exc, 160)}", fix) from None


def json_object(text: str) -> dict[str, Any]:
    """``text`` as a JSON object (a dict), else ValueError."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, found {type(data).__name__}")
    return data


def csv_table(text: str, required: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """``text`` as CSV rows of strings; ValueError if a row's fields do not match the header or a
    ``required`` column is missing. Empty text is an empty table."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = list(reader)
    header = reader.fieldnames or []
    if text.strip() and (not header or len(set(header)) != len(header)):
        raise ValueError("no valid header line")
    missing = [c for c in required if c not in header] if text.strip() else []
    if missing:
        raise ValueError(f"no {', '.join(missing)} column")
    for number, row in enumerate(rows, start=2):
        if None in row or any(v is None for v in row.values()):
            raise ValueError(f"line {number} does not have the header's {len(header)} fields")
    return rows


def to_number(text: Any) -> Any:
    """``"0.25"`` -> 0.25, ``"3"`` -> 3, anything else unchanged."""
    if not isinstance(text, str) or not text:
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def read_csv_rows(path: Path, required: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """A small CSV run file as rows of dicts, numbers parsed (no pandas).

    Raises:
        RunError: the file is damaged (rows that do not match the header, a ``required`` column missing).
    """
    rows = read_run_file(path, lambda text: csv_table(text, required))
    return [{k: to_number(v) for k, v in row.items()} for row in rows]
