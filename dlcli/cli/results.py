"""Using a trained run: ``evaluate``, ``predict`` and ``plot`` (these load the model, so the backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from dlcli.cli.app import app, user_errors
from dlcli.cli.echo import echo_notes
from dlcli.cli.options import BackendOpt, ForceOpt, FormatOpt, RunArg, RunsDirOpt, UnsafeOpt, run_dir_of


@app.command()
def evaluate(
    run: RunArg,
    data: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Other labelled data (.csv, .parquet or .npz) with the training columns and the target; default: "
             "the run's own test split, rebuilt exactly.", exists=True, dir_okay=False, readable=True)] = None,
    force: ForceOpt = False,
    fmt: FormatOpt = "table",
    runs_dir: RunsDirOpt = None,
    unsafe: UnsafeOpt = False,
    backend: BackendOpt = None,
) -> None:
    """Score a trained run: its metrics, plus a confusion matrix, per-class report, F1 and ROC AUC
    (classification) or MAE, MSE, RMSE and R² (regression), saved under runs/<run-id>/evaluations/."""
    from dlcli.report import format_sections  # lazy: start-up speed

    with user_errors():
        run_dir = run_dir_of(run, runs_dir)
        from dlcli.evaluate import evaluate_run  # lazy: start-up speed

        result = evaluate_run(run_dir, data, force=force, unsafe=unsafe, backend=backend)
    echo_notes(result.notes)
    sections = {"metrics": result.metrics, "scores": result.scores, "per class": result.per_class,
                "confusion matrix": result.confusion, "backend": [result.backend]}
    typer.echo(format_sections(sections, fmt))
    # Keep stdout machine-readable for csv / json.
    typer.echo(f"{'' if fmt in ('csv', 'json') else chr(10)}saved to {result.out_dir}", err=fmt in ("csv", "json"))


@app.command()
def predict(
    run: RunArg,
    input: Annotated[Path, typer.Option(  # noqa: A002 - the option is --input
        help="Samples to predict: .csv or .parquet with the training feature columns, or .npz with an array 'x'.",
        exists=True, dir_okay=False, readable=True)],
    output: Annotated[Path, typer.Option(help="Where to write the predictions (.csv or .parquet).",
                                         dir_okay=False)],
    runs_dir: RunsDirOpt = None,
    unsafe: UnsafeOpt = False,
    backend: BackendOpt = None,
) -> None:
    """Predict with a trained run: one row per input with the predicted class (or value) and, for
    classification, a prob_<class> column per class."""
    with user_errors():
        run_dir = run_dir_of(run, runs_dir)
        from dlcli.evaluate import predict_file  # lazy: start-up speed

        result = predict_file(run_dir, input, output, unsafe=unsafe, backend=backend)
    echo_notes(result.notes)
    typer.echo(f"wrote {result.rows} predictions to {result.output} (columns: {', '.join(result.columns)})")


@app.command()
def plot(
    run: RunArg,
    output_dir: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Where to write the PNG files (default: the run directory).", file_okay=False)] = None,
    confusion: Annotated[bool, typer.Option(
        help="Also draw the confusion matrix on the test split (classification; loads the model).")] = True,
    force: ForceOpt = False,
    runs_dir: RunsDirOpt = None,
    unsafe: UnsafeOpt = False,
    backend: BackendOpt = None,
) -> None:
    """Draw a run's learning curves (loss and each metric, train vs validation, best epoch marked) and, for
    classification, its test confusion matrix, as PNG files."""
    with user_errors():
        run_dir = run_dir_of(run, runs_dir)
        if output_dir is not None:
            output_dir.mkdir(parents=True, exist_ok=True)
        from dlcli.evaluate import plot_run  # lazy: start-up speed

        files = plot_run(run_dir, output_dir, confusion=confusion, force=force, unsafe=unsafe, backend=backend)
    for path in files:
        typer.echo(f"wrote {path}")
