"""The fit diagnosis: underfit / overfit / good fit, its thresholds, and what train and `runs show` print."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from dlcli.cli import app
from dlcli.config import DiagnosisConfig, ExperimentConfig, validate_config
from dlcli.runs.diagnosis import BOTH, GOOD, OVERFIT, UNDERFIT, UNKNOWN, best_epoch, diagnose, rejudge, verdict_for
from dlcli.errors import ConfigError

runner = CliRunner()


def rows(train: float, val: float | None = None, test: float | None = None, key: str = "accuracy") -> list[dict]:
    out = [{"split": "train", "loss": 0.5, key: train}]
    out += [{"split": "val", "loss": 0.6, key: val}] if val is not None else []
    out += [{"split": "test", "loss": 0.7, key: test}] if test is not None else []
    return out


def baseline(accuracy: float = 0.62, loss: float = 0.66) -> list[dict]:
    """The trivial predictor's scores on every split (always the majority class: 62% on Titanic)."""
    return [{"split": s, "loss": loss, "accuracy": accuracy} for s in ("train", "val", "test")]


# ---------------------------------------------------------------------------------------------
# The rule, on synthetic numbers


@pytest.mark.parametrize(("train_error", "held_error", "verdict"), [
    (0.6, 0.7, UNDERFIT),  # high training relative error, held-out one close to it (high bias)
    (0.05, 0.40, OVERFIT),  # low training relative error, held-out one much higher (high variance)
    (0.6, 0.9, BOTH),
    (0.1, 0.2, GOOD),
    (0.5, 0.75, GOOD),  # both thresholds are inclusive on the good side
])
def test_verdict_rule(train_error, held_error, verdict):
    assert verdict_for(train_error, held_error, high_error=0.5, max_gap=0.25) == verdict


def test_a_titanic_like_model_is_a_good_fit():
    # 83% on train and 80% on validation, where always answering the majority class gets 62%: the old
    # fixed threshold (error above 0.10) called this underfit.
    diag = diagnose(rows(train=0.83, val=0.80, test=0.79), {}, baseline=baseline(0.62))
    assert diag.verdict == GOOD and diag.measure == "1 - accuracy" and diag.held_split == "val"
    assert diag.train_relative == pytest.approx(0.17 / 0.38) and diag.gap == pytest.approx(0.03 / 0.38)
    assert diag.text() == ("diagnosis: good fit (training error 0.170 = 0.447 of the baseline's 0.380, low (<= 0.5); "
                           "val error 0.200 = 0.526 of the baseline's 0.380, close (gap +0.079 <= 0.15); "
                           "error = 1 - accuracy)")


def test_a_model_no_better_than_the_baseline_underfits():
    diag = diagnose(rows(train=0.62, val=0.61), {}, baseline=baseline(0.62))
    assert diag.verdict == UNDERFIT
    assert "training error 0.380 = 1.000 of the baseline's 0.380, high (> 0.5)" in diag.text()


def test_accuracy_measure_uses_val_and_explains_itself():
    # Digits: ten balanced classes, so the baseline gets 90% wrong.
    diag = diagnose(rows(train=0.99, val=0.85, test=0.84), {"loss": [1, 0.5, 0.2], "val_loss": [1.0, 0.6, 0.9]},
                    baseline=baseline(0.10))
    assert diag.verdict == OVERFIT and diag.held_split == "val"
    assert diag.train_error == pytest.approx(0.01) and diag.gap == pytest.approx(0.14 / 0.9)
    assert (diag.best_epoch, diag.best_val_loss, diag.last_val_loss, diag.epochs) == (2, 0.6, 0.9, 3)
    text = diag.text()
    assert text.startswith("diagnosis: overfit (training error 0.010 = 0.011 of the baseline's 0.900, low (<= 0.5); "
                           "val error 0.150 = 0.167 of the baseline's 0.900, much higher (gap +0.156 > 0.15)")
    assert "Validation loss was lowest at epoch 2 of 3 (0.6; 0.9 at the last epoch)" in text


def test_each_split_is_measured_against_the_baseline_on_that_split():
    base = [{"split": "train", "accuracy": 0.6}, {"split": "val", "accuracy": 0.5}]
    diag = diagnose(rows(train=0.8, val=0.75), {}, baseline=base)
    assert (diag.train_baseline, diag.held_baseline) == pytest.approx((0.4, 0.5))
    assert (diag.train_relative, diag.held_relative) == pytest.approx((0.5, 0.5)) and diag.verdict == GOOD


def test_falls_back_to_test_without_a_validation_split():
    diag = diagnose(rows(train=1.0, test=0.8), {"loss": [0.1]}, baseline=baseline())
    assert diag.held_split == "test" and diag.verdict == OVERFIT


