"""End-to-end `dlcli train` / `dlcli validate` through the CLI, on tiny data and 1-2 epochs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import BACKEND, only_run, read_csv, tiny_config

pytestmark = pytest.mark.slow  # end-to-end runs: not in the quick loop (python -m pytest -m "not slow")




def assert_no_run(runs_dir: Path) -> None:
    assert not runs_dir.exists() or not [p for p in runs_dir.iterdir() if p.is_dir()]


def train_ok(cli, config: Path, *args: str):
    result = cli("train", config, *args)
    assert result.exit_code == 0, result.output + str(result.exception)
    return result


# ---------------------------------------------------------------------------------------------
# What a run leaves behind


def test_train_writes_every_file_with_its_columns(cli, write_config, runs_dir):
    result = train_ok(cli, write_config(tiny_config()))
    run = only_run(runs_dir)
    assert run.name.endswith("-tiny") and len(run.name.split("-")[0]) == 8
    for name in ("config.yaml", "history.csv", "metrics.csv", "model.keras", "summary.txt", "run.json"):
        assert (run / name).is_file() and (run / name).stat().st_size > 0, name

    history = read_csv(run / "history.csv")
    assert [int(r["epoch"]) for r in history] == [1, 2]
    assert list(history[0]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]

    metrics = read_csv(run / "metrics.csv")
    assert [r["split"] for r in metrics] == ["train", "val", "test", "baseline"]  # see tests/train/test_baseline.py
    assert list(metrics[0]) == ["split", "loss", "accuracy"]
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 for r in metrics)

    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["seed"] == 1 and info["device_used"] == "cpu"
    assert info["deterministic_ops"] is False  # deterministic: auto, on a CPU
    assert info["params"] == (4 * 8 + 8) + (8 * 3 + 3)
    assert {"python", BACKEND, "keras", "dlcli"} <= set(info["versions"]) and info["versions"]["backend"] == BACKEND
    assert info["data"]["fingerprint"].startswith("sha256:")
    assert (info["data"]["train"], info["data"]["val"], info["data"]["test"]) == (90, 30, 30)
    assert info["seconds"] > 0 and info["started"] and info["ended"]

    summary = (run / "summary.txt").read_text()
    assert "dense" in summary.lower() and "67" in summary  # total params

    index = read_csv(runs_dir / "index.csv")
    assert len(index) == 1
    row = index[0]
    assert row["run_id"] == run.name and row["status"] == "completed" and row["command"] == "train"
    assert float(row["test_accuracy"]) == pytest.approx(float(metrics[2]["accuracy"]))
    assert float(row["test_loss"]) == pytest.approx(float(metrics[2]["loss"]))

    # The console shows the metrics table and where the run went.
    assert "split" in result.stdout and "test" in result.stdout and str(run.name) in result.stdout


def test_resolved_config_repeats_the_run(cli, write_config, runs_dir):
    train_ok(cli, write_config(tiny_config()), "--set", "fit.epochs=1")
    first = only_run(runs_dir)
    saved = yaml.safe_load((first / "config.yaml").read_text())
    assert saved["fit"]["epochs"] == 1 and saved["deterministic"] == "auto"  # defaults filled in
    train_ok(cli, first / "config.yaml", "--runs-dir", runs_dir / "again")
    second = only_run(runs_dir / "again")
    assert (first / "metrics.csv").read_text() == (second / "metrics.csv").read_text()
    assert (first / "history.csv").read_text() == (second / "history.csv").read_text()


def test_op_determinism_on_a_cpu_only_when_asked(cli, write_config, runs_dir):
    """``deterministic: auto`` (the default) leaves op determinism off on a CPU, where the same seed gives the same
    numbers without it (a small CNN, whose convolutions run on several threads, trained twice); ``true`` turns it
    on, and run.json records which."""
    cnn = tiny_config(
        data={"source": "digits", "split": {"train": 0.6, "val": 0.2, "test": 0.2}, "scale": "minmax",
              "reshape": [8, 8, 1]},
        model={"layers": [{"type": "Conv2D", "filters": 8, "kernel_size": 3, "padding": "same", "activation": "relu"},
                          {"type": "MaxPooling2D", "pool_size": 2}, {"type": "Flatten"},
                          {"type": "Dropout", "rate": 0.2}, {"type": "Dense", "units": 10, "activation": "softmax"}]},
        fit={"batch_size": 32, "epochs": 2})
    config = write_config(cnn)
    runs = []
    for where in ("first", "second"):
        train_ok(cli, config, "--runs-dir", runs_dir / where)
        runs.append(only_run(runs_dir / where))
        assert json.loads((runs[-1] / "run.json").read_text())["deterministic_ops"] is False
    for name in ("history.csv", "metrics.csv"):
        assert (runs[0] / name).read_text() == (runs[1] / name).read_text(), name
    if BACKEND == "tensorflow":
        from tensorflow.python.framework import config as tf_config

        assert not tf_config.is_op_determinism_enabled()
    try:
        train_ok(cli, config, "--runs-dir", runs_dir / "asked", "--set", "deterministic=true", "--set", "fit.epochs=1")
        assert json.loads((only_run(runs_dir / "asked") / "run.json").read_text())["deterministic_ops"] is True
        if BACKEND == "tensorflow":
            assert tf_config.is_op_determinism_enabled()
    finally:
        if BACKEND == "tensorflow":  # the tests after this one in the process run as a user's default would
            tf_config.disable_op_determinism()


def test_overrides_and_name_seed(cli, write_config, runs_dir):
    train_ok(cli, write_config(tiny_config()), "--set", "fit.epochs=1", "--set", "model.layers.0.units=5",
             "--name", "renamed", "--seed", "3", "--device", "cpu")
    run = only_run(runs_dir)
    assert run.name.endswith("-renamed")
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["model"]["layers"][0]["units"] == 5 and cfg["seed"] == 3 and cfg["device"] == "cpu"
    assert len(read_csv(run / "history.csv")) == 1


def test_runs_dir_option_and_env(cli, write_config, tmp_path, runs_dir):
    train_ok(cli, write_config(tiny_config()), "--set", "fit.epochs=1", "--runs-dir", tmp_path / "elsewhere")
    assert only_run(tmp_path / "elsewhere") and not runs_dir.exists()


def test_same_second_runs_get_distinct_dirs(cli, write_config, runs_dir):
    config = write_config(tiny_config(fit={"epochs": 1}))
    for _ in range(2):
        train_ok(cli, config)
    assert len([p for p in runs_dir.iterdir() if p.is_dir()]) == 2
    assert len(read_csv(runs_dir / "index.csv")) == 2


def test_name_cannot_escape_runs_dir(cli, write_config, runs_dir, tmp_path):
    train_ok(cli, write_config(tiny_config(fit={"epochs": 1})), "--name", "../../etc/x")
    run = only_run(runs_dir)
    assert run.parent == runs_dir and ".." not in run.name and "/" not in run.name


def test_early_stopping_and_reduce_lr(cli, write_config, runs_dir):
    cfg = tiny_config(fit={"epochs": 30, "batch_size": 16,
                           "early_stopping": {"monitor": "val_loss", "patience": 0, "min_delta": 10.0},
                           "reduce_lr_on_plateau": {"patience": 0, "factor": 0.5}})
    result = train_ok(cli, write_config(cfg))
    run = only_run(runs_dir)
    history = read_csv(run / "history.csv")
    assert len(history) < 30  # stopped early
    assert "learning_rate" in history[0]
    assert "epochs" in result.stdout


# ---------------------------------------------------------------------------------------------
# Data sources


def test_binary_classification_with_auc(cli, write_config, runs_dir):
    cfg = tiny_config(
        data={"source": "breast_cancer", "scale": "standard"},
        model={"layers": [{"type": "Dense", "units": 4, "activation": "relu"},
                          {"type": "Dense", "units": 1, "activation": "sigmoid"}]},
        compile={"optimizer": "adam", "loss": "binary_crossentropy", "metrics": ["accuracy", "auc", "f1_score"]},
    )
    train_ok(cli, write_config(cfg))
    metrics = read_csv(only_run(runs_dir) / "metrics.csv")
    assert list(metrics[0]) == ["split", "loss", "accuracy", "auc", "f1_score"]


def test_regression(cli, write_config, runs_dir):
    cfg = tiny_config(
        data={"source": "diabetes", "scale": "standard", "split": {"stratify": False}},
        model={"layers": [{"type": "Dense", "units": 8, "activation": "relu"}, {"type": "Dense", "units": 1}]},
        compile={"optimizer": {"type": "sgd", "momentum": 0.9, "nesterov": True,
                               "learning_rate": {"type": "cosine", "initial_learning_rate": 0.001,
                                                 "decay_steps": 20}},
                 "loss": "mse", "metrics": ["mae"]},
    )
    train_ok(cli, write_config(cfg))
    run = only_run(runs_dir)
    assert list(read_csv(run / "metrics.csv")[0]) == ["split", "loss", "mae"]
    assert json.loads((run / "run.json").read_text())["data"]["task"] == "regression"


def make_table(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=n), rng.normal(size=n)
    return pd.DataFrame({"a": a, "b": b, "noise": rng.normal(size=n),
                         "label": np.where(a + b > 0, "yes", "no")})


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_sources_with_string_classes(cli, write_config, tmp_path, runs_dir, suffix):
    df = make_table()
    path = tmp_path / f"table{suffix}"
    df.to_csv(path, index=False) if suffix == ".csv" else df.to_parquet(path, index=False)
    cfg = tiny_config(
        data={"source": path.name, "target": "label", "features": ["a", "b"], "scale": "standard"},
        model={"layers": [{"type": "Dense", "units": 2, "activation": "softmax"}]},
        compile={"optimizer": "adam", "loss": "categorical_crossentropy", "metrics": ["accuracy", "auc"]},
    )
    train_ok(cli, write_config(cfg))
    run = only_run(runs_dir)
    info = json.loads((run / "run.json").read_text())
    assert info["data"]["classes"] == ["no", "yes"] and info["data"]["input_shape"] == [2]
    assert sum(info["data"][s] for s in ("train", "val", "test")) == 60


def test_npz_source_with_reshape_and_conv(cli, write_config, tmp_path, runs_dir):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "images.npz", x=rng.random((40, 16)).astype("float32"), y=rng.integers(0, 2, 40))
    cfg = tiny_config(
        data={"source": "images.npz", "reshape": [4, 4, 1], "scale": "minmax"},
        model={"layers": [{"type": "Conv2D", "filters": 2, "kernel_size": 2, "activation": "relu"},
                          {"type": "MaxPooling2D", "pool_size": 2}, {"type": "Flatten"},
                          {"type": "Dense", "units": 2, "activation": "softmax"}]},
    )
    train_ok(cli, write_config(cfg))
    info = json.loads((only_run(runs_dir) / "run.json").read_text())
    assert info["data"]["input_shape"] == [4, 4, 1]


def test_keras_loader_source_uses_its_own_test_split(cli, write_config, runs_dir, monkeypatch):
    from dlcli.runtime import import_keras

    keras = import_keras()
    rng = np.random.default_rng(0)

    def fake_load_data():
        return ((rng.integers(0, 255, (50, 6, 6), dtype=np.uint8), rng.integers(0, 3, 50, dtype=np.uint8)),
                (rng.integers(0, 255, (12, 6, 6), dtype=np.uint8), rng.integers(0, 3, 12, dtype=np.uint8)))

    monkeypatch.setattr(keras.datasets.mnist, "load_data", fake_load_data)
    cfg = tiny_config(
        data={"source": "mnist", "scale": "rescale", "reshape": [6, 6, 1],
              "split": {"train": 0.8, "val": 0.2, "test": 0.0}},
        model={"layers": [{"type": "Flatten"}, {"type": "Dense", "units": 3, "activation": "softmax"}]},
    )
    train_ok(cli, write_config(cfg))
    info = json.loads((only_run(runs_dir) / "run.json").read_text())
    assert (info["data"]["train"], info["data"]["val"], info["data"]["test"]) == (40, 10, 12)


def test_validate_prints_summary_and_writes_nothing(cli, write_config, runs_dir):
    result = cli("validate", write_config(tiny_config()))
    assert result.exit_code == 0, result.output
    assert "Total params" in result.stdout and "90 train / 30 val / 30 test" in result.stdout
    assert result.stdout.rstrip().endswith("OK")
    assert_no_run(runs_dir)


# ---------------------------------------------------------------------------------------------
# Bad input: one message naming the YAML path, exit 2, no run directory


BAD_CONFIGS = [
    # (override(s), expected path, expected text)
    (["model.layers.0.activation=relu2"], "model.layers[0].activation", "did you mean 'relu'"),
    (["model.layers.0.type=Dense2"], "model.layers[0].type", "did you mean 'Dense'"),
    (["model.layers.0.unitz=3"], "model.layers[0].unitz", "did you mean 'units'"),
    (["model.layers.0.units=-3"], "model.layers[0]", "positive integer"),
    (["compile.optimizer=adamm"], "compile.optimizer.type", "did you mean 'adam'"),
    (["compile.optimizer.momentm=0.9"], "compile.optimizer.momentm", "has no argument"),
    (["compile.loss=sparse_categorical_crossentropyy"], "compile.loss", "did you mean"),
    (["compile.metrics=[acuracy]"], "compile.metrics[0]", "did you mean 'accuracy'"),
    (["compile.metrics=[mse]"], "compile.metrics[0]", "cannot compare"),
    (["compile.metrics=[auc]"], "compile.metrics[0]", "categorical_crossentropy"),
    (["model.layers.1.units=10"], "model.layers[1].units", "3 classes"),
    (["data.split.train=0.5"], "data.split", "sum to 1"),
    (["data.source=missing.csv"], "data.source", "file not found"),
    (["data.source=irs"], "data.source", "did you mean 'iris'"),
    (["data.reshape=[3, 3]"], "data.reshape", "multiply to 4"),
    (["fit.early_stopping.monitor=val_acc"], "fit.early_stopping.monitor", "val_accuracy"),
    (["fitt.epochs=3"], "fitt", "did you mean 'fit'"),
    (["fit.epochs=abc"], "fit.epochs", "integer"),
    (["device=gpu"], "device", "no GPU"),
    (["model.layers.0.kernel_regularizer={type: L3}"], "model.layers[0].kernel_regularizer.type", "L2"),
    (["model.layers.0.type=InputLayer"], "model.layers[0].type", "input shape comes from the data"),
    (["compile.optimizer.learning_rate={type: expo, decay_steps: 3}"], "compile.optimizer.learning_rate.type",
     "exponential"),
]


@pytest.mark.parametrize(("overrides", "path", "text"), BAD_CONFIGS, ids=[b[1] + ":" + b[0][0] for b in BAD_CONFIGS])
def test_bad_config_is_one_clear_error(cli, write_config, runs_dir, overrides, path, text):
    args = [a for o in overrides for a in ("--set", o)]
    result = cli("train", write_config(tiny_config()), *args)
    assert result.exit_code == 2, result.output + repr(result.exception)
    message = result.stderr.strip()
    assert message.startswith(f"error: {path}:"), message
    assert text in message and "Traceback" not in result.output
    assert len(message.splitlines()) == 1
    assert_no_run(runs_dir)


def test_layer_that_shrinks_input_below_zero(cli, write_config, runs_dir):
    cfg = tiny_config(
        data={"source": "digits", "reshape": [8, 8, 1]},
        model={"layers": [{"type": "Conv2D", "filters": 2, "kernel_size": 3},
                          {"type": "MaxPooling2D", "pool_size": 16}, {"type": "Flatten"},
                          {"type": "Dense", "units": 10, "activation": "softmax"}]},
    )
    result = cli("validate", write_config(cfg))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: model.layers[1]: MaxPooling2D cannot take input of shape (None, 6, 6, 2)")


def test_missing_flatten_is_explained(cli, write_config):
    cfg = tiny_config(
        data={"source": "digits", "reshape": [8, 8, 1]},
        model={"layers": [{"type": "Conv2D", "filters": 2, "kernel_size": 3},
                          {"type": "Dense", "units": 10, "activation": "softmax"}]},
    )
    result = cli("validate", write_config(cfg))
    assert result.exit_code == 2 and "add Flatten" in result.stderr


def test_yaml_syntax_error_via_cli(cli, write_config, runs_dir):
    result = cli("train", write_config("data:\n  source: [iris\n"))
    assert result.exit_code == 2 and "YAML syntax error at line" in result.stderr
    assert_no_run(runs_dir)


def test_missing_config_file(cli, tmp_path):
    result = cli("train", tmp_path / "nope.yaml")
    assert result.exit_code == 2 and "does not exist" in result.output


def test_missing_target_column(cli, write_config, tmp_path, runs_dir):
    make_table().to_csv(tmp_path / "t.csv", index=False)
    result = cli("train", write_config(tiny_config(data={"source": "t.csv", "target": "lable"})))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: data.target: 'lable' is not a column") and "did you mean 'label'" in (
        result.stderr)
    assert_no_run(runs_dir)


def test_non_numeric_feature_column_is_named(cli, write_config, tmp_path):
    df = make_table()
    df["a"] = df["a"].astype(str)
    df.loc[3, "a"] = "oops"
    df.to_csv(tmp_path / "t.csv", index=False)
    result = cli("train", write_config(tiny_config(data={"source": "t.csv", "target": "label"})))
    assert result.exit_code == 2, result.output
    assert "column 'a' is numeric, but data row 4 holds 'oops' (1 such value(s))" in result.stderr


def test_nan_loss_marks_run_failed(cli, write_config, tmp_path, runs_dir):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "big.npz", x=rng.normal(size=(40, 3)).astype("float32") * 1e18,
             y=rng.normal(size=40).astype("float32"))
    cfg = tiny_config(
        data={"source": "big.npz", "split": {"stratify": False}},
        model={"layers": [{"type": "Dense", "units": 1}]},
        compile={"optimizer": {"type": "sgd", "learning_rate": 1.0}, "loss": "mse"},
        fit={"epochs": 5, "batch_size": 8},
    )
    result = cli("train", write_config(cfg))
    assert result.exit_code == 1, result.output
    assert "loss became NaN at epoch 1" in result.stderr
    run = only_run(runs_dir)
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "failed" and info["reason"] == "loss became NaN at epoch 1"
    assert read_csv(runs_dir / "index.csv")[0]["status"] == "failed"
    assert not (run / "model.keras").exists()


# ---------------------------------------------------------------------------------------------
# Light commands stay light


def test_help_does_not_import_tensorflow():
    code = ("import sys; from typer.testing import CliRunner; from dlcli.cli import app; "
            "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
            "assert 'train' in r.output; print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"


def test_config_errors_need_no_tensorflow(write_config):
    code = ("import sys; from dlcli.config import load_config\n"
            "try:\n    load_config(sys.argv[1], ['fit.epochs=abc'])\nexcept Exception as e: print(type(e).__name__)\n"
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(write_config(tiny_config()))], capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["ConfigError", "False"]


def test_backup_can_be_turned_off(cli, write_config, runs_dir):
    train_ok(cli, write_config(tiny_config(fit={"epochs": 2, "backup": False})))
    run = only_run(runs_dir)
    assert not (run / "backup").exists() and len(read_csv(run / "history.csv")) == 2


@pytest.mark.parametrize("cadence, saved", [("default", [3]), ("every epoch", [1, 2, 3])])
def test_the_backup_is_saved_every_few_seconds_and_when_the_fit_ends(cli, write_config, runs_dir, monkeypatch,
                                                                     cadence, saved):
    import keras

    from dlcli.train import backup

    saves: list[int] = []
    save = keras.callbacks.BackupAndRestore._save_model
    monkeypatch.setattr(keras.callbacks.BackupAndRestore, "_save_model",
                        lambda self: (saves.append(self._current_epoch), save(self)))
    if cadence == "every epoch":  # what the test can tell apart
        monkeypatch.setattr(backup, "BACKUP_SECONDS", 0.0)
        monkeypatch.setattr(backup, "BACKUP_COST_FACTOR", 0.0)
    train_ok(cli, write_config(tiny_config(fit={"epochs": 3, "batch_size": 16})))
    # Three short epochs, well within the default 5 s: one save, when the fit ends.
    assert saves == saved
    assert len(read_csv(only_run(runs_dir) / "history.csv")) == 3


# A C++ log line of TensorFlow / absl: "E0000 00:00:1796285987.878694   13614 node_def_util.cc:682] ...", or the
# "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR" that comes first.
CPP_LOG_LINE = r"(?m)^([IWEF]\d{4} \d\d:\d\d:[\d.]+ +\d+ [\w.]+:\d+\]|WARNING: All log messages before absl)"


def test_tensorflow_cpp_log_lines_only_with_verbose(write_config, tmp_path):
    import os
    import re

    # 2 is a common setting in users' shells; it lets TensorFlow's "E0000 ... use_unbounded_threadpool" through.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    config = write_config(tiny_config(fit={"epochs": 1}))
    quiet, verbose = (subprocess.run([sys.executable, "-m", "dlcli.cli", *flag, "train", str(config), "--runs-dir",
                                      str(tmp_path / "runs")], env=env, capture_output=True, text=True, timeout=300)
                      for flag in ([], ["--verbose"]))
    assert quiet.returncode == 0 and verbose.returncode == 0, quiet.stderr + verbose.stderr
    assert not re.search(CPP_LOG_LINE, quiet.stderr), quiet.stderr
    if BACKEND == "tensorflow":  # only TensorFlow logs from C++
        assert re.search(CPP_LOG_LINE, verbose.stderr), verbose.stderr
