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
from dlcli.diagnosis import BOTH, GOOD, OVERFIT, UNDERFIT, UNKNOWN, best_epoch, diagnose, rejudge, verdict_for
from dlcli.errors import ConfigError

runner = CliRunner()


def rows(train: float, val: float | None = None, test: float | None = None, key: str = "accuracy") -> list[dict]:
    out = [{"split": "train", "loss": 0.5, key: train}]
    out += [{"split": "val", "loss": 0.6, key: val}] if val is not None else []
    out += [{"split": "test", "loss": 0.7, key: test}] if test is not None else []
    return out


# ---------------------------------------------------------------------------------------------
# The rule, on synthetic numbers


@pytest.mark.parametrize(("train_error", "held_error", "verdict"), [
    (0.15, 0.16, UNDERFIT),  # high training error, held-out error close to it (high bias)
    (0.01, 0.11, OVERFIT),  # low training error, held-out error much higher (high variance)
    (0.15, 0.30, BOTH),
    (0.005, 0.01, GOOD),
    (0.10, 0.15, GOOD),  # both thresholds are inclusive on the good side
])
def test_verdict_rule(train_error, held_error, verdict):
    assert verdict_for(train_error, held_error, high_error=0.10, max_gap=0.05) == verdict


def test_accuracy_measure_uses_val_and_explains_itself():
    diag = diagnose(rows(train=0.99, val=0.85, test=0.84), {"loss": [1, 0.5, 0.2], "val_loss": [1.0, 0.6, 0.9]})
    assert diag.verdict == OVERFIT and diag.measure == "1 - accuracy" and diag.held_split == "val"
    assert diag.train_error == pytest.approx(0.01) and diag.gap == pytest.approx(0.14)
    assert (diag.best_epoch, diag.best_val_loss, diag.last_val_loss, diag.epochs) == (2, 0.6, 0.9, 3)
    text = diag.text()
    assert text.startswith("diagnosis: overfit (training error 0.0100 is low (<= 0.1); val error 0.1500")
    assert "gap +0.1400 > 0.05" in text
    assert "Validation loss was lowest at epoch 2 of 3 (0.6; 0.9 at the last epoch)" in text


def test_underfit_from_accuracy():
    diag = diagnose(rows(train=0.60, val=0.58), {})
    assert diag.verdict == UNDERFIT and diag.best_epoch is None
    assert "training error 0.4000 is high (> 0.1)" in diag.text()


def test_falls_back_to_test_without_a_validation_split():
    diag = diagnose(rows(train=1.0, test=0.8), {"loss": [0.1]})
    assert diag.held_split == "test" and diag.verdict == OVERFIT


def test_loss_measure_against_the_baseline():
    metrics = [{"split": "train", "loss": 20.0, "mae": 3.0}, {"split": "val", "loss": 26.0, "mae": 4.0}]
    diag = diagnose(metrics, {}, baseline_loss=100.0)  # like mse: loss / variance = 1 - R²
    assert diag.measure == "loss / baseline loss"
    assert diag.train_error == pytest.approx(0.2) and diag.held_error == pytest.approx(0.26)
    assert diag.verdict == BOTH
    assert diagnose(metrics, {}, baseline_loss=1000.0).verdict == GOOD


def test_unknown_without_accuracy_or_baseline():
    diag = diagnose([{"split": "train", "loss": 1.0}, {"split": "val", "loss": 2.0}], {})
    assert diag.verdict == UNKNOWN and "no baseline" in diag.text()
    assert diagnose(rows(train=0.9), {}).verdict == UNKNOWN  # nothing held out to compare with


def test_measure_and_split_settings():
    metrics = [{"split": "train", "loss": 0.01, "accuracy": 0.85}, {"split": "val", "loss": 0.012, "accuracy": 0.84},
               {"split": "test", "loss": 0.5, "accuracy": 0.7}]
    assert diagnose(metrics, {}).verdict == UNDERFIT  # 1 - accuracy on val
    by_loss = diagnose(metrics, {}, DiagnosisConfig(measure="loss"), baseline_loss=1.0)
    assert by_loss.verdict == GOOD and by_loss.train_error == pytest.approx(0.01)
    assert diagnose(metrics, {}, DiagnosisConfig(split="test", high_error=0.2)).verdict == OVERFIT


