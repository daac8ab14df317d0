"""Fault injection on what a user feeds in: resource bombs and values that look valid.

Resource bombs: a data file over the size limit (a sparse file: instant to make), a huge cell or column name,
a symlink loop, a directory, a pipe or an unreadable file as the data are each one `error:` line, exit 2, no
traceback, no line longer than the cap, nothing written. Values that look valid: numbers that are not finite
(anywhere in the config, `--set` included), names with control characters, a CSV header that repeats a name.
Run the whole fault suite alone with: python -m pytest -m faults
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from PIL import Image
from sklearn.datasets import load_iris

from dlcli.errors import MAX_MESSAGE

from tests.conftest import invoke, ok, tiny_config

pytestmark = pytest.mark.faults

CLASSES = ["setosa", "versicolor", "virginica"]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def flowers() -> pd.DataFrame:
    df = load_iris(as_frame=True).frame.sample(frac=1.0, random_state=1)
    df["species"] = [CLASSES[i] for i in df.pop("target")]
    df.columns = [*FEATURES, "species"]
    return df.reset_index(drop=True)


def table_config(source: Path | str, name: str = "flowers") -> dict[str, Any]:
    return tiny_config(name=name, data={"source": str(source), "target": "species", "scale": "standard"},
                       fit={"batch_size": 16, "epochs": 1})


def one_error(result: Any) -> str:
    """The one `error:` line of a failed command (exit 2, no traceback, no line over the cap)."""
    assert result.exit_code == 2, result.output + repr(result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[:2000]
    assert len(lines[0]) <= len("error: ") + MAX_MESSAGE, len(lines[0])
    return lines[0]


def nothing_written(runs_dir: Path) -> bool:
    return not runs_dir.exists() or not any(p.is_dir() for p in runs_dir.iterdir())


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One run trained (1 epoch) on a CSV table with named columns: (runs dir, run dir)."""
    tmp = tmp_path_factory.mktemp("trained")
    flowers().to_csv(tmp / "flowers.csv", index=False)
    config = tmp / "flowers.yaml"
    config.write_text(yaml.safe_dump(table_config(tmp / "flowers.csv"), sort_keys=False))
    runs = tmp / "runs"
    ok("train", config, "--runs-dir", runs)
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    return runs, run


def evaluations(run: Path) -> list[Path]:
    return sorted((run / "evaluations").glob("*")) if (run / "evaluations").is_dir() else []


def feed(command: str, source: Path, trained: tuple[Path, Path], tmp_path: Path, write_config: Any) -> Any:
    """Give ``source`` as the data of ``command`` (train, init, evaluate --data, predict --input)."""
    runs, run = trained
    if command == "train":
        return invoke("train", write_config(table_config(source)))
    if command == "init":
        return invoke("init", "--task", "classification", "--data", source, "--output", tmp_path / "out.yaml")
    if command == "evaluate":
        return invoke("evaluate", run, "--data", source)
    return invoke("predict", run, "--input", source, "--output", tmp_path / "predictions.csv")


COMMANDS = ["train", "init", "evaluate", "predict"]


def assert_nothing_written(command: str, trained: tuple[Path, Path], tmp_path: Path, runs_dir: Path,
                           before: list[Path]) -> None:
    assert nothing_written(runs_dir)
    assert not (tmp_path / "out.yaml").exists() and not (tmp_path / "predictions.csv").exists()
    assert evaluations(trained[1]) == before


# ---------------------------------------------------------------------------------------------
# Class 7: resource bombs


@pytest.mark.parametrize("command", COMMANDS)
def test_a_file_over_the_size_limit_is_refused_before_reading(command, trained, tmp_path, write_config, runs_dir,
                                                              monkeypatch):
    monkeypatch.setenv("DLCLI_MAX_DATA_MB", "1")
    data = tmp_path / "huge.csv"
    with open(data, "wb") as fh:  # sparse: 64 MB on paper, nothing on disk
        fh.truncate(64 * 2**20)
    before = evaluations(trained[1])
    message = one_error(feed(command, data, trained, tmp_path, write_config))
    assert str(data) in message and "64.0 MB" in message and "over the 1 MB limit" in message
    assert "DLCLI_MAX_DATA_MB" in message and "raise the limit" in message
    assert_nothing_written(command, trained, tmp_path, runs_dir, before)


