"""Starting points and editor support: ``init``, ``schema`` and ``config show`` (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from dlcli.cli.app import app, one_line, user_errors
from dlcli.cli.echo import columns_lines
from dlcli.cli.options import ConfigArg, Overrides, load, takes_overrides
from dlcli.errors import DlcliError


@app.command()
def schema() -> None:
    """Print the JSON Schema of the config file (for editors: dlcli schema > dlcli.schema.json)."""
    from dlcli.config.jsonschema import schema_text  # lazy: start-up speed

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
        from dlcli.starter import init_config  # lazy: start-up speed

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
@takes_overrides
def config_show(
    config: ConfigArg,
    overrides: Overrides = Overrides(),
) -> None:
    """Print the fully resolved config as YAML: defaults and overrides filled in, data path absolute."""
    with user_errors():
        from dlcli.config import dump_yaml  # lazy: start-up speed

        cfg = load(config, overrides)
    typer.echo(dump_yaml(cfg.to_yaml_dict()), nl=False)
    if cfg.data.kind == "file" and Path(cfg.data.source).suffix.lower() in (".csv", ".parquet"):
        from dlcli.data import prepare_table  # lazy: start-up speed

        try:  # what each column becomes, fitted as training would (pandas, no TensorFlow)
            lines = columns_lines(prepare_table(cfg))
        except DlcliError as exc:  # the config itself is fine; the data is for `dlcli validate` to judge
            lines = [f"columns: not typed: {one_line(str(exc))}"]
        typer.echo("\n".join(f"# {line}" for line in lines))
