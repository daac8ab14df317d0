"""The loss and metrics of a trained model on labelled data: one definition on TensorFlow, JAX and PyTorch.

``model.evaluate`` does not give the same loss on every backend. On TensorFlow, Keras 3 (3.15.1 checked)
computes a crossentropy on a softmax / sigmoid output from the logits the activation keeps
(``_keras_logits``, read by ``_get_logits`` in ``keras/src/backend/tensorflow/nn.py``), so nothing is
clipped; JAX and PyTorch take the probabilities and clip them to ``[1e-7, 1 - 1e-7]``, so no sample
costs more than ``-log(1e-7) = 16.12``. One confidently wrong sample moves the mean loss by up to a
few thousandths (the same behaviour as keras-team/keras#14003 and #17634: ``evaluate`` differs from the
loss of ``predict``'s output). Here the data loss is always Keras's compiled loss on the predictions
(the clipped form, on every backend, batch-weighted as ``evaluate`` weights it), and the
regularization penalty is added on top, the way ``evaluate`` adds ``model.losses``.

``train`` (``metrics.csv``) and ``evaluate`` both score through :func:`keras_scores`, so a run's
scores are the same number whichever backend reloads its model (to float32 rounding).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from dlcli.config import ExperimentConfig
from dlcli.data import Preprocessing, is_streamed, keras_inputs
from dlcli.model.compile import resolve_metrics
from dlcli.runtime import import_keras

# Predictions are scored this many at a time (eagerly: a few large batches cost less than tracing a graph).
SCORING_BATCH = 65_536
# The model predicts eagerly, PREDICT_BATCHES training batches at a time (at most PREDICT_ROWS samples or
# PREDICT_BYTES of input per call): no graph to trace and a few calls instead of one step per batch. Inference
# keeps no activations for gradients, so 8 batches need less memory than one training step of a deep model.
PREDICT_BATCHES = 8
PREDICT_ROWS = 1024
PREDICT_BYTES = 16 << 20


def keras_scores(model: Any, cfg: ExperimentConfig, prep: Preprocessing, x: Any, y: np.ndarray,
                 batch_size: int) -> tuple[dict[str, float], np.ndarray]:
    """The model's loss and metrics on ``(x, y)``, and its predictions.

    Args:
        model: a compiled or loaded Keras model.
        cfg: the run's config (its loss and metrics).
        prep: the run's preprocessing (the label encoding the metrics are checked against).
        x / y: samples (an array, or a ``tf.data.Dataset`` of (sample, label) pairs) and encoded labels.
        batch_size: the batches to predict and score in.

    Returns:
        ``{"loss": .., "accuracy": .., ...}`` in Keras's order; for a model with weight or activity
        regularizers also ``data_loss`` and ``regularization`` right after ``loss``. And the predictions.
    """
    outputs = predict(model, x, batch_size)
    scores = score_predictions(scorer(cfg, prep, outputs.shape[1:]), outputs, y)
    data_loss = scores.pop("loss")
    row = {"loss": data_loss}
    if has_regularizers(model):
        penalty = regularization(model, x, batch_size)
        row = {"loss": data_loss + penalty, "data_loss": data_loss, "regularization": penalty}
    row.update(scores)
    return row, outputs


def eager_is_slow() -> bool:
    """Whether the backend compiles every operation for every new shape when run eagerly (JAX), so that a
    compiled step (``predict``, ``evaluate``) costs less there than eager calls: the one switch of
    :func:`predict`, :func:`scorer` and the dry run (digits MLP on JAX: eager predict 0.83 s against
    ``predict``'s 0.36 s, eager scoring 0.7-1.0 s per split against ``evaluate``'s 0.18-0.25 s)."""
    return import_keras().backend.backend() == "jax"


def predict(model: Any, x: Any, batch_size: int) -> np.ndarray:
    """The model's outputs for ``x`` (inference mode), float32.

    On TensorFlow and PyTorch an array is predicted eagerly in chunks of ``PREDICT_BATCHES`` batches (see
    above): no per-step loop and, on TensorFlow, no graph traced twice (the full batch and the last, shorter
    one), 0.03 s instead of 0.18 s for the digits train split. The outputs are the same function of each
    sample (``metrics.csv`` of the digits MLP is unchanged to the last digit). Where eager is slow
    (:func:`eager_is_slow`), and for an image folder's ``tf.data`` split, which its pipeline batches,
    ``model.predict`` does it.
    """
    if is_streamed(x) or not len(x) or eager_is_slow():
        return np.asarray(model.predict(**keras_inputs(x, None, batch_size), verbose=0), dtype=np.float32)
    row_bytes = max(1, x[:1].nbytes)
    rows = max(batch_size, min(PREDICT_BATCHES * batch_size, PREDICT_ROWS, PREDICT_BYTES // row_bytes))
    ops = import_keras().ops
    chunks = [ops.convert_to_numpy(model(x[start:start + rows], training=False)) for start in range(0, len(x), rows)]
    return np.concatenate(chunks).astype(np.float32, copy=False)


def score_predictions(scorer: Any, outputs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Keras's compiled loss and metrics of ``scorer`` (see :func:`scorer`) on predictions ``outputs`` against
    labels ``y``: ``{"loss": .., "accuracy": .., ...}`` in Keras's order, as ``evaluate`` would return them.

    The compiled loss and metrics are called directly, ``SCORING_BATCH`` samples at a time, the loss
    weighted by the samples in each (as ``evaluate`` weights its batches): ``evaluate`` itself costs
    about 0.1 s per call on TensorFlow for its data adapter, callbacks and eager loop, more than this.
    """
    ops = import_keras().ops
    if not scorer.run_eagerly:
        # A compiled scorer (where eager is slow, see scorer): evaluate compiles its one test step per shape.
        # Same loss (one batch per SCORING_BATCH samples, weighted by size) and metrics.
        scores = scorer.evaluate(outputs, y, batch_size=SCORING_BATCH, verbose=0, return_dict=True)
        return {name: float(value) for name, value in scores.items()}
    scorer.reset_metrics()
    total, count = 0.0, 0
    for start in range(0, len(y), SCORING_BATCH):
        y_true = ops.convert_to_tensor(y[start:start + SCORING_BATCH])
        y_pred = ops.convert_to_tensor(outputs[start:start + SCORING_BATCH])
        loss = scorer.compute_loss(y=y_true, y_pred=y_pred, training=False)
        total += float(ops.convert_to_numpy(loss)) * len(y_pred)
        count += len(y_pred)
        scorer.compute_metrics(None, y_true, y_pred)
    results = {"loss": total / max(count, 1)}
    for name, value in scorer.get_metrics_result().items():
        if name != "loss":  # the loss tracker: only evaluate's loop updates it
            results[name] = float(ops.convert_to_numpy(value))
    return results