def test_the_limit_must_be_a_positive_number(tmp_path, write_config, monkeypatch):
    flowers().to_csv(tmp_path / "flowers.csv", index=False)
    monkeypatch.setenv("DLCLI_MAX_DATA_MB", "lots")
    message = one_error(invoke("validate", write_config(table_config(tmp_path / "flowers.csv"))))
    assert message.startswith("error: DLCLI_MAX_DATA_MB: 'lots' is not a size in MB")
    monkeypatch.setenv("DLCLI_MAX_DATA_MB", "4096")  # a raised limit reads the file
    assert invoke("validate", write_config(table_config(tmp_path / "flowers.csv"))).exit_code == 0


def huge_cell_table(tmp_path: Path, where: str) -> Path:
    """The flowers table with a 100 kB value in a numeric column, the target or a column name."""
    df = flowers()
    big = "x" * 100_000
    if where == "cell":
        df["sepal_width"] = df["sepal_width"].astype(object)
        df.loc[3, "sepal_width"] = big
    elif where == "target":
        df.loc[3, "species"] = big
    else:
        df = df.rename(columns={"petal_width": big})
    df.to_csv(tmp_path / f"{where}.csv", index=False)
    return tmp_path / f"{where}.csv"


@pytest.mark.parametrize(("command", "where", "expected"), [
    ("validate", "cell", "column 'sepal_width' is numeric, but data row 4 holds 'xxx"),
    ("evaluate", "cell", "sepal_width"),
    ("evaluate", "target", "classes ['xxx"),
    ("validate", "header", "'nope' is not a column of"),
])
def test_a_huge_value_is_quoted_shortened(command, where, expected, trained, tmp_path, write_config):
    data = huge_cell_table(tmp_path, where)
    if command == "validate":
        cfg = table_config(data)
        cfg["data"]["columns"] = {"sepal_width": "numeric"} if where == "cell" else {}
        cfg["data"]["target"] = "species" if where == "cell" else "nope"
        result = invoke("validate", write_config(cfg))
    else:
        result = feed(command, data, trained, tmp_path, write_config)
    message = one_error(result)
    assert expected in message and "…" in message and len(message) < 1000


def test_notes_quote_a_huge_column_name_shortened(trained, tmp_path):
    df = flowers().assign(**{"n" * 100_000: 1.0})
    df.to_csv(tmp_path / "extra.csv", index=False)
    result = invoke("predict", trained[1], "--input", tmp_path / "extra.csv", "--output", tmp_path / "p.csv")
    assert result.exit_code == 0, result.output
    note = next(line for line in result.stderr.splitlines() if "ignored 1 column(s)" in line)
    assert "…" in note and len(note) < 300


def test_every_printed_error_line_is_capped(write_config):
    # A 20 kB path is printed whole by no one: the CLI cuts any message to MAX_MESSAGE, head and tail.
    source = "d" * 20_000 + ".csv"
    message = one_error(invoke("validate", write_config(table_config(source))))
    assert "…" in message and len(message) == len("error: ") + MAX_MESSAGE


def unreadable(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.csv"
    if kind == "loop":
        path.symlink_to(path.name)
    elif kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dangling":
        path.symlink_to("nowhere.csv")
    return path


UNREADABLE = [("loop", "is a symbolic link loop"), ("directory", "is a directory"),
              ("fifo", "is a named pipe (FIFO)"), ("dangling", "file not found")]


@pytest.mark.parametrize(("kind", "expected"), UNREADABLE)
@pytest.mark.parametrize("command", ["train", "validate", "init"])
def test_an_unreadable_data_path_is_one_error(command, kind, expected, tmp_path, write_config, runs_dir):
    path = unreadable(tmp_path, kind)
    if command == "init":
        result = invoke("init", "--task", "classification", "--data", path, "--output", tmp_path / "out.yaml")
        if kind == "directory":
            expected = "is a folder; for a folder of images use --task image"
    else:
        result = invoke(command, write_config(table_config(path)))
    message = one_error(result)
    # A config's data.source is resolved when it is loaded: a dangling link is named by its target.
    assert (path.name if kind != "dangling" or command == "init" else "nowhere.csv") in message
    assert expected in message
    assert nothing_written(runs_dir) and not (tmp_path / "out.yaml").exists()


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_pipe_as_input_is_one_error(command, trained, tmp_path, write_config):
    path = unreadable(tmp_path, "fifo")
    message = one_error(feed(command, path, trained, tmp_path, write_config))
    assert str(path) in message and "is a named pipe (FIFO)" in message and "regular files" in message


@pytest.mark.parametrize("command", ["evaluate", "predict"])
@pytest.mark.parametrize("kind", ["loop", "directory"])
def test_typer_refuses_a_loop_or_directory_as_input(command, kind, trained, tmp_path, write_config):
    # --data / --input are checked by Typer (exists=True, dir_okay=False): a usage error, exit 2.
    result = feed(command, unreadable(tmp_path, kind), trained, tmp_path, write_config)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "does not exist" in result.output or "is a directory" in result.output


@pytest.mark.skipif(os.name != "posix", reason="needs POSIX permissions")
def test_a_file_without_read_permission(tmp_path, write_config, runs_dir, monkeypatch):
    data = tmp_path / "secret.csv"
    flowers().to_csv(data, index=False)
    data.chmod(0)
    if ROOT:  # root reads anything: make the permission check see what another user would
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == data else real(p, mode, **kw))
    try:
        message = one_error(invoke("train", write_config(table_config(data))))
    finally:
        data.chmod(0o644)
    assert str(data) in message and "permission denied" in message and "chmod u+r" in message
    assert nothing_written(runs_dir)


