"""Model files load in Keras safe mode: a Lambda layer (arbitrary code) is refused unless --unsafe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlcli.runs import file_digest

from tests.conftest import tiny_config


def swap_model(run_dir: Path, model) -> None:
    """Replace the run's model and its checksum in run.json, as a tampered run shared whole would be (a
    model swapped without the record is refused earlier, as changed since the run finished)."""
    model.save(run_dir / "model.keras")
    info = json.loads((run_dir / "run.json").read_text())
    info["files"]["model.keras"] = file_digest(run_dir / "model.keras")
    (run_dir / "run.json").write_text(json.dumps(info))


@pytest.mark.slow
def test_lambda_model_is_refused_unless_unsafe(cli, write_config, runs_dir):
    from dlcli.runtime import import_keras

    assert cli("train", write_config(tiny_config(fit={"epochs": 1}))).exit_code == 0
    run_dir = next(p for p in runs_dir.iterdir() if p.is_dir())
    keras = import_keras()
    hostile = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 1.0),
                                keras.layers.Dense(3, activation="softmax")])
    hostile.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hostile.save(run_dir / "model.keras")
    assert "changed since the run finished" in cli("evaluate", run_dir).stderr
    swap_model(run_dir, hostile)

    refused = cli("evaluate", run_dir)
    assert refused.exit_code == 2, refused.output
    assert "Lambda" in refused.stderr and "--unsafe" in refused.stderr and "Traceback" not in refused.output
    assert not (run_dir / "evaluations").exists() or not any((run_dir / "evaluations").iterdir())

    trusted = cli("evaluate", run_dir, "--unsafe")
    assert trusted.exit_code == 0, trusted.output + str(trusted.exception)


@pytest.mark.slow
def test_predict_refuses_lambda_too(cli, write_config, runs_dir, tmp_path):
    from dlcli.runtime import import_keras

    assert cli("train", write_config(tiny_config(fit={"epochs": 1}))).exit_code == 0
    run_dir = next(p for p in runs_dir.iterdir() if p.is_dir())
    keras = import_keras()
    hostile = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x + 0.0),
                                keras.layers.Dense(3, activation="softmax")])
    swap_model(run_dir, hostile)
    inputs = Path(tmp_path / "x.csv")
    inputs.write_text("sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)\n5.1,3.5,1.4,0.2\n")
    result = cli("predict", run_dir, "--input", inputs, "--output", tmp_path / "p.csv")
    assert result.exit_code == 2 and "--unsafe" in result.stderr
    assert not (tmp_path / "p.csv").exists()
