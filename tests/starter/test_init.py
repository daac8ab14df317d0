"""`dlcli init`: a commented starter config from a look at the data, which trains as written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml

from dlcli.config import DataConfig, load_config
from dlcli.config.jsonschema import config_schema
from dlcli.starter import init_config

FOLDERS_SUPPORTED = "image_size" in DataConfig.model_fields
needs_folders = pytest.mark.skipif(not FOLDERS_SUPPORTED, reason="image folders are not in dlcli.data yet")


@pytest.fixture(autouse=True)
def _in_tmp(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the default output goes to the current directory


def init_ok(cli, *args) -> tuple[Path, str]:
    """Run `dlcli init` and return the config written and its text, checked against the JSON Schema."""
    result = cli("init", *args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    written = Path(result.stdout.splitlines()[-1].removeprefix("train it: dlcli train "))
    text = written.read_text(encoding="utf-8")
    errors = list(jsonschema.Draft202012Validator(config_schema()).iter_errors(yaml.safe_load(text)))
    assert errors == [], errors[0].message
    load_config(written)
    return written, text


def layers(text: str) -> list[dict]:
    return yaml.safe_load(text)["model"]["layers"]


def train_ok(cli, config: Path) -> str:
    result = cli("train", config, "--set", "fit.epochs=1")
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.stdout


def one_line_error(cli, *args) -> str:
    result = cli("init", *args)
    assert result.exit_code == 2, result.output + repr(result.exception)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert result.stdout == ""
    return result.stderr


# ---------------------------------------------------------------------------------------------
# Data


@pytest.fixture
def flowers(tmp_path) -> Path:
    """Iris as a csv: four measurements, a text column dlcli cannot use, and the species as text."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    df = pd.DataFrame(iris.data, columns=["sepal_length", "sepal_width", "petal_length", "petal_width"])
    df["garden"] = np.where(np.arange(150) % 2, "north", "south")
    df["species"] = iris.target_names[iris.target]
    path = tmp_path / "data" / "flowers.csv"
    path.parent.mkdir()
    df.to_csv(path, index=False)
    return path


