"""Trials on lease: a search across machines survives a worker that dies in the middle of a trial.

keras-tuner 1.4.8's chief keeps a trial assigned to its worker until that worker ends it, and waits for
every worker it has seen: a worker killed mid-trial (or its machine lost) leaves the chief waiting for
ever. Here a chief that serves workers on other machines (``KERASTUNER_TUNER_ID=chief``) hands each trial
out on a lease:

- a worker renews its lease every :data:`HEARTBEAT_SECONDS` while it runs a trial (a ``GetTrial`` call
  that names it in the gRPC metadata), and asks for trials every 0.5 s while it waits;
- a worker not heard from for ``$DLCLI_WORKER_TIMEOUT`` seconds (default 60) is dropped: its trial goes
  back to keras-tuner's retry queue and the next worker that asks runs it again from the start (same
  trial id, same values, same seed, so the same scores);
- while some worker still holds a trial, the others wait instead of being told the search is over, so
  that one of them is there to take the trial back;
- a worker whose lease was taken away (it was silent too long, yet alive) learns it at its next heartbeat
  and stops, so the trial is not reported twice.

The worker's heartbeat also bounds how long a worker started by hand outlives its chief: when the
chief has not answered for ``$DLCLI_CHIEF_TIMEOUT`` seconds, the worker stops, even in the middle of a
trial.

Imports keras_tuner and grpc: only ``keras_side`` imports this module.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc

from dlcli.runtime import private
from dlcli.tune.keras_setup import kt
from dlcli.tune.workers import env_seconds

WORKER_TIMEOUT_VARIABLE = "DLCLI_WORKER_TIMEOUT"
WORKER_TIMEOUT_DEFAULT = 60
HEARTBEAT_SECONDS = 2.0
_TUNER_KEY = "dlcli-tuner-id"  # gRPC metadata: which worker a heartbeat comes from
# keras-tuner's chief/worker protocol: private modules (see dlcli.runtime.private).
protos, oracle_chief = private.keras_tuner_protos(), private.keras_tuner_oracle_chief()
TrialStatus = kt.engine.trial.TrialStatus


def worker_timeout() -> float:
    """How long a chief waits for a silent worker before its trial goes to another: $DLCLI_WORKER_TIMEOUT."""
    return env_seconds(WORKER_TIMEOUT_VARIABLE, WORKER_TIMEOUT_DEFAULT, 2 * HEARTBEAT_SECONDS,
                       f" (workers renew their lease every {HEARTBEAT_SECONDS:g} s)")


# ---------------------------------------------------------------------------------------------
# The chief


@kt.synchronized
def _create_or_wait(oracle: Any, tuner_id: str) -> Any:
    """keras-tuner's create_trial, except that "stop" becomes "wait" while another worker holds a trial."""
    trial = oracle.create_trial(tuner_id)
    if trial.status == TrialStatus.STOPPED and oracle.ongoing_trials and not oracle.gave_up:
        oracle.tuner_ids.add(tuner_id)  # create_trial removed it when it said stop
        trial.status = TrialStatus.IDLE
    return trial


@kt.synchronized
def _drop_workers(oracle: Any, tuner_ids: list[str]) -> list[tuple[str, str]]:
    """Forget these workers; put the trials they held back in the retry queue. Returns (worker, trial id)s."""
    taken = []
    for tuner_id in tuner_ids:
        oracle.tuner_ids.discard(tuner_id)
        trial = oracle.ongoing_trials.pop(tuner_id, None)
        if trial is not None:
            oracle._retry_queue.append(trial.trial_id)
            taken.append((tuner_id, trial.trial_id))
    if taken:
        oracle.save()
    return taken