def test_a_pipe_in_an_image_folder_is_one_error(tmp_path, write_config, runs_dir):
    root = tmp_path / "images"
    for name, colour in (("red", (220, 40, 40)), ("blue", (30, 60, 220))):
        (root / name).mkdir(parents=True)
        for i in range(5):
            Image.new("RGB", (8, 8), colour).save(root / name / f"{i}.png")
    os.mkfifo(root / "red" / "5.png")
    cfg = tiny_config(data={"source": str(root), "image_size": [8, 8], "scale": "rescale",
                            "split": {"train": 0.6, "val": 0.2, "test": 0.2}},
                      model={"layers": [{"type": "Flatten"}, {"type": "Dense", "units": 2, "activation": "softmax"}]})
    message = one_error(invoke("train", write_config(cfg)))
    assert "5.png is a named pipe (FIFO)" in message and nothing_written(runs_dir)


# ---------------------------------------------------------------------------------------------
# Class 8: values that look valid


def with_raw(cfg: dict[str, Any], spelled: str) -> str:
    """The YAML of ``cfg`` with the placeholder value VALUE spelled as raw YAML (e.g. .inf, 1e400)."""
    return yaml.safe_dump(cfg, sort_keys=False).replace("VALUE", spelled)


def non_finite_config(place: str) -> dict[str, Any]:
    cfg = tiny_config()
    if place == "number":
        cfg["compile"]["optimizer"] = {"type": "adam", "learning_rate": "VALUE"}
    elif place == "schedule":
        cfg["compile"]["optimizer"] = {"type": "adam", "learning_rate": {
            "type": "exponential", "initial_learning_rate": "VALUE", "decay_steps": 10, "decay_rate": 0.9}}
    elif place == "layer":
        cfg["model"]["layers"].insert(1, {"type": "Dropout", "rate": "VALUE"})
    elif place == "space":
        cfg["tune"] = {"max_trials": 2, "space": {"model.layers.0.units": {"min": 4, "max": "VALUE"}}}
    elif place == "choices":
        cfg["tune"] = {"max_trials": 2, "space": {"compile.optimizer.learning_rate": [0.01, "VALUE"]}}
    return cfg


PLACES = {"number": "compile.optimizer.learning_rate:",
          "schedule": "compile.optimizer.learning_rate.initial_learning_rate:",
          "layer": "model.layers[1].rate:",
          "space": "tune.space['model.layers.0.units'].max:",
          "choices": "tune.space['compile.optimizer.learning_rate'][1]:"}


# Every spelling with validate; train shares its loading, so two spellings are enough there.
NON_FINITE = [("validate", place, spelled) for place in PLACES for spelled in (".inf", "-.inf", ".nan", "1e400",
                                                                                "1.0e+400")]
NON_FINITE += [("train", place, spelled) for place in PLACES for spelled in (".inf", "1e400")]


@pytest.mark.parametrize(("command", "place", "spelled"), NON_FINITE)
def test_numbers_that_are_not_finite_are_refused(command, place, spelled, write_config, runs_dir):
    result = invoke(command, write_config(with_raw(non_finite_config(place), spelled)))
    message = one_error(result)
    shown = {"1.0e+400": ".inf"}.get(spelled, spelled)  # PyYAML reads 1.0e+400 as a float: inf
    assert f"{PLACES[place]} {shown} is not a finite number" in message
    assert "give a finite value" in message and nothing_written(runs_dir)


