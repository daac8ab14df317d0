"""``dlcli runs compare``: the config values and the scores that differ between runs, one column per run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dlcli.runs.checksums import verify_recorded
from dlcli.runs.contents import read_diagnosis, read_metrics, read_run_config
from dlcli.runs.record import effective_status, load_run_info


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested config data as dotted paths: ``{"model.layers.0.units": 64, ...}``."""
    out: dict[str, Any] = {}
    if isinstance(data, dict) and data:
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(data, list) and data:
        for index, value in enumerate(data):
            out.update(flatten(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        out[prefix] = data
    return out



def _cell(value: Any) -> Any:
    return "" if value is None else (value if isinstance(value, (int, float, str)) else json.dumps(value))


def _merged_keys(dicts: list[dict[str, Any]]) -> list[str]:
    """The keys of several dicts in one order: a key missing from the first goes right after the key
    it follows in its own dict, so that related keys stay together."""
    keys: list[str] = []
    for d in dicts:
        previous = None
        for key in d:
            if key not in keys:
                keys.insert(keys.index(previous) + 1 if previous is not None else 0, key)
            previous = key
    return keys


def compare_configs(run_dirs: list[Path]) -> list[dict[str, Any]]:
    """The config values that differ between runs: one row per dotted path, one column per run."""
    flat = [flatten(read_run_config(d)) for d in run_dirs]
    keys = _merged_keys(flat)
    missing = object()
    rows = []
    for key in keys:
        values = [f.get(key, missing) for f in flat]
        if all(v == values[0] for v in values[1:]):
            continue
        row: dict[str, Any] = {"config": key}
        for run_dir, value in zip(run_dirs, values):
            # YAML spelling (null, true, 1e-05): a table's float format would hide small values.
            if value is missing:
                row[run_dir.name] = "(absent)"
            else:
                row[run_dir.name] = value if isinstance(value, str) else json.dumps(value)
        rows.append(row)
    return rows


def compare_metrics(run_dirs: list[Path]) -> list[dict[str, Any]]:
    """Status, epochs, each split's metrics and the fit diagnosis: one row per value, one column per run."""
    per_run: list[dict[str, Any]] = []
    for run_dir in run_dirs:
        info = load_run_info(run_dir)
        verify_recorded(run_dir, info)
        values: dict[str, Any] = {"status": effective_status(info), "epochs": info.get("epochs"),
                                  "seconds": info.get("seconds"), "params": info.get("params")}
        for row in read_metrics(run_dir):
            split = row.get("split")
            values.update({f"{split}_{k}": v for k, v in row.items() if k != "split"})
        diagnosis = read_diagnosis(run_dir)
        if diagnosis:
            values["diagnosis"] = diagnosis.get("verdict")
            values["best_epoch"] = diagnosis.get("best_epoch")
        per_run.append(values)
    keys = _merged_keys(per_run)
    return [{"metric": key, **{d.name: _cell(v.get(key)) for d, v in zip(run_dirs, per_run)}} for key in keys]
