"""The ``dlcli`` Typer app, its ``--version`` / ``--verbose`` callback, and the one place errors are printed.

``user_errors`` is the only handler of dlcli's own exceptions: one ``error:`` line on stderr and the exit code the
exception carries (2 for a user mistake, 1 for a failed run, 130 for an interrupted one). Real bugs keep their
traceback.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from typing import Annotated

import typer

from dlcli import __version__
from dlcli.errors import MAX_MESSAGE, DlcliError, RunFailed, RunInterrupted, shorten

app = typer.Typer(
    name="dlcli",
    help="Turn a YAML file into a Keras experiment: train, tune, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


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


def one_line(text: str) -> str:
    """User values quoted in a message may hold line breaks and other control characters (shown escaped, as
    ``\\n``); the message stays one line, and at most ``MAX_MESSAGE`` characters (its head and its tail, where
    the fix usually is), whatever raised it."""
    escaped = re.sub(r"[\x00-\x1f\x7f\u2028\u2029]", lambda m: repr(m.group())[1:-1], text)
    return shorten(escaped, MAX_MESSAGE)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn dlcli's own errors into one line on stderr and an exit code; real bugs keep their traceback."""
    try:
        yield
    except DlcliError as exc:
        typer.echo(f"error: {one_line(str(exc))}", err=True)
        raise typer.Exit(code=exc.exit_code) from None
    except (RunFailed, RunInterrupted) as exc:
        typer.echo(f"error: {one_line(str(exc))}", err=True)
        raise typer.Exit(code=exc.exit_code) from None
    except KeyboardInterrupt:  # Ctrl-C before a run exists (reading data, building the model): nothing written
        typer.echo("error: interrupted before the run started; nothing was written", err=True)
        raise typer.Exit(code=RunInterrupted.exit_code) from None
