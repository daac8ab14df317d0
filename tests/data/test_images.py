"""Image folders (`data.source: <folder>` with one sub-folder per class), on tiny generated PNG / JPEG images."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from dlcli.config import load_config
from dlcli.data import prepare

from tests.conftest import tiny_config

pytestmark = pytest.mark.slow  # end-to-end runs: not in the quick loop (python -m pytest -m "not slow")

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "images_cnn.yaml"
COLOURS = {"blue": (30, 60, 220), "green": (40, 200, 60), "red": (220, 40, 40)}


def make_folder(root: Path, classes: dict[str, tuple[int, int, int]] = COLOURS, per_class: int = 24,
                size: int = 16, jpeg: bool = True) -> Path:
    """One sub-folder per class of noisy single-colour images; every fourth one a JPEG, one in a sub-folder."""
    rng = np.random.default_rng(0)
    for name, rgb in classes.items():
        (root / name / "more").mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(np.array(rgb) + rng.normal(0, 35, (size, size, 3)), 0, 255).astype(np.uint8)
            where = root / name / ("more" if i == 0 else "") / f"{i:03d}.{'jpg' if jpeg and i % 4 == 3 else 'png'}"
            Image.fromarray(pixels).save(where)
    return root


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "images")


def image_config(tmp_path: Path, source: Path | str, name: str = "imgs", **data) -> Path:
    """A small CNN config for 16x16 images, written next to ``source``."""
    cfg = {
        "name": name, "seed": 3,
        "data": {"source": str(source), "image_size": [16, 16], "scale": "rescale", **data},
        "model": {"layers": [{"type": "Conv2D", "filters": 8, "kernel_size": 3, "activation": "relu"},
                             {"type": "GlobalAveragePooling2D"},
                             {"type": "Dense", "units": 3, "activation": "softmax"}]},
        "compile": {"optimizer": {"type": "adam", "learning_rate": 0.01}, "loss": "sparse_categorical_crossentropy",
                    "metrics": ["accuracy"]},
        "fit": {"batch_size": 8, "epochs": 1},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def only_run(runs_dir: Path) -> Path:
    (run,) = [p for p in runs_dir.iterdir() if p.is_dir()]
    return run


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output + repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# ---------------------------------------------------------------------------------------------
# End to end: the shipped example, train then evaluate


def test_example_config_trains_on_a_folder_and_evaluate_rebuilds_the_test_split(cli, folder, tmp_path, runs_dir):
    config = tmp_path / "images_cnn.yaml"
    shutil.copy(EXAMPLE, config)
    result = cli("train", config, "--set", "data.source=images", "--set", "data.image_size=[16, 16]",
                 "--set", "fit.epochs=3")
    assert result.exit_code == 0, result.output + repr(result.exception)
    run = only_run(runs_dir)

    metrics = read_csv(run / "metrics.csv")
    assert [r["split"] for r in metrics] == ["train", "val", "test", "baseline"]
    assert float(metrics[2]["accuracy"]) >= 0.7  # three colours: far above chance (0.33) after 3 epochs

    info = json.loads((run / "run.json").read_text())
    data = info["data"]
    assert data["classes"] == ["blue", "green", "red"]  # the folder names, sorted
    assert (data["train"], data["val"], data["test"]) == (51, 10, 11)  # 72 images; Keras holds out int(0.3 * 72)
    assert data["input_shape"] == [16, 16, 3] and data["fingerprint"].startswith("sha256:")
    assert data["source"] == str(folder)
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["image_size"] == [16, 16]
    assert (run / "model.keras").is_file()
    assert "Using" not in result.stdout  # Keras's own "Using 51 files for training." stays hidden

    result = cli("evaluate", run, "--format", "json")
    assert result.exit_code == 0, result.output + repr(result.exception)
    (evaluation,) = (run / "evaluations").iterdir()
    row = read_csv(evaluation / "metrics.csv")[0]
    assert row["split"] == "test"
    assert float(row["accuracy"]) == pytest.approx(float(metrics[2]["accuracy"]))
    assert float(row["loss"]) == pytest.approx(float(metrics[2]["loss"]), rel=1e-5)
    assert json.loads((evaluation / "evaluation.json").read_text())["samples"] == 11
    assert [r["true\\predicted"] for r in read_csv(evaluation / "confusion_matrix.csv")] == ["blue", "green", "red"]

    # predict reads raw pixels from an .npz (it does not read image files).
    files = [folder / name / f"{i:03d}.png" for name in COLOURS for i in (1, 2)]
    np.savez(tmp_path / "x.npz", x=np.stack([np.asarray(Image.open(f)) for f in files]))
    result = cli("predict", run, "--input", tmp_path / "x.npz", "--output", tmp_path / "p.csv")
    assert result.exit_code == 0, result.output + repr(result.exception)
    predicted = [r["prediction"] for r in read_csv(tmp_path / "p.csv")]
    assert sum(p == f.parent.name for p, f in zip(predicted, files)) >= 5


# ---------------------------------------------------------------------------------------------
# The split, the fingerprint, scaling and shapes (library level: no training)


def test_split_is_the_same_every_time_and_changes_with_the_seed(folder, tmp_path):
    config = image_config(tmp_path, folder)
    first, again = prepare(load_config(config)), prepare(load_config(config))
    assert first.files == again.files and first.fingerprint == again.fingerprint
    assert [len(first.files[s]) for s in ("train", "val", "test")] == [51, 10, 11]
    every = first.files["train"] + first.files["val"] + first.files["test"]
    assert len(set(every)) == 72 and "blue/more/000.png" in every
    # The labels given alongside follow the files: class = the first folder of the path.
    names = first.prep.class_names
    for split in ("val", "test"):
        assert [names[i] for i in getattr(first, f"y_{split}")] == [f.split("/")[0] for f in first.files[split]]
        labels = np.concatenate([y for _, y in getattr(first, f"x_{split}").batch(64)])
        np.testing.assert_array_equal(labels, getattr(first, f"y_{split}"))
    other = prepare(load_config(config, ["seed=4"]))
    assert other.files["test"] != first.files["test"] and other.fingerprint == first.fingerprint

    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(folder / "red" / "005.png")
    assert prepare(load_config(config)).fingerprint != first.fingerprint


@pytest.mark.parametrize("loss, label_shape, dtype", [("sparse_categorical_crossentropy", (2,), "int32"),
                                                      ("categorical_crossentropy", (2, 3), "float32")])
def test_labels_are_encoded_for_the_loss(folder, tmp_path, loss, label_shape, dtype):
    cfg = load_config(image_config(tmp_path, folder), [f"compile.loss={loss}"])
    data = prepare(cfg)
    x, y = data.head(2)
    assert y.shape == label_shape and y.dtype == dtype and data.y_train.dtype == dtype


def test_binary_loss_needs_two_classes(tmp_path, cli):
    two = make_folder(tmp_path / "two", {k: COLOURS[k] for k in ("blue", "red")}, per_class=10)
    data = prepare(load_config(image_config(tmp_path, two), ["compile.loss=binary_crossentropy"]))
    assert data.head(2)[1].shape == (2, 1) and data.prep.encoding == "binary"
    three = make_folder(tmp_path / "three", per_class=4)
    msg = one_line_error(cli("validate", image_config(tmp_path, three), "--set", "compile.loss=binary_crossentropy"))
    assert "compile.loss" in msg and "exactly 2 classes" in msg


def test_rescale_or_a_rescaling_layer(folder, tmp_path, cli, runs_dir):
    rescaled = prepare(load_config(image_config(tmp_path, folder)))
    raw = prepare(load_config(image_config(tmp_path, folder, scale="none")))
    x_scaled, x_raw = rescaled.head(4)[0], raw.head(4)[0]
    assert 0.0 <= x_scaled.min() and x_scaled.max() <= 1.0 and x_raw.max() > 100
    np.testing.assert_allclose(x_scaled * 255.0, x_raw, rtol=1e-5, atol=1e-3)  # same images, same order
    assert rescaled.prep.factor == pytest.approx(1 / 255) and raw.prep.factor is None

    # data.scale: none with a Rescaling layer in the model works as well.
    config = image_config(tmp_path, folder, scale="none")
    cfg = yaml.safe_load(config.read_text())
    cfg["model"]["layers"].insert(0, {"type": "Rescaling", "scale": 1 / 255})
    config.write_text(yaml.safe_dump(cfg))
    result = cli("train", config)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert len(read_csv(only_run(runs_dir) / "metrics.csv")) == 4  # train, val, test and the baseline


def test_image_size_and_color_mode_shape_the_input(folder, tmp_path):
    data = prepare(load_config(image_config(tmp_path, folder, image_size=[12, 10], color_mode="grayscale")))
    assert data.prep.input_shape == [12, 10, 1] and data.head(3)[0].shape == (3, 12, 10, 1)
    pngs = make_folder(tmp_path / "pngs", jpeg=False, per_class=4)
    rgba = prepare(load_config(image_config(tmp_path, pngs, color_mode="rgba", reshape=[16, 64])))
    assert rgba.prep.sample_shape == [16, 16, 4] and rgba.head(1)[0].shape == (1, 16, 64)


# ---------------------------------------------------------------------------------------------
# Augmentation layers: ordinary Keras layers, active only in training


def test_augmentation_layers_change_images_only_in_training(folder, tmp_path):
    from dlcli.model import build_model

    augment = [{"type": "RandomFlip", "mode": "horizontal", "seed": 1}, {"type": "RandomRotation", "factor": 0.2},
               {"type": "RandomZoom", "height_factor": 0.3}, {"type": "RandomContrast", "factor": 0.5}]
    config = image_config(tmp_path, folder)
    cfg = yaml.safe_load(config.read_text())
    cfg["model"]["layers"][:0] = augment
    config.write_text(yaml.safe_dump(cfg))
    cfg = load_config(config)
    data = prepare(cfg)
    model = build_model(cfg, data.prep)
    x, _ = data.head(8)
    assert [type(layer).__name__ for layer in model.layers[:4]] == [a["type"] for a in augment]
    # Inference (predict, evaluate): the augmentation layers pass images through, so outputs repeat exactly.
    first, second = model.predict(x, verbose=0), model.predict(x, verbose=0)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(np.asarray(model(x, training=False)), first, rtol=1e-5, atol=1e-6)
    for layer in model.layers[:4]:
        np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
        assert not np.allclose(np.asarray(layer(x, training=True)), x), type(layer).__name__
    assert not np.allclose(np.asarray(model(x, training=True)), first)


# ---------------------------------------------------------------------------------------------
# Mistakes: one line, exit 2, nothing written


def test_missing_folder(tmp_path, cli, runs_dir):
    msg = one_line_error(cli("train", image_config(tmp_path, "nowhere/")))
    assert "data.source" in msg and "image folder" in msg and str(tmp_path / "nowhere") in msg
    assert not runs_dir.exists()


@pytest.mark.parametrize("layout, expected", [
    ("loose", "has no class sub-folders; its 2 image(s) must move into one sub-folder per class"),
    ("one class", "has one class sub-folder ('cat')"),
    ("empty class", "the class folder {root}/dog holds no images"),
    ("unreadable", "{root}/dog/b.png is not a readable image"),
    ("only text", "the class folder {root}/cat holds no images"),
])
def test_bad_folder_layouts(tmp_path, cli, runs_dir, layout, expected):
    root = tmp_path / "pics"
    pixels = Image.fromarray(np.full((8, 8, 3), 100, np.uint8))
    if layout == "loose":
        root.mkdir()
        pixels.save(root / "a.png")
        pixels.save(root / "b.png")
    else:
        for name in ("cat", "dog") if layout != "one class" else ("cat",):
            (root / name).mkdir(parents=True)
            if layout != "only text" or name == "dog":
                for i in range(6):
                    pixels.save(root / name / f"{i}.png")
        if layout == "empty class":
            for image in (root / "dog").iterdir():
                image.unlink()
            (root / "dog" / "notes.txt").write_text("not an image")
        if layout == "unreadable":
            (root / "dog" / "b.png").write_bytes(b"\x89PNG but not really")
        if layout == "only text":
            (root / "cat" / "a.txt").write_text("x")
    msg = one_line_error(cli("train", image_config(tmp_path, root)))
    assert msg.startswith("error: data.source: ") and expected.format(root=root) in msg, msg
    assert not runs_dir.exists()


def test_too_few_images_for_the_split(tmp_path, cli):
    root = make_folder(tmp_path / "few", per_class=1)
    msg = one_line_error(cli("validate", image_config(tmp_path, root)))
    assert "data.split: 3 images are too few" in msg


@pytest.mark.parametrize("setting, expected", [
    ("data.scale=standard", "data.scale: 'standard' is fitted per feature on arrays"),
    ("data.target=label", "data.target: an image folder's labels are its sub-folder names"),
    ("compile.loss=mse", "compile.loss: 'mse' is a regression loss"),
    ("model.layers.2.units=2", "model.layers[2].units: the model outputs 2 value(s) per sample, but the data has 3 "
                               "classes (blue, green, red)"),
    ("data.image_size=[16]", "data.image_size: list should have at least 2 items"),
    ("data.color_mode=cmyk", "data.color_mode: 'cmyk' is not allowed."),
    ("data.color_mode=rgba", "data.color_mode: 'rgba' cannot be decoded from JPEG images such as"),
])
def test_settings_that_do_not_fit_a_folder(folder, tmp_path, cli, setting, expected):
    msg = one_line_error(cli("validate", image_config(tmp_path, folder), "--set", setting))
    assert expected in msg, msg


def test_image_settings_on_other_sources(write_config, cli):
    msg = one_line_error(cli("validate", write_config(tiny_config()), "--set", "data.image_size=[32, 32]"))
    assert "data.image_size: [32, 32] applies only to an image folder, but data.source 'iris' is a bundled" in msg
    # The defaults, which every run's resolved config.yaml lists, are fine anywhere.
    result = cli("validate", write_config(tiny_config()), "--set", "data.color_mode=rgb")
    assert result.exit_code == 0, result.output
