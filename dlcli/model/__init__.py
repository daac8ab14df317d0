"""Config -> compiled ``keras.Sequential``: the one builder that ``train`` and ``tune`` share.

Every name in the config (layer, activation, regularizer, optimizer, schedule, loss, metric) is
resolved through Keras's own modules, so every Keras layer works and the lists of allowed names
in error messages come from Keras itself.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from dlcli.config import CompileConfig, ExperimentConfig, LayerSpec, OptimizerConfig, ScheduleConfig, short_repr
from dlcli.data import Preprocessing
from dlcli.errors import ConfigError, allowed_list, did_you_mean
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


def _public_classes(module: Any, base: type) -> dict[str, type]:
    return {name: obj for name, obj in vars(module).items()
            if not name.startswith("_") and inspect.isclass(obj) and issubclass(obj, base)}


def _public_functions(module: Any) -> list[str]:
    return [name for name, obj in vars(module).items()
            if not name.startswith("_") and inspect.isfunction(obj) and name not in ("get", "serialize", "deserialize")]


def _accepted_args(cls: type, base: type) -> set[str] | None:
    """Keyword arguments ``cls`` accepts; None if it takes arbitrary ones."""
    names: set[str] = set()
    for klass in (cls, base):
        params = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"}
    return names


def _check_args(path: str, what: str, cls: type, base: type, args: dict[str, Any]) -> None:
    accepted = _accepted_args(cls, base)
    for key in args:
        if accepted is not None and key not in accepted:
            raise ConfigError(f"{path}.{key}", f"{what} has no argument {key!r}.{did_you_mean(key, accepted)} "
                              f"(arguments: {allowed_list(accepted, 20)})")


def _construct(path: str, what: str, cls: type, args: dict[str, Any]) -> Any:
    try:
        return cls(**args)
    except TypeError as exc:
        text = str(exc)
        if "required" in text and "argument" in text:
            missing = text.split(":")[-1].strip()
            raise ConfigError(path, f"{what} needs the argument(s) {missing}") from None
        raise ConfigError(path, f"{what}: {text}") from None
    except (ValueError, KeyError) as exc:
        raise ConfigError(path, f"{what}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Layer arguments that name other Keras objects


def _resolve_activation(keras: Any, path: str, value: Any) -> Any:
    if value is None or callable(value):
        return value
    names = _public_functions(keras.activations)
    if not isinstance(value, str) or value not in names and value != "linear":
        raise ConfigError(path, f"{short_repr(value)} is not an activation.{did_you_mean(str(value), names)} "
                          f"(allowed: {allowed_list(names, 40)})")
    return keras.activations.get(value)


def _resolve_object(keras: Any, path: str, value: Any, module_name: str) -> Any:
    """A regularizer / initializer / constraint given as a name, ``{l1:, l2:}`` or ``{type: .., args}``."""
    module = getattr(keras, module_name)
    base = {"regularizers": keras.regularizers.Regularizer, "initializers": keras.initializers.Initializer,
            "constraints": keras.constraints.Constraint}[module_name]
    classes = _public_classes(module, base)
    kind = module_name[:-1]
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return module.get(value)
        except (ValueError, TypeError):
            names = sorted(set(_public_functions(module)) | set(classes))
            raise ConfigError(path, f"{value!r} is not a Keras {kind}.{did_you_mean(value, names)} "
                              f"(allowed: {allowed_list(names, 30)})") from None
    if isinstance(value, dict):
        args = dict(value)
        name = args.pop("type", None)
        if name is None and module_name == "regularizers":
            name = "L1L2"  # {l1: .., l2: ..}, the course-book spelling
        if not isinstance(name, str) or name not in classes:
            names = list(classes)
            hint = did_you_mean(str(name), names) if name is not None else " give type: <class>"
            raise ConfigError(f"{path}.type", f"{short_repr(name)} is not a Keras {kind} class.{hint} "
                              f"(allowed: {allowed_list(names, 30)})")
        _check_args(path, name, classes[name], object, args)
        return _construct(path, name, classes[name], args)
    raise ConfigError(path, f"expected a {kind} name or a mapping, got {short_repr(value)}")


def _resolve_layer_args(keras: Any, path: str, args: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in args.items():
        where = f"{path}.{key}"
        if key == "activation":
            value = _resolve_activation(keras, where, value)
        elif key.endswith("_regularizer"):
            value = _resolve_object(keras, where, value, "regularizers")
        elif key.endswith("_initializer"):
            value = _resolve_object(keras, where, value, "initializers")
        elif key.endswith("_constraint"):
            value = _resolve_object(keras, where, value, "constraints")
        out[key] = value
    return out


def make_layer(spec: LayerSpec, index: int) -> Any:
    """Build one Keras layer from its spec; errors name ``model.layers[index]``."""
    keras = import_keras()
    path = f"model.layers[{index}]"
    classes = _public_classes(keras.layers, keras.layers.Layer)
    if spec.type in ("Input", "InputLayer"):
        raise ConfigError(f"{path}.type", f"{spec.type!r}: the input shape comes from the data; remove this layer "
                          f"(use data.reshape to change the shape)")
    if spec.type in ("Lambda", "TFSMLayer"):
        raise ConfigError(f"{path}.type", f"{spec.type!r} runs arbitrary code and cannot be built from YAML")
    if spec.type not in classes:
        raise ConfigError(f"{path}.type", f"{spec.type!r} is not a Keras layer.{did_you_mean(spec.type, classes)} "
                          f"(e.g. Dense, Conv2D, MaxPooling2D, Dropout, BatchNormalization, Flatten; "
                          f"{len(classes)} in keras.layers)")
    cls = classes[spec.type]
    args = spec.args
    _check_args(path, spec.type, cls, keras.layers.Layer, args)
    return _construct(path, spec.type, cls, _resolve_layer_args(keras, path, args))


# ---------------------------------------------------------------------------------------------
# Compile settings


def make_schedule(cfg: ScheduleConfig, path: str) -> Any:
    """A ``keras.optimizers.schedules`` object from ``{type: exponential, ...}``."""
    keras = import_keras()
    classes = _public_classes(keras.optimizers.schedules, keras.optimizers.schedules.LearningRateSchedule)
    classes.pop("LearningRateSchedule", None)
    name = SCHEDULE_ALIASES.get(cfg.type, cfg.type)
    if name not in classes:
        allowed = list(SCHEDULE_ALIASES) + list(classes)
        raise ConfigError(f"{path}.type", f"{cfg.type!r} is not a learning-rate schedule."
                          f"{did_you_mean(cfg.type, allowed)} (allowed: {allowed_list(allowed, 20)})")
    _check_args(path, name, classes[name], object, cfg.args)
    return _construct(path, name, classes[name], cfg.args)


def make_optimizer(cfg: OptimizerConfig) -> Any:
    """A Keras optimizer from ``compile.optimizer``."""
    keras = import_keras()
    path = "compile.optimizer"
    classes = {name.lower(): cls for name, cls in _public_classes(keras.optimizers, keras.optimizers.Optimizer).items()
               if name not in ("Optimizer", "LossScaleOptimizer", "MultiOptimizer")}
    key = cfg.type.lower()
    if key not in classes:
        raise ConfigError(f"{path}.type", f"{cfg.type!r} is not a Keras optimizer.{did_you_mean(key, classes)} "
                          f"(allowed: {allowed_list(classes, 20)})")
    args = cfg.args
    if cfg.learning_rate is not None:
        args["learning_rate"] = (make_schedule(cfg.learning_rate, f"{path}.learning_rate")
                                 if isinstance(cfg.learning_rate, ScheduleConfig) else cfg.learning_rate)
    _check_args(path, cfg.type, classes[key], keras.optimizers.Optimizer, args)
    return _construct(path, cfg.type, classes[key], args)


def resolve_loss(name: str) -> str:
    """Check a loss name against Keras; return it unchanged."""
    keras = import_keras()
    try:
        keras.losses.get(name)
    except (ValueError, TypeError):
        names = _public_functions(keras.losses)
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
            names = sorted(set(_public_functions(keras.metrics)) | {"accuracy", "auc", "precision", "recall",
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


# ---------------------------------------------------------------------------------------------
# The model


def build_model(cfg: ExperimentConfig, prep: Preprocessing) -> Any:
    """Build and compile the ``keras.Sequential`` the config describes, for data shaped like ``prep``.

    Raises:
        ConfigError: a name Keras does not know, a wrong layer argument, a layer that does not fit
            its input, or an output that does not fit the labels.
    """
    keras = import_keras()
    inputs = keras.Input(shape=tuple(prep.input_shape))
    model = keras.Sequential(name=_model_name(cfg.name)) if prep.onehot is None else None
    if model is not None:
        model.add(inputs)
        hidden = None
    else:  # a table with categorical columns: a functional model whose first layers one-hot encode them
        hidden = input_stage(keras, prep.onehot, inputs)
    loss = resolve_loss(cfg.compile.loss)  # first: the label encoding checked below depends on it
    shape: tuple = (None, *prep.input_shape) if hidden is None else tuple(hidden.shape)
    for index, spec in enumerate(cfg.model.layers):
        layer = make_layer(spec, index)
        try:
            if model is not None:
                model.add(layer)
            else:
                hidden = layer(hidden)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"model.layers[{index}]", f"{spec.type} cannot take input of shape {shape}: "
                              f"{_first_line(exc)}") from None
        except Exception as exc:
            if "ResourceExhausted" not in type(exc).__name__ and "OutOfMemory" not in type(exc).__name__:
                raise
            raise ConfigError(f"model.layers[{index}]", f"{spec.type} is too large to fit in memory "
                              f"({_first_line(exc)[:120]}); use fewer units or filters") from None
        shape = tuple(model.output_shape) if model is not None else tuple(hidden.shape)
    check_output(cfg, prep, shape)
    if prep.target_std is not None:
        # data.target_scale: standard. The layers learn a standardised target; this maps it back, so the
        # loss, the metrics and the predictions are in the target's own units.
        rescale = keras.layers.Rescaling(scale=prep.target_std, offset=prep.target_mean, name="target_scale")
        if model is not None:
            model.add(rescale)
        else:
            hidden = rescale(hidden)
    if model is None:
        model = keras.Model(inputs, hidden, name=_model_name(cfg.name))
    metrics = resolve_metrics(cfg.compile, prep)
    model.compile(optimizer=make_optimizer(cfg.compile.optimizer), loss=loss, metrics=metrics)
    return model


def input_stage(keras: Any, plan: dict[str, Any], inputs: Any) -> Any:
    """The layers in front of the config's: the table's categorical codes become one-hot inputs.

    The encoded row is ``plan["dense"]`` numbers, then one code per categorical column (an index into one
    shared range of ``plan["tokens"]``, see ``dlcli.data.columns.layout``). Built from stock Keras layers only
    (Cropping1D selects a range of the row, CategoryEncoding one-hot encodes), so the saved model loads in
    safe mode on every backend; the last token means "no input" (a value with no slot) and is dropped.
    """
    layers = keras.layers
    width, dense, tokens = plan["dense"] + plan["codes"], plan["dense"], plan["tokens"]
    row = layers.Reshape((width, 1), name="table_row")(inputs)
    codes = layers.Reshape((plan["codes"],), name="category_codes")(
        layers.Cropping1D((dense, 0), name="categorical_part")(row))
    hot = layers.CategoryEncoding(num_tokens=tokens, output_mode="multi_hot", name="one_hot")(codes)
    hot = layers.Reshape((tokens - 1,), name="one_hot_inputs")(
        layers.Cropping1D((0, 1), name="drop_no_input")(layers.Reshape((tokens, 1), name="one_hot_row")(hot)))
    if dense == 0:
        return hot
    numbers = layers.Reshape((dense,), name="dense_inputs")(
        layers.Cropping1D((0, plan["codes"]), name="dense_part")(row))
    return layers.Concatenate(name="inputs")([numbers, hot])


def check_output(cfg: ExperimentConfig, prep: Preprocessing, output_shape: tuple) -> None:
    """The last layer must produce what the loss compares with the labels."""
    last = len(cfg.model.layers) - 1
    path = f"model.layers[{last}]"
    if len(output_shape) != 2:
        raise ConfigError(path, f"the model's output has shape {output_shape}, but each sample needs one vector of "
                          f"outputs; add Flatten or GlobalAveragePooling2D before the last Dense layer")
    units = output_shape[-1]
    if prep.task == "classification":
        classes = len(prep.class_names or [])
        wanted = 1 if prep.encoding == "binary" else classes
        if units != wanted:
            names = allowed_list(prep.class_names or [], 10)
            why = ("a binary loss needs one sigmoid output" if prep.encoding == "binary"
                   else f"the data has {classes} classes ({names})")
            raise ConfigError(f"{path}.units", f"the model outputs {units} value(s) per sample, but {why}; set "
                              f"units: {wanted} in the last layer")
    elif units != 1:
        raise ConfigError(f"{path}.units", f"the model outputs {units} values per sample, but the regression target "
                          f"has 1; set units: 1 in the last layer")


def _model_name(name: str | None) -> str:
    # TensorFlow's name scopes take ASCII only: a run named café or 模型 gets a model named caf_ or m___.
    safe = "".join(c if (c.isascii() and c.isalnum()) or c == "_" else "_" for c in (name or "model"))
    return safe if safe[:1].isalpha() else f"m_{safe}"


def _first_line(exc: BaseException) -> str:
    """The line of a Keras error that says what went wrong (not 'Exception encountered ...')."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(("Exception encountered", "Arguments received", "•"))]
    return (useful or lines or [type(exc).__name__])[0]


def summary_text(model: Any) -> str:
    """The layer table with output shapes and parameter counts, as plain text."""
    lines: list[str] = []
    model.summary(print_fn=lambda line, *a, **k: lines.append(line), line_length=90)
    return "\n".join(lines) + "\n"
