"""Column typing rules and the settings of data.columns: unit tests on small frames (no model, no TensorFlow
needed), and each bad setting as one error line with exit code 2."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from dlcli.data.columns import encode, fit_column, infer_column, keys, layout, one_hot, output_names
from dlcli.config import CategoricalColumn, DataConfig, NumericColumn

from tests.conftest import tiny_config


def kind_and_reason(values, name="col", position=1):
    plan = infer_column(pd.Series(values), name, position)
    return plan.kind, plan.reason


@pytest.mark.parametrize(("values", "name", "position", "kind", "reason"), [
    (range(100), "", 0, "ignore", "ignore: an unnamed first column, a row index as to_csv writes it"),
    (range(1, 101), "rownames", 3, "ignore", "ignore: a different value in every row and an ID's name"),
    (range(5, 105), "n", 3, "ignore", "ignore: a different whole number in every row, counting up: looks like a row "
                                      "number"),
    ([f"u{i}" for i in range(100)], "user", 2, "ignore", "ignore: a different value in every row, looks like an ID"),
    (["x"] * 100, "c", 2, "ignore", "ignore: constant ('x')"),
    ([None] * 100, "c", 2, "ignore", "ignore: every value is missing"),
    (["yes", "no"] * 50, "c", 2, "binary", "binary: 2 values, 'yes' -> 1"),
    ([True, False] * 50, "c", 2, "binary", "binary: 2 values, 'True' -> 1"),
    (["a", "b", "c", None] * 25, "c", 2, "categorical", "categorical: 3 distinct strings, 25% missing"),
    ([1, 2, 3, 4, 5] * 20, "c", 2, "categorical", "categorical: 5 distinct integer codes"),
    (np.r_[np.linspace(0, 1, 88), [np.nan] * 12], "c", 2, "numeric", "numeric: 12% missing, filled with the median"),
    (np.linspace(0, 1, 100), "c", 2, "numeric", "numeric: no missing values"),
    ([str(v) for v in np.linspace(0, 1, 100)], "c", 2, "numeric", "numeric: no missing values, numbers written as "
                                                                  "text"),
    ([str(v) for v in np.linspace(0, 1, 80)] + ["?"] * 20, "c", 2, "numeric",
     "numeric: 20% missing, filled with the median, numbers written as text ('?' read as missing)"),
    ([f"2021-03-{d:02d}" for d in range(1, 29)] * 3, "c", 2, "date", "date: parsed into year, month, day and day of "
                                                                     "week"),
    ([f"this is review number {i}" for i in range(90)] + ["short"] * 10, "c", 2, "text",
     "ignore: free text (4.6 words on average); dlcli does not model text"),
])
def test_inference_rules(values, name, position, kind, reason):
    assert kind_and_reason(values, name, position) == (kind, reason)


def test_keys_match_integer_codes_read_as_floats():
    assert keys(pd.Series([1, 2, None], dtype="float64")).tolist() == ["1", "2", None]
    assert keys(pd.Series([" a", "b ", None])).tolist() == ["a", "b", None]
    assert keys(pd.Series([True, False])).tolist() == ["True", "False"]


def test_categorical_cap_other_and_missing_slots():
    from dlcli.data.columns import Planned

    train = pd.Series(["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 1 + [None] * 2)
    plan = Planned("c", CategoricalColumn(max_categories=4), "")
    state = fit_column(plan, pd.DataFrame({"c": train}), "t.csv")
    assert state["categories"] == ["a", "b"] and state["missing_slot"] and state["other_slot"]
    assert output_names(state) == ["c=a", "c=b", "c=<missing>", "c=<other>"]
    new = pd.DataFrame({"c": ["a", "c", None, "zzz", "b"]})
    encoded = encode(new, [state], "new.csv")
    assert encoded.x.tolist() == [[0], [3], [2], [3], [1]]  # codes, one-hot encoded by the model's first layers
    assert one_hot(encoded.x, layout([state])).tolist() == [[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1],
                                                             [0, 1, 0, 0]]
    assert encoded.unseen == {"c": 1}  # 'c' was rare in training, 'zzz' never seen


def test_min_frequency_and_no_other_slot():
    from dlcli.data.columns import Planned

    train = pd.Series(["a"] * 5 + ["b"] * 4 + ["c"])
    state = fit_column(Planned("c", CategoricalColumn(min_frequency=2), ""), pd.DataFrame({"c": train}), "t.csv")
    assert state["categories"] == ["a", "b"] and state["other_slot"] and not state["missing_slot"]
    state = fit_column(Planned("c", CategoricalColumn(), ""), pd.DataFrame({"c": ["a", "b"]}), "t.csv")
    encoded = encode(pd.DataFrame({"c": ["q", None]}), [state], "new.csv")
    assert one_hot(encoded.x, layout([state])).tolist() == [[0, 0], [0, 0]]  # unseen and missing, with no slot for either: all zeros


def test_numeric_fill_indicator_and_scaling():
    from dlcli.data.columns import Planned

    train = pd.Series([1.0, 2.0, 3.0, np.nan, 10.0])
    state = fit_column(Planned("w", NumericColumn(scale="standard"), ""), pd.DataFrame({"w": train}), "t.csv")
    assert state["fill"] == 2.5 and state["indicator"]
    present = np.array([1.0, 2.0, 3.0, 10.0])
    assert state["offset"] == [pytest.approx(present.mean())]
    x = encode(pd.DataFrame({"w": [np.nan, 4.0]}), [state], "new.csv").x
    assert x[:, 1].tolist() == [1.0, 0.0]
    assert x[0, 0] == pytest.approx((2.5 - present.mean()) / present.std())
    state = fit_column(Planned("w", NumericColumn(missing="constant", fill_value=-1, indicator=False,
                                                  scale="none"), ""), pd.DataFrame({"w": train}), "t.csv")
    assert encode(pd.DataFrame({"w": [np.nan]}), [state], "new.csv").x.tolist() == [[-1.0]]


def test_resolved_config_shows_each_default():
    data = DataConfig(source="t.csv", target="y", scale="minmax", columns={"a": "numeric", "b": "categorical"})
    dumped = data.model_dump(mode="json")["columns"]
    assert dumped["a"] == {"type": "numeric", "missing": "median", "fill_value": 0.0, "indicator": True,
                           "scale": "minmax"}
    assert dumped["b"] == {"type": "categorical", "max_categories": 50, "min_frequency": 1, "missing": "category"}


# ---------------------------------------------------------------------------------------------
# Bad settings: one line, exit 2


def table(tmp_path, **extra) -> str:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"num": rng.normal(size=40), "cat": rng.choice(["a", "b", "c"], 40),
                       "flag": rng.choice(["yes", "no"], 40), "y": [0, 1] * 20, **extra})
    df.to_csv(tmp_path / "t.csv", index=False)
    return str(tmp_path / "t.csv")


def table_config(tmp_path, columns=None, **data):
    return tiny_config(data={"source": table(tmp_path), "target": "y", "columns": columns or {}, **data},
                       model={"layers": [{"type": "Dense", "units": 2, "activation": "softmax"}]})


def validate_error(cli, write_config, cfg) -> str:
    result = cli("validate", write_config(cfg))
    assert result.exit_code == 2, result.output + repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize(("columns", "data", "expected"), [
    ({"nmu": "numeric"}, {}, "error: data.columns.nmu: 'nmu' is not a column of {path}. did you mean 'num'? "
                             "(columns: cat, flag, num, y)"),
    ({"cat": "number"}, {}, "error: data.columns.cat: 'number' is not a type. did you mean 'numeric'? (allowed: "
                            "numeric, categorical, binary, date, ignore)"),
    ({"cat": {"type": "categorical", "max_categorie": 3}}, {},
     "error: data.columns.cat.max_categorie: unknown key 'max_categorie'. did you mean 'max_categories'? (allowed: "
     "max_categories, min_frequency, missing, type)"),
    ({"num": {"type": "numeric", "missing": "zero"}}, {},
     "error: data.columns.num.missing: 'zero' is not allowed. (allowed: median, mean, constant, drop)"),
    ({"cat": "binary"}, {}, "error: {path}: column 'cat' is set as binary but has 3 values in the train split ('a', "
                            "'b', 'c'...); set data.columns.cat: categorical"),
    ({"flag": {"type": "binary", "positive": "maybe"}}, {},
     "error: data.columns.flag.positive: 'maybe' is not one of the column's values ('no', 'yes')"),
    ({"cat": "numeric"}, {}, "error: {path}: column 'cat' is numeric, but data row 1 holds 'c' (28 such value(s)); "
                             "fix the value, leave it empty (missing), or set data.columns.cat: categorical"),
    ({"y": "numeric"}, {}, "error: data: columns.y is the target ('y'); list only feature columns"),
    ({}, {"target_scale": "standard"}, "error: data.target_scale: standard is for regression targets; a "
                                       "classification loss needs the labels as they are: set target_scale: none"),
])
def test_bad_column_settings(cli, write_config, tmp_path, columns, data, expected):
    cfg = table_config(tmp_path, columns, **data)
    assert validate_error(cli, write_config, cfg) == expected.format(path=tmp_path / "t.csv")


def test_free_text_column_is_one_error_naming_the_fix(cli, write_config, tmp_path):
    cfg = table_config(tmp_path)
    df = pd.read_csv(cfg["data"]["source"])
    df["review"] = [f"review number {i} was fine" for i in range(40)]
    df.to_csv(cfg["data"]["source"], index=False)
    message = validate_error(cli, write_config, cfg)
    assert message.endswith("t.csv: column 'review' looks like free text (5.0 words on average); dlcli does not "
                            "model text. Set data.columns.review: ignore to leave it out, or categorical to one-hot "
                            "its most common values")
    cfg["data"]["columns"] = {"review": "ignore"}
    result = cli("validate", write_config(cfg))
    assert result.exit_code == 0, result.output


def test_columns_need_a_table(cli, write_config):
    cfg = tiny_config()
    cfg["data"]["columns"] = {"a": "numeric"}
    assert validate_error(cli, write_config, cfg) == ("error: data.columns: is for .csv and .parquet tables; 'iris' "
                                                      "has no named columns")


def test_validate_and_config_show_print_each_column(cli, write_config, tmp_path):
    cfg = table_config(tmp_path, {"cat": {"type": "categorical", "max_categories": 2}})
    config = write_config(cfg)
    result = cli("validate", config)
    assert result.exit_code == 0, result.output
    assert "columns of t.csv (target 'y'): 4 model inputs from 3 of 3 columns" in result.stdout
    assert "  cat     categorical 2 inputs   set in data.columns" in result.stdout
    assert "  flag    binary      1 input    binary: 2 values, 'yes' -> 1" in result.stdout
    shown = cli("config", "show", config)
    assert shown.exit_code == 0, shown.output
    assert "#   num     numeric     1 input    numeric: no missing values" in shown.stdout
    resolved = yaml.safe_load(shown.stdout)  # still valid YAML: the column lines are comments
    assert resolved["data"]["columns"]["cat"] == {"type": "categorical", "max_categories": 2, "min_frequency": 1,
                                                  "missing": "category"}


def test_many_valued_codes_are_left_out_with_the_reason():
    codes = [f"T{i % 70}" for i in range(100)]  # 70 distinct values in 100 rows
    assert kind_and_reason(codes) == ("ignore", "ignore: 70 distinct values in 100 rows, too many to learn as "
                                                "categories (an identifier or code?); set categorical to keep the "
                                                "most common")


def test_unlisted_columns_left_out_are_named_in_a_note(cli, write_config, tmp_path):
    cfg = table_config(tmp_path)
    df = pd.read_csv(cfg["data"]["source"])
    df["ticket"] = [f"A/{i}" for i in range(len(df))]
    df.to_csv(cfg["data"]["source"], index=False)
    result = cli("validate", write_config(cfg))
    assert result.exit_code == 0, result.output
    assert ("note: left out 1 column(s) not listed in data.columns: ticket (a different value in every row, looks "
            "like an ID)") in result.stderr
