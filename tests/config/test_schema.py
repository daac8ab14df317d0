"""`dlcli schema`: the JSON Schema editors use. It must match the shipped file, accept every shipped
config (and the shorthands dlcli accepts), reject obvious mistakes, and suggest real Keras names."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from dlcli.config import ExperimentConfig, load_config, validate_config
from dlcli.errors import ConfigError
from dlcli.config.jsonschema import MODELINE, SCHEMA_FILE, config_schema

from tests.conftest import tiny_config

ROOT = Path(__file__).resolve().parents[2]
# Globbed at collection time, so a config someone adds later is checked too.
SHIPPED_CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(config_schema())


def schema_errors(validator: jsonschema.Draft202012Validator, cfg: Any) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(cfg)]


# ---------------------------------------------------------------------------------------------
# The command and the shipped file


def test_schema_command_prints_the_shipped_file(cli):
    result = cli("schema")
    assert result.exit_code == 0, result.output
    shipped = (ROOT / SCHEMA_FILE).read_text(encoding="utf-8")
    assert result.stdout == shipped, (f"{SCHEMA_FILE} is out of date with dlcli/config/; regenerate it: "
                                      f"dlcli schema > {SCHEMA_FILE}")


def test_schema_is_draft_2020_12_with_a_header(cli):
    schema = json.loads(cli("schema").stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "dlcli experiment config"
    assert list(schema)[:4] == ["$schema", "title", "description", "$comment"]
    assert schema["required"] == ["data", "model", "compile"]
    assert schema["additionalProperties"] is False


def test_schema_command_does_not_import_tensorflow():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom dlcli.cli import app\n"
            "result = CliRunner().invoke(app, ['schema'])\nassert result.exit_code == 0, result.output\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


# ---------------------------------------------------------------------------------------------
# What editors show: descriptions, allowed values, examples


def test_every_field_has_a_description():
    schema = config_schema()
    defs = schema["$defs"]
    for owner, node in [("(top)", schema), *defs.items()]:
        for variant in node.get("anyOf", [node]):  # a model that also takes a shorthand
            for key, prop in variant.get("properties", {}).items():
                ref = prop.get("$ref", "").removeprefix("#/$defs/")
                assert prop.get("description") or defs.get(ref, {}).get("description"), f"{owner}.{key}"


def test_allowed_values_and_defaults_come_from_the_models():
    defs = config_schema()["$defs"]
    scale = defs["DataConfig"]["properties"]["scale"]
    assert scale["enum"] == ["none", "standard", "minmax", "rescale"] and scale["default"] == "none"
    assert "z-score" in scale["description"]
    assert defs["FitConfig"]["properties"]["epochs"]["minimum"] == 1
    assert defs["EarlyStoppingConfig"]["properties"]["mode"]["enum"] == ["auto", "min", "max"]
    # pydantic's leftover `gt` on a union became standard JSON Schema on each number type
    step = json.dumps(defs["RangeSpec"]["properties"]["step"])
    assert '"gt"' not in step and '"exclusiveMinimum": 0' in step


@pytest.mark.slow
def test_examples_are_names_keras_knows():
    """The schema suggests names; each must resolve through the same lookups `dlcli train` uses."""
    from dlcli.config import CompileConfig, OptimizerConfig, ScheduleConfig
    from dlcli.model import SCHEDULE_ALIASES, make_optimizer, resolve_loss, resolve_metrics
    from dlcli.runtime import import_keras

    keras = import_keras()
    defs = config_schema()["$defs"]
    layer = defs["LayerSpec"]["properties"]
    for name in layer["type"]["examples"]:
        assert isinstance(getattr(keras.layers, name, None), type), name
    for name in layer["activation"]["examples"]:
        keras.activations.get(name)
    optimizer = defs["OptimizerConfig"]["anyOf"]
    assert optimizer[0]["examples"] == optimizer[1]["properties"]["type"]["examples"]
    for name in optimizer[0]["examples"]:
        make_optimizer(OptimizerConfig(type=name))
    compile_ = defs["CompileConfig"]["properties"]
    for name in compile_["loss"]["examples"]:
        resolve_loss(name)
    resolve_metrics(CompileConfig(loss="mse", metrics=compile_["metrics"]["items"]["examples"]), None)
    assert ScheduleConfig.model_fields["type"].examples == list(SCHEDULE_ALIASES)


# ---------------------------------------------------------------------------------------------
# Shipped configs


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=lambda p: p.name)
def test_shipped_config_points_editors_at_the_schema(path):
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == MODELINE, f"{path.name}: make the first line `{MODELINE}` (editor completion and checks)"
    assert (path.parent / "../dlcli.schema.json").resolve() == (ROOT / SCHEMA_FILE).resolve()


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=lambda p: p.name)
def test_shipped_config_validates_against_the_schema_and_loads(path, validator):
    assert schema_errors(validator, yaml.safe_load(path.read_text(encoding="utf-8"))) == []
    assert isinstance(load_config(path), ExperimentConfig)


def test_there_are_shipped_configs():
    assert len(SHIPPED_CONFIGS) >= 6


# ---------------------------------------------------------------------------------------------
# Shorthands dlcli accepts must pass; mistakes dlcli rejects must fail


def with_value(path: str, value: Any) -> dict[str, Any]:
    """tiny_config() with ``path`` (dotted, list indices as numbers) set to ``value``."""
    cfg = copy.deepcopy(tiny_config())
    *parents, last = path.split(".")
    node: Any = cfg
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return cfg


ACCEPTED = [
    ("compile.optimizer", "sgd"),
    ("compile.optimizer", {"type": "sgd", "momentum": 0.9, "nesterov": True}),
    ("compile.optimizer", {"learning_rate": 0.01}),
    ("compile.optimizer", {"type": "adam", "learning_rate": 1}),
    ("compile.optimizer", {"type": "adam", "learning_rate": {"type": "cosine", "initial_learning_rate": 0.01,
                                                            "decay_steps": 100}}),
    ("fit.early_stopping", True),
    ("fit.early_stopping", False),
    ("fit.early_stopping", {"monitor": "val_accuracy", "mode": "max", "patience": 3}),
    ("fit.reduce_lr_on_plateau", True),
    ("model.layers.0", {"type": "Dense", "units": 8, "activation": "gelu", "kernel_regularizer": {"l2": 1e-4}}),
    ("tune", {"strategy": "random", "max_trials": 3, "objective": "val_accuracy",
              "space": {"model.layers.0.units": [8, 16], "fit.batch_size": {"min": 8, "max": 32, "step": 8}}}),
    ("tune", {"objective": {"name": "val_loss", "direction": "min"}, "space": {"fit.epochs": [1, 2]}}),
]


@pytest.mark.parametrize(("path", "value"), ACCEPTED, ids=[f"{p}={json.dumps(v)[:30]}" for p, v in ACCEPTED])
def test_schema_accepts_what_dlcli_accepts(path, value, validator):
    cfg = with_value(path, value)
    validate_config(cfg)
    assert schema_errors(validator, cfg) == []


REJECTED = [
    ("modle", {"layers": []}),  # unknown top-level key
    ("fit.epochs", "ten"),
    ("fit.epochs", 0),
    ("fit.epoch", 5),  # unknown key in a section
    ("data.scale", "standrad"),
    ("data.split", "70/15/15"),
    ("device", "tpu"),
    ("seed", -1),
    ("compile.optimizer", 5),
    ("compile.optimizer", {"type": "adam", "learning_rate": -0.1}),
    ("compile.optimizer", {"type": "adam", "learning_rate": "fast"}),
    ("compile.metrics", "accuracy"),
    ("fit.early_stopping", "yes"),
    ("fit.early_stopping", {"patience": 3, "patiense": 4}),
    ("model.layers", []),
    ("model.layers.0", {"units": 8}),  # no type
    ("tune", {"objective": 3, "space": {"fit.epochs": [1, 2]}}),
]


@pytest.mark.parametrize(("path", "value"), REJECTED, ids=[f"{p}={json.dumps(v)[:30]}" for p, v in REJECTED])
def test_schema_rejects_what_dlcli_rejects(path, value, validator):
    cfg = with_value(path, value)
    with pytest.raises(ConfigError):
        validate_config(cfg)
    assert schema_errors(validator, cfg), f"the schema accepted {path}: {value!r}"


def test_schema_rejects_a_config_without_its_required_sections(validator):
    cfg = tiny_config()
    del cfg["compile"]
    assert any("'compile' is a required property" in e for e in schema_errors(validator, cfg))