@pytest.fixture
def churn(tmp_path) -> Path:
    """Two classes, yes / no, in a column named `label` that is not the last one."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    df = pd.DataFrame({"a": x[:, 0], "label": np.where(x[:, 0] + x[:, 1] > 0, "yes", "no"), "b": x[:, 1],
                       "c": x[:, 2]})
    path = tmp_path / "churn.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture
def prices(tmp_path) -> Path:
    rng = np.random.default_rng(1)
    df = pd.DataFrame(rng.normal(size=(120, 3)), columns=["rooms", "age", "distance"])
    df["price"] = 200 + 30 * df["rooms"] - 10 * df["age"] + rng.normal(size=120)
    path = tmp_path / "prices.parquet"
    df.to_parquet(path)
    return path


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """Three classes of small grayscale PNGs (16 wide, 12 high)."""
    from PIL import Image

    rng = np.random.default_rng(2)
    root = tmp_path / "shapes"
    for k, name in enumerate(["circle", "square", "triangle"]):
        (root / name).mkdir(parents=True)
        for i in range(8):
            pixels = np.clip(rng.normal(60 + 70 * k, 20, (12, 16)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(root / name / f"{i}.png")
    return root


# ---------------------------------------------------------------------------------------------
# Starters that train


@pytest.mark.slow
def test_classification_csv_starter_trains(cli, flowers):
    config, text = init_ok(cli, "--task", "classification", "--data", flowers, "--target", "species",
                           "--output", "flowers2.yaml")
    cfg = yaml.safe_load(text)
    assert cfg["data"] == {"source": "data/flowers.csv", "target": "species",
                           "columns": {"sepal_length": "numeric", "sepal_width": "numeric", "petal_length": "numeric",
                                       "petal_width": "numeric", "garden": "binary"},
                           "split": {"train": 0.7, "val": 0.15, "test": 0.15, "stratify": True}, "scale": "standard"}
    assert "garden: binary                              # binary: 2 values, 'south' -> 1" in text
    assert layers(text)[-1] == {"type": "Dense", "units": 3, "activation": "softmax"}
    assert cfg["compile"]["loss"] == "sparse_categorical_crossentropy" and cfg["compile"]["metrics"] == ["accuracy"]
    assert "# 3 classes (samples): setosa (50), versicolor (50), virginica (50)" in text
    assert "accuracy" in train_ok(cli, config)


@pytest.mark.slow
def test_binary_starter_uses_one_sigmoid_output_and_reports_auc(cli, churn):
    result = cli("init", "--task", "classification", "--data", churn)
    assert "note: target: 'label' (its name; --target chooses another)" in result.stdout
    config, text = init_ok(cli, "--task", "classification", "--data", churn, "--force")
    assert layers(text)[-1] == {"type": "Dense", "units": 1, "activation": "sigmoid"}
    assert "probability of class 'yes' (vs 'no')" in text
    assert yaml.safe_load(text)["compile"]["loss"] == "binary_crossentropy"
    assert "auc" in yaml.safe_load(text)["compile"]["metrics"]
    assert "rather than a 2-unit softmax" in text  # the choice is explained in the file
    header = next(line for line in train_ok(cli, config).splitlines() if line.startswith("split "))
    assert header.split() == ["split", "loss", "accuracy", "auc"]  # the metrics table


@pytest.mark.slow
def test_regression_starter_has_a_linear_output_and_trains(cli, prices):
    config, text = init_ok(cli, "--task", "regression", "--data", prices, "--target", "price")
    cfg = yaml.safe_load(text)
    out = layers(text)[-1]
    assert out == {"type": "Dense", "units": 1}  # linear; data.target_scale maps it to the target's units
    assert cfg["data"]["target_scale"] == "standard"
    assert (cfg["compile"]["loss"], cfg["compile"]["metrics"]) == ("mae", ["mae", "mse"])
    assert cfg["data"]["split"]["stratify"] is False and cfg["data"]["scale"] == "standard"
    assert "mae" in train_ok(cli, config)


@pytest.mark.slow
@needs_folders
def test_image_starter_reads_the_folder_and_trains(cli, image_folder):
    config, text = init_ok(cli, "--task", "image", "--data", image_folder)
    assert config == Path("shapes.yaml")
    data = yaml.safe_load(text)["data"]
    assert data["source"] == "shapes/" and data["image_size"] == [12, 16] and data["color_mode"] == "grayscale"
    assert data["scale"] == "rescale"
    types = [layer["type"] for layer in layers(text)]
    assert types[:2] == ["Conv2D", "MaxPooling2D"] and "GlobalAveragePooling2D" in types
    assert layers(text)[-1] == {"type": "Dense", "units": 3, "activation": "softmax"}
    assert "24 images in 3 class folders; circle/0.png is 16x12 L" in text
    assert "accuracy" in train_ok(cli, config)


@needs_folders
def test_large_images_are_resized_down(cli, tmp_path):
    from PIL import Image

    for name in ("a", "b"):
        (tmp_path / "big" / name).mkdir(parents=True)
        Image.new("RGB", (640, 480)).save(tmp_path / "big" / name / "1.jpg")
    _, text = init_ok(cli, "--task", "image", "--data", tmp_path / "big")
    assert yaml.safe_load(text)["data"]["image_size"] == [96, 128]  # [height, width], longer side 128
    assert yaml.safe_load(text)["data"]["color_mode"] == "rgb"
    assert "is 640x480 RGB, resized to 128x96" in text


@pytest.mark.parametrize(("name", "last", "loss"), [
    ("digits", {"type": "Dense", "units": 10, "activation": "softmax"}, "sparse_categorical_crossentropy"),
    ("iris", {"type": "Dense", "units": 3, "activation": "softmax"}, "sparse_categorical_crossentropy"),
    ("wine", {"type": "Dense", "units": 3, "activation": "softmax"}, "sparse_categorical_crossentropy"),
    ("breast_cancer", {"type": "Dense", "units": 1, "activation": "sigmoid"}, "binary_crossentropy"),
    ("diabetes", {"type": "Dense", "units": 1}, "mae"),
])
def test_bundled_datasets(cli, name, last, loss):
    task = "regression" if name == "diabetes" else "classification"
    config, text = init_ok(cli, "--task", task, "--data", name)
    assert config == Path(f"{name}.yaml")
    assert yaml.safe_load(text)["data"]["source"] == name
    assert yaml.safe_load(text)["compile"]["loss"] == loss
    if last is not None:
        assert layers(text)[-1] == last


def test_npz_of_pixel_arrays_is_flattened_and_rescaled(cli, tmp_path):
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "tiles.npz", x=rng.integers(0, 256, (90, 6, 6)).astype(np.uint8), y=np.arange(90) % 3)
    config, text = init_ok(cli, "--task", "classification", "--data", "tiles.npz")
    assert layers(text)[0] == {"type": "Flatten"}
    assert yaml.safe_load(text)["data"]["scale"] == "rescale"
    assert layers(text)[-1]["units"] == 3
    result = cli("validate", config)  # builds the model on the data
    assert result.exit_code == 0, result.output


# ---------------------------------------------------------------------------------------------
# Where it writes, and what it says


def test_default_output_is_the_data_name_here_and_the_command_is_printed(cli, flowers, tmp_path):
    result = cli("init", "--task", "classification", "--data", flowers, "--target", "species")
    assert result.exit_code == 0
    assert (tmp_path / "flowers.yaml").is_file()
    assert result.stdout.splitlines()[-2:] == ["wrote flowers.yaml (classification: 150 samples, 3 classes)",
                                               "train it: dlcli train flowers.yaml"]
    text = (tmp_path / "flowers.yaml").read_text()
    assert text.startswith("# Starter config written by: dlcli init --task classification --data ")
    assert "# Train:         dlcli train flowers.yaml" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "flowers.yaml"]  # no temporary file left


def test_data_path_is_relative_to_the_config(cli, flowers, tmp_path):
    (tmp_path / "experiments").mkdir()
    _, text = init_ok(cli, "--task", "classification", "--data", flowers, "--target", "species", "--output",
                      "experiments/first.yaml")
    assert yaml.safe_load(text)["data"]["source"] == "../data/flowers.csv"
    assert load_config("experiments/first.yaml").data.source == str(flowers.resolve())


def test_editor_modeline_points_at_the_nearest_schema_file(cli, tmp_path):
    (tmp_path / "dlcli.schema.json").write_text("{}")
    (tmp_path / "sub").mkdir()
    _, text = init_ok(cli, "--task", "classification", "--data", "iris", "--output", "sub/iris.yaml")
    assert text.splitlines()[0] == "# yaml-language-server: $schema=../dlcli.schema.json"
    (tmp_path / "dlcli.schema.json").unlink()
    _, text = init_ok(cli, "--task", "classification", "--data", "iris", "--output", "sub/iris.yaml", "--force")
    assert text.startswith("# Starter config")
    assert "# Editor completion: `dlcli schema > dlcli.schema.json`" in text


def test_existing_output_is_refused_unless_forced(cli, tmp_path):
    (tmp_path / "iris.yaml").write_text("mine\n")
    error = one_line_error(cli, "--task", "classification", "--data", "iris")
    assert error == ("error: --output: iris.yaml already exists; use --force to overwrite it or --output to write "
                     "another file\n")
    assert (tmp_path / "iris.yaml").read_text() == "mine\n"
    # A failing run with --force leaves the old file alone too.
    one_line_error(cli, "--task", "regression", "--data", "iris", "--force")
    assert (tmp_path / "iris.yaml").read_text() == "mine\n"
    init_ok(cli, "--task", "classification", "--data", "iris", "--force")
    assert (tmp_path / "iris.yaml").read_text().startswith("# Starter config")


def test_a_failed_write_leaves_no_file(monkeypatch, tmp_path):
    import dlcli.runs.files
    from dlcli.errors import StorageError

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(dlcli.runs.files.os, "fsync", full_disk)
    with pytest.raises(StorageError, match="no space left on device while writing"):
        init_config("classification", "iris")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_init_does_not_import_tensorflow(tmp_path):
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom dlcli.cli import app\n"
            "result = CliRunner().invoke(app, ['init', '--task', 'classification', '--data', 'wine'])\n"
            "assert result.exit_code == 0, result.output\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert done.stdout.split() == ["False", "False"]
    assert (tmp_path / "wine.yaml").is_file()


# ---------------------------------------------------------------------------------------------
# Mistakes: one line, exit 2, nothing written


def test_missing_data(cli, tmp_path):
    error = one_line_error(cli, "--task", "classification", "--data", "nope.csv")
    assert error.startswith(f"error: --data: {tmp_path / 'nope.csv'} does not exist.")
    assert "did you mean 'iris'?" in one_line_error(cli, "--task", "classification", "--data", "irsi")


def test_target_not_found_lists_the_columns(cli, flowers):
    error = one_line_error(cli, "--task", "classification", "--data", flowers, "--target", "specis")
    assert error == (f"error: --target: 'specis' is not a column of {flowers}. did you mean 'species'? (columns: "
                     f"garden, petal_length, petal_width, sepal_length, sepal_width, species)\n")


def test_regression_needs_a_numeric_target(cli, flowers):
    error = one_line_error(cli, "--task", "regression", "--data", flowers, "--target", "species")
    assert error == (f"error: {flowers}: the target column 'species' is not numeric (it holds 'setosa'); --task "
                     f"regression needs numbers: use --task classification\n")


def test_classification_of_fractional_numbers(cli, prices):
    error = one_line_error(cli, "--task", "classification", "--data", prices, "--target", "price")
    assert "holds fractional numbers such as" in error and error.endswith("not classes; use --task regression\n")


@pytest.mark.parametrize(("args", "text"), [
    (["--task", "regression", "--data", "iris"], "--task: 'iris' has classes (setosa, versicolor, virginica); "
                                                 "use --task classification"),
    (["--task", "classification", "--data", "diabetes"], "'diabetes' has a numeric target; use --task regression"),
    (["--task", "classification", "--data", "mnist"], "'mnist' is a Keras dataset, downloaded on first use"),
    (["--task", "classification", "--data", "iris", "--target", "x"], "--target: is for .csv and .parquet files"),
    (["--task", "image", "--data", "iris"], "--task: image needs a folder with one sub-folder of images per class"),
])
def test_task_and_data_must_fit(cli, args, text):
    assert text in one_line_error(cli, *args)
    assert not any(Path().glob("*.yaml"))


def test_files_and_folders_for_the_wrong_task(cli, churn, image_folder, tmp_path):
    assert "is a folder; for a folder of images use --task image" in one_line_error(
        cli, "--task", "classification", "--data", image_folder)
    assert "image needs a folder" in one_line_error(cli, "--task", "image", "--data", churn)
    (tmp_path / "notes.txt").write_text("x")
    assert "'notes.txt' is not a .csv, .parquet or .npz file" in one_line_error(
        cli, "--task", "classification", "--data", "notes.txt")


def test_image_folder_mistakes(cli, tmp_path):
    (tmp_path / "one" / "cat").mkdir(parents=True)
    assert "one class folder" in one_line_error(cli, "--task", "image", "--data", "one")
    (tmp_path / "one" / "dog").mkdir()
    (tmp_path / "one" / "cat" / "a.png").write_bytes(b"not an image")
    assert "the class folder holds no images" in one_line_error(cli, "--task", "image", "--data", "one")
    (tmp_path / "one" / "dog" / "b.png").write_bytes(b"not an image")
    assert "cannot read the image" in one_line_error(cli, "--task", "image", "--data", "one")
    assert not any(tmp_path.glob("*.yaml"))


def test_unknown_task_is_a_usage_error(cli):
    result = cli("init", "--task", "clustering", "--data", "iris")
    assert result.exit_code == 2 and "clustering" in result.output
