"""Model: config -> compiled ``keras.Sequential``, the one builder that ``train`` and ``tune`` share.

Every name in the config (layer, activation, regularizer, optimizer, schedule, loss, metric) is resolved through
Keras's own modules (``keras_names``), so every Keras layer works and the lists of allowed names in error messages
come from Keras itself. Modules: ``keras_names``, ``layers``, ``compile``, ``build``; ``scoring`` (one definition
of a model's loss and metrics on every backend) and ``baseline`` (the trivial model every run is measured against).

May import: ``dlcli.data``, ``dlcli.runs``, ``dlcli.runtime``, ``dlcli.config``, ``dlcli.errors``. Keras is
imported only inside the functions that build (``runtime.import_keras``).
"""

from dlcli.model.build import build_model as build_model
from dlcli.model.build import summary_text as summary_text
from dlcli.model.compile import SCHEDULE_ALIASES as SCHEDULE_ALIASES
from dlcli.model.compile import make_optimizer as make_optimizer
from dlcli.model.compile import resolve_loss as resolve_loss
from dlcli.model.compile import resolve_metrics as resolve_metrics
