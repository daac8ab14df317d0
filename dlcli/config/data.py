"""The ``data`` section: where the samples come from, how they are split and how they are prepared."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from dlcli.config.base import BUNDLED_DATASETS, FILE_SUFFIXES, KERAS_DATASETS, Strict
from dlcli.config.columns import (
    ColumnSpec,
    DateColumn,
    NumericColumn,
    Scale,
    column_from_name,
    column_schema,
)


class SplitConfig(Strict):
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


class DataConfig(Strict):
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
    scale: Scale = Field(
        "none", description="Feature scaling, fitted on the train split only: none, standard (z-score), "
        "minmax (to [0, 1]) or rescale (x / 255, for pixels). For a table, the default of each numeric column."
    )
    columns: dict[str, ColumnSpec] = Field(
        default_factory=dict, json_schema_extra=column_schema,
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
            return {str(k): column_from_name(v) for k, v in value.items()}
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