def scorer(cfg: ExperimentConfig, prep: Preprocessing, shape: tuple[int, ...],
           metrics: list[Any] | None = None) -> Any:
    """A model that outputs its input, compiled with the run's loss and metrics (or only ``metrics``, when
    given): Keras's own definitions applied to predictions, which on TensorFlow carry no softmax logits to
    bypass the clipping. Used by :func:`score_predictions`, never fitted; evaluated only where eager is slow
    (:func:`eager_is_slow`): its compiled step is then cheaper than eager calls."""
    keras = import_keras()
    model = keras.Sequential([keras.Input(shape=shape), keras.layers.Identity()], name="scores")
    model.compile(loss=cfg.compile.loss, metrics=resolve_metrics(cfg.compile, prep) if metrics is None else metrics,
                  run_eagerly=not eager_is_slow())
    return model


def has_regularizers(model: Any) -> bool:
    """Whether the model adds a penalty to its loss (a weight or an activity regularizer)."""
    return bool(_weight_regularized(model) or _activity_regularized(model))


def regularization(model: Any, x: Any, batch_size: int) -> float:
    """The penalty Keras adds to the loss: every weight regularizer on the weights as they are, plus each
    activity regularizer on the layer's output, per batch divided by the batch size and the batches
    weighted by their size (as ``evaluate`` does), i.e. summed over the batches and divided by the samples."""
    keras = import_keras()
    ops = keras.ops
    penalty = sum(float(ops.convert_to_numpy(v.regularizer(v))) for v in _weight_regularized(model))
    layers = _activity_regularized(model)
    if not layers:
        return penalty
    probe = keras.Model(model.inputs, [layer.output for layer in layers])
    total, samples = 0.0, 0
    for batch in _batches(x, batch_size):
        outputs = probe.predict_on_batch(batch)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for layer, output in zip(layers, outputs):
            total += float(ops.convert_to_numpy(layer.activity_regularizer(ops.convert_to_tensor(output))))
        samples += len(batch)
    return penalty + total / max(samples, 1)


def _weight_regularized(model: Any) -> list[Any]:
    return [v for v in model.trainable_weights if getattr(v, "regularizer", None) is not None]


def _activity_regularized(model: Any) -> list[Any]:
    return [layer for layer in model.layers if getattr(layer, "activity_regularizer", None) is not None]


def _batches(x: Any, batch_size: int) -> Iterator[np.ndarray]:
    """The samples in the batches ``predict`` and ``evaluate`` use."""
    if is_streamed(x):
        for samples, _ in x.batch(batch_size):
            yield np.asarray(samples)
        return
    for start in range(0, len(x), batch_size):
        yield x[start:start + batch_size]