def test_best_epoch_skips_missing_values():
    assert best_epoch({"val_loss": [0.9, None, 0.4, 0.5]}) == (3, 0.4, 0.5)
    assert best_epoch({"loss": [1.0]}) == (None, None, None)


def test_rejudge_a_saved_diagnosis_with_other_thresholds():
    saved = diagnose(rows(train=0.70, val=0.69), {}).to_dict()
    assert saved["verdict"] == UNDERFIT and saved["text"].startswith("diagnosis: underfit")
    again = rejudge(json.loads(json.dumps(saved)), high_error=0.5)
    assert again.verdict == GOOD and again.high_error == 0.5


# ---------------------------------------------------------------------------------------------
# The thresholds are a config section with documented defaults


def base_config(**sections: Any) -> dict[str, Any]:
    return {"data": {"source": "iris"}, "model": {"layers": [{"type": "Dense", "units": 3}]},
            "compile": {"loss": "sparse_categorical_crossentropy"}, **sections}


def test_config_section_defaults_and_overrides():
    cfg = validate_config(base_config())
    assert (cfg.diagnosis.high_error, cfg.diagnosis.max_gap, cfg.diagnosis.measure) == (0.10, 0.05, "auto")
    cfg = validate_config(base_config(diagnosis={"high_error": 0.3, "max_gap": 0.2, "split": "test"}))
    assert (cfg.diagnosis.high_error, cfg.diagnosis.max_gap, cfg.diagnosis.split) == (0.3, 0.2, "test")
    schema = ExperimentConfig.model_json_schema()["$defs"]["DiagnosisConfig"]["properties"]
    assert "high bias" in schema["high_error"]["description"] and schema["high_error"]["default"] == 0.1


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
    code = ("import sys, dlcli.diagnosis\n"
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


def test_tiny_model_for_one_epoch_underfits(tmp_path):
    cfg = digits("tiny", [{"type": "Dense", "units": 2, "activation": "relu"},
                          {"type": "Dense", "units": 10, "activation": "softmax"}], 1,
                 {"train": 0.7, "val": 0.15, "test": 0.15})
    stdout, run = train(tmp_path, cfg)
    line = diagnosis_line(stdout)
    assert line.startswith("diagnosis: underfit (training error") and "is high (> 0.1)" in line
    lines = stdout.splitlines()
    assert lines.index(line) > next(i for i, t in enumerate(lines) if t.startswith("test "))  # after the table
    saved = json.loads((run / "diagnosis.json").read_text())
    assert saved["verdict"] == UNDERFIT and saved["train_error"] > 0.5 and saved["best_epoch"] == 1
    png = (run / "learning_curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000


def test_large_model_on_a_tiny_train_split_overfits(tmp_path):
    # ~90 training images, two 256-unit layers, 40 epochs: train accuracy 1.0, validation ~0.89 (about 7 s).
    cfg = digits("large", [{"type": "Dense", "units": 256, "activation": "relu"},
                           {"type": "Dense", "units": 256, "activation": "relu"},
                           {"type": "Dense", "units": 10, "activation": "softmax"}], 40,
                 {"train": 0.05, "val": 0.475, "test": 0.475})
    stdout, run = train(tmp_path, cfg)
    line = diagnosis_line(stdout)
    assert line.startswith("diagnosis: overfit (training error") and "much higher" in line
    assert "Validation loss was lowest at epoch" in line
    saved = json.loads((run / "diagnosis.json").read_text())
    assert saved["verdict"] == OVERFIT and saved["train_error"] < 0.02 and saved["gap"] > 0.05
    assert 1 <= saved["best_epoch"] <= 40
    shown = runner.invoke(app, ["runs", "show", run.name, "--runs-dir", str(tmp_path / "runs")])
    assert shown.exit_code == 0 and diagnosis_line(shown.stdout.split("\nmetrics:")[-1]) == line
