"""Loading a config: YAML file + ``--set`` overrides + command-line fields -> a validated
:class:`ExperimentConfig`, with the defaults that depend on the file (run name, data path) and the environment
(``$KERAS_BACKEND``) filled in."""

from __future__ import annotations

import copy
import os
import typing
from pathlib import Path
from typing import Any

from dlcli.config.base import BACKENDS, BUNDLED_DATASETS, KERAS_DATASETS, short_repr
from dlcli.config.experiment import ExperimentConfig
from dlcli.config.overrides import parse_override, set_by_path
from dlcli.config.validation import validate_config
from dlcli.config.yamlfile import read_yaml
from dlcli.errors import ConfigError


def _looks_like_path(source: str) -> bool:
    return source not in BUNDLED_DATASETS + KERAS_DATASETS


def resolve_raw(raw: Any, config_path: Path | None, overrides: typing.Iterable[str] = (), **fields: Any) -> dict:
    """Apply overrides and defaults that depend on the file (name, data path) to raw YAML data."""
    if raw is None:
        raise ConfigError("", f"{config_path}: the file is empty; it needs at least data, model and compile")
    if not isinstance(raw, dict):
        raise ConfigError("", f"{config_path}: the top level must be a mapping of keys (data, model, ...), "
                          f"got {type(raw).__name__}")
    raw = copy.deepcopy(raw)
    for text in overrides:
        path, value = parse_override(text)
        set_by_path(raw, path, value)
    for key, value in fields.items():
        if value is not None:
            raw[key] = value
    if raw.get("name") is None and config_path is not None:
        raw["name"] = config_path.stem
    if raw.get("backend") is None:
        backend = os.environ.get("KERAS_BACKEND") or ExperimentConfig.model_fields["backend"].default
        if backend not in BACKENDS:
            raise ConfigError("KERAS_BACKEND", f"{backend!r} is not a backend dlcli runs on (allowed: "
                              f"{', '.join(BACKENDS)}); set backend: in the config or --backend")
        raw["backend"] = backend
    data = raw.get("data")
    if isinstance(data, dict) and isinstance(data.get("source"), str) and _looks_like_path(data["source"]):
        if "\x00" in data["source"] or not data["source"].strip():
            raise ConfigError("data.source", f"{short_repr(data['source'])} is not a usable path or dataset name")
        source = Path(data["source"]).expanduser()
        if not source.is_absolute() and config_path is not None:
            source = config_path.resolve().parent / source
        try:
            data["source"] = str(source.resolve())
        except (OSError, RuntimeError):  # a symlink loop: the data loader's check names it
            data["source"] = os.path.abspath(source)
    return raw


def load_config(path: str | Path, overrides: typing.Iterable[str] = (), **fields: Any) -> ExperimentConfig:
    """Read a YAML config, apply ``--set`` overrides and field overrides, and validate it.

    Args:
        path: the YAML file.
        overrides: ``PATH=VALUE`` strings; VALUE is parsed as YAML.
        **fields: top-level values that win over the file when not None (``name``, ``seed``, ``device``).

    Returns:
        The validated config. A relative ``data.source`` path is made absolute (relative to the file).

    Raises:
        ConfigError: naming the YAML path, the value given and what is allowed.
    """
    path = Path(path)
    raw = resolve_raw(read_yaml(path), path, overrides, **fields)
    return validate_config(raw)
