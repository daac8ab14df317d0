"""``tracking.mlflow`` (or ``--mlflow``): the config as params, each epoch's metrics, the final scores, tags
naming the dlcli run, and the model, logged to an MLflow tracking store. MLflow is an optional extra
(``pip install 'dlcli[mlflow]'``), imported only when it is asked for.

No printing; errors are ``DlcliError`` (one line, exit 2).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from dlcli import __version__, runtime
from dlcli.config import ExperimentConfig, MlflowConfig
from dlcli.errors import DlcliError, first_line
from dlcli.integrations.tracker import Tracker
from dlcli.runs import BASELINE_SPLIT, atomic_write_json, flatten, load_run_info, read_history

MLFLOW_INSTALL = "pip install 'dlcli[mlflow]'"
# A run's own files that go to MLflow as artifacts (under dlcli/), where they exist.
RUN_FILES = ("config.yaml", "best_config.yaml", "metrics.csv", "history.csv", "trials.csv", "diagnosis.json",
             "learning_curves.png", "summary.txt", "preprocessing.json")
MAX_PARAM_LENGTH = 6000  # MLflow refuses longer param values


# ---------------------------------------------------------------------------------------------
# MLflow: settings and the store


def mlflow_settings(cfg: ExperimentConfig) -> MlflowConfig | None:
    """The MLflow settings when MLflow tracking is on, else None."""
    settings = cfg.tracking.mlflow
    return settings if settings is not None and settings.enabled else None


def tracking_uri(settings: MlflowConfig) -> str:
    """``tracking.mlflow.uri``, else ``$MLFLOW_TRACKING_URI``, else an SQLite store in ``./mlruns/``."""
    if settings.uri:
        return settings.uri
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlruns' / 'mlflow.db'}"


def _sqlite_path(uri: str) -> Path | None:
    """The database file of an ``sqlite:///`` URI (relative to the current directory, or absolute)."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):].split("?")[0]).resolve()


def _is_file_store(uri: str) -> bool:
    return urlparse(uri).scheme in ("", "file")


def check_mlflow_installed(cfg: ExperimentConfig) -> None:
    """Fail fast, before any data is loaded, when MLflow tracking is on but MLflow is not installed.

    Raises:
        DlcliError: with the pip line that fixes it.
    """
    settings = mlflow_settings(cfg)
    if settings is None:
        return
    if importlib.util.find_spec("mlflow") is None:
        raise DlcliError(f"--mlflow / tracking.mlflow needs MLflow, which is not installed here; install it with: "
                         f"{MLFLOW_INSTALL}")
    uri = tracking_uri(settings)
    missing = [m for m in ("sqlalchemy", "alembic") if importlib.util.find_spec(m) is None]
    if uri.startswith("sqlite:") and missing:
        raise DlcliError(f"the MLflow store {uri} is an SQLite database, which needs {' and '.join(missing)} "
                         f"(not installed here); install them with: {MLFLOW_INSTALL}")


def _import_mlflow() -> Any:
    import mlflow  # noqa: PLC0415 - an optional extra, imported only when tracking is on

    if os.environ.get("DLCLI_VERBOSE") != "1":
        # "Creating initial MLflow database tables..." and the like: --verbose shows them.
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
    return mlflow


def _experiment_id(mlflow: Any, uri: str, name: str) -> str:
    """The id of the experiment ``name``, created if missing (an SQLite store keeps its artifacts in an
    ``artifacts`` folder beside the database; other stores use their own default)."""
    client = mlflow.MlflowClient(uri)
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            raise DlcliError(f"the MLflow experiment {name!r} in {uri} is deleted; restore it (mlflow experiments "
                             f"restore) or choose another name with tracking.mlflow.experiment")
        return found.experiment_id
    database = _sqlite_path(uri)
    location = (database.parent / "artifacts").as_uri() if database is not None else None
    try:
        return client.create_experiment(name, artifact_location=location)
    except mlflow.exceptions.MlflowException:
        found = client.get_experiment_by_name(name)  # another run created it in the meantime
        if found is None:
            raise
        return found.experiment_id


def flat_params(data: Any) -> dict[str, str]:
    """Config data as MLflow params: dotted paths (``fit.epochs``, ``model.layers.0.units``) -> text."""
    return {key: str(value)[:MAX_PARAM_LENGTH] for key, value in flatten(data).items()}


