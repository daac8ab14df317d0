"""Shared fixtures: quiet TensorFlow, seeded generators, a private runs dir, config writers."""

from __future__ import annotations

import csv
import os
import random
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ["COLUMNS"] = "200"  # Typer's error boxes must not wrap the text tests look for
# The Keras backend these tests run on (tests/runtime/test_backends.py reruns the end-to-end files on the others).
BACKEND = os.environ.get("KERAS_BACKEND") or "tensorflow"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from dlcli.cli import app  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    random.seed(0)
    np.random.seed(0)
    # Nothing a test runs may write into the checkout's runs/.
    monkeypatch.setenv("DLCLI_RUNS_DIR", str(tmp_path / "runs"))


def tiny_config(**overrides: Any) -> dict[str, Any]:
    """A small, fast iris config; keyword arguments replace whole top-level sections."""
    cfg: dict[str, Any] = {
        "name": "tiny",
        "seed": 1,
        "data": {"source": "iris", "split": {"train": 0.6, "val": 0.2, "test": 0.2}, "scale": "standard"},
        "model": {"layers": [{"type": "Dense", "units": 8, "activation": "relu"},
                             {"type": "Dense", "units": 3, "activation": "softmax"}]},
        "compile": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
        "fit": {"batch_size": 16, "epochs": 2},
    }
    cfg.update(overrides)
    return cfg


@pytest.fixture
def write_config(tmp_path: Path):
    """Write a config dict (or raw YAML text) to a file in tmp_path and return its path."""

    def write(cfg: dict[str, Any] | str, name: str = "exp.yaml") -> Path:
        path = tmp_path / name
        path.write_text(cfg if isinstance(cfg, str) else yaml.safe_dump(cfg, sort_keys=False))
        return path

    return write


@pytest.fixture
def cli():
    """Invoke the dlcli app in-process; returns click's Result (stdout, stderr, exit_code)."""
    runner = CliRunner()

    def invoke(*args: str | os.PathLike) -> Any:
        return runner.invoke(app, [str(a) for a in args])

    return invoke


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fuzz-examples", type=int, default=int(os.environ.get("DLCLI_FUZZ_EXAMPLES", "100")),
                     help="How many mutated configs the property-based test tries (default 100; CI uses that).")


def read_csv(path: Path) -> list[dict[str, str]]:
    """A CSV file's rows as dicts."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def only_run(runs_dir: Path) -> Path:
    """The one run directory in ``runs_dir`` (fails if there are none or several)."""
    runs = [p for p in runs_dir.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def invoke(*args: Any) -> Any:
    """Run the dlcli app in-process with these arguments."""
    return CliRunner().invoke(app, [str(a) for a in args])


def ok(*args: Any) -> Any:
    """Run a command that must succeed."""
    result = invoke(*args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def user_error(*args: Any) -> str:
    """Run a command that must fail as a user mistake: exit 2, one `error:` line, no traceback."""
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]
