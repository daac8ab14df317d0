"""The search a config describes (its ``tune:`` section), checked against the rest of the config before any
trial runs or any file is written; and the check that a resumed or joined search is the same search.

The lowest module of ``dlcli.tune``: the session, the workers and keras-tuner's side all import it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlcli import runtime
from dlcli.config import (ExperimentConfig, RangeSpec, TuneConfig, format_path, read_yaml, resolve_raw, set_by_path,
                          short_repr, validate_config)
from dlcli.errors import ConfigError, allowed_list, did_you_mean
from dlcli.train import history_keys

# Settings a resumed (or joined) search may change; anything else must match the search it continues.
MAY_CHANGE_ON_RESUME = ("name", "device", "tune.max_trials", "distribution", "tracking", "fit.tensorboard")
TUNER_DIR = "tuner"
EXAMPLE_SECTION = "tune: {strategy: grid, objective: val_accuracy, space: {model.layers.0.units: [32, 64, 128]}}"


@dataclass
class Search:
    """A validated search: the config as given, and what every trial starts from."""

    cfg: ExperimentConfig  # with its tune section
    base: dict[str, Any]  # the resolved config without `tune`: each trial replaces some of its values
    base_cfg: ExperimentConfig
    direction: str  # "min" or "max"

    @property
    def tune(self) -> TuneConfig:
        assert self.cfg.tune is not None
        return self.cfg.tune

    @property
    def objective(self) -> str:
        return self.tune.objective.name

    def trial_config(self, values: dict[str, Any]) -> ExperimentConfig:
        """The config of the trial that uses ``values`` (dotted path -> value); ConfigError if it is invalid."""
        raw = copy.deepcopy(self.base)
        for path, value in values.items():
            set_by_path(raw, path, value, where="tune.space", create=False)
        return validate_config(raw)


# ---------------------------------------------------------------------------------------------
# Validation: everything is checked before any trial runs or any file is written.


def load_search(path: str | Path, overrides: Sequence[str] = (), **fields: Any) -> Search:
    """Read a config with a ``tune:`` section, apply overrides and check the search against the config.

    Raises:
        ConfigError: naming the YAML path, e.g. ``tune.space.model.layers.9.units``.
    """
    path = Path(path)
    raw = read_yaml(path)
    if isinstance(raw, dict) and raw.get("tune") is None:
        raise ConfigError("tune", f"{path} has no `tune:` section; add one that lists the values to search, "
                          f"e.g. {EXAMPLE_SECTION} (see configs/digits_mlp_tune.yaml)")
    try:
        cfg = validate_config(resolve_raw(raw, path, overrides, **fields))
    except ConfigError as exc:
        # A space key is a dotted path itself: name it as written, tune.space.model.layers.0.units.
        where = re.sub(r"^tune\.space\['([^']*)'\]", r"tune.space.\1", exc.path)
        raise ConfigError(where, exc.message) from None
    runtime.select_backend(cfg.backend, cfg.device, cfg.deterministic)  # before keras-tuner imports Keras
    return check_search(cfg)


def check_search(cfg: ExperimentConfig) -> Search:
    """Check the tune section against the rest of the config: strategy needs, paths, values, objective."""
    tune = cfg.tune
    if tune is None:
        raise ConfigError("tune", f"the config has no `tune:` section, e.g. {EXAMPLE_SECTION}")
    base = cfg.to_yaml_dict()
    base.pop("tune")
    if tune.strategy in ("random", "bayesian") and tune.max_trials is None:
        raise ConfigError("tune.max_trials", f"required for strategy {tune.strategy}: how many points to try, "
                          f"e.g. max_trials: 20")
    for path, entry in tune.space.items():
        where = f"tune.space.{path}"
        _check_path(base, path, where)
        if isinstance(entry, RangeSpec):
            if tune.strategy == "grid" and not entry.is_discrete:
                raise ConfigError(where, f"grid search cannot list every value of the continuous range "
                                  f"{entry.min}..{entry.max}: give `step` or a list of values (or use "
                                  f"strategy random or bayesian)")
            values = [entry.min, entry.max]
        else:
            values = entry
        for value in values:
            _check_value(base, path, value, where)
        if tune.strategy == "hyperband" and path == "fit.epochs":
            raise ConfigError(where, "hyperband chooses the epochs of each trial itself (up to fit.epochs); "
                              "remove fit.epochs from the space")
    base_cfg = validate_config(base)
    return Search(cfg=cfg, base=base, base_cfg=base_cfg, direction=_direction(cfg, base_cfg))


def _check_path(base: dict[str, Any], path: str, where: str) -> None:
    """The path must name one existing value (defaults included) of the config."""
    node: Any = base
    parts = path.split(".")
    for depth, key in enumerate(parts):
        parent = ".".join(parts[:depth])
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            if isinstance(node, list):
                what = f"{parent} has {len(node)} item{'s' if len(node) != 1 else ''}" + (
                    f" (indices 0 to {len(node) - 1})" if node else "")
            elif isinstance(node, dict):
                keys = list(node)
                what = f"{parent or 'the config'} has no key {key!r}.{did_you_mean(key, keys)} (keys: " \
                       f"{allowed_list(keys)})"
            else:
                what = f"{parent} is {'not set (null)' if node is None else short_repr(node)}, which has no keys; " \
                       f"set it in the config first"
            raise ConfigError(where, f"{'.'.join(parts[:depth + 1])} does not exist in the config: {what}")
    if isinstance(node, (dict, list)):
        inner = next(iter(node), "type") if isinstance(node, dict) else "0"
        raise ConfigError(where, f"{path} is a {'mapping' if isinstance(node, dict) else 'list'}; search one "
                          f"value inside it, e.g. {path}.{inner}")


def _check_value(base: dict[str, Any], path: str, value: Any, where: str) -> None:
    """Each value must be valid on its own (types, bounds); combinations are checked per trial."""
    raw = copy.deepcopy(base)
    set_by_path(raw, path, value, where="tune.space", create=False)
    try:
        validate_config(raw)
    except ConfigError as exc:
        raise ConfigError(where, f"{short_repr(value)} is not a valid value here: {exc}") from None


def _direction(cfg: ExperimentConfig, base_cfg: ExperimentConfig) -> str:
    """The objective's direction; the objective must be a key the training history will have."""
    objective = cfg.tune.objective  # type: ignore[union-attr]
    has_val = base_cfg.data.split.val > 0
    keys = history_keys(base_cfg, with_val=has_val)
    if objective.name not in keys:
        hint = " (there is no validation split: data.split.val is 0)" if not has_val else ""
        raise ConfigError("tune.objective", f"{objective.name!r} is not a metric this run produces{hint}."
                          f"{did_you_mean(objective.name, keys)} (available: {', '.join(keys)})")
    if objective.direction is not None:
        return objective.direction
    runtime.import_keras()
    # lazy: imports keras_tuner and so TensorFlow (start-up speed: `dlcli tune --help` and config checks)
    from keras_tuner.engine.metrics_tracking import infer_metric_direction

    direction = infer_metric_direction(objective.name)
    if direction is None:
        raise ConfigError("tune.objective", f"cannot tell whether {objective.name!r} should be low or high; write "
                          f"objective: {{name: {objective.name}, direction: max}} (or min)")
    return direction


def check_same_search(search: Search, run_dir: Path) -> None:
    """A resumed or joined search must use the config its run started with (bar MAY_CHANGE_ON_RESUME)."""
    saved = validate_config(read_yaml(run_dir / "config.yaml")).to_yaml_dict()
    given = search.cfg.to_yaml_dict()
    for path in MAY_CHANGE_ON_RESUME:
        for data in (saved, given):
            _drop(data, path)
    difference = _first_difference(saved, given, [])
    if difference is not None:
        where, old, new = difference
        raise ConfigError(format_path(where), f"is {short_repr(new)} here but {short_repr(old)} in the search in "
                          f"{run_dir}; a resumed search keeps its config (only {', '.join(MAY_CHANGE_ON_RESUME)} "
                          f"may change)")


def _drop(data: dict[str, Any], dotted: str) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        data = data.get(key) or {}
    data.pop(last, None)


def _first_difference(a: Any, b: Any, where: list) -> tuple[list, Any, Any] | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            found = _first_difference(a.get(key), b.get(key), [*where, key])
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            found = _first_difference(x, y, [*where, i])
            if found:
                return found
        return None
    return None if a == b else (where, a, b)
