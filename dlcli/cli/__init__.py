"""The ``dlcli`` command line: a thin Typer app, one file per group of commands.

- ``app.py``: the app, ``--version`` / ``--verbose``, and ``user_errors``, the one place errors become a line on
  stderr and an exit code (2 user mistake, 1 failed run, 130 interrupted);
- ``options.py``: the options commands share; ``echo.py``: what several commands print the same way;
- ``experiment.py``: train, validate, tune; ``results.py``: evaluate, predict, plot; ``runs.py``: runs list / show /
  compare; ``setup.py``: schema, init, config show.

May import every other package; nothing imports it. Commands import their stage inside the function (lazy: start-up
speed), so ``dlcli --help`` never imports TensorFlow.
"""

import gc

from dlcli.cli.app import app

# Importing the command modules registers their commands on ``app``, in this order (the order of ``--help``).
from dlcli.cli import experiment, results, runs, setup  # noqa: E402, F401  isort: skip

__all__ = ["app", "main"]


def main() -> None:
    """The ``dlcli`` command (and ``python -m dlcli.cli``): the app, then a quick exit.

    When the command is done (every file written and closed, its exit code set), the objects still alive are
    frozen (``gc.freeze``), so the interpreter's last garbage collection at exit skips them. With TensorFlow
    loaded that collection walks its half a million objects for nothing: 1.1-1.5 s after a ``train`` here,
    spent after the work is over but before the shell prompt returns. Nothing else about the exit changes:
    ``atexit`` handlers (MLflow's, logging's) still run and the exit code is the command's. (``gc`` is called
    here, not through ``dlcli.runtime.collector``: importing ``dlcli.runtime`` imports NumPy, which ``--help``
    must not.)
    """
    try:
        app()
    finally:
        gc.freeze()
