"""Evaluate and predict with a trained run: reload its model and preprocessing, score or predict.

``evaluate`` rebuilds the run's own test split exactly (same source, seed and fractions, checked
by the data's fingerprint) or reads other labelled data, applies the scaling fitted at training
time (the run's saved :class:`~dlcli.data.Preprocessing`), and computes the run's own metrics plus
scikit-learn's: confusion matrix, per-class report, F1 and ROC AUC for classification; MAE, MSE,
RMSE and R² for regression. ``predict`` writes one row per input. Models are loaded with Keras's
safe mode on: a model file never runs arbitrary code.

No printing here; ``cli.py`` formats the results.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlcli import runtime
from dlcli.config import ExperimentConfig, load_config
from dlcli.data import (Preprocessing, check_data_file, check_finite, keras_inputs, prepare, prepare_table, read_table,
                        row_hashes, table_features)
from dlcli.errors import DataError, RunError, allowed_list
from dlcli.runs import (atomic_write_json, create_unique_dir, effective_status, load_run_info, now_iso, read_history,
                        read_metrics, replacing, verify_files, write_csv)
from dlcli.model.scoring import keras_scores

TABLE_SUFFIXES = (".csv", ".parquet")
INPUT_SUFFIXES = (".csv", ".parquet", ".npz")
# A --data table for a run trained on a bundled dataset names its label column like scikit-learn's frames.
DEFAULT_TARGET = "target"


@dataclass
class TrainedRun:
    """What a completed run left behind: its record, config, preprocessing and (once loaded) model."""

    path: Path
    info: dict[str, Any]
    cfg: ExperimentConfig
    prep: Preprocessing
    model: Any = None

    @property
    def id(self) -> str:
        return str(self.info.get("run_id") or self.path.name)


@dataclass
class Evaluation:
    """The scores of one evaluation and the files written for it."""

    run_id: str
    split: str  # "test" or the --data file's name
    samples: int
    task: str
    metrics: list[dict[str, Any]]  # one row, the columns of the run's own metrics.csv
    scores: list[dict[str, Any]]  # scikit-learn's: {"metric": .., "value": ..}
    per_class: list[dict[str, Any]] = field(default_factory=list)
    confusion: list[dict[str, Any]] = field(default_factory=list)  # {"true": name, <predicted name>: count}
    out_dir: Path | None = None
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the user should know about the input (printed on stderr)
    backend: dict[str, str] = field(default_factory=dict)  # {"backend": "jax", "version": .., "keras": ..}


@dataclass
class Predictions:
    output: Path
    rows: int
    columns: list[str]
    notes: list[str] = field(default_factory=list)


@dataclass
class Inputs:
    """Samples read from a file for evaluate / predict: raw arrays, or (tables) already encoded."""

    x: np.ndarray
    y: np.ndarray | None
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Loading a run


def open_run(run_dir: Path, backend: str | None = None) -> TrainedRun:
    """Read a completed run's record, config and preprocessing (not the model yet: that needs Keras), and
    select the Keras backend: the run's own, or ``backend`` (a ``.keras`` model loads on any of them).

    Raises:
        RunError: not a run directory, a run that did not complete, or one that has no model.
    """
    run_dir = Path(run_dir)
    info = load_run_info(run_dir)
    status = effective_status(info)
    if status != "completed":
        why = f": {info['reason']}" if info.get("reason") else ""
        raise RunError(f"{run_dir}: run {info.get('run_id', run_dir.name)} did not complete (status {status}{why}); "
                       f"only a completed run has a model to use (see `dlcli runs list`)")
    verify_files(run_dir, info, ("model.keras", "config.yaml", "preprocessing.json", "preprocessing.npz"))
    cfg = load_config(run_dir / "config.yaml", backend=backend)
    runtime.select_backend(cfg.backend, cfg.device, cfg.deterministic)
    prep = Preprocessing.load(run_dir)
    return TrainedRun(path=run_dir, info=info, cfg=cfg, prep=prep)


def load_model(run: TrainedRun, unsafe: bool = False) -> Any:
    """Load ``model.keras`` with Keras's safe mode on (no arbitrary code from a model file) unless ``unsafe``."""
    keras = runtime.import_keras()
    # Same seed and determinism as training; a run trained on a GPU still evaluates on a CPU-only machine.
    runtime.setup("cpu" if run.cfg.device == "cpu" else "auto", run.cfg.seed, run.cfg.deterministic)
    path = run.path / "model.keras"
    try:
        run.model = keras.saving.load_model(path, safe_mode=not unsafe)
    except Exception as exc:  # corrupt zip, unknown layer, unsafe lambda: all one message
        text = str(exc)
        if "safe_mode" in text or "Lambda" in text and "unsafe" in text.lower():
            raise RunError(f"{path}: the model holds a Lambda layer, i.e. arbitrary Python code, and Keras safe "
                           f"mode refuses to load it; if you trust this file, pass --unsafe") from None
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        raise RunError(f"{path}: cannot load the model: {first}") from None
    return run.model


