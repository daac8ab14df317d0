"""keras-tuner's oracles (the search algorithms) with dlcli's hooks: progress, giving up, resumable grid order."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from dlcli.runtime import interrupts
from dlcli.tune.keras_setup import kt
from dlcli.tune.search import Search

# The one lookup from `tune.strategy` to keras-tuner's search algorithms.
ORACLES: dict[str, type] = {
    "grid": kt.oracles.GridSearchOracle,
    "random": kt.oracles.RandomSearchOracle,
    "bayesian": kt.oracles.BayesianOptimizationOracle,
    "hyperband": kt.oracles.HyperbandOracle,
}


class OracleHooks:
    """Mixed into keras-tuner's oracles (see ``make_oracle``).

    - reports each trial as it starts and ends (in the process that holds the oracle: this one, or
      the chief that serves it to the workers);
    - after too many failed trials in a row, stops handing out trials instead of raising inside
      ``end_trial``, which in distributed mode would kill a gRPC call and leave the workers waiting;
    - restores grid search's order of tried combinations on reload, which keras-tuner 1.4.8 does not
      save (a resumed grid search would otherwise stop at once).
    """

    listener: Callable[[str, Any, str | None], None] | None = None
    gave_up: str | None = None

    # A trial's start and end each write its trial.json and oracle.json: a signal waits until both are
    # written (and the oracle's lock released), or a resumed search would skip or repeat the trial.
    def create_trial(self, tuner_id: str) -> Any:
        with interrupts.deferred():
            return self._create_trial(tuner_id)

    def end_trial(self, trial: Any) -> None:
        with interrupts.deferred():
            self._end_trial(trial)

    @kt.synchronized
    def _create_trial(self, tuner_id: str) -> Any:
        known = tuner_id in self.ongoing_trials
        trial = super().create_trial(tuner_id)
        if trial.status == "RUNNING" and not known and self.listener is not None:
            self.listener("start", trial, tuner_id)
        return trial

    @kt.synchronized
    def _end_trial(self, trial: Any) -> None:
        super().end_trial(trial)
        if self.listener is not None:
            self.listener("end", self.trials[trial.trial_id], None)

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        if self.gave_up:
            return {"status": "STOPPED", "values": None}
        return super().populate_space(trial_id)

    def _check_consecutive_failures(self) -> None:
        failed = 0
        for trial_id in reversed(self.end_order):
            if self.trials[trial_id].status != "FAILED":
                break
            failed += 1
        if failed >= self.max_consecutive_failed_trials:
            self.gave_up = (f"{failed} trials in a row failed (tune.max_consecutive_failed_trials: "
                            f"{self.max_consecutive_failed_trials})")

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if isinstance(self, kt.oracles.GridSearchOracle) and self.trials:
            def compare(a: str, b: str) -> int:
                return self._compare(self.trials[a].hyperparameters.values, self.trials[b].hyperparameters.values)

            ordered = sorted(self.trials, key=functools.cmp_to_key(compare))
            self._ordered_ids = type(self._ordered_ids)()
            for trial_id in ordered:
                self._ordered_ids.insert(trial_id)
            self._populate_next = list(ordered)


def make_oracle(search: Search) -> kt.Oracle:
    """keras-tuner's oracle for ``tune.strategy``, seeded with the config seed."""
    tune = search.tune
    base = ORACLES[tune.strategy]
    cls = type(f"Dlcli{base.__name__}", (OracleHooks, base), {})
    # keras-tuner reads seed 0 as "no seed" and draws a random one; 0 is passed on as 2**31 instead.
    options = {"objective": kt.Objective(search.objective, search.direction), "seed": search.cfg.seed or 2**31,
               "max_consecutive_failed_trials": tune.max_consecutive_failed_trials}
    if tune.strategy == "hyperband":
        oracle = cls(max_epochs=search.base_cfg.fit.epochs, factor=tune.factor, **options)
        oracle.max_trials = tune.max_trials  # an optional cap, checked by Oracle.create_trial
    else:
        oracle = cls(max_trials=tune.max_trials, **options)
    oracle.verbose = 0  # dlcli reports progress itself
    return oracle
