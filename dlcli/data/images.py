"""Image folders: ``data.source`` is a directory with one sub-folder of images per class.

Keras's ``keras.utils.image_dataset_from_directory`` lists, decodes and resizes the images, and splits
them with its own seeded mechanism: the file list is shuffled with the config's ``seed`` (NumPy's
``RandomState``, stable across versions) and its last ``val + test`` fraction is held out; the held-out
files, in that fixed order, give the validation split first and the test split after it. So the same
folder, seed and fractions give the same split in every run and in ``dlcli evaluate``, and the folder's
fingerprint (a hash of every image's path and bytes) tells when the files changed. The split is not
stratified. Training images are reshuffled each epoch by the loader (a seeded buffer of 1024 files),
so ``fit.shuffle`` does not apply.

The splits stay ``tf.data`` pipelines, decoded as they are read (nothing is held in memory);
``dataset.keras_inputs`` batches and prefetches them. The folder is checked in plain Python, before
TensorFlow is imported: a missing folder, no or one class sub-folder, an empty class folder or an
unreadable image is one message naming ``data.source``.

``prepare.py`` imports this module, so it imports only the lower data modules (``checks``, ``dataset``,
``labels``, ``scaling``), never the ``dlcli.data`` package; TensorFlow (and PIL) only inside the functions that
load a folder, so importing it is cheap (``dlcli init`` reads ``IMAGE_SUFFIXES`` from here).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlcli import runtime
from dlcli.config import DataConfig, ExperimentConfig, SplitConfig
from dlcli.data.checks import check_data_file
from dlcli.data.dataset import Dataset, Preprocessing
from dlcli.data.labels import check_two_classes, encode_indices, label_encoding
from dlcli.data.scaling import PIXEL_MAX, input_shape_for
from dlcli.errors import ConfigError, DataError, first_line

# What keras.utils.image_dataset_from_directory reads (suffixes matched case-insensitively, as Keras does).
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
# The colour modes TensorFlow's decoder (under Keras's loader) gives for each format, found by trying it.
COLOR_MODES = {"PNG": ("grayscale", "rgb", "rgba"), "JPEG": ("grayscale", "rgb"), "GIF": ("rgb",),
               "BMP": ("rgb", "rgba")}
CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
LABEL_MODES = {"sparse": "int", "one_hot": "categorical", "binary": "binary"}


@dataclass
class FolderDataset(Dataset):
    """An image folder's splits.

    Each ``x_*`` is an unbatched ``tf.data.Dataset`` of (image, label) pairs, already scaled (and
    reshaped) for the model; ``len()`` gives its number of images. Each ``y_*`` holds the same labels
    as an array, for counting and scoring: in the split's order for val and test, in file order (before
    the per-epoch shuffle) for train. ``files`` lists each split's images, relative to the folder.
    """

    files: dict[str, list[str]] = field(default_factory=dict)

    def head(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = next(iter(self.x_train.take(n).batch(n)))
        return np.asarray(x), np.asarray(y)


@dataclass
class FolderIndex:
    """The images of a folder, as Keras will find them."""

    root: Path
    class_names: list[str]
    files: list[str]  # relative paths, class folder first, sorted as Keras walks them


# ---------------------------------------------------------------------------------------------
# Checks that need no TensorFlow


def check_image_settings_unused(dcfg: DataConfig) -> None:
    """``image_size`` / ``color_mode`` changed on a source that is not an image folder are an error: they
    would silently do nothing. Their defaults pass, since every run's resolved config.yaml lists them."""
    if dcfg.kind == "file" and not os.path.exists(dcfg.source):  # False too for a path the OS refuses (too long)
        return  # a mistyped folder: sources.load_raw says that it does not exist
    for name in ("image_size", "color_mode"):
        value, default = getattr(dcfg, name), DataConfig.model_fields[name].default
        if value != default:
            what = {"bundled": "a bundled dataset", "keras": "a Keras dataset"}.get(dcfg.kind, "a file")
            raise ConfigError(f"data.{name}", f"{value!r} applies only to an image folder, but data.source "
                              f"{dcfg.source!r} is {what}; remove data.{name}")


