"""The trivial baseline beside every run's metrics: its row in metrics.csv, run.json and the console.

The expected numbers are computed here with NumPy from the run's own splits (rebuilt from its
config.yaml), independently of dlcli/model/baseline.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dlcli.config import load_config
from dlcli.data import prepare

from tests.conftest import only_run, read_csv, tiny_config

pytestmark = pytest.mark.slow  # end-to-end runs: not in the quick loop (python -m pytest -m "not slow")


def train_run(cli, write_config, runs_dir: Path, cfg: dict) -> tuple[Path, str]:
    result = cli("train", write_config(cfg))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return only_run(runs_dir), result.stdout


def rows_by_split(run: Path) -> dict[str, dict[str, str]]:
    return {row["split"]: row for row in read_csv(run / "metrics.csv")}


def labels(run: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) labels of a run, as its config rebuilds them."""
    data = prepare(load_config(run / "config.yaml"))
    return data.y_train, data.y_val, data.y_test


def test_classification_baseline_is_the_majority_class_share_on_test(cli, write_config, runs_dir):
    # wine: 59 / 71 / 48 samples, so the majority class is unambiguous.
    cfg = tiny_config(data={"source": "wine", "scale": "standard"},
                      compile={"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
                               "metrics": ["accuracy"]})
    run, stdout = train_run(cli, write_config, runs_dir, cfg)
    y_train, _, y_test = labels(run)
    majority = np.bincount(y_train).argmax()
    share = float(np.mean(y_test == majority))

    rows = read_csv(run / "metrics.csv")
    assert [r["split"] for r in rows] == ["train", "val", "test", "baseline"]
    assert list(rows[-1]) == ["split", "loss", "accuracy"]
    assert float(rows[-1]["accuracy"]) == pytest.approx(share, abs=1e-6)
    # The loss of always predicting the train class shares: the cross-entropy of those shares on test.
    shares = np.bincount(y_train, minlength=3) / len(y_train)
    assert float(rows[-1]["loss"]) == pytest.approx(-np.mean(np.log(shares[y_test])), rel=1e-4)

    info = json.loads((run / "run.json").read_text())
    assert info["baseline_split"] == "test"
    assert info["baseline_metrics"]["accuracy"] == pytest.approx(share, abs=1e-6)
    assert "class_1" in info["baseline_predicts"]  # wine's majority class
    index = read_csv(runs_dir / "index.csv")[0]  # the test row's metrics, not the baseline's
    assert float(index["test_accuracy"]) == pytest.approx(float(rows[2]["accuracy"]))
    assert not any("baseline" in column for column in index)

    table = stdout[stdout.index("split"):]
    assert "\nbaseline " in table
    assert ("baseline: a model that ignores its inputs and always predicts the train split's class shares, so it "
            "always answers the majority class 'class_1'") in table
    assert "scored on the test split" in table


def test_binary_baseline_has_auc_one_half(cli, write_config, runs_dir):
    cfg = tiny_config(data={"source": "breast_cancer", "scale": "standard"},
                      model={"layers": [{"type": "Dense", "units": 1, "activation": "sigmoid"}]},
                      compile={"optimizer": "adam", "loss": "binary_crossentropy", "metrics": ["accuracy", "auc"]})
    run, _ = train_run(cli, write_config, runs_dir, cfg)
    y_train, _, y_test = labels(run)
    majority = float(np.mean(y_train) > 0.5)
    baseline = rows_by_split(run)["baseline"]
    assert float(baseline["accuracy"]) == pytest.approx(float(np.mean(y_test == majority)), abs=1e-6)
    assert float(baseline["auc"]) == pytest.approx(0.5)


def test_regression_baseline_is_the_train_mean(cli, write_config, runs_dir):
    cfg = tiny_config(data={"source": "diabetes", "scale": "standard", "split": {"stratify": False}},
                      model={"layers": [{"type": "Dense", "units": 4, "activation": "relu"},
                                        {"type": "Dense", "units": 1}]},
                      compile={"optimizer": "adam", "loss": "mse", "metrics": ["mae", "r2_score"]})
    run, stdout = train_run(cli, write_config, runs_dir, cfg)
    y_train, y_val, y_test = labels(run)
    mean = float(np.mean(y_train))
    baseline = rows_by_split(run)["baseline"]
    assert float(baseline["mae"]) == pytest.approx(np.mean(np.abs(y_test - mean)), rel=1e-4)
    assert float(baseline["loss"]) == pytest.approx(np.mean((y_test - mean) ** 2), rel=1e-4)
    assert f"always predicts the train split's mean target, {mean:.4g}" in stdout

    # The diagnosis measures the loss against the mean predictor's on the same split.
    diagnosis = json.loads((run / "diagnosis.json").read_text())
    assert diagnosis["measure"] == "loss"
    assert diagnosis["train_baseline"] == pytest.approx(np.mean((y_train - mean) ** 2), rel=1e-4)
    assert diagnosis["held_baseline"] == pytest.approx(np.mean((y_val - mean) ** 2), rel=1e-4)


def test_without_a_test_split_the_baseline_is_scored_on_val(cli, write_config, runs_dir):
    cfg = tiny_config(data={"source": "iris", "split": {"train": 0.8, "val": 0.2, "test": 0.0}, "scale": "standard"},
                      fit={"batch_size": 16, "epochs": 1})
    run, stdout = train_run(cli, write_config, runs_dir, cfg)
    y_train, y_val, _ = labels(run)
    share = float(np.mean(y_val == np.bincount(y_train).argmax()))
    rows = rows_by_split(run)
    assert set(rows) == {"train", "val", "baseline"}
    assert float(rows["baseline"]["accuracy"]) == pytest.approx(share, abs=1e-6)
    assert json.loads((run / "run.json").read_text())["baseline_split"] == "val"
    assert "scored on the val split" in stdout
