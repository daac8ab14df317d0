"""The ``dlcli`` command line: a thin Typer app.

This is the only module that prints errors and chooses exit codes: 2 for a user mistake
(config, data, paths), 1 for a run that failed, 130 for an interrupted run. TensorFlow is
imported only inside the commands that train or load models.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer

from dlcli import __version__
from dlcli.errors import DlcliError, RunFailed

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
RunsDirOpt = Annotated[Optional[Path], typer.Option(  # noqa: UP045
    help="Where runs are written (default: $DLCLI_RUNS_DIR or ./runs).", file_okay=False)]


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


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn dlcli's own errors into one line on stderr and an exit code; real bugs keep their traceback."""
    from dlcli.train import RunInterrupted

    try:
        yield
    except DlcliError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=exc.exit_code) from None
    except (RunFailed, RunInterrupted) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=exc.exit_code) from None


def _runs_dir(runs_dir: Path | None) -> Path:
    from dlcli.runs import default_runs_dir

    return runs_dir or default_runs_dir()


def _load(config: Path, set_: list[str] | None, name: str | None, seed: int | None, device: str | None):
    from dlcli.config import load_config

    return load_config(config, set_ or [], name=name, seed=seed, device=device)


@app.command()
def train(
    config: ConfigArg,
    set_: SetOpt = None,
    name: NameOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    runs_dir: RunsDirOpt = None,
) -> None:
    """Build the model, fit it on train/val, score it on test and save everything under runs/."""
    from dlcli.report import format_table

    with user_errors():
        cfg = _load(config, set_, name, seed, device)
        from dlcli import train as training

        exp = training.prepare_experiment(cfg)
        result = training.train(exp, _runs_dir(runs_dir), command="train", verbose=1 if sys.stdout.isatty() else 2)
    typer.echo("")
    typer.echo(format_table(result.metrics))
    typer.echo(f"\nrun {result.run_id}: {result.epochs_run} epochs in {result.seconds:.1f} s")
    typer.echo(f"saved to {result.run_dir}")


@app.command()
def validate(
    config: ConfigArg,
    set_: SetOpt = None,
    name: NameOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Check a config and its data, and print the model summary; trains nothing, writes nothing."""
    with user_errors():
        cfg = _load(config, set_, name, seed, device)
        from dlcli import train as training
        from dlcli.model import summary_text

        exp = training.prepare_experiment(cfg)
    data = exp.data
    typer.echo(summary_text(exp.model).rstrip())
    classes = f", {len(data.prep.class_names)} classes" if data.prep.class_names else ""
    typer.echo(f"data: {len(data.x_train)} train / {len(data.x_val)} val / {len(data.x_test)} test samples, "
               f"input shape {tuple(data.prep.input_shape)}{classes} ({data.prep.task})")
    typer.echo(f"{config}: OK")


if __name__ == "__main__":  # pragma: no cover
    app()
