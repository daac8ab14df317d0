"""A validated experiment: the data prepared, the model built and checked on two samples; nothing written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlcli import runtime
from dlcli.config import ExperimentConfig, load_config
from dlcli.data import Dataset, prepare
from dlcli.errors import ConfigError, DataError, allowed_list
from dlcli.model import build_model, resolve_metrics
from dlcli.model.scoring import eager_is_slow, predict, score_predictions, scorer
from dlcli.runs import resumable_info


@dataclass
class Experiment:
    """A validated experiment: prepared data and a compiled model, nothing written yet."""

    cfg: ExperimentConfig
    data: Dataset
    model: Any
    device: str
    strategy: Any = None  # the tf.distribute strategy the model was built in (distribution: mirrored)


def history_keys(cfg: ExperimentConfig, with_val: bool) -> list[str]:
    """The keys Keras will put in the history for this config."""
    names = ["loss"] + [m.lower() if m.lower() in ("f1_score", "fbeta_score") else m for m in cfg.compile.metrics]
    keys = names + ([f"val_{n}" for n in names] if with_val else [])
    if cfg.fit.reduce_lr_on_plateau is not None:
        keys.append("learning_rate")
    return keys


def _check_monitors(cfg: ExperimentConfig, has_val: bool) -> None:
    keys = history_keys(cfg, has_val)
    for section in ("early_stopping", "reduce_lr_on_plateau"):
        sub = getattr(cfg.fit, section)
        if sub is not None and sub.monitor not in keys:
            hint = " (there is no validation split: data.split.val is 0)" if sub.monitor.startswith("val_") else ""
            raise ConfigError(f"fit.{section}.monitor", f"{sub.monitor!r} is not produced by this run{hint} "
                              f"(available: {allowed_list(keys)})")


def _dry_run(model: Any, cfg: ExperimentConfig, data: Dataset) -> None:
    """Score two samples with the run's loss and metrics, so a loss/metric/label mismatch is a config error,
    not a crash mid-run. Every random state is put back, so the run trains as it would without the check
    (on JAX and PyTorch a first ``evaluate`` changes how the same seed trains: loss 1.0028 vs 1.0038 after
    the first epoch).

    On TensorFlow and PyTorch the two samples are predicted and scored eagerly
    (:func:`~dlcli.model.scoring.predict`, :func:`~dlcli.model.scoring.score_predictions`): 0.08 s instead of
    ``evaluate``'s 0.47 s, which traces a graph for a batch of two. Where eager is slow
    (:func:`~dlcli.model.scoring.eager_is_slow`: JAX, 1.3 s) a compiled copy of the model evaluates them (0.5 s).
    """
    keras = runtime.import_keras()
    x, y = data.head(2)
    with runtime.rng_preserved():
        if eager_is_slow():
            def check(metrics: list[Any]) -> None:
                probe = keras.models.clone_model(model)
                probe.compile(loss=cfg.compile.loss, metrics=metrics)
                probe.evaluate(x, y, verbose=0)
        else:
            try:
                outputs = predict(model, x, 2)
            except Exception as exc:  # every backend raises its own kinds here
                raise ConfigError("model.layers", f"the model cannot predict two training samples: "
                                  f"{backend_error_line(exc)}") from None

            def check(metrics: list[Any]) -> None:
                score_predictions(scorer(cfg, data.prep, outputs.shape[1:], metrics), outputs, y)
        metrics = resolve_metrics(cfg.compile, data.prep)
        try:
            check(metrics)
            return
        except Exception as exc:  # every backend raises its own kinds here
            reason = backend_error_line(exc)
        # Which of the loss and the metrics fails on the labels.
        where = "compile"
        for i, some in [(-1, [])] + list(enumerate([m] for m in metrics)):
            try:
                check(some)
            except Exception:
                where = "compile.loss" if i < 0 else f"compile.metrics[{i}]"
                break
    raise ConfigError(where, f"cannot compare the model's output (shape {tuple(model.output_shape)}) with the "
                      f"labels (shape {tuple(y.shape)[1:] or 'one value'} per sample, encoded for loss "
                      f"{cfg.compile.loss!r}): {reason}")


def backend_error_line(exc: BaseException) -> str:
    """The line of a backend's error that names the problem: the last one that is not TensorFlow's context.

    Not :func:`dlcli.errors.first_line`: TensorFlow's graph errors start with "Graph execution error" and a
    stack of ``File`` lines, and put the error itself at the end, followed by ``[[node ...]]`` context.
    """
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in reversed(lines):
        if not ln.startswith(("File ", "[[", "Detected at", "Graph execution error")):
            return ln
    return type(exc).__name__


def prepare_experiment(cfg: ExperimentConfig) -> Experiment:
    """Load data, set up the device and seeds, build and check the model. Writes nothing.

    Raises:
        ConfigError / DataError: anything wrong with the config or the data.
    """
    runtime.select_backend(cfg.backend, cfg.device, cfg.deterministic)  # before anything imports Keras
    data = prepare(cfg)
    _check_monitors(cfg, has_val=len(data.x_val) > 0)
    device = runtime.setup(cfg.device, cfg.seed, cfg.deterministic)
    strategy = runtime.distribution_strategy(cfg.distribution, device)
    with runtime.strategy_scope(strategy):  # the model's variables go where the strategy puts them
        model = build_model(cfg, data.prep)
        _dry_run(model, cfg, data)
    return Experiment(cfg=cfg, data=data, model=model, device=device, strategy=strategy)


def resume_experiment(run_dir: Path) -> Experiment:
    """The experiment of an interrupted or crashed run, rebuilt from its ``config.yaml``.

    Raises:
        RunError: not a run directory, or one that completed or is still running.
        DataError: the data changed since the run started (its fingerprint differs).
    """
    info = resumable_info(run_dir)
    exp = prepare_experiment(load_config(Path(run_dir) / "config.yaml"))
    recorded = (info.get("data") or {}).get("fingerprint")
    if recorded and recorded != exp.data.fingerprint:
        raise DataError(f"{exp.data.source}: the data changed since run {Path(run_dir).name} started (fingerprint "
                        f"{exp.data.fingerprint}, the run recorded {recorded}); start a new run instead")
    return exp


def run_info(exp: Experiment) -> dict[str, Any]:
    """What run.json records about an experiment before it starts."""
    data = exp.data
    return {
        "seed": exp.cfg.seed, "device": exp.cfg.device, "device_used": exp.device,
        "deterministic_ops": runtime.determinism_on(exp.cfg.deterministic, exp.device),
        "distribution": runtime.describe_strategy(exp.strategy),
        "params": int(exp.model.count_params()), "versions": runtime.versions(),
        "data": {"source": data.source, "fingerprint": data.fingerprint, "task": data.prep.task,
                 "train": len(data.x_train), "val": len(data.x_val), "test": len(data.x_test),
                 "input_shape": data.prep.input_shape, "classes": data.prep.class_names,
                 **({"columns": data.columns, "notes": data.notes, "inputs": data.prep.input_names,
                     "target_scale": {"mean": data.prep.target_mean, "std": data.prep.target_std},
                     "preprocessing": "preprocessing.json (fitted on the train split)"}
                    if data.columns is not None else {})},
        "config": exp.cfg.to_yaml_dict(),
    }
