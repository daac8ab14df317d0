"""The ``dlcli`` command line: a thin Typer app.

This is the only module that prints errors and chooses exit codes: 2 for a user mistake
(config, data, paths), 1 for a run that failed, 130 for an interrupted run. TensorFlow is
imported only inside the commands that train or load models.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

from dlcli import __version__
from dlcli.errors import DlcliError, RunFailed, RunInterrupted

app = typer.Typer(
    name="dlcli",
    help="Turn a YAML file into a Keras experiment: train, tune, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ConfigArg = Annotated[Path, typer.Argument(help="The experiment's YAML config file.", exists=True, dir_okay=False,
                                           readable=True)]
SetOpt = Annotated[Optional[list[str]], typer.Option(  # noqa: UP045 - Typer needs Optional here
    "--set", help="Override a value by dotted path, e.g. --set fit.epochs=5 (repeatable; VALUE is YAML).",
    metavar="PATH=VALUE")]
NameOpt = Annotated[Optional[str], typer.Option(help="Run name (overrides `name`).")]  # noqa: UP045
SeedOpt = Annotated[Optional[int], typer.Option(help="Random seed (overrides `seed`).")]  # noqa: UP045
DeviceOpt = Annotated[Optional[str], typer.Option(help="auto, cpu or gpu (overrides `device`).")]  # noqa: UP045
BackendOpt = Annotated[Optional[str], typer.Option(  # noqa: UP045
    help="Keras backend: tensorflow, jax or torch (overrides `backend`; default: $KERAS_BACKEND, else tensorflow).")]
RunsDirOpt = Annotated[Optional[Path], typer.Option(  # noqa: UP045
    help="Where runs are written (default: $DLCLI_RUNS_DIR or ./runs).", file_okay=False)]
MlflowOpt = Annotated[bool, typer.Option(
    "--mlflow", help="Also log the run to MLflow (turns on tracking.mlflow; default store: ./mlruns/mlflow.db). "
    "Needs: pip install 'dlcli\\[mlflow]'.")]
MLFLOW_ON = "tracking.mlflow.enabled=true"  # what --mlflow sets


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dlcli {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show TensorFlow's own log output.")] = False,
) -> None:
    """dlcli: build, train, tune and evaluate Keras models from YAML."""
    if verbose:
        os.environ["DLCLI_VERBOSE"] = "1"


def _one_line(text: str) -> str:
    """User values quoted in a message may hold line breaks and other control characters (shown escaped, as
    ``\\n``); the message stays one line, and at most ``MAX_MESSAGE`` characters (its head and its tail, where
    the fix usually is), whatever raised it."""
    import re

    from dlcli.errors import MAX_MESSAGE, shorten

    escaped = re.sub(r"[\x00-\x1f\x7f\u2028\u2029]", lambda m: repr(m.group())[1:-1], text)
    return shorten(escaped, MAX_MESSAGE)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn dlcli's own errors into one line on stderr and an exit code; real bugs keep their traceback."""
    try:
        yield
    except DlcliError as exc:
        typer.echo(f"error: {_one_line(str(exc))}", err=True)
        raise typer.Exit(code=exc.exit_code) from None
    except (RunFailed, RunInterrupted) as exc:
        typer.echo(f"error: {_one_line(str(exc))}", err=True)
        raise typer.Exit(code=exc.exit_code) from None
    except KeyboardInterrupt:  # Ctrl-C before a run exists (reading data, building the model): nothing written
        typer.echo("error: interrupted before the run started; nothing was written", err=True)
        raise typer.Exit(code=RunInterrupted.exit_code) from None


