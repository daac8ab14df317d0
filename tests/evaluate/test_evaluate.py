"""`dlcli evaluate` and `dlcli plot`: reload a run, rebuild its test split, score it, write evaluations/."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_iris

from dlcli.evaluate import new_evaluation_dir
from tests.conftest import ok, user_error

pytestmark = pytest.mark.slow  # end-to-end runs: not in the quick loop (python -m pytest -m "not slow")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"





def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert len(data) > 5_000, (path, len(data))


def train(tmp: Path, cfg: dict[str, Any], runs_dir: Path) -> Path:
    config = tmp / f"{cfg['name']}.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    ok("train", config, "--runs-dir", runs_dir)
    (run,) = [p for p in runs_dir.iterdir() if p.is_dir() and p.name.endswith(f"-{cfg['name']}")]
    return run


def evaluation_dirs(run: Path) -> list[Path]:
    return sorted((run / "evaluations").iterdir())


def config(name: str, source: str, loss: str, units: int, activation: str, metrics: list[str],
           **data: Any) -> dict[str, Any]:
    return {
        "name": name, "seed": 3,
        "data": {"source": source, "split": {"train": 0.6, "val": 0.2, "test": 0.2}, "scale": "standard", **data},
        "model": {"layers": [{"type": "Dense", "units": 16, "activation": "relu"},
                             {"type": "Dense", "units": units, "activation": activation}]},
        "compile": {"optimizer": {"type": "adam", "learning_rate": 0.01}, "loss": loss, "metrics": metrics},
        "fit": {"batch_size": 16, "epochs": 3},
    }


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("eval") / "runs"


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory, runs_dir) -> Path:
    cfg = config("iris", "iris", "sparse_categorical_crossentropy", 3, "softmax", ["accuracy"])
    return train(tmp_path_factory.mktemp("iris"), cfg, runs_dir)


@pytest.fixture(scope="module")
def csv_files(tmp_path_factory) -> dict[str, Path]:
    """Iris as CSV files with named columns and string labels: a training file and another labelled file."""
    tmp = tmp_path_factory.mktemp("csv")
    df = load_iris(as_frame=True).frame.sample(frac=1.0, random_state=0)
    df["species"] = [("setosa", "versicolor", "virginica")[i] for i in df.pop("target")]
    df.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in df.columns]
    paths = {"train": tmp / "flowers.csv", "new": tmp / "new_flowers.csv", "dir": tmp}
    df.iloc[:110].to_csv(paths["train"], index=False)
    df.iloc[110:].to_csv(paths["new"], index=False)
    return paths


@pytest.fixture(scope="module")
def csv_run(csv_files, runs_dir) -> Path:
    cfg = config("flowers", str(csv_files["train"]), "sparse_categorical_crossentropy", 3, "softmax", ["accuracy"],
                 target="species")
    return train(csv_files["dir"], cfg, runs_dir)


# ---------------------------------------------------------------------------------------------
# The run's own test split


def test_evaluate_equals_the_test_row_of_training(iris_run, runs_dir):
    ok("evaluate", iris_run.name, "--runs-dir", runs_dir)  # a bare run id, resolved under --runs-dir
    (evaluation,) = evaluation_dirs(iris_run)
    trained = {r["split"]: r for r in read_rows(iris_run / "metrics.csv")}["test"]
    (again,) = read_rows(evaluation / "metrics.csv")
    assert list(again) == list(trained)  # the same columns: split, loss, accuracy
    assert again["split"] == "test"
    for column in ("loss", "accuracy"):
        assert abs(float(again[column]) - float(trained[column])) <= 1e-6, column


def test_classification_files_confusion_matrix_and_report(iris_run, runs_dir):
    result = ok("evaluate", iris_run, "--runs-dir", runs_dir)  # a path works as well
    evaluation = evaluation_dirs(iris_run)[-1]
    info = json.loads((iris_run / "run.json").read_text())
    test_size = info["data"]["test"]

    matrix = read_rows(evaluation / "confusion_matrix.csv")
    names = ["setosa", "versicolor", "virginica"]
    assert [r["true\\predicted"] for r in matrix] == names
    assert list(matrix[0])[1:] == names
    assert sum(int(r[n]) for r in matrix for n in names) == test_size

    report = read_rows(evaluation / "classification_report.csv")
    assert list(report[0]) == ["class", "precision", "recall", "f1", "support", "roc_auc"]
    assert [r["class"] for r in report] == names + ["macro avg", "weighted avg"]
    assert sum(int(r["support"]) for r in report[:3]) == test_size

    scores = {r["metric"]: float(r["value"]) for r in read_rows(evaluation / "scores.csv")}
    assert {"f1_macro", "f1_weighted", "roc_auc_ovr_macro", "accuracy"} <= set(scores)
    assert 0.0 <= scores["roc_auc_ovr_macro"] <= 1.0
    trained = {r["split"]: r for r in read_rows(iris_run / "metrics.csv")}["test"]
    assert abs(scores["accuracy"] - float(trained["accuracy"])) < 1e-6  # sklearn agrees with Keras
    assert_png(evaluation / "confusion_matrix.png")
    # The tables are printed too.
    for title in ("metrics:", "scores:", "per class:", "confusion matrix:", "f1_macro", "virginica"):
        assert title in result.stdout


def test_json_format_is_one_document(iris_run, runs_dir):
    result = ok("evaluate", iris_run, "--format", "json", "--runs-dir", runs_dir)
    data = json.loads(result.stdout)
    assert data["metrics"][0]["split"] == "test"
    assert {s["metric"] for s in data["scores"]} >= {"f1_macro", "roc_auc_ovr_macro"}
    assert "saved to" in result.stderr


def test_evaluation_directories_never_collide(tmp_path):
    first, second, third = (new_evaluation_dir(tmp_path) for _ in range(3))
    assert len({first, second, third}) == 3 and all(p.is_dir() for p in (first, second, third))


def test_plot_writes_learning_curves_and_confusion_matrix(iris_run, runs_dir, tmp_path):
    assert_png(iris_run / "learning_curves.png")  # every train run draws its curves
    result = ok("plot", iris_run.name, "--output-dir", tmp_path / "plots", "--runs-dir", runs_dir)
    for name in ("learning_curves.png", "confusion_matrix.png"):
        assert_png(tmp_path / "plots" / name)
        assert name in result.stdout


def test_binary_classification_has_roc_auc(tmp_path_factory, runs_dir):
    cfg = config("cancer", "breast_cancer", "binary_crossentropy", 1, "sigmoid", ["accuracy"])
    run = train(tmp_path_factory.mktemp("cancer"), cfg, runs_dir)
    ok("evaluate", run, "--runs-dir", runs_dir)
    evaluation = evaluation_dirs(run)[-1]
    scores = {r["metric"]: float(r["value"]) for r in read_rows(evaluation / "scores.csv")}
    assert 0.5 < scores["roc_auc"] <= 1.0
    trained = {r["split"]: r for r in read_rows(run / "metrics.csv")}["test"]
    (again,) = read_rows(evaluation / "metrics.csv")
    assert abs(float(again["loss"]) - float(trained["loss"])) <= 1e-6
    matrix = read_rows(evaluation / "confusion_matrix.csv")
    assert [r["true\\predicted"] for r in matrix] == ["malignant", "benign"]


def test_regression_adds_mae_mse_rmse_r2(tmp_path_factory, runs_dir):
    cfg = config("diabetes", "diabetes", "mse", 1, "linear", ["mae"])
    cfg["data"]["split"]["stratify"] = False
    run = train(tmp_path_factory.mktemp("diabetes"), cfg, runs_dir)
    result = ok("evaluate", run, "--runs-dir", runs_dir)
    evaluation = evaluation_dirs(run)[-1]
    scores = {r["metric"]: float(r["value"]) for r in read_rows(evaluation / "scores.csv")}
    assert {"mae", "mse", "rmse", "r2"} <= set(scores)
    assert math.isclose(scores["rmse"], math.sqrt(scores["mse"]))
    trained = {r["split"]: r for r in read_rows(run / "metrics.csv")}["test"]
    assert math.isclose(scores["mse"], float(trained["loss"]), rel_tol=1e-4)  # sklearn's MSE = Keras's mse loss
    assert math.isclose(scores["mae"], float(trained["mae"]), rel_tol=1e-4)
    assert not (evaluation / "confusion_matrix.csv").exists()
    assert "r2" in result.stdout


# ---------------------------------------------------------------------------------------------
# Other labelled data


def test_evaluate_on_another_csv(csv_run, csv_files, runs_dir):
    result = ok("evaluate", csv_run, "--data", csv_files["new"], "--runs-dir", runs_dir)
    evaluation = evaluation_dirs(csv_run)[-1]
    (row,) = read_rows(evaluation / "metrics.csv")
    assert list(row) == ["split", "loss", "accuracy"]
    assert row["split"] == "new_flowers.csv"
    matrix = read_rows(evaluation / "confusion_matrix.csv")
    assert sum(int(v) for r in matrix for k, v in r.items() if k != "true\\predicted") == 40
    assert "new_flowers.csv" in result.stdout


def test_evaluate_on_a_bundled_dataset_csv_with_class_indices(iris_run, runs_dir, tmp_path):
    # scikit-learn's frame spelling: the feature names, and `target` holding class indices.
    frame = load_iris(as_frame=True).frame.iloc[::5]
    frame.to_csv(tmp_path / "iris_sample.csv", index=False)
    ok("evaluate", iris_run, "--data", tmp_path / "iris_sample.csv", "--runs-dir", runs_dir)
    (row,) = read_rows(evaluation_dirs(iris_run)[-1] / "metrics.csv")
    assert row["split"] == "iris_sample.csv" and 0.0 <= float(row["accuracy"]) <= 1.0


# ---------------------------------------------------------------------------------------------
# Bad input: one line, exit 2, no traceback


def test_a_directory_that_is_not_a_run(tmp_path, runs_dir):
    assert "not a dlcli run directory" in user_error("evaluate", tmp_path, "--runs-dir", runs_dir)
    assert "no such run" in user_error("evaluate", "20990101-000000-nope", "--runs-dir", runs_dir)


def test_a_failed_run_and_a_run_without_model(tmp_path):
    run = tmp_path / "runs" / "20260101-000000-broken"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"run_id": run.name, "status": "failed",
                                              "reason": "loss became NaN at epoch 2"}))
    message = user_error("evaluate", run)
    assert "did not complete" in message and "failed" in message and "NaN" in message
    (run / "run.json").write_text(json.dumps({"run_id": run.name, "status": "completed"}))
    assert "no model.keras" in user_error("evaluate", run)
    assert "no model.keras" in user_error("predict", run, "--input", run / "run.json", "--output", tmp_path / "p.csv")


def test_data_missing_the_target_column(csv_run, csv_files, tmp_path, runs_dir):
    df = pd.read_csv(csv_files["new"]).drop(columns="species")
    df.to_csv(tmp_path / "unlabelled.csv", index=False)
    message = user_error("evaluate", csv_run, "--data", tmp_path / "unlabelled.csv", "--runs-dir", runs_dir)
    assert "target column 'species' is missing" in message


def test_data_with_different_feature_columns(csv_run, csv_files, tmp_path, runs_dir):
    df = pd.read_csv(csv_files["new"])
    df.drop(columns="petal_width").to_csv(tmp_path / "fewer.csv", index=False)
    assert "'petal_width' is missing" in user_error("evaluate", csv_run, "--data", tmp_path / "fewer.csv")
    df.drop(columns=["petal_width", "sepal_width"]).to_csv(tmp_path / "fewer2.csv", index=False)
    assert "columns 'sepal_width', 'petal_width' are missing" in user_error("evaluate", csv_run, "--data",
                                                                           tmp_path / "fewer2.csv")
    assert not (csv_run / "evaluations").exists() or all(
        (d / "metrics.csv").exists() for d in evaluation_dirs(csv_run))  # nothing half-written


def test_changed_data_stops_unless_forced(csv_run, csv_files, runs_dir):
    path = csv_files["train"]
    original = path.read_text()
    try:
        path.write_text("\n".join(original.splitlines()[:-1]) + "\n")  # one sample fewer
        message = user_error("evaluate", csv_run, "--runs-dir", runs_dir)
        assert "data changed" in message and "fingerprint" in message and "--force" in message
        before = len(evaluation_dirs(csv_run)) if (csv_run / "evaluations").exists() else 0
        ok("evaluate", csv_run, "--force", "--runs-dir", runs_dir)
        assert len(evaluation_dirs(csv_run)) == before + 1
    finally:
        path.write_text(original)
