"""``dlcli init``: check the options, survey the data, write the starter config.

:func:`init_config` validates the text with the same code as ``dlcli train`` (and, except for image
folders, prepares the data the same way) before it writes anything, through a temporary file and a rename.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from dlcli.config import NAME_RULE, control_character, parse_yaml, resolve_raw, short_repr, validate_config
from dlcli.config.jsonschema import SCHEMA_FILE
from dlcli.data import prepare
from dlcli.errors import ConfigError, did_you_mean
from dlcli.runs import atomic_write_text
from dlcli.starter.survey import TASKS, DataSummary, Task, inspect_data, relative_path
from dlcli.starter.text import starter_text


@dataclass
class InitResult:
    """What ``dlcli init`` wrote, what it found in the data, and the command that trains the result."""

    path: Path
    summary: DataSummary
    train_command: str


def init_config(task: Task, data: str, target: str | None = None, output: Path | None = None,
                force: bool = False) -> InitResult:
    """Inspect ``data`` and write a starter config for ``task``; validated before it is written.

    Args:
        task: classification, regression or image.
        data: a bundled dataset name, a .csv / .parquet / .npz file, or (image) a folder with one
            sub-folder per class.
        target: the column to predict (tables only); default: a column named target, label, class
            or y, else the last column.
        output: the config file to write; default: ``<data stem>.yaml`` in the current directory.
        force: overwrite ``output`` if it exists.

    Returns:
        Where the config was written, what was found in the data and the command that trains it.

    Raises:
        ConfigError: a wrong option (task vs data, unknown target column, existing output).
        DataError: the data is missing or cannot be used.
    """
    if task not in TASKS:
        raise ConfigError("--task", f"{task!r} is not a task.{did_you_mean(task, TASKS)} (allowed: {', '.join(TASKS)})")
    output = Path(output) if output is not None else Path(f"{_data_stem(data)}.yaml")
    bad = control_character(str(output))
    if bad is not None:  # the file's name becomes the run name and is quoted in the config's comments
        raise ConfigError("--output", f"{short_repr(str(output))} holds the control character U+{ord(bad):04X}; the "
                          f"file's name becomes the run name, and {NAME_RULE}")
    if output.exists() and not force:
        raise ConfigError("--output", f"{output} already exists; use --force to overwrite it or --output to write "
                          f"another file")
    if output.is_dir():
        raise ConfigError("--output", f"{output} is a directory; give a file name such as {output / 'config.yaml'}")
    if not output.resolve().parent.is_dir():
        raise ConfigError("--output", f"the directory {output.resolve().parent} does not exist")
    summary = inspect_data(task, data, target, output.resolve().parent)
    config_arg = shlex.quote(str(output))
    text = starter_text(summary, name=output.stem, command=_init_command(task, data, target, output),
                        config_arg=config_arg, modeline=_modeline(output))
    _check(text, output, summary)
    atomic_write_text(output, text)  # absent, old or complete, never half written
    return InitResult(path=output, summary=summary, train_command=f"dlcli train {config_arg}")


def _data_stem(data: str) -> str:
    return Path(data.rstrip("/\\")).stem or "config"


def _init_command(task: str, data: str, target: str | None, output: Path) -> str:
    parts = ["dlcli", "init", "--task", task, "--data", data]
    parts += ["--target", target] if target is not None else []
    parts += ["--output", str(output)]
    return " ".join(shlex.quote(p) for p in parts)


def _modeline(output: Path) -> str | None:
    """The yaml-language-server line pointing at the nearest dlcli.schema.json above ``output``, if any."""
    directory = output.resolve().parent
    for folder in (directory, *directory.parents):
        if (folder / SCHEMA_FILE).is_file():
            return f"# yaml-language-server: $schema={relative_path(folder / SCHEMA_FILE, directory)}"
    return None


def _check(text: str, output: Path, summary: DataSummary) -> None:
    """Validate the starter as ``dlcli train`` would, so that it trains as written."""
    cfg = validate_config(resolve_raw(parse_yaml(text, str(output)), output))
    if summary.task != "image":  # reading every image again is not worth it; the survey checked the folder
        prepare(cfg)
