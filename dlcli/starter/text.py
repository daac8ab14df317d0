"""The text of a starter config: commented YAML that trains as written, each choice with its reason."""

from __future__ import annotations

from typing import Any

import yaml

from dlcli.config import BUNDLED_DATASETS, ExperimentConfig
from dlcli.config.jsonschema import SCHEMA_FILE
from dlcli.starter.survey import MAX_IMAGE_SIDE, DataSummary, one_line

# The schema's defaults, written out so that the user sees them (the schema owns the values).
SEED = ExperimentConfig.model_fields["seed"].default
BATCH_SIZE = ExperimentConfig.model_fields["fit"].default_factory().batch_size


def starter_text(s: DataSummary, name: str, command: str, config_arg: str, modeline: str | None) -> str:
    """The commented YAML of a starter config for the data ``s`` describes.

    Args:
        s: what the survey found and chose.
        name: the run name (the output file's stem).
        command: the ``dlcli init`` command line, quoted into the header.
        config_arg: the output path as the commands in the header give it (shell-quoted).
        modeline: the yaml-language-server line, or None when there is no schema file to point at.
    """
    lines = [modeline] if modeline else []
    lines += [f"# Starter config written by: {command}",
              "# It trains as it is; every value is a starting point to change.",
              *[f"# {one_line(line)}" for line in s.about]]
    if s.classes is not None:
        lines.append(f"# {len(s.classes)} classes (samples): {one_line(_class_counts(s))}")
    lines += [f"# Train:         dlcli train {config_arg}",
              f"# All settings:  dlcli config show {config_arg}   (defaults filled in)"]
    if modeline is None:
        lines.append(f"# Editor completion: `dlcli schema > {SCHEMA_FILE}` and make the first line "
                     f"`# yaml-language-server: $schema={SCHEMA_FILE}`")
    lines += [f"name: {_flow(name)}", _c(f"seed: {SEED}", "same seed, same numbers"), "data:"]
    lines += _data_lines(s)
    lines += ["model:", "  layers:"]
    lines += _image_layers(s) if s.task == "image" else _dense_layers(s)
    lines += _compile_lines(s)
    epochs, patience = (30, 5) if s.task == "image" else (100, 10)
    lines += ["fit:",
              _c(f"  batch_size: {BATCH_SIZE}", "samples per gradient step"),
              _c(f"  epochs: {epochs}", "at most; early stopping usually ends sooner"),
              _c(f"  early_stopping: {{monitor: val_loss, patience: {patience}, restore_best_weights: true}}",
                 "then keep the best epoch")]
    return "\n".join(lines) + "\n"


def _data_lines(s: DataSummary) -> list[str]:
    where = "bundled with scikit-learn" if s.source in BUNDLED_DATASETS else "relative to this file"
    lines = [_c(f"  source: {_flow(s.source)}", where)]
    if s.target is not None:
        lines.append(_c(f"  target: {_flow(s.target)}", "the column to predict"))
    if s.image_size is not None:
        lines.append(_c(f"  image_size: {_flow(s.image_size)}", "[height, width]: every image is resized to this"))
        lines.append(_c(f"  color_mode: {s.color_mode}", "rgb (3 channels) or grayscale (1)"))
    if s.task == "image":
        return lines + [_c("  split: {train: 0.7, val: 0.15, test: 0.15}", "Keras's seeded split of the files "
                           "(not stratified)"),
                        _c(f"  scale: {s.scale}", s.scale_note)]
    if s.columns is not None:
        lines.append(_c("  columns:", "each column's type, and why; `dlcli config show` prints every option"))
        lines += [_c(f"    {_flow(p.name)}: {'ignore' if p.spec is None else p.spec.type}", one_line(p.reason))
                  for p in s.columns]
    if s.classes is None:
        lines.append(_c("  target_scale: standard", "learn a standardised target; loss, metrics and predictions "
                        "stay in its units"))
    stratify = _can_stratify(s)
    why = ("keep class proportions equal in each split" if stratify else
           "a regression target has no classes" if s.classes is None else
           "some class has too few samples to appear in every split")
    return lines + [_c(f"  split: {{train: 0.7, val: 0.15, test: 0.15, stratify: {str(stratify).lower()}}}", why),
                    _c(f"  scale: {s.scale}", s.scale_note)]


