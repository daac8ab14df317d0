"""`dlcli tune` end to end: strategies, grid completeness, resume, failed trials, bad input, the best
config retrained, and two workers over gRPC on localhost. Iris, 1-2 epochs, tiny spaces."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest
import yaml

from tests.conftest import only_run, read_csv, tiny_config

pytestmark = pytest.mark.slow  # end-to-end runs: not in the quick loop (python -m pytest -m "not slow")

GRID = {"model.layers.0.units": [4, 8], "compile.optimizer.learning_rate": [0.01, 0.1]}


def tune_config(**tune: typing.Any) -> dict[str, typing.Any]:
    section = {"strategy": "grid", "objective": "val_accuracy", "space": GRID, **tune}
    return tiny_config(tune=section)




def tune_ok(cli, config: Path, *args: typing.Any):
    result = cli("tune", config, *args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


@pytest.fixture(scope="module")
def grid_search(tmp_path_factory):
    """One 2x2 grid search, shared by the tests that only read what it left behind."""
    from typer.testing import CliRunner

    from dlcli.cli import app

    root = tmp_path_factory.mktemp("grid")
    config = root / "grid.yaml"
    config.write_text(yaml.safe_dump(tune_config(), sort_keys=False))
    result = CliRunner().invoke(app, ["tune", str(config), "--runs-dir", str(root / "runs")])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return only_run(root / "runs"), result.output


# ---------------------------------------------------------------------------------------------
# What a search leaves behind


def test_grid_2x2_runs_each_combination_once_best_first(grid_search):
    run, output = grid_search
    rows = read_csv(run / "trials.csv")
    assert len(rows) == 4
    combos = {(r["model.layers.0.units"], r["compile.optimizer.learning_rate"]) for r in rows}
    assert combos == {("4", "0.01"), ("4", "0.1"), ("8", "0.01"), ("8", "0.1")}
    assert list(rows[0])[:6] == ["trial_id", "status", "model.layers.0.units", "compile.optimizer.learning_rate",
                                 "best_val_accuracy", "loss"]
    for column in ("accuracy", "val_loss", "val_accuracy", "epochs_run", "seconds", "reason"):
        assert column in rows[0]
    assert all(r["status"] == "completed" and r["epochs_run"] == "2" for r in rows)
    scores = [float(r["best_val_accuracy"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert "trial 1/4" in output and "trial 4/4" in output and "best so far" in output
    assert "top trials" in output


def test_search_writes_the_best_model_config_and_test_metrics(grid_search):
    run, output = grid_search
    for name in ("best_config.yaml", "metrics.csv", "model.keras", "config.yaml", "run.json", "tuner/oracle.json"):
        assert (run / name).is_file(), name
    metrics = read_csv(run / "metrics.csv")
    assert [r["split"] for r in metrics] == ["train", "val", "test", "baseline"]
    best = yaml.safe_load((run / "best_config.yaml").read_text())
    assert "tune" not in best and best["name"] == "tiny_best"
    top = read_csv(run / "trials.csv")[0]
    assert best["model"]["layers"][0]["units"] == int(top["model.layers.0.units"])
    assert best["compile"]["optimizer"]["learning_rate"] == float(top["compile.optimizer.learning_rate"])
    info = json.loads((run / "run.json").read_text())
    assert info["command"] == "tune" and info["status"] == "completed" and info["trials"] == 4
    index = read_csv(run.parent / "index.csv")
    assert index[0]["command"] == "tune" and float(index[0]["test_accuracy"]) == pytest.approx(
        float(metrics[2]["accuracy"]))
    # The best model beside the trivial baseline, and its fit diagnosis against it.
    assert info["baseline_split"] == "test" and info["baseline_metrics"]["accuracy"] == pytest.approx(
        float(metrics[3]["accuracy"]))
    assert "baseline: a model that ignores its inputs" in output
    diagnosis = json.loads((run / "diagnosis.json").read_text())
    assert diagnosis["train_baseline"] is not None and diagnosis["epochs"] == 2


def test_training_the_best_config_reproduces_the_best_trial(grid_search, cli, tmp_path):
    run, _ = grid_search
    result = cli("train", run / "best_config.yaml", "--runs-dir", tmp_path / "again")
    assert result.exit_code == 0, result.output
    retrained = only_run(tmp_path / "again")
    assert retrained.name.endswith("tiny_best")
    assert read_csv(retrained / "metrics.csv") == read_csv(run / "metrics.csv")


# ---------------------------------------------------------------------------------------------
# Strategies


RANGES = {"model.layers.0.units": {"min": 2, "max": 16},
          "compile.optimizer.learning_rate": {"min": 1.0e-3, "max": 1.0e-1, "sampling": "log"}}


@pytest.mark.parametrize("strategy", ["random", "bayesian"])
def test_random_and_bayesian_sample_max_trials_from_ranges(cli, write_config, runs_dir, strategy):
    config = write_config(tune_config(strategy=strategy, max_trials=3, space=RANGES))
    tune_ok(cli, config, "--set", "fit.epochs=1")
    rows = read_csv(only_run(runs_dir) / "trials.csv")
    assert len(rows) == 3 and all(r["status"] == "completed" for r in rows)
    assert all(2 <= int(r["model.layers.0.units"]) <= 16 for r in rows)
    assert all(1e-3 <= float(r["compile.optimizer.learning_rate"]) <= 1e-1 for r in rows)


def test_same_seed_gives_the_same_trials_in_the_same_order_with_the_same_scores(cli, write_config, tmp_path):
    config = write_config(tune_config(strategy="random", max_trials=3, space=RANGES))
    tables = []
    for name in ("a", "b"):
        tune_ok(cli, config, "--set", "fit.epochs=1", "--runs-dir", tmp_path / name)
        rows = read_csv(only_run(tmp_path / name) / "trials.csv")
        tables.append([{k: r[k] for k in ("trial_id", *RANGES, "best_val_accuracy", "val_loss")} for r in rows])
    assert tables[0] == tables[1]


def test_hyperband_uses_fit_epochs_as_max_epochs_and_continues_trials(cli, write_config, runs_dir):
    config = write_config(tune_config(strategy="hyperband", factor=2, space=RANGES))
    result = tune_ok(cli, config)  # fit.epochs: 2
    rows = read_csv(only_run(runs_dir) / "trials.csv")
    assert len(rows) == 5 and "trial 1/5" in result.output  # two brackets for max_epochs 2, factor 2
    assert {r["hyperband_epochs"] for r in rows} == {"1", "2"}
    continued = [r for r in rows if r["continues_trial"]]
    assert len(continued) == 1 and continued[0]["epochs_run"] == "1"  # epoch 2 only, on top of epoch 1


def test_strategies_are_keras_tuners_oracles():
    from dlcli.config import TuneConfig
    from dlcli.tune.oracle import ORACLES

    assert set(ORACLES) == set(typing.get_args(TuneConfig.model_fields["strategy"].annotation))


def test_space_maps_to_choice_int_and_float_and_a_float_step_reaches_max():
    import keras_tuner as kt

    from dlcli.config import TuneConfig
    from dlcli.tune.space import declare_space, space_size

    tune = TuneConfig(space={"a": [16, 32], "b": {"min": 1, "max": 9, "step": 2},
                             "c": {"min": 0.0, "max": 0.5, "step": 0.1}, "d": {"min": 1e-4, "max": 1e-2,
                                                                          "sampling": "log"}})
    hp = kt.HyperParameters()
    declare_space(hp, tune.space)
    kinds = {p.name: type(p).__name__ for p in hp.space}
    assert kinds == {"a": "Choice", "b": "Int", "c": "Float", "d": "Float"}
    assert [round(v, 6) for v in hp.space[2].values] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert space_size({k: v for k, v in tune.space.items() if k != "d"}) == 2 * 5 * 6
    assert space_size(tune.space) is None


def test_data_is_prepared_once_unless_the_search_changes_data_settings(cli, write_config, runs_dir, monkeypatch):
    from dlcli.tune import trials as tuner

    calls = []
    real = tuner.prepare
    monkeypatch.setattr(tuner, "prepare", lambda cfg: calls.append(cfg.data.scale) or real(cfg))
    tune_ok(cli, write_config(tune_config(space={"data.scale": ["standard", "minmax"]})), "--set", "fit.epochs=1")
    # The first trial reuses the data validated before the search: only `minmax` is prepared for its
    # trial (and `standard` again afterwards if it is the best, for the final scores).
    assert calls[0] == "minmax" and calls.count("minmax") == 1
    calls.clear()
    tune_ok(cli, write_config(tune_config(space={"model.layers.0.units": [4, 8]})), "--set", "fit.epochs=1")
    assert calls == []


# ---------------------------------------------------------------------------------------------
# Failures, interruption and resume


def test_failed_trials_are_recorded_with_their_reason_and_the_search_goes_on(cli, write_config, runs_dir):
    space = {"model.layers.0.units": [4, 0], "compile.optimizer.learning_rate": [1.0e+12, 0.05]}
    config = write_config(tune_config(space=space, objective="val_loss"))
    # A regression with linear layers: the exploding weights reach the loss as NaN on every backend (a
    # softmax cross-entropy saturates at a finite loss on JAX and PyTorch instead).
    result = tune_ok(cli, config, "--set", "compile.optimizer=sgd", "--set", "model.layers.0.activation=linear",
                     "--set", "model.layers.1={type: Dense, units: 1}", "--set", "compile.loss=mse",
                     "--set", "compile.metrics=[]", "--set", "data.split.stratify=false")
    rows = read_csv(only_run(runs_dir) / "trials.csv")
    assert [r["status"] for r in rows] == ["completed", "failed", "failed", "failed"]
    reasons = {(r["model.layers.0.units"], r["compile.optimizer.learning_rate"]): r["reason"] for r in rows[1:]}
    assert "NaN" in reasons[("4", "1000000000000.0")]
    assert "model.layers[0]" in reasons[("0", "0.05")] and "units" in reasons[("0", "0.05")]
    assert "failed: model.layers[0]" in result.output


def test_too_many_failures_in_a_row_stop_the_search_with_exit_1(cli, write_config, runs_dir):
    config = write_config(tune_config(space={"model.layers.0.units": [0, -1, -2]}, max_consecutive_failed_trials=2))
    result = cli("tune", config)
    assert result.exit_code == 1
    assert "2 trials in a row failed" in result.output and "units" in result.output
    run = only_run(runs_dir)
    assert len(read_csv(run / "trials.csv")) == 2
    assert json.loads((run / "run.json").read_text())["status"] == "failed"


def test_resume_continues_an_interrupted_search_without_rerunning_finished_trials(cli, write_config, runs_dir,
                                                                                  monkeypatch):
    from dlcli.tune.trials import TrialModel

    fits = []
    real_fit = TrialModel.fit

    def fit(self, hp, model, *args, **kwargs):
        fits.append(dict(hp.values))
        if len(fits) == 3 and interrupt:
            raise KeyboardInterrupt
        return real_fit(self, hp, model, *args, **kwargs)

    monkeypatch.setattr(TrialModel, "fit", fit)
    config = write_config(tune_config())
    interrupt = True
    result = cli("tune", config)
    assert result.exit_code == 130 and "--resume" in result.output
    run = only_run(runs_dir)
    before = read_csv(run / "trials.csv")
    assert [r["status"] for r in before] == ["completed", "completed", "interrupted"]
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"

    interrupt, fits[:] = False, []
    tune_ok(cli, config, "--resume", run)
    assert len(fits) == 2  # the interrupted trial again, then the last one
    after = read_csv(run / "trials.csv")
    assert len(after) == 4 and all(r["status"] == "completed" for r in after)
    assert len({(r["model.layers.0.units"], r["compile.optimizer.learning_rate"]) for r in after}) == 4
    finished = {r["trial_id"]: r for r in before if r["status"] == "completed"}
    for row in after:  # rows of finished trials are kept as they were
        if row["trial_id"] in finished:
            assert row == finished[row["trial_id"]]
    assert len([p for p in runs_dir.iterdir() if p.is_dir()]) == 1  # the same run directory


def test_resume_refuses_a_changed_config_and_a_train_run(cli, write_config, runs_dir, tmp_path):
    config = write_config(tune_config(space={"model.layers.0.units": [4]}))
    tune_ok(cli, config, "--set", "fit.epochs=1")
    run = only_run(runs_dir)
    (run / "run.json").write_text((run / "run.json").read_text().replace('"completed"', '"interrupted"'))
    result = cli("tune", config, "--set", "fit.epochs=2", "--resume", run)
    assert result.exit_code == 2 and "fit.epochs" in result.output and "keeps its config" in result.output
    train_cfg = write_config(tiny_config(), "plain.yaml")
    assert cli("train", train_cfg, "--runs-dir", tmp_path / "t").exit_code == 0
    result = cli("tune", config, "--resume", only_run(tmp_path / "t"))
    assert result.exit_code == 2 and "`train` run" in result.output


# ---------------------------------------------------------------------------------------------
# Bad input: exit 2 before any trial runs or any run directory exists

BAD_SPACES = [
    ({"model.layers.9.units": [1, 2]}, "tune.space.model.layers.9.units: model.layers.9 does not exist", "2 items"),
    ({"model.layers.0.unit": [1, 2]}, "tune.space.model.layers.0.unit", "did you mean 'units'"),
    ({"model.layers.0.units": []}, "tune.space.model.layers.0.units", "empty list of choices"),
    ({"model.layers.0.units": [4, "eight"]}, "tune.space.model.layers.0.units", "mixes number and string"),
    ({"fit.batch_size": {"min": 64, "max": 16, "step": 16}}, "tune.space.fit.batch_size", "min (64) is greater"),
    ({"compile.optimizer.learning_rate": {"min": 0, "max": 0.1, "sampling": "log"}},
     "tune.space.compile.optimizer.learning_rate", "log sampling needs min > 0"),
    ({"compile.optimizer.learning_rate": {"min": 0.001, "max": 0.1}},
     "tune.space.compile.optimizer.learning_rate", "give `step` or a list"),
    ({"fit.batch_size": [16, 0]}, "tune.space.fit.batch_size", "greater than or equal to 1"),
]


@pytest.mark.parametrize(("space", "where", "what"), BAD_SPACES)
def test_a_bad_space_is_a_config_error_naming_its_path(cli, write_config, runs_dir, space, where, what):
    result = cli("tune", write_config(tune_config(space=space)))
    assert result.exit_code == 2, result.output
    assert where in result.output and what in result.output
    assert not runs_dir.exists()


@pytest.mark.parametrize(("tune", "args", "what"), [
    ({"objective": "val_auc"}, [], "tune.objective: 'val_auc' is not a metric this run produces"),
    ({"strategy": "grd"}, [], "tune.strategy: 'grd' is not allowed. did you mean 'grid'?"),
    ({"strategy": "random"}, [], "tune.max_trials: required for strategy random"),
    ({}, ["--strategy", "bayesian"], "tune.max_trials: required for strategy bayesian"),
    ({"spce": {}}, [], "unknown key 'spce'. did you mean 'space'?"),
])
def test_a_bad_tune_section_is_a_config_error(cli, write_config, runs_dir, tune, args, what):
    result = cli("tune", write_config(tune_config(**tune)), *args)
    assert result.exit_code == 2, result.output
    assert what in result.output
    assert not runs_dir.exists()


def test_the_objective_error_lists_the_metrics_that_exist(cli, write_config):
    result = cli("tune", write_config(tune_config(objective="val_auc")))
    assert "available: loss, accuracy, val_loss, val_accuracy" in result.output


def test_a_config_without_a_tune_section_is_refused(cli, write_config, runs_dir):
    result = cli("tune", write_config(tiny_config()))
    assert result.exit_code == 2 and "has no `tune:` section" in result.output
    assert not runs_dir.exists()


# ---------------------------------------------------------------------------------------------
# Distributed: a chief serving the oracle and two worker processes on localhost


def test_two_workers_run_the_grid_over_grpc_with_the_same_results(cli, write_config, runs_dir, grid_search):
    result = tune_ok(cli, write_config(tune_config()), "--workers", "2")
    run = only_run(runs_dir)
    rows = read_csv(run / "trials.csv")
    assert len(rows) == 4 and all(r["status"] == "completed" for r in rows)
    assert {r["worker"] for r in rows} <= {"worker1", "worker2"}
    assert (run / "workers" / "worker1.log").is_file() and (run / "workers" / "worker2.log").is_file()

    def scores(table):
        return {(r["model.layers.0.units"], r["compile.optimizer.learning_rate"]): r["best_val_accuracy"]
                for r in table}

    assert scores(rows) == scores(read_csv(grid_search[0] / "trials.csv"))  # same seeds, same numbers
    assert "[worker" in result.output
