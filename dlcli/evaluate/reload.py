"""Reloading a completed run: its record, config and preprocessing (checked against the checksums in run.json),
its model (Keras's safe mode on: a model file never runs arbitrary code) and its own test split, rebuilt exactly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlcli import runtime
from dlcli.config import ExperimentConfig, load_config
from dlcli.data import Preprocessing, prepare, prepare_table
from dlcli.errors import DataError, RunError, allowed_list, first_line
from dlcli.runs import effective_status, load_run_info, verify_files


@dataclass
class TrainedRun:
    """What a completed run left behind: its record, config, preprocessing and (once loaded) model."""

    path: Path
    info: dict[str, Any]
    cfg: ExperimentConfig
    prep: Preprocessing
    model: Any = None

    @property
    def id(self) -> str:
        return str(self.info.get("run_id") or self.path.name)


def open_run(run_dir: Path, backend: str | None = None) -> TrainedRun:
    """Read a completed run's record, config and preprocessing (not the model yet: that needs Keras), and
    select the Keras backend: the run's own, or ``backend`` (a ``.keras`` model loads on any of them).

    Raises:
        RunError: not a run directory, a run that did not complete, or one that has no model.
    """
    run_dir = Path(run_dir)
    info = load_run_info(run_dir)
    status = effective_status(info)
    if status != "completed":
        why = f": {info['reason']}" if info.get("reason") else ""
        raise RunError(f"{run_dir}: run {info.get('run_id', run_dir.name)} did not complete (status {status}{why}); "
                       f"only a completed run has a model to use (see `dlcli runs list`)")
    verify_files(run_dir, info, ("model.keras", "config.yaml", "preprocessing.json", "preprocessing.npz"))
    cfg = load_config(run_dir / "config.yaml", backend=backend)
    runtime.select_backend(cfg.backend, cfg.device, cfg.deterministic)
    prep = Preprocessing.load(run_dir)
    return TrainedRun(path=run_dir, info=info, cfg=cfg, prep=prep)


def load_model(run: TrainedRun, unsafe: bool = False) -> Any:
    """Load ``model.keras`` with Keras's safe mode on (no arbitrary code from a model file) unless ``unsafe``."""
    keras = runtime.import_keras()
    # Same seed and determinism as training; a run trained on a GPU still evaluates on a CPU-only machine.
    runtime.setup("cpu" if run.cfg.device == "cpu" else "auto", run.cfg.seed, run.cfg.deterministic)
    path = run.path / "model.keras"
    try:
        run.model = keras.saving.load_model(path, safe_mode=not unsafe)
    except Exception as exc:  # corrupt zip, unknown layer, unsafe lambda: all one message
        text = str(exc)
        if "safe_mode" in text or "Lambda" in text and "unsafe" in text.lower():
            raise RunError(f"{path}: the model holds a Lambda layer, i.e. arbitrary Python code, and Keras safe "
                           f"mode refuses to load it; if you trust this file, pass --unsafe") from None
        raise RunError(f"{path}: cannot load the model: {first_line(exc)}") from None
    return run.model


def own_test_split(run: TrainedRun, force: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The run's test split rebuilt exactly, scaled with the preprocessing saved at training time (for an
    image folder, a ``tf.data.Dataset`` of (image, label) pairs; ``len()`` counts its images).

    Raises:
        DataError: the data's fingerprint differs from training (unless ``force``), its classes
            differ, or the run has no test split.
    """
    # Split without scaling: the scaling must be the one fitted at training time, not a new fit. An image
    # folder's scaling (x / 255) is fixed, so its loader applies it exactly as in training.
    folder = run.cfg.data.kind == "folder"
    if run.prep.columns is not None:  # a typed table: encoded with the state fitted at training time
        data = prepare_table(run.cfg, fitted=run.prep)
    else:
        dcfg = run.cfg.data if folder else run.cfg.data.model_copy(update={"scale": "none", "reshape": None})
        data = prepare(run.cfg.model_copy(update={"data": dcfg}))
    expected = (run.info.get("data") or {}).get("fingerprint")
    if expected and data.fingerprint != expected and not force:
        raise DataError(f"the data changed since run {run.id} was trained: {data.source} has fingerprint "
                        f"{data.fingerprint}, the run recorded {expected}; the rebuilt test split would not be the "
                        f"one the model was scored on. Use --force to evaluate anyway, or --data FILE")
    if data.prep.class_names != run.prep.class_names:
        raise DataError(f"{data.source}: the classes are now {allowed_list(data.prep.class_names or [], 8)}, but "
                        f"the model was trained on {allowed_list(run.prep.class_names or [], 8)}")
    if not len(data.x_test):
        raise DataError(f"run {run.id} has no test split (data.split.test is 0); evaluate other labelled data "
                        f"with --data FILE")
    return (data.x_test if folder or run.prep.columns is not None else run.prep.transform(data.x_test)), data.y_test
