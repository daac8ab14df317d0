"""The search space as keras-tuner hyperparameters: one per dotted config path."""

from __future__ import annotations

from typing import Any

from dlcli.tune.keras_setup import kt
from dlcli.tune.search import Search


def declare_space(hp: kt.HyperParameters, space: dict[str, Any]) -> None:
    """One keras-tuner hyperparameter per dotted path: a list -> hp.Choice, a range -> hp.Int / hp.Float."""
    for path, entry in space.items():
        if isinstance(entry, list):
            hp.Choice(path, entry)
        elif entry.is_int:
            hp.Int(path, entry.min, entry.max, step=entry.step, sampling=entry.sampling)
        else:
            top = float(entry.max)
            if entry.step is not None and entry.sampling == "linear":
                # keras-tuner counts floor((max - min) / step) + 1 values in floating point, which drops
                # max when e.g. 0.5 / 0.1 comes out as 4.999...; a nudge far below one step keeps it.
                top += entry.step * 1e-6
            hp.Float(path, float(entry.min), top, step=entry.step, sampling=entry.sampling)


def space_size(space: dict[str, Any]) -> int | None:
    """How many combinations the space holds; None if a range is continuous."""
    hp = kt.HyperParameters()
    declare_space(hp, space)
    size = 1
    for param in hp.space:
        if getattr(param, "step", 1) is None:
            return None
        size *= len(list(param.values))
    return size


def trial_values(values: dict[str, Any], space: dict[str, Any]) -> dict[str, Any]:
    """A trial's value for each space path; floats rounded to 12 digits (0.30000000000000004 -> 0.3)."""
    return {path: float(f"{values[path]:.12g}") if isinstance(values.get(path), float) else values.get(path)
            for path in space}


def expected_trials(search: Search, oracle: kt.Oracle) -> int | None:
    """How many trials the search will run at most (for "trial k of N"); None if unknown."""
    tune = search.tune
    if tune.strategy == "hyperband":
        try:  # the oracle's own bracket sizes
            count = sum(oracle._get_size(b, r) for b in range(oracle._get_num_brackets()) for r in range(b + 1))
        except AttributeError:
            count = None
    else:
        count = space_size(tune.space)
    if tune.max_trials is not None:
        count = min(count, tune.max_trials) if count else tune.max_trials
    return count
