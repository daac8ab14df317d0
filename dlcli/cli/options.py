"""The options several commands share, and how their values are resolved (runs directory, config, run)."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

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



@dataclass(frozen=True)
class Overrides:
    """What ``--set``, ``--name``, ``--seed``, ``--device`` and ``--backend`` change in a config."""

    set_: list[str] = field(default_factory=list)
    name: str | None = None
    seed: int | None = None
    device: str | None = None
    backend: str | None = None

    def given(self) -> bool:
        """Whether any of them was given on the command line."""
        return bool(self.set_ or self.name or self.seed is not None or self.device or self.backend)


OVERRIDE_OPTIONS = {"set_": SetOpt, "name": NameOpt, "seed": SeedOpt, "device": DeviceOpt, "backend": BackendOpt}


def takes_overrides(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command the options every config-reading command shares, declared once (``OVERRIDE_OPTIONS``).

    They take the place of the command's ``overrides`` parameter, in that position (so ``--help`` lists them there),
    and the command receives them as one :class:`Overrides`. Typer reads the options from the signature.
    """
    signature = inspect.signature(command, eval_str=True)
    params: list[inspect.Parameter] = []
    for param in signature.parameters.values():
        if param.name == "overrides":
            params += [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=kind)
                       for name, kind in OVERRIDE_OPTIONS.items()]
        else:
            params.append(param)

    @functools.wraps(command)
    def with_overrides(**options: Any) -> Any:
        given = {name: options.pop(name) for name in OVERRIDE_OPTIONS}
        return command(overrides=Overrides(**{**given, "set_": list(given["set_"] or [])}), **options)

    with_overrides.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    with_overrides.__annotations__ = {p.name: p.annotation for p in params}
    return with_overrides


RunArg = Annotated[str, typer.Argument(help="A run directory (runs/<run-id>) or a run id under --runs-dir.")]
FormatOpt = Annotated[Literal["table", "csv", "json", "markdown"], typer.Option(
    "--format", "-f", help="How tables are printed: table, csv, json or markdown.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Rebuild the test split even if the data's fingerprint "
                                        "changed since training.")]
UnsafeOpt = Annotated[bool, typer.Option(
    "--unsafe", help="Load a model file even if it holds arbitrary Python code (a Lambda layer). Only for files "
    "you trust.")]


def finite(value: float | None) -> float | None:
    """Typer's ``min=`` lets NaN through: a threshold must be a finite number."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


# The helpers below import their stage inside the function (lazy: start-up speed; pydantic and the run files are
# not needed by `dlcli --help`).


def runs_dir_or_default(runs_dir: Path | None) -> Path:
    """``--runs-dir`` if given, else ``$DLCLI_RUNS_DIR`` or ``./runs``."""
    from dlcli.runs import default_runs_dir  # lazy: start-up speed

    return runs_dir or default_runs_dir()


def load(config: Path, overrides: Overrides, *more_set: str):
    """The config file with ``--set`` (then ``more_set``) and the other overrides applied, checked (raises
    ConfigError)."""
    from dlcli.config import load_config  # lazy: start-up speed

    return load_config(config, [*overrides.set_, *more_set], name=overrides.name, seed=overrides.seed,
                       device=overrides.device, backend=overrides.backend)


def run_dir_of(run: str, runs_dir: Path | None) -> Path:
    """A run given as a directory or as a run id under ``--runs-dir`` (raises RunError if there is none)."""
    from dlcli.runs import find_run_dir  # lazy: start-up speed

    return find_run_dir(run, runs_dir_or_default(runs_dir))