# ---------------------------------------------------------------------------------------------
# Inputs


def own_test_split(run: TrainedRun, force: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The run's test split rebuilt exactly, scaled with the preprocessing saved at training time (for an
    image folder, a ``tf.data.Dataset`` of (image, label) pairs; ``len()`` counts its images).

    Raises:
        DataError: the data's fingerprint differs from training (unless ``force``), its classes
            differ, or the run has no test split.
    """
    # Split without scaling: the scaling must be the one fitted at training time, not a new fit. An image
    # folder's scaling (x / 255) is fixed, so its loader applies it exactly as in training.
    folder = run.cfg.data.kind == "folder"
    if run.prep.columns is not None:  # a typed table: encoded with the state fitted at training time
        data = prepare_table(run.cfg, fitted=run.prep)
    else:
        dcfg = run.cfg.data if folder else run.cfg.data.model_copy(update={"scale": "none", "reshape": None})
        data = prepare(run.cfg.model_copy(update={"data": dcfg}))
    expected = (run.info.get("data") or {}).get("fingerprint")
    if expected and data.fingerprint != expected and not force:
        raise DataError(f"the data changed since run {run.id} was trained: {data.source} has fingerprint "
                        f"{data.fingerprint}, the run recorded {expected}; the rebuilt test split would not be the "
                        f"one the model was scored on. Use --force to evaluate anyway, or --data FILE")
    if data.prep.class_names != run.prep.class_names:
        raise DataError(f"{data.source}: the classes are now {allowed_list(data.prep.class_names or [], 8)}, but "
                        f"the model was trained on {allowed_list(run.prep.class_names or [], 8)}")
    if not len(data.x_test):
        raise DataError(f"run {run.id} has no test split (data.split.test is 0); evaluate other labelled data "
                        f"with --data FILE")
    return (data.x_test if folder or run.prep.columns is not None else run.prep.transform(data.x_test)), data.y_test


def read_inputs(path: Path, prep: Preprocessing, with_target: bool) -> Inputs:
    """Raw features (and, if ``with_target``, raw labels) from a .csv, .parquet or .npz file.

    The columns must be exactly the training features (in any order); for ``predict`` the target
    column may be present and is ignored. An .npz file holds ``x`` (and ``y``).

    Raises:
        DataError: a missing or extra column, a non-numeric or missing value, a wrong sample shape.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in INPUT_SUFFIXES:
        raise DataError(f"{path}: unsupported file type {suffix or '(none)'!r}; use .csv, .parquet or .npz")
    if suffix == ".npz":
        x, y = _read_npz(path, with_target)
        if prep.columns is not None:  # columns in the training order, encoded like the table's
            import pandas as pd

            if x.ndim != 2 or x.shape[1] != len(prep.feature_names or []):
                raise DataError(f"{path}: 'x' has shape {list(x.shape)}; the model was trained on the columns "
                                f"{allowed_list(prep.feature_names or [], 12)}: give one column each, in that order")
            frame = pd.DataFrame(x, columns=prep.feature_names)
            return _encode_typed(frame, path, prep, y, [])
    elif prep.columns is not None:
        return _read_typed_table(path, prep, with_target)
    else:
        x, y = _read_table(path, prep, with_target)
    return Inputs(_check_sample_shape(x, prep, path), y)


