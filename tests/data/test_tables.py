"""Raw mixed-type tables end to end: init types the columns, train fits the encoding on the train split only,
evaluate and predict take raw files (strings, missing values, extra columns, unseen values).

tests/runtime/test_backends.py reruns this file on JAX and PyTorch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dlcli.config import load_config
from dlcli.data import prepare, split_indices

from tests.conftest import ok, only_run, read_csv, user_error

pytestmark = pytest.mark.slow  # end-to-end runs: not in the quick loop (python -m pytest -m "not slow")

N = 240


def mixed_table(n: int = N, seed: int = 0) -> pd.DataFrame:
    """A table a user might bring: an ID, a constant, strings, integer codes, booleans, a date, missing values.

    The label depends on `colour`, `size` and `weight`, so a model that reads them beats the majority class."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], size=n)
    size = rng.choice([1, 2, 3, 4], size=n)
    weight = rng.normal(50, 10, size=n)
    score = (colour == "red") * 2.0 + (size >= 3) * 1.5 + (weight - 50) / 10 + rng.normal(0, 0.5, n)
    df = pd.DataFrame({
        "customer_id": [f"C{i:05d}" for i in range(n)],
        "colour": colour.astype(object),
        "size": size,
        "weight": weight,
        "member": rng.choice([True, False], size=n),
        "plan": np.array(["basic"] * n, dtype=object),
        "joined": pd.date_range("2020-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "label": np.where(score > 1.8, "yes", "no"),
    })
    df.loc[rng.choice(n, 12, replace=False), "weight"] = np.nan
    df.loc[rng.choice(n, 10, replace=False), "colour"] = None
    return df


@pytest.fixture(scope="module")
def table_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tables")
    mixed_table().to_csv(folder / "shop.csv", index=True)  # a leading unnamed index column, as to_csv writes it
    return folder


@pytest.fixture(scope="module")
def shop_run(table_dir) -> Path:
    """`dlcli init` then `dlcli train` on the raw file, exactly as a new user would."""
    config = table_dir / "shop.yaml"
    ok("init", "--task", "classification", "--data", table_dir / "shop.csv", "--target", "label", "--output", config)
    runs = table_dir / "runs"
    ok("train", config, "--set", "fit.epochs=3", "--runs-dir", runs)
    return only_run(runs)


def test_init_types_every_column_with_a_reason(shop_run, table_dir):
    text = (table_dir / "shop.yaml").read_text()
    columns = yaml.safe_load(text)["data"]["columns"]
    assert columns == {"Unnamed: 0": "ignore", "customer_id": "ignore", "colour": "categorical",
                       "size": "categorical", "weight": "numeric", "member": "binary", "plan": "ignore",
                       "joined": "date"}
    for comment in ("# ignore: an unnamed first column, a row index as to_csv writes it",
                    "# ignore: a different value in every row and an ID's name",
                    "# categorical: 3 distinct strings, 4% missing",
                    "# categorical: 4 distinct integer codes",
                    "# numeric: 5% missing, filled with the median",
                    "# binary: 2 values, 'True' -> 1",
                    "# ignore: constant ('basic')",
                    "# date: parsed into year, month, day and day of week"):
        assert comment in text, comment


def test_training_records_the_fitted_columns(shop_run):
    prep = json.loads((shop_run / "preprocessing.json").read_text())
    states = {c["name"]: c for c in prep["columns"]}
    assert list(states) == ["colour", "size", "weight", "member", "joined"]  # ID, index and constant left out
    assert set(states["colour"]["categories"]) == {"red", "green", "blue"} and states["colour"]["missing_slot"]
    assert states["size"]["categories"] and set(states["size"]["categories"]) == {"1", "2", "3", "4"}
    assert states["weight"]["indicator"] and states["weight"]["missing"] == "median"
    assert states["member"]["positive"] == "True" and states["member"]["negative"] == "False"
    # Numbers first, then one code per categorical column, one-hot encoded by the model's first layers.
    assert prep["input_names"][:3] == ["weight", "weight_missing", "member"]
    assert prep["input_names"][7:11] == [f"colour={v}" for v in states["colour"]["categories"]] + ["colour=<missing>"]
    assert len(prep["input_names"]) == 2 + 1 + 4 + (3 + 1) + 4 and prep["input_shape"] == [2 + 1 + 4 + 2]
    assert prep["onehot"] == {"dense": 7, "codes": 2, "tokens": 9, "offsets": {"colour": 0, "size": 4}}
    summary = (shop_run / "summary.txt").read_text()
    assert "(CategoryEncoding)" in summary and "│ inputs (Concatenate)     │ (None, 15)" in summary
    info = json.loads((shop_run / "run.json").read_text())
    assert [c["column"] for c in info["data"]["columns"]][:3] == ["Unnamed: 0", "customer_id", "colour"]
    assert info["data"]["inputs"] == prep["input_names"]
    assert not list(shop_run.glob("*.pkl")) and not list(shop_run.glob("*.pickle"))
    metrics = {row["split"]: row for row in read_csv(shop_run / "metrics.csv")}
    assert {"train", "val", "test"} <= set(metrics)


def test_evaluate_on_a_raw_holdout_with_missing_values(shop_run, tmp_path):
    holdout = mixed_table(60, seed=7)
    holdout.loc[[1, 2], "weight"] = np.nan
    holdout.loc[3, "label"] = None
    holdout.to_csv(tmp_path / "holdout.csv", index=False)
    result = ok("evaluate", shop_run, "--data", tmp_path / "holdout.csv")
    assert "note: dropped 1 row(s) whose target 'label' is missing" in result.stderr
    assert "note: ignored 2 column(s) the model does not use: customer_id, plan" in result.stderr
    (evaluation,) = (shop_run / "evaluations").iterdir()
    assert json.loads((evaluation / "evaluation.json").read_text())["samples"] == 59


def test_evaluate_warns_about_training_rows(shop_run, table_dir):
    result = ok("evaluate", shop_run, "--data", table_dir / "shop.csv")
    train_rows = json.loads((shop_run / "run.json").read_text())["data"]["train"]
    assert f"warning: {train_rows} of {N} rows of shop.csv were in the run's training split" in result.stderr


def test_predict_counts_unseen_values_and_keeps_every_row(shop_run, tmp_path):
    rows = mixed_table(20, seed=3).drop(columns=["label"])
    rows.loc[[0, 5, 6], "colour"] = "purple"  # never seen in training
    rows.loc[7, "weight"] = np.nan
    rows.to_csv(tmp_path / "new.csv", index=False)
    result = ok("predict", shop_run, "--input", tmp_path / "new.csv", "--output", tmp_path / "p.csv")
    assert "values never seen in training" in result.stderr and "colour: 3" in result.stderr
    out = pd.read_csv(tmp_path / "p.csv")
    assert len(out) == 20 and list(out.columns) == ["prediction", "prob_no", "prob_yes"]
    assert set(out["prediction"]) <= {"yes", "no"} and np.allclose(out[["prob_no", "prob_yes"]].sum(axis=1), 1)


def test_predict_names_a_missing_column_and_a_bad_value(shop_run, tmp_path):
    rows = mixed_table(20, seed=3).drop(columns=["label", "weight"])
    rows.to_csv(tmp_path / "fewer.csv", index=False)
    message = user_error("predict", shop_run, "--input", tmp_path / "fewer.csv", "--output", tmp_path / "p.csv")
    assert message.endswith("fewer.csv: column 'weight' is missing; the model was trained on colour, joined, "
                            "member, size, weight")
    rows = mixed_table(20, seed=3)
    rows["member"] = rows["member"].astype(object)
    rows.loc[4, "member"] = "maybe"
    rows.to_csv(tmp_path / "bad.csv", index=False)
    message = user_error("predict", shop_run, "--input", tmp_path / "bad.csv", "--output", tmp_path / "p.csv")
    assert "column 'member' is binary ('False' -> 0, 'True' -> 1), but data row 5 holds 'maybe'" in message
    rows = mixed_table(20, seed=3)
    rows.loc[9, "joined"] = "someday"
    rows.to_csv(tmp_path / "date.csv", index=False)
    message = user_error("predict", shop_run, "--input", tmp_path / "date.csv", "--output", tmp_path / "p.csv")
    assert "column 'joined' is a date, but data row 10 holds 'someday'" in message
    assert not (tmp_path / "p.csv").exists()


def test_own_test_split_matches_training(shop_run):
    ok("evaluate", shop_run)
    (evaluation,) = sorted((shop_run / "evaluations").iterdir())[-1:]
    test = next(r for r in read_csv(shop_run / "metrics.csv") if r["split"] == "test")
    again = read_csv(evaluation / "metrics.csv")[0]
    assert float(again["loss"]) == pytest.approx(float(test["loss"]), rel=1e-5)
    assert float(again["accuracy"]) == pytest.approx(float(test["accuracy"]), abs=1e-6)


# ---------------------------------------------------------------------------------------------
# Fitted on the train split only


def test_no_statistic_of_val_or_test_reaches_the_preprocessing(tmp_path, write_config):
    """Val and test rows hold values the train rows never have (a huge number, a new category): the fitted
    state must equal what the train rows alone give."""
    df = mixed_table(200, seed=1)
    cfg = {"name": "leak", "seed": 5,
           "data": {"source": str(tmp_path / "t.csv"), "target": "label", "scale": "standard",
                    "columns": {"joined": "ignore", "customer_id": "ignore"}},
           "model": {"layers": [{"type": "Dense", "units": 2, "activation": "softmax"}]},
           "compile": {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}}
    config = load_config(write_config(cfg))
    strata = np.unique(df["label"], return_inverse=True)[1]
    train, val, test = split_indices(len(df), config.data, config.seed, strata, has_test=False)
    held = np.concatenate([val, test])
    df.loc[held, "weight"] = 1e6
    df["colour"] = df["colour"].astype(object)
    df.loc[held, "colour"] = "only-held-out"
    df.to_csv(tmp_path / "t.csv", index=False)
    data = prepare(config)
    states = {s["name"]: s for s in data.prep.columns}
    weights = df.loc[train, "weight"].dropna()
    assert states["weight"]["fill"] == pytest.approx(weights.median())
    assert states["weight"]["offset"][0] == pytest.approx(weights.mean())
    assert 1 / states["weight"]["factor"][0] == pytest.approx(weights.std(ddof=0))
    assert "only-held-out" not in states["colour"]["categories"] + states["colour"]["rare"]
    assert len(data.x_train) == len(train)
    # The held-out rows are encoded with the train statistics: their huge weights stay huge.
    assert data.x_test[:, data.prep.input_names.index("weight")].min() > 1000


def test_regression_target_scale_keeps_metrics_in_target_units(tmp_path, write_config, runs_dir):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"area": rng.uniform(30, 200, 300), "city": rng.choice(["a", "b", "c"], 300)})
    df["price"] = 1000 * df["area"] + df["city"].map({"a": 0, "b": 20000, "c": 50000}) + rng.normal(0, 5000, 300)
    df.to_csv(tmp_path / "homes.csv", index=False)
    cfg = {"name": "homes", "seed": 1,
           "data": {"source": "homes.csv", "target": "price", "scale": "standard", "target_scale": "standard",
                    "split": {"stratify": False}},
           "model": {"layers": [{"type": "Dense", "units": 16, "activation": "relu"}, {"type": "Dense", "units": 1}]},
           "compile": {"optimizer": {"type": "adam", "learning_rate": 0.01}, "loss": "mse", "metrics": ["mae"]},
           "fit": {"epochs": 30, "batch_size": 32}}
    ok("train", write_config(cfg), "--runs-dir", runs_dir)
    run = only_run(runs_dir)
    prep = json.loads((run / "preprocessing.json").read_text())
    assert prep["target_mean"] == pytest.approx(df["price"].mean(), rel=0.05)
    test = next(r for r in read_csv(run / "metrics.csv") if r["split"] == "test")
    spread = df["price"].std()
    assert 1000 < float(test["mae"]) < 0.5 * spread  # in dollars, and far better than guessing the mean
    pd.DataFrame({"area": [100.0], "city": ["c"]}).to_csv(tmp_path / "one.csv", index=False)
    ok("predict", run, "--input", tmp_path / "one.csv", "--output", tmp_path / "p.csv")
    assert pd.read_csv(tmp_path / "p.csv")["prediction"][0] == pytest.approx(150_000, rel=0.2)


