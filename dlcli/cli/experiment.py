"""The experiment commands: ``train``, ``validate`` and ``tune``.

The stages are imported inside each command (lazy: start-up speed): they bring TensorFlow or another backend, which
``dlcli --help`` must not pay for.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from dlcli.cli.app import app, user_errors
from dlcli.cli.echo import columns_lines, echo_notes, echo_tracking
from dlcli.cli.options import (MLFLOW_ON, ConfigArg, MlflowOpt, Overrides, RunsDirOpt, load, runs_dir_or_default,
                               takes_overrides)
from dlcli.errors import DlcliError


@app.command()
@takes_overrides
def train(
    config: Annotated[Optional[Path], typer.Argument(  # noqa: UP045
        help="The experiment's YAML config file (not needed with --resume).", exists=True, dir_okay=False,
        readable=True)] = None,
    overrides: Overrides = Overrides(),
    runs_dir: RunsDirOpt = None,
    resume: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Continue an interrupted or crashed run from its last finished epoch, in its own directory.",
        metavar="RUN_DIR")] = None,
    mlflow: MlflowOpt = False,
) -> None:
    """Build the model, fit it on train/val, score it on test and save everything under runs/."""
    from dlcli.report import baseline_note, format_table  # lazy: start-up speed

    with user_errors():
        if resume is not None and (config or overrides.given() or mlflow):
            raise DlcliError("--resume continues a run with its own saved config: give only --resume RUN_DIR")
        if resume is None and config is None:
            raise DlcliError("give a config file (dlcli train CONFIG) or --resume RUN_DIR")
        from dlcli import train as training  # lazy: start-up speed

        if resume is not None:
            exp = training.resume_experiment(resume)
        else:
            from dlcli.integrations import tracking  # lazy: start-up speed

            cfg = load(config, overrides, *([MLFLOW_ON] if mlflow else []))
            tracking.check_mlflow_installed(cfg)  # before TensorFlow and the data load
            exp = training.prepare_experiment(cfg)
        echo_notes(exp.data.notes)
        result = training.train(exp, runs_dir_or_default(runs_dir), command="train",
                                verbose=1 if sys.stdout.isatty() else 2, resume=resume)
    typer.echo("")
    typer.echo(format_table(result.metrics))
    if result.baseline is not None:
        typer.echo(baseline_note(result.baseline.split, result.baseline.predicts))
    if result.diagnosis is not None:
        typer.echo(f"\n{result.diagnosis.text()}")
    typer.echo(f"\nrun {result.run_id}: {result.epochs_run} epochs in {result.seconds:.1f} s")
    typer.echo(f"saved to {result.run_dir}")
    echo_tracking(result.run_dir)


@app.command()
@takes_overrides
def validate(
    config: ConfigArg,
    overrides: Overrides = Overrides(),
) -> None:
    """Check a config and its data, and print the model summary; trains nothing, writes nothing."""
    with user_errors():
        cfg = load(config, overrides)
        from dlcli import train as training  # lazy: start-up speed
        from dlcli.model import summary_text

        exp = training.prepare_experiment(cfg)
    data = exp.data
    echo_notes(data.notes)
    typer.echo(summary_text(exp.model).rstrip())
    if data.columns is not None:
        typer.echo("\n".join(columns_lines(data)))
    classes = f", {len(data.prep.class_names)} classes" if data.prep.class_names else ""
    typer.echo(f"data: {len(data.x_train)} train / {len(data.x_val)} val / {len(data.x_test)} test samples, "
               f"input shape {tuple(data.prep.input_shape)}{classes} ({data.prep.task})")
    typer.echo(f"{config}: OK")


@app.command()
@takes_overrides
def tune(
    config: ConfigArg,
    strategy: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="grid, random, bayesian or hyperband (overrides tune.strategy).")] = None,
    max_trials: Annotated[Optional[int], typer.Option(  # noqa: UP045
        min=1, help="Number of trials (overrides tune.max_trials; with --resume it may grow).")] = None,
    resume: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Continue the search in this tune run directory; finished trials are not rerun.", metavar="RUN_DIR",
        exists=True, file_okay=False)] = None,
    workers: Annotated[int, typer.Option(
        help="Run trials in parallel in this many worker processes (keras-tuner's distributed mode over gRPC "
        "on localhost); 1 runs them in this process.")] = 1,
    threads: Annotated[Optional[int], typer.Option(  # noqa: UP045
        min=1, help="CPU threads TensorFlow may use per process (default: all; with --workers N each worker "
        "gets its share of the cores).")] = None,
    join: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Run trials as a worker of the search in this run directory, taking them from the chief at "
        "KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT (see README, 'Hyperparameter search').", metavar="RUN_DIR",
        exists=True, file_okay=False)] = None,
    overrides: Overrides = Overrides(),
    runs_dir: RunsDirOpt = None,
    mlflow: MlflowOpt = False,
) -> None:
    """Search the values listed under `tune:`; each trial is a training run. Writes trials.csv, best_config.yaml
    and the best model (scored on test) to a run directory."""
    from dlcli.report import baseline_note, format_table  # lazy: start-up speed

    with user_errors():
        from dlcli import tune as tuning  # lazy: start-up speed

        more_set = list(overrides.set_)
        more_set += [f"tune.strategy={strategy}"] if strategy is not None else []
        more_set += [f"tune.max_trials={max_trials}"] if max_trials is not None else []
        more_set += [MLFLOW_ON] if mlflow else []
        search = tuning.load_search(config, more_set, name=overrides.name, seed=overrides.seed,
                                    device=overrides.device, backend=overrides.backend)
        if join is not None:
            tuning.join(search, join, threads)
            return
        from dlcli.integrations import tracking  # lazy: start-up speed

        tracker = tracking.open_tracker(search.cfg)  # a missing MLflow or a bad store stops here, before the search
        result = tuning.tune(search, runs_dir_or_default(runs_dir), resume=resume, workers=workers, threads=threads,
                             progress=lambda event: typer.echo(event.line()))
        tracker.log_search(search.cfg, result)
    columns = ["trial_id", "status", *search.tune.space, f"best_{result.objective}", "epochs_run", "seconds"]
    shown = [{c: tuning.format_value(row.get(c)) if c in search.tune.space else row.get(c) for c in columns}
             for row in result.trials[:5]]
    typer.echo(f"\ntop trials (of {len(result.trials)}; all in trials.csv):")
    typer.echo(format_table(shown))
    typer.echo("\nthe best model:")
    typer.echo(format_table(result.metrics))
    if result.baseline is not None:
        typer.echo(baseline_note(result.baseline.split, result.baseline.predicts))
    typer.echo(f"\nsearch {result.run_id}: {len(result.trials)} trials in {result.seconds:.1f} s; saved to "
               f"{result.run_dir}")
    typer.echo(f"retrain the best: dlcli train {result.run_dir / 'best_config.yaml'}")
    echo_tracking(result.run_dir)
