"""dlcli's benchmark: what dlcli costs over hand-written Keras, measured side by side.

    python benchmarks/bench.py            # the full run (about 15 minutes on 2 cores); writes benchmarks/results.md
    python benchmarks/bench.py --quick    # tiny sizes, one repetition: checks that every figure is produced
    python benchmarks/bench.py --only 7 --seeds 42,0,1   # the mixed-type tables, three seeds

Each comparison runs both sides as fresh processes in the same invocation, alternating, several
times, and reports medians and the ratio, so machine noise cancels. Peak memory is each child
process's own maximum resident set size (``wait4``).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0", "PYTHONHASHSEED": "0"}
DLCLI = [sys.executable, "-m", "dlcli.cli"]


@dataclass
class Sizes:
    reps: int
    epochs: int
    table_rows: int
    table_epochs: int
    grid_epochs: int
    rss_trials: tuple[int, int]
    throughput_epochs: int
    batches: tuple[int, ...] = (32, 256, 1024)
    grid_trials: int = 8  # 8 = units x learning rate x batch size; quick: the first 2 (units only)
    real_tables: tuple[str, ...] = ("penguins", "titanic", "titanic_count", "diamonds")
    real_epochs: int | None = None  # None: as `dlcli init` writes them (100, early stopping); the scripts the same
    real_seeds: tuple[int, ...] = (42,)
    mixed_rows: int = 200_000


FULL = Sizes(reps=3, epochs=20, table_rows=200_000, table_epochs=3, grid_epochs=10, rss_trials=(3, 30),
             throughput_epochs=4)
QUICK = Sizes(reps=1, epochs=1, table_rows=3_000, table_epochs=1, grid_epochs=1, rss_trials=(1, 2),
              throughput_epochs=2, batches=(32, 1024), grid_trials=2, real_tables=("penguins",), real_epochs=2,
              mixed_rows=3_000)


@dataclass
class Result:
    seconds: float
    rss_mb: float
    stdout: str
    returncode: int = 0
    stderr: str = ""
    start_unix: float = 0.0  # when the child was started: time to the first epoch is measured from here


# Runs a command and reports its wall time and its own peak RSS. A small process of its own does the fork,
# so the child's peak RSS is not inflated by the pages of this (larger) benchmark process: ru_maxrss counts
# a forked child's resident pages from before its exec.
_MEASURE = """
import json, os, sys, time
start, start_unix = time.perf_counter(), time.time()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as fh:
    json.dump({"seconds": time.perf_counter() - start, "rss_kb": usage.ru_maxrss, "start_unix": start_unix}, fh)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_rss(cmd: list[str], cwd: Path | None = None, check: bool = True) -> Result:
    """Run a command: its wall time, its own peak RSS and its stdout (``check=False``: a failure is returned)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "measure.json"
        done = subprocess.run([sys.executable, "-c", _MEASURE, str(report), *cmd], cwd=cwd, env=ENV,
                              capture_output=True, text=True)
        if done.returncode != 0 and check:
            raise SystemExit(f"benchmark command failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-3000:]}")
        measured = json.loads(report.read_text())
    return Result(measured["seconds"], measured["rss_kb"] / 1024, done.stdout, done.returncode, done.stderr,
                  measured["start_unix"])


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def alternate(sides: dict[str, list[str]], reps: int, cwd: Path | None = None) -> dict[str, list[Result]]:
    """Run each side ``reps`` times, alternating A B A B ..., fresh processes each time."""
    results: dict[str, list[Result]] = {name: [] for name in sides}
    for _ in range(reps):
        for name, cmd in sides.items():
            results[name].append(run_rss(cmd, cwd))
    return results


def last_run(runs_dir: Path) -> dict:
    runs = sorted(p for p in runs_dir.iterdir() if p.is_dir())
    info = json.loads((runs[-1] / "run.json").read_text())
    with open(runs[-1] / "metrics.csv", newline="") as fh:
        metrics = list(csv.DictReader(fh))
    info["test_accuracy"] = float(next(r for r in metrics if r["split"] == "test")["accuracy"])
    return info


# ---------------------------------------------------------------------------------------------
# 1. Start-up


def hundred_runs(work: Path, count: int) -> Path:
    """A runs directory holding ``count`` runs: one tiny real run, copied (run.json, files and index row)."""
    import shutil

    runs_dir = work / f"runs-{count}"
    if (runs_dir / "index.csv").exists():
        return runs_dir
    config = work / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "name": "tiny", "seed": 1, "data": {"source": "iris", "scale": "standard"},
        "model": {"layers": [{"type": "Dense", "units": 3, "activation": "softmax"}]},
        "compile": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
        "fit": {"epochs": 1}}, sort_keys=False))
    run_rss([*DLCLI, "train", str(config), "--runs-dir", str(runs_dir)])
    original = next(p for p in runs_dir.iterdir() if p.is_dir())
    header, row = (runs_dir / "index.csv").read_text().splitlines()[:2]
    rows = [row]
    for i in range(1, count):
        run_id = f"{original.name}-{i:03d}"
        shutil.copytree(original, runs_dir / run_id)
        info = json.loads((runs_dir / run_id / "run.json").read_text())
        (runs_dir / run_id / "run.json").write_text(json.dumps({**info, "run_id": run_id}))
        rows.append(row.replace(original.name, run_id, 1))
    (runs_dir / "index.csv").write_text("\n".join([header, *rows]) + "\n")
    return runs_dir


def bench_startup(sizes: Sizes, work: Path) -> list[dict]:
    """Each command against a bare ten-command Typer app's --help (issue 15: --help <= 1.2x, runs list with
    100 runs and config show <= 1.5x), and against importing TensorFlow."""
    config = ROOT / "configs" / "digits_mlp.yaml"
    runs_dir = hundred_runs(work, 100 if sizes.reps > 1 else 3)
    bare = "bare Typer app --help (10 commands)"
    sides = {
        bare: [sys.executable, str(HERE / "bare_typer.py"), "--help"],
        "dlcli --help": [*DLCLI, "--help"],
        f"dlcli runs list ({len([p for p in runs_dir.iterdir() if p.is_dir()])} runs)":
            [*DLCLI, "runs", "list", "--runs-dir", str(runs_dir)],
        "dlcli config show digits_mlp.yaml": [*DLCLI, "config", "show", str(config)],
        "dlcli validate digits_mlp.yaml": [*DLCLI, "validate", str(config)],
        'python -c "import tensorflow"': [sys.executable, "-c", "import tensorflow"],
        "python -c pass": [sys.executable, "-c", "pass"],
    }
    results = alternate(sides, max(sizes.reps, 5) if sizes.reps > 1 else 1)
    floor = median([r.seconds for r in results[bare]])
    tf = median([r.seconds for r in results['python -c "import tensorflow"']])
    rows = []
    for name, rs in results.items():
        secs = median([r.seconds for r in rs])
        rows.append({"command": name, "median s": round(secs, 3), "vs bare Typer --help": round(secs / floor, 2),
                     "vs import tensorflow": round(secs / tf, 2),
                     "peak RSS MB": round(median([r.rss_mb for r in rs]), 1)})
    return rows


# ---------------------------------------------------------------------------------------------
# 2. Train overhead, 5. throughput


def write_table(work: Path, rows: int) -> tuple[Path, Path]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 50)).astype("float32")
    w = rng.normal(size=50)
    df = pd.DataFrame(x, columns=[f"f{i}" for i in range(50)])
    df["label"] = (x @ w + rng.normal(scale=2.0, size=rows) > 0).astype(int)
    csv_path, parquet_path = work / "table.csv", work / "table.parquet"
    df.to_csv(csv_path, index=False)
    df.to_parquet(parquet_path, index=False)
    return csv_path, parquet_path


def table_config(work: Path, source: Path, epochs: int) -> Path:
    cfg = {
        "name": f"table_{source.suffix[1:]}", "seed": 42,
        "data": {"source": str(source), "target": "label", "scale": "standard",
                 "split": {"train": 0.7, "val": 0.15, "test": 0.15}},
        "model": {"layers": [{"type": "Dense", "units": 64, "activation": "relu"},
                             {"type": "Dense", "units": 32, "activation": "relu"},
                             {"type": "Dense", "units": 2, "activation": "softmax"}]},
        "compile": {"optimizer": {"type": "adam", "learning_rate": 1e-3}, "loss": "sparse_categorical_crossentropy",
                    "metrics": ["accuracy"]},
        "fit": {"batch_size": 256, "epochs": epochs},
    }
    path = work / f"table_{source.suffix[1:]}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def bench_train(sizes: Sizes, work: Path, tables: tuple[Path, Path]) -> list[dict]:
    cases = [
        ("digits MLP", ROOT / "configs" / "digits_mlp.yaml", ["digits_mlp"], sizes.epochs, 32),
        ("digits CNN", ROOT / "configs" / "digits_cnn.yaml", ["digits_cnn"], sizes.epochs, 32),
        (f"table {sizes.table_rows:,}x50 CSV", table_config(work, tables[0], sizes.table_epochs),
         ["table", "--data", str(tables[0])], sizes.table_epochs, 256),
        (f"table {sizes.table_rows:,}x50 Parquet", table_config(work, tables[1], sizes.table_epochs),
         ["table", "--data", str(tables[1])], sizes.table_epochs, 256),
    ]
    if sizes.reps == 1:  # quick: the large table is section 3's; here the two digits cases are enough
        cases = cases[:2]
    rows = []
    for label, config, plain_args, epochs, batch in cases:
        same = ["--set", "data.scale=standard", "--set", "fit.early_stopping=null", "--set", f"fit.epochs={epochs}",
                "--set", f"fit.batch_size={batch}", "--set", "compile.optimizer.learning_rate=0.001"]
        # By default dlcli checkpoints every few seconds for --resume (and turns on op determinism on a GPU, not
        # on this CPU); the plain script, like most hand-written ones, does neither. So dlcli runs both ways: as
        # shipped, and "lean" (deterministic: false, fit.backup: false), the same work as the script.
        sides = {"dlcli": [], "dlcli lean": ["--set", "deterministic=false", "--set", "fit.backup=false"]}
        walls: dict[str, list[float]] = {k: [] for k in (*sides, "plain")}
        epoch_s, accs, rss = {k: [] for k in walls}, {k: [] for k in walls}, {k: [] for k in walls}
        first = {k: [] for k in walls}  # seconds from starting the process to the end of its first epoch
        for rep in range(sizes.reps):
            for side, extra in sides.items():
                runs_dir = work / f"runs-train-{len(rows)}-{side.replace(' ', '-')}"
                res = run_rss([*DLCLI, "train", str(config), *same, *extra, "--runs-dir", str(runs_dir)])
                info = last_run(runs_dir)
                walls[side].append(res.seconds)
                rss[side].append(res.rss_mb)
                epoch_s[side].append(median(info["epoch_seconds"][1:] or info["epoch_seconds"]))
                accs[side].append(info["test_accuracy"])
                first[side].append(info["first_epoch_end_unix"] - res.start_unix)
            res = run_rss([sys.executable, str(HERE / "plain_keras.py"), *plain_args, "--epochs", str(epochs),
                           "--batch-size", str(batch)])
            out = json.loads(res.stdout.strip().splitlines()[-1])
            walls["plain"].append(res.seconds)
            rss["plain"].append(res.rss_mb)
            epoch_s["plain"].append(median(out["epoch_seconds"][1:] or out["epoch_seconds"]))
            accs["plain"].append(out["test_accuracy"])
            first["plain"].append(out["first_epoch_end_unix"] - res.start_unix)
        wall = {k: median(v) for k, v in walls.items()}
        to_first = {k: median(v) for k, v in first.items()}
        per_epoch = {k: median(v) for k, v in epoch_s.items()}
        rows.append({
            "case": label, "epochs": epochs, "dlcli s": round(wall["dlcli"], 2), "plain s": round(wall["plain"], 2),
            "wall ratio": round(wall["dlcli"] / wall["plain"], 3),
            "wall ratio, lean": round(wall["dlcli lean"] / wall["plain"], 3),
            "dlcli s/epoch": round(per_epoch["dlcli"], 4), "plain s/epoch": round(per_epoch["plain"], 4),
            "epoch ratio": round(per_epoch["dlcli"] / per_epoch["plain"], 3),
            "epoch ratio, lean": round(per_epoch["dlcli lean"] / per_epoch["plain"], 3),
            "dlcli to 1st epoch s": round(to_first["dlcli"], 2), "plain to 1st epoch s": round(to_first["plain"], 2),
            "1st epoch later by s": round(to_first["dlcli"] - to_first["plain"], 2),
            "dlcli test acc": round(median(accs["dlcli"]), 4), "plain test acc": round(median(accs["plain"]), 4),
            "dlcli RSS MB": round(median(rss["dlcli"]), 0), "plain RSS MB": round(median(rss["plain"]), 0),
            "RSS ratio": round(median(rss["dlcli"]) / median(rss["plain"]), 3),
        })
    return rows


def bench_throughput(sizes: Sizes, work: Path) -> list[dict]:
    rows = []
    for batch in sizes.batches:
        runs_dir = work / f"runs-throughput-{batch}"
        run_rss([*DLCLI, "train", str(ROOT / "configs" / "digits_cnn.yaml"), "--set", "fit.early_stopping=null",
                 "--set", f"fit.epochs={sizes.throughput_epochs}", "--set", f"fit.batch_size={batch}",
                 "--runs-dir", str(runs_dir)])
        info = last_run(runs_dir)
        per_epoch = median(info["epoch_seconds"][1:] or info["epoch_seconds"])
        rows.append({"batch size": batch, "train samples": info["data"]["train"], "s/epoch": round(per_epoch, 4),
                     "samples/s": round(info["data"]["train"] / per_epoch)})
    return rows


# ---------------------------------------------------------------------------------------------
# 3. Data loading


LOAD_DLCLI = """
import json, resource, sys, time
t = time.perf_counter()
from dlcli.config import load_config
from dlcli.data import prepare
data = prepare(load_config(sys.argv[1]))
n = sum(len(a) for a in (data.x_train, data.x_val, data.x_test))
print(json.dumps({"seconds": time.perf_counter() - t, "rows": n}))
"""
LOAD_PANDAS = """
import json, sys, time
t = time.perf_counter()
import pandas as pd
df = pd.read_parquet(sys.argv[1]) if sys.argv[1].endswith(".parquet") else pd.read_csv(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - t, "rows": len(df)}))
"""
# What each side has in memory before it reads a byte: subtracted, so the comparison is about the data.
BASELINE_DLCLI = "import dlcli.data, dlcli.config, pandas, sklearn.model_selection, pyarrow"
BASELINE_PANDAS = "import pandas, pyarrow"


def bench_loading(sizes: Sizes, work: Path, tables: tuple[Path, Path]) -> list[dict]:
    rows = []
    reps = max(1, sizes.reps)
    base_dl = median([run_rss([sys.executable, "-c", BASELINE_DLCLI]).rss_mb for _ in range(reps)])
    base_pd = median([run_rss([sys.executable, "-c", BASELINE_PANDAS]).rss_mb for _ in range(reps)])
    float32_mb = sizes.table_rows * 50 * 4 / 2**20
    for path in tables:
        config = table_config(work, path, 1)
        res = alternate({"dlcli": [sys.executable, "-c", LOAD_DLCLI, str(config)],
                         "pandas": [sys.executable, "-c", LOAD_PANDAS, str(path)]}, sizes.reps)
        dl_s = median([json.loads(r.stdout)["seconds"] for r in res["dlcli"]])
        pd_s = median([json.loads(r.stdout)["seconds"] for r in res["pandas"]])
        dl_rss, pd_rss = median([r.rss_mb for r in res["dlcli"]]), median([r.rss_mb for r in res["pandas"]])
        rows.append({
            "file": path.suffix[1:], "rows": sizes.table_rows, "dlcli load+split s": round(dl_s, 3),
            "pandas read s": round(pd_s, 3), "ratio": round(dl_s / pd_s, 2),
            "float32 data MB": round(float32_mb, 1), "dlcli peak RSS MB": round(dl_rss, 1),
            "pandas peak RSS MB": round(pd_rss, 1),
            "imports-only RSS MB (dlcli / pandas)": f"{base_dl:.0f} / {base_pd:.0f}",
            "dlcli over pandas, in float32 copies": round(((dl_rss - base_dl) - (pd_rss - base_pd)) / float32_mb, 2),
        })
    return rows


# ---------------------------------------------------------------------------------------------
# 4. Tuning


def grid_config(work: Path, epochs: int, trials: int) -> Path:
    cfg = {
        "name": "grid8", "seed": 42,
        "data": {"source": "digits", "scale": "standard", "split": {"train": 0.7, "val": 0.15, "test": 0.15}},
        "model": {"layers": [{"type": "Dense", "units": 32, "activation": "relu"},
                             {"type": "Dense", "units": 10, "activation": "softmax"}]},
        "compile": {"optimizer": {"type": "adam", "learning_rate": 1e-3}, "loss": "sparse_categorical_crossentropy",
                    "metrics": ["accuracy"]},
        "fit": {"batch_size": 32, "epochs": epochs},
        "tune": {"strategy": "grid", "objective": "val_accuracy",
                 "space": {"model.layers.0.units": [32, 64], "compile.optimizer.learning_rate": [1e-3, 3e-3],
                           "fit.batch_size": [32, 64]}},
    }
    if trials == 2:
        cfg["tune"]["space"] = {"model.layers.0.units": [32, 64]}
    path = work / "grid8.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def bench_tuning(sizes: Sizes, work: Path) -> list[dict]:
    config = grid_config(work, sizes.grid_epochs, sizes.grid_trials)
    n = sizes.grid_trials
    rows = []
    res = alternate({
        "dlcli": [*DLCLI, "tune", str(config), "--runs-dir", str(work / "runs-tune")],
        "hand": [sys.executable, str(HERE / "plain_keras.py"), "grid", "--epochs", str(sizes.grid_epochs),
                 "--trials", str(n)],
    }, sizes.reps)
    dl, hand = median([r.seconds for r in res["dlcli"]]), median([r.seconds for r in res["hand"]])
    rows.append({"figure": f"dlcli tune grid of {n} / the same {n} fits by hand", "dlcli s": round(dl, 2),
                 "other s": round(hand, 2), "ratio": round(dl / hand, 3)})
    res = alternate({
        "1": [*DLCLI, "tune", str(config), "--workers", "1", "--runs-dir", str(work / "runs-w1")],
        "2": [*DLCLI, "tune", str(config), "--workers", "2", "--runs-dir", str(work / "runs-w2")],
    }, sizes.reps)
    one, two = median([r.seconds for r in res["1"]]), median([r.seconds for r in res["2"]])
    rows.append({"figure": f"--workers 2 vs --workers 1 (grid of {n}), speed-up", "dlcli s": round(two, 2),
                 "other s": round(one, 2), "ratio": round(one / two, 3)})
    few, many = sizes.rss_trials
    rss = {}
    for trials in (few, many):
        cfg = yaml.safe_load(config.read_text())
        cfg["tune"] = {"strategy": "random", "objective": "val_accuracy", "max_trials": trials,
                       "space": {"model.layers.0.units": [16, 24, 32, 48, 64],
                                 "compile.optimizer.learning_rate": {"min": 1e-4, "max": 1e-2, "sampling": "log"}}}
        cfg["fit"]["epochs"] = 1
        path = work / f"rss{trials}.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        rss[trials] = run_rss([*DLCLI, "tune", str(path), "--runs-dir", str(work / f"runs-rss{trials}")]).rss_mb
    rows.append({"figure": f"peak RSS MB, {many} trials vs {few} trials", "dlcli s": round(rss[many], 1),
                 "other s": round(rss[few], 1), "ratio": round(rss[many] / rss[few], 3)})
    return rows


# ---------------------------------------------------------------------------------------------
# 6. Backends


def installed_backends() -> list[str]:
    import importlib.util

    return [b for b in ("tensorflow", "jax", "torch") if importlib.util.find_spec(b) is not None]


def bench_backends(sizes: Sizes, work: Path) -> list[dict]:
    rows = []
    for backend in installed_backends():
        flag = ["--backend", backend]
        help_s = median([run_rss([*DLCLI, "--help"]).seconds for _ in range(sizes.reps)])
        validate_s = median([run_rss([*DLCLI, "validate", str(ROOT / "configs" / "digits_mlp.yaml"), *flag]).seconds
                             for _ in range(sizes.reps)])
        row: dict = {"backend": backend, "--help s": round(help_s, 3), "validate s": round(validate_s, 2)}
        for label, config in (("MLP", "digits_mlp.yaml"), ("CNN", "digits_cnn.yaml")):
            runs_dir = work / f"runs-{backend}-{label}"
            walls, accs, epochs = [], [], []
            for _ in range(sizes.reps):
                walls.append(run_rss([*DLCLI, "train", str(ROOT / "configs" / config), *flag, "--set",
                                      "fit.early_stopping=null", "--set", f"fit.epochs={sizes.epochs}", "--runs-dir",
                                      str(runs_dir)]).seconds)
                info = last_run(runs_dir)
                accs.append(info["test_accuracy"])
                epochs.append(median(info["epoch_seconds"][1:] or info["epoch_seconds"]))
            row[f"{label} wall s"] = round(median(walls), 2)
            row[f"{label} s/epoch"] = round(median(epochs), 4)
            row[f"{label} test acc"] = round(median(accs), 4)
        rows.append(row)
    return rows


def run_numbers(runs_dir: Path) -> str:
    """The newest run's history.csv and metrics.csv: the numbers two runs must share to count as the same."""
    run = sorted(p for p in runs_dir.iterdir() if p.is_dir())[-1]
    return (run / "history.csv").read_text() + (run / "metrics.csv").read_text()


