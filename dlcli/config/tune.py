"""The ``tune`` section: the hyperparameter search of ``dlcli tune`` (which values to try, how to judge them)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from dlcli.config.base import DOTTED_PATH, Strict, or_shorthand, short_repr
from dlcli.errors import did_you_mean


def _choice_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string" if isinstance(value, str) else type(value).__name__


def _check_choices(values: list[Any]) -> list[Any]:
    """A list of choices: non-empty, scalars of one type, no repeats; ints mixed with floats become floats."""
    if not values:
        raise ValueError("an empty list of choices; give at least one value, e.g. [32, 64, 128]")
    for value in values:
        if value is None or isinstance(value, (dict, list)):
            raise ValueError(f"{short_repr(value)} cannot be a choice: choices are numbers, strings or booleans "
                             f"(tune one setting per path, e.g. model.layers.0.units: [32, 64])")
    kinds = sorted({_choice_kind(v) for v in values})
    if len(kinds) > 1:
        raise ValueError(f"mixes {' and '.join(kinds)} values in {short_repr(values)}; all choices of one path "
                         f"must have one type")
    if kinds == ["number"] and any(isinstance(v, float) for v in values):
        values = [float(v) for v in values]
    repeated = [v for i, v in enumerate(values) if v in values[:i]]
    if repeated:
        raise ValueError(f"{short_repr(repeated[0])} is listed twice in {short_repr(values)}")
    return values


class RangeSpec(Strict):
    """A numeric range to search. Integers when min, max (and step) are integers, else floats."""

    min: int | float = Field(description="Smallest value (inclusive).")
    max: int | float = Field(description="Largest value (inclusive).")
    step: int | float | None = Field(
        None, gt=0, description="Distance between values: added for linear sampling, a factor (> 1) for log. "
        "Grid search needs it for floats; without it a float range is continuous.")
    sampling: Literal["linear", "log", "reverse_log"] = Field(
        "linear", description="linear: uniform; log: uniform in log scale (learning rates); reverse_log: dense "
        "near max.")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, value: Any) -> Any:
        # Checked here because the path of a space entry is a mapping key, which the generic
        # unknown-key message cannot look up.
        if isinstance(value, dict):
            allowed = list(cls.model_fields)
            for key, item in value.items():
                if key not in allowed:
                    raise ValueError(f"unknown key {key!r} in a range.{did_you_mean(str(key), allowed)} "
                                     f"(allowed: {', '.join(allowed)})")
                if key != "sampling" and item is not None and (isinstance(item, bool)
                                                              or not isinstance(item, (int, float))):
                    raise ValueError(f"{key} must be a number, got {short_repr(item)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RangeSpec:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.sampling != "linear" and self.min <= 0:
            raise ValueError(f"{self.sampling} sampling needs min > 0, got min: {self.min}")
        if self.sampling != "linear" and self.step is not None and self.step <= 1:
            raise ValueError(f"with {self.sampling} sampling, step is a factor and must be > 1 (e.g. 10), "
                             f"got {self.step}")
        return self

    @property
    def is_int(self) -> bool:
        """Whether the range holds integers (keras-tuner ``hp.Int``) rather than floats (``hp.Float``)."""
        return all(isinstance(v, int) and not isinstance(v, bool) for v in (self.min, self.max, self.step or 1))

    @property
    def is_discrete(self) -> bool:
        """Whether the values can be listed (grid search): a step, or integers sampled linearly."""
        return self.step is not None or (self.is_int and self.sampling == "linear")


def _space_entry_kind(value: Any) -> str | None:
    if isinstance(value, list):
        return "ChoiceList"
    if isinstance(value, (dict, RangeSpec)):
        return "RangeSpec"
    return None


SpaceEntry = Annotated[
    Union[  # noqa: UP007 - the tagged union needs the Union spelling
        Annotated[list[Any], AfterValidator(_check_choices), Tag("ChoiceList")],
        Annotated[RangeSpec, Tag("RangeSpec")],
    ],
    Discriminator(_space_entry_kind, custom_error_type="search_space_entry",
                  custom_error_message="expected a list of choices such as [32, 64] or a range such as "
                  "{min: 1.0e-4, max: 1.0e-2, sampling: log}",
                  custom_error_context={}),
]


class ObjectiveConfig(Strict):
    """What a search optimises: a history key (its best epoch counts) and whether lower or higher is better."""

    name: str = Field(description="A history key, e.g. val_accuracy or val_loss.",
                      examples=["val_loss", "val_accuracy", "val_auc", "val_mae"])
    direction: Literal["min", "max"] | None = Field(
        None, description="min or max; default: inferred by keras-tuner (loss/error -> min, accuracy/auc -> max).")

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        if not isinstance(value, (dict, ObjectiveConfig)):
            raise ValueError(f"expected a history key such as val_accuracy or {{name: val_auc, direction: max}}, "  # noqa: TRY004 - pydantic reports ValueError only
                             f"got {short_repr(value)}")
        return value

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        return or_shorthand(handler(core_schema), {"type": "string", "description": "Just the history key.",
                                                    "examples": cls.model_fields["name"].examples})


class TuneConfig(Strict):
    """The hyperparameter search of ``dlcli tune``: a trial is a training run with some values replaced."""

    strategy: Literal["grid", "random", "bayesian", "hyperband"] = Field(
        "grid", description="grid: every combination once; random: max_trials random points; bayesian: "
        "max_trials points chosen by a Gaussian process; hyperband: many short runs, the best continued "
        "(up to fit.epochs).")
    objective: ObjectiveConfig = Field(
        default_factory=lambda: ObjectiveConfig(name="val_loss"), description="The history key to optimise (its best epoch counts), e.g. val_accuracy; the "
        "direction is inferred (loss/error -> min, accuracy/auc -> max), or give {name: .., direction: min}.")
    max_trials: int | None = Field(
        None, ge=1, le=100_000, description="Number of trials. grid: optional (default: the whole grid); "
        "random/bayesian: required; hyperband: optional cap.")
    executions_per_trial: int = Field(
        1, ge=1, le=100, description="Trainings per trial, from seeds seed, seed+1, ...; the scores are averaged.")
    max_consecutive_failed_trials: int = Field(
        5, ge=1, description="Stop the search after this many failed trials in a row.")
    factor: int = Field(3, ge=2, le=100, description="hyperband only: keep the best 1/factor of each round.")
    space: dict[str, SpaceEntry] = Field(
        default_factory=dict, description="Required. Dotted config paths (as --set takes them) -> a list of "
        "choices or a range {min, max, step, sampling}.")

    @field_validator("space")
    @classmethod
    def _dotted_paths(cls, value: dict[str, Any]) -> dict[str, Any]:
        for path in value:
            if not re.fullmatch(DOTTED_PATH, path):
                raise ValueError(f"{short_repr(path)} is not a dotted path such as model.layers.0.units")
            if path.split(".")[0] in ("tune", "name", "seed", "device", "deterministic", "backend", "distribution",
                                      "tracking"):
                raise ValueError(f"{path!r} cannot be searched: tune values under data, model, compile or fit "
                                 f"(for several seeds per trial use tune.executions_per_trial)")
        return value

    @model_validator(mode="after")
    def _has_space(self) -> TuneConfig:
        # Checked after the fields (not as a required field) so that a typo such as `spce:` is reported
        # as the unknown key it is.
        if not self.space:
            raise ValueError("`space` is missing or empty: list the paths to search, e.g. "
                             "space: {model.layers.0.units: [32, 64, 128]}")
        return self
