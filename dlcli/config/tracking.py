"""The ``tracking`` section: where runs are reported besides their run directory (MLflow)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from dlcli.config.base import Name, Strict, TrueMeansDefaults, also_boolean


class MlflowConfig(Strict):
    """Also log runs to MLflow (an optional extra: ``pip install 'dlcli[mlflow]'``): the config as params,
    each epoch's metrics, the final scores, tags naming the dlcli run, and the model."""

    enabled: bool = Field(True, description="Log to MLflow. `dlcli train/tune --mlflow` sets it, so a file can "
                          "keep its settings with enabled: false.")
    uri: str | None = Field(
        None, min_length=1, description="MLflow tracking URI: sqlite:///path/to/mlflow.db, http(s)://server, or a "
        "directory / file: URI (MLflow's legacy file store). Default: $MLFLOW_TRACKING_URI, else "
        "sqlite:///mlruns/mlflow.db in the current directory, with the artifacts beside it in ./mlruns/.")
    experiment: Name = Field(None, min_length=1, description="MLflow experiment (created if missing); "
                                   "default: the run name (`name`).")
    log_model: bool = Field(True, description="Log the trained model as an MLflow Keras model (load it with "
                            "mlflow.keras.load_model('models:/<model-id>')).")

class TrackingConfig(Strict):
    """Where runs are reported besides their run directory (TensorBoard logs: see fit.tensorboard)."""

    mlflow: Annotated[MlflowConfig | None, TrueMeansDefaults] = Field(
        None, description="MLflow tracking; `true` = defaults; off when absent.", json_schema_extra=also_boolean)