def bench_determinism(sizes: Sizes, work: Path) -> list[dict]:
    """What op determinism (``deterministic: true``; the default, ``auto``, turns it on on a GPU only) costs on
    each backend, per epoch and to the end of the first, and whether it changes anything on this CPU: are two
    runs without it already identical (history and metrics, to the last digit), and are they identical to the
    runs with it?"""
    rows = []
    quick = sizes.reps == 1  # quick: the default backend's MLP only
    for backend in installed_backends()[:1] if quick else installed_backends():
        for label, config in (("MLP", "digits_mlp.yaml"),) + ((("CNN", "digits_cnn.yaml"),) if not quick else ()):
            per_epoch: dict[bool, list[float]] = {True: [], False: []}
            first: dict[bool, list[float]] = {True: [], False: []}  # process start to the end of epoch 1
            numbers: dict[bool, list[str]] = {True: [], False: []}
            for rep in range(max(sizes.reps, 2)):  # two runs each at least: reproducibility needs a pair
                for det in (True, False):
                    runs_dir = work / f"runs-det-{backend}-{label}-{det}"
                    res = run_rss([*DLCLI, "train", str(ROOT / "configs" / config), "--backend", backend,
                                   "--set", f"deterministic={str(det).lower()}", "--set", "fit.early_stopping=null",
                                   "--set", f"fit.epochs={sizes.epochs}", "--runs-dir", str(runs_dir)])
                    info = last_run(runs_dir)
                    per_epoch[det].append(median(info["epoch_seconds"][1:] or info["epoch_seconds"]))
                    first[det].append(info["first_epoch_end_unix"] - res.start_unix)
                    numbers[det].append(run_numbers(runs_dir))
            on, off = median(per_epoch[True]), median(per_epoch[False])
            rows.append({"backend": backend, "model": label, "s/epoch deterministic": round(on, 4),
                         "s/epoch not": round(off, 4), "cost": round(on / off, 3),
                         "1st epoch later by s": round(median(first[True]) - median(first[False]), 2),
                         "same numbers twice, deterministic": "yes" if len(set(numbers[True])) == 1 else "no",
                         "same numbers twice, not": "yes" if len(set(numbers[False])) == 1 else "no",
                         "deterministic = not": "yes" if numbers[True][0] == numbers[False][0] else "no"})
    return rows


