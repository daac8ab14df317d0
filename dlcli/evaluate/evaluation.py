"""``dlcli evaluate``: score a run's model on its own test split or on other labelled data, and write
``runs/<run-id>/evaluations/<timestamp>/`` (tables, confusion matrix, evaluation.json)."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlcli import runtime
from dlcli.evaluate.inputs import encode_targets, read_inputs, training_rows_note
from dlcli.evaluate.reload import TrainedRun, load_model, open_run, own_test_split
from dlcli.evaluate.score import (class_probabilities, classification_scores, keras_metrics_row, regression_scores,
                                  true_indices)
from dlcli.report import plot_confusion_matrix
from dlcli.runs import atomic_write_json, create_unique_dir, now_iso, write_csv


@dataclass
class Evaluation:
    """The scores of one evaluation and the files written for it."""

    run_id: str
    split: str  # "test" or the --data file's name
    samples: int
    task: str
    metrics: list[dict[str, Any]]  # one row, the columns of the run's own metrics.csv
    scores: list[dict[str, Any]]  # scikit-learn's: {"metric": .., "value": ..}
    per_class: list[dict[str, Any]] = field(default_factory=list)
    confusion: list[dict[str, Any]] = field(default_factory=list)  # {"true": name, <predicted name>: count}
    out_dir: Path | None = None
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the user should know about the input (printed on stderr)
    backend: dict[str, str] = field(default_factory=dict)  # {"backend": "jax", "version": .., "keras": ..}


def evaluate_run(run_dir: Path, data_path: Path | None = None, force: bool = False,
                 unsafe: bool = False, backend: str | None = None) -> Evaluation:
    """Score a run's model on its own test split (rebuilt exactly) or on other labelled data, and write
    ``runs/<run-id>/evaluations/<timestamp>/``.

    Args:
        run_dir: the run directory.
        data_path: a labelled .csv / .parquet / .npz file with the training columns; None for the test split.
        force: evaluate the rebuilt test split even when the data's fingerprint changed.

    Returns:
        The evaluation; on the run's own test split its metrics row equals the test row of the run's
        metrics.csv.

    Raises:
        RunError / DataError: see :func:`open_run`, :func:`own_test_split` and :func:`read_inputs`.
    """
    run = open_run(run_dir, backend)
    notes: list[str] = []
    if data_path is None:
        x, y = own_test_split(run, force)
        split = "test"
    else:
        inputs = read_inputs(data_path, run.prep, with_target=True)
        y = encode_targets(inputs.y, run.prep, str(data_path))
        x = run.prep.transform(inputs.x)
        split = Path(data_path).name
        notes = inputs.notes + training_rows_note(run.prep, x, y, data_path)
    load_model(run, unsafe=unsafe)
    row, outputs = keras_metrics_row(run, x, y, split)
    result = Evaluation(run_id=run.id, split=split, samples=len(x), task=run.prep.task, metrics=[row], scores=[],
                        notes=notes, backend=runtime.backend_versions())
    if run.prep.task == "classification":
        names = list(run.prep.class_names or [])
        sk = classification_scores(true_indices(y, run.prep.encoding), class_probabilities(outputs, run.prep.encoding),
                                   names)
        result.per_class = sk["per_class"]
        result.confusion = [{"true": name, **dict(zip(names, counts))} for name, counts in zip(names, sk["matrix"])]
    else:
        sk = regression_scores(y, outputs)
    result.scores = [{"metric": k, "value": v} for k, v in sk["scores"].items()]
    write_evaluation(run, result, sk.get("matrix"), force=force, data_path=data_path)
    return result


def new_evaluation_dir(run_dir: Path) -> Path:
    """Create ``run_dir/evaluations/<YYYYmmdd-HHMMSS>``, unique even within one second (never overwrites)."""
    root = Path(run_dir) / "evaluations"
    return create_unique_dir(root, time.strftime("%Y%m%d-%H%M%S"), "evaluation")


def write_evaluation(run: TrainedRun, result: Evaluation, matrix: list[list[int]] | None, force: bool,
                     data_path: Path | None) -> None:
    """Write the evaluation's tables (and confusion-matrix PNG) into a new evaluations/<timestamp>/ directory."""
    out = new_evaluation_dir(run.path)
    try:
        files = [out / "metrics.csv", out / "scores.csv"]
        write_csv(files[0], result.metrics)
        write_csv(files[1], result.scores)
        if matrix is not None:
            names = [row["true"] for row in result.confusion]
            files += [out / "confusion_matrix.csv", out / "classification_report.csv", out / "confusion_matrix.png"]
            write_csv(files[2], [{"true\\predicted": row["true"], **{n: row[n] for n in names}}
                                 for row in result.confusion])
            write_csv(files[3], result.per_class)
            plot_confusion_matrix(matrix, names, files[4],
                                  title=f"{run.id}: {result.split} ({result.samples} samples)")
        files.append(out / "evaluation.json")
        atomic_write_json(files[-1], {
            "run_id": run.id, "created": now_iso(), "split": result.split, "samples": result.samples,
            "data": str(Path(data_path).resolve()) if data_path is not None else run.cfg.data.source,
            "forced": force, "backend": result.backend,
            "metrics": {k: v for k, v in result.metrics[0].items() if k != "split"},
            "scores": {s["metric"]: s["value"] for s in result.scores},
            "files": [f.name for f in files],
        })
    except BaseException:  # a full disk or Ctrl-C: no half-written evaluation is left behind
        shutil.rmtree(out, ignore_errors=True)
        raise
    result.out_dir, result.files = out, files
