"""``--set PATH=VALUE`` overrides: parsing one, and setting a value at a dotted path of raw config data."""

from __future__ import annotations

import re
from typing import Any

from dlcli.config.base import DOTTED_PATH, short_repr
from dlcli.config.yamlfile import parse_yaml
from dlcli.errors import ConfigError


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``PATH=VALUE`` and parse VALUE as YAML."""
    if "=" not in text:
        raise ConfigError("--set", f"{short_repr(text)} is not PATH=VALUE; e.g. --set fit.epochs=5")
    path, raw = text.split("=", 1)
    path = path.strip()
    if not path or not re.fullmatch(DOTTED_PATH, path):
        raise ConfigError("--set", f"{short_repr(path)} is not a dotted path such as model.layers.0.units")
    return path, parse_yaml(raw, f"--set {path}")


def set_by_path(raw: dict[str, Any], dotted: str, value: Any, *, where: str = "--set", create: bool = True) -> None:
    """Set ``raw[a][b][0][c] = value`` for ``dotted == "a.b.0.c"``.

    Missing mapping keys are created when ``create`` is true (the schema then says whether the key
    is allowed); list indices must exist.
    """
    parts = dotted.split(".")
    node: Any = raw
    for depth, key in enumerate(parts):
        last = depth == len(parts) - 1
        here = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not key.lstrip("-").isdigit():
                raise ConfigError(f"{where} {dotted}", f"{here} is a list: use an index such as {'.'.join(parts[:depth])}.0")
            index = int(key)
            if not -len(node) <= index < len(node):
                raise ConfigError(f"{where} {dotted}", f"index {index} is out of range: the list has {len(node)} items")
            if last:
                node[index] = value
            else:
                node = node[index]
        elif isinstance(node, dict):
            if last:
                node[key] = value
            elif key in node and isinstance(node[key], (dict, list)):
                node = node[key]
            elif key in node and node[key] is not None and not isinstance(node[key], (str, bool)):
                raise ConfigError(f"{where} {dotted}", f"{here} is {short_repr(node[key])}, which has no keys")
            elif key not in node and not create:
                raise ConfigError(f"{where} {dotted}", f"{here} does not exist in the config")
            else:
                # A missing section, a name shorthand such as `optimizer: adam`, or an optional section given
                # as true / false (`tracking.mlflow: true`) becomes a mapping.
                node[key] = {"type": node[key]} if isinstance(node.get(key), str) else {}
                node = node[key]
        else:
            raise ConfigError(f"{where} {dotted}", f"{'.'.join(parts[:depth])} is {short_repr(node)}, which has no keys")
