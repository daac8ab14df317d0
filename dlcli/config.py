"""The experiment config: typed models, YAML loading and ``--set`` overrides.

The YAML is parsed once, here, into an :class:`ExperimentConfig`; nothing downstream touches
raw dicts. Each field's default sits next to its description, so the error messages, the
``--help`` text and the JSON Schema all come from this one place. This module does not
import TensorFlow: names that select Keras classes are resolved in ``model.py``.
"""

from __future__ import annotations

import copy
import math
import os
import re
import stat
import typing
import unicodedata
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError,
                      field_validator, model_validator)

from dlcli.errors import ConfigError, allowed_list, did_you_mean, quoted, shorten

BUNDLED_DATASETS = ("digits", "iris", "wine", "breast_cancer", "diabetes")
KERAS_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100")
BACKENDS = ("tensorflow", "jax", "torch")
FILE_SUFFIXES = (".csv", ".parquet", ".npz")
# Keeps a hostile YAML file (billion laughs, huge override lists) from eating memory.
MAX_CONFIG_BYTES = 1_000_000


class _Strict(BaseModel):
    """Base for config sections: unknown keys are errors, never silently dropped."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# JSON Schema tweaks (``dlcli schema``): where a before-validator accepts a shorthand, the schema
# must accept it too, or editors would flag valid configs.

def _or_shorthand(schema: dict[str, Any], shorthand: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (an object) widened to also accept ``shorthand`` (e.g. a bare name)."""
    outer = {key: schema.pop(key) for key in ("title", "description") if key in schema}
    return {**outer, "anyOf": [shorthand, schema]}


def _also_boolean(schema: dict[str, Any]) -> None:
    """An optional section that ``true`` turns on with its defaults and ``false`` turns off."""
    schema["anyOf"].insert(0, {"type": "boolean", "description": "true: on, with the defaults; false: off."})


def _positive_number(schema: dict[str, Any]) -> None:
    for member in schema["anyOf"]:
        if member.get("type") == "number":
            member["exclusiveMinimum"] = 0


def _layer_hints(schema: dict[str, Any]) -> None:
    # Completion hints only (no type): layers differ in what their arguments accept.
    schema["properties"]["activation"] = {
        "description": "A keras.activations name (for layers that take one).",
        "examples": ["relu", "softmax", "sigmoid", "tanh", "gelu", "elu", "selu", "swish", "linear"],
    }


class SplitConfig(_Strict):
    """How the data is split into train / validation / test."""

    train: float = Field(0.7, gt=0, lt=1, description="Fraction of the samples used for training.")
    val: float = Field(0.15, ge=0, lt=1, description="Fraction used for validation (early stopping, diagnosis).")
    test: float = Field(0.15, ge=0, lt=1, description="Fraction held out for the final test score.")
    stratify: bool = Field(True, description="Keep class proportions equal across splits (classification only).")
    source_test: bool = Field(
        True,
        description="Use the dataset's own test split where it has one (Keras datasets); the training part "
        "is then split into train/val in the ratio train:val and `test` is ignored.",
    )

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> SplitConfig:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"train + val + test must sum to 1, got {self.train} + {self.val} + {self.test} = {total:g}; "
                f"e.g. {{train: 0.7, val: 0.15, test: 0.15}}"
            )
        return self


# ---------------------------------------------------------------------------------------------
# Table columns (data.columns): what each column of a .csv / .parquet file is and how it is encoded.
# The machinery lives in ``dlcli/columns.py``; these are the settings, each default next to its meaning.

SCALES = ("none", "standard", "minmax", "rescale")
COLUMN_TYPES = ("numeric", "categorical", "binary", "date", "ignore")
DATE_PARTS = ("year", "month", "day", "dayofweek", "dayofyear", "hour")


class NumericColumn(_Strict):
    """A number: missing values filled (or their rows dropped), then scaled; fitted on the train split."""

    type: Literal["numeric"] = Field("numeric", description="A number.")
    missing: Literal["median", "mean", "constant", "drop"] = Field(
        "median", description="Missing values: the train split's median or mean, fill_value (constant), or drop "
        "the row (training and evaluate; predict then refuses a missing value).")
    fill_value: float = Field(0.0, description="The value missing entries get with missing: constant.")
    indicator: bool = Field(True, description="Add a 0/1 input <name>_missing when the train split had missing "
                            "values in this column (the model can then learn what 'missing' means).")
    scale: Literal["none", "standard", "minmax", "rescale"] | None = Field(
        None, description="none, standard (z-score), minmax or rescale (x / 255); default: data.scale.")


