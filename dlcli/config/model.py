"""The ``model`` and ``compile`` sections: layers, optimizer, learning-rate schedule, loss and metrics.

Names that select Keras classes (``type: Dense``, ``optimizer: adam``) are kept as given here and resolved
against Keras in ``dlcli.model``: this module does not import TensorFlow.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dlcli.config.base import Strict, or_shorthand


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


class ModelConfig(Strict):
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
        return or_shorthand(handler(core_schema), {"type": "string", "description": "Just the optimizer's name.",
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


class CompileConfig(Strict):
    """What ``model.compile`` receives."""

    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig, description="Name or {type: .., args}.")
    loss: str = Field(description="A Keras loss name, e.g. sparse_categorical_crossentropy, binary_crossentropy, mse.",
                      examples=["sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
                                "mse", "mae", "huber"])
    metrics: list[Annotated[str, Field(examples=["accuracy", "auc", "precision", "recall", "f1_score", "mae",
                                                 "mse", "root_mean_squared_error"])]] = Field(
        default_factory=list, description="Keras metric names, e.g. accuracy, auc, mae.")
