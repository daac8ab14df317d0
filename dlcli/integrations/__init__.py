"""Integrations: reporting runs beyond their run directory, to TensorBoard and MLflow.

Owns ``tensorboard`` (the TensorBoard callback and its folder in a run), ``mlflow`` (the store, params, metrics,
model and files of a run or a search, imported only when tracking is on), ``tracker`` (the interface ``train``
and ``tune`` call, which reports nothing when tracking is off) and ``tracking`` (choosing the tracker, and the
console lines about where a run went).

May import: ``dlcli.runs``, ``dlcli.runtime``, ``dlcli.config``, ``dlcli.errors`` (never train, tune or cli).
"""

from dlcli.integrations.mlflow import MlflowTracker as MlflowTracker
from dlcli.integrations.mlflow import check_mlflow_installed as check_mlflow_installed
from dlcli.integrations.tensorboard import TENSORBOARD_DIR as TENSORBOARD_DIR
from dlcli.integrations.tensorboard import tensorboard_callbacks as tensorboard_callbacks
from dlcli.integrations.tracker import Tracker as Tracker
from dlcli.integrations.tracking import open_tracker as open_tracker
from dlcli.integrations.tracking import tracking_lines as tracking_lines
