"""``dlcli runs show``: one run's record, config, metrics, fit diagnosis and evaluations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlcli.runs.checksums import verify_recorded
from dlcli.runs.contents import list_evaluations, read_diagnosis, read_history, read_metrics, read_run_config
from dlcli.runs.reading import json_object, read_run_file
from dlcli.runs.record import effective_status, load_run_info


def _diagnosis_text(run_dir: Path, metrics: list[dict[str, Any]], high_error: float | None,
                    max_gap: float | None) -> str:
    from dlcli.runs.diagnosis import diagnose, rejudge  # lazy: start-up speed (diagnosis imports the config models)

    saved = read_diagnosis(run_dir)
    if saved is None:
        if not metrics:
            return "diagnosis: none (the run has no metrics.csv: it did not finish)"
        from dlcli.config import DiagnosisConfig  # lazy: start-up speed

        section = read_run_config(run_dir).get("diagnosis")
        settings = DiagnosisConfig.model_validate(section) if isinstance(section, dict) else DiagnosisConfig()
        saved = diagnose(metrics, read_history(run_dir), settings).to_dict()
    return rejudge(saved, high_error, max_gap).text()


def run_details(run_dir: Path, high_error: float | None = None, max_gap: float | None = None) -> dict[str, Any]:
    """What ``dlcli runs show`` prints: the run's record, config text, metrics, what the baseline row is,
    fit diagnosis and evaluations.

    Args:
        run_dir: the run directory.
        high_error / max_gap: judge the fit again with these thresholds (default: the run's own).
    """
    run_dir = Path(run_dir)
    info = load_run_info(run_dir)
    verify_recorded(run_dir, info)
    data = info.get("data") or {}
    classes = data.get("classes")
    record: dict[str, Any] = {
        "run": info.get("run_id", run_dir.name), "path": str(run_dir), "name": info.get("name"),
        "command": info.get("command"), "status": effective_status(info), "reason": info.get("reason"),
        "started": info.get("started"), "seconds": info.get("seconds"), "epochs": info.get("epochs"),
        "parameters": info.get("params"),
        "data": (f"{data.get('source')} ({data.get('fingerprint')}): {data.get('train')} train / {data.get('val')} "
                 f"val / {data.get('test')} test, {data.get('task')}"
                 + (f", {len(classes)} classes" if classes else "")) if data else None,
    }
    config_path = run_dir / "config.yaml"
    metrics = read_metrics(run_dir)
    evaluations = []
    for path in list_evaluations(run_dir):
        if (path / "evaluation.json").is_file():  # absent while an evaluation is being written
            saved = read_run_file(path / "evaluation.json", json_object)
            # Both absent from evaluations written before dlcli recorded them.
            backend, keras_row = (value if isinstance(value, dict) else {}
                                  for value in (saved.get("backend"), saved.get("metrics")))
            evaluations.append({"evaluation": path.name, "split": saved.get("split"), "samples": saved.get("samples"),
                                "backend": backend.get("backend"), "loss": keras_row.get("loss"),
                                **(saved.get("scores") or {})})
    return {
        "record": {k: v for k, v in record.items() if v not in (None, "")},
        "config": config_path.read_text(encoding="utf-8") if config_path.is_file() else "(no config.yaml)",
        "metrics": metrics,
        # (split, what it predicts) of the metrics' baseline row; None for runs from before baselines
        "baseline": (info["baseline_split"], info.get("baseline_predicts")) if info.get("baseline_split") else None,
        "diagnosis": _diagnosis_text(run_dir, metrics, high_error, max_gap),
        "evaluations": evaluations,
    }