def _read_typed_table(path: Path, prep: Preprocessing, with_target: bool) -> Inputs:
    """A raw table for a run trained on typed columns: the training columns (strings, missing values and all),
    encoded with the state saved at training time. Extra columns are ignored (one note); rows whose target is
    missing are dropped (evaluate) and rows empty in a ``missing: drop`` column are dropped (evaluate) or refused
    (predict); values never seen in training are counted in one note."""
    df = read_table(path)
    df.columns = [str(c) for c in df.columns]
    columns = list(df.columns)
    target = prep.target or DEFAULT_TARGET
    needed = list(prep.feature_names or [])
    missing = [c for c in needed if c not in columns]
    if missing:
        raise DataError(f"{path}: column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing[:8]))} "
                        f"{'are' if len(missing) > 1 else 'is'} missing; the model was trained on "
                        f"{allowed_list(needed, 12)}")
    if with_target and target not in columns:
        raise DataError(f"{path}: the target column {target!r} is missing; evaluation needs the true labels "
                        f"(columns: {allowed_list(columns)})")
    notes = []
    extra = [c for c in columns if c not in needed and c != target]
    if extra:
        notes.append(f"ignored {len(extra)} column(s) the model does not use: {allowed_list(extra, 8)}")
    if with_target:
        empty = df[target].isna().to_numpy()
        if empty.all():
            raise DataError(f"{path}: every value of the target column {target!r} is missing")
        if empty.any():
            notes.append(f"dropped {int(empty.sum())} row(s) whose target {target!r} is missing")
            df = df[~empty]
    return _encode_typed(df, path, prep, df[target].to_numpy() if with_target else None, notes)


def _encode_typed(df: Any, path: Path, prep: Preprocessing, y: np.ndarray | None, notes: list[str]) -> Inputs:
    from dlcli.data.columns import encode

    encoded = encode(df, prep.columns or [], str(path))
    x = encoded.x
    with_target = y is not None
    if encoded.keep is not None:
        dropped = [s["name"] for s in prep.columns or [] if s["type"] == "numeric" and s["fill"] is None]
        if not with_target:
            row = int(np.flatnonzero(~encoded.keep)[0]) + 1
            raise DataError(f"{path}: data row {row} has no value in {allowed_list(dropped, 5)}, which the model was "
                            f"trained without (missing: drop); fill it in")
        notes.append(f"dropped {int((~encoded.keep).sum())} row(s) with a missing value in "
                     f"{allowed_list(dropped, 5)} (missing: drop)")
        x, y = x[encoded.keep], y[encoded.keep]
    if not len(x):
        raise DataError(f"{path}: no rows to use")
    if encoded.unseen:
        counts = ", ".join(f"{name}: {count}" for name, count in encoded.unseen.items())
        notes.append(f"values never seen in training went to the 'other' input (or none): {counts}")
    x = x.reshape((len(x), *prep.input_shape))
    return Inputs(x, y, notes)


