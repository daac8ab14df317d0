"""Validating raw config data against the schema, and turning pydantic's errors into one message that names the
YAML path, the value given, what is allowed and, where it can, the fix."""

from __future__ import annotations

import math
import re
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from dlcli.config.base import format_path, short_repr
from dlcli.config.columns import COLUMN_MODELS, COLUMN_TYPES
from dlcli.config.experiment import ExperimentConfig
from dlcli.errors import ConfigError, allowed_list, did_you_mean, shorten

# A number written with an exponent that PyYAML (YAML 1.1) leaves as text, e.g. 1e400.
_NUMBER_TEXT = re.compile(r"[-+]?(\d[\d_]*(\.\d*)?|\.\d+)[eE][-+]?\d+")
# Top-level sections whose strings are names, paths or column names, never numbers.
_TEXT_SECTIONS = ("name", "data", "tracking")
FINITE_RULE = "(.inf, .nan and values beyond ±1.8e308 such as 1e400 are refused); give a finite value"


def _yaml_number(value: Any) -> str | None:
    """How YAML spells ``value`` if it is a number that is not finite (inf, NaN, too large for a float), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else ".inf" if value > 0 else "-.inf"
    if isinstance(value, int) and abs(value) >= 2**1024:
        return shorten(str(value), 40)
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value) and not math.isfinite(float(value.replace("_", ""))):
        return value
    return None


def check_finite_numbers(raw: Any) -> None:
    """Refuse a number that is not finite anywhere in raw config data, free-form parts included (layer and
    optimizer arguments, learning-rate schedules, search spaces, ``--set`` values), naming its YAML path.

    Raises:
        ConfigError: e.g. ``compile.optimizer.learning_rate: .inf is not a finite number; ...``.
    """
    stack: list[tuple[tuple, Any]] = [((), raw)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(((*path, key), item) for key, item in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend(((*path, i), item) for i, item in reversed(list(enumerate(value))))
        elif not (isinstance(value, str) and path[:1] and path[0] in _TEXT_SECTIONS):
            spelled = _yaml_number(value)
            if spelled is not None:
                raise ConfigError(format_path(path), f"{spelled} is not a finite number {FINITE_RULE}")


def validate_config(raw: dict[str, Any], model: type[BaseModel] = ExperimentConfig) -> Any:
    """Validate raw data against ``model``; the first problem becomes one ConfigError.

    Numbers that are not finite are refused first, wherever they are (:func:`check_finite_numbers`)."""
    check_finite_numbers(raw)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        error = _first_error(errors)
        message = _describe_error(error, model)
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        raise ConfigError(format_path(_clean_loc(error["loc"])), message) from None
    except RecursionError:
        raise ConfigError("", "the config is nested too deeply") from None


def _first_error(errors: list[dict[str, Any]]) -> dict[str, Any]:
    # Within a union (learning_rate: number | schedule) pydantic reports one error per member; the
    # one for the member the user evidently meant (a mapping -> the schedule) reads best.
    def rank(err: dict[str, Any]) -> int:
        tags = [p for p in err["loc"] if isinstance(p, str) and p in _UNION_TAGS]
        if not tags:
            return 0
        input_is_map = isinstance(err.get("input"), dict)
        return 0 if (tags[-1] in ("ScheduleConfig",)) == input_is_map else 1

    return min(errors, key=rank)  # the first of the best ranked, as pydantic ordered them


_UNION_TAGS = {"float", "int", "str", "bool", "list", "dict", "ScheduleConfig", "EarlyStoppingConfig",
               "ReduceLROnPlateauConfig", "TensorBoardConfig", "MlflowConfig", "none",
               "function-after[_positive_rate(), float]",
               "ChoiceList", "RangeSpec", "ObjectiveConfig"}


def _clean_loc(loc: tuple) -> list:
    return [p for i, p in enumerate(loc) if not (isinstance(p, str) and (p in _UNION_TAGS or "[" in p))
            and not _is_column_tag(loc, i)]


def _is_column_tag(loc: tuple | list, i: int) -> bool:
    """Whether ``loc[i]`` is the type tag pydantic puts after ``data.columns.<name>`` (not a key of the config)."""
    return i >= 2 and loc[i - 2] == "columns" and loc[i] in COLUMN_TYPES



def _fields_at(model: type[BaseModel], loc: list) -> list[str] | None:
    """The field names allowed at ``loc`` (a path into ``model``), or None if not a model there."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return None
        current = _model_in(current.model_fields[part].annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return None


def _model_in(annotation: Any) -> Any:
    """The BaseModel inside ``X | None``, ``list[X]`` and the like, else the annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if isinstance(found, type) and issubclass(found, BaseModel):
            return found
    return annotation


def _describe_error(error: dict[str, Any], model: type[BaseModel]) -> str:
    kind = error["type"]
    loc = _clean_loc(error["loc"])
    given = error.get("input")
    if kind == "union_tag_invalid":
        tags = COLUMN_TYPES if "columns" in loc else re.findall(r"'([^']*)'", error["ctx"]["expected_tags"])
        tag = error["ctx"]["tag"]
        return f"{short_repr(tag)} is not a type.{did_you_mean(str(tag), tags)} (allowed: {', '.join(tags)})"
    if kind == "extra_forbidden":
        raw = error["loc"]
        tag = next((raw[i] for i in range(len(raw)) if _is_column_tag(raw, i)), None)
        allowed = list(COLUMN_MODELS[tag].model_fields) if tag else _fields_at(model, loc[:-1]) or []
        key = loc[-1] if loc else given
        return f"unknown key {key!r}.{did_you_mean(str(key), allowed)} (allowed: {allowed_list(allowed)})"
    if kind == "missing":
        allowed = _fields_at(model, loc)
        hint = f" (with keys: {allowed_list(allowed)})" if allowed else ""
        return f"required key is missing{hint}"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", error["msg"])
        return f"{short_repr(given)} is not allowed.{did_you_mean(str(given), choices)} (allowed: {', '.join(choices)})"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping of keys, got {short_repr(given)}"
    if kind == "value_error":
        return error["msg"].removeprefix("Value error, ")
    if kind == "finite_number":
        return f"{_yaml_number(given) or short_repr(given)} is not a finite number {FINITE_RULE}"
    msg = error["msg"]
    msg = msg[0].lower() + msg[1:]
    return f"{msg}, got {short_repr(given)}"