def test_loss_measure_against_the_baseline():
    metrics = [{"split": "train", "loss": 60.0, "mae": 6.0}, {"split": "val", "loss": 80.0, "mae": 7.0}]
    # For mse, the mean predictor's loss is the variance, so loss / its loss = 1 - R².
    mean_predictor = [{"split": s, "loss": 100.0, "mae": 8.0} for s in ("train", "val")]
    diag = diagnose(metrics, {}, baseline=mean_predictor)
    assert diag.measure == "loss" and diag.verdict == BOTH
    assert (diag.train_relative, diag.held_relative) == pytest.approx((0.6, 0.8))
    assert "training error 60.000 = 0.600 of the baseline's 100.000, high (> 0.5)" in diag.text()
    better = [{"split": s, "loss": 1000.0} for s in ("train", "val")]
    assert diagnose(metrics, {}, baseline=better).verdict == GOOD


def test_unknown_without_a_baseline_or_a_held_out_split():
    diag = diagnose(rows(train=0.9, val=0.8), {})
    assert diag.verdict == UNKNOWN and "no baseline scores" in diag.text()
    assert diagnose(rows(train=0.9), {}, baseline=baseline()).verdict == UNKNOWN  # nothing held out
    one_class = diagnose(rows(train=1.0, val=1.0), {}, baseline=baseline(1.0))
    assert one_class.verdict == UNKNOWN and "the baseline makes no errors on train" in one_class.text()
    no_accuracy = diagnose(rows(train=0.9, val=0.8, key="mae"), {}, DiagnosisConfig(measure="accuracy"), baseline())
    assert no_accuracy.verdict == UNKNOWN and "no accuracy was tracked" in no_accuracy.text()


def test_measure_and_split_settings():
    metrics = [{"split": "train", "loss": 0.2, "accuracy": 0.7}, {"split": "val", "loss": 0.25, "accuracy": 0.68},
               {"split": "test", "loss": 0.5, "accuracy": 0.5}]
    base = baseline(accuracy=0.5, loss=1.0)
    assert diagnose(metrics, {}, baseline=base).verdict == UNDERFIT  # 1 - accuracy: 0.6 of the baseline's
    by_loss = diagnose(metrics, {}, DiagnosisConfig(measure="loss"), base)
    assert by_loss.verdict == GOOD and by_loss.train_relative == pytest.approx(0.2)
    assert diagnose(metrics, {}, DiagnosisConfig(split="test", high_error=0.7), base).verdict == OVERFIT


def test_best_epoch_skips_missing_values():
    assert best_epoch({"val_loss": [0.9, None, 0.4, 0.5]}) == (3, 0.4, 0.5)
    assert best_epoch({"loss": [1.0]}) == (None, None, None)


def test_rejudge_a_saved_diagnosis_with_other_thresholds():
    saved = diagnose(rows(train=0.70, val=0.69), {}, baseline=baseline(0.6)).to_dict()
    assert saved["verdict"] == UNDERFIT and saved["text"].startswith("diagnosis: underfit")
    assert saved["train_relative"] == pytest.approx(0.75) and saved["train_baseline"] == pytest.approx(0.4)
    again = rejudge(json.loads(json.dumps(saved)), high_error=0.8)
    assert again.verdict == GOOD and again.high_error == 0.8 and "low (<= 0.8)" in again.text()


def test_a_diagnosis_json_from_before_baselines_still_reads():
    old = {"verdict": "underfit", "measure": "1 - accuracy", "train_error": 0.3, "held_split": "val",
           "held_error": 0.31, "gap": 0.01, "high_error": 0.1, "max_gap": 0.05, "baseline_loss": None,
           "best_epoch": 3, "best_val_loss": 0.5, "last_val_loss": 0.6, "epochs": 4, "notes": [], "text": "..."}
    diag = rejudge(old)  # judged as it was: its thresholds applied to the errors themselves
    assert diag.verdict == UNDERFIT and "training error 0.3000 is high (> 0.1)" in diag.text()
    assert rejudge(old, high_error=0.5).verdict == GOOD


# ---------------------------------------------------------------------------------------------
# The thresholds are a config section with documented defaults


def base_config(**sections: Any) -> dict[str, Any]:
    return {"data": {"source": "iris"}, "model": {"layers": [{"type": "Dense", "units": 3}]},
            "compile": {"loss": "sparse_categorical_crossentropy"}, **sections}


