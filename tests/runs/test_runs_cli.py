"""`dlcli runs list / show / compare`: read runs/ only, instantly, without importing TensorFlow."""

from __future__ import annotations

import csv
import io
import json
import socket
import subprocess
import sys
import time
from typing import Any

import pytest
import yaml

from dlcli.runs import upsert_index
from tests.conftest import ok, user_error






def iris(name: str, epochs: int, learning_rate: float) -> dict[str, Any]:
    return {"name": name, "seed": 5,
            "data": {"source": "iris", "split": {"train": 0.6, "val": 0.2, "test": 0.2}, "scale": "standard"},
            "model": {"layers": [{"type": "Dense", "units": 8, "activation": "relu"},
                                 {"type": "Dense", "units": 3, "activation": "softmax"}]},
            "compile": {"optimizer": {"type": "adam", "learning_rate": learning_rate},
                        "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
            "fit": {"epochs": epochs, "batch_size": 16}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Any]:
    """Two completed iris runs that differ in epochs and learning rate, and one crashed run."""
    tmp = tmp_path_factory.mktemp("runs_cli")
    runs_dir = tmp / "runs"
    ids = {}
    for name, epochs, rate in (("slow", 2, 0.001), ("fast", 3, 0.05)):
        config = tmp / f"{name}.yaml"
        config.write_text(yaml.safe_dump(iris(name, epochs, rate)))
        ok("train", config, "--runs-dir", runs_dir)
        ids[name] = next(p.name for p in runs_dir.iterdir() if p.name.endswith(f"-{name}"))
    # A run whose process died while it was running: run.json still says "running".
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    crashed = runs_dir / "20260101-000000-crashed"
    crashed.mkdir()
    info = {"run_id": crashed.name, "name": "crashed", "command": "train", "status": "running",
            "started": "2026-01-01T00:00:00+00:00", "heartbeat": "2026-01-01T00:00:00+00:00",
            "pid": dead.pid, "host": socket.gethostname()}
    (crashed / "run.json").write_text(json.dumps(info))
    upsert_index(runs_dir, {k: info.get(k) for k in ("run_id", "name", "command", "status", "started")})
    ids["crashed"] = crashed.name
    return {"dir": runs_dir, **ids}


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# ---------------------------------------------------------------------------------------------
# runs list


def test_list_shows_every_run_with_status_and_test_metrics(runs):
    out = ok("runs", "list", "--runs-dir", runs["dir"]).stdout
    header = out.splitlines()[0].split()
    assert header[:5] == ["run_id", "name", "command", "status", "epochs"]
    assert "test_loss" in header and "test_accuracy" in header
    for key in ("slow", "fast", "crashed"):
        assert runs[key] in out
    rows = parse_csv(ok("runs", "list", "--format", "csv", "--runs-dir", runs["dir"]).stdout)
    status = {r["name"]: r["status"] for r in rows}
    assert status == {"slow": "completed", "fast": "completed", "crashed": "crashed"}  # dead pid -> crashed
    assert all(0 <= float(r["test_accuracy"]) <= 1 for r in rows if r["status"] == "completed")


def test_list_sort_and_top(runs):
    rows = parse_csv(ok("runs", "list", "--sort", "test_accuracy", "--top", "1", "--format", "csv",
                        "--runs-dir", runs["dir"]).stdout)
    every = parse_csv(ok("runs", "list", "--format", "csv", "--runs-dir", runs["dir"]).stdout)
    assert len(rows) == 1
    assert float(rows[0]["test_accuracy"]) == max(float(r["test_accuracy"]) for r in every if r["test_accuracy"])
    by_loss = parse_csv(ok("runs", "list", "--sort", "test_loss", "--format", "csv", "--runs-dir", runs["dir"]).stdout)
    losses = [float(r["test_loss"]) for r in by_loss if r["test_loss"]]
    assert losses == sorted(losses)  # losses: lowest (best) first
    assert by_loss[-1]["name"] == "crashed"  # runs without the value go last
    text = ok("runs", "list", "--top", "2", "--runs-dir", runs["dir"]).stdout
    assert len(text.strip().splitlines()) == 2 + 2  # header, rule, two runs


def test_list_formats(runs):
    data = json.loads(ok("runs", "list", "--format", "json", "--runs-dir", runs["dir"]).stdout)
    assert {r["name"] for r in data} == {"slow", "fast", "crashed"}
    markdown = ok("runs", "list", "--format", "markdown", "--runs-dir", runs["dir"]).stdout
    assert markdown.startswith("| run_id | name |")


def test_unknown_sort_column_lists_the_columns(runs):
    message = user_error("runs", "list", "--sort", "test_acuracy", "--runs-dir", runs["dir"])
    assert "'test_acuracy' is not a column" in message
    assert "did you mean 'test_accuracy'" in message and "columns: run_id, name" in message


def test_list_of_an_empty_runs_dir(tmp_path):
    assert "no runs in" in ok("runs", "list", "--runs-dir", tmp_path / "none").stdout


def run_cli_in_subprocess(*args: str) -> tuple[str, float]:
    """Run dlcli in a fresh interpreter; returns (its stdout, seconds) and the heavy modules it imported."""
    code = ("import sys\nfrom dlcli.cli import app\n"
            "try:\n    app(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY=' + ','.join(m for m in ('tensorflow', 'keras', 'pandas', 'matplotlib', 'sklearn') "
            "if m in sys.modules))\n")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
    return done.stdout, time.perf_counter() - start


def test_runs_commands_do_not_import_tensorflow_pandas_or_matplotlib(runs):
    for args in (["runs", "list"], ["runs", "list", "--sort", "test_loss"], ["runs", "show", runs["fast"]],
                 ["runs", "compare", runs["slow"], runs["fast"]]):
        out, seconds = run_cli_in_subprocess(*args, "--runs-dir", str(runs["dir"]))
        assert runs["fast"] in out or "fast" in out, out
        assert out.strip().splitlines()[-1] == "HEAVY=", (args, out.splitlines()[-1])
        assert seconds < 20, seconds  # typically ~0.3 s; generous for a loaded CI machine


# ---------------------------------------------------------------------------------------------
# runs show


def test_show_prints_config_metrics_and_diagnosis(runs):
    out = ok("runs", "show", runs["fast"], "--runs-dir", runs["dir"]).stdout
    assert f"run: {runs['fast']}" in out and "status: completed" in out
    assert "config:\n" in out and "learning_rate: 0.05" in out
    assert "metrics:\n" in out and "test" in out
    assert "\nbaseline " in out and "baseline: a model that ignores its inputs and always predicts" in out
    diagnosis = next(line for line in out.splitlines() if line.startswith("diagnosis: "))
    assert any(v in diagnosis for v in ("underfit", "overfit", "good fit"))
    assert "training error" in diagnosis and "of the baseline's" in diagnosis
    assert "Validation loss was lowest at epoch" in diagnosis


def test_show_judges_again_with_other_thresholds(runs):
    # Relative errors: a model worse than the baseline has one above 1, so 2 lets any two epochs pass.
    out = ok("runs", "show", runs["slow"], "--high-error", "2", "--max-gap", "2", "--runs-dir", runs["dir"]).stdout
    assert "diagnosis: good fit" in out and "(<= 2)" in out


def test_show_a_crashed_run_and_an_unknown_one(runs):
    out = ok("runs", "show", runs["crashed"], "--runs-dir", runs["dir"]).stdout
    assert "status: crashed" in out and "diagnosis: none" in out
    assert "no such run" in user_error("runs", "show", "nope", "--runs-dir", runs["dir"])


# ---------------------------------------------------------------------------------------------
# runs compare


def test_compare_shows_only_config_values_that_differ_then_metrics(runs):
    result = ok("runs", "compare", runs["slow"], runs["dir"] / runs["fast"], "--format", "json",
                "--runs-dir", runs["dir"])
    data = json.loads(result.stdout)
    differing = {row["config"]: row for row in data["config"]}
    assert set(differing) == {"name", "compile.optimizer.learning_rate", "fit.epochs"}
    assert differing["fit.epochs"][runs["slow"]] == "2" and differing["fit.epochs"][runs["fast"]] == "3"
    metrics = {row["metric"]: row for row in data["metrics"]}
    assert {"test_loss", "test_accuracy", "train_loss", "val_accuracy", "diagnosis", "best_epoch"} <= set(metrics)
    assert set(metrics["test_accuracy"]) == {"metric", runs["slow"], runs["fast"]}
    # The trivial baseline beside them: the same data and seed, so the same score in both runs.
    assert {"baseline_loss", "baseline_accuracy"} <= set(metrics)
    assert list(metrics).index("baseline_accuracy") > list(metrics).index("test_accuracy")
    assert metrics["baseline_accuracy"][runs["slow"]] == metrics["baseline_accuracy"][runs["fast"]]
    table = ok("runs", "compare", runs["slow"], runs["fast"], "--runs-dir", runs["dir"]).stdout
    assert "config:" in table and "metrics:" in table and "compile.optimizer.learning_rate" in table
    assert "compile.loss" not in table  # the same in both


def test_compare_needs_two_known_runs(runs):
    assert "at least two runs" in user_error("runs", "compare", runs["slow"], "--runs-dir", runs["dir"])
    assert "no such run" in user_error("runs", "compare", runs["slow"], "missing", "--runs-dir", runs["dir"])