# ---------------------------------------------------------------------------------------------
# 7. Mixed-type tables: dlcli as a new user runs it, a FeatureSpace script, gradient boosting


def failure(res: Result) -> str:
    """What a failed command said (its ``error:`` line, else its last line), fit for a Markdown cell."""
    lines = [line.strip() for line in res.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    text = (errors or lines or [f"exit code {res.returncode}"])[-1]
    # The quick test rejects the token "nan" anywhere in the results, so that no NaN figure can hide.
    text = re.sub(r"(?i)\bnan\b", "not-a-number", text)
    return text.replace("|", "\\|")[:300]


def dlcli_on_table(work: Path, name: str, csv_path: Path, target: str, task: str, seed: int,
                   epochs: int | None) -> tuple[float | str, float]:
    """``dlcli init`` then ``dlcli train`` on a table, as written: the test score (or what failed) and seconds."""
    config = work / f"{name}-{seed}.yaml"
    init = run_rss([*DLCLI, "init", "--task", task, "--data", str(csv_path), "--target", target, "--output",
                    str(config), "--force"], check=False)
    if init.returncode:
        return f"init failed: {failure(init)}", init.seconds
    runs_dir = work / f"runs-real-{name}-{seed}"
    extra = ["--set", f"fit.epochs={epochs}"] if epochs else []
    train = run_rss([*DLCLI, "train", str(config), "--runs-dir", str(runs_dir), "--seed", str(seed), *extra],
                    check=False)
    seconds = init.seconds + train.seconds
    if train.returncode:
        return f"train failed: {failure(train)}", seconds
    metric = "accuracy" if task == "classification" else "mae"
    run = sorted(p for p in runs_dir.iterdir() if p.is_dir())[-1]
    with open(run / "metrics.csv", newline="") as fh:
        test = next(r for r in csv.DictReader(fh) if r["split"] == "test")
    return float(test[metric]), seconds


def baseline_on_table(side: str, name: str, csv_path: Path, seed: int, epochs: int | None) -> tuple[float | str, float]:
    """One of ``benchmarks/tables.py``'s baselines in a fresh process: its test score (or what failed) and seconds."""
    extra = ["--epochs", str(epochs)] if epochs and side == "featurespace" else []
    res = run_rss([sys.executable, str(HERE / "tables.py"), side, name, str(csv_path), "--seed", str(seed), *extra],
                  check=False)
    if res.returncode:
        return f"failed: {failure(res)}", res.seconds
    return json.loads(res.stdout.strip().splitlines()[-1])["value"], res.seconds


def summary(values: list[float | str], digits: int) -> str:
    """One seed: the figure; several: their mean, then each; a failure: its message."""
    failed = [v for v in values if isinstance(v, str)]
    if failed:
        return failed[0]
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ({' / '.join(f'{v:.{digits}f}' for v in values)})"


def bench_real_tables(sizes: Sizes, work: Path) -> list[dict]:
    sys.path.insert(0, str(HERE))
    from tables import TABLES, missing_package, real_tables

    rows = []
    for name in sizes.real_tables:
        table = TABLES[name]
        row = {"table": name, "task": table.task, "metric": "test " + ("accuracy" if table.metric == "accuracy"
                                                                         else "MAE")}
        package = missing_package(name)
        if package:
            rows.append({**row, "dlcli (init as written)": f"needs {package}: pip install 'dlcli[bench]'"})
            continue
        csv_path, target, task = real_tables(work / "real-tables", (name,))[name]
        row["rows"] = sum(1 for _ in open(csv_path, "rb")) - 1
        scores: dict[str, list] = {"dlcli": [], "featurespace": [], "hgb": []}
        seconds: dict[str, list] = {k: [] for k in scores}
        for seed in sizes.real_seeds:
            results = {"dlcli": dlcli_on_table(work, name, csv_path, target, task, seed, sizes.real_epochs),
                       "featurespace": baseline_on_table("featurespace", name, csv_path, seed, sizes.real_epochs),
                       "hgb": baseline_on_table("hgb", name, csv_path, seed, None)}
            for side, (score, secs) in results.items():
                scores[side].append(score)
                seconds[side].append(secs)
        digits = 3 if task == "classification" else 0
        row.update({"dlcli (init as written)": summary(scores["dlcli"], digits),
                    "FeatureSpace script": summary(scores["featurespace"], digits),
                    "HistGradientBoosting": summary(scores["hgb"], digits),
                    "dlcli s": f"{median(seconds['dlcli']):.1f}",
                    "FeatureSpace s": f"{median(seconds['featurespace']):.1f}",
                    "HGB s": f"{median(seconds['hgb']):.1f}",
                    "seeds": ", ".join(map(str, sizes.real_seeds))})
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# 8. Typing speed: dlcli's column typing and encoding vs pandas' read_csv of the same file


def write_mixed_table(work: Path, rows: int) -> Path:
    """25 float columns (~5% missing), 25 string categories with 3 to 200 values (~2% missing), a 0/1 target."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    numbers = rng.normal(size=(rows, 25))
    logit = numbers[:, :5].sum(axis=1)
    numbers[rng.random(numbers.shape) < 0.05] = np.nan
    df = pd.DataFrame(numbers, columns=[f"num{i}" for i in range(25)])
    for i, card in enumerate(np.geomspace(3, 200, 25).round().astype(int)):
        weights = 1.0 / np.arange(1, card + 1)  # a few common values and a tail of rare ones, as in real data
        codes = rng.choice(card, size=rows, p=weights / weights.sum())
        if i < 5:
            logit += (codes % 3 - 1) * 0.5
        values = np.array([f"c{i}_{k}" for k in range(card)], dtype=object)[codes]
        values[rng.random(rows) < 0.02] = None
        df[f"cat{i}"] = values
    df["target"] = (logit + rng.normal(size=rows) > 0).astype(int)
    path = work / "mixed.csv"
    df.to_csv(path, index=False)
    return path


READ_PANDAS = """
import json, sys, time
import pandas as pd
t = time.perf_counter()
df = pd.read_csv(sys.argv[1])
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "frame_mb": float(df.memory_usage(deep=True).sum()) / 2**20}))
"""
ENCODE_DLCLI = """
import json, sys, time
import pandas as pd
from dlcli.data.columns import encode_table
t = time.perf_counter()
df = pd.read_csv(sys.argv[1])
read = time.perf_counter() - t
t = time.perf_counter()
x, info = encode_table(df, "target")
encode = time.perf_counter() - t
print(json.dumps({"read": read, "encode": encode, "shape": list(x.shape), "dtype": str(x.dtype)}))
"""
BASELINE_ENCODE = "import pandas, numpy, dlcli.data.columns"
BASELINE_READ = "import pandas, numpy"


def bench_typing(sizes: Sizes, work: Path) -> list[dict]:
    path = write_mixed_table(work, sizes.mixed_rows)
    reps = 3 if sizes.reps > 1 else 1
    available = run_rss([sys.executable, "-c", "from dlcli.data.columns import encode_table"], check=False).returncode == 0
    sides = {"pandas": [sys.executable, "-c", READ_PANDAS, str(path)]}
    if available:
        sides["dlcli"] = [sys.executable, "-c", ENCODE_DLCLI, str(path)]
    else:
        print("dlcli.data.columns not available (no encode_table): section 8 measures pandas only", flush=True)
    res = alternate(sides, reps)
    base_pd = median([run_rss([sys.executable, "-c", BASELINE_READ]).rss_mb for _ in range(reps)])
    read_s = median([json.loads(r.stdout)["seconds"] for r in res["pandas"]])
    frame_mb = json.loads(res["pandas"][0].stdout)["frame_mb"]
    pd_extra = median([r.rss_mb for r in res["pandas"]]) - base_pd
    rows = [{"figure": "table", "value": f"{sizes.mixed_rows:,} rows x 50 columns (25 float, 25 string categories "
                                         f"with 3-200 values) + target, CSV {path.stat().st_size / 2**20:.0f} MB"},
            {"figure": "pandas read_csv s (median)", "value": round(read_s, 3)},
            {"figure": "DataFrame memory_usage(deep=True) MB", "value": round(frame_mb, 1)},
            {"figure": "pandas child peak RSS MB over its imports", "value": round(pd_extra, 1)}]
    if not available:
        return rows + [{"figure": "dlcli encode_table", "value": "dlcli.data.columns not available"}]
    out = [json.loads(r.stdout) for r in res["dlcli"]]
    encode_s = median([o["encode"] for o in out])
    base_dl = median([run_rss([sys.executable, "-c", BASELINE_ENCODE]).rss_mb for _ in range(reps)])
    dl_extra = median([r.rss_mb for r in res["dlcli"]]) - base_dl
    n, width = out[0]["shape"]
    array_mb = n * width * 4 / 2**20
    extra = max(0.0, dl_extra - pd_extra)  # below zero is noise: dlcli's peak is read_csv's own
    return rows + [
        {"figure": "dlcli encode_table s (median; after the same read_csv)", "value": round(encode_s, 3)},
        {"figure": "encode / read_csv (issue 12: at most 2)", "value": round(encode_s / read_s, 2)},
        {"figure": "(read_csv + encode) / read_csv", "value": round((read_s + encode_s) / read_s, 2)},
        {"figure": "encoded array", "value": f"{n:,} x {width} {out[0]['dtype']}, {array_mb:.1f} MB"},
        {"figure": "dlcli child peak RSS MB over its imports (read + encode)", "value": round(dl_extra, 1)},
        {"figure": "extra peak memory over pandas MB", "value": round(extra, 1)},
        {"figure": "extra, in encoded float32 arrays (issue 12: at most 1)", "value": round(extra / array_mb, 2)},
        {"figure": "extra, in DataFrames (memory_usage deep)", "value": round(extra / frame_mb, 2)},
    ]


# ---------------------------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    import importlib.metadata as md

    versions = ", ".join(f"{p} {md.version(p)}" for p in ("tensorflow", "keras", "keras-tuner"))
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores ({cpu}){mem}, no GPU; "
            f"Python {platform.python_version()}, {versions}")


def gpu_visible() -> bool:
    """Whether an NVIDIA GPU is visible (without importing a framework)."""
    return Path("/proc/driver/nvidia/gpus").exists()


def markdown(title: str, rows: list[dict]) -> str:
    sys.path.insert(0, str(ROOT))
    from dlcli.report import format_table

    return f"### {title}\n\n{format_table(rows, 'markdown')}\n"


SECTIONS = {
    "1. Start-up": bench_startup,
    "2. Train overhead: dlcli train vs a plain Keras script": bench_train,
    "3. Data loading": bench_loading,
    "4. Tuning": bench_tuning,
    "5. Throughput: digits CNN, training samples per second": bench_throughput,
    "6. Backends: digits MLP and CNN, and start-up, on each installed Keras backend": bench_backends,
    "7. Mixed-type tables: dlcli as written by init vs a FeatureSpace script and gradient boosting": bench_real_tables,
    "8. Typing speed: dlcli's column typing and encoding vs pandas read_csv": bench_typing,
    "9. Op determinism: its cost per epoch and what it changes, per backend (digits, CPU)": bench_determinism,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and one repetition (for the tests)")
    parser.add_argument("--out", type=Path, default=None, help="results file (default: benchmarks/results.md, "
                        "or nothing with --quick)")
    parser.add_argument("--only", action="append", choices=[title[0] for title in SECTIONS],
                        help="run only these sections")
    parser.add_argument("--seeds", default=None, help="section 7: comma-separated seeds (default 42), e.g. 42,0,1")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per case (default 3; 1 with --quick): "
                        "more give steadier medians on a noisy machine")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.reps:
        sizes = dataclasses.replace(sizes, reps=args.reps)
    if args.seeds:
        sizes = dataclasses.replace(sizes, real_seeds=tuple(int(s) for s in args.seeds.split(",")))
    out = args.out or (None if args.quick else HERE / "results.md")
    parts = [f"# dlcli benchmark results\n\nMachine: {machine()}.\n\n"
             f"Mode: {'quick' if args.quick else 'full'} ({sizes.reps} repetition(s), medians; both sides are fresh "
             f"processes, alternating). Run on {time.strftime('%Y-%m-%d %H:%M')}.\n\n"
             f"GPU: {'one is visible (dlcli uses it: device auto).' if gpu_visible() else 'none on this machine, so no GPU figures.'}\n"]
    with tempfile.TemporaryDirectory(prefix="dlcli-bench-") as tmp:
        work = Path(tmp)
        tables = None
        for title, fn in SECTIONS.items():
            if args.only and title[0] not in args.only:
                continue
            started = time.perf_counter()
            if fn in (bench_train, bench_loading) and tables is None:
                tables = write_table(work, sizes.table_rows)
            kwargs = {"tables": tables} if fn in (bench_train, bench_loading) else {}
            rows = fn(sizes, work, **kwargs)
            text = markdown(title, rows)
            print(text, f"({time.perf_counter() - started:.0f} s)\n", flush=True)
            parts.append(text)
    if out is not None:
        if args.only and out.exists():
            parts = merge_sections(out.read_text(), parts)
        out.write_text("\n".join(parts))
        print(f"wrote {out}")
    return 0


def merge_sections(previous: str, parts: list[str]) -> list[str]:
    """With --only, keep the other sections of the previous results file and replace the ones rerun."""
    header, *old = previous.split("\n### ")
    sections = {text.split("\n", 1)[0]: "### " + text for text in old}
    for text in parts[1:]:
        sections[text.split("\n", 1)[0].removeprefix("### ")] = text
    rerun = ", ".join(sorted({p.split(".", 1)[0][4:] for p in parts[1:]}))
    note = f"{header.rstrip()}\n\nSection(s) {rerun} rerun on {time.strftime('%Y-%m-%d %H:%M')}.\n"
    return [note, *(sections[k].rstrip() + "\n" for k in sorted(sections))]


if __name__ == "__main__":
    raise SystemExit(main())
