"""keras-tuner's side of ``dlcli tune``: the space as hyperparameters, the HyperModel, the Tuner,
the Oracle and the gRPC chief that serves it to worker processes.

Imports keras_tuner (and so TensorFlow) at the top: only ``tune.py`` imports this module, inside
the functions that run a search.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import math
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlcli import runtime
from dlcli.runtime import interrupts
from dlcli.config import ExperimentConfig
from dlcli.data import Dataset, prepare
from dlcli.errors import ConfigError, RunError, RunFailed
from dlcli.model import build_model
from dlcli.runs import (atomic_write_text, check_free_space, damaged, json_object, read_run_file, replacing,
                        write_csv)
from dlcli.integrations.tracking import TENSORBOARD_DIR, tensorboard_callbacks
from dlcli.train import checkpoint_bytes, fit_model, history_keys, order_keys, stop_on_nan
from dlcli.tune import TUNER_DIR, Search, TrialEvent

keras = runtime.import_keras()
import keras_tuner as kt  # noqa: E402 - after import_keras, which hides TensorFlow's start-up noise
from keras_tuner.src import config as kt_config  # noqa: E402
from keras_tuner.src import utils as kt_utils  # noqa: E402

from dlcli.tune import leases  # noqa: E402 - imports keras_tuner too

_VERBOSE = os.environ.get("DLCLI_VERBOSE") == "1"
# keras-tuner prints the traceback of every failed trial; dlcli reports the reason instead (the
# traceback stays in tuner/trial_<id>/trial.json). TensorFlow warns that each trial's new model
# retraces its functions, which is expected here. --verbose shows both.
kt_config.DEBUG = _VERBOSE
if not _VERBOSE:
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def _save_json(path: str, obj: Any) -> str:
    """keras-tuner's state files (oracle.json, trial.json, ...) written whole or not at all: keras-tuner writes
    them in place, and a search killed mid-write could not be resumed."""
    text = json.dumps(obj)
    atomic_write_text(Path(path), text)
    return text


kt_utils.save_json = _save_json  # what keras-tuner's Stateful.save calls

# The one lookup from `tune.strategy` to keras-tuner's search algorithms.
ORACLES: dict[str, type] = {
    "grid": kt.oracles.GridSearchOracle,
    "random": kt.oracles.RandomSearchOracle,
    "bayesian": kt.oracles.BayesianOptimizationOracle,
    "hyperband": kt.oracles.HyperbandOracle,
}
STATUS = {"COMPLETED": "completed", "FAILED": "failed", "INVALID": "failed", "RUNNING": "running"}


# ---------------------------------------------------------------------------------------------
# The space


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


# ---------------------------------------------------------------------------------------------
# The oracle


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


# ---------------------------------------------------------------------------------------------
# The HyperModel and the Tuner: one trial = one `dlcli train` with the trial's config


def _data_key(cfg: ExperimentConfig) -> str:
    # Everything data.prepare reads: the data section, the loss (label encoding) and the seed (splits).
    return json.dumps([cfg.data.model_dump(mode="json"), cfg.compile.loss, cfg.seed], sort_keys=True)


class Datasets:
    """Prepared data, reused by every trial with the same data settings (re-prepared only when a
    searched ``data.*`` value changes them). Holds one dataset at a time, so memory stays flat."""

    def __init__(self, cfg: ExperimentConfig, data: Dataset):
        self._key, self._data = _data_key(cfg), data

    def get(self, cfg: ExperimentConfig) -> Dataset:
        key = _data_key(cfg)
        if key != self._key:
            self._data = None
            self._data, self._key = prepare(cfg), key
        return self._data


class TrialModel(kt.HyperModel):
    """Builds a trial's model with ``model.build_model`` and fits it with ``train.fit_model``.

    ``TrialTuner.run_trial`` sets ``cfg`` (the trial's config) before keras-tuner calls ``build`` and
    ``fit`` once per execution; execution i is seeded with ``seed + i``, so execution 0 is exactly what
    ``dlcli train`` does with the trial's config. Its final weights are saved for the best model.
    """

    def __init__(self, search: Search, datasets: Datasets):
        super().__init__(name="dlcli_trial")
        self.search = search
        self.datasets = datasets
        self.begin(None, None)

    def begin(self, cfg: ExperimentConfig | None, trial_dir: Path | None) -> None:
        self.cfg, self.trial_dir = cfg, trial_dir
        self.execution = 0
        self.epochs_run = 0
        self.finals: list[dict[str, float]] = []

    def declare_hyperparameters(self, hp: kt.HyperParameters) -> None:
        declare_space(hp, self.search.tune.space)

    def build(self, hp: kt.HyperParameters) -> Any:
        keras.utils.set_random_seed(self.cfg.seed + self.execution)
        return build_model(self.cfg, self.datasets.get(self.cfg).prep)

    def fit(self, hp: kt.HyperParameters, model: Any, *args: Any, **kwargs: Any) -> Any:
        cfg = self.cfg
        hyperband = {k: kwargs[k] for k in ("epochs", "initial_epoch") if k in kwargs}
        callbacks = [stop_on_nan(), *kwargs.get("callbacks", [])]
        history = fit_model(model, cfg, self.datasets.get(cfg), callbacks, verbose=0, **hyperband)
        logs = history.history
        self.epochs_run += len(history.epoch)
        nan = next((i for i, v in enumerate(logs.get("loss", [])) if not math.isfinite(v)), None)
        if nan is not None:
            raise kt.errors.FailedTrialError(f"the loss became NaN at epoch {history.epoch[nan] + 1}; try a lower "
                                             f"learning rate")
        self.finals.append({k: float(v[-1]) for k, v in logs.items() if v})
        if self.execution == 0:
            path = self.trial_dir / "model.weights.h5"
            check_free_space(path.parent, checkpoint_bytes(model), "the trial's weights")
            with replacing(path) as tmp:
                model.save_weights(tmp)
            rows = [{"epoch": e + 1, **{k: float(logs[k][i]) for k in order_keys(logs)}}
                    for i, e in enumerate(history.epoch)]
            write_csv(self.trial_dir / "history.csv", rows)
        self.execution += 1
        return history


class TrialTuner(kt.Tuner):
    """keras-tuner's Tuner, running each trial through ``TrialModel`` and recording, in
    ``tuner/trial_<id>/dlcli.json``, what trials.csv shows beyond keras-tuner's own trial.json."""

    def __init__(self, search: Search, **kwargs: Any):
        self.spec = search  # not `self.search`: that is keras-tuner's search()
        super().__init__(**kwargs)
        if self._is_worker():
            ask = self.oracle.create_trial

            def create_trial(tuner_id: str) -> Any:
                trial = ask(tuner_id)
                if trial.status == "IDLE":  # keras-tuner's worker loop asks again at once: do not spin
                    time.sleep(0.5)
                return trial

            self.oracle.create_trial = create_trial

    def on_trial_end(self, trial: Any) -> None:
        with interrupts.deferred():  # the oracle's end of the trial and the tuner's state, saved together
            super().on_trial_end(trial)

    def _populate_initial_space(self) -> None:
        # keras-tuner also builds the model here to discover conditional hyperparameters; a dlcli
        # space has none, and one invalid default combination must fail one trial, not the search.
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def _build_hypermodel(self, hp: kt.HyperParameters) -> Any:
        model = super()._build_hypermodel(hp)
        if "tuner/trial_id" in hp.values:  # hyperband continues an earlier trial from its best epoch
            load_weights(model, self._get_checkpoint_fname(hp.values["tuner/trial_id"]))
        return model

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        hp = trial.hyperparameters.values
        values = trial_values(hp, self.spec.tune.space)
        trial_dir = Path(self.get_trial_dir(trial.trial_id))
        record: dict[str, Any] = {"trial_id": trial.trial_id, "worker": self.tuner_id, "values": values}
        start = time.monotonic()
        model: TrialModel = self.hypermodel
        try:
            model.begin(self.spec.trial_config(values), trial_dir)
            if "tuner/epochs" in hp:  # hyperband: a shortened run, or the continuation of an earlier trial
                kwargs.update(epochs=hp["tuner/epochs"], initial_epoch=hp["tuner/initial_epoch"])
            with runtime.releasing_traced_graphs():  # keeps memory flat from trial to trial
                results = super().run_trial(trial, *args, **kwargs)
        except kt.errors.FatalError:
            raise
        except Exception as exc:
            reason = str(exc) if isinstance(exc, (ConfigError, kt.errors.FailedTrialError)) else \
                f"{type(exc).__name__}: {_first_line(exc)}"
            record.update(status="failed", reason=reason, epochs_run=model.epochs_run,
                          seconds=round(time.monotonic() - start, 3))
            _write_json(trial_dir / "dlcli.json", record)
            raise kt.errors.FailedTrialError(reason) from exc
        finals = model.finals
        final = {k: sum(f[k] for f in finals) / len(finals) for k in order_keys(finals[0]) if all(k in f for f in finals)}
        record.update(status="completed", reason=None, final=final, epochs_run=model.epochs_run,
                      seconds=round(time.monotonic() - start, 3))
        _write_json(trial_dir / "dlcli.json", record)
        return results


def load_weights(model: Any, path: str | Path) -> None:
    """Load weights saved by ``save_weights``, optimizer state included (so the optimizer is built first)."""
    model.optimizer.build(model.trainable_variables)
    try:
        model.load_weights(path)
    except Exception as exc:  # missing, truncated or not HDF5: h5py and Keras raise several kinds
        raise damaged(Path(path), _first_line(exc)[:160], "restore it, or run that trial again in a new "
                      "search") from None


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def _write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


# ---------------------------------------------------------------------------------------------
# A search in a run directory


class Session:
    """One search in one run directory: keras-tuner's oracle and tuner (state in ``tuner/``), the
    trials table, and the gRPC chief for distributed tuning."""

    def __init__(self, search: Search, run_dir: Path, data: Dataset,
                 progress: Callable[[TrialEvent], None] | None, strategy: Any = None):
        self.search = search
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.datasets = Datasets(search.base_cfg, data)
        self.oracle = make_oracle(search)
        self.oracle.listener = self._on_trial
        self.total = expected_trials(search, self.oracle)
        self.workers: list[subprocess.Popen] = []
        with contextlib.redirect_stdout(io.StringIO()):  # keras-tuner prints "Reloading Tuner from ..."
            self.tuner = TrialTuner(search, oracle=self.oracle, hypermodel=TrialModel(search, self.datasets),
                                    directory=str(self.run_dir), project_name=TUNER_DIR, overwrite=False,
                                    executions_per_trial=search.tune.executions_per_trial,
                                    distribution_strategy=strategy)  # models are built in its scope

    @property
    def gave_up(self) -> str | None:
        return self.oracle.gave_up

    def run(self) -> None:
        """Run the trials in this process (or, as a worker, take them from the chief)."""
        # keras-tuner gives each trial its own TensorBoard directory and adds its HParams data.
        self.tuner.search(verbose=0, callbacks=tensorboard_callbacks(self.search.base_cfg,
                                                                     self.run_dir / TENSORBOARD_DIR))

    def serve(self, ip: str, port: int, start_workers: Callable[[int], list[subprocess.Popen]],
              wait_for_others: bool) -> None:
        """Serve the oracle over gRPC (keras-tuner's chief) until the search is over.

        ``start_workers(port)`` starts the local workers once the port is bound (port 0: any free
        port). Unless ``wait_for_others`` (workers on other machines may still connect), the search
        also ends when every local worker has exited.
        """
        import grpc
        from concurrent import futures

        from keras_tuner.src import protos
        from keras_tuner.src.distribute import oracle_chief

        self.tuner.save()  # as keras-tuner's chief does before serving
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        if wait_for_others:  # workers on other machines: each trial on a lease, taken back from a lost worker
            servicer = leases.LeasedServicer(self.oracle, leases.worker_timeout(), self._on_reclaim)
        else:  # local workers: one that dies fails the search (see below)
            servicer = oracle_chief.OracleServicer(self.oracle)
        protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
        try:
            bound = server.add_insecure_port(f"{ip}:{port}")
        except RuntimeError:
            bound = 0
        if not bound:
            raise RunError(f"cannot serve the oracle on {ip}:{port}: the port is taken or the address is not "
                           f"this machine's (KERASTUNER_ORACLE_IP / KERASTUNER_ORACLE_PORT)")
        server.start()
        if wait_for_others and self.progress is not None:
            self.progress(TrialEvent("note", reason=(
                f"serving the oracle on {ip}:{bound}; on other machines, with the run directory shared, start "
                f"workers with: KERASTUNER_TUNER_ID=<a unique id, e.g. host2-1> KERASTUNER_ORACLE_IP=<this host> "
                f"KERASTUNER_ORACLE_PORT={bound} dlcli tune {self.run_dir / 'config.yaml'} --join {self.run_dir}")))
        try:
            self.workers = start_workers(bound)
            while not (servicer.stop_triggered and oracle_chief.exit_chief(self.oracle)):
                if not wait_for_others and all(w.poll() is not None for w in self.workers):
                    break
                if wait_for_others:
                    servicer.reclaim()
                interrupts.checkpoint("serving")
                time.sleep(0.25)
            for worker in self.workers:
                worker.wait(timeout=120)
        finally:
            server.stop(grace=1)
        failed = [(i, w.returncode) for i, w in enumerate(self.workers, 1) if w.returncode]
        if failed or not servicer.stop_triggered:
            codes = ", ".join(f"worker{i}: {code}" for i, code in failed) or "all 0"
            raise RunFailed(f"the worker processes exited ({codes}) before the search finished; see "
                            f"{self.run_dir / 'workers'}/*.log; continue with --resume {self.run_dir}")

    def _on_reclaim(self, tuner_id: str, trial_id: str) -> None:
        if self.progress is not None:
            self.progress(TrialEvent("note", reason=(
                f"  worker {tuner_id} has not been heard from for {leases.worker_timeout():g} s "
                f"({leases.WORKER_TIMEOUT_VARIABLE}): trial {int(trial_id) + 1} (id {trial_id}) goes to the "
                f"next worker that asks, and runs again from its start")))

    def stop_workers(self) -> None:
        """Stop the local worker processes this search started (each by its own pid): SIGTERM, which they
        answer by exiting cleanly, then SIGKILL for any still there after 30 s."""
        for worker in self.workers:
            if worker.poll() is None:
                worker.terminate()
        for worker in self.workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()

    # -- results ---------------------------------------------------------------------------

    def _record(self, trial_id: str) -> dict[str, Any]:
        path = self.run_dir / TUNER_DIR / f"trial_{trial_id}" / "dlcli.json"
        try:
            return read_run_file(path, json_object)
        except FileNotFoundError:  # a trial that has not finished yet
            return {}

    def _row(self, trial: Any, finished: bool) -> dict[str, Any]:
        search, record = self.search, self._record(trial.trial_id)
        hp = trial.hyperparameters.values
        status = STATUS.get(trial.status, trial.status.lower())
        if status == "running" and finished:
            status = "interrupted"
        row: dict[str, Any] = {"trial_id": trial.trial_id, "status": status}
        row.update(trial_values(hp, search.tune.space))
        if search.tune.strategy == "hyperband":
            row.update(hyperband_epochs=hp.get("tuner/epochs"), continues_trial=hp.get("tuner/trial_id"))
        row[f"best_{search.objective}"] = trial.score if status == "completed" else None
        final = record.get("final", {})
        for key in history_keys(search.base_cfg, with_val=search.base_cfg.data.split.val > 0):
            row[key] = final.get(key)
        reason = record.get("reason") or (_last_line(trial.message) if status == "failed" else None)
        row.update(epochs_run=record.get("epochs_run"), seconds=record.get("seconds"), worker=record.get("worker"),
                   reason=reason)
        return row

    def ranked(self) -> list[Any]:
        """The completed trials, best first; equal scores in the order the trials were created. keras-tuner's
        own ranking keeps the order it holds the trials in, which a resumed search reloads in file-system
        order: a tie would then name another best trial than the same search run without a break."""
        done = [t for t in self.oracle.trials.values() if t.status == "COMPLETED" and t.score is not None]
        sign = -1 if self.search.direction == "max" else 1
        return sorted(done, key=lambda t: (sign * t.score, creation_order(t.trial_id)))

    def trial_rows(self, finished: bool = False) -> list[dict[str, Any]]:
        """One row per trial, completed trials best first (see ``ranked``), then the others as created."""
        done = self.ranked()
        rest = sorted((t for t in self.oracle.trials.values() if t not in done),
                      key=lambda t: creation_order(t.trial_id))
        return [self._row(t, finished) for t in done + rest]

    def write_trials(self, finished: bool = True) -> list[dict[str, Any]]:
        rows = self.trial_rows(finished)
        write_csv(self.run_dir / "trials.csv", rows)
        return rows

    def best_trial(self) -> tuple[str, dict[str, Any]] | None:
        """(trial id, values) of the best completed trial, or None."""
        ranked = self.ranked()
        if not ranked:
            return None
        return ranked[0].trial_id, trial_values(ranked[0].hyperparameters.values, self.search.tune.space)

    def weights_path(self, trial_id: str) -> Path:
        return self.run_dir / TUNER_DIR / f"trial_{trial_id}" / "model.weights.h5"

    def last_reason(self) -> str:
        for trial_id in reversed(self.oracle.end_order):
            trial = self.oracle.trials[trial_id]
            if trial.status != "COMPLETED":
                return self._record(trial_id).get("reason") or _last_line(trial.message) or "unknown"
        return "none recorded"

    def _on_trial(self, kind: str, trial: Any, tuner_id: str | None) -> None:
        values = trial_values(trial.hyperparameters.values, self.search.tune.space)
        number = int(trial.trial_id) + 1
        if kind == "start":
            event = TrialEvent("start", trial.trial_id, number, self.total, values, worker=tuner_id)
        else:
            self.write_trials(finished=False)
            record = self._record(trial.trial_id)
            row = self._row(trial, finished=False)
            best = next(iter(self.ranked()), None)
            event = TrialEvent("end", trial.trial_id, number, self.total, values, worker=record.get("worker"),
                               status=row["status"],
                               objective=self.search.objective, score=trial.score, reason=row["reason"],
                               best_score=best.score if best else None,
                               best_id=best.trial_id if best else None,
                               epochs=record.get("epochs_run"), seconds=record.get("seconds"))
        if self.progress is not None:
            self.progress(event)
        interrupts.checkpoint(f"trial_{kind}:{number}")


def run_worker(search: Search, run_dir: Path, data: Dataset, timeout: float, strategy: Any = None) -> None:
    """Run trials as a worker of the chief at KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT until it says stop.

    Raises:
        RunError: the chief did not answer for ``timeout`` seconds (it is gone, or not started yet).
    """
    import grpc
    from keras_tuner.src.distribute import oracle_client

    oracle_client.TIMEOUT = timeout  # keras-tuner's own: an hour for each call to a chief that may be gone
    address = f"{os.environ.get('KERASTUNER_ORACLE_IP')}:{os.environ.get('KERASTUNER_ORACLE_PORT')}"
    try:
        session = Session(search, run_dir, data, None, strategy=strategy)
        with leases.Heartbeat(session.tuner.oracle, address, os.environ["KERASTUNER_TUNER_ID"], timeout):
            session.run()
    except grpc.RpcError as exc:
        code = getattr(exc, "code", lambda: None)()
        raise RunError(f"the search's chief at {address} did not answer for {timeout:g} s ({getattr(code, 'name', exc)})"
                       f"; this worker stops. If the chief is gone, continue the search with: dlcli tune "
                       f"{Path(run_dir) / 'config.yaml'} --resume {run_dir}") from None


def creation_order(trial_id: str) -> float:
    """A trial id's place in the order keras-tuner created the trials (its ids count them: "00", "01", ...;
    their width follows max_trials, which a resumed search may change)."""
    return int(trial_id) if trial_id.isdigit() else math.inf


def _last_line(message: str | None) -> str | None:
    """The last line of a keras-tuner trial message (a traceback): the error itself."""
    lines = [ln.strip() for ln in (message or "").splitlines() if ln.strip()]
    return lines[-1] if lines else None
