"""Table columns (``data.columns``): what each column of a .csv / .parquet file is and how it is encoded.

The machinery lives in ``dlcli.data.columns``; these are the settings, each default next to its meaning.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field

from dlcli.config.base import Strict

# How numbers are scaled (data.scale, and a numeric or date column's own scale).
Scale = Literal["none", "standard", "minmax", "rescale"]


class NumericColumn(Strict):
    """A number: missing values filled (or their rows dropped), then scaled; fitted on the train split."""

    type: Literal["numeric"] = Field("numeric", description="A number.")
    missing: Literal["median", "mean", "constant", "drop"] = Field(
        "median", description="Missing values: the train split's median or mean, fill_value (constant), or drop "
        "the row (training and evaluate; predict then refuses a missing value).")
    fill_value: float = Field(0.0, description="The value missing entries get with missing: constant.")
    indicator: bool = Field(True, description="Add a 0/1 input <name>_missing when the train split had missing "
                            "values in this column (the model can then learn what 'missing' means).")
    scale: Scale | None = Field(
        None, description="none, standard (z-score), minmax or rescale (x / 255); default: data.scale.")


class CategoricalColumn(Strict):
    """Strings or integer codes: one 0/1 input per kept value (one-hot)."""

    type: Literal["categorical"] = Field("categorical", description="Strings or integer codes, one-hot encoded.")
    max_categories: int = Field(50, ge=2, le=10_000, description="Keep at most this many of the most common "
                                "values (train split); the rest share one 'other' input with values never seen "
                                "in training.")
    min_frequency: int = Field(1, ge=1, description="Values seen fewer times than this in the train split go to "
                               "'other' too.")
    missing: Literal["category", "most_frequent"] = Field(
        "category", description="category: missing is a value of its own (an input <name>=<missing>); "
        "most_frequent: counted as the train split's most common value.")


class BinaryColumn(Strict):
    """Two values mapped to 0 and 1 (one input)."""

    type: Literal["binary"] = Field("binary", description="Two values, 0 and 1.")
    positive: str | int | float | bool | None = Field(None, description="The value that becomes 1; default: a true-like value (true, "
                                 "yes, y, t, 1) if there is one, else the larger of the two in sorted order. "
                                 "Missing values become the train split's most common value.")


class DateColumn(Strict):
    """Dates (or date-times) expanded into numeric parts, each filled with its median and scaled."""

    type: Literal["date"] = Field("date", description="Dates expanded into numbers.")
    parts: list[Literal["year", "month", "day", "dayofweek", "dayofyear", "hour"]] = Field(
        ["year", "month", "day", "dayofweek"], min_length=1, description="The numbers taken from each date.")
    scale: Scale | None = Field(
        None, description="Scaling of the parts; default: data.scale.")


class IgnoreColumn(Strict):
    """Not fed to the model (an ID, a row number, a constant, free text)."""

    type: Literal["ignore"] = Field("ignore", description="Left out of the model.")

# Each column type and its settings; the keys are what `type:` (or the bare shorthand) takes.
COLUMN_MODELS: dict[str, type[Strict]] = {"numeric": NumericColumn, "categorical": CategoricalColumn,
                                          "binary": BinaryColumn, "date": DateColumn, "ignore": IgnoreColumn}
COLUMN_TYPES = tuple(COLUMN_MODELS)


def column_from_name(value: Any) -> Any:
    """The shorthand ``price: numeric`` -> ``{type: numeric}``."""
    return {"type": value} if isinstance(value, str) else value


def column_schema(schema: dict[str, Any]) -> None:
    """JSON Schema: a column may also be just its type's name."""
    schema["additionalProperties"] = {"anyOf": [{"type": "string", "enum": list(COLUMN_TYPES),
                                                 "description": "Just the type, with its defaults."},
                                                schema["additionalProperties"]]}


ColumnSpec = Annotated[Union[NumericColumn, CategoricalColumn, BinaryColumn, DateColumn, IgnoreColumn],  # noqa: UP007
                       Field(discriminator="type")]
