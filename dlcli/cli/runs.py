"""``dlcli runs list | show | compare``: read runs/ only (instant, no TensorFlow)."""

from __future__ import annotations

import textwrap
from typing import Annotated, Optional

import typer

from dlcli.cli.app import app, one_line, user_errors
from dlcli.cli.options import FormatOpt, RunArg, RunsDirOpt, finite, run_dir_of, runs_dir_or_default
from dlcli.errors import RunError

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
    from dlcli.report import format_table  # lazy: start-up speed
    from dlcli.runs import index_rows, list_runs, sort_runs

    directory = runs_dir_or_default(runs_dir)
    with user_errors():
        rows = sort_runs(list_runs(directory), sort, top, reverse)
    problem = index_rows(directory)[1]
    if problem:
        typer.echo(f"warning: {one_line(problem)}; listed from the run directories instead", err=True)
    if not rows:
        typer.echo(f"no runs in {directory}" if fmt == "table" else format_table([], fmt))
        return
    typer.echo(format_table(rows, fmt))


@runs_app.command("show")
def runs_show(
    run: RunArg,
    high_error: Annotated[Optional[float], typer.Option(  # noqa: UP045
        help="Judge the fit again with this threshold on the training error, as a fraction of the baseline's "
        "(default: the run's diagnosis.high_error).", min=0, callback=finite)] = None,
    max_gap: Annotated[Optional[float], typer.Option(  # noqa: UP045
        help="Judge the fit again with this threshold on the gap between held-out and training relative errors "
        "(default: the run's diagnosis.max_gap).", min=0, callback=finite)] = None,
    runs_dir: RunsDirOpt = None,
) -> None:
    """A run's record, config, metrics beside the trivial baseline, and fit diagnosis (underfit / overfit / good
    fit)."""
    from dlcli.report import baseline_note, format_table  # lazy: start-up speed
    from dlcli.runs import run_details

    with user_errors():
        details = run_details(run_dir_of(run, runs_dir), high_error, max_gap)
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
    from dlcli.report import format_sections  # lazy: start-up speed
    from dlcli.runs import compare_configs, compare_metrics

    with user_errors():
        if len(runs) < 2:
            raise RunError(f"compare needs at least two runs, got {len(runs)}; e.g. dlcli runs compare ID1 ID2")
        dirs = [run_dir_of(r, runs_dir) for r in runs]
        configs, metrics = compare_configs(dirs), compare_metrics(dirs)
    if not configs and fmt == "table":
        typer.echo("config: identical\n")
    typer.echo(format_sections({"config": configs, "metrics": metrics}, fmt))