def _check_settings(cfg: ExperimentConfig) -> None:
    dcfg = cfg.data
    for name in ("target", "features"):
        if getattr(dcfg, name) is not None:
            raise ConfigError(f"data.{name}", f"an image folder's labels are its sub-folder names and its samples "
                              f"are whole images; remove data.{name}")
    if dcfg.scale not in ("none", "rescale"):
        raise ConfigError("data.scale", f"{dcfg.scale!r} is fitted per feature on arrays and is not available for "
                          f"an image folder; use rescale (x / 255), or none with a Rescaling or Normalization layer "
                          f"first in model.layers")
    if label_encoding(cfg.compile.loss) == "none":
        raise ConfigError("compile.loss", f"{cfg.compile.loss!r} is a regression loss, but an image folder's labels "
                          f"are classes (its sub-folders); use sparse_categorical_crossentropy, "
                          f"categorical_crossentropy or (two classes) binary_crossentropy")


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def _has_image(folder: Path) -> bool:
    # Stops at the first image: a wrong folder (say, a home directory) fails fast.
    return any(_is_image_name(n) for _, _, files in os.walk(folder) for n in files)


def _images_in(folder: Path) -> list[Path]:
    """Image files under ``folder`` in the order Keras lists them (directories sorted, then file names)."""
    return [Path(root, name) for root, _, files in sorted(os.walk(folder), key=lambda w: w[0])
            for name in sorted(files) if _is_image_name(name)]


def index_folder(root: Path) -> FolderIndex:
    """List an image folder's classes and images, with Keras's rules: each non-hidden sub-folder is a
    class, and its images (at any depth, symlinked folders not followed) are that class's samples.

    Raises:
        DataError: no class sub-folders, only one, or a class folder without images.
    """
    try:
        entries = list(os.scandir(root))
    except OSError as exc:
        raise DataError(f"data.source: cannot list the image folder {root}: {exc.strerror}") from None
    classes = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    example = f"e.g. {root / 'cat' / '1.png'} and {root / 'dog' / '1.png'}"
    if not classes:
        loose = sum(1 for e in entries if e.is_file() and _is_image_name(e.name))
        held = f"; its {loose} image(s) must move into" if loose else "; put the images in"
        raise DataError(f"data.source: {root} has no class sub-folders{held} one sub-folder per class ({example})")
    if len(classes) < 2:
        raise DataError(f"data.source: {root} has one class sub-folder ({classes[0]!r}); classification needs at "
                        f"least two, one sub-folder per class ({example})")
    for name in classes:
        if not _has_image(root / name):
            raise DataError(f"data.source: the class folder {root / name} holds no images "
                            f"({', '.join(IMAGE_SUFFIXES)}); add some or remove the folder")
    files = [p.relative_to(root).as_posix() for name in classes for p in _images_in(root / name)]
    return FolderIndex(root=root, class_names=classes, files=files)


def check_images(index: FolderIndex, color_mode: str) -> str:
    """Check that every image can be decoded in ``color_mode``; return a short SHA-256 over every image's
    relative path and bytes (the folder's fingerprint).

    Raises:
        DataError: naming the first file that cannot be read or is not a BMP, GIF, JPEG or PNG image.
        ConfigError: ``color_mode`` is one TensorFlow cannot decode an image's format into.
    """
    from PIL import Image  # lazy: start-up speed

    digest = hashlib.sha256()
    for rel in sorted(index.files):
        path = index.root / rel
        check_data_file(path, "data.source")  # a pipe named like an image would be read forever
        try:
            data = path.read_bytes()
            with Image.open(io.BytesIO(data), formats=tuple(COLOR_MODES)) as image:
                image_format = image.format
                image.verify()  # the header and, for PNG, every chunk's checksum
        except Exception as exc:  # OSError, PIL's UnidentifiedImageError, SyntaxError for broken chunks
            raise DataError(f"data.source: {path} is not a readable image ({first_line(exc)}); remove or replace "
                            f"it") from None
        if color_mode not in COLOR_MODES[image_format]:
            raise ConfigError("data.color_mode", f"{color_mode!r} cannot be decoded from {image_format} images such as "
                              f"{path} (TensorFlow reads {image_format} as {' or '.join(COLOR_MODES[image_format])}); "
                              f"use rgb or convert the images to PNG")
        digest.update(f"{rel}\0{len(data)}\0".encode())
        digest.update(data)
    return "sha256:" + digest.hexdigest()[:16]


def split_sizes(n: int, split: SplitConfig) -> tuple[int, int, int]:
    """Train / val / test image counts: Keras holds out ``int((val + test) * n)`` files, val takes its share.

    Raises:
        DataError: a split that should hold images would be empty.
    """
    held = int((split.val + split.test) * n)
    val = round(held * split.val / (split.val + split.test))
    sizes = (n - held, val, held - val)
    if held < 1 or sizes[0] < 1 or (split.val > 0 and sizes[1] < 1) or (split.test > 0 and sizes[2] < 1):
        raise DataError(f"data.split: {n} images are too few for fractions train {split.train:g} / val "
                        f"{split.val:g} / test {split.test:g} (they give {sizes[0]} / {sizes[1]} / {sizes[2]} "
                        f"images); add images or change data.split")
    return sizes


