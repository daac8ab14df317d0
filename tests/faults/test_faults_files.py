"""Fault injection on run files: missing, changed, damaged, planted symlinks, a full or read-only disk.

Every case asserts what a user sees: the exit code, one `error:` line naming the file, no traceback, the
run's state, no stray temporary files, and every other file of the runs directory byte-identical.
Run the whole fault suite alone with: python -m pytest -m faults
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sklearn.datasets import load_iris

from tests.conftest import invoke

pytestmark = [pytest.mark.faults, pytest.mark.slow]  # end-to-end runs: not in the quick loop

CLASSES = ["setosa", "versicolor", "virginica"]


def flowers_csv(path: Path) -> Path:
    df = load_iris(as_frame=True).frame.sample(frac=1.0, random_state=1)
    df["species"] = [CLASSES[i] for i in df.pop("target")]
    df.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in df.columns]
    df.to_csv(path, index=False)
    return path


def config(data: Path, name: str, **fit: Any) -> dict[str, Any]:
    return {
        "name": name, "seed": 2,
        "data": {"source": str(data), "target": "species", "split": {"train": 0.6, "val": 0.2, "test": 0.2},
                 "scale": "standard"},
        "model": {"layers": [{"type": "Dense", "units": 8, "activation": "relu"},
                             {"type": "Dense", "units": 3, "activation": "softmax"}]},
        "compile": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
        "fit": {"batch_size": 16, "epochs": 2, **fit},
    }


def write(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def one_run(runs: Path, suffix: str) -> Path:
    (run,) = [p for p in runs.iterdir() if p.is_dir() and p.name.endswith(suffix)]
    return run


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One runs directory holding a completed run (with an evaluation), a run interrupted after its first epoch
    (with its backup), and a search whose state says interrupted; tests work on copies of it."""
    root = tmp_path_factory.mktemp("faults")
    runs = root / "runs"
    data = flowers_csv(root / "flowers.csv")
    done = write(root / "done.yaml", config(data, "done"))
    assert invoke("train", done, "--runs-dir", runs).exit_code == 0
    completed = one_run(runs, "-done")
    assert invoke("evaluate", completed).exit_code == 0

    import keras

    from dlcli.train import backup as train_backup

    original = keras.callbacks.BackupAndRestore._save_model

    def stop_at_third_save(self: Any) -> None:
        if self._current_epoch == 3:  # two epochs saved (the newest checkpoint and the one before) and logged
            raise KeyboardInterrupt
        original(self)

    with pytest.MonkeyPatch.context() as mp:
        # A backup after every epoch (the default saves every few seconds), so the run has two states.
        mp.setattr(train_backup, "BACKUP_SECONDS", 0.0)
        mp.setattr(train_backup, "BACKUP_COST_FACTOR", 0.0)
        mp.setattr(keras.callbacks.BackupAndRestore, "_save_model", stop_at_third_save)
        result = invoke("train", write(root / "cut.yaml", config(data, "cut", epochs=4)), "--runs-dir", runs)
    assert result.exit_code == 130, result.output
    interrupted = one_run(runs, "-cut")

    search = config(data, "search", epochs=1)
    search["tune"] = {"strategy": "grid", "objective": "val_accuracy", "space": {"model.layers.0.units": [4, 8]}}
    tune_config = write(root / "search.yaml", search)
    assert invoke("tune", tune_config, "--runs-dir", runs).exit_code == 0
    tuned = one_run(runs, "-search")
    info = json.loads((tuned / "run.json").read_text())
    (tuned / "run.json").write_text(json.dumps({**info, "status": "interrupted"}))  # as if stopped mid-search
    return {"root": root, "runs": runs, "data": data, "completed": completed, "interrupted": interrupted,
            "tuned": tuned, "tune_config": tune_config, "done_config": done}