def test_column_options_are_tunable_and_the_table_is_read_and_typed_once(shop_run, table_dir, tmp_path, monkeypatch):
    from dlcli.data import tables
    from dlcli.data.columns import infer, values

    reads, typed = [], []
    real_read, real_infer = tables.read_table, infer.infer_column
    monkeypatch.setattr(tables, "read_table", lambda path: reads.append(path) or real_read(path))
    monkeypatch.setattr(infer, "infer_column", lambda s, n, *a: typed.append(n) or real_infer(s, n, *a))
    tables._TABLE_CACHE.clear()
    infer._INFERRED[:] = [None, {}]
    values._FACTORS.clear()
    cfg = yaml.safe_load((table_dir / "shop.yaml").read_text())
    cfg["data"]["source"] = str(table_dir / "shop.csv")
    cfg["data"]["columns"].pop("colour")  # inferred, and searched through its listed options below
    cfg["data"]["columns"]["weight"] = {"type": "numeric"}
    cfg["tune"] = {"strategy": "grid", "objective": "val_accuracy",
                   "space": {"data.columns.weight.missing": ["median", "mean"],
                             "data.columns.weight.indicator": [True, False]}}
    config = tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    ok("tune", config, "--set", "fit.epochs=1", "--runs-dir", tmp_path / "runs")
    trials = read_csv(only_run(tmp_path / "runs") / "trials.csv")
    assert len(trials) == 4 and {t["status"] for t in trials} == {"completed"}
    assert {(t["data.columns.weight.missing"], t["data.columns.weight.indicator"]) for t in trials} == {
        ("median", "1"), ("mean", "1"), ("median", "0"), ("mean", "0")}
    assert len(reads) == 1 and typed == ["colour"]  # read once, the unlisted column typed once


def test_a_search_over_column_settings_can_be_evaluated(shop_run, table_dir, tmp_path):
    """The best trial's fitted columns differ from the base config's; the data fingerprint does not."""
    cfg = yaml.safe_load((table_dir / "shop.yaml").read_text())
    cfg["data"]["source"] = str(table_dir / "shop.csv")
    cfg["data"]["columns"]["weight"] = {"type": "numeric"}
    cfg["tune"] = {"strategy": "grid", "objective": "val_accuracy",
                   "space": {"data.columns.weight.indicator": [False]}}
    config = tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    ok("tune", config, "--set", "fit.epochs=1", "--runs-dir", tmp_path / "runs")
    run = only_run(tmp_path / "runs")
    assert "weight_missing" not in json.loads((run / "preprocessing.json").read_text())["input_names"]
    ok("evaluate", run)
    (evaluation,) = (run / "evaluations").iterdir()
    test = next(r for r in read_csv(run / "metrics.csv") if r["split"] == "test")
    assert float(read_csv(evaluation / "metrics.csv")[0]["loss"]) == pytest.approx(float(test["loss"]), rel=1e-5)