# ---------------------------------------------------------------------------------------------
# Loading


def prepare_folder(cfg: ExperimentConfig) -> FolderDataset:
    """Check an image folder, then split it and build its ``tf.data`` pipelines (see the module docstring).

    Raises:
        ConfigError: a data or loss setting that does not fit an image folder.
        DataError: the folder's layout, an unreadable image, too few images for the split.
    """
    dcfg = cfg.data
    _check_settings(cfg)
    index = index_folder(Path(dcfg.source))
    encoding = label_encoding(cfg.compile.loss)
    names = index.class_names
    if encoding == "binary":
        check_two_classes(names, "the folder")
    n_train, n_val, n_test = split_sizes(len(index.files), dcfg.split)
    fingerprint = check_images(index, dcfg.color_mode)
    sample_shape = [*dcfg.image_size, CHANNELS[dcfg.color_mode]]
    prep = Preprocessing(
        task="classification", encoding=encoding, scale=dcfg.scale, sample_shape=sample_shape,
        input_shape=input_shape_for(tuple(sample_shape), dcfg.reshape), class_names=names,
        factor=np.asarray(1.0 / PIXEL_MAX, dtype=np.float32) if dcfg.scale == "rescale" else None,
    )
    train, held = _load(cfg, index, encoding)
    if len(train.file_paths) + len(held.file_paths) != len(index.files) or len(train.file_paths) != n_train:
        raise RuntimeError(f"Keras found {len(train.file_paths)} + {len(held.file_paths)} images in {index.root}, "
                           f"dlcli {n_train} + {n_val + n_test}")
    train, held = _to_model_input(train, prep), _to_model_input(held, prep)
    files = {"train": train.file_paths, "val": held.file_paths[:n_val], "test": held.file_paths[n_val:]}

    def labels(paths: list[str]) -> np.ndarray:
        index_of = {name: i for i, name in enumerate(names)}
        classes = np.array([index_of[Path(p).relative_to(index.root).parts[0]] for p in paths], dtype=np.int64)
        return encode_indices(classes, len(names), encoding)

    return FolderDataset(
        x_train=train, y_train=labels(files["train"]),
        x_val=held.take(n_val), y_val=labels(files["val"]),
        x_test=held.skip(n_val), y_test=labels(files["test"]),
        prep=prep, fingerprint=fingerprint, source=dcfg.source,
        files={k: [Path(p).relative_to(index.root).as_posix() for p in v] for k, v in files.items()},
    )


def _load(cfg: ExperimentConfig, index: FolderIndex, encoding: str) -> tuple[Any, Any]:
    """The train and held-out (val + test) datasets of Keras's loader, unbatched, with their ``file_paths``."""
    keras = runtime.import_keras()
    runtime.allow_tensorflow()  # image folders are tf.data pipelines, whatever the Keras backend
    # The loader creates TensorFlow ops: choose the device and seed first (`device: gpu` without a GPU is
    # reported by train's own set-up; evaluate runs a GPU-trained model on a CPU).
    runtime.setup("cpu" if cfg.device == "cpu" else "auto", cfg.seed, cfg.deterministic)
    dcfg = cfg.data
    with contextlib.redirect_stdout(io.StringIO()):  # Keras prints "Using N files for training." regardless
        train, held = keras.utils.image_dataset_from_directory(
            str(index.root), labels="inferred", label_mode=LABEL_MODES[encoding], class_names=index.class_names,
            color_mode=dcfg.color_mode, image_size=tuple(dcfg.image_size), batch_size=None,
            shuffle=True, seed=cfg.seed, validation_split=dcfg.split.val + dcfg.split.test, subset="both",
            verbose=False,
        )
    return train, held


def _to_model_input(ds: Any, prep: Preprocessing) -> Any:
    """``ds`` with the scaling (x / 255) and reshape of ``prep`` applied, keeping its ``file_paths``."""
    import tensorflow as tf  # lazy: imports TensorFlow (only an image folder's pipelines need it)

    factor = None if prep.factor is None else float(prep.factor)
    reshape = prep.input_shape != prep.sample_shape
    if factor is None and not reshape:
        return ds

    def convert(x: Any, y: Any) -> tuple[Any, Any]:
        if factor is not None:
            x = x * factor
        if reshape:
            x = tf.reshape(x, prep.input_shape)
        return x, y

    out = ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE)
    out.file_paths = ds.file_paths
    return out
