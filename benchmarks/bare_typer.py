"""A bare ten-command Typer app: the floor for a Typer CLI's start-up in this environment (section 1).

    python benchmarks/bare_typer.py --help
"""

from typing import Annotated

import typer

app = typer.Typer(help="A bare Typer app with ten commands and no work behind them.")


def _command(name: str) -> None:
    def command(config: Annotated[str, typer.Argument(help="A file.")] = "",
                verbose: Annotated[bool, typer.Option(help="More output.")] = False) -> None:
        typer.echo(f"{name} {config} {verbose}")

    command.__doc__ = f"The {name} command."
    app.command(name)(command)


for _name in ("train", "validate", "tune", "evaluate", "predict", "plot", "runs", "schema", "init", "config"):
    _command(_name)

if __name__ == "__main__":
    app()
