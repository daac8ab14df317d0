"""Config validation: each mistake is one ConfigError naming the YAML path, no TensorFlow needed."""

from __future__ import annotations


import pytest
import yaml

from dlcli.config import ExperimentConfig, load_config, parse_yaml, set_by_path
from dlcli.errors import ConfigError

from tests.conftest import tiny_config


def error_for(write_config, cfg, *overrides: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(write_config(cfg), overrides)
    return info.value


def test_valid_config_fills_defaults(write_config):
    cfg = load_config(write_config(tiny_config()))
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.device == "auto" and cfg.fit.shuffle is True
    assert cfg.compile.optimizer.type == "adam"  # `optimizer: adam` shorthand
    assert cfg.data.split.stratify is True


def test_name_defaults_to_file_stem(write_config):
    raw = tiny_config()
    del raw["name"]
    assert load_config(write_config(raw, "my_experiment.yaml")).name == "my_experiment"


def test_unknown_top_level_key_suggests_the_right_one(write_config):
    err = error_for(write_config, {**tiny_config(), "fitt": {}})
    assert err.path == "fitt"
    assert "unknown key 'fitt'" in str(err) and "did you mean 'fit'" in str(err)


def test_unknown_nested_key_lists_allowed(write_config):
    raw = tiny_config()
    raw["fit"]["batchsize"] = 3
    err = error_for(write_config, raw)
    assert err.path == "fit.batchsize"
    assert "did you mean 'batch_size'" in str(err) and "allowed:" in str(err)


def test_wrong_type_names_path_and_value(write_config):
    err = error_for(write_config, tiny_config(), "fit.epochs=abc")
    assert err.path == "fit.epochs" and "'abc'" in str(err)


def test_literal_choice_suggests(write_config):
    err = error_for(write_config, tiny_config(), "data.scale=standrd")
    assert err.path == "data.scale"
    assert "did you mean 'standard'" in str(err) and "minmax" in str(err)


def test_split_must_sum_to_one(write_config):
    err = error_for(write_config, tiny_config(), "data.split.train=0.5")
    assert err.path == "data.split" and "sum to 1" in str(err) and "0.9" in str(err)


def test_missing_required_section(write_config):
    raw = tiny_config()
    del raw["compile"]
    err = error_for(write_config, raw)
    assert err.path == "compile" and "missing" in str(err)


def test_yaml_syntax_error_reports_line(write_config):
    err = error_for(write_config, "name: x\ndata:\n  source: [iris\nmodel: 3\n")
    assert "YAML syntax error at line" in str(err)


def test_top_level_must_be_mapping(write_config):
    assert "top level must be a mapping" in str(error_for(write_config, "- a\n- b\n"))


def test_empty_file(write_config):
    assert "empty" in str(error_for(write_config, ""))


def test_python_object_tags_are_refused(write_config):
    err = error_for(write_config, "name: !!python/object/apply:os.system ['echo pwned']\n")
    assert "YAML" in str(err)


def test_billion_laughs_is_rejected():
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    with pytest.raises(ConfigError, match="aliases"):
        parse_yaml("\n".join(lines), "bomb.yaml")


def test_overrides_parse_yaml_values(write_config):
    cfg = load_config(write_config(tiny_config()), ["fit.epochs=5", "compile.optimizer.learning_rate=0.01",
                                                    "model.layers.0.units=32", "data.features=null"])
    assert cfg.fit.epochs == 5 and cfg.compile.optimizer.learning_rate == 0.01
    assert cfg.model.layers[0].args["units"] == 32


def test_override_expands_optimizer_shorthand(write_config):
    cfg = load_config(write_config(tiny_config()), ["compile.optimizer.momentum=0.9"])
    assert cfg.compile.optimizer.type == "adam" and cfg.compile.optimizer.args == {"momentum": 0.9}


def test_override_creates_missing_section(write_config):
    cfg = load_config(write_config(tiny_config()), ["fit.early_stopping.patience=2"])
    assert cfg.fit.early_stopping.patience == 2 and cfg.fit.early_stopping.monitor == "val_loss"


def test_override_without_equals(write_config):
    err = error_for(write_config, tiny_config(), "fit.epochs")
    assert err.path == "--set" and "PATH=VALUE" in str(err)


def test_override_index_out_of_range(write_config):
    err = error_for(write_config, tiny_config(), "model.layers.7.units=3")
    assert "out of range" in str(err) and "2 items" in str(err)


def test_field_overrides_win(write_config):
    cfg = load_config(write_config(tiny_config()), name="other", seed=7, device="cpu")
    assert (cfg.name, cfg.seed, cfg.device) == ("other", 7, "cpu")


def test_relative_data_path_is_resolved_against_config(write_config, tmp_path):
    cfg = load_config(write_config(tiny_config(data={"source": "sub/data.csv", "target": "y"})))
    assert cfg.data.source == str((tmp_path / "sub" / "data.csv").resolve())


def test_early_stopping_true_means_defaults(write_config):
    raw = tiny_config()
    raw["fit"]["early_stopping"] = True
    assert load_config(write_config(raw)).fit.early_stopping.patience == 5


def test_schedule_learning_rate(write_config):
    raw = tiny_config()
    raw["compile"]["optimizer"] = {"type": "sgd", "momentum": 0.9,
                                   "learning_rate": {"type": "exponential", "initial_learning_rate": 0.1,
                                                     "decay_steps": 10, "decay_rate": 0.5}}
    cfg = load_config(write_config(raw))
    assert cfg.compile.optimizer.learning_rate.type == "exponential"


def test_negative_learning_rate(write_config):
    err = error_for(write_config, tiny_config(), "compile.optimizer.learning_rate=-1")
    assert err.path == "compile.optimizer.learning_rate" and "positive" in str(err)


def test_resolved_config_round_trips(write_config):
    cfg = load_config(write_config(tiny_config()))
    again = load_config(write_config(yaml.safe_dump(cfg.to_yaml_dict(), sort_keys=False), "again.yaml"))
    assert again == cfg


def test_set_by_path_refuses_keys_on_scalars():
    raw = {"fit": {"epochs": 3}}
    with pytest.raises(ConfigError, match="has no keys"):
        set_by_path(raw, "fit.epochs.x", 1)




def test_nul_byte_in_data_path(write_config):
    err = error_for(write_config, tiny_config(data={"source": "a\x00.csv", "target": "y"}))
    assert err.path == "data.source" and "not a usable path" in str(err)