class CategoricalColumn(_Strict):
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


class BinaryColumn(_Strict):
    """Two values mapped to 0 and 1 (one input)."""

    type: Literal["binary"] = Field("binary", description="Two values, 0 and 1.")
    positive: str | int | float | bool | None = Field(None, description="The value that becomes 1; default: a true-like value (true, "
                                 "yes, y, t, 1) if there is one, else the larger of the two in sorted order. "
                                 "Missing values become the train split's most common value.")


class DateColumn(_Strict):
    """Dates (or date-times) expanded into numeric parts, each filled with its median and scaled."""

    type: Literal["date"] = Field("date", description="Dates expanded into numbers.")
    parts: list[Literal["year", "month", "day", "dayofweek", "dayofyear", "hour"]] = Field(
        ["year", "month", "day", "dayofweek"], min_length=1, description="The numbers taken from each date.")
    scale: Literal["none", "standard", "minmax", "rescale"] | None = Field(
        None, description="Scaling of the parts; default: data.scale.")


class IgnoreColumn(_Strict):
    """Not fed to the model (an ID, a row number, a constant, free text)."""

    type: Literal["ignore"] = Field("ignore", description="Left out of the model.")


def _column_from_name(value: Any) -> Any:
    return {"type": value} if isinstance(value, str) else value


def _column_schema(schema: dict[str, Any]) -> None:
    schema["additionalProperties"] = {"anyOf": [{"type": "string", "enum": list(COLUMN_TYPES),
                                                 "description": "Just the type, with its defaults."},
                                                schema["additionalProperties"]]}


ColumnSpec = Annotated[Union[NumericColumn, CategoricalColumn, BinaryColumn, DateColumn, IgnoreColumn],
                       Field(discriminator="type")]


