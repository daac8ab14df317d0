"""What several commands print the same way: notes about the input, a table's columns, tracking links."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def columns_lines(data: Any) -> list[str]:
    """What each column of a table became and how many model inputs it yields, one line per column."""
    rows = data.columns or []
    width = max([len(r["column"]) for r in rows] + [6])
    lines = [f"columns of {Path(data.source).name} (target {data.prep.target!r}): {len(data.prep.input_names or [])} "
             f"model inputs from {sum(1 for r in rows if r['inputs'])} of {len(rows)} columns"]
    for r in rows:
        inputs = f"{r['inputs']} input{'s' if r['inputs'] != 1 else ''}"
        lines.append(f"  {r['column'].ljust(width)}  {r['type']:<11} {inputs:<10} {r['why']}")
    return lines


def echo_notes(notes: list[str]) -> None:
    """Notes about the input on stderr, one line each ("warning: ..." lines keep their prefix)."""
    for note in notes:
        typer.echo(note if note.startswith("warning:") else f"note: {note}", err=True)


def echo_tracking(run_dir: Path) -> None:
    """Where TensorBoard and MLflow show this run, if it was tracked."""
    from dlcli.integrations.tracking import tracking_lines  # lazy: start-up speed

    for line in tracking_lines(run_dir):
        typer.echo(line)
