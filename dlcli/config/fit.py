"""The ``fit`` section: what ``model.fit`` receives, and the Keras callbacks a config can turn on."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from dlcli.config.base import Strict, TrueMeansDefaults, also_boolean


class EarlyStoppingConfig(Strict):
    """keras.callbacks.EarlyStopping."""

    monitor: str = Field("val_loss", description="History key to watch.")
    patience: int = Field(5, ge=0, description="Epochs without improvement before stopping.")
    min_delta: float = Field(0.0, ge=0, description="Smallest change that counts as an improvement.")
    mode: Literal["auto", "min", "max"] = Field("auto", description="Whether the monitored value should fall or rise.")
    restore_best_weights: bool = Field(True, description="Keep the weights of the best epoch.")


class ReduceLROnPlateauConfig(Strict):
    """keras.callbacks.ReduceLROnPlateau."""

    monitor: str = Field("val_loss", description="History key to watch.")
    factor: float = Field(0.1, gt=0, lt=1, description="Multiply the learning rate by this on a plateau.")
    patience: int = Field(3, ge=0, description="Epochs without improvement before reducing.")
    min_lr: float = Field(0.0, ge=0, description="Lower bound on the learning rate.")


class TensorBoardConfig(Strict):
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


class FitConfig(Strict):
    """What ``model.fit`` receives."""

    batch_size: int = Field(32, ge=1, le=1_000_000, description="Samples per gradient step.")
    epochs: int = Field(10, ge=1, le=100_000, description="Passes over the training data.")
    shuffle: bool = Field(True, description="Shuffle the training data each epoch.")
    backup: bool = Field(True, description="Keep the training state of a recent epoch in <run>/backup/ (saved "
                         "every few seconds and when the fit ends) so that `dlcli train --resume` continues an "
                         "interrupted run from there, each epoch once in history.csv and MLflow; false skips it, "
                         "and a resume starts the epochs over.")
    # `true` turns a callback on with its defaults, `false` (like leaving it out) off.
    early_stopping: Annotated[EarlyStoppingConfig | None, TrueMeansDefaults] = Field(
        None, description="Stop when the monitored value stalls.", json_schema_extra=also_boolean)
    reduce_lr_on_plateau: Annotated[ReduceLROnPlateauConfig | None, TrueMeansDefaults] = Field(
        None, description="Lower the rate on a plateau.", json_schema_extra=also_boolean)
    tensorboard: Annotated[TensorBoardConfig | None, TrueMeansDefaults] = Field(
        None, description="Write TensorBoard logs to runs/<run-id>/tensorboard/; `true` = defaults.",
        json_schema_extra=also_boolean)
