"""`fit.tensorboard`: Keras's TensorBoard logs under runs/<run-id>/tensorboard/, and keras-tuner's HParams
data for `dlcli tune`, read back with TensorBoard's own event reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import only_run, read_csv, tiny_config

pytestmark = pytest.mark.slow  # end-to-end runs: not in the quick loop (python -m pytest -m "not slow")


def events(log_dir: Path) -> object:
    """TensorBoard's EventAccumulator over one log directory, loaded."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    accumulator.Reload()
    return accumulator


def scalar_values(log_dir: Path, tag: str) -> list[float]:
    """The values of one scalar (Keras writes scalars as tensors), in step order."""
    import tensorflow as tf

    found = sorted(events(log_dir).Tensors(tag), key=lambda e: e.step)
    return [float(tf.make_ndarray(e.tensor_proto)) for e in found]




def test_train_writes_epoch_loss_for_train_and_validation(cli, write_config, runs_dir):
    cfg = tiny_config()
    cfg["fit"]["tensorboard"] = True
    result = cli("train", write_config(cfg))
    assert result.exit_code == 0, result.output
    run = only_run(runs_dir)
    logs = run / "tensorboard"
    assert f"tensorboard --logdir {logs}" in result.output

    history = read_csv(run / "history.csv")
    for split, column in (("train", "loss"), ("validation", "val_loss")):
        assert list((logs / split).glob("events.out.tfevents.*")), split
        values = scalar_values(logs / split, "epoch_loss")
        assert values == pytest.approx([float(row[column]) for row in history], rel=1e-6)
    assert len(scalar_values(logs / "train", "epoch_accuracy")) == 2


def test_tensorboard_options_reach_keras(cli, write_config, runs_dir):
    cfg = tiny_config()
    cfg["fit"]["tensorboard"] = {"histogram_freq": 1, "write_graph": False}
    result = cli("train", write_config(cfg))
    assert result.exit_code == 0, result.output
    tags = events(only_run(runs_dir) / "tensorboard" / "train").Tags()["tensors"]
    assert any(tag.endswith("kernel/histogram") for tag in tags), tags


def test_no_tensorboard_directory_unless_asked(cli, write_config, runs_dir):
    result = cli("train", write_config(tiny_config()))
    assert result.exit_code == 0, result.output
    assert not (only_run(runs_dir) / "tensorboard").exists()
    assert "tensorboard --logdir" not in result.output


@pytest.mark.parametrize("value, message", [
    ({"profile_batch": [5, 2]}, "fit.tensorboard.profile_batch: expected one batch number or [start, stop]"),
    ({"histgram_freq": 1}, "fit.tensorboard.histgram_freq: unknown key 'histgram_freq'. did you mean "
                           "'histogram_freq'?"),
    ({"update_freq": 0}, "fit.tensorboard.update_freq: must be at least 1, got 0"),
    ({"histogram_freq": -1}, "fit.tensorboard.histogram_freq: input should be greater than or equal to 0"),
])
def test_bad_tensorboard_settings_are_one_line(cli, write_config, runs_dir, value, message):
    cfg = tiny_config()
    cfg["fit"]["tensorboard"] = value
    result = cli("train", write_config(cfg))
    assert result.exit_code == 2
    assert message in result.output
    assert not runs_dir.exists() or not [p for p in runs_dir.iterdir() if p.is_dir()]


def tune_config() -> dict:
    cfg = tiny_config(name="tinytune")
    cfg["fit"]["tensorboard"] = True
    cfg["tune"] = {"strategy": "grid", "objective": "val_accuracy", "space": {"model.layers.0.units": [4, 8]}}
    return cfg


def test_tune_writes_hparams_for_each_trial(cli, write_config, runs_dir):
    pytest.importorskip("dlcli.tune", reason="dlcli tune is not in this checkout")
    from tensorboard.plugins.hparams import plugin_data_pb2

    result = cli("tune", write_config(tune_config()))
    assert result.exit_code == 0, result.output
    run = only_run(runs_dir)
    trials = read_csv(run / "trials.csv")
    assert len(trials) == 2
    for trial in trials:
        log_dir = run / "tensorboard" / trial["trial_id"] / "execution0"
        content = events(log_dir).PluginTagToContent("hparams")  # keras-tuner's HParams data
        start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
        assert start.session_start_info.hparams["model.layers.0.units"].number_value == int(
            trial["model.layers.0.units"])
        assert len(scalar_values(log_dir / "validation", "epoch_loss")) == 2
