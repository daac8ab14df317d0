"""The model itself: config -> compiled ``keras.Sequential`` (a functional model when a table's categorical
columns need a one-hot input stage), its output checked against the labels, and its summary as text."""

from __future__ import annotations

import re
from typing import Any

from dlcli.config import ExperimentConfig
from dlcli.data import Preprocessing
from dlcli.errors import ConfigError, allowed_list
from dlcli.model.compile import make_optimizer, resolve_loss, resolve_metrics
from dlcli.model.layers import make_layer
from dlcli.runtime import import_keras


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
