"""Faults: Ctrl-C and SIGTERM at every boundary of `train` and `tune` (sent by the DLCLI_FAULT_SIGNAL hook of
dlcli/runtime/interrupts.py), the workers of a `tune --workers` chief killed with kill -9, and trials whose scores tie.

Each interrupted run must exit 130 with one `error:` line, be marked `interrupted`, leave no temporary file,
and `--resume` must finish it. The boundary matrix runs in this process (no TensorFlow start-up per case);
the tests at the end check the same with real processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from dlcli.runtime.interrupts import FAULT_VARIABLE
from tests.conftest import only_run, read_csv, tiny_config

pytestmark = [pytest.mark.faults, pytest.mark.slow]  # end-to-end runs: not in the quick loop

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0", "PYTHONUNBUFFERED": "1"}
SIGNALS = ["INT", "TERM"]
TRAIN_POINTS = ["before_fit", "epoch_end:1", "saving", "scoring", "finish"]
AFTER_FIT = ("saving", "scoring", "finish")  # the fit was over: a resume only scores and saves it
TUNE_POINTS = ["trial_start:1", "epoch_end:1", "trial_end:1", "scoring", "saving", "finish"]
RESUMED = "INT"  # every case is interrupted; the SIGINT ones are also resumed (the same code for both)
# Two trials that train the same model (the diagnosis threshold changes no weight): their scores tie.
TIE = {"diagnosis.high_error": [0.4, 0.5]}


def dlcli(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "dlcli.cli", *map(str, args)]


@pytest.fixture
def unraisable(monkeypatch):
    """What Python would print as "Exception ignored in ..." (an exception it had to swallow)."""
    seen: list = []
    monkeypatch.setattr(sys, "unraisablehook", lambda info: seen.append(info.exc_type))
    return seen


def temporary_files(run_dir: Path) -> list[Path]:
    return [p for p in run_dir.rglob("*") if ".tmp" in p.name]


def assert_interrupted(exit_code: int, stderr: str, run_dir: Path) -> dict:
    """Exit 130, one `error:` line and no traceback, the run marked interrupted, no temporary file left."""
    assert exit_code == 130, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "interrupted" in lines[0], stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "interrupted", info["status"]
    assert not temporary_files(run_dir)
    return info


def fault(monkeypatch, spec: str | None) -> None:
    if spec is None:
        monkeypatch.delenv(FAULT_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(FAULT_VARIABLE, spec)


# ---------------------------------------------------------------------------------------------
# train: before the first epoch, between epochs, while saving, while scoring, before completing


def uninterrupted_run(root: Path, command: str, cfg: dict) -> Path:
    """Run ``dlcli <command>`` on ``cfg`` to the end in ``root/runs``; returns its run directory."""
    from typer.testing import CliRunner

    import yaml

    from dlcli.cli import app

    (root / "exp.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    result = CliRunner().invoke(app, [command, str(root / "exp.yaml"), "--runs-dir", str(root / "runs")])
    assert result.exit_code == 0, result.output
    return only_run(root / "runs")


@pytest.fixture(scope="module")
def train_reference(tmp_path_factory):
    """The metrics of the same training, uninterrupted."""
    run = uninterrupted_run(tmp_path_factory.mktemp("train_reference"), "train", tiny_config())
    return read_csv(run / "metrics.csv")


@pytest.mark.parametrize("sig", SIGNALS)
@pytest.mark.parametrize("point", TRAIN_POINTS)
def test_a_signal_at_each_train_boundary_interrupts_and_resume_completes(cli, write_config, runs_dir, monkeypatch,
                                                                         unraisable, train_reference, point, sig):
    config = write_config(tiny_config())
    fault(monkeypatch, f"{sig}@{point}")
    result = cli("train", config)
    run = only_run(runs_dir)
    info = assert_interrupted(result.exit_code, result.stderr, run)
    assert not unraisable
    assert info["last_epoch"] == {"before_fit": 0, "epoch_end:1": 1}.get(point, 2)
    assert (run / "model.keras").exists() == (point in ("scoring", "finish"))
    if sig != RESUMED:
        return

    fault(monkeypatch, None)
    result = cli("train", "--resume", run)
    assert result.exit_code == 0, result.output
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["resumed"] == 1 and info["last_epoch"] == 2
    assert [r["epoch"] for r in read_csv(run / "history.csv")] == ["1", "2"]  # each epoch once
    assert not (run / "backup").exists() and not temporary_files(run)
    if point in AFTER_FIT:  # not trained again: the very model the fit left, scored
        assert "Epoch 1/" not in result.output
        assert read_csv(run / "metrics.csv") == train_reference


# ---------------------------------------------------------------------------------------------
# tune: as a trial starts and ends, within a trial, while the best model is scored and saved


def tune_config(**fit) -> dict:
    return tiny_config(fit={"batch_size": 16, "epochs": 1, **fit},
                       tune={"strategy": "grid", "objective": "val_accuracy", "space": TIE})


@pytest.fixture(scope="module")
def tune_reference(tmp_path_factory):
    """The trials table and run.json of the same search, uninterrupted."""
    run = uninterrupted_run(tmp_path_factory.mktemp("tune_reference"), "tune", tune_config())
    return read_csv(run / "trials.csv"), json.loads((run / "run.json").read_text())


@pytest.mark.parametrize("sig", SIGNALS)
@pytest.mark.parametrize("point", TUNE_POINTS)
def test_a_signal_at_each_tune_boundary_interrupts_and_resume_runs_each_trial_once(
        cli, write_config, runs_dir, monkeypatch, unraisable, tune_reference, point, sig):
    config = write_config(tune_config(), "tie.yaml")
    fault(monkeypatch, f"{sig}@{point}")
    result = cli("tune", config)
    run = only_run(runs_dir)
    assert_interrupted(result.exit_code, result.stderr, run)
    assert not unraisable
    before = read_csv(run / "trials.csv")
    finished = {r["trial_id"]: r for r in before if r["status"] == "completed"}
    assert len(finished) == {"trial_start:1": 0, "epoch_end:1": 0, "trial_end:1": 1}.get(point, 2), before
    if sig != RESUMED:
        return

    fault(monkeypatch, None)
    result = cli("tune", config, "--resume", run)
    assert result.exit_code == 0, result.output
    after = read_csv(run / "trials.csv")
    assert sorted(r["diagnosis.high_error"] for r in after) == ["0.4", "0.5"]  # every trial, once
    assert all(r["status"] == "completed" for r in after)
    for row in after:  # finished trials are kept as they were, not run again
        if row["trial_id"] in finished:
            assert row == finished[row["trial_id"]]
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["resumed"] == 1
    assert not temporary_files(run)
    # The scores tie: the resumed search names the same best trial as the uninterrupted one.
    reference_rows, reference_info = tune_reference
    assert len({r["best_val_accuracy"] for r in reference_rows}) == 1
    assert info["best_trial"] == reference_info["best_trial"] == after[0]["trial_id"] == reference_rows[0]["trial_id"]


def test_equal_scores_rank_by_creation_order_whatever_order_keras_tuner_holds_them():
    from dlcli.tune.keras_side import Session, creation_order

    def trial(trial_id: str, score: float, status: str = "COMPLETED") -> types.SimpleNamespace:
        return types.SimpleNamespace(trial_id=trial_id, score=score, status=status,
                                     hyperparameters=types.SimpleNamespace(values={"x": trial_id}))

    session = Session.__new__(Session)  # only the trials and the direction: no keras-tuner state
    # Reloaded in file-system order, with ids as wide as a max_trials that grew from 9 to 10 on resume.
    trials = [trial("10", 0.9), trial("3", 0.5), trial("09", 0.9), trial("1", 0.9, "RUNNING"), trial("2", 0.9)]
    session.oracle = types.SimpleNamespace(trials={t.trial_id: t for t in trials})
    session.search = types.SimpleNamespace(direction="max", tune=types.SimpleNamespace(space={"x": [1]}))
    assert [t.trial_id for t in session.ranked()] == ["2", "09", "10", "3"]
    assert session.best_trial()[0] == "2"
    session.search.direction = "min"
    assert [t.trial_id for t in session.ranked()] == ["3", "2", "09", "10"]
    assert creation_order("0010") == 10 and creation_order("x") > 10**9


# ---------------------------------------------------------------------------------------------
# Real processes: the exit code and stderr the shell sees, and the workers of a tune chief


def test_a_real_process_exits_130_with_one_line(write_config, runs_dir):
    """What the shell sees (the `--workers` test below checks a real tune chief)."""
    proc = subprocess.run(dlcli("train", write_config(tiny_config()), "--runs-dir", runs_dir),
                          env={**ENV, FAULT_VARIABLE: "TERM@epoch_end:1"}, capture_output=True, text=True, timeout=180)
    assert_interrupted(proc.returncode, proc.stderr, only_run(runs_dir))


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def processes_naming(text: str) -> list[int]:
    """The pids of the live processes whose command line contains ``text``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().decode(errors="replace") and alive(int(cmdline.parent.name)):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_a_tune_chief_ends_its_workers_and_the_search_resumes(cli, write_config, runs_dir):
    config = write_config(tiny_config(fit={"batch_size": 16, "epochs": 20}, tune={
        "strategy": "grid", "objective": "val_accuracy", "space": {"model.layers.0.units": [4, 8, 12]}}))
    chief = subprocess.Popen(dlcli("tune", config, "--workers", "2", "--runs-dir", runs_dir), env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 150
    while time.time() < deadline and not list(runs_dir.glob("*/tuner/trial_*/trial.json")):
        assert chief.poll() is None, "the search ended before a trial started"
        time.sleep(0.2)
    workers = children(chief.pid)
    assert len(workers) == 2, workers
    chief.kill()  # kill -9: no handler runs; only the workers themselves can notice
    chief.wait(timeout=30)
    deadline = time.time() + 30
    while time.time() < deadline and any(alive(pid) for pid in workers):
        time.sleep(0.2)
    assert not any(alive(pid) for pid in workers), "workers outlived their chief by 30 s"
    run = only_run(runs_dir)
    listed = cli("runs", "list", "--runs-dir", runs_dir)
    assert listed.exit_code == 0 and "crashed" in listed.stdout

    # Resumed with workers again, and stopped by a signal in the chief as the third trial starts (between two
    # trials, in the chief's gRPC thread): interrupted like any run, its workers stopped.
    resumed = subprocess.run(dlcli("tune", config, "--resume", run, "--workers", "2"),
                             env={**ENV, FAULT_VARIABLE: "TERM@trial_start:3"}, capture_output=True, text=True,
                             timeout=300)
    assert_interrupted(resumed.returncode, resumed.stderr, run)
    assert not processes_naming(str(run))  # no worker left (they run `dlcli tune ... --join RUN_DIR`)

    result = cli("tune", config, "--resume", run)
    assert result.exit_code == 0, result.output
    rows = read_csv(run / "trials.csv")
    assert sorted(r["model.layers.0.units"] for r in rows) == ["12", "4", "8"]  # every trial, once
    assert all(r["status"] == "completed" for r in rows)
    assert json.loads((run / "run.json").read_text())["status"] == "completed"


def test_a_worker_whose_chief_does_not_answer_gives_up_with_one_line(cli, write_config, tmp_path, monkeypatch):
    import socket

    import yaml

    config = write_config(tune_config(), "tie.yaml")
    run = tmp_path / "search"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"command": "tune", "status": "running"}))
    (run / "config.yaml").write_text(yaml.safe_dump(tune_config(), sort_keys=False))
    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for name, value in {"KERASTUNER_TUNER_ID": "worker1", "KERASTUNER_ORACLE_IP": "127.0.0.1",
                        "KERASTUNER_ORACLE_PORT": str(port), "DLCLI_CHIEF_TIMEOUT": "2"}.items():
        monkeypatch.setenv(name, value)
    start = time.monotonic()
    result = cli("tune", config, "--join", run)
    assert result.exit_code == 2, result.output
    assert "did not answer for 2 s" in result.stderr and "--resume" in result.stderr
    assert time.monotonic() - start < 60
