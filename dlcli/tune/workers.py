"""The processes of a search on several cores or machines: the chief's address, the workers it starts on this
machine (``--workers N``), and a worker's side (``--join RUN_DIR``). keras-tuner serves the oracle over gRPC
(``keras_side.Session.serve``) and runs a worker's trials (``keras_side.run_worker``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from dlcli import runtime
from dlcli.errors import RunError
from dlcli.runs import load_run_info, make_dir, open_for_append
from dlcli.runtime import interrupts
from dlcli.train import prepare_experiment
from dlcli.tune.search import Search, check_same_search

# Set by a chief for the workers it starts: its pid, so they end with it (a worker started by hand has none).
CHIEF_PID_VARIABLE = "DLCLI_CHIEF_PID"
# How long a worker waits for a chief that does not answer before it gives up (seconds).
CHIEF_TIMEOUT_VARIABLE = "DLCLI_CHIEF_TIMEOUT"
CHIEF_TIMEOUT_DEFAULT = 120


def env_seconds(variable: str, default: float, above: float, why: str = "") -> float:
    """A number of seconds from the environment variable ``variable`` (``default`` when unset or empty).

    Raises:
        RunError: it is not a number above ``above``; the message adds ``why`` and an example.
    """
    text = os.environ.get(variable) or str(default)
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > above:
        raise RunError(f"{variable}={text!r}: expected a number of seconds above {above:g}{why}, e.g. {default}")
    return seconds


def chief_timeout() -> float:
    """How long a worker waits for an answer from its chief: $DLCLI_CHIEF_TIMEOUT seconds (default 120)."""
    return env_seconds(CHIEF_TIMEOUT_VARIABLE, CHIEF_TIMEOUT_DEFAULT, 0)


def chief_address() -> tuple[str, int] | None:
    """(ip, port) to serve the oracle on when this process is a keras-tuner chief (KERASTUNER_TUNER_ID
    contains "chief"), else None."""
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "")
    if not tuner_id:
        return None
    if "chief" not in tuner_id:
        raise RunError(f"KERASTUNER_TUNER_ID={tuner_id} makes this process a keras-tuner worker: start it with "
                       f"--join RUN_DIR (the run directory of the chief's search)")
    ip, port = os.environ.get("KERASTUNER_ORACLE_IP"), os.environ.get("KERASTUNER_ORACLE_PORT")
    if not ip or not port or not port.isdigit():
        raise RunError("a keras-tuner chief (KERASTUNER_TUNER_ID=chief) needs KERASTUNER_ORACLE_IP and a numeric "
                       "KERASTUNER_ORACLE_PORT: the address to serve the oracle on, e.g. 0.0.0.0 and 8000")
    return ip, int(port)


def start_workers(run_dir: Path, count: int, ip: str, port: int, threads: int) -> list[subprocess.Popen]:
    """Start ``count`` ``dlcli tune --join`` processes on this machine, logging to ``workers/``."""
    logs = make_dir(run_dir / "workers")
    procs = []
    for i in range(1, count + 1):
        env = {**os.environ, "KERASTUNER_TUNER_ID": f"worker{i}", "KERASTUNER_ORACLE_IP": ip,
               "KERASTUNER_ORACLE_PORT": str(port), CHIEF_PID_VARIABLE: str(os.getpid())}
        command = [sys.executable, "-m", "dlcli.cli", "tune", str(run_dir / "config.yaml"), "--join", str(run_dir),
                   "--threads", str(threads)]
        with open_for_append(logs / f"worker{i}.log", "ab") as log:
            procs.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL))
    return procs


def join(search: Search, run_dir: Path, threads: int | None = None) -> None:
    """Run trials as a keras-tuner worker of the search in ``run_dir`` until its chief says stop.

    The chief is at KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT; KERASTUNER_TUNER_ID names this worker. A worker
    that a local chief started (``--workers``) ends with it, even when the chief is killed with ``kill -9``;
    one started by hand gives up when the chief does not answer for DLCLI_CHIEF_TIMEOUT seconds.

    Raises:
        RunError: the environment does not name a chief and a worker, or the chief stopped answering.
    """
    chief_pid = os.environ.get(CHIEF_PID_VARIABLE, "")
    if chief_pid.isdigit():
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the chief, which stops its workers
        interrupts.exit_on_sigterm()  # how the chief stops them: cleanly, no temporary file left
        interrupts.exit_with_parent(int(chief_pid))
    missing = [v for v in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
               if not os.environ.get(v)]
    if missing:
        raise RunError(f"--join needs {', '.join(missing)} set: the chief's address and this worker's id "
                       f"(--workers sets them; see README, 'Hyperparameter search')")
    if "chief" in os.environ["KERASTUNER_TUNER_ID"]:
        raise RunError("KERASTUNER_TUNER_ID contains 'chief', which makes a process the chief; give workers "
                       "other ids, e.g. worker1")
    timeout = chief_timeout()
    info = load_run_info(run_dir)
    if info.get("command") != "tune":
        raise RunError(f"{run_dir} is a `{info.get('command')}` run; --join needs the run directory of a search")
    check_same_search(search, run_dir)
    runtime.limit_threads(threads)
    exp = prepare_experiment(search.base_cfg)
    from dlcli.tune.keras_side import run_worker  # lazy: imports keras_tuner and TensorFlow (start-up speed)

    run_worker(search, run_dir, exp.data, timeout, strategy=exp.strategy)
