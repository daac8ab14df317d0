"""The experiment config: typed models, YAML loading and ``--set`` overrides.

The YAML is parsed once, here, into an :class:`ExperimentConfig`; nothing downstream touches raw dicts. Each
field's default sits next to its description, so the error messages, the ``--help`` text and the JSON Schema all
come from this one place (code that needs a default, such as ``dlcli init``'s commented config, reads it from the
field: ``FitConfig.model_fields["batch_size"].default``). Nothing in this package imports TensorFlow: names that
select Keras classes are resolved in ``dlcli.model``.

Modules, in the order a config flows through them:

- ``yamlfile``: read and parse YAML safely, dump it back.
- ``overrides``: ``--set PATH=VALUE``.
- ``loading``: file + overrides + fields -> :class:`ExperimentConfig` (``load_config``, ``resolve_raw``).
- ``validation``: raw data -> a model, pydantic's errors -> one message with the YAML path.
- ``experiment``: :class:`ExperimentConfig` and the ``diagnosis`` section; its sections in ``data``
  (``columns``), ``model`` (layers and compile), ``fit``, ``tune`` and ``tracking``; ``base`` what they share.
- ``jsonschema``: the JSON Schema generated from the models (``dlcli schema``).

May import: ``dlcli.errors`` only (and pydantic, PyYAML).
"""

from dlcli.config.base import BACKENDS as BACKENDS
from dlcli.config.base import BUNDLED_DATASETS as BUNDLED_DATASETS
from dlcli.config.base import FILE_SUFFIXES as FILE_SUFFIXES
from dlcli.config.base import KERAS_DATASETS as KERAS_DATASETS
from dlcli.config.base import NAME_RULE as NAME_RULE
from dlcli.config.base import control_character as control_character
from dlcli.config.base import format_path as format_path
from dlcli.config.base import short_repr as short_repr
from dlcli.config.columns import BinaryColumn as BinaryColumn
from dlcli.config.columns import CategoricalColumn as CategoricalColumn
from dlcli.config.columns import DateColumn as DateColumn
from dlcli.config.columns import IgnoreColumn as IgnoreColumn
from dlcli.config.columns import NumericColumn as NumericColumn
from dlcli.config.data import DataConfig as DataConfig
from dlcli.config.data import SplitConfig as SplitConfig
from dlcli.config.experiment import DiagnosisConfig as DiagnosisConfig
from dlcli.config.experiment import ExperimentConfig as ExperimentConfig
from dlcli.config.fit import FitConfig as FitConfig
from dlcli.config.loading import load_config as load_config
from dlcli.config.loading import resolve_raw as resolve_raw
from dlcli.config.model import CompileConfig as CompileConfig
from dlcli.config.model import LayerSpec as LayerSpec
from dlcli.config.model import OptimizerConfig as OptimizerConfig
from dlcli.config.model import ScheduleConfig as ScheduleConfig
from dlcli.config.overrides import set_by_path as set_by_path
from dlcli.config.tracking import MlflowConfig as MlflowConfig
from dlcli.config.tune import RangeSpec as RangeSpec
from dlcli.config.tune import TuneConfig as TuneConfig
from dlcli.config.validation import validate_config as validate_config
from dlcli.config.yamlfile import dump_yaml as dump_yaml
from dlcli.config.yamlfile import parse_yaml as parse_yaml
from dlcli.config.yamlfile import read_yaml as read_yaml
