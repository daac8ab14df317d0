"""Interrupts, crashes, resume, concurrent runs and reproducibility, with real processes and signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dlcli import runs
from tests.conftest import BACKEND, read_csv, tiny_config

pytestmark = pytest.mark.slow  # end-to-end runs: not in the quick loop (python -m pytest -m "not slow")

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0", "PYTHONUNBUFFERED": "1"}


def dlcli(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "dlcli.cli", *map(str, args)]



def slow_config(write_config, epochs: int = 400) -> Path:
    """Digits with many epochs, so a signal lands mid-training."""
    return write_config(tiny_config(
        data={"source": "digits", "scale": "standard"},
        model={"layers": [{"type": "Dense", "units": 32, "activation": "relu"}, {"type": "Dropout", "rate": 0.1},
                          {"type": "Dense", "units": 10, "activation": "softmax"}]},
        fit={"epochs": epochs, "batch_size": 16},
    ), "slow.yaml")


def start_and_wait_for_epochs(config: Path, runs_dir: Path, epochs: int = 2) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen(dlcli("train", config, "--runs-dir", runs_dir), env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        found = list(runs_dir.glob("*/history.csv"))
        if found and len(read_csv(found[0])) >= epochs:
            return proc, found[0].parent
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("training never reached the wanted epoch")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_marks_run_interrupted_and_resume_finishes_it(write_config, runs_dir, sig):
    proc, run_dir = start_and_wait_for_epochs(slow_config(write_config, epochs=400), runs_dir)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted after epoch" in stderr and "Traceback" not in stderr
    info = json.loads((run_dir / "run.json").read_text())
    last = info["last_epoch"]
    assert info["status"] == "interrupted" and last >= 2 and info["reason"] == f"interrupted after epoch {last}"
    assert runs.read_index(runs_dir)[0]["status"] == "interrupted"
    assert not (run_dir / "model.keras").exists()

    if sig == signal.SIGTERM:
        return  # one resume is enough; SIGINT's run is resumed below
    # Resume with fewer epochs to go: change nothing but the epoch count in the saved config.
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    cfg["fit"]["epochs"] = last + 2
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    done = subprocess.run(dlcli("train", "--resume", run_dir), env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    epochs = [int(r["epoch"]) for r in read_csv(run_dir / "history.csv")]
    assert epochs == list(range(1, last + 3))  # each epoch once
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "completed" and info["resumed"] == 1 and info["last_epoch"] == last + 2
    assert (run_dir / "model.keras").exists() and not (run_dir / "backup").exists()
    assert [r["status"] for r in runs.read_index(runs_dir)] == ["completed"]


def test_kill_9_leaves_running_run_shown_as_crashed_and_resumable(write_config, runs_dir, cli):
    proc, run_dir = start_and_wait_for_epochs(slow_config(write_config, epochs=400), runs_dir)
    proc.kill()
    proc.communicate(timeout=30)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "running"  # nobody could write anything else
    assert runs.effective_status(info) == "crashed"
    listed = cli("runs", "list", "--runs-dir", runs_dir)
    assert listed.exit_code == 0 and "crashed" in listed.stdout
    # A crashed run resumes from its last saved epoch.
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    cfg["fit"]["epochs"] = info["last_epoch"] + 1
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    result = cli("train", "--resume", run_dir)
    assert result.exit_code == 0, result.output
    epochs = [int(r["epoch"]) for r in read_csv(run_dir / "history.csv")]
    assert epochs == sorted(set(epochs)) and epochs[-1] == info["last_epoch"] + 1


def test_resume_refuses_completed_and_changed_runs(cli, write_config, runs_dir):
    assert cli("train", write_config(tiny_config(fit={"epochs": 1}))).exit_code == 0
    run_dir = [p for p in runs_dir.iterdir() if p.is_dir()][0]
    result = cli("train", "--resume", run_dir)
    assert result.exit_code == 2 and "already completed" in result.stderr
    result = cli("train", "--resume", runs_dir / "nope")
    assert result.exit_code == 2 and "no such run directory" in result.stderr
    result = cli("train", write_config(tiny_config()), "--resume", run_dir)
    assert result.exit_code == 2 and "give only --resume" in result.stderr
    result = cli("train")
    assert result.exit_code == 2 and "--resume" in result.stderr


def test_concurrent_runs_get_own_dirs_and_identical_numbers(write_config, runs_dir):
    """Four processes at once, same config and seed: four directories, four index rows, the same numbers."""
    config = write_config(tiny_config(fit={"epochs": 2, "batch_size": 16}))
    procs = [subprocess.Popen(dlcli("train", config, "--runs-dir", runs_dir), env=ENV, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    dirs = sorted(p for p in runs_dir.iterdir() if p.is_dir())
    assert len(dirs) == 4
    index = runs.read_index(runs_dir)
    assert sorted(r["run_id"] for r in index) == [d.name for d in dirs]
    assert all(r["status"] == "completed" and r["test_accuracy"] for r in index)
    # Reproducible in fresh processes: identical files, byte for byte.
    for name in ("metrics.csv", "history.csv"):
        assert len({(d / name).read_text() for d in dirs}) == 1, name


def test_index_survives_eight_concurrent_writers(runs_dir):
    code = ("import sys; from pathlib import Path; from dlcli.runs import Run\n"
            "for i in range(5):\n"
            "    r = Run(Path(sys.argv[1]), 'w', 'train', {'epochs': i})\n"
            "    r.finish('completed', test_metrics={'accuracy': 0.5})\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(runs_dir)], env=ENV) for _ in range(8)]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    index = runs.read_index(runs_dir)
    dirs = [p for p in runs_dir.iterdir() if p.is_dir()]
    assert len(dirs) == 40 and len(index) == 40
    assert len({r["run_id"] for r in index}) == 40
    assert all(r["status"] == "completed" and r["test_accuracy"] == "0.5" for r in index)
    assert not list(runs_dir.glob(".*.tmp"))  # no temporary files left behind


def test_run_json_records_what_repeats_the_run(cli, write_config, runs_dir):
    assert cli("train", write_config(tiny_config(fit={"epochs": 1}))).exit_code == 0
    info = json.loads(next(runs_dir.glob("*/run.json")).read_text())
    assert info["config"]["seed"] == 1 and info["config"]["fit"]["epochs"] == 1
    assert {"python", BACKEND, "keras", "numpy", "dlcli"} <= set(info["versions"])
    assert info["data"]["fingerprint"].startswith("sha256:")


def test_tune_resumes_after_kill_9_keeping_finished_trials(write_config, runs_dir):
    space = {"model.layers.0.units": [4, 8], "compile.optimizer.learning_rate": [0.01, 0.02]}
    config = write_config(tiny_config(
        data={"source": "digits", "scale": "standard"},
        model={"layers": [{"type": "Dense", "units": 8, "activation": "relu"},
                          {"type": "Dense", "units": 10, "activation": "softmax"}]},
        fit={"epochs": 25, "batch_size": 16},
        tune={"strategy": "grid", "objective": "val_accuracy", "space": space}), "grid.yaml")
    proc = subprocess.Popen(dlcli("tune", config, "--runs-dir", runs_dir), env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline, finished = time.time() + 240, []
    while time.time() < deadline and len(finished) < 2:
        assert proc.poll() is None, proc.communicate()
        found = list(runs_dir.glob("*/trials.csv"))
        if found:
            finished = [r for r in read_csv(found[0]) if r["status"] == "completed"]
        time.sleep(0.2)
    assert len(finished) >= 2, "the search never finished two trials"
    proc.kill()  # kill -9: no handler runs
    proc.communicate(timeout=30)
    run_dir = found[0].parent
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"

    done = subprocess.run(dlcli("tune", config, "--resume", run_dir), env=ENV, capture_output=True, text=True,
                          timeout=400)
    assert done.returncode == 0, done.stderr
    after = read_csv(run_dir / "trials.csv")
    assert len(after) == 4 and all(r["status"] == "completed" for r in after)
    assert len({(r["model.layers.0.units"], r["compile.optimizer.learning_rate"]) for r in after}) == 4
    by_id = {r["trial_id"]: r for r in after}
    for row in finished:  # finished trials were kept, not rerun: the same row, score and seconds
        assert by_id[row["trial_id"]] == row
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
