"""Bad data files: each is one clear error naming the file (and the column), exit 2, no run directory."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from tests.conftest import tiny_config


def csv_config(source: str, **data) -> dict:
    return tiny_config(data={"source": source, "target": "label", **data},
                       model={"layers": [{"type": "Dense", "units": 2, "activation": "softmax"}]})


def run_bad(cli, write_config, runs_dir, cfg) -> str:
    result = cli("train", write_config(cfg))
    assert result.exit_code == 2, result.output + repr(result.exception)
    assert "Traceback" not in result.output
    message = result.stderr.strip()
    assert message.startswith("error: ") and len(message.splitlines()) == 1, message
    assert not runs_dir.exists() or not any(p.is_dir() for p in runs_dir.iterdir())
    return message


def frame(n: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "label": [0, 1] * (n // 2)})


def test_empty_csv(cli, write_config, runs_dir, tmp_path):
    (tmp_path / "d.csv").write_text("")
    msg = run_bad(cli, write_config, runs_dir, csv_config("d.csv"))
    assert str(tmp_path / "d.csv") in msg and "empty" in msg


def test_header_only_csv(cli, write_config, runs_dir, tmp_path):
    (tmp_path / "d.csv").write_text("a,b,label\n")
    msg = run_bad(cli, write_config, runs_dir, csv_config("d.csv"))
    assert str(tmp_path / "d.csv") in msg and "no rows" in msg


def test_inf_in_features(cli, write_config, runs_dir, tmp_path):
    df = frame()
    df.loc[4, "b"] = np.inf
    df.to_csv(tmp_path / "d.csv", index=False)
    msg = run_bad(cli, write_config, runs_dir, csv_config("d.csv"))
    assert "column 'b' has 1 infinite value(s), first in data row 5" in msg and "d.csv" in msg


def test_text_in_a_numeric_column(cli, write_config, runs_dir, tmp_path):
    df = frame()
    cfg = csv_config("d.csv")
    cfg["data"]["columns"] = {"b": "numeric"}
    df["b"] = df["b"].astype(object)
    df.loc[6, "b"] = "n/a?"
    df.to_csv(tmp_path / "d.csv", index=False)
    msg = run_bad(cli, write_config, runs_dir, cfg)
    assert "column 'b' is numeric, but data row 7 holds 'n/a?'" in msg and "data.columns.b: categorical" in msg


def test_target_with_one_class(cli, write_config, runs_dir, tmp_path):
    df = frame()
    df["label"] = 1
    df.to_csv(tmp_path / "d.csv", index=False)
    msg = run_bad(cli, write_config, runs_dir, csv_config("d.csv"))
    assert "single class" in msg and "d.csv" in msg


def test_npz_mismatched_lengths(cli, write_config, runs_dir, tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((10, 3), "float32"), y=np.zeros(9))
    msg = run_bad(cli, write_config, runs_dir, tiny_config(data={"source": "d.npz"}))
    assert "'x' has 10 samples but 'y' has 9" in msg and "d.npz" in msg


def test_npz_missing_arrays(cli, write_config, runs_dir, tmp_path):
    np.savez(tmp_path / "d.npz", features=np.zeros((10, 3)))
    msg = run_bad(cli, write_config, runs_dir, tiny_config(data={"source": "d.npz"}))
    assert "'x' and 'y'" in msg and "features" in msg


@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
def test_garbage_binary_file(cli, write_config, runs_dir, tmp_path, suffix):
    (tmp_path / f"d{suffix}").write_bytes(b"\x00\x01not really a file" * 10)
    cfg = csv_config(f"d{suffix}") if suffix == ".parquet" else tiny_config(data={"source": "d.npz"})
    msg = run_bad(cli, write_config, runs_dir, cfg)
    assert f"d{suffix}" in msg and "cannot read" in msg


def test_truncated_parquet(cli, write_config, runs_dir, tmp_path):
    frame(200).to_parquet(tmp_path / "full.parquet")
    data = (tmp_path / "full.parquet").read_bytes()
    (tmp_path / "d.parquet").write_bytes(data[: len(data) // 2])
    msg = run_bad(cli, write_config, runs_dir, csv_config("d.parquet"))
    assert "d.parquet" in msg and "cannot read" in msg


def test_directory_as_data_source(cli, write_config, runs_dir, tmp_path):
    (tmp_path / "folder.csv").mkdir()
    msg = run_bad(cli, write_config, runs_dir, csv_config("folder.csv"))
    assert "not a file" in msg


def test_data_path_is_reported_in_full(cli, write_config, runs_dir, tmp_path):
    msg = run_bad(cli, write_config, runs_dir, csv_config("../nowhere/d.csv"))
    assert str((tmp_path / ".." / "nowhere" / "d.csv").resolve()) in msg


def test_too_few_samples_to_split(cli, write_config, runs_dir, tmp_path):
    frame(2).to_csv(tmp_path / "d.csv", index=False)
    msg = run_bad(cli, write_config, runs_dir, csv_config("d.csv", split={"stratify": False}))
    assert "too few" in msg


def test_regression_loss_with_string_target(cli, write_config, runs_dir, tmp_path):
    df = frame()
    df["label"] = ["x", "y"] * 10
    df.to_csv(tmp_path / "d.csv", index=False)
    cfg = csv_config("d.csv", split={"stratify": False})
    cfg["compile"]["loss"] = "mse"
    cfg["model"]["layers"][0] = {"type": "Dense", "units": 1}
    msg = run_bad(cli, write_config, runs_dir, cfg)
    assert "not numeric" in msg and "classification loss" in msg
