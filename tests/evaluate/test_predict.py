"""`dlcli predict`: one row per input, the predicted class (or value) and a probability per class."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_diabetes, load_iris

from tests.conftest import ok, user_error

pytestmark = pytest.mark.slow  # end-to-end runs: not in the quick loop (python -m pytest -m "not slow")

CLASSES = ["setosa", "versicolor", "virginica"]
PROB_COLUMNS = [f"prob_{c}" for c in CLASSES]





def flowers() -> pd.DataFrame:
    df = load_iris(as_frame=True).frame.sample(frac=1.0, random_state=1)
    df["species"] = [CLASSES[i] for i in df.pop("target")]
    df.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in df.columns]
    return df.reset_index(drop=True)


def train(tmp: Path, runs_dir: Path, cfg: dict[str, Any]) -> Path:
    config = tmp / f"{cfg['name']}.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    ok("train", config, "--runs-dir", runs_dir)
    (run,) = [p for p in runs_dir.iterdir() if p.is_dir() and p.name.endswith(f"-{cfg['name']}")]
    return run


def small_model(units: int, activation: str) -> dict[str, Any]:
    return {"layers": [{"type": "Dense", "units": 8, "activation": "relu"},
                       {"type": "Dense", "units": units, "activation": activation}]}


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("predict") / "runs"


@pytest.fixture(scope="module")
def flowers_run(tmp_path_factory, runs_dir) -> Path:
    """A classifier trained on a CSV file with named columns and string labels."""
    tmp = tmp_path_factory.mktemp("flowers")
    flowers().to_csv(tmp / "flowers.csv", index=False)
    cfg = {"name": "flowers", "seed": 2,
           "data": {"source": str(tmp / "flowers.csv"), "target": "species", "scale": "standard"},
           "model": small_model(3, "softmax"),
           "compile": {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
           "fit": {"epochs": 2, "batch_size": 16}}
    return train(tmp, runs_dir, cfg)


@pytest.fixture(scope="module")
def diabetes_run(tmp_path_factory, runs_dir) -> Path:
    cfg = {"name": "diabetes", "seed": 2,
           "data": {"source": "diabetes", "scale": "standard", "split": {"stratify": False}},
           "model": small_model(1, "linear"), "compile": {"loss": "mse", "metrics": ["mae"]},
           "fit": {"epochs": 2, "batch_size": 16}}
    return train(tmp_path_factory.mktemp("diabetes"), runs_dir, cfg)


def features() -> pd.DataFrame:
    return flowers().drop(columns="species").iloc[:23]


# ---------------------------------------------------------------------------------------------
# Predictions


def test_predict_csv_writes_a_row_per_input_with_class_probabilities(flowers_run, runs_dir, tmp_path):
    x = features()
    x.to_csv(tmp_path / "x.csv", index=False)
    result = ok("predict", flowers_run.name, "--input", tmp_path / "x.csv", "--output", tmp_path / "p.csv",
                "--runs-dir", runs_dir)
    out = pd.read_csv(tmp_path / "p.csv")
    assert list(out.columns) == ["prediction", *PROB_COLUMNS]
    assert len(out) == len(x) == 23
    assert set(out["prediction"]) <= set(CLASSES)
    np.testing.assert_allclose(out[PROB_COLUMNS].sum(axis=1), 1.0, atol=1e-5)
    # The predicted class is the most probable one.
    assert (out[PROB_COLUMNS].to_numpy().argmax(axis=1) == out["prediction"].map(CLASSES.index)).all()
    assert "wrote 23 predictions" in result.stdout


def test_columns_in_another_order_and_the_target_are_fine(flowers_run, tmp_path):
    x = features()
    x.to_csv(tmp_path / "x.csv", index=False)
    ok("predict", flowers_run, "--input", tmp_path / "x.csv", "--output", tmp_path / "a.csv")
    shuffled = flowers().iloc[:23][["species", *reversed(list(x.columns))]]  # labelled file, columns reordered
    shuffled.to_csv(tmp_path / "y.csv", index=False)
    ok("predict", flowers_run, "--input", tmp_path / "y.csv", "--output", tmp_path / "b.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv"))


def test_parquet_and_npz_inputs(flowers_run, tmp_path):
    x = features()
    x.to_parquet(tmp_path / "x.parquet", index=False)
    ok("predict", flowers_run, "--input", tmp_path / "x.parquet", "--output", tmp_path / "p.parquet")
    from_parquet = pd.read_parquet(tmp_path / "p.parquet")
    assert len(from_parquet) == 23 and list(from_parquet.columns) == ["prediction", *PROB_COLUMNS]
    np.savez(tmp_path / "x.npz", x=x.to_numpy(dtype=np.float32))
    ok("predict", flowers_run, "--input", tmp_path / "x.npz", "--output", tmp_path / "q.csv")
    from_npz = pd.read_csv(tmp_path / "q.csv")
    assert list(from_npz["prediction"]) == list(from_parquet["prediction"])


def test_regression_predicts_values(diabetes_run, tmp_path):
    x = load_diabetes(as_frame=True).frame.drop(columns="target").iloc[:17]
    x.to_csv(tmp_path / "x.csv", index=False)
    ok("predict", diabetes_run, "--input", tmp_path / "x.csv", "--output", tmp_path / "p.csv")
    out = pd.read_csv(tmp_path / "p.csv")
    assert list(out.columns) == ["prediction"] and len(out) == 17
    assert np.isfinite(out["prediction"]).all()


# ---------------------------------------------------------------------------------------------
# Bad inputs name the column


def test_missing_column(flowers_run, tmp_path):
    features().drop(columns="sepal_width").to_csv(tmp_path / "x.csv", index=False)
    message = user_error("predict", flowers_run, "--input", tmp_path / "x.csv", "--output", tmp_path / "p.csv")
    assert "'sepal_width' is missing" in message
    assert not (tmp_path / "p.csv").exists()


def test_extra_columns_are_ignored_with_one_note(flowers_run, tmp_path):
    features().to_csv(tmp_path / "x.csv", index=False)
    ok("predict", flowers_run, "--input", tmp_path / "x.csv", "--output", tmp_path / "a.csv")
    features().assign(colour="red", id=range(23)).to_csv(tmp_path / "y.csv", index=False)
    result = ok("predict", flowers_run, "--input", tmp_path / "y.csv", "--output", tmp_path / "b.csv")
    assert "note: ignored 2 column(s) the model does not use: colour, id" in result.stderr
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv"))


def test_wrong_type(flowers_run, tmp_path):
    x = features().astype({"petal_length": object})
    x.loc[4, "petal_length"] = "long"
    x.to_csv(tmp_path / "x.csv", index=False)
    message = user_error("predict", flowers_run, "--input", tmp_path / "x.csv", "--output", tmp_path / "p.csv")
    assert "column 'petal_length' is numeric, but data row 5 holds 'long'" in message
    assert not (tmp_path / "p.csv").exists()


def test_missing_value_is_filled_with_the_train_median(flowers_run, tmp_path):
    x = features()
    x.loc[2, "sepal_length"] = np.nan
    x.to_csv(tmp_path / "x.csv", index=False)
    ok("predict", flowers_run, "--input", tmp_path / "x.csv", "--output", tmp_path / "p.csv")
    state = next(c for c in json.loads((flowers_run / "preprocessing.json").read_text())["columns"]
                 if c["name"] == "sepal_length")
    x.loc[2, "sepal_length"] = state["fill"]
    x.to_csv(tmp_path / "filled.csv", index=False)
    ok("predict", flowers_run, "--input", tmp_path / "filled.csv", "--output", tmp_path / "q.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "p.csv"), pd.read_csv(tmp_path / "q.csv"))


def test_wrong_shape(flowers_run, tmp_path):
    np.savez(tmp_path / "x.npz", x=np.zeros((5, 6), dtype=np.float32))
    message = user_error("predict", flowers_run, "--input", tmp_path / "x.npz", "--output", tmp_path / "p.csv")
    assert "'x' has shape [5, 6]; the model was trained on the columns" in message and "one column each" in message
    np.savez(tmp_path / "y.npz", features=np.zeros((5, 4)))
    assert "'x'" in user_error("predict", flowers_run, "--input", tmp_path / "y.npz", "--output", tmp_path / "p.csv")


def test_bad_file_types(flowers_run, tmp_path):
    features().to_csv(tmp_path / "x.csv", index=False)
    assert ".csv or .parquet" in user_error("predict", flowers_run, "--input", tmp_path / "x.csv",
                                            "--output", tmp_path / "p.txt")
    (tmp_path / "x.txt").write_text("1,2,3,4\n")
    assert "unsupported file type" in user_error("predict", flowers_run, "--input", tmp_path / "x.txt",
                                                 "--output", tmp_path / "p.csv")
