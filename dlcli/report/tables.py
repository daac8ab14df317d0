"""Tables for the console: rows of dicts as an aligned text table, CSV, JSON or Markdown.

Plain Python on purpose: light commands such as ``dlcli runs list`` must not pay for importing pandas.
"""

from __future__ import annotations

import json
from typing import Any

from dlcli.runs import columns_of, csv_text


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e5 else f"{value:.4g}"
    return str(value)


def format_table(rows: list[dict[str, Any]], fmt: str = "table") -> str:
    """Render rows of dicts as an aligned text table, CSV, JSON or a Markdown table."""
    columns = columns_of(rows)
    if fmt == "json":
        return json.dumps(rows, indent=2, default=str)
    if fmt == "csv":
        return csv_text(rows).rstrip("\n")
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in cells]
        return "\n".join(lines)
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [all(_is_number(r[i]) for r in cells if r[i]) for i in range(len(columns))]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def baseline_note(split: str, predicts: str) -> str:
    """The line under a metrics table that says what its ``baseline`` row is."""
    return (f"baseline: a model that ignores its inputs and always predicts {predicts}; scored on the {split} "
            f"split. A useful model beats it.")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def format_sections(sections: dict[str, list[dict[str, Any]]], fmt: str = "table") -> str:
    """Several titled tables: one JSON object for ``json``, else the tables one after another
    (titled for ``table`` and ``markdown``; separated by a blank line for ``csv``)."""
    sections = {title: rows for title, rows in sections.items() if rows}
    if fmt == "json":
        return json.dumps({title.replace(" ", "_"): rows for title, rows in sections.items()}, indent=2, default=str)
    parts = []
    for title, rows in sections.items():
        table = format_table(rows, fmt)
        if fmt == "markdown":
            parts.append(f"### {title}\n\n{table}")
        elif fmt == "table":
            parts.append(f"{title}:\n{table}")
        else:
            parts.append(table)
    return "\n\n".join(parts)
