"""The whole experiment config (:class:`ExperimentConfig`): the top-level settings, each section, and the small
``diagnosis`` section."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from dlcli.config.base import Backend, Name, Strict
from dlcli.config.data import DataConfig
from dlcli.config.fit import FitConfig
from dlcli.config.model import CompileConfig, ModelConfig
from dlcli.config.tracking import TrackingConfig
from dlcli.config.tune import TuneConfig


class DiagnosisConfig(Strict):
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


class ExperimentConfig(Strict):
    """One experiment: data, model, compile and fit settings."""

    name: Name = Field(None, min_length=1, max_length=100, description="Run name; default: the file's stem. "
                       "Letters of any script, digits, spaces and punctuation; no control characters.")
    seed: int = Field(42, ge=0, le=2**32 - 1, description="Seeds Python, NumPy and the backend.")
    device: Literal["auto", "cpu", "gpu"] = Field("auto", description="auto uses a GPU if one is visible.")
    deterministic: bool | Literal["auto"] = Field(
        "auto", description="Op determinism (the same seed gives the same numbers): true on every device, false "
        "never, auto on a GPU only: GPU kernels need it, while on a CPU the same seed gives the same numbers "
        "without it, and it costs there up to 9% per epoch and tenths of a second to the first (TensorFlow, "
        "PyTorch).")
    backend: Backend = Field(
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
