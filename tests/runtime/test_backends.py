"""One config, three engines: TensorFlow, JAX and PyTorch through Keras 3.

The end-to-end files (train, evaluate, predict, tune) run in this process on the default backend
(TensorFlow, or $KERAS_BACKEND); ``test_end_to_end_suite_on`` reruns them, in a fresh process,
on every other backend that is installed.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import BACKEND, tiny_config

pytestmark = pytest.mark.slow  # end-to-end runs: not in the quick loop (python -m pytest -m "not slow")

ROOT = Path(__file__).resolve().parents[2]
INSTALLED = [b for b in ("tensorflow", "jax", "torch") if importlib.util.find_spec(b) is not None]
OTHERS = [b for b in INSTALLED if b != BACKEND]
E2E_FILES = ["tests/train/test_train.py", "tests/evaluate/test_evaluate.py", "tests/evaluate/test_predict.py",
             "tests/tune/test_tune.py",
             "tests/data/test_tables.py", "tests/train/test_baseline.py"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0"}


def test_jax_and_torch_are_installed_for_these_tests():
    # The test extra installs both, so CI covers three backends; a missing one would silently shrink that.
    assert {"tensorflow", "jax", "torch"} <= set(INSTALLED)


@pytest.mark.parametrize("backend", OTHERS)
def test_end_to_end_suite_on(backend):
    env = {**ENV, "KERAS_BACKEND": backend}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "no:warnings",
                           *E2E_FILES], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    tail = (done.stdout + done.stderr)[-4000:]
    assert done.returncode == 0, tail
    summary = done.stdout.strip().splitlines()[-1]
    assert re.search(r"\b\d+ passed\b", summary) and not re.search(r"\d+ (failed|error)", summary), tail


NO_TF = """
import sys
from typer.testing import CliRunner
from dlcli.cli import app
result = CliRunner().invoke(app, sys.argv[1:])
print("EXIT", result.exit_code)
print("TENSORFLOW", "tensorflow" in sys.modules)
print(result.output[-2000:])
"""


@pytest.mark.parametrize("backend", [b for b in INSTALLED if b != "tensorflow"])
def test_train_and_evaluate_never_import_tensorflow(write_config, tmp_path, backend):
    config = write_config(tiny_config(fit={"epochs": 1}))
    runs = tmp_path / "runs-no-tf"
    out = subprocess.run([sys.executable, "-c", NO_TF, "train", str(config), "--backend", backend,
                          "--runs-dir", str(runs)], env=ENV, capture_output=True, text=True, timeout=300).stdout
    assert "EXIT 0" in out and "TENSORFLOW False" in out, out
    run_dir = next(p for p in runs.iterdir() if p.is_dir())
    info = json.loads((run_dir / "run.json").read_text())
    assert info["versions"]["backend"] == backend and "tensorflow" not in info["versions"]
    assert info["config"]["backend"] == backend
    out = subprocess.run([sys.executable, "-c", NO_TF, "evaluate", str(run_dir)], env=ENV, capture_output=True,
                         text=True, timeout=300).stdout
    assert "EXIT 0" in out and "TENSORFLOW False" in out, out


# Weight regularizers (L1, L2), an activity regularizer, batch normalization and dropout: everything that makes
# the loss of `evaluate` more than the loss on the predictions, or makes inference differ from training.
REGULARIZED = tiny_config(
    model={"layers": [
        {"type": "Dense", "units": 16, "activation": "relu", "kernel_regularizer": {"l1": 0.01}},
        {"type": "BatchNormalization"},
        {"type": "Dropout", "rate": 0.3},
        {"type": "Dense", "units": 8, "activation": "relu", "kernel_regularizer": {"l2": 0.01},
         "activity_regularizer": {"l2": 0.01}},
        {"type": "Dense", "units": 3, "activation": "softmax"}]},
    compile={"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
             "metrics": ["accuracy", "sparse_categorical_crossentropy"]},
    fit={"epochs": 2, "batch_size": 16})  # 30 test samples: a short last batch, as with real data
# What the README promises on every backend (float32 rounding): losses and metrics to this relative tolerance,
# class probabilities to this absolute one (far outside the training range, logits in the hundreds, float32
# rounding moves a small probability by a few parts in 10^5 of itself).
CROSS_BACKEND_REL = 1e-5
CROSS_BACKEND_PROB_ABS = 1e-5


def evaluate_and_predict(invoke: Any, run: Path, data: Path, out: Path, backend: str) -> dict[str, Any]:
    """``evaluate`` (the test split, then ``data``) as JSON, and ``predict`` ``data`` into ``out``."""
    found = {}
    for name, extra in (("test", []), ("file", ["--data", data])):
        result = invoke("evaluate", run, "--backend", backend, "--format", "json", *extra)
        assert result.exit_code == 0, result.output
        found[name] = json.loads(result.stdout)
    result = invoke("predict", run, "--input", data, "--output", out, "--backend", backend)
    assert result.exit_code == 0, result.output
    return found


# The same on another backend, in one fresh process (imports cost more than scoring).
ON_BACKEND = """
import json, sys
from typer.testing import CliRunner
from dlcli.cli import app
from tests.runtime.test_backends import evaluate_and_predict

