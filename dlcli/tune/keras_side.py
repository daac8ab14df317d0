"""keras-tuner's side of ``dlcli tune``: one search in one run directory (``Session``): the oracle, the
tuner, the trials table, the gRPC chief that serves the oracle to worker processes, and a worker's loop.

Imports keras_tuner (and so TensorFlow) at the top: ``dlcli.tune`` imports this module only inside the
functions that run a search (start-up speed).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import subprocess
import time
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from dlcli import runtime
from dlcli.data import Dataset
from dlcli.errors import RunError, RunFailed
from dlcli.integrations import TENSORBOARD_DIR, tensorboard_callbacks
from dlcli.runs import json_object, read_run_file, write_csv
from dlcli.runtime import interrupts, private
from dlcli.train import history_keys
from dlcli.tune.events import TrialEvent
from dlcli.tune.leases import WORKER_TIMEOUT_VARIABLE, Heartbeat, LeasedServicer, worker_timeout
from dlcli.tune.oracle import make_oracle
from dlcli.tune.search import TUNER_DIR, Search
from dlcli.tune.space import expected_trials, trial_values
from dlcli.tune.trials import Datasets, TrialModel, TrialTuner

# keras-tuner's trial status -> the status column of trials.csv.
STATUS = {"COMPLETED": "completed", "FAILED": "failed", "INVALID": "failed", "RUNNING": "running"}

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
        callbacks = tensorboard_callbacks(self.search.base_cfg, self.run_dir / TENSORBOARD_DIR)
        with runtime.collecting_only_new_objects():  # each trial's clear_session: 0.9 s less (see there)
            self.tuner.search(verbose=0, callbacks=callbacks)

    def serve(self, ip: str, port: int, start_workers: Callable[[int], list[subprocess.Popen]],
              wait_for_others: bool) -> None:
        """Serve the oracle over gRPC (keras-tuner's chief) until the search is over.

        ``start_workers(port)`` starts the local workers once the port is bound (port 0: any free
        port). Unless ``wait_for_others`` (workers on other machines may still connect), the search
        also ends when every local worker has exited.
        """
        protos, oracle_chief = private.keras_tuner_protos(), private.keras_tuner_oracle_chief()
        self.tuner.save()  # as keras-tuner's chief does before serving
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        if wait_for_others:  # workers on other machines: each trial on a lease, taken back from a lost worker
            servicer = LeasedServicer(self.oracle, worker_timeout(), self._on_reclaim)
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
                f"  worker {tuner_id} has not been heard from for {worker_timeout():g} s "
                f"({WORKER_TIMEOUT_VARIABLE}): trial {int(trial_id) + 1} (id {trial_id}) goes to the "
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
    # keras-tuner's own timeout: an hour for each call to a chief that may be gone.
    private.keras_tuner_oracle_client().TIMEOUT = timeout
    address = f"{os.environ.get('KERASTUNER_ORACLE_IP')}:{os.environ.get('KERASTUNER_ORACLE_PORT')}"
    try:
        session = Session(search, run_dir, data, None, strategy=strategy)
        with Heartbeat(session.tuner.oracle, address, os.environ["KERASTUNER_TUNER_ID"], timeout):
            session.run()
    except grpc.RpcError as exc:
        code = getattr(exc, "code", lambda: None)()
        raise RunError(f"the search's chief at {address} did not answer for {timeout:g} s "
                       f"({getattr(code, 'name', exc)})"
                       f"; this worker stops. If the chief is gone, continue the search with: dlcli tune "
                       f"{Path(run_dir) / 'config.yaml'} --resume {run_dir}") from None


def creation_order(trial_id: str) -> float:
    """A trial id's place in the order keras-tuner created the trials (its ids count them: "00", "01", ...;
    their width follows max_trials, which a resumed search may change)."""
    return int(trial_id) if trial_id.isdigit() else math.inf


def _last_line(message: str | None) -> str | None:
    """The last line of a keras-tuner trial message (a traceback): the error itself.

    Not :func:`dlcli.errors.first_line`: keras-tuner keeps a failed trial's whole formatted traceback as text,
    whose first line is "Traceback (most recent call last):"; the error comes last.
    """
    lines = [ln.strip() for ln in (message or "").splitlines() if ln.strip()]
    return lines[-1] if lines else None