def test_config_section_defaults_and_overrides():
    cfg = validate_config(base_config())
    assert (cfg.diagnosis.high_error, cfg.diagnosis.max_gap, cfg.diagnosis.measure) == (0.5, 0.15, "auto")
    cfg = validate_config(base_config(diagnosis={"high_error": 0.3, "max_gap": 0.2, "split": "test"}))
    assert (cfg.diagnosis.high_error, cfg.diagnosis.max_gap, cfg.diagnosis.split) == (0.3, 0.2, "test")
    schema = ExperimentConfig.model_json_schema()["$defs"]["DiagnosisConfig"]["properties"]
    assert "high bias" in schema["high_error"]["description"] and schema["high_error"]["default"] == 0.5
    assert "baseline" in schema["high_error"]["description"]


@pytest.mark.parametrize(("section", "path", "text"), [
    ({"high_eror": 0.2}, "diagnosis", "did you mean 'high_error'"),
    ({"max_gap": -1}, "diagnosis.max_gap", "greater than or equal to 0"),
    ({"measure": "f1"}, "diagnosis.measure", "allowed: auto, accuracy, loss"),
])
def test_config_section_errors(section, path, text):
    with pytest.raises(ConfigError) as info:
        validate_config(base_config(diagnosis=section))
    assert info.value.path.startswith(path) and text in str(info.value)


def test_diagnosis_module_stays_light():
    code = ("import sys, dlcli.runs.diagnosis\n"
            "print(','.join(m for m in ('tensorflow', 'numpy', 'pandas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


# ---------------------------------------------------------------------------------------------
# Real runs: a deliberately underfit and a deliberately overfit model


def digits(name: str, layers: list[dict[str, Any]], epochs: int, split: dict[str, float]) -> dict[str, Any]:
    return {"name": name, "seed": 42,
            "data": {"source": "digits", "split": split, "scale": "standard"},
            "model": {"layers": layers},
            "compile": {"optimizer": {"type": "adam", "learning_rate": 0.001},
                        "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
            "fit": {"epochs": epochs, "batch_size": 32}}


def train(tmp: Path, cfg: dict[str, Any]) -> tuple[str, Path]:
    config = tmp / f"{cfg['name']}.yaml"
    config.write_text(yaml.safe_dump(cfg))
    result = runner.invoke(app, ["train", str(config), "--runs-dir", str(tmp / "runs")])
    assert result.exit_code == 0, result.output + repr(result.exception)
    (run,) = [p for p in (tmp / "runs").iterdir() if p.is_dir()]
    return result.stdout, run


def diagnosis_line(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith("diagnosis: "))


@pytest.mark.slow
def test_tiny_model_for_one_epoch_underfits(tmp_path):
    cfg = digits("tiny", [{"type": "Dense", "units": 2, "activation": "relu"},
                          {"type": "Dense", "units": 10, "activation": "softmax"}], 1,
                 {"train": 0.7, "val": 0.15, "test": 0.15})
    stdout, run = train(tmp_path, cfg)
    line = diagnosis_line(stdout)
    assert line.startswith("diagnosis: underfit (training error") and "of the baseline's" in line
    assert "high (> 0.5)" in line
    lines = stdout.splitlines()
    assert lines.index(line) > next(i for i, t in enumerate(lines) if t.startswith("test "))  # after the table
    saved = json.loads((run / "diagnosis.json").read_text())
    assert saved["verdict"] == UNDERFIT and saved["train_error"] > 0.5 and saved["best_epoch"] == 1
    assert 0.85 < saved["train_baseline"] < 0.95  # ten balanced classes: the majority class is ~10%
    png = (run / "learning_curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000


@pytest.mark.slow
def test_large_model_on_a_tiny_train_split_overfits(tmp_path):
    # ~36 training images, two 256-unit layers, 40 epochs: train accuracy 1.0, validation ~0.78, so the
    # validation error is ~0.25 of the baseline's and the training error 0 (about 7 s).
    cfg = digits("large", [{"type": "Dense", "units": 256, "activation": "relu"},
                           {"type": "Dense", "units": 256, "activation": "relu"},
                           {"type": "Dense", "units": 10, "activation": "softmax"}], 40,
                 {"train": 0.02, "val": 0.49, "test": 0.49})
    stdout, run = train(tmp_path, cfg)
    line = diagnosis_line(stdout)
    assert line.startswith("diagnosis: overfit (training error") and "much higher" in line
    assert "Validation loss was lowest at epoch" in line
    saved = json.loads((run / "diagnosis.json").read_text())
    assert saved["verdict"] == OVERFIT and saved["train_error"] < 0.02 and saved["gap"] > 0.15
    assert 1 <= saved["best_epoch"] <= 40
    shown = runner.invoke(app, ["runs", "show", run.name, "--runs-dir", str(tmp_path / "runs")])
    assert shown.exit_code == 0 and diagnosis_line(shown.stdout.split("\nmetrics:")[-1]) == line
