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

import pytest

from .conftest import BACKEND, tiny_config

ROOT = Path(__file__).resolve().parent.parent
INSTALLED = [b for b in ("tensorflow", "jax", "torch") if importlib.util.find_spec(b) is not None]
OTHERS = [b for b in INSTALLED if b != BACKEND]
E2E_FILES = ["tests/test_train.py", "tests/test_evaluate.py", "tests/test_predict.py", "tests/test_tune.py",
             "tests/test_tables.py", "tests/test_baseline.py"]
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


def test_model_saved_on_one_backend_evaluates_on_every_other(cli, write_config, runs_dir):
    result = cli("train", write_config(tiny_config(fit={"epochs": 2})))
    assert result.exit_code == 0, result.output
    run_dir = next(p for p in runs_dir.iterdir() if p.is_dir())
    with open(run_dir / "metrics.csv") as fh:
        trained = next(r for r in csv.DictReader(fh) if r["split"] == "test")
    for backend in OTHERS:
        done = subprocess.run([sys.executable, "-m", "dlcli.cli", "evaluate", str(run_dir), "--backend", backend,
                               "--format", "json"], env=ENV, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        evaluated = json.loads(done.stdout)["metrics"][0]
        assert evaluated["split"] == "test"
        for key in ("loss", "accuracy"):
            assert float(evaluated[key]) == pytest.approx(float(trained[key]), abs=1e-5), (backend, key)


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
