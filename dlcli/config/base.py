"""What every config section shares: the strict base model, the names a user may give for data sources and
backends, run names, how a user's value and a YAML path are quoted in messages, and the JSON Schema tweaks for
shorthands that a before-validator accepts."""

from __future__ import annotations

import re
import typing
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

from dlcli.errors import quoted

BUNDLED_DATASETS = ("digits", "iris", "wine", "breast_cancer", "diabetes")
KERAS_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100")
FILE_SUFFIXES = (".csv", ".parquet", ".npz")
# The Keras backends dlcli runs on (`backend:`, --backend, $KERAS_BACKEND).
Backend = Literal["tensorflow", "jax", "torch"]
BACKENDS: tuple[str, ...] = typing.get_args(Backend)
# A dotted config path, as --set and tune.space take it: model.layers.0.units
DOTTED_PATH = r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*"


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors, never silently dropped."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def short_repr(value: Any, limit: int = 80) -> str:
    """A repr of a user value, cut to ``limit`` characters (head and tail, see :func:`dlcli.errors.shorten`)."""
    return quoted(value, limit)


def format_path(parts: typing.Sequence[str | int]) -> str:
    """``("model", "layers", 2, "units")`` -> ``"model.layers[2].units"``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[\w\-]+", str(part), flags=re.ASCII):
            out += ("." if out else "") + str(part)
        else:  # a key with spaces, dots or control characters is shown quoted
            out += f"[{str(part)!r}]"
    return out


# ---------------------------------------------------------------------------------------------
# Names (of runs, MLflow experiments): written into run files, the runs index and MLflow.

NAME_RULE = ("a name may hold letters of any script, digits, spaces and punctuation, but no control characters "
             "(newline, tab, NUL, ...)")


def control_character(text: str) -> str | None:
    """The first control character in ``text`` (newline, tab, NUL, DEL, a line separator, a lone surrogate), or
    None."""
    return next((c for c in text if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp")), None)


def _printable_name(value: str | None) -> str | None:
    """A name written into run files, the runs index and MLflow: no control characters (they would break
    ``runs list`` lines and file formats); letters of any script are fine (the run directory keeps them)."""
    bad = control_character(value or "")
    if bad is not None:
        raise ValueError(f"{short_repr(value)} holds the control character U+{ord(bad):04X}; {NAME_RULE}")
    return value


Name = Annotated[str | None, AfterValidator(_printable_name)]


# ---------------------------------------------------------------------------------------------
# Optional sections that `true` turns on with their defaults and `false` turns off.

def _true_means_defaults(value: Any) -> Any:
    if value is True:
        return {}
    return None if value is False else value


TrueMeansDefaults = BeforeValidator(_true_means_defaults)
"""Put in ``Annotated[Section | None, TrueMeansDefaults]``: ``true`` -> the section's defaults, ``false`` -> None."""


# ---------------------------------------------------------------------------------------------
# JSON Schema tweaks (``dlcli schema``): where a before-validator accepts a shorthand, the schema
# must accept it too, or editors would flag valid configs.

def or_shorthand(schema: dict[str, Any], shorthand: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (an object) widened to also accept ``shorthand`` (e.g. a bare name)."""
    outer = {key: schema.pop(key) for key in ("title", "description") if key in schema}
    return {**outer, "anyOf": [shorthand, schema]}


def also_boolean(schema: dict[str, Any]) -> None:
    """An optional section that ``true`` turns on with its defaults and ``false`` turns off."""
    schema["anyOf"].insert(0, {"type": "boolean", "description": "true: on, with the defaults; false: off."})