class LeasedServicer(oracle_chief.OracleServicer):
    """keras-tuner's gRPC servicer, recording when each worker was last heard from (see the module)."""

    def __init__(self, oracle: Any, timeout: float, on_reclaim: Callable[[str, str], None] | None = None):
        super().__init__(oracle)
        self.timeout = timeout
        self.on_reclaim = on_reclaim
        self.seen: dict[str, float] = {}
        self.reclaimed: set[tuple[str, str]] = set()

    def CreateTrial(self, request: Any, context: Any) -> Any:
        self.seen[request.tuner_id] = time.monotonic()
        trial = _create_or_wait(self.oracle, request.tuner_id)
        if trial.status == TrialStatus.STOPPED:
            self.stop_triggered = True
        return protos.get_service().CreateTrialResponse(trial=trial.to_proto())

    def GetTrial(self, request: Any, context: Any) -> Any:
        tuner_id = dict(context.invocation_metadata() or ()).get(_TUNER_KEY)
        if tuner_id:
            if (tuner_id, request.trial_id) in self.reclaimed:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                              f"trial {request.trial_id} was given to another worker")
            self.seen[tuner_id] = time.monotonic()
        return super().GetTrial(request, context)

    def reclaim(self) -> list[tuple[str, str]]:
        """Drop the workers silent for longer than the timeout; their trials go back to the queue."""
        now = time.monotonic()
        silent = [t for t in list(self.oracle.tuner_ids) if now - self.seen.get(t, now) > self.timeout]
        if not silent:
            return []
        taken = _drop_workers(self.oracle, silent)
        for tuner_id in silent:
            self.seen.pop(tuner_id, None)
        for tuner_id, trial_id in taken:
            self.reclaimed.add((tuner_id, trial_id))
            if self.on_reclaim is not None:
                self.on_reclaim(tuner_id, trial_id)
        return taken


# ---------------------------------------------------------------------------------------------
# The worker


class Heartbeat:
    """A worker's lease renewal: a thread that tells the chief every HEARTBEAT_SECONDS that this worker still
    runs its trial. It ends the process (exit code 1, one ``error:`` line) when the chief has not answered
    for ``chief_timeout`` seconds or has given the trial to another worker."""

    def __init__(self, client: Any, address: str, tuner_id: str, chief_timeout: float):
        self.trial_id: str | None = None
        self._tuner_id, self._chief_timeout, self._address = tuner_id, chief_timeout, address
        self._stub = protos.get_service_grpc().OracleStub(grpc.insecure_channel(address))
        self._stop = threading.Event()
        create, end = client.create_trial, client.end_trial

        def create_trial(tuner_id: str) -> Any:
            trial = create(tuner_id)
            self.trial_id = trial.trial_id if trial.status == TrialStatus.RUNNING else None
            return trial

        def end_trial(trial: Any) -> None:
            self.trial_id = None  # before the call: the chief ends the lease with it
            end(trial)

        client.create_trial, client.end_trial = create_trial, end_trial
        self._thread = threading.Thread(target=self._beat, name="dlcli-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:  # noqa: PYI034
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def _beat(self) -> None:
        answered = time.monotonic()
        while not self._stop.wait(HEARTBEAT_SECONDS):
            trial_id = self.trial_id
            if trial_id is None:
                answered = time.monotonic()  # waiting for a trial: the chief's own calls time out instead
                continue
            try:
                self._stub.GetTrial(protos.get_service().GetTrialRequest(trial_id=trial_id),
                                    metadata=((_TUNER_KEY, self._tuner_id),), timeout=HEARTBEAT_SECONDS)
                answered = time.monotonic()
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.FAILED_PRECONDITION and self.trial_id == trial_id:
                    self._exit(f"the chief at {self._address} gave trial {trial_id} to another worker (it had not "
                               f"heard from this one for {WORKER_TIMEOUT_VARIABLE} seconds); this worker stops")
                if time.monotonic() - answered > self._chief_timeout:
                    self._exit(f"the search's chief at {self._address} did not answer for {self._chief_timeout:g} s "
                               f"({exc.code().name}) during trial {trial_id}; this worker stops")

    @staticmethod
    def _exit(message: str) -> None:
        # The main thread is inside the trial's fit, which a thread cannot interrupt: end the process here.
        print(f"error: {message}", file=sys.stderr, flush=True)
        os._exit(1)
