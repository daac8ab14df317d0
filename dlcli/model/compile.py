"""Compile settings: the optimizer (and its learning-rate schedule), the loss and the metrics, checked
against Keras and against the label encoding."""

from __future__ import annotations

from typing import Any

from dlcli.config import CompileConfig, OptimizerConfig, ScheduleConfig
from dlcli.data import Preprocessing
from dlcli.errors import ConfigError, allowed_list, did_you_mean
from dlcli.model.keras_names import check_args, construct, public_classes, public_functions
from dlcli.runtime import import_keras

SCHEDULE_ALIASES = {
    "exponential": "ExponentialDecay",
    "cosine": "CosineDecay",
    "cosine_restarts": "CosineDecayRestarts",
    "piecewise": "PiecewiseConstantDecay",
    "polynomial": "PolynomialDecay",
    "inverse_time": "InverseTimeDecay",
}
# Metrics that compare whole label rows, so they cannot read integer class indices.
ONE_HOT_METRICS = {"auc", "precision", "recall", "f1_score", "fbeta_score", "precision_at_recall",
                   "recall_at_precision", "top_k_categorical_accuracy", "categorical_accuracy"}


def make_schedule(cfg: ScheduleConfig, path: str) -> Any:
    """A ``keras.optimizers.schedules`` object from ``{type: exponential, ...}``."""
    keras = import_keras()
    classes = public_classes(keras.optimizers.schedules, keras.optimizers.schedules.LearningRateSchedule)
    classes.pop("LearningRateSchedule", None)
    name = SCHEDULE_ALIASES.get(cfg.type, cfg.type)
    if name not in classes:
        allowed = list(SCHEDULE_ALIASES) + list(classes)
        raise ConfigError(f"{path}.type", f"{cfg.type!r} is not a learning-rate schedule."
                          f"{did_you_mean(cfg.type, allowed)} (allowed: {allowed_list(allowed, 20)})")
    check_args(path, name, classes[name], object, cfg.args)
    return construct(path, name, classes[name], cfg.args)


def make_optimizer(cfg: OptimizerConfig) -> Any:
    """A Keras optimizer from ``compile.optimizer``."""
    keras = import_keras()
    path = "compile.optimizer"
    classes = {name.lower(): cls for name, cls in public_classes(keras.optimizers, keras.optimizers.Optimizer).items()
               if name not in ("Optimizer", "LossScaleOptimizer", "MultiOptimizer")}
    key = cfg.type.lower()
    if key not in classes:
        raise ConfigError(f"{path}.type", f"{cfg.type!r} is not a Keras optimizer.{did_you_mean(key, classes)} "
                          f"(allowed: {allowed_list(classes, 20)})")
    args = cfg.args
    if cfg.learning_rate is not None:
        args["learning_rate"] = (make_schedule(cfg.learning_rate, f"{path}.learning_rate")
                                 if isinstance(cfg.learning_rate, ScheduleConfig) else cfg.learning_rate)
    check_args(path, cfg.type, classes[key], keras.optimizers.Optimizer, args)
    return construct(path, cfg.type, classes[key], args)


def resolve_loss(name: str) -> str:
    """Check a loss name against Keras; return it unchanged."""
    keras = import_keras()
    try:
        keras.losses.get(name)
    except (ValueError, TypeError):
        names = public_functions(keras.losses)
        raise ConfigError("compile.loss", f"{name!r} is not a Keras loss.{did_you_mean(name, names)} "
                          f"(e.g. sparse_categorical_crossentropy, categorical_crossentropy, binary_crossentropy, "
                          f"mse, mae, huber; {len(names)} in keras.losses)") from None
    return name


def resolve_metrics(cfg: CompileConfig, prep: Preprocessing | None) -> list[Any]:
    """Check metric names against Keras and against the label encoding; return what compile takes."""
    keras = import_keras()
    out: list[Any] = []
    for i, name in enumerate(cfg.metrics):
        path = f"compile.metrics[{i}]"
        if name in ("accuracy", "acc"):
            out.append(name)
            continue
        try:
            keras.metrics.get(name)
        except (ValueError, TypeError):
            names = sorted(set(public_functions(keras.metrics)) | {"accuracy", "auc", "precision", "recall",
                                                                      "f1_score"})
            raise ConfigError(path, f"{name!r} is not a Keras metric.{did_you_mean(name, names)} "
                              f"(e.g. accuracy, auc, precision, recall, f1_score, mae, mse; "
                              f"{len(names)} in keras.metrics)") from None
        if prep is not None and prep.encoding == "sparse" and name.lower() in ONE_HOT_METRICS:
            raise ConfigError(path, f"{name!r} needs one-hot labels, but loss {cfg.loss!r} uses class indices; use "
                              f"loss: categorical_crossentropy (dlcli then one-hot encodes the labels) or drop "
                              f"{name!r}")
        if name.lower() in ("f1_score", "fbeta_score"):
            # Keras reports one score per class unless averaged; a binary output needs a threshold.
            threshold = 0.5 if prep is not None and prep.encoding == "binary" else None
            cls = keras.metrics.F1Score if name.lower() == "f1_score" else keras.metrics.FBetaScore
            out.append(cls(average="macro", threshold=threshold, name=name.lower()))
            continue
        out.append(name)
    return out
