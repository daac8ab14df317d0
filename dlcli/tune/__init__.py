"""Tune: the config's search space -> keras-tuner trials -> trials.csv, the best config and model.

A trial is a training run with some config values replaced: its config is the experiment's config with
``set_by_path`` applied and validated again, its data come from ``data.prepare`` (once, unless the search
changes data settings) and its model from ``model.build_model``, fitted by ``train.fit_model``; so
``dlcli train best_config.yaml`` reproduces the best trial. keras-tuner chooses the values, runs the trials
and keeps its state in ``tuner/`` inside the run directory, which is what ``--resume`` reads. ``--workers N``
uses keras-tuner's own distributed mode: this process serves the oracle over gRPC and N worker processes run
the trials. No printing: progress goes to a callback that ``dlcli.cli`` prints.

May import: ``dlcli.train`` and every layer below it; only ``dlcli.cli`` imports this package.

Modules, lowest first: ``search`` (the search a config describes, checked before anything runs), ``events``
(what a search reports), ``workers`` (chief and worker processes), ``session`` (``tune``), and keras-tuner's
side, which imports TensorFlow and is imported only while a search runs: ``keras_setup`` (keras-tuner set up
once), ``space``, ``oracle``, ``trials`` (HyperModel and Tuner), ``leases``, ``keras_side`` (``Session``).
"""

from dlcli.tune.events import TrialEvent as TrialEvent
from dlcli.tune.events import TuneResult as TuneResult
from dlcli.tune.events import format_value as format_value
from dlcli.tune.search import Search as Search
from dlcli.tune.search import load_search as load_search
from dlcli.tune.session import tune as tune
from dlcli.tune.workers import join as join
