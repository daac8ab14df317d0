"""Survey a data set for ``dlcli init``: what it holds and the data settings that fit it.

:func:`inspect_data` reads a table's columns and dtypes and its target's classes (or range), an .npz
file's arrays, a bundled dataset, or an image folder's classes and one image's size, and checks them
against the task, so that a mistake (a missing target column, text where regression needs numbers)
is one message before anything is written. ``text.py`` turns the :class:`DataSummary` into YAML.

No TensorFlow here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from dlcli.config import BUNDLED_DATASETS, FILE_SUFFIXES, KERAS_DATASETS, DataConfig
from dlcli.data import PIXEL_MAX, check_data_file, load_raw, load_table
from dlcli.data.columns import plan_columns
from dlcli.data.images import IMAGE_SUFFIXES
from dlcli.errors import ConfigError, DataError, allowed_list, did_you_mean

Task = Literal["classification", "regression", "image"]
TASKS: tuple[str, ...] = get_args(Task)
# Column names taken as the target when --target is not given (else the last column is).
TARGET_NAMES = ("target", "label", "labels", "class", "y")
BUNDLED_REGRESSION = ("diabetes",)
MAX_IMAGE_SIDE = 128  # larger images are resized down to this: a small CNN on a CPU stays quick
# init's choice of data.scale for tables and numeric arrays, written into the config on purpose: the schema's
# default (none) leaves features as they are, which suits data already scaled, but a starter config must train
# well as written, and a Dense network learns poorly from features of very different ranges. Pixels get
# rescale instead (see _inspect_npz, _inspect_images).
STARTER_SCALE, STARTER_SCALE_NOTE = "standard", "z-score each feature, fitted on the train split only"


@dataclass
class DataSummary:
    """What ``init`` learned about the data, and the data settings it chose."""

    task: Task
    source: str  # as the config will say it: a dataset name or a path relative to the config file
    about: list[str]  # comment lines describing the data
    samples: int
    target: str | None = None
    classes: list[str] | None = None  # in the order dlcli numbers them
    counts: list[int] | None = None
    scale: str = STARTER_SCALE
    scale_note: str = STARTER_SCALE_NOTE
    flatten: bool = False  # samples are arrays (e.g. 8x8 images) for a Dense network
    image_size: list[int] | None = None
    color_mode: str | None = None
    notes: list[str] = field(default_factory=list)  # what the user should know (printed by the CLI too)
    columns: list[Any] | None = None  # tables: each column's inferred type and why (dlcli.data.columns.Planned)

    @property
    def binary(self) -> bool:
        return self.classes is not None and len(self.classes) == 2


def inspect_data(task: Task, data: str, target: str | None, config_dir: Path) -> DataSummary:
    """Read ``data`` and choose the data settings for ``task``.

    Args:
        task: classification, regression or image.
        data: as given to ``--data``.
        target: as given to ``--target`` (tables only).
        config_dir: the directory of the config to be written (``data.source`` is relative to it).
    """
    if data in KERAS_DATASETS:
        raise ConfigError("--data", f"{data!r} is a Keras dataset, downloaded on first use; init looks at local data "
                          f"or a bundled dataset ({', '.join(BUNDLED_DATASETS)}). For MNIST see configs/mnist_cnn.yaml")
    if target is not None and (data in BUNDLED_DATASETS or Path(data).suffix.lower() not in (".csv", ".parquet")):
        raise ConfigError("--target", "is for .csv and .parquet files only; a bundled dataset, .npz file or image "
                          "folder has its own labels")
    if data in BUNDLED_DATASETS:
        if task == "image":
            raise ConfigError("--task", f"image needs a folder with one sub-folder of images per class; for "
                              f"{data!r} use --task classification (or see configs/digits_cnn.yaml)")
        return _inspect_bundled(task, data)
    path = Path(data).expanduser()
    if not os.path.lexists(path):
        hint = did_you_mean(data, BUNDLED_DATASETS) if not path.suffix else ""
        raise DataError(f"--data: {os.path.abspath(path)} does not exist.{hint} Give a .csv, .parquet or .npz file, "
                        f"an image folder or a bundled dataset ({', '.join(BUNDLED_DATASETS)})")
    if not path.is_dir():
        check_data_file(path, "--data")  # a symlink loop, a pipe, an unreadable or too large file: one message
    source = relative_path(path.resolve(), config_dir)
    if task == "image":
        if not path.is_dir():
            raise ConfigError("--task", f"image needs a folder with one sub-folder of images per class, but {path} "
                              f"is a file; for a table or .npz use --task classification or regression")
        return _inspect_images(path, source + "/")
    if path.is_dir():
        raise ConfigError("--data", f"{path} is a folder; for a folder of images use --task image")
    if path.suffix.lower() not in FILE_SUFFIXES:
        raise ConfigError("--data", f"{path.name!r} is not a .csv, .parquet or .npz file, an image folder or a "
                          f"bundled dataset ({', '.join(BUNDLED_DATASETS)})")
    if path.suffix.lower() == ".npz":
        return _inspect_npz(task, path, source)
    return _inspect_table(task, path, source, target)


def _inspect_bundled(task: Task, name: str) -> DataSummary:
    raw = load_raw(DataConfig(source=name))
    natural = "regression" if name in BUNDLED_REGRESSION else "classification"
    if task != natural:
        what = "a numeric target" if natural == "regression" else f"classes ({', '.join(raw.class_names or [])})"
        raise ConfigError("--task", f"{name!r} has {what}; use --task {natural}")
    summary = DataSummary(task=task, source=name, samples=len(raw.x),
                          about=[f"Data: scikit-learn's bundled {name!r}: {len(raw.x)} samples, {raw.x.shape[1]} "
                                 f"numeric features."])
    if task == "classification":
        names = raw.class_names or [str(c) for c in np.unique(raw.y)]
        summary.classes = names
        summary.counts = [int((raw.y == i).sum()) for i in range(len(names))]
    else:
        _set_target(summary, raw.y, f"data.source {name!r}", "target")
    return summary


def _inspect_table(task: Task, path: Path, source: str, target: str | None) -> DataSummary:
    df = load_table(path)
    columns = list(df.columns)
    notes: list[str] = []
    if target is None:
        named = [c for c in columns if c.lower() in TARGET_NAMES]
        target = named[0] if named else columns[-1]
        notes.append(f"target: {target!r} ({'its name' if named else 'the last column'}; --target chooses another)")
    elif target not in columns:
        raise ConfigError("--target", f"{target!r} is not a column of {path}.{did_you_mean(target, columns)} "
                          f"(columns: {allowed_list(columns, 20)})")
    if len(columns) < 2:
        raise DataError(f"{path}: the file has a single column ({columns[0]!r}); it needs feature columns and a target")
    y = df[target]
    if y.isna().all():
        raise DataError(f"{path}: every value of the target column {target!r} is missing")
    plans = plan_columns(df, DataConfig(source=source, target=target), str(path), text_ok=True)
    used = [p for p in plans if p.kind != "ignore" and p.spec is not None]
    summary = DataSummary(task=task, source=source, samples=int(y.notna().sum()), target=target, notes=notes,
                          columns=plans,
                          about=[f"Data: {path.name}: {len(df)} rows, {len(plans)} columns besides the target, "
                                 f"{len(used)} of them used (see data.columns)."])
    if y.isna().any():
        summary.about.append(f"{int(y.isna().sum())} rows have no target; training drops them.")
        notes.append(f"{int(y.isna().sum())} row(s) have no {target!r}: training drops them")
    left_out = [p.name for p in plans if p.kind in ("ignore", "text")]
    if left_out:
        notes.append(f"left out {len(left_out)} column(s), each with the reason in the config: "
                     f"{allowed_list(left_out, 8)}")
    _set_target(summary, y.dropna().to_numpy(), f"{path}: the target column {target!r}", f"target {target!r}")
    return summary


def _inspect_npz(task: Task, path: Path, source: str) -> DataSummary:
    raw = load_raw(DataConfig(source=str(path)))
    x, y = raw.x, np.asarray(raw.y)
    if y.ndim != 1:
        raise DataError(f"{path}: 'y' has shape {list(y.shape)}; init expects one label or number per sample")
    summary = DataSummary(task=task, source=source, samples=len(x),
                          about=[f"Data: {path.name}: x {list(x.shape)}, y {list(np.shape(raw.y))}."])
    if x.ndim > 2:
        summary.flatten = True
    pixels = x.ndim > 2 and x.min() >= 0 and 1 < x.max() <= PIXEL_MAX and np.array_equal(x, np.round(x))
    if pixels:
        summary.scale, summary.scale_note = "rescale", "x / 255: the values look like pixels 0..255"
    _set_target(summary, y, f"{path}: y", "y")
    return summary


def _set_target(summary: DataSummary, y: np.ndarray, where: str, label: str) -> None:
    """Classes and their counts (classification) or the range (regression), checked against the task."""
    if summary.task == "regression":
        if y.dtype.kind not in "biuf":
            example = next(iter(v for v in y if not _is_number(v)), y[0])
            raise DataError(f"{where} is not numeric (it holds {example!r}); --task regression needs numbers: use "
                            f"--task classification")
        summary.about.append(_numbers_line(label, y.astype(np.float64)))
        return
    if y.dtype.kind == "f" and not np.array_equal(y, np.round(y)):
        example = next(v for v in y if v != round(v))
        raise DataError(f"{where} holds fractional numbers such as {example:g}, not classes; use --task regression")
    labels = y if y.dtype.kind in "iub" else y.astype(str)  # numbered as dlcli.data does: sorted
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise DataError(f"{where} has a single class ({classes[0]!r}); classification needs at least two")
    summary.classes = [str(c.item() if hasattr(c, "item") else c) for c in classes]
    summary.counts = [int(c) for c in counts]


def _inspect_images(folder: Path, source: str) -> DataSummary:
    class_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        found = "one class folder" if class_dirs else "no class folders"
        raise DataError(f"{folder}: {found}; put each class's images in a sub-folder of its own (e.g. "
                        f"{folder}/cat/*.jpg, {folder}/dog/*.jpg), at least two")
    counts, first = [], None
    for class_dir in class_dirs:
        images = sorted(p for p in class_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not images:
            raise DataError(f"{class_dir}: the class folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
        counts.append(len(images))
        first = first or images[0]
    width, height, mode = _image_size(first)
    scale = min(1.0, MAX_IMAGE_SIDE / max(width, height))
    size = [max(1, round(height * scale)), max(1, round(width * scale))]
    color = "grayscale" if mode in ("1", "L", "LA", "I", "I;16", "F") else "rgb"
    resized = f", resized to {size[1]}x{size[0]}" if scale < 1 else ""
    summary = DataSummary(task="image", source=source, samples=sum(counts), scale="rescale",
                          scale_note="x / 255: pixels 0..255 -> 0..1",
                          image_size=size, color_mode=color, classes=[p.name for p in class_dirs], counts=counts,
                          about=[f"Data: {folder.name}/: {sum(counts)} images in {len(class_dirs)} class folders; "
                                 f"{first.relative_to(folder)} is {width}x{height} {mode}{resized}."])
    return summary


def _image_size(path: Path) -> tuple[int, int, str]:
    from PIL import Image, UnidentifiedImageError  # lazy: start-up speed

    try:
        with Image.open(path) as image:
            return image.size[0], image.size[1], image.mode
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path}: cannot read the image: {exc}") from None


def _is_number(value: Any) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


def _numbers_line(label: str, y: np.ndarray) -> str:
    y = np.asarray(y, dtype=np.float64)
    return f"The {label} is a number: {y.min():.4g} to {y.max():.4g}, mean {y.mean():.4g}."


def relative_path(path: Path, start: Path) -> str:
    """``path`` relative to the directory ``start``, with forward slashes (absolute if on another drive)."""
    try:
        return Path(os.path.relpath(path, start)).as_posix()
    except ValueError:  # another drive (Windows)
        return path.as_posix()


def one_line(text: str) -> str:
    """``text`` on one line (for a YAML comment)."""
    return " ".join(str(text).split())