def _finite(value: float | None) -> float | None:
    """Typer's ``min=`` lets NaN through: a threshold must be a finite number."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def _runs_dir(runs_dir: Path | None) -> Path:
    from dlcli.runs import default_runs_dir

    return runs_dir or default_runs_dir()


def _load(config: Path, set_: list[str] | None, name: str | None, seed: int | None, device: str | None,
          backend: str | None = None):
    from dlcli.config import load_config

    return load_config(config, set_ or [], name=name, seed=seed, device=device, backend=backend)


@app.command()
def train(
    config: Annotated[Optional[Path], typer.Argument(  # noqa: UP045
        help="The experiment's YAML config file (not needed with --resume).", exists=True, dir_okay=False,
        readable=True)] = None,
    set_: SetOpt = None,
    name: NameOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    backend: BackendOpt = None,
    runs_dir: RunsDirOpt = None,
    resume: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Continue an interrupted or crashed run from its last finished epoch, in its own directory.",
        metavar="RUN_DIR")] = None,
    mlflow: MlflowOpt = False,
) -> None:
    """Build the model, fit it on train/val, score it on test and save everything under runs/."""
    from dlcli.report import baseline_note, format_table

    with user_errors():
        from dlcli.errors import DlcliError

        if resume is not None and (config or set_ or name or seed is not None or device or backend or mlflow):
            raise DlcliError("--resume continues a run with its own saved config: give only --resume RUN_DIR")
        if resume is None and config is None:
            raise DlcliError("give a config file (dlcli train CONFIG) or --resume RUN_DIR")
        from dlcli import train as training

        if resume is not None:
            exp = training.resume_experiment(resume)
        else:
            from dlcli.integrations import tracking

            cfg = _load(config, [*(set_ or []), *([MLFLOW_ON] if mlflow else [])], name, seed, device, backend)
            tracking.check_mlflow_installed(cfg)  # before TensorFlow and the data load
            exp = training.prepare_experiment(cfg)
        _echo_notes(exp.data.notes)
        result = training.train(exp, _runs_dir(runs_dir), command="train", verbose=1 if sys.stdout.isatty() else 2,
                                resume=resume)
    typer.echo("")
    typer.echo(format_table(result.metrics))
    if result.baseline is not None:
        typer.echo(baseline_note(result.baseline.split, result.baseline.predicts))
    if result.diagnosis is not None:
        typer.echo(f"\n{result.diagnosis.text()}")
    typer.echo(f"\nrun {result.run_id}: {result.epochs_run} epochs in {result.seconds:.1f} s")
    typer.echo(f"saved to {result.run_dir}")
    _echo_tracking(result.run_dir)


def _echo_tracking(run_dir: Path) -> None:
    from dlcli.integrations.tracking import tracking_lines

    for line in tracking_lines(run_dir):
        typer.echo(line)


@app.command()
def validate(
    config: ConfigArg,
    set_: SetOpt = None,
    name: NameOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    backend: BackendOpt = None,
) -> None:
    """Check a config and its data, and print the model summary; trains nothing, writes nothing."""
    with user_errors():
        cfg = _load(config, set_, name, seed, device, backend)
        from dlcli import train as training
        from dlcli.model import summary_text

        exp = training.prepare_experiment(cfg)
    data = exp.data
    _echo_notes(data.notes)
    typer.echo(summary_text(exp.model).rstrip())
    if data.columns is not None:
        typer.echo("\n".join(columns_lines(data)))
    classes = f", {len(data.prep.class_names)} classes" if data.prep.class_names else ""
    typer.echo(f"data: {len(data.x_train)} train / {len(data.x_val)} val / {len(data.x_test)} test samples, "
               f"input shape {tuple(data.prep.input_shape)}{classes} ({data.prep.task})")
    typer.echo(f"{config}: OK")


@app.command()
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
    set_: SetOpt = None,
    name: NameOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    backend: BackendOpt = None,
    runs_dir: RunsDirOpt = None,
    mlflow: MlflowOpt = False,
) -> None:
    """Search the values listed under `tune:`; each trial is a training run. Writes trials.csv, best_config.yaml
    and the best model (scored on test) to a run directory."""
    from dlcli.report import baseline_note, format_table

    with user_errors():
        from dlcli import tune as tuning

        overrides = list(set_ or [])
        overrides += [f"tune.strategy={strategy}"] if strategy is not None else []
        overrides += [f"tune.max_trials={max_trials}"] if max_trials is not None else []
        overrides += [MLFLOW_ON] if mlflow else []
        search = tuning.load_search(config, overrides, name=name, seed=seed, device=device, backend=backend)
        if join is not None:
            tuning.join(search, join, threads)
            return
        from dlcli.integrations import tracking

        tracker = tracking.open_tracker(search.cfg)  # a missing MLflow or a bad store stops here, before the search
        result = tuning.tune(search, _runs_dir(runs_dir), resume=resume, workers=workers, threads=threads,
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
    _echo_tracking(result.run_dir)


# ---------------------------------------------------------------------------------------------
# Using trained runs: evaluate, predict, plot, and `runs` (list / show / compare, no TensorFlow)

RunArg = Annotated[str, typer.Argument(help="A run directory (runs/<run-id>) or a run id under --runs-dir.")]
FormatOpt = Annotated[Literal["table", "csv", "json", "markdown"], typer.Option(
    "--format", "-f", help="How tables are printed: table, csv, json or markdown.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Rebuild the test split even if the data's fingerprint "
                                        "changed since training.")]
UnsafeOpt = Annotated[bool, typer.Option(
    "--unsafe", help="Load a model file even if it holds arbitrary Python code (a Lambda layer). Only for files "
    "you trust.")]


def _run_dir(run: str, runs_dir: Path | None) -> Path:
    from dlcli.runs import find_run_dir

    return find_run_dir(run, _runs_dir(runs_dir))


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


def _echo_notes(notes: list[str]) -> None:
    """Notes about the input on stderr, one line each ("warning: ..." lines keep their prefix)."""
    for note in notes:
        typer.echo(note if note.startswith("warning:") else f"note: {note}", err=True)


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
    from dlcli.report import format_sections

    with user_errors():
        run_dir = _run_dir(run, runs_dir)
        from dlcli.evaluate import evaluate_run

        result = evaluate_run(run_dir, data, force=force, unsafe=unsafe, backend=backend)
    _echo_notes(result.notes)
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
        run_dir = _run_dir(run, runs_dir)
        from dlcli.evaluate import predict_file

        result = predict_file(run_dir, input, output, unsafe=unsafe, backend=backend)
    _echo_notes(result.notes)
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
        run_dir = _run_dir(run, runs_dir)
        if output_dir is not None:
            output_dir.mkdir(parents=True, exist_ok=True)
        from dlcli.evaluate import plot_run

        files = plot_run(run_dir, output_dir, confusion=confusion, force=force, unsafe=unsafe, backend=backend)
    for path in files:
        typer.echo(f"wrote {path}")


runs_app = typer.Typer(help="List, show and compare runs (reads runs/ only; instant, no TensorFlow).",
                       no_args_is_help=True)
app.add_typer(runs_app, name="runs")


@runs_app.command("list")
def runs_list(
    sort: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Sort by this column, best first for metrics (lowest first for losses and errors).")] = None,
    top: Annotated[Optional[int], typer.Option(help="Show only the first N runs.", min=1)] = None,  # noqa: UP045
    reverse: Annotated[bool, typer.Option("--reverse", help="Reverse the sort order.")] = False,
    fmt: FormatOpt = "table",
    runs_dir: RunsDirOpt = None,
) -> None:
    """Every run as a table: id, name, command, status, epochs and its test metrics."""
    from dlcli.report import format_table
    from dlcli.runs import index_rows, list_runs, sort_runs

    directory = _runs_dir(runs_dir)
    with user_errors():
        rows = sort_runs(list_runs(directory), sort, top, reverse)
    problem = index_rows(directory)[1]
    if problem:
        typer.echo(f"warning: {_one_line(problem)}; listed from the run directories instead", err=True)
    if not rows:
        typer.echo(f"no runs in {directory}" if fmt == "table" else format_table([], fmt))
        return
    typer.echo(format_table(rows, fmt))


@runs_app.command("show")
def runs_show(
    run: RunArg,
    high_error: Annotated[Optional[float], typer.Option(  # noqa: UP045
        help="Judge the fit again with this threshold on the training error, as a fraction of the baseline's "
        "(default: the run's diagnosis.high_error).", min=0, callback=_finite)] = None,
    max_gap: Annotated[Optional[float], typer.Option(  # noqa: UP045
        help="Judge the fit again with this threshold on the gap between held-out and training relative errors "
        "(default: the run's diagnosis.max_gap).", min=0, callback=_finite)] = None,
    runs_dir: RunsDirOpt = None,
) -> None:
    """A run's record, config, metrics beside the trivial baseline, and fit diagnosis (underfit / overfit / good
    fit)."""
    from dlcli.report import baseline_note, format_table
    from dlcli.runs import run_details

    with user_errors():
        details = run_details(_run_dir(run, runs_dir), high_error, max_gap)
    typer.echo("\n".join(f"{key}: {value}" for key, value in details["record"].items()))
    typer.echo("\nconfig:\n" + textwrap.indent(details["config"].rstrip(), "  "))
    if details["metrics"]:
        typer.echo("\nmetrics:\n" + format_table(details["metrics"]))
        if details["baseline"] is not None:
            typer.echo(baseline_note(*details["baseline"]))
    typer.echo("\n" + details["diagnosis"])
    if details["evaluations"]:
        typer.echo("\nevaluations:\n" + format_table(details["evaluations"]))


@runs_app.command("compare")
def runs_compare(
    runs: Annotated[list[str], typer.Argument(help="Two or more run directories or run ids.")],
    fmt: FormatOpt = "table",
    runs_dir: RunsDirOpt = None,
) -> None:
    """The config values that differ between runs (dotted paths), then their metrics side by side."""
    from dlcli.report import format_sections
    from dlcli.runs import compare_configs, compare_metrics

    with user_errors():
        if len(runs) < 2:
            from dlcli.errors import RunError

            raise RunError(f"compare needs at least two runs, got {len(runs)}; e.g. dlcli runs compare ID1 ID2")
        dirs = [_run_dir(r, runs_dir) for r in runs]
        configs, metrics = compare_configs(dirs), compare_metrics(dirs)
    if not configs and fmt == "table":
        typer.echo("config: identical\n")
    typer.echo(format_sections({"config": configs, "metrics": metrics}, fmt))


# ---------------------------------------------------------------------------------------------
# Editor support and starting points: schema, init, config show (no TensorFlow)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the config file (for editors: dlcli schema > dlcli.schema.json)."""
    from dlcli.config.jsonschema import schema_text

    typer.echo(schema_text(), nl=False)


