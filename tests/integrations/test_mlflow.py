"""`--mlflow` / `tracking.mlflow`: runs logged to a real local MLflow store in tmp_path, read back with
MLflow's own client. MLflow comes with the test extra (`pip install -e '.[test]'`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from dlcli.train.backup import backup_epoch
from tests.conftest import only_run, read_csv, tiny_config

pytestmark = pytest.mark.slow  # end-to-end runs: not in the quick loop (python -m pytest -m "not slow")


@pytest.fixture(autouse=True)
def _no_ambient_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own MLflow settings must not redirect the tests; MLFLOW_ALLOW_FILE_STORE, which dlcli
    # sets for a file store, is removed again after each test.
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_ALLOW_FILE_STORE"):
        monkeypatch.setenv(name, "unset-by-test")
        monkeypatch.delenv(name)




def no_run(runs_dir: Path) -> bool:
    return not runs_dir.exists() or not [p for p in runs_dir.iterdir() if p.is_dir()]


def sqlite_uri(path: Path) -> str:
    return f"sqlite:///{path}"


def client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(uri)


def recorded(run_dir: Path) -> dict:
    """What run.json says about the MLflow run."""
    return json.loads((run_dir / "run.json").read_text())["mlflow"]


def test_train_logs_params_epochs_scores_tags_and_model(cli, write_config, runs_dir, tmp_path):
    uri = sqlite_uri(tmp_path / "store" / "mlflow.db")
    cfg = tiny_config()
    cfg["fit"]["epochs"] = 3
    cfg["tracking"] = {"mlflow": {"uri": uri, "experiment": "dlcli-tests"}}
    result = cli("train", write_config(cfg))
    assert result.exit_code == 0, result.output
    run_dir = only_run(runs_dir)
    logged = recorded(run_dir)
    assert logged["tracking_uri"] == uri and logged["experiment"] == "dlcli-tests"
    assert f"mlflow: run {logged['run_id']}" in result.output

    mlflow_client = client(uri)
    run = mlflow_client.get_run(logged["run_id"])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == run_dir.name
    assert mlflow_client.get_experiment(run.info.experiment_id).name == "dlcli-tests"
    params = run.data.params
    assert params["fit.epochs"] == "3"
    assert params["model.layers.0.units"] == "8"
    assert params["compile.loss"] == "sparse_categorical_crossentropy"
    tags = run.data.tags
    assert tags["dlcli.run_id"] == run_dir.name
    assert tags["dlcli.run_dir"] == str(run_dir.resolve())
    assert tags["dlcli.command"] == "train"

    history = read_csv(run_dir / "history.csv")
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        points = sorted(mlflow_client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)
        assert [m.step for m in points] == [1, 2, 3], key  # one entry per epoch, numbered as in history.csv
        assert [m.value for m in points] == pytest.approx([float(r[key]) for r in history], rel=1e-6)

    for row in read_csv(run_dir / "metrics.csv"):
        prefix = "baseline_" if row["split"] == "baseline" else f"final_{row['split']}_"
        for key in ("loss", "accuracy"):
            assert run.data.metrics[f"{prefix}{key}"] == pytest.approx(float(row[key]), rel=1e-6)
    assert "baseline_accuracy" in run.data.metrics and "final_baseline_accuracy" not in run.data.metrics

    artifacts = {a.path for a in mlflow_client.list_artifacts(run.info.run_id, "dlcli")}
    assert {"dlcli/config.yaml", "dlcli/metrics.csv", "dlcli/history.csv"} <= artifacts

    # The model: an MLflow Keras model linked to the run, predicting what the run's model.keras predicts.
    import keras
    import mlflow

    model_id = logged["model_uri"].removeprefix("models:/")
    assert mlflow_client.get_logged_model(model_id).source_run_id == run.info.run_id
    assert "data" in {a.path for a in mlflow_client.list_logged_model_artifacts(model_id)}
    mlflow.set_tracking_uri(uri)
    from_mlflow = mlflow.keras.load_model(logged["model_uri"])
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    expected = keras.models.load_model(run_dir / "model.keras").predict(x, verbose=0)
    np.testing.assert_allclose(from_mlflow.predict(x, verbose=0), expected, rtol=1e-6)


def test_mlflow_flag_logs_to_mlruns_in_the_current_directory(cli, write_config, runs_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("train", write_config(tiny_config()), "--mlflow")
    assert result.exit_code == 0, result.output
    database = tmp_path / "mlruns" / "mlflow.db"
    assert database.is_file()
    run_dir = only_run(runs_dir)
    logged = recorded(run_dir)
    assert logged["tracking_uri"] == sqlite_uri(database)
    assert logged["experiment"] == "tiny"  # the run name
    run = client(sqlite_uri(database)).get_run(logged["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["tracking.mlflow.enabled"] == "True"
    # The artifacts sit beside the database.
    assert list((tmp_path / "mlruns" / "artifacts").rglob("model.keras"))


def test_enabled_false_keeps_the_settings_until_mlflow_is_asked_for(cli, write_config, runs_dir, tmp_path):
    database = tmp_path / "kept" / "mlflow.db"
    cfg = tiny_config()
    cfg["tracking"] = {"mlflow": {"enabled": False, "uri": sqlite_uri(database), "log_model": False}}
    config = write_config(cfg)
    result = cli("train", config)
    assert result.exit_code == 0, result.output
    assert not database.exists()
    assert "mlflow" not in json.loads((only_run(runs_dir) / "run.json").read_text())

    result = cli("train", config, "--mlflow")
    assert result.exit_code == 0, result.output
    runs = client(sqlite_uri(database)).search_runs(
        [client(sqlite_uri(database)).get_experiment_by_name("tiny").experiment_id])
    assert len(runs) == 1
    assert runs[0].outputs is None or not runs[0].outputs.model_outputs  # log_model: false


def test_a_directory_uri_uses_mlflows_file_store(cli, write_config, runs_dir, tmp_path):
    store = tmp_path / "filestore"
    cfg = tiny_config()
    cfg["tracking"] = {"mlflow": {"uri": str(store), "log_model": False}}
    result = cli("train", write_config(cfg))
    assert result.exit_code == 0, result.output
    logged = recorded(only_run(runs_dir))
    run = client(str(store)).get_run(logged["run_id"])
    assert run.info.status == "FINISHED"
    assert len(client(str(store)).get_metric_history(run.info.run_id, "loss")) == 2


def test_tune_logs_the_search_and_one_nested_run_per_trial(cli, write_config, runs_dir, tmp_path):
    pytest.importorskip("dlcli.tune", reason="dlcli tune is not in this checkout")
    uri = sqlite_uri(tmp_path / "store.db")
    cfg = tiny_config(name="tinytune")
    cfg["tracking"] = {"mlflow": {"uri": uri}}
    cfg["tune"] = {"strategy": "grid", "objective": "val_accuracy", "space": {"model.layers.0.units": [4, 8]}}
    result = cli("tune", write_config(cfg))
    assert result.exit_code == 0, result.output
    run_dir = only_run(runs_dir)
    logged = recorded(run_dir)
    mlflow_client = client(uri)
    parent = mlflow_client.get_run(logged["run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["dlcli.command"] == "tune"
    assert parent.data.params["tune.strategy"] == "grid"
    test_row = next(r for r in read_csv(run_dir / "metrics.csv") if r["split"] == "test")
    assert parent.data.metrics["final_test_accuracy"] == pytest.approx(float(test_row["accuracy"]), rel=1e-6)
    trials = read_csv(run_dir / "trials.csv")
    assert parent.data.metrics["best_val_accuracy"] == pytest.approx(float(trials[0]["best_val_accuracy"]))
    assert mlflow_client.get_logged_model(logged["model_uri"].removeprefix("models:/")).source_run_id == \
        parent.info.run_id

    children = mlflow_client.search_runs([parent.info.experiment_id],
                                         filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 2
    by_trial = {c.data.tags["dlcli.trial_id"]: c for c in children}
    for trial in trials:
        child = by_trial[trial["trial_id"]]
        assert child.info.status == "FINISHED"
        assert child.data.params["model.layers.0.units"] == trial["model.layers.0.units"]
        history = mlflow_client.get_metric_history(child.info.run_id, "val_accuracy")
        assert sorted(m.step for m in history) == [1, 2]


@pytest.mark.parametrize("how", ["--mlflow", "config"])
def test_without_mlflow_installed_train_stops_with_the_pip_line(cli, write_config, runs_dir, monkeypatch, how):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what `import mlflow` sees when it is not installed
    cfg = tiny_config()
    if how == "config":
        cfg["tracking"] = {"mlflow": True}
    result = cli("train", write_config(cfg), *(["--mlflow"] if how == "--mlflow" else []))
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: --mlflow / tracking.mlflow needs MLflow, which is not installed here; install it with: "
        "pip install 'dlcli[mlflow]'"]
    assert no_run(runs_dir)


def test_without_mlflow_installed_tune_stops_before_the_search(cli, write_config, runs_dir, monkeypatch):
    pytest.importorskip("dlcli.tune", reason="dlcli tune is not in this checkout")
    monkeypatch.setitem(sys.modules, "mlflow", None)
    cfg = tiny_config()
    cfg["tune"] = {"space": {"model.layers.0.units": [4, 8]}}
    result = cli("tune", write_config(cfg), "--mlflow")
    assert result.exit_code == 2
    assert "pip install 'dlcli[mlflow]'" in result.output
    assert no_run(runs_dir)


def test_an_unusable_store_stops_before_the_run_starts(cli, write_config, runs_dir):
    cfg = tiny_config()
    cfg["tracking"] = {"mlflow": {"uri": "nosuchscheme://somewhere"}}
    result = cli("train", write_config(cfg))
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: cannot use the MLflow tracking store nosuchscheme://somewhere (tracking.mlflow.uri): ")
    assert no_run(runs_dir)


def test_mlflow_settings_are_checked(cli, write_config, runs_dir):
    cfg = tiny_config()
    cfg["tracking"] = {"mlflow": {"url": "x"}}
    result = cli("train", write_config(cfg))
    assert result.exit_code == 2
    assert "tracking.mlflow.url: unknown key 'url'. did you mean 'uri'?" in result.output


def interrupted_mlflow_run(cli, write_config, runs_dir, tmp_path, monkeypatch, stopper):
    """A 4-epoch run tracked in MLflow, with the ``stopper`` callback (it presses Ctrl-C) after the tracker's;
    returns the store's URI, the run directory and the tracker's own ``callbacks`` method (to put back)."""
    from dlcli.integrations import tracking

    uri = sqlite_uri(tmp_path / "store.db")
    cfg = tiny_config()
    cfg["fit"]["epochs"] = 4
    cfg["tracking"] = {"mlflow": {"uri": uri, "log_model": False}}
    callbacks = tracking.MlflowTracker.callbacks
    monkeypatch.setattr(tracking.MlflowTracker, "callbacks",
                        lambda self, saved_epoch=None: [*callbacks(self, saved_epoch), stopper])
    result = cli("train", write_config(cfg))
    assert result.exit_code == 130, result.output
    return uri, only_run(runs_dir), callbacks


def test_a_resumed_run_continues_its_mlflow_run(cli, write_config, runs_dir, tmp_path, monkeypatch):
    import keras

    from dlcli.integrations import tracking

    class CtrlCAtEpoch3(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            if epoch == 2:
                raise KeyboardInterrupt

    uri, run_dir, callbacks = interrupted_mlflow_run(cli, write_config, runs_dir, tmp_path, monkeypatch,
                                                     CtrlCAtEpoch3())
    logged = recorded(run_dir)
    assert client(uri).get_run(logged["run_id"]).info.status == "KILLED"
    # Two short epochs, within the backup's default 5 s: nothing saved, so nothing logged yet.
    assert len(read_csv(run_dir / "history.csv")) == 2 and backup_epoch(run_dir) == 0
    assert client(uri).get_metric_history(logged["run_id"], "loss") == []

    monkeypatch.setattr(tracking.MlflowTracker, "callbacks", callbacks)
    result = cli("train", "--resume", run_dir)
    assert result.exit_code == 0, result.output
    assert recorded(run_dir)["run_id"] == logged["run_id"]
    run = client(uri).get_run(logged["run_id"])
    assert run.info.status == "FINISHED"
    assert sorted(m.step for m in client(uri).get_metric_history(run.info.run_id, "loss")) == [1, 2, 3, 4]
    assert "final_test_accuracy" in run.data.metrics
    assert len(client(uri).search_runs([run.info.experiment_id])) == 1


@pytest.mark.parametrize("saved", [1, 2])
def test_mlflow_gets_each_epoch_once_and_as_history_csv_has_it(cli, write_config, runs_dir, tmp_path, monkeypatch,
                                                                saved):
    """The backup holds ``saved`` of the two epochs before a Ctrl-C: MLflow has exactly those until the
    resume, which trains the rest again; then each epoch once, with history.csv's values."""
    import keras

    from dlcli.integrations import tracking
    from dlcli.train import backup

    class SavesThenCtrlC(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if epoch + 1 == saved:  # after the backup's save of this epoch: no more saves
                monkeypatch.setattr(backup, "BACKUP_SECONDS", 1e9)

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            if epoch == 2:
                raise KeyboardInterrupt

    monkeypatch.setattr(backup, "BACKUP_SECONDS", 0.0)
    monkeypatch.setattr(backup, "BACKUP_COST_FACTOR", 0.0)
    uri, run_dir, callbacks = interrupted_mlflow_run(cli, write_config, runs_dir, tmp_path, monkeypatch,
                                                     SavesThenCtrlC())
    run_id = recorded(run_dir)["run_id"]
    assert len(read_csv(run_dir / "history.csv")) == 2 and backup_epoch(run_dir) == saved
    for key in ("loss", "val_accuracy"):
        assert sorted(m.step for m in client(uri).get_metric_history(run_id, key)) == list(range(1, saved + 1))

    # Resumed with the backup still off until the fit ends: the epochs it trains reach MLflow then.
    monkeypatch.setattr(tracking.MlflowTracker, "callbacks", callbacks)
    result = cli("train", "--resume", run_dir)
    assert result.exit_code == 0, result.output
    history = read_csv(run_dir / "history.csv")
    assert [int(r["epoch"]) for r in history] == [1, 2, 3, 4]
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        points = sorted(client(uri).get_metric_history(run_id, key), key=lambda m: m.step)
        assert [m.step for m in points] == [1, 2, 3, 4], key
        assert [m.value for m in points] == pytest.approx([float(r[key]) for r in history], rel=1e-12), key