runner = CliRunner()
found = evaluate_and_predict(lambda *args: runner.invoke(app, [str(a) for a in args]), *sys.argv[1:])
print("RESULT", json.dumps(found))
"""


def test_model_saved_on_one_backend_scores_the_same_on_every_other(cli, write_config, runs_dir, tmp_path):
    result = cli("train", write_config(REGULARIZED))
    assert result.exit_code == 0, result.output
    run_dir = next(p for p in runs_dir.iterdir() if p.is_dir())
    with open(run_dir / "metrics.csv") as fh:
        trained = next(r for r in csv.DictReader(fh) if r["split"] == "test")
    assert list(trained) == ["split", "loss", "data_loss", "regularization", "accuracy",
                             "sparse_categorical_crossentropy"]
    assert float(trained["regularization"]) > 0
    assert float(trained["loss"]) == pytest.approx(float(trained["data_loss"]) + float(trained["regularization"]))
    # Inputs far outside the training range, labelled wrongly: confident mistakes, the samples whose loss
    # TensorFlow's evaluate computed from the softmax logits (unclipped) and JAX / PyTorch from clipped
    # probabilities.
    from sklearn.datasets import load_iris

    iris = load_iris()
    data = tmp_path / "far.npz"
    np.savez(data, x=iris.data * 40.0, y=(iris.target + 1) % 3)
    scores, predictions = {}, {}
    for backend in [BACKEND, *OTHERS]:
        out = tmp_path / f"predictions-{backend}.csv"
        if backend == BACKEND:
            found = evaluate_and_predict(cli, run_dir, data, out, backend)
        else:
            done = subprocess.run([sys.executable, "-c", ON_BACKEND, str(run_dir), str(data), str(out), backend],
                                  cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, (backend, done.stderr[-3000:])
            found = json.loads(done.stdout.split("RESULT ", 1)[1])
        assert found["test"]["backend"][0]["backend"] == backend and found["test"]["backend"][0]["version"]
        scores[backend] = {name: found[name]["metrics"][0] for name in ("test", "file")}
        with open(out) as fh:
            predictions[backend] = list(csv.DictReader(fh))
    # Before the scores were computed from the predictions, TensorFlow's data loss here was 40.1, JAX's 9.48.
    assert scores[BACKEND]["file"]["data_loss"] > 5
    # On the run's own backend, evaluate gives exactly metrics.csv's test row.
    assert {k: float(v) for k, v in trained.items() if k != "split"} == {
        k: v for k, v in scores[BACKEND]["test"].items() if k != "split"}
    for backend in OTHERS:
        for split in ("test", "file"):
            mine, theirs = scores[BACKEND][split], scores[backend][split]
            assert list(mine) == list(theirs)
            for key in (k for k in mine if k != "split"):
                assert theirs[key] == pytest.approx(mine[key], rel=CROSS_BACKEND_REL, abs=1e-7), (backend, split, key)
        assert len(predictions[backend]) == len(predictions[BACKEND]) == len(iris.data)
        for mine, theirs in zip(predictions[BACKEND], predictions[backend]):
            assert theirs["prediction"] == mine["prediction"]
            for key in (k for k in mine if k.startswith("prob_")):
                assert float(theirs[key]) == pytest.approx(float(mine[key]), rel=0, abs=CROSS_BACKEND_PROB_ABS)
    # Each evaluation records where it ran, and `runs show` lists it with its loss.
    recorded = [json.loads(path.read_text()) for path in sorted(run_dir.glob("evaluations/*/evaluation.json"))]
    assert sorted(r["backend"]["backend"] for r in recorded if r["split"] == "test") == sorted(INSTALLED)
    assert all(r["backend"]["version"] and r["metrics"]["loss"] > 0 for r in recorded)
    shown = cli("runs", "show", run_dir)
    assert shown.exit_code == 0, shown.output
    header = shown.stdout.split("evaluations:\n", 1)[1].splitlines()[0].split()
    assert header[:5] == ["evaluation", "split", "samples", "backend", "loss"]


def test_missing_backend_names_the_install_line(cli, write_config, runs_dir, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    result = cli("train", write_config(tiny_config()), "--backend", "torch")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: backend: 'torch' is not installed") and "pip install" in result.stderr
    assert not runs_dir.exists()


def test_unknown_backend(cli, write_config):
    result = cli("validate", write_config(tiny_config()), "--backend", "numpy")
    assert result.exit_code == 2 and "allowed: tensorflow, jax, torch" in result.stderr


def test_backend_from_environment(write_config, monkeypatch):
    from dlcli.config import load_config

    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert load_config(write_config(tiny_config())).backend == "jax"
    assert load_config(write_config(tiny_config(backend="torch"))).backend == "torch"
    monkeypatch.setenv("KERAS_BACKEND", "theano")
    from dlcli.errors import ConfigError

    with pytest.raises(ConfigError, match="KERAS_BACKEND"):
        load_config(write_config(tiny_config()))


def test_mirrored_needs_tensorflow(cli, write_config):
    if BACKEND != "tensorflow":
        pytest.skip("checks the message on a non-TensorFlow backend from a TensorFlow process")
    other = OTHERS[0]
    code = ("import sys; from typer.testing import CliRunner; from dlcli.cli import app; "
            "r = CliRunner().invoke(app, sys.argv[1:]); print(r.exit_code); print(r.stderr)")
    config = write_config(tiny_config(distribution="mirrored"))
    out = subprocess.run([sys.executable, "-c", code, "validate", str(config), "--backend", other], env=ENV,
                         capture_output=True, text=True, timeout=300).stdout
    assert out.startswith("2") and "MirroredStrategy" in out


JAX_DATA_PARALLEL = {**ENV, "KERAS_BACKEND": "jax", "DLCLI_CPU_DEVICES": "2"}


@pytest.mark.skipif("jax" not in INSTALLED, reason="needs jax")
def test_jax_data_parallel_on_two_cpu_devices(write_config, tmp_path):
    config = write_config(tiny_config(distribution="data_parallel", fit={"epochs": 1, "batch_size": 16}))
    runs = tmp_path / "runs-dp"
    done = subprocess.run([sys.executable, "-m", "dlcli.cli", "train", str(config), "--runs-dir", str(runs)],
                          env=JAX_DATA_PARALLEL, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    info = json.loads(next(runs.glob("*/run.json")).read_text())
    assert info["distribution"]["strategy"] == "DataParallel" and info["distribution"]["replicas"] == 2