@pytest.fixture
def world(base: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    """A private copy of the base runs directory, same layout."""
    runs = tmp_path / "runs"
    shutil.copytree(base["runs"], runs, symlinks=True)
    out = {k: (runs / v.name if v.parent == base["runs"] else v) for k, v in base.items()}
    out.update(runs=runs, tmp=tmp_path, outside=tmp_path / "outside")
    out["outside"].mkdir()
    (out["outside"] / "victim.txt").write_text("precious\n")
    return out


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every regular file under ``root`` (symlinks recorded as their target)."""
    files = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            files[key] = "link:" + os.readlink(path)
        elif path.is_file():
            files[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def stray_temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp" in p.name]


def one_error_line(result: Any, code: int = 2) -> str:
    assert result.exit_code == code, result.output + repr(result.exception)
    assert "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert len(lines[0]) < 700, lines[0]
    return lines[0]


# ---------------------------------------------------------------------------------------------
# Class 1 and 6: missing, changed and damaged run files


def predict_args(world: dict[str, Path]) -> list[Any]:
    return ["predict", world["completed"], "--input", world["data"], "--output", world["tmp"] / "predictions.csv"]


def json_wrong_shape(data: bytes) -> bytes:
    return b"[1, 2, 3]\n"


def csv_wrong_shape(data: bytes) -> bytes:
    return b"colour,size\nred,1,extra\n"


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "truncated": lambda data: data[: len(data) // 2],
    "empty": lambda data: b"",
    "garbage": lambda data: bytes(range(128, 256)) * 8,
}

# (run, file inside it, its wrong-shape version, the commands that read it)
RUN_FILES: list[tuple[str, str, Callable[[bytes], bytes], list[str]]] = [
    ("completed", "run.json", json_wrong_shape, ["runs show", "evaluate", "predict"]),
    ("completed", "metrics.csv", csv_wrong_shape, ["runs show", "runs compare"]),
    ("completed", "diagnosis.json", json_wrong_shape, ["runs show"]),
    ("completed", "history.csv", csv_wrong_shape, ["plot"]),
    ("completed", "preprocessing.json", json_wrong_shape, ["evaluate", "predict"]),
    ("completed", "preprocessing.npz", json_wrong_shape, ["evaluate", "predict"]),
    ("completed", "model.keras", json_wrong_shape, ["evaluate", "predict"]),
    ("completed", "config.yaml", lambda d: b"- a\n- list\n", ["evaluate", "predict"]),
    ("completed", "evaluations/*/evaluation.json", json_wrong_shape, ["runs show"]),
    ("interrupted", "run.json", json_wrong_shape, ["train --resume"]),
    ("interrupted", "history.csv", csv_wrong_shape, ["train --resume"]),
    ("interrupted", "backup/training_metadata.json", json_wrong_shape, ["train --resume"]),
    ("interrupted", "backup/latest.weights.h5", json_wrong_shape, ["train --resume"]),
    ("tuned", "tuner/oracle.json", json_wrong_shape, ["tune --resume"]),
    ("tuned", "tuner/trial_*/trial.json", json_wrong_shape, ["tune --resume"]),
]


def command_args(command: str, world: dict[str, Path], run: Path) -> list[Any]:
    return {
        "runs show": ["runs", "show", run],
        "runs compare": ["runs", "compare", run, world["interrupted"]],
        "evaluate": ["evaluate", run],
        "predict": predict_args(world),
        "plot": ["plot", run, "--no-confusion", "--output-dir", world["tmp"] / "plots"],
        "train --resume": ["train", "--resume", run],
        "tune --resume": ["tune", world["tune_config"], "--resume", run],
    }[command]


CASES = [pytest.param(run, name, kind, command, id=f"{run}-{name}-{kind}-{command}".replace(" ", "_"))
         for run, name, wrong, commands in RUN_FILES for kind in [*DAMAGE, "wrong shape"] for command in commands]


@pytest.mark.parametrize(("run_key", "name", "kind", "command"), CASES)
def test_a_damaged_run_file_is_one_error_naming_it(world, run_key, name, kind, command):
    run = world[run_key]
    path = sorted(run.glob(name))[-1] if "*" in name else run / name
    wrong = next(w for r, n, w, _ in RUN_FILES if (r, n) == (run_key, name))
    damage = wrong if kind == "wrong shape" else DAMAGE[kind]
    path.write_bytes(damage(path.read_bytes()))
    # keras-tuner keeps the previous checkpoint too: damage both, or Keras would quietly use the other
    if name.startswith("backup/"):
        backup = Path(f"{path}.bkp")
        backup.write_bytes(damage(backup.read_bytes())) if backup.exists() else None
    before = snapshot(world["runs"])
    result = invoke(*command_args(command, world, run))
    line = one_error_line(result)
    assert path.name in line, line
    assert not changed(before, snapshot(world["runs"])), "a failed command changed the runs directory"
    assert not stray_temporaries(world["runs"])
    assert not (world["tmp"] / "predictions.csv").exists()


@pytest.mark.parametrize("name", ["model.keras", "preprocessing.json", "preprocessing.npz", "config.yaml"])
@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_missing_or_changed_file_is_never_used_silently(world, name, command):
    run = world["completed"]
    info = json.loads((run / "run.json").read_text())
    assert name in info["files"] and info["files"][name].startswith("sha256:")
    original = (run / name).read_bytes()
    (run / name).unlink()
    line = one_error_line(invoke(*command_args(command, world, run)))
    assert f"has no {name}" in line
    # the same bytes with one more at the end: a file that still parses but is not the one trained
    (run / name).write_bytes(original + (b"\n" if name.endswith((".json", ".yaml")) else b"\0"))
    line = one_error_line(invoke(*command_args(command, world, run)))
    assert name in line and "changed since the run finished" in line
    (run / name).write_bytes(original)
    assert invoke(*command_args(command, world, run)).exit_code == 0


def test_runs_list_lists_the_healthy_runs_and_flags_a_damaged_one(world):
    (world["completed"] / "run.json").write_text("{ not json")
    result = invoke("runs", "list", "--runs-dir", world["runs"], "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {row["run_id"]: row for row in json.loads(result.stdout)}
    assert rows[world["completed"].name]["status"] == "damaged"
    assert rows[world["interrupted"].name]["status"] == "interrupted"
    assert rows[world["tuned"].name]["status"] in ("completed", "interrupted")


@pytest.mark.parametrize("kind", [*DAMAGE, "wrong shape"])
def test_a_damaged_index_is_rebuilt_from_the_runs_and_train_still_works(world, kind):
    index = world["runs"] / "index.csv"
    index.write_bytes(csv_wrong_shape(b"") if kind == "wrong shape" else DAMAGE[kind](index.read_bytes()))
    runs_before = {k: v for k, v in snapshot(world["runs"]).items() if k != "index.csv"}
    result = invoke("runs", "list", "--runs-dir", world["runs"], "--format", "json")
    assert result.exit_code == 0 and "index.csv" in result.stderr and "Traceback" not in result.output
    listed = {row["run_id"]: row["status"] for row in json.loads(result.stdout)}
    assert listed[world["completed"].name] == "completed" and listed[world["interrupted"].name] == "interrupted"
    result = invoke("train", world["done_config"], "--runs-dir", world["runs"])
    assert result.exit_code == 0, result.output
    rows = json.loads(invoke("runs", "list", "--runs-dir", world["runs"], "--format", "json").stdout)
    assert len(rows) == 4 and all(r["status"] in ("completed", "interrupted") for r in rows)
    after = snapshot(world["runs"])
    assert all(after[k] == v for k, v in runs_before.items()), "an earlier run changed"


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(world):
    run = world["interrupted"]
    backup = run / "backup"
    assert json.loads((backup / "training_metadata.json.bkp").read_text())["epoch"] == 1
    (backup / "training_metadata.json").write_text("garbage")
    result = invoke("train", "--resume", run)
    assert result.exit_code == 0, result.output
    history = (run / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history] == ["epoch", "1", "2", "3", "4"]


def test_a_resume_that_fails_leaves_the_run_as_it_was(world):
    run = world["interrupted"]
    history = (run / "history.csv").read_bytes()
    for name in ("training_metadata.json", "training_metadata.json.bkp"):  # the newest state and the one before
        (run / "backup" / name).write_text('{"epoch": "one"}')
    line = one_error_line(invoke("train", "--resume", run))
    assert "training_metadata.json" in line and "cannot resume" in line
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    assert (run / "history.csv").read_bytes() == history  # never wiped because of a bad backup


# ---------------------------------------------------------------------------------------------
# Class 2: nothing is written outside the runs directory, whatever links are planted


def test_planted_links_at_old_temporary_names_are_never_followed(world):
    victim = world["outside"] / "victim.txt"
    run = world["completed"]
    output = world["tmp"] / "predictions.csv"
    for name in (".model.tmp.keras", ".preprocessing.tmp.npz", ".learning_curves.tmp.png"):
        (run / name).symlink_to(victim)
    (world["tmp"] / f".{output.name}.tmp").symlink_to(victim)
    assert invoke(*predict_args(world)).exit_code == 0
    assert invoke("evaluate", run).exit_code == 0
    # a link at a file that plot rewrites is replaced by the new file, never written through
    (run / "learning_curves.png").unlink()
    (run / "learning_curves.png").symlink_to(victim)
    assert invoke("plot", run).exit_code == 0
    assert victim.read_text() == "precious\n"
    assert output.is_file() and not (run / "learning_curves.png").is_symlink()


def test_an_evaluations_directory_replaced_by_a_link_is_refused(world):
    run = world["completed"]
    shutil.rmtree(run / "evaluations")
    (run / "evaluations").symlink_to(world["outside"], target_is_directory=True)
    line = one_error_line(invoke("evaluate", run))
    assert "evaluations" in line and "symlink" in line
    assert [p.name for p in world["outside"].iterdir()] == ["victim.txt"]


@pytest.mark.parametrize("name", ["history.csv", "backup", "run.json", "config.yaml"])
def test_resume_refuses_a_run_with_a_link_inside(world, name):
    run = world["interrupted"]
    target = run / name
    moved = world["outside"] / name
    shutil.move(target, moved)
    target.symlink_to(moved, target_is_directory=moved.is_dir())
    before = snapshot(world["outside"])
    result = invoke("train", "--resume", run)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "symlink" in result.stderr or "not a dlcli run" in result.stderr or "no config" in result.stderr
    assert snapshot(world["outside"]) == before


# ---------------------------------------------------------------------------------------------
# Class 5: no space left, a read-only runs directory


def disk_full_at(monkeypatch: pytest.MonkeyPatch, name: str, runs: Path | None = None) -> None:
    """Make the rename that completes each write of a file called ``name`` (in a run directory of ``runs``,
    or anywhere) fail as a full disk does: every write goes through that rename in ``dlcli.runs``."""
    import dlcli.runs.files

    real_replace = os.replace

    def full_disk(src: Any, dst: Any) -> None:
        if Path(dst).name == name and (runs is None or Path(dst).parent.parent == runs):
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(dlcli.runs.files.os, "replace", full_disk)


WRITES = ["run.json", "config.yaml", "summary.txt", "preprocessing.json", "preprocessing.npz", "metrics.csv",
          "model.keras", "diagnosis.json", "learning_curves.png"]


@pytest.mark.parametrize("name", WRITES)
def test_disk_full_at_each_write_is_one_line_and_leaves_nothing_half_written(world, monkeypatch, name):
    disk_full_at(monkeypatch, name, world["runs"])
    before = snapshot(world["runs"])
    line = one_error_line(invoke("train", world["done_config"], "--runs-dir", world["runs"]), code=1)
    assert line.startswith("error: no space left on device while writing") and line.split(";")[0].endswith(name)
    assert not stray_temporaries(world["runs"])
    after = snapshot(world["runs"])
    new = {k.split("/")[0] for k in changed(before, after)} - {"index.csv"}
    assert all(before[k] == after[k] for k in before if not k.startswith(tuple(new)) and k != "index.csv")
    if name == "run.json":  # the record itself could not be written: no run directory is left behind
        assert not new
    else:
        (new_run,) = new
        info = json.loads((world["runs"] / new_run / "run.json").read_text())
        assert info["status"] == "failed" and "no space left" in info["reason"]


@pytest.mark.parametrize("name", ["trials.csv", "best_config.yaml", "model.keras"])
def test_disk_full_while_tuning(world, monkeypatch, name):
    disk_full_at(monkeypatch, name, world["runs"])
    before = snapshot(world["runs"])
    line = one_error_line(invoke("tune", world["tune_config"], "--runs-dir", world["runs"]), code=1)
    assert line.startswith("error: no space left on device while writing") and name in line
    assert not stray_temporaries(world["runs"])
    (new_run,) = {k.split("/")[0] for k in changed(before, snapshot(world["runs"]))} - {"index.csv"}
    info = json.loads((world["runs"] / new_run / "run.json").read_text())
    assert info["status"] == "failed" and "no space left" in info["reason"]


@pytest.mark.parametrize(("command", "name"), [("evaluate", "scores.csv"), ("evaluate", "evaluation.json"),
                                               ("predict", "predictions.csv")])
def test_disk_full_while_evaluating_or_predicting(world, monkeypatch, command, name):
    disk_full_at(monkeypatch, name)
    before = snapshot(world["runs"])
    line = one_error_line(invoke(*command_args(command, world, world["completed"])), code=1)
    assert line.startswith("error: no space left on device while writing") and name in line
    assert snapshot(world["runs"]) == before  # no half-written evaluation directory
    assert not stray_temporaries(world["tmp"]) and not (world["tmp"] / "predictions.csv").exists()


def test_a_checkpoint_that_would_not_fit_stops_the_run_before_h5py_writes(world, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**6, 10**6 - 1000, 1000))
    line = one_error_line(invoke("train", world["done_config"], "--runs-dir", world["runs"]), code=1)
    assert "no space left on device for the epoch 1 checkpoint" in line
    assert not stray_temporaries(world["runs"])


@contextlib.contextmanager
def mounted_tmpfs(path: Path, options: str) -> Iterator[None]:
    path.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True,
                           text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_really_full_disk(world):
    runs = world["tmp"] / "small"
    with mounted_tmpfs(runs, "size=256k"):
        (runs / "filler").write_bytes(b"\0" * (256 * 1024 - 8 * 1024))  # leaves a few kB
        with contextlib.suppress(OSError):
            with open(runs / "filler2", "wb") as fh:
                fh.write(b"\0" * 64 * 1024)
        line = one_error_line(invoke("train", world["done_config"], "--runs-dir", runs), code=1)
        assert "no space left on device while writing" in line
        assert not stray_temporaries(runs)


def test_a_read_only_runs_directory_is_named_before_training(world):
    runs = world["tmp"] / "readonly"
    with mounted_tmpfs(runs, "ro,size=64k"):
        line = one_error_line(invoke("train", world["done_config"], "--runs-dir", runs), code=1)
        assert "read-only file system while writing" in line and str(runs) in line
