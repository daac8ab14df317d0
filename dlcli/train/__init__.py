"""Train: validate everything, then fit on train/val, score train/val/test, save the run.

Owns the fit (``model.fit`` with the config's settings and callbacks), the resumable backup of a run's
training state, and the run's results (``metrics.csv``, ``diagnosis.json``, learning curves). No printing
here except Keras's own progress bar; ``dlcli.cli`` formats the result.

May import: ``dlcli.integrations``, ``dlcli.report`` and the layers below them (model, data, runs, runtime,
config, errors); never ``dlcli.evaluate``, ``dlcli.starter``, ``dlcli.tune`` or ``dlcli.cli``.

Modules, in the order a run goes through them: ``experiment`` (prepare and check, nothing written),
``callbacks``, ``fitting``, ``backup`` (resume), ``results`` (scores, diagnosis, curves), ``session`` (``train``).
``dlcli.tune`` runs its trials with the same pieces: ``fit_model``, ``stop_on_nan``, ``history_keys``,
``order_keys``, ``checkpoint_bytes``, ``score_run``, ``save_model``, ``write_diagnosis``, ``run_info``.
"""

from dlcli.errors import RunInterrupted as RunInterrupted
from dlcli.train.backup import checkpoint_bytes as checkpoint_bytes
from dlcli.train.backup import save_model as save_model
from dlcli.train.callbacks import order_keys as order_keys
from dlcli.train.callbacks import stop_on_nan as stop_on_nan
from dlcli.train.experiment import Experiment as Experiment
from dlcli.train.experiment import history_keys as history_keys
from dlcli.train.experiment import prepare_experiment as prepare_experiment
from dlcli.train.experiment import resume_experiment as resume_experiment
from dlcli.train.experiment import run_info as run_info
from dlcli.train.fitting import fit_model as fit_model
from dlcli.train.results import score_run as score_run
from dlcli.train.results import write_diagnosis as write_diagnosis
from dlcli.train.session import TrainResult as TrainResult
from dlcli.train.session import train as train