def _read_table(path: Path, prep: Preprocessing, with_target: bool) -> tuple[np.ndarray, np.ndarray | None]:
    df = read_table(path)
    df.columns = [str(c) for c in df.columns]
    columns = list(df.columns)
    target = prep.target or DEFAULT_TARGET
    if prep.feature_names is None:
        raise DataError(f"{path}: the model was trained on array data without column names; give an .npz file "
                        f"with an array 'x' of samples shaped {prep.sample_shape}")
    if with_target and target not in columns:
        raise DataError(f"{path}: the target column {target!r} is missing; evaluation needs the true labels "
                        f"(columns: {allowed_list(columns)})")
    missing = [c for c in prep.feature_names if c not in columns]
    if missing:
        raise DataError(f"{path}: feature column {missing[0]!r} is missing"
                        f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}; the model needs "
                        f"{allowed_list(prep.feature_names)}")
    extra = [c for c in columns if c not in prep.feature_names and c != target]
    if extra:
        raise DataError(f"{path}: column {extra[0]!r} was not a feature in training"
                        f"{f' (and {len(extra) - 1} more: {allowed_list(extra[1:], 5)})' if len(extra) > 1 else ''}; "
                        f"drop it (the model needs {allowed_list(prep.feature_names)})")
    x = table_features(df, list(prep.feature_names), path)
    if not with_target:
        return x, None
    if df[target].isna().any():
        row = int(np.flatnonzero(df[target].isna().to_numpy())[0])
        raise DataError(f"{path}: column {target!r} (the target) has a missing value in data row {row + 1}")
    return x, df[target].to_numpy()


def _read_npz(path: Path, with_target: bool) -> tuple[np.ndarray, np.ndarray | None]:
    wanted = ("x", "y") if with_target else ("x",)
    check_data_file(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in wanted if k not in npz.files]
            if missing:
                raise DataError(f"{path}: an .npz input needs array(s) named {', '.join(map(repr, wanted))}; it has "
                                f"{npz.files}")
            x = npz["x"]
            y = npz["y"] if with_target else None
    except DataError:
        raise
    except Exception as exc:  # zipfile / pickle / EOF errors for corrupt files
        raise DataError(f"{path}: cannot read the file as .npz: {exc}") from None
    if x.dtype.kind not in "biuf":
        raise DataError(f"{path}: array 'x' must be numeric, it holds {x.dtype}")
    if y is not None and len(y) != len(x):
        raise DataError(f"{path}: 'x' has {len(x)} samples but 'y' has {len(y)}; they must match")
    x = x.astype(np.float32)
    check_finite(x, None, path)
    return x, y


def _check_sample_shape(x: np.ndarray, prep: Preprocessing, path: Path) -> np.ndarray:
    if len(x) == 0:
        raise DataError(f"{path}: no samples")
    shape, wanted = tuple(x.shape[1:]), tuple(prep.sample_shape)
    if shape != wanted and (x.ndim != 2 or x.shape[1] != math.prod(wanted)):
        raise DataError(f"{path}: each sample has shape {list(shape)}, but the model was trained on samples shaped "
                        f"{list(wanted)}" + (f" ({math.prod(wanted)} values, flattened)" if len(wanted) > 1 else ""))
    # Preprocessing.transform scales in place: it needs a writable array (pyarrow's may be read-only).
    return np.require(x.reshape((len(x), *wanted)), np.float32, ["C_CONTIGUOUS", "WRITEABLE"])


def encode_targets(y: np.ndarray, prep: Preprocessing, where: str) -> np.ndarray:
    """Labels as the loss expects them; for a bundled dataset, class indices (0, 1, ..) work as well as names."""
    y = np.asarray(y)
    names = prep.class_names
    if prep.task == "classification" and names and y.dtype.kind in "iu":
        known = set(np.unique(y.astype(str))) <= set(names)
        if not known and y.min() >= 0 and y.max() < len(names):
            y = np.asarray(names)[y]
    return prep.encode_labels(y, where)


# ---------------------------------------------------------------------------------------------
# Scores


def class_probabilities(outputs: np.ndarray, encoding: str) -> np.ndarray:
    """Model outputs as one probability per class (a sigmoid output p becomes [1 - p, p])."""
    out = np.asarray(outputs, dtype=np.float64)
    if encoding == "binary":
        p = out.reshape(-1)
        if p.min() < 0 or p.max() > 1:  # a linear output: logits
            p = 1.0 / (1.0 + np.exp(-p))
        return np.stack([1.0 - p, p], axis=1)
    if out.min() < 0 or not np.allclose(out.sum(axis=1), 1.0, atol=1e-3):  # not softmax: treat as logits
        out = np.exp(out - out.max(axis=1, keepdims=True))
    return out / out.sum(axis=1, keepdims=True)