def _signature(model: Any) -> Any:
    """The model's input and output: float32 tensors of its shapes (inferred from one sample of zeros)."""
    import numpy as np  # lazy: start-up speed
    from mlflow.models import infer_signature  # lazy: an optional extra, imported only when tracking is on

    sample = np.zeros((1, *model.input_shape[1:]), dtype="float32")
    return infer_signature(sample, model.predict(sample, verbose=0))


def _metrics_of(rows: list[dict[str, Any]]) -> dict[str, float]:
    """metrics.csv rows as MLflow metrics: ``final_<split>_<metric>``, e.g. final_test_accuracy (the
    per-epoch ``val_*`` keys keep their Keras names), and the trivial baseline's as ``baseline_<metric>``."""
    out: dict[str, float] = {}
    for row in rows:
        prefix = f"{BASELINE_SPLIT}_" if row["split"] == BASELINE_SPLIT else f"final_{row['split']}_"
        out.update({prefix + key: float(value) for key, value in row.items() if key != "split" and value is not None})
    return out


class MlflowTracker(Tracker):
    """Logs one dlcli run to one MLflow run (a search: a parent run with one nested run per trial)."""

    def __init__(self, settings: MlflowConfig, cfg: ExperimentConfig):
        self.settings = settings
        self.cfg = cfg
        self.uri = tracking_uri(settings)
        self.experiment = settings.experiment or cfg.name or "dlcli"
        self.run_id: str | None = None
        self.model_uri: str | None = None
        self.run: Any = None
        database = _sqlite_path(self.uri)
        if database is not None:
            database.parent.mkdir(parents=True, exist_ok=True)
        if _is_file_store(self.uri):
            # MLflow 3 keeps its file store for existing users only, behind this switch; asking for a
            # directory in tracking.mlflow.uri is that choice.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.mlflow = _import_mlflow()
        try:
            self.mlflow.set_tracking_uri(self.uri)
            self.experiment_id = _experiment_id(self.mlflow, self.uri, self.experiment)
        except DlcliError:
            raise
        except Exception as exc:  # MlflowException, a database or network error
            raise DlcliError(f"cannot use the MLflow tracking store {self.uri} (tracking.mlflow.uri): "
                             f"{first_line(exc)}") from None

    def _start(self, name: str, tags: dict[str, str], params: dict[str, str], run_id: str | None = None) -> str:
        mlflow = self.mlflow
        nested = mlflow.active_run() is not None
        if run_id is not None:  # a resumed dlcli run continues its MLflow run
            active = mlflow.start_run(run_id=run_id, nested=nested)
        else:
            active = mlflow.start_run(experiment_id=self.experiment_id, run_name=name, tags=tags, nested=nested)
            mlflow.log_params(params)
        return active.info.run_id

    def start(self, run: Any, command: str) -> None:
        previous = (run.info.get("mlflow") or {}).get("run_id")
        tags = {"dlcli.run_id": run.id, "dlcli.run_dir": str(Path(run.path).resolve()), "dlcli.command": command,
                "dlcli.version": __version__}
        self.run_id = self._start(run.id, tags, flat_params(self.cfg.to_yaml_dict()), previous)
        self.run = run
        run.update(mlflow=self.record())

    def record(self) -> dict[str, Any]:
        """Where this run went, for run.json: store, experiment, MLflow run id and the logged model."""
        return {"tracking_uri": self.uri, "experiment": self.experiment, "experiment_id": self.experiment_id,
                "run_id": self.run_id, "model_uri": self.model_uri}

    def callbacks(self, saved_epoch: Callable[[], int] | None = None) -> list[Any]:
        keras = runtime.import_keras()
        mlflow, run_id = self.mlflow, self.run_id

        class MlflowEpochs(keras.callbacks.Callback):
            """Logs each epoch's history values with step = the epoch number (1, 2, ... as in history.csv),
            once the resume checkpoint holds that epoch (``saved_epoch``): MLflow cannot take back a step,
            and a resumed run trains the epochs after the checkpoint again."""

            def __init__(self) -> None:
                super().__init__()
                self.pending: list[tuple[int, dict[str, float], int]] = []  # (step, values, time in ms)

            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                values = {k: float(v) for k, v in (logs or {}).items()}
                self.pending.append((epoch + 1, values, int(time.time() * 1000)))
                self._log_saved()

            def on_train_end(self, logs: dict | None = None) -> None:
                self._log_saved()  # the checkpoint, earlier in the callback list, has saved the fit's end

            def _log_saved(self) -> None:
                last = saved_epoch() if saved_epoch is not None else None
                while self.pending and (last is None or self.pending[0][0] <= last):
                    step, values, stamp = self.pending.pop(0)
                    mlflow.log_metrics(values, step=step, run_id=run_id, timestamp=stamp)

        return [MlflowEpochs()]

    def _log_model(self, model: Any) -> None:
        if not self.settings.log_model:
            return
        import tensorflow as tf  # lazy: imports TensorFlow

        keras = runtime.import_keras()
        # Given requirements: MLflow would otherwise infer them by loading the model in a subprocess.
        info = self.mlflow.keras.log_model(model, name="model", signature=_signature(model),
                                           pip_requirements=[f"tensorflow=={tf.__version__}",
                                                             f"keras=={keras.__version__}"])
        self.model_uri = info.model_uri

    def _log_files(self, run_dir: Path) -> None:
        for name in RUN_FILES:
            if (Path(run_dir) / name).is_file():
                self.mlflow.log_artifact(str(Path(run_dir) / name), artifact_path="dlcli")

    def log_results(self, exp: Any, metrics: list[dict[str, Any]], run_dir: Path) -> None:
        self.mlflow.log_metrics(_metrics_of(metrics), run_id=self.run_id)
        self._log_model(exp.model)
        self._log_files(run_dir)
        if self.run is not None:
            self.run.update(mlflow=self.record())

    def end(self, status: str) -> None:
        active = self.mlflow.active_run()
        if active is None or active.info.run_id != self.run_id:
            return
        if status == "FINISHED":
            self.mlflow.end_run(status)
            return
        # The run already failed: an error here (the store gone too) must not hide the first one.
        with contextlib.suppress(Exception):
            self.mlflow.end_run(status)

    def log_search(self, cfg: ExperimentConfig, result: Any) -> None:
        run_dir = Path(result.run_dir)
        tags = {"dlcli.run_id": result.run_id, "dlcli.run_dir": str(run_dir.resolve()), "dlcli.command": "tune",
                "dlcli.version": __version__}
        self.run_id = self._start(result.run_id, tags, flat_params(cfg.to_yaml_dict()))
        try:
            for row in result.trials:
                self._log_trial(row, cfg, run_dir)
            score = result.trials[0].get(f"best_{result.objective}") if result.trials else None
            if score is not None:
                self.mlflow.log_metric(f"best_{result.objective}", float(score))
            self.mlflow.log_metrics(_metrics_of(result.metrics))
            keras = runtime.import_keras()
            # The model file this search wrote a moment ago: loading it runs no code from elsewhere.
            self._log_model(keras.models.load_model(run_dir / "model.keras", safe_mode=False))
            self._log_files(run_dir)
        except BaseException:
            self.end("FAILED")
            raise
        self.end("FINISHED")
        info = load_run_info(run_dir)
        info["mlflow"] = self.record()
        atomic_write_json(run_dir / "run.json", info)

    def _log_trial(self, row: dict[str, Any], cfg: ExperimentConfig, run_dir: Path) -> None:
        """One nested run: the trial's values as params, its epochs as metrics, its best score."""
        mlflow = self.mlflow
        trial_id = str(row["trial_id"])
        space = list(cfg.tune.space) if cfg.tune is not None else []
        tags = {"dlcli.trial_id": trial_id, "dlcli.trial_status": str(row.get("status"))}
        if row.get("reason"):
            tags["dlcli.trial_reason"] = str(row["reason"])[:5000]
        mlflow.start_run(experiment_id=self.experiment_id, run_name=f"trial {trial_id}", tags=tags, nested=True)
        try:
            mlflow.log_params({path: str(row.get(path)) for path in space})
            history = read_history(run_dir / "tuner" / f"trial_{trial_id}")
            for index in range(len(history.get("loss", []))):
                mlflow.log_metrics({k: v[index] for k, v in history.items() if k != "epoch" and v[index] is not None},
                                   step=index + 1)
            finals = {k: float(row[k]) for k in row if k.startswith("best_") and row[k] is not None}
            finals.update({"seconds": float(row["seconds"])} if row.get("seconds") is not None else {})
            mlflow.log_metrics(finals)
        finally:
            mlflow.end_run("FINISHED" if row.get("status") == "completed" else "FAILED")
