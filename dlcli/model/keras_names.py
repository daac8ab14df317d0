"""Keras's own modules as the registry of names: the public classes and functions a config may name, and
constructing one with the config's arguments, every failure a ConfigError naming the YAML path."""

from __future__ import annotations

import inspect
from typing import Any

from dlcli.errors import ConfigError, allowed_list, did_you_mean


def public_classes(module: Any, base: type) -> dict[str, type]:
    return {name: obj for name, obj in vars(module).items()
            if not name.startswith("_") and inspect.isclass(obj) and issubclass(obj, base)}


def public_functions(module: Any) -> list[str]:
    return [name for name, obj in vars(module).items()
            if not name.startswith("_") and inspect.isfunction(obj) and name not in ("get", "serialize", "deserialize")]


def _accepted_args(cls: type, base: type) -> set[str] | None:
    """Keyword arguments ``cls`` accepts; None if it takes arbitrary ones."""
    names: set[str] = set()
    for klass in (cls, base):
        params = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"}
    return names


def check_args(path: str, what: str, cls: type, base: type, args: dict[str, Any]) -> None:
    accepted = _accepted_args(cls, base)
    for key in args:
        if accepted is not None and key not in accepted:
            raise ConfigError(f"{path}.{key}", f"{what} has no argument {key!r}.{did_you_mean(key, accepted)} "
                              f"(arguments: {allowed_list(accepted, 20)})")


def construct(path: str, what: str, cls: type, args: dict[str, Any]) -> Any:
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
