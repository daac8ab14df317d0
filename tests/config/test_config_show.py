"""`dlcli config show`: the fully resolved config as YAML, without TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from dlcli.config import load_config

from tests.conftest import tiny_config

ROOT = Path(__file__).resolve().parents[2]


def show(cli, *args):
    result = cli("config", "show", *args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.stdout


def test_show_fills_in_every_default(cli, write_config):
    shown = yaml.safe_load(show(cli, write_config(tiny_config())))
    assert list(shown)[:4] == ["name", "seed", "device", "deterministic"]
    assert shown["device"] == "auto" and shown["deterministic"] == "auto"
    assert shown["fit"]["shuffle"] is True and shown["fit"]["early_stopping"] is None
    assert shown["data"]["split"]["stratify"] is True
    assert shown["compile"]["optimizer"] == {"type": "adam", "learning_rate": None}  # `adam` expanded
    assert shown["diagnosis"] == {"measure": "auto", "high_error": 0.5, "max_gap": 0.15, "split": "val"}


def test_show_applies_overrides_and_options(cli, write_config):
    path = write_config(tiny_config())
    shown = yaml.safe_load(show(cli, path, "--set", "fit.epochs=7", "--set", "fit.early_stopping=true",
                                "--set", "compile.optimizer.learning_rate=0.01", "--seed", "5", "--name", "other",
                                "--device", "cpu"))
    assert shown["fit"]["epochs"] == 7
    assert shown["fit"]["early_stopping"]["patience"] == 5  # `true` = the defaults
    assert shown["compile"]["optimizer"]["learning_rate"] == 0.01
    assert (shown["seed"], shown["name"], shown["device"]) == (5, "other", "cpu")


def test_show_names_the_run_after_the_file_and_makes_data_paths_absolute(cli, tmp_path, write_config):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_text("a,b,y\n1,2,0\n3,4,1\n")
    cfg = tiny_config(data={"source": "data/t.csv", "target": "y"})
    del cfg["name"]
    shown = yaml.safe_load(show(cli, write_config(cfg, "my_exp.yaml")))
    assert shown["name"] == "my_exp"
    assert shown["data"]["source"] == str((tmp_path / "data" / "t.csv").resolve())


def test_shown_yaml_loads_back_to_the_same_config(cli, tmp_path, write_config):
    path = write_config(tiny_config(fit={"epochs": 3, "reduce_lr_on_plateau": True}))
    again = tmp_path / "again.yaml"
    again.write_text(show(cli, path, "--set", "model.layers.0.units=16"))
    assert load_config(again) == load_config(path, ["model.layers.0.units=16"])


def test_show_works_on_every_shipped_config(cli):
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        assert "compile:" in show(cli, path), path.name


def test_mistakes_are_one_line_and_exit_2(cli, write_config):
    path = write_config(tiny_config())
    result = cli("config", "show", path, "--set", "fit.epoch=3")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: fit.epoch: unknown key 'epoch'. did you mean 'epochs'? (allowed: ")
    assert "batch_size, early_stopping, epochs, " in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""

    bad = write_config("data: {source: iris\nmodel: [", "broken.yaml")
    result = cli("config", "show", bad)
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and "YAML syntax error" in result.stderr
    assert result.stderr.count("\n") == 1

    result = cli("config", "show", path, "--set", "fit.epochs=zero")
    assert result.exit_code == 2 and result.stderr.startswith("error: fit.epochs: ")


def test_missing_file_is_a_usage_error(cli, tmp_path):
    result = cli("config", "show", tmp_path / "nope.yaml")
    assert result.exit_code == 2 and "does not exist" in result.output


def test_config_show_does_not_import_tensorflow(write_config):
    path = write_config(tiny_config())
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom dlcli.cli import app\n"
            f"result = CliRunner().invoke(app, ['config', 'show', {str(path)!r}])\n"
            "assert result.exit_code == 0, result.output\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