def _can_stratify(s: DataSummary) -> bool:
    """Whether scikit-learn can stratify the 0.7 / 0.15 / 0.15 split: each split must be able to hold every
    class (dlcli cuts the test part first, then val from the rest)."""
    if s.counts is None:
        return False
    test = round(0.15 * s.samples)
    val = round(0.15 / 0.85 * (s.samples - test))
    return min(s.counts) >= 5 and min(test, val) >= len(s.counts)


def _dense_layers(s: DataSummary) -> list[str]:
    lines = [_c("    - {type: Flatten}", "each sample is an array: flatten it into one vector")] if s.flatten else []
    lines += ["    - {type: Dense, units: 64, activation: relu}",
              _c("    - {type: Dropout, rate: 0.2}", "drops 20% of the units while training, against overfitting"),
              "    - {type: Dense, units: 32, activation: relu}",
              _output_layer(s)]
    return lines


def _image_layers(s: DataSummary) -> list[str]:
    lines = [_c("    # - {type: RandomFlip, mode: horizontal}", "augmentation (training only): uncomment if a "
                "mirrored image is still the same class")]
    side = min(s.image_size or [MAX_IMAGE_SIDE])
    for filters in (16, 32):
        lines.append(f"    - {{type: Conv2D, filters: {filters}, kernel_size: 3, padding: same, activation: relu}}")
        if side >= 4:  # keep at least 2x2 pixels for the next convolution
            lines.append(_c("    - {type: MaxPooling2D, pool_size: 2}", "halves height and width"))
            side //= 2
    lines += ["    - {type: Conv2D, filters: 64, kernel_size: 3, padding: same, activation: relu}",
              _c("    - {type: GlobalAveragePooling2D}", "one vector per image, whatever its size"),
              _c("    - {type: Dropout, rate: 0.3}", "against overfitting"),
              _output_layer(s)]
    return lines


def _output_layer(s: DataSummary) -> str:
    if s.classes is None:
        return _c("    - {type: Dense, units: 1}", "linear output: the predicted number (standardised, mapped back "
                  "by data.target_scale)")
    if s.binary:
        return _c("    - {type: Dense, units: 1, activation: sigmoid}",
                  f"probability of class {one_line(repr(s.classes[1]))} (vs {one_line(repr(s.classes[0]))})")
    return _c(f"    - {{type: Dense, units: {len(s.classes)}, activation: softmax}}", "one probability per class")


def _compile_lines(s: DataSummary) -> list[str]:
    lines = ["compile:", _c("  optimizer: {type: adam, learning_rate: 1.0e-3}", "adam's default rate")]
    if s.classes is None:
        return lines + [_c("  loss: mae", "mean absolute error: robust to outliers and long tails (prices); mse "
                           "punishes large errors more"),
                        _c("  metrics: [mae, mse]", "in the target's units (mse: squared units)")]
    if s.binary:
        return lines + ["  # Two classes: one sigmoid output with binary_crossentropy rather than a 2-unit softmax.",
                        "  # The same model in effect, but the labels stay one 0/1 column, so AUC can be reported.",
                        _c("  loss: binary_crossentropy", f"labels: {one_line(repr(s.classes[0]))} -> 0, "
                           f"{one_line(repr(s.classes[1]))} -> 1"),
                        _c("  metrics: [accuracy, auc]", "auc: area under the ROC curve, 0.5 = guessing")]
    return lines + [_c("  loss: sparse_categorical_crossentropy", f"labels are class indices 0..{len(s.classes) - 1}"),
                    _c("  metrics: [accuracy]", "add precision, recall, auc with categorical_crossentropy")]


def _class_counts(s: DataSummary, limit: int = 10) -> str:
    pairs = [f"{name} ({count})" for name, count in zip(s.classes or [], s.counts or [])]
    return ", ".join(pairs[:limit]) + (f", ... ({len(pairs)} in all)" if len(pairs) > limit else "")


def _flow(value: Any) -> str:
    """``value`` as one line of YAML flow style, quoted where YAML needs it."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, allow_unicode=True).strip()
    return text.removesuffix("...").strip()


def _c(code: str, comment: str, column: int = 48) -> str:
    """A YAML line with its comment aligned at ``column`` (or two spaces after a longer line)."""
    if not comment:
        return code
    return f"{code.ljust(column - 1)} # {comment}" if len(code) < column - 1 else f"{code}  # {comment}"
