"""`distribution: mirrored`: tf.distribute.MirroredStrategy, tested on CPU by splitting it into two logical
devices (DLCLI_CPU_DEVICES=2) in a fresh process, since TensorFlow fixes its devices when it starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.conftest import only_run, read_csv, tiny_config

pytestmark = pytest.mark.slow  # end-to-end runs: not in the quick loop (python -m pytest -m "not slow")

REPO = Path(__file__).resolve().parents[2]




def two_cpu_devices(args: list[str], runs_dir: Path, script: str | None = None) -> subprocess.CompletedProcess:
    """Run ``dlcli ARGS`` (or ``script`` with ARGS) in a new process whose CPU is two logical devices."""
    env = {**os.environ, "DLCLI_CPU_DEVICES": "2", "DLCLI_RUNS_DIR": str(runs_dir), "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-c", script, *args] if script else [sys.executable, "-m", "dlcli.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=runs_dir.parent)


def test_mirrored_train_uses_two_replicas_and_matches_one_device(cli, write_config, tmp_path):
    cfg = tiny_config()
    cfg["distribution"] = "mirrored"
    config = write_config(cfg)
    done = two_cpu_devices(["train", str(config)], tmp_path / "mirrored")
    assert done.returncode == 0, done.stdout + done.stderr
    run = only_run(tmp_path / "mirrored")
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed"
    assert info["distribution"]["strategy"] == "MirroredStrategy"
    assert info["distribution"]["replicas"] == 2
    assert [d.rsplit("/", 1)[-1] for d in info["distribution"]["devices"]] == ["device:CPU:0", "device:CPU:1"]
    assert yaml.safe_load((run / "config.yaml").read_text())["distribution"] == "mirrored"
    mirrored = read_csv(run / "metrics.csv")
    assert [r["split"] for r in mirrored] == ["train", "val", "test", "baseline"]

    # The same config on one device (this process): the global batch is split, not changed, so the
    # numbers agree up to float rounding.
    result = cli("train", write_config(tiny_config(), "single.yaml"), "--runs-dir", tmp_path / "single")
    assert result.exit_code == 0, result.output
    single = read_csv(only_run(tmp_path / "single") / "metrics.csv")
    for a, b in zip(mirrored, single):
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), abs=1e-4)
        assert float(a["accuracy"]) == pytest.approx(float(b["accuracy"]), abs=1e-6)


# Records, as keras-tuner builds each trial's model, how many replicas the strategy in scope has.
RECORD_TRIAL_SCOPES = textwrap.dedent("""
    import json, os, sys
    from dlcli.tune import trials as tuner

    seen = []
    build = tuner.TrialModel.build

    def recording_build(self, hp):
        import tensorflow as tf
        seen.append(tf.distribute.get_strategy().num_replicas_in_sync)
        return build(self, hp)

    tuner.TrialModel.build = recording_build
    from dlcli.cli import app
    try:
        app(sys.argv[1:])
    finally:
        with open(os.environ["DLCLI_RUNS_DIR"] + ".replicas.json", "w") as fh:
            json.dump(seen, fh)
""")


def test_mirrored_tune_builds_every_trial_in_the_strategy(write_config, tmp_path):
    pytest.importorskip("dlcli.tune", reason="dlcli tune is not in this checkout")
    cfg = tiny_config(name="tinytune")
    cfg["distribution"] = "mirrored"
    cfg["tune"] = {"strategy": "grid", "objective": "val_accuracy", "space": {"model.layers.0.units": [4, 8]}}
    runs_dir = tmp_path / "runs"
    done = two_cpu_devices(["tune", str(write_config(cfg))], runs_dir, script=RECORD_TRIAL_SCOPES)
    assert done.returncode == 0, done.stdout + done.stderr
    run = only_run(runs_dir)
    assert json.loads((run / "run.json").read_text())["distribution"]["replicas"] == 2
    assert [t["status"] for t in read_csv(run / "trials.csv")] == ["completed", "completed"]
    assert json.loads(Path(f"{runs_dir}.replicas.json").read_text()) == [2, 2]  # one build per trial
    assert (run / "model.keras").is_file()


def test_mirrored_on_one_device_runs_with_one_replica(cli, write_config, runs_dir):
    cfg = tiny_config()
    cfg["distribution"] = "mirrored"
    result = cli("train", write_config(cfg))
    assert result.exit_code == 0, result.output
    info = json.loads((only_run(runs_dir) / "run.json").read_text())
    assert info["distribution"]["strategy"] == "MirroredStrategy" and info["distribution"]["replicas"] == 1


def test_no_distribution_is_recorded_as_such(cli, write_config, runs_dir):
    result = cli("train", write_config(tiny_config()))
    assert result.exit_code == 0, result.output
    info = json.loads((only_run(runs_dir) / "run.json").read_text())
    assert info["distribution"] == {"strategy": None, "replicas": 1}


def test_unknown_distribution_is_one_line(cli, write_config, runs_dir):
    result = cli("train", write_config(tiny_config()), "--set", "distribution=multiworker")
    assert result.exit_code == 2
    assert "distribution: 'multiworker' is not allowed. (allowed: none, mirrored, data_parallel)" in result.output


def test_bad_cpu_device_count_is_one_line(cli, write_config, runs_dir, monkeypatch):
    monkeypatch.setenv("DLCLI_CPU_DEVICES", "two")
    result = cli("train", write_config(tiny_config()))
    assert result.exit_code == 2
    assert "DLCLI_CPU_DEVICES: 'two' is not a number of CPU devices from 1 to 64" in result.output
    assert not runs_dir.exists() or not [p for p in runs_dir.iterdir() if p.is_dir()]