def true_indices(y: np.ndarray, encoding: str) -> np.ndarray:
    """Encoded labels back to class indices."""
    y = np.asarray(y)
    if encoding == "one_hot":
        return y.argmax(axis=1)
    return y.reshape(-1).astype(np.int64)


def classification_scores(y_true: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Confusion matrix, per-class report, F1 and ROC AUC (binary, or one-vs-rest) with scikit-learn."""
    from sklearn import metrics as skm

    k = len(class_names)
    labels = list(range(k))
    y_pred = probs.argmax(axis=1)
    matrix = skm.confusion_matrix(y_true, y_pred, labels=labels)
    precision, recall, f1, support = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                                         zero_division=0)
    per_class = []
    for i, name in enumerate(class_names):
        row = {"class": name, "precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
               "support": int(support[i])}
        row["roc_auc"] = _auc(y_true == i, probs[:, i])
        per_class.append(row)
    for average in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, average=average,
                                                         zero_division=0)
        per_class.append({"class": f"{average} avg", "precision": float(p), "recall": float(r), "f1": float(f),
                          "support": int(len(y_true))})
    if k == 2:
        auc = _auc(y_true == 1, probs[:, 1])
    else:
        aucs = [row["roc_auc"] for row in per_class[:k]]
        auc = float(np.mean(aucs)) if all(a is not None for a in aucs) else None
    scores = {"samples": len(y_true), "accuracy": float(skm.accuracy_score(y_true, y_pred)),
              "f1_macro": float(skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
              "f1_weighted": float(skm.f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
              "roc_auc" if k == 2 else "roc_auc_ovr_macro": auc}
    return {"scores": scores, "per_class": per_class, "matrix": matrix.tolist()}


def _auc(is_class: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC of one class against the rest; None when the labels hold only one side."""
    from sklearn.metrics import roc_auc_score

    if is_class.all() or not is_class.any():
        return None
    return float(roc_auc_score(is_class, score))


def regression_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """MAE, MSE, RMSE and R² with scikit-learn."""
    from sklearn import metrics as skm

    y_true, y_pred = np.asarray(y_true, dtype=np.float64).reshape(-1), np.asarray(y_pred, np.float64).reshape(-1)
    mse = float(skm.mean_squared_error(y_true, y_pred))
    r2 = float(skm.r2_score(y_true, y_pred)) if len(y_true) > 1 else None
    return {"scores": {"samples": len(y_true), "mae": float(skm.mean_absolute_error(y_true, y_pred)), "mse": mse,
                       "rmse": math.sqrt(mse), "r2": r2}}


def keras_metrics_row(run: TrainedRun, x: np.ndarray, y: np.ndarray,
                      split: str) -> tuple[dict[str, Any], np.ndarray]:
    """The run's loss and metrics (:func:`~dlcli.model.scoring.keras_scores`, the definition ``train`` wrote
    metrics.csv with, the same on every backend) as one row with the columns of the run's own metrics.csv;
    and the model's predictions."""
    scores, outputs = keras_scores(run.model, run.cfg, run.prep, x, y, run.cfg.fit.batch_size)
    saved = read_metrics(run.path)
    columns = [c for c in (saved[0] if saved else {}) if c != "split"] or list(scores)
    columns += [c for c in scores if c not in columns]
    return {"split": split, **{c: scores.get(c) for c in columns}}, outputs


# ---------------------------------------------------------------------------------------------
# Commands


def evaluate_run(run_dir: Path, data_path: Path | None = None, force: bool = False,
                 unsafe: bool = False, backend: str | None = None) -> Evaluation:
    """Score a run's model on its own test split (rebuilt exactly) or on other labelled data, and write
    ``runs/<run-id>/evaluations/<timestamp>/``.

    Args:
        run_dir: the run directory.
        data_path: a labelled .csv / .parquet / .npz file with the training columns; None for the test split.
        force: evaluate the rebuilt test split even when the data's fingerprint changed.

    Returns:
        The evaluation; on the run's own test split its metrics row equals the test row of the run's
        metrics.csv.

    Raises:
        RunError / DataError: see :func:`open_run`, :func:`own_test_split` and :func:`read_inputs`.
    """
    run = open_run(run_dir, backend)
    notes: list[str] = []
    if data_path is None:
        x, y = own_test_split(run, force)
        split = "test"
    else:
        inputs = read_inputs(data_path, run.prep, with_target=True)
        y = encode_targets(inputs.y, run.prep, str(data_path))
        x = run.prep.transform(inputs.x)
        split = Path(data_path).name
        notes = inputs.notes + _training_rows_note(run.prep, x, y, data_path)
    load_model(run, unsafe=unsafe)
    row, outputs = keras_metrics_row(run, x, y, split)
    result = Evaluation(run_id=run.id, split=split, samples=len(x), task=run.prep.task, metrics=[row], scores=[],
                        notes=notes, backend=runtime.backend_versions())
    if run.prep.task == "classification":
        names = list(run.prep.class_names or [])
        sk = classification_scores(true_indices(y, run.prep.encoding), class_probabilities(outputs, run.prep.encoding),
                                   names)
        result.per_class = sk["per_class"]
        result.confusion = [{"true": name, **dict(zip(names, counts))} for name, counts in zip(names, sk["matrix"])]
    else:
        sk = regression_scores(y, outputs)
    result.scores = [{"metric": k, "value": v} for k, v in sk["scores"].items()]
    write_evaluation(run, result, sk.get("matrix"), force=force, data_path=data_path)
    return result


def _training_rows_note(prep: Preprocessing, x: np.ndarray, y: np.ndarray, data_path: Path) -> list[str]:
    """A warning when rows of an evaluation file were in the run's training split (same encoded row and label)."""
    if prep.row_hashes is None or not len(prep.row_hashes):
        return []
    seen = np.isin(row_hashes(x, y), prep.row_hashes)
    if not seen.any():
        return []
    return [f"warning: {int(seen.sum())} of {len(seen)} rows of {Path(data_path).name} were in the run's training "
            f"split; scores on them are not a fair test of the model"]


def new_evaluation_dir(run_dir: Path) -> Path:
    """Create ``run_dir/evaluations/<YYYYmmdd-HHMMSS>``, unique even within one second (never overwrites)."""
    root = Path(run_dir) / "evaluations"
    return create_unique_dir(root, time.strftime("%Y%m%d-%H%M%S"), "evaluation")


def write_evaluation(run: TrainedRun, result: Evaluation, matrix: list[list[int]] | None, force: bool,
                     data_path: Path | None) -> None:
    """Write the evaluation's tables (and confusion-matrix PNG) into a new evaluations/<timestamp>/ directory."""
    from dlcli.report import plot_confusion_matrix

    out = new_evaluation_dir(run.path)
    try:
        files = [out / "metrics.csv", out / "scores.csv"]
        write_csv(files[0], result.metrics)
        write_csv(files[1], result.scores)
        if matrix is not None:
            names = [row["true"] for row in result.confusion]
            files += [out / "confusion_matrix.csv", out / "classification_report.csv", out / "confusion_matrix.png"]
            write_csv(files[2], [{"true\\predicted": row["true"], **{n: row[n] for n in names}}
                                 for row in result.confusion])
            write_csv(files[3], result.per_class)
            plot_confusion_matrix(matrix, names, files[4],
                                  title=f"{run.id}: {result.split} ({result.samples} samples)")
        files.append(out / "evaluation.json")
        atomic_write_json(files[-1], {
            "run_id": run.id, "created": now_iso(), "split": result.split, "samples": result.samples,
            "data": str(Path(data_path).resolve()) if data_path is not None else run.cfg.data.source,
            "forced": force, "backend": result.backend,
            "metrics": {k: v for k, v in result.metrics[0].items() if k != "split"},
            "scores": {s["metric"]: s["value"] for s in result.scores},
            "files": [f.name for f in files],
        })
    except BaseException:  # a full disk or Ctrl-C: no half-written evaluation is left behind
        shutil.rmtree(out, ignore_errors=True)
        raise
    result.out_dir, result.files = out, files


def predict_file(run_dir: Path, input_path: Path, output_path: Path, unsafe: bool = False,
                 backend: str | None = None) -> Predictions:
    """Predict every row of an input file and write the predictions as .csv or .parquet.

    Each output row holds ``prediction`` (the class name, or the value) and, for classification,
    ``prob_<class>`` for every class.

    Raises:
        RunError / DataError: a run that cannot be used, an input whose columns, types or shape do
            not match the training data, an output that is not .csv / .parquet.
    """
    import pandas as pd

    output_path = Path(output_path)
    if output_path.suffix.lower() not in TABLE_SUFFIXES:
        raise DataError(f"--output {output_path}: write .csv or .parquet")
    if output_path.resolve() == Path(input_path).resolve():
        raise DataError(f"--output {output_path}: is the input file; choose another name")
    if not output_path.parent.is_dir():
        raise DataError(f"--output {output_path}: the directory {output_path.parent} does not exist")
    run = open_run(run_dir, backend)
    inputs = read_inputs(input_path, run.prep, with_target=False)
    x = run.prep.transform(inputs.x)
    load_model(run, unsafe=unsafe)
    outputs = run.model.predict(x, batch_size=run.cfg.fit.batch_size, verbose=0)
    if run.prep.task == "classification":
        names = list(run.prep.class_names or [])
        probs = class_probabilities(outputs, run.prep.encoding).astype(np.float32)
        frame = pd.DataFrame({"prediction": np.asarray(names, dtype=object)[probs.argmax(axis=1)]})
        for i, name in enumerate(names):
            frame[f"prob_{name}"] = probs[:, i]
    else:
        frame = pd.DataFrame({"prediction": np.asarray(outputs, dtype=np.float64).reshape(-1)})
    with replacing(output_path) as tmp:
        if output_path.suffix.lower() == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
    return Predictions(output=output_path, rows=len(frame), columns=list(frame.columns), notes=inputs.notes)


def plot_run(run_dir: Path, out_dir: Path | None = None, confusion: bool = True, force: bool = False,
             unsafe: bool = False, backend: str | None = None) -> list[Path]:
    """Learning curves (from history.csv) and, for a classification run, the confusion matrix on its
    own test split, as PNG files in ``out_dir`` (default: the run directory).

    Raises:
        RunError: the run has no history yet (and, for the confusion matrix, see :func:`evaluate_run`).
    """
    from dlcli.runs.diagnosis import best_epoch
    from dlcli.report import plot_confusion_matrix, plot_learning_curves

    run_dir = Path(run_dir)
    info = load_run_info(run_dir)
    out_dir = Path(out_dir or run_dir)
    history = read_history(run_dir)
    if not history.get("loss"):
        raise RunError(f"{run_dir}: the run has no history.csv with epochs to plot (status: "
                       f"{effective_status(info)})")
    files = [plot_learning_curves(history, out_dir / "learning_curves.png", best_epoch(history)[0],
                                  title=info.get("run_id", run_dir.name))]
    task = (info.get("data") or {}).get("task")
    if confusion and task == "classification":
        run = open_run(run_dir, backend)
        x, y = own_test_split(run, force)
        load_model(run, unsafe=unsafe)
        probs = class_probabilities(run.model.predict(**keras_inputs(x, None, run.cfg.fit.batch_size), verbose=0),
                                    run.prep.encoding)
        names = list(run.prep.class_names or [])
        matrix = classification_scores(true_indices(y, run.prep.encoding), probs, names)["matrix"]
        files.append(plot_confusion_matrix(matrix, names, out_dir / "confusion_matrix.png",
                                           title=f"{run.id}: test ({len(x)} samples)"))
    return files