@app.command()
def init(
    task: Annotated[Literal["classification", "regression", "image"], typer.Option(
        help="classification, regression, or image (a folder with one sub-folder of images per class).")],
    data: Annotated[str, typer.Option(
        help="A .csv, .parquet or .npz file, an image folder, or a bundled dataset: digits, iris, wine, "
        "breast_cancer, diabetes.")],
    target: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="The column to predict (.csv / .parquet); default: a column named target, label, class or y, else "
        "the last one.")] = None,
    output: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--output", "-o", help="The config file to write; default: <data name>.yaml here.", dir_okay=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the output file if it exists.")] = False,
) -> None:
    """Look at the data and write a commented starter config that trains as written."""
    with user_errors():
        from dlcli.starter import init_config

        result = init_config(task, data, target, output, force)
    for note in result.summary.notes:
        typer.echo(f"note: {note}")
    summary = result.summary
    what = (f"{len(summary.classes)} classes" if summary.classes else "a numeric target")
    typer.echo(f"wrote {result.path} ({task}: {summary.samples} samples, {what})")
    typer.echo(f"train it: {result.train_command}")


config_app = typer.Typer(help="Show a config with every default filled in (no TensorFlow).", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(
    config: ConfigArg,
    set_: SetOpt = None,
    name: NameOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    backend: BackendOpt = None,
) -> None:
    """Print the fully resolved config as YAML: defaults and overrides filled in, data path absolute."""
    with user_errors():
        from dlcli.config import dump_yaml

        cfg = _load(config, set_, name, seed, device, backend)
    typer.echo(dump_yaml(cfg.to_yaml_dict()), nl=False)
    if cfg.data.kind == "file" and Path(cfg.data.source).suffix.lower() in (".csv", ".parquet"):
        from dlcli.data import prepare_table
        from dlcli.errors import DlcliError

        try:  # what each column becomes, fitted as training would (pandas, no TensorFlow)
            lines = columns_lines(prepare_table(cfg))
        except DlcliError as exc:  # the config itself is fine; the data is for `dlcli validate` to judge
            lines = [f"columns: not typed: {_one_line(str(exc))}"]
        typer.echo("\n".join(f"# {line}" for line in lines))