class DataConfig(_Strict):
    """Where the samples come from and how they are prepared."""

    source: str = Field(
        description="A bundled dataset (" + ", ".join(BUNDLED_DATASETS) + "), a Keras dataset ("
        + ", ".join(KERAS_DATASETS) + "), a path to a .csv, .parquet or .npz file, or a folder of images with one "
        "sub-folder per class (paths relative to the config file).",
        examples=[*BUNDLED_DATASETS, *KERAS_DATASETS, "data.csv"],
    )
    target: str | None = Field(None, description="Column to predict, for .csv / .parquet files.")
    features: list[str] | None = Field(None, min_length=1, description="Feature columns; default: all but target.")
    split: SplitConfig = Field(default_factory=SplitConfig, description="Train/val/test fractions.")
    scale: Literal["none", "standard", "minmax", "rescale"] = Field(
        "none", description="Feature scaling, fitted on the train split only: none, standard (z-score), "
        "minmax (to [0, 1]) or rescale (x / 255, for pixels). For a table, the default of each numeric column."
    )
    columns: dict[str, ColumnSpec] = Field(
        default_factory=dict, json_schema_extra=_column_schema,
        description="Tables: the type of each column (numeric, categorical, binary, date, ignore) and its options; "
        "a bare type name takes the defaults. Columns not listed get the type `dlcli init` would infer "
        "(`dlcli config show` prints what each became).")
    target_scale: Literal["none", "standard"] = Field(
        "none", description="Regression: standard fits the target's mean and spread on the train split and ends the "
        "model in a Rescaling layer, so the network learns a standardised target while predictions, loss and "
        "metrics stay in the target's own units.")
    reshape: list[int] | None = Field(
        None, min_length=1, description="Shape of one sample, e.g. [8, 8, 1] to feed Conv2D."
    )
    image_size: list[Annotated[int, Field(ge=1, le=4096)]] = Field(
        [64, 64], min_length=2, max_length=2,
        description="Image folders: [height, width] every image is resized to (bilinear).",
    )
    color_mode: Literal["rgb", "grayscale", "rgba"] = Field(
        "rgb", description="Image folders: 3, 1 or 4 channels per pixel."
    )

    @field_validator("columns", mode="before")
    @classmethod
    def _column_shorthands(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): _column_from_name(v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _column_defaults(self) -> DataConfig:
        # Each column's scaling defaults to data.scale; filled in so that the resolved config shows it.
        for spec in self.columns.values():
            if isinstance(spec, (NumericColumn, DateColumn)) and spec.scale is None:
                spec.scale = self.scale
        if self.target is not None and self.target in self.columns:
            raise ValueError(f"columns.{self.target} is the target ({self.target!r}); list only feature columns")
        return self

    @field_validator("reshape")
    @classmethod
    def _positive_dims(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(d <= 0 for d in value):
            raise ValueError(f"every dimension must be a positive integer, got {value}")
        return value

    @property
    def kind(self) -> Literal["bundled", "keras", "file", "folder"]:
        """Which loader this source needs (an existing directory not named like a data file is an image folder)."""
        if self.source in BUNDLED_DATASETS:
            return "bundled"
        if self.source in KERAS_DATASETS:
            return "keras"
        if Path(self.source).suffix.lower() not in FILE_SUFFIXES and os.path.isdir(self.source):
            return "folder"
        return "file"


class LayerSpec(BaseModel):
    """One layer: ``type`` is any ``keras.layers`` class name, the other keys are its arguments."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False, json_schema_extra=_layer_hints)
    type: str = Field(description="A keras.layers class name, e.g. Dense, Conv2D, Dropout, MaxPooling2D.",
                      examples=["Dense", "Dropout", "Conv2D", "MaxPooling2D", "GlobalAveragePooling2D", "Flatten",
                                "BatchNormalization", "Rescaling", "Conv1D", "MaxPooling1D", "LSTM", "GRU",
                                "Embedding", "RandomFlip", "RandomRotation", "LayerNormalization"])

    @property
    def args(self) -> dict[str, Any]:
        """The layer's constructor arguments (every key but ``type``)."""
        return dict(self.model_extra or {})


class ModelConfig(_Strict):
    """The network, as a list of layers stacked into a keras.Sequential."""

    layers: list[LayerSpec] = Field(min_length=1, description="Layers in order; the input shape comes from the data.")


class ScheduleConfig(BaseModel):
    """A learning-rate schedule: ``type`` is exponential, cosine, piecewise, polynomial, inverse_time or a
    keras.optimizers.schedules class name; the other keys are its arguments."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    type: str = Field(description="exponential | cosine | cosine_restarts | piecewise | polynomial | inverse_time",
                      examples=["exponential", "cosine", "cosine_restarts", "piecewise", "polynomial", "inverse_time"])

    @property
    def args(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class OptimizerConfig(BaseModel):
    """An optimizer: ``type`` is any keras.optimizers name; the other keys are its arguments."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    type: str = Field("adam", description="adam, sgd, rmsprop, adamw, ... (any keras.optimizers name).",
                      examples=["adam", "adamw", "sgd", "rmsprop", "nadam", "adagrad", "adamax"])
    learning_rate: float | ScheduleConfig | None = Field(
        None, description="A number, or a schedule such as {type: exponential, decay_steps: 100, decay_rate: 0.9}.",
        json_schema_extra=_positive_number,
    )

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        return _or_shorthand(handler(core_schema), {"type": "string", "description": "Just the optimizer's name.",
                                                    "examples": cls.model_fields["type"].examples})

    @field_validator("learning_rate")
    @classmethod
    def _positive_rate(cls, value: Any) -> Any:
        if isinstance(value, float) and not value > 0:
            raise ValueError(f"must be a positive number, got {value}")
        return value

    @property
    def args(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class CompileConfig(_Strict):
    """What ``model.compile`` receives."""

    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig, description="Name or {type: .., args}.")
    loss: str = Field(description="A Keras loss name, e.g. sparse_categorical_crossentropy, binary_crossentropy, mse.",
                      examples=["sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
                                "mse", "mae", "huber"])
    metrics: list[Annotated[str, Field(examples=["accuracy", "auc", "precision", "recall", "f1_score", "mae",
                                                 "mse", "root_mean_squared_error"])]] = Field(
        default_factory=list, description="Keras metric names, e.g. accuracy, auc, mae.")


class EarlyStoppingConfig(_Strict):
    """keras.callbacks.EarlyStopping."""

    monitor: str = Field("val_loss", description="History key to watch.")
    patience: int = Field(5, ge=0, description="Epochs without improvement before stopping.")
    min_delta: float = Field(0.0, ge=0, description="Smallest change that counts as an improvement.")
    mode: Literal["auto", "min", "max"] = Field("auto", description="Whether the monitored value should fall or rise.")
    restore_best_weights: bool = Field(True, description="Keep the weights of the best epoch.")


class ReduceLROnPlateauConfig(_Strict):
    """keras.callbacks.ReduceLROnPlateau."""

    monitor: str = Field("val_loss", description="History key to watch.")
    factor: float = Field(0.1, gt=0, lt=1, description="Multiply the learning rate by this on a plateau.")
    patience: int = Field(3, ge=0, description="Epochs without improvement before reducing.")
    min_lr: float = Field(0.0, ge=0, description="Lower bound on the learning rate.")


def _true_means_defaults(value: Any) -> Any:
    if value is True:
        return {}
    return None if value is False else value


class TensorBoardConfig(_Strict):
    """keras.callbacks.TensorBoard, writing to ``runs/<run-id>/tensorboard/`` (view it with
    ``tensorboard --logdir runs/<run-id>/tensorboard``); ``dlcli tune`` adds keras-tuner's HParams view."""

    histogram_freq: int = Field(0, ge=0, description="Log weight histograms every this many epochs (0: never).")
    write_graph: bool = Field(True, description="Write the model's graph (the Graphs tab).")
    write_images: bool = Field(False, description="Write the weights as images.")
    update_freq: Literal["epoch", "batch"] | int = Field(
        "epoch", description="Write the scalars after every epoch, every batch, or every N batches (a number).")
    profile_batch: int | list[int] = Field(
        0, description="Profile this batch, or the batches [start, stop], for the Profile tab (0: off).")

    @field_validator("update_freq", "profile_batch")
    @classmethod
    def _batches(cls, value: Any, info: Any) -> Any:
        if isinstance(value, list) and (len(value) != 2 or not 0 < value[0] <= value[1]):
            raise ValueError(f"expected one batch number or [start, stop] with 0 < start <= stop, got {value}")
        if isinstance(value, int) and value < (1 if info.field_name == "update_freq" else 0):
            raise ValueError(f"must be {'at least 1' if info.field_name == 'update_freq' else '0 or more'}, "
                             f"got {value}")
        return value


class FitConfig(_Strict):
    """What ``model.fit`` receives."""

    batch_size: int = Field(32, ge=1, le=1_000_000, description="Samples per gradient step.")
    epochs: int = Field(10, ge=1, le=100_000, description="Passes over the training data.")
    shuffle: bool = Field(True, description="Shuffle the training data each epoch.")
    backup: bool = Field(True, description="Keep the training state of a recent epoch in <run>/backup/ (saved "
                         "every 5 s or so, and when the fit ends) so that `dlcli train --resume` continues an "
                         "interrupted run from there, each epoch once in history.csv; false skips it, and a resume "
                         "starts the epochs over.")
    early_stopping: EarlyStoppingConfig | None = Field(None, description="Stop when the monitored value stalls.",
                                                       json_schema_extra=_also_boolean)
    reduce_lr_on_plateau: ReduceLROnPlateauConfig | None = Field(None, description="Lower the rate on a plateau.",
                                                                 json_schema_extra=_also_boolean)
    tensorboard: TensorBoardConfig | None = Field(
        None, description="Write TensorBoard logs to runs/<run-id>/tensorboard/; `true` = defaults.",
        json_schema_extra=_also_boolean)

    _defaults_for_true = field_validator("early_stopping", "reduce_lr_on_plateau", "tensorboard", mode="before")(
        classmethod(lambda cls, v: _true_means_defaults(v))
    )


class DiagnosisConfig(_Strict):
    """Thresholds of the fit diagnosis that ``train`` and ``runs show`` print (see dlcli/diagnosis.py).

    Each error is relative: the model's error on a split divided by the trivial baseline's (always the
    train split's class shares or mean target) on that split; 0 is perfect, 1 no better than the baseline.
    Underfit: training relative error > high_error and the held-out one within max_gap of it. Overfit:
    training relative error <= high_error and the held-out one more than max_gap above it. Both: both.
    """

    measure: Literal["auto", "accuracy", "loss"] = Field(
        "auto", description="What 'error' is: accuracy -> 1 - accuracy; loss -> the loss (for mse the relative "
        "error is 1 - R²); auto -> accuracy when tracked, else loss. Either is divided by the trivial baseline's."
    )
    high_error: float = Field(0.5, ge=0, description="A training error above this fraction of the baseline's "
                              "error is high (high bias, underfit).")
    max_gap: float = Field(0.15, ge=0, description="A held-out relative error more than this above the training "
                           "relative error is much higher (high variance, overfit).")
    split: Literal["val", "test"] = Field("val", description="Held-out split compared with train (test if no val).")


class MlflowConfig(_Strict):
    """Also log runs to MLflow (an optional extra: ``pip install 'dlcli[mlflow]'``): the config as params,
    each epoch's metrics, the final scores, tags naming the dlcli run, and the model."""

    enabled: bool = Field(True, description="Log to MLflow. `dlcli train/tune --mlflow` sets it, so a file can "
                          "keep its settings with enabled: false.")
    uri: str | None = Field(
        None, min_length=1, description="MLflow tracking URI: sqlite:///path/to/mlflow.db, http(s)://server, or a "
        "directory / file: URI (MLflow's legacy file store). Default: $MLFLOW_TRACKING_URI, else "
        "sqlite:///mlruns/mlflow.db in the current directory, with the artifacts beside it in ./mlruns/.")
    experiment: Name = Field(None, min_length=1, description="MLflow experiment (created if missing); "
                                   "default: the run name (`name`).")
    log_model: bool = Field(True, description="Log the trained model as an MLflow Keras model (load it with "
                            "mlflow.keras.load_model('models:/<model-id>')).")


class TrackingConfig(_Strict):
    """Where runs are reported besides their run directory (TensorBoard logs: see fit.tensorboard)."""

    mlflow: MlflowConfig | None = Field(None, description="MLflow tracking; `true` = defaults; off when absent.",
                                        json_schema_extra=_also_boolean)

    _defaults_for_true = field_validator("mlflow", mode="before")(classmethod(lambda cls, v: _true_means_defaults(v)))


# ---------------------------------------------------------------------------------------------
# Hyperparameter search (``dlcli tune``): which values to try and how to judge them.

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


class RangeSpec(_Strict):
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


class ObjectiveConfig(_Strict):
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
            raise ValueError(f"expected a history key such as val_accuracy or {{name: val_auc, direction: max}}, "
                             f"got {short_repr(value)}")
        return value

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        return _or_shorthand(handler(core_schema), {"type": "string", "description": "Just the history key.",
                                                    "examples": cls.model_fields["name"].examples})


class TuneConfig(_Strict):
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
            if not re.fullmatch(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*", path):
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


class ExperimentConfig(_Strict):
    """One experiment: data, model, compile and fit settings."""

    name: Name = Field(None, min_length=1, max_length=100, description="Run name; default: the file's stem. "
                       "Letters of any script, digits, spaces and punctuation; no control characters.")
    seed: int = Field(42, ge=0, le=2**32 - 1, description="Seeds Python, NumPy and the backend.")
    device: Literal["auto", "cpu", "gpu"] = Field("auto", description="auto uses a GPU if one is visible.")
    deterministic: bool = Field(True, description="Turn on op determinism: same seed, same numbers.")
    backend: Literal["tensorflow", "jax", "torch"] = Field(
        "tensorflow", description="The Keras backend that runs the model: tensorflow, jax or torch (default: "
        "$KERAS_BACKEND, else tensorflow). A model saved on one backend loads on any other.")
    distribution: Literal["none", "mirrored", "data_parallel"] = Field(
        "none", description="none: one device. mirrored (tensorflow): tf.distribute.MirroredStrategy, a copy of the "
        "model on every visible GPU (without GPUs, or with device: cpu, on every logical CPU device), gradients "
        "averaged each step; fit.batch_size is then the global batch, split across the copies. data_parallel "
        "(jax): keras.distribution.DataParallel across every local device.")
    data: DataConfig
    model: ModelConfig
    compile: CompileConfig
    fit: FitConfig = Field(default_factory=FitConfig)
    tune: TuneConfig | None = Field(None, description="The hyperparameter search of `dlcli tune`; ignored by "
                                   "`dlcli train`.")
    diagnosis: DiagnosisConfig = Field(default_factory=DiagnosisConfig,
                                       description="Thresholds for the underfit / overfit / good fit diagnosis.")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="Report runs to MLflow too.")

    def to_yaml_dict(self) -> dict[str, Any]:
        """The fully resolved config as plain data; ``load_config`` on its YAML gives the same config."""
        return self.model_dump(mode="json", exclude={"tune"} if self.tune is None else None)


# ---------------------------------------------------------------------------------------------
# Loading


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


def short_repr(value: Any, limit: int = 80) -> str:
    """A repr of a user value, cut to ``limit`` characters (head and tail, see :func:`dlcli.errors.shorten`)."""
    return quoted(value, limit)


def read_yaml(path: Path) -> Any:
    """Read a YAML file with the safe loader; syntax errors become a ConfigError with the line."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode) and not stat.S_ISDIR(info.st_mode):  # a pipe would be read forever
            raise ConfigError("", f"{path} is not a regular file (a pipe or device?); give a YAML config file")
        size = info.st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError("", f"{path}: the file is {size} bytes; a config is at most {MAX_CONFIG_BYTES}")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("", f"config file not found: {path.resolve()}") from None
    except IsADirectoryError:
        raise ConfigError("", f"{path.resolve()} is a directory, not a YAML config file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError("", f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    return parse_yaml(text, str(path))


MAX_EXPANDED_VALUES = 1_000_000


def _expanded_size(value: Any, memo: dict[int, int], depth: int = 0) -> int:
    """How many values ``value`` holds once aliases are expanded (shared objects counted once each time
    they are reached, in time linear in the number of distinct objects)."""
    if depth > 200:
        raise ConfigError("", "the YAML is nested more than 200 levels deep")
    key = id(value)
    if key in memo:
        return memo[key]
    if isinstance(value, dict):
        size = 1 + sum(_expanded_size(v, memo, depth + 1) for v in value.values()) + len(value)
    elif isinstance(value, list):
        size = 1 + sum(_expanded_size(v, memo, depth + 1) for v in value)
    else:
        return 1
    memo[key] = size
    return size


def parse_yaml(text: str, where: str) -> Any:
    """Parse YAML text safely (no Python object tags, bounded aliases)."""
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError("", f"{where}: YAML syntax error{at}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError("", f"{where}: YAML error: {exc}") from None
    except RecursionError:
        raise ConfigError("", f"{where}: the YAML is nested too deeply") from None
    # PyYAML shares aliased objects, but everything downstream (validation, dumping) expands them:
    # a "billion laughs" file is refused here, in linear time.
    size = _expanded_size(data, {})
    if size > MAX_EXPANDED_VALUES:
        raise ConfigError("", f"{where}: the YAML expands to {size:,} values through aliases (*refs); at most "
                          f"{MAX_EXPANDED_VALUES:,} are allowed (an alias bomb?)")
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``PATH=VALUE`` and parse VALUE as YAML."""
    if "=" not in text:
        raise ConfigError("--set", f"{short_repr(text)} is not PATH=VALUE; e.g. --set fit.epochs=5")
    path, raw = text.split("=", 1)
    path = path.strip()
    if not path or not re.fullmatch(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*", path):
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


def get_by_path(raw: Any, dotted: str) -> Any:
    """Return ``raw[a][b][0][c]`` for ``"a.b.0.c"``; raises KeyError if it does not exist."""
    node = raw
    for key in dotted.split("."):
        if isinstance(node, list) and key.lstrip("-").isdigit() and -len(node) <= int(key) < len(node):
            node = node[int(key)]
        elif isinstance(node, dict) and key in node:
            node = node[key]
        else:
            raise KeyError(dotted)
    return node


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
        backend = os.environ.get("KERAS_BACKEND") or "tensorflow"
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

    return sorted(errors, key=rank)[0]


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


_COLUMN_MODELS = {"numeric": NumericColumn, "categorical": CategoricalColumn, "binary": BinaryColumn,
                  "date": DateColumn, "ignore": IgnoreColumn}


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
        allowed = list(_COLUMN_MODELS[tag].model_fields) if tag else _fields_at(model, loc[:-1]) or []
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


def dump_yaml(data: Any) -> str:
    """YAML text for a config dict, keys in schema order."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100)
