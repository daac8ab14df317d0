"""Config layers -> Keras layers: the layer class and the arguments that name other Keras objects
(activations, regularizers, initializers, constraints), all resolved through Keras's own modules."""

from __future__ import annotations

from typing import Any

from dlcli.config import LayerSpec, short_repr
from dlcli.errors import ConfigError, allowed_list, did_you_mean
from dlcli.model.keras_names import check_args, construct, public_classes, public_functions
from dlcli.runtime import import_keras


def _resolve_activation(keras: Any, path: str, value: Any) -> Any:
    if value is None or callable(value):
        return value
    names = public_functions(keras.activations)
    if not isinstance(value, str) or value not in names and value != "linear":
        raise ConfigError(path, f"{short_repr(value)} is not an activation.{did_you_mean(str(value), names)} "
                          f"(allowed: {allowed_list(names, 40)})")
    return keras.activations.get(value)


def _resolve_object(keras: Any, path: str, value: Any, module_name: str) -> Any:
    """A regularizer / initializer / constraint given as a name, ``{l1:, l2:}`` or ``{type: .., args}``."""
    module = getattr(keras, module_name)
    base = {"regularizers": keras.regularizers.Regularizer, "initializers": keras.initializers.Initializer,
            "constraints": keras.constraints.Constraint}[module_name]
    classes = public_classes(module, base)
    kind = module_name[:-1]
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return module.get(value)
        except (ValueError, TypeError):
            names = sorted(set(public_functions(module)) | set(classes))
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
        check_args(path, name, classes[name], object, args)
        return construct(path, name, classes[name], args)
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
    classes = public_classes(keras.layers, keras.layers.Layer)
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
    check_args(path, spec.type, cls, keras.layers.Layer, args)
    return construct(path, spec.type, cls, _resolve_layer_args(keras, path, args))
