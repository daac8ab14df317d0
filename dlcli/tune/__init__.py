"""Tune: the config's search space -> keras-tuner trials -> trials.csv, the best config and model.

A trial is a training run with some config values replaced: its config is the experiment's
config with ``set_by_path`` applied and validated again, its data come from ``data.prepare``
(once, unless the search changes data settings) and its model from ``model.build_model``, fitted
by ``train.fit_model``; so ``dlcli train best_config.yaml`` reproduces the best trial.
keras-tuner chooses the values, runs the trials and keeps its state in ``tuner/`` inside the run
directory, which is what ``--resume`` reads. ``--workers N`` uses keras-tuner's own distributed
mode: this process serves the oracle over gRPC and N worker processes run the trials.

This module validates the search and writes the results; ``tuner.py`` holds the keras-tuner
classes (and imports TensorFlow). No printing: progress goes to a callback that ``cli.py`` prints.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlcli import runtime
from dlcli.runtime import interrupts
from dlcli.config import (ExperimentConfig, RangeSpec, TuneConfig, dump_yaml, format_path, read_yaml, resolve_raw,
                          set_by_path, short_repr, validate_config)
from dlcli.errors import ConfigError, RunError, RunFailed, StorageError, allowed_list, did_you_mean
from dlcli.runs import (Run, atomic_write_text, json_object, load_run_info, make_dir, open_for_append,
                        read_history, read_run_file, resumable_info, storage_error, write_csv)
from dlcli.train import RunInterrupted, history_keys, prepare_experiment, run_info

# Settings a resumed (or joined) search may change; anything else must match the search it continues.
MAY_CHANGE_ON_RESUME = ("name", "device", "tune.max_trials", "distribution", "tracking", "fit.tensorboard")
TUNER_DIR = "tuner"
# Set by a chief for the workers it starts: its pid, so they end with it (a worker started by hand has none).
CHIEF_PID_VARIABLE = "DLCLI_CHIEF_PID"
# How long a worker waits for a chief that does not answer before it gives up (seconds).
CHIEF_TIMEOUT_VARIABLE = "DLCLI_CHIEF_TIMEOUT"
CHIEF_TIMEOUT_DEFAULT = 120
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


# ---------------------------------------------------------------------------------------------
# Progress and results


def format_value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@dataclass
class TrialEvent:
    """A trial started or ended; ``line()`` is what the console shows."""

    kind: str  # "start", "end", or "note" (a line about the whole search, in ``reason``)
    trial_id: str = ""  # keras-tuner's id, as in trials.csv and tuner/trial_<id>
    number: int = 0  # 1, 2, ... in the order the trials were created
    total: int | None = None
    values: dict[str, Any] = field(default_factory=dict)
    worker: str | None = None
    status: str = "running"
    objective: str = ""
    score: float | None = None
    best_score: float | None = None
    best_id: str | None = None
    epochs: int | None = None
    seconds: float | None = None
    reason: str | None = None

    def line(self) -> str:
        if self.kind == "note":
            return self.reason or ""
        trial = f"trial {self.number}" + (f"/{self.total}" if self.total else "") + f" (id {self.trial_id})"
        if self.kind == "start":
            values = ", ".join(f"{k}={format_value(v)}" for k, v in self.values.items())
            worker = f" [{self.worker}]" if self.worker and self.worker not in ("tuner0", "chief") else ""
            return f"{trial}{worker}: {values}"
        if self.status != "completed":
            return f"  {trial} {self.status}: {self.reason or 'no reason recorded'}"
        best = f"{self.best_score:.4f} (id {self.best_id})" if self.best_score is not None else "-"
        return (f"  {trial}: {self.objective} {self.score:.4f}, best so far {best}; {self.epochs} epochs, "
                f"{self.seconds:.1f} s")


@dataclass
class TuneResult:
    run_dir: Path
    run_id: str
    objective: str
    direction: str
    trials: list[dict[str, Any]]  # every trial, best first (the rows of trials.csv)
    metrics: list[dict[str, Any]] = field(default_factory=list)  # the best model on train / val / test, baseline
    baseline: Any = None  # dlcli.model.baseline.Baseline: the trivial predictor's scores (the `baseline` row)
    best_values: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def chief_timeout() -> float:
    """How long a worker waits for an answer from its chief: $DLCLI_CHIEF_TIMEOUT seconds (default 120)."""
    text = os.environ.get(CHIEF_TIMEOUT_VARIABLE) or str(CHIEF_TIMEOUT_DEFAULT)
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise RunError(f"{CHIEF_TIMEOUT_VARIABLE}={text!r}: expected a number of seconds above 0, e.g. "
                       f"{CHIEF_TIMEOUT_DEFAULT}")
    return seconds


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


def check_resume(search: Search, run_dir: Path) -> None:
    """``--resume RUN_DIR`` must name a tune run of this search that is not running."""
    resumable_info(run_dir, "tune")  # a tune run, not completed, not running
    if not (run_dir / TUNER_DIR / "oracle.json").is_file():
        raise RunError(f"{run_dir} has no keras-tuner state ({TUNER_DIR}/oracle.json): no trial started there, so "
                       f"there is nothing to resume; start a new search instead")
    check_search_state(run_dir / TUNER_DIR)
    check_same_search(search, run_dir)


def check_search_state(tuner_dir: Path) -> None:
    """Read keras-tuner's saved state (``oracle.json``, each ``trial_*/trial.json``) before keras-tuner does, so a
    damaged file is one RunError naming it instead of a traceback from inside keras-tuner."""
    fix = "restore it, or start a new search (the finished trials' scores are in trials.csv)"

    def oracle(text: str) -> dict[str, Any]:
        data = json_object(text)
        if not isinstance(data.get("ongoing_trials", {}), dict) or not isinstance(data.get("end_order", []), list):
            raise ValueError("not keras-tuner's oracle state")
        return data

    def trial(text: str) -> dict[str, Any]:
        data = json_object(text)
        if not isinstance(data.get("trial_id"), str) or not isinstance(data.get("hyperparameters"), dict):
            raise ValueError("not a keras-tuner trial")
        return data

    read_run_file(tuner_dir / "oracle.json", oracle, fix=fix)
    for path in sorted(tuner_dir.glob("trial_*/trial.json")):
        read_run_file(path, trial, fix=fix)


def tune(search: Search, runs_dir: Path, *, resume: Path | None = None, workers: int = 1,
         threads: int | None = None, progress: Callable[[TrialEvent], None] | None = None) -> TuneResult:
    """Run (or resume) a search into a run directory and save the best trial's model and config.

    Args:
        search: from ``load_search``.
        runs_dir: where the new run directory is created (ignored with ``resume``).
        resume: a tune run directory to continue: finished trials are kept, the rest run.
        workers: trials run in parallel by this many worker processes (1: in this process).
        threads: CPU threads TensorFlow may use here (default all; workers share the cores).
        progress: called as each trial starts and ends.

    Raises:
        RunFailed: too many trials failed in a row, no trial completed, or the workers died.
        RunInterrupted: Ctrl-C / SIGTERM; ``--resume`` continues.
    """
    chief = chief_address()
    if workers < (0 if chief else 1):
        raise RunError(f"--workers must be at least {0 if chief else 1}, got {workers}")
    if resume is not None:
        check_resume(search, resume)
    runtime.limit_threads(threads)
    exp = prepare_experiment(search.base_cfg)  # checks the data and the starting model
    from dlcli.tune import keras_side

    if resume is not None:
        run = Run.reopen(resume, "tune")
    else:
        info = run_info(exp)
        info.update(config=search.cfg.to_yaml_dict(), tune={"strategy": search.tune.strategy,
                    "objective": search.objective, "direction": search.direction})
        run = Run(runs_dir, search.cfg.name or "tune", "tune", info)
        atomic_write_text(run.path / "config.yaml", dump_yaml(search.cfg.to_yaml_dict()))
    previous = interrupts.install()
    session = None
    try:
        session = keras_side.Session(search, run.path, exp.data, progress, strategy=exp.strategy)
        if progress is not None:
            progress(TrialEvent("note", reason=_describe(search, session.total, run, resume is not None)))
        if chief is not None or workers > 1:
            ip, port = chief or ("127.0.0.1", 0)
            local = "127.0.0.1" if ip in ("0.0.0.0", "") else ip
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            per_worker = threads or max(1, cores // max(workers, 1))
            session.serve(ip, port, lambda bound: _start_workers(run.path, workers, local, bound, per_worker),
                          wait_for_others=chief is not None)
        else:
            session.run()
        rows = session.write_trials()
        if session.gave_up:
            raise RunFailed(f"search {run.id} stopped: {session.gave_up}. Last reason: {session.last_reason()}. "
                            f"Trials: {run.path / 'trials.csv'}")
        best = session.best_trial()
        if best is None:
            raise RunFailed(f"search {run.id}: no trial completed ({len(rows)} failed); last reason: "
                            f"{session.last_reason()}")
        metrics, baseline = save_best(search, session, *best, run.path)
        interrupts.checkpoint("finish")
    except KeyboardInterrupt:
        try:
            if session is not None:
                session.stop_workers()  # before the trials table, which they would change
                session.write_trials()
        finally:
            run.finish("interrupted", "interrupted")
        raise RunInterrupted(f"search {run.id} interrupted; continue it with: dlcli tune "
                             f"{run.path / 'config.yaml'} --resume {run.path}") from None
    except (RunFailed, RunError) as exc:
        if session is not None:
            session.stop_workers()
        run.finish("failed", str(exc))
        raise
    except Exception as exc:
        if session is not None:
            session.stop_workers()
        error = storage_error(exc, Path(getattr(exc, "filename", None) or run.path))
        with contextlib.suppress(StorageError):  # a full disk may not take even the failed status
            run.finish("failed", str(error) if error else f"{type(exc).__name__}: {exc}")
        if error is not None:
            raise error from None
        raise
    else:
        interrupts.hold()  # done: a signal from here on no longer stops the search
        test = next((row for row in metrics if row["split"] == "test"), {})
        run.finish("completed", trials=len(rows), best_trial=best[0], best_values=best[1],
                   test_metrics={k: v for k, v in test.items() if k != "split"}, **baseline.run_info())
    finally:
        interrupts.restore(previous)
    return TuneResult(run_dir=run.path, run_id=run.id, objective=search.objective, direction=search.direction,
                      trials=rows, metrics=metrics, baseline=baseline, best_values=best[1],
                      seconds=run.info["seconds"])


def save_best(search: Search, session: Any, trial_id: str, values: dict[str, Any],
              run_dir: Path) -> tuple[list[dict], Any]:
    """Write best_config.yaml, and the best trial's model (as its training left it) scored on train, val
    and test beside the trivial baseline: metrics.csv (the only time a search touches the test split),
    diagnosis.json, model.keras, preprocessing. Returns the metrics rows and the Baseline."""
    from dlcli.tune import keras_side
    from dlcli.model import build_model, summary_text
    from dlcli.train import save_model, score_run, write_diagnosis

    cfg = search.trial_config({**values, "name": f"{search.cfg.name or 'tune'}_best"})
    atomic_write_text(run_dir / "best_config.yaml",
                      f"# The best trial ({trial_id}) of search {run_dir.name}; retrain it with: dlcli train "
                      f"{run_dir / 'best_config.yaml'}\n" + dump_yaml(cfg.to_yaml_dict()))
    data = session.datasets.get(cfg)
    keras = runtime.import_keras()
    keras.backend.clear_session()
    model = build_model(cfg, data.prep)
    keras_side.load_weights(model, session.weights_path(trial_id))
    interrupts.checkpoint("scoring")
    metrics, baseline = score_run(model, cfg, data)
    write_csv(run_dir / "metrics.csv", metrics)
    history = read_history(session.weights_path(trial_id).parent)  # the trial's first execution
    write_diagnosis(run_dir, metrics, history, cfg.diagnosis, baseline)
    interrupts.checkpoint("saving")
    save_model(model, run_dir)
    data.prep.save(run_dir)
    atomic_write_text(run_dir / "summary.txt", summary_text(model))
    return metrics, baseline


def _describe(search: Search, total: int | None, run: Run, resumed: bool) -> str:
    tune = search.tune
    trials = f"{total} trials" if total else "trials"
    done = f", {len(list((run.path / TUNER_DIR).glob('trial_*')))} started before" if resumed else ""
    return (f"{'resuming' if resumed else 'search'} {run.id}: {tune.strategy}, {trials}{done}, objective "
            f"{search.objective} ({search.direction}) -> {run.path}")


def _start_workers(run_dir: Path, count: int, ip: str, port: int, threads: int) -> list[subprocess.Popen]:
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
    from dlcli.tune import keras_side

    keras_side.run_worker(search, run_dir, exp.data, timeout, strategy=exp.strategy)
