"""Evaluate and predict with a trained run: reload its model and preprocessing, score or predict, plot.

``evaluate`` rebuilds the run's own test split exactly (same source, seed and fractions, checked by the data's
fingerprint) or reads other labelled data, applies the scaling fitted at training time (the run's saved
:class:`~dlcli.data.Preprocessing`), and computes the run's own metrics plus scikit-learn's. ``predict`` writes one
row per input. Models are loaded with Keras's safe mode on: a model file never runs arbitrary code. No printing
here; ``dlcli.cli`` formats the results.

Modules: ``reload`` (a completed run, its model, its own test split), ``inputs`` (samples from a file), ``score``,
``evaluation`` (``dlcli evaluate``), ``predict`` and ``plots``.

May import: ``dlcli.report``, ``dlcli.model``, ``dlcli.data``, ``dlcli.runs``, ``dlcli.runtime``, ``dlcli.config``,
``dlcli.errors``.
"""

from dlcli.evaluate.evaluation import evaluate_run as evaluate_run
from dlcli.evaluate.evaluation import new_evaluation_dir as new_evaluation_dir
from dlcli.evaluate.plots import plot_run as plot_run
from dlcli.evaluate.predict import predict_file as predict_file
