"""``tune``: a search run into its run directory (new, or resumed with ``--resume``), then the best trial's
config, model and scores saved beside the trials table."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlcli import runtime
from dlcli.config import dump_yaml
from dlcli.errors import RunError, RunFailed, RunInterrupted, StorageError
from dlcli.model import build_model, summary_text
from dlcli.runs import (Run, atomic_write_text, json_object, read_history, read_run_file, resumable_info,
                        storage_error, write_csv)
from dlcli.runtime import interrupts
from dlcli.train import prepare_experiment, run_info, save_model, score_run, write_diagnosis
from dlcli.tune.events import TrialEvent, TuneResult
from dlcli.tune.search import TUNER_DIR, Search, check_same_search
from dlcli.tune.workers import chief_address, start_workers


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
    from dlcli.tune.keras_side import Session  # lazy: imports keras_tuner and TensorFlow (start-up speed)

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
        session = Session(search, run.path, exp.data, progress, strategy=exp.strategy)
        if progress is not None:
            progress(TrialEvent("note", reason=_describe(search, session.total, run, resume is not None)))
        if chief is not None or workers > 1:
            ip, port = chief or ("127.0.0.1", 0)
            local = "127.0.0.1" if ip in ("0.0.0.0", "") else ip
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            per_worker = threads or max(1, cores // max(workers, 1))
            session.serve(ip, port, lambda bound: start_workers(run.path, workers, local, bound, per_worker),
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
    from dlcli.tune.trials import load_weights  # lazy: imports keras_tuner and TensorFlow (start-up speed)

    cfg = search.trial_config({**values, "name": f"{search.cfg.name or 'tune'}_best"})
    atomic_write_text(run_dir / "best_config.yaml",
                      f"# The best trial ({trial_id}) of search {run_dir.name}; retrain it with: dlcli train "
                      f"{run_dir / 'best_config.yaml'}\n" + dump_yaml(cfg.to_yaml_dict()))
    data = session.datasets.get(cfg)
    keras = runtime.import_keras()
    # Without Python's full collection (0.45 s with TensorFlow loaded): the last trial's model is freed on the
    # collector's own schedule, and the scores do not depend on it.
    keras.backend.clear_session(free_memory=False)
    model = build_model(cfg, data.prep)
    load_weights(model, session.weights_path(trial_id))
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
