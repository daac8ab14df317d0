"""The JSON Schema of the experiment config, for editors and other tools.

It is generated from the pydantic models in ``dlcli.config`` (the same ones that validate a config),
so it never disagrees with ``dlcli train``: each field's description, default, allowed values and
examples come from there. ``dlcli schema`` prints it; the copy shipped as ``dlcli.schema.json`` at
the repository root is what ``configs/*.yaml`` point editors at, through their first line::

    # yaml-language-server: $schema=../dlcli.schema.json

The schema is looser than dlcli in one way only: names of Keras classes (layers, optimizers,
losses, ...) are checked against Keras at train time, so the schema gives examples, not a list.
This module does not import TensorFlow.
"""

from __future__ import annotations

import json
from typing import Any

from dlcli.config.experiment import ExperimentConfig

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_FILE = "dlcli.schema.json"
# The first line of a config that tells the YAML language server (VS Code, Neovim, JetBrains...) which schema
# to use; the path is relative to the config file (configs/ -> the repository root).
MODELINE = f"# yaml-language-server: $schema=../{SCHEMA_FILE}"

# Pydantic leaves a constraint on a union (``int | float`` with ``gt=0``) under its own name; JSON Schema
# spells them differently and only applies them next to a "type".
_CONSTRAINTS = {"gt": "exclusiveMinimum", "ge": "minimum", "lt": "exclusiveMaximum", "le": "maximum"}


def config_schema() -> dict[str, Any]:
    """The JSON Schema (Draft 2020-12) of a dlcli experiment config.

    Returns:
        A dict, with the ``$schema`` / ``title`` header first, then pydantic's schema of
        :class:`~dlcli.config.ExperimentConfig`.

    Example:
        >>> config_schema()["properties"]["fit"]
        {'$ref': '#/$defs/FitConfig'}
    """
    generated = _standard_constraints(ExperimentConfig.model_json_schema())
    generated.pop("title", None)
    description = generated.pop("description", "")
    header = {
        "$schema": DRAFT,
        "title": "dlcli experiment config",
        "description": f"{description} The YAML file given to `dlcli train`, `validate` and `tune`.",
        "$comment": "Generated from the models in dlcli/config/ by `dlcli schema > dlcli.schema.json`; do not edit by hand.",
    }
    return {**header, **generated}


def schema_text() -> str:
    """``config_schema()`` as the JSON text ``dlcli schema`` prints and ``dlcli.schema.json`` holds."""
    return json.dumps(config_schema(), indent=2) + "\n"


def _standard_constraints(node: Any) -> Any:
    """Move pydantic's leftover ``gt``/``ge``/``lt``/``le`` into the typed members of the ``anyOf`` beside them."""
    if isinstance(node, list):
        return [_standard_constraints(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _standard_constraints(value) for key, value in node.items()}
    if "anyOf" in node and "type" not in node:
        for short, keyword in _CONSTRAINTS.items():
            if short in node:
                bound = node.pop(short)
                _constrain_numbers(node["anyOf"], keyword, bound)
    return node


def _constrain_numbers(members: list[Any], keyword: str, bound: Any) -> None:
    for member in members:
        if member.get("type") in ("integer", "number"):
            member[keyword] = bound
        elif "anyOf" in member:
            _constrain_numbers(member["anyOf"], keyword, bound)