@pytest.mark.parametrize(("override", "where", "shown"), [
    ("compile.optimizer.learning_rate=1e400", "compile.optimizer.learning_rate:", "1e400"),
    ("fit.epochs=.inf", "fit.epochs:", ".inf"),
    ("data.split.val=.nan", "data.split.val:", ".nan"),
    ("model.layers.0.units=-.inf", "model.layers[0].units:", "-.inf"),
])
@pytest.mark.parametrize("command", ["validate", "train"])
def test_a_set_override_that_is_not_finite_is_refused(command, override, where, shown, write_config, runs_dir):
    message = one_error(invoke(command, write_config(tiny_config()), "--set", override))
    assert f"{where} {shown} is not a finite number" in message and nothing_written(runs_dir)


def test_a_name_that_looks_like_a_huge_number_is_still_a_name(write_config):
    assert invoke("validate", write_config(tiny_config(name="1e400"))).exit_code == 0


NAME_RULE = "a name may hold letters of any script, digits, spaces and punctuation, but no control characters"


@pytest.mark.parametrize(("name", "code"), [("a\nb", "U+000A"), ("a\tb", "U+0009"), ("a\x00b", "U+0000"),
                                            ("a\x7fb", "U+007F"), ("a\u2028b", "U+2028")])
@pytest.mark.parametrize("how", ["yaml", "option"])
def test_control_characters_in_a_name_are_refused(how, name, code, write_config, runs_dir):
    if how == "yaml":
        result = invoke("train", write_config(tiny_config(name=name)))
    else:
        result = invoke("train", write_config(tiny_config()), "--name", name)
    message = one_error(result)
    assert message.startswith("error: name: ") and f"holds the control character {code}" in message
    assert NAME_RULE in message and nothing_written(runs_dir)


def test_init_refuses_an_output_name_with_a_control_character(tmp_path):
    output = tmp_path / "a\nb.yaml"
    message = one_error(invoke("init", "--task", "classification", "--data", "iris", "--output", output))
    assert message.startswith("error: --output: ") and "holds the control character U+000A" in message
    assert NAME_RULE in message and not output.exists()


@pytest.mark.slow
def test_non_ascii_names_work_end_to_end(write_config, runs_dir):
    ok("train", write_config(tiny_config(name="模型", fit={"epochs": 1})))
    ok("train", write_config(tiny_config(fit={"epochs": 1})), "--name", "café au lait")
    names = sorted(p.name.split("-", 2)[2] for p in runs_dir.iterdir() if p.is_dir())
    assert names == ["café_au_lait", "模型"]
    # A refused name leaves the index alone: `runs list` stays one line per run.
    one_error(invoke("train", write_config(tiny_config()), "--name", "x\ny"))
    listed = ok("runs", "list").stdout.strip().splitlines()
    assert len(listed) == 2 + 2, listed
    assert any(" 模型 " in line for line in listed) and any(" café au lait " in line for line in listed)
    run_id = next(p.name for p in runs_dir.iterdir() if p.name.endswith("模型"))
    assert "name: 模型" in ok("runs", "show", run_id).stdout


def duplicated(tmp_path: Path) -> Path:
    text = flowers().to_csv(index=False).replace("sepal_width,petal_length", "sepal_width,sepal_width", 1)
    (tmp_path / "dup.csv").write_text(text)
    return tmp_path / "dup.csv"


@pytest.mark.parametrize("command", COMMANDS)
def test_repeated_column_names_are_an_error(command, trained, tmp_path, write_config, runs_dir):
    before = evaluations(trained[1])
    data = duplicated(tmp_path)
    message = one_error(feed(command, data, trained, tmp_path, write_config))
    assert str(data) in message or (command == "init" and "dup.csv" in message)
    assert "the header repeats the column name 'sepal_width' (columns 2, 3)" in message
    assert "rename or drop the copies" in message
    assert_nothing_written(command, trained, tmp_path, runs_dir, before)


def test_a_real_column_named_like_a_pandas_copy_is_fine(tmp_path, write_config):
    df = flowers().rename(columns={"petal_width": "sepal_width.1"})
    df.to_csv(tmp_path / "d.csv", index=False)
    assert invoke("validate", write_config(table_config(tmp_path / "d.csv"))).exit_code == 0
