"""Several machines, simulated with network namespaces (examples/several-machines/hosts.sh): a chief and
two workers each in a namespace of its own, joined by a bridge in a fourth, with private addresses that
exist only there; the runs directory is shared (only the network is namespaced). Then JAX data-parallel
training by two processes. Root only; skipped with the reason where namespaces are not permitted.

Bounded: every process has a deadline, the namespaces (and anything still running in them) are removed
in a ``finally``, and all traffic stays among the namespaces the test made.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import read_csv, tiny_config

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]  # tests/tune/ -> the repository
HOSTS = REPO / "examples" / "several-machines" / "hosts.sh"
CHIEF_IP, OTHER_IP, PORT = "10.231.0.1", "10.231.0.11", 8000
GRID = {"model.layers.0.units": [4, 8], "compile.optimizer.learning_rate": [0.01, 0.1]}
DEADLINE = 240  # seconds, for any one search


def _namespaces_permitted() -> str | None:
    """None if this process may create network namespaces, else why not."""
    if sys.platform != "linux" or shutil.which("ip") is None:
        return "needs Linux with iproute2 (ip)"
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    name = f"dlcprobe{os.getpid() % 100000}"
    made = subprocess.run(["ip", "netns", "add", name], check=False, capture_output=True, text=True)
    subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)
    return None if made.returncode == 0 else f"ip netns add is not permitted here: {made.stderr.strip()}"


@pytest.fixture(scope="module")
def hosts():
    """Three namespaces, NAME-chief / NAME-w1 / NAME-w2 (10.231.0.1-3), removed afterwards whatever happens."""
    why = _namespaces_permitted()
    if why:
        pytest.skip(why)
    name = f"dlc{os.getpid() % 100000}"
    try:
        subprocess.run([str(HOSTS), "up", name], check=True, capture_output=True, text=True, timeout=60)
        subprocess.run(["ip", "-n", f"{name}-chief", "addr", "add", f"{OTHER_IP}/24", "dev", "eth0"], check=True)
        yield name
    finally:
        subprocess.run([str(HOSTS), "down", name], check=False, capture_output=True, timeout=60)


class Search:
    """One search: the chief and workers started by hand, each in its namespace, logging to files."""

    def __init__(self, hosts: str, config: Path, runs: Path, **env: str):
        self.hosts, self.runs, self.env = hosts, runs, {**os.environ, "PYTHONPATH": str(REPO), **env}
        runs.mkdir(parents=True)
        self.procs: dict[str, subprocess.Popen] = {}
        self.start("chief", ["tune", str(config), "--runs-dir", str(runs), "--workers", "0"])
        self.run_dir = Path(self.wait_for(r"--join (\S+)$", "chief").group(1))

    def start(self, host: str, args: list[str]) -> None:
        env = {**self.env, "KERASTUNER_TUNER_ID": host, "KERASTUNER_ORACLE_IP": CHIEF_IP,
               "KERASTUNER_ORACLE_PORT": str(PORT)}
        with open(self.runs / f"{host}.log", "wb") as log:
            self.procs[host] = subprocess.Popen(
                ["ip", "netns", "exec", f"{self.hosts}-{host}", sys.executable, "-m", "dlcli.cli", *args],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def workers(self) -> None:
        for host in ("w1", "w2"):
            self.start(host, ["tune", str(self.run_dir / "config.yaml"), "--join", str(self.run_dir)])

    def log(self, host: str) -> str:
        return (self.runs / f"{host}.log").read_text(errors="replace")

    def wait_for(self, pattern: str, host: str, timeout: float = 120) -> re.Match:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = re.search(pattern, self.log(host), re.MULTILINE)
            if found:
                return found
            assert self.procs[host].poll() is None, f"{host} exited early:\n{self.log(host)}"
            time.sleep(0.1)
        raise AssertionError(f"{host} did not print {pattern!r} in {timeout} s:\n{self.log(host)}")

    def wait(self, host: str, timeout: float = DEADLINE) -> int:
        return self.procs[host].wait(timeout=timeout)

    def stop(self) -> None:
        for proc in self.procs.values():  # each by its own pid
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)


@pytest.fixture
def search(hosts, tmp_path):
    made: list[Search] = []

    def start(runs: str, **env: str) -> Search:
        config = tmp_path / "grid.yaml"
        config.write_text(yaml.safe_dump(tiny_config(tune={"strategy": "grid", "objective": "val_accuracy",
                                                           "space": GRID}), sort_keys=False))
        made.append(Search(hosts, config, tmp_path / runs, **env))
        return made[-1]

    try:
        yield start
    finally:
        for one in made:
            one.stop()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same grid with --workers 1 (one process, no gRPC): trials.csv's scores by values."""
    from typer.testing import CliRunner

    from dlcli.cli import app

    root = tmp_path_factory.mktemp("reference")
    config = root / "grid.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tune={"strategy": "grid", "objective": "val_accuracy",
                                                       "space": GRID}), sort_keys=False))
    result = CliRunner().invoke(app, ["tune", str(config), "--workers", "1", "--runs-dir", str(root / "runs")])
    assert result.exit_code == 0, result.output
    return scores(read_csv(next((root / "runs").glob("*/trials.csv"))))


def scores(rows: list[dict]) -> dict[tuple, tuple]:
    return {(r["model.layers.0.units"], r["compile.optimizer.learning_rate"]): (r["best_val_accuracy"], r["val_loss"])
            for r in rows}


def connect(hosts: str, host: str, ip: str) -> str:
    """From namespace HOST, try a TCP connection to IP:PORT; 'open' or the error's name."""
    probe = ("import socket,sys\ns=socket.socket();s.settimeout(3)\ntry:\n s.connect((sys.argv[1],int(sys.argv[2])))"
             "\n print('open')\nexcept OSError as e:\n print(type(e).__name__)")
    done = subprocess.run(["ip", "netns", "exec", f"{hosts}-{host}", sys.executable, "-c", probe, ip, str(PORT)],
                          check=False, capture_output=True, text=True, timeout=30)
    return done.stdout.strip()


def test_chief_and_two_workers_run_every_trial_once_with_the_scores_of_one_process(search, hosts, reference):
    s = search("clean")
    # Binding: the chief listens on the address it was given, and only there.
    listening = subprocess.run(["ip", "netns", "exec", f"{hosts}-chief", "ss", "-ltnH"], check=False,
                               capture_output=True, text=True, timeout=30).stdout
    # gRPC listens on an IPv6 socket, so the address shows as [::ffff:10.231.0.1]: still that one address only.
    local = [line.split()[3] for line in listening.splitlines() if line.split()[3].endswith(f":{PORT}")]
    assert local in ([f"{CHIEF_IP}:{PORT}"], [f"[::ffff:{CHIEF_IP}]:{PORT}"]), listening
    assert connect(hosts, "w1", CHIEF_IP) == "open"
    assert connect(hosts, "w1", OTHER_IP) == "ConnectionRefusedError"  # the chief's other address
    assert connect(hosts, "chief", "127.0.0.1") == "ConnectionRefusedError"
    s.workers()
    assert s.wait("chief") == 0, s.log("chief")
    assert s.wait("w1", 60) == 0 and s.wait("w2", 60) == 0, s.log("w1") + s.log("w2")
    started = re.findall(r"^trial \d+/4 \(id (\d+)\) \[(w[12])\]", s.log("chief"), re.MULTILINE)
    assert sorted(t for t, _ in started) == ["0000", "0001", "0002", "0003"]  # each trial started once
    assert {w for _, w in started} == {"w1", "w2"}  # both machines took trials
    rows = read_csv(s.run_dir / "trials.csv")
    assert len(rows) == 4 and all(r["status"] == "completed" for r in rows)
    assert scores(rows) == reference  # same seed, same numbers: identical to the last digit written


def test_a_worker_killed_mid_trial_loses_its_trial_to_the_other_worker(search, reference):
    s = search("killed-worker", DLCLI_WORKER_TIMEOUT="6")
    s.workers()
    trial = s.wait_for(r"^trial \d+/4 \(id (\d+)\) \[w2\]", "chief").group(1)
    os.kill(s.procs["w2"].pid, signal.SIGKILL)  # in the middle of its first trial
    killed_at = time.monotonic()
    assert s.wait("chief") == 0, s.log("chief")
    assert s.wait("w1", 60) == 0, s.log("w1")
    assert "worker w2 has not been heard from for 6 s" in s.log("chief")
    rows = read_csv(s.run_dir / "trials.csv")
    assert len(rows) == 4 and all(r["status"] == "completed" for r in rows)
    assert next(r for r in rows if r["trial_id"] == trial)["worker"] == "w1"  # run again, from its start, by w1
    assert scores(rows) == reference
    assert time.monotonic() - killed_at < DEADLINE


def test_workers_started_by_hand_stop_when_their_chief_is_killed(search):
    s = search("killed-chief", DLCLI_CHIEF_TIMEOUT="5")
    s.workers()
    s.wait_for(r"^trial \d+/4 \(id \d+\) \[w[12]\]", "chief")
    os.kill(s.procs["chief"].pid, signal.SIGKILL)
    killed_at = time.monotonic()
    codes = {w: s.wait(w, 60) for w in ("w1", "w2")}
    seconds = time.monotonic() - killed_at
    # One in a trial stops from its heartbeat (exit 1), one waiting for a trial when its call times out (2).
    assert 0 not in codes.values() and None not in codes.values(), (codes, s.log("w1") + s.log("w2"))
    assert seconds < 30, seconds  # DLCLI_CHIEF_TIMEOUT (5 s) + a heartbeat (2 s) + the trial's end
    for w in ("w1", "w2"):
        assert "error: the search's chief at 10.231.0.1:8000 did not answer for 5 s" in s.log(w), s.log(w)


# ---------------------------------------------------------------------------------------------
# JAX data-parallel across two processes


def _jax() -> bool:
    import importlib.util

    return importlib.util.find_spec("jax") is not None


@pytest.mark.skipif(not _jax(), reason="needs jax")
def test_jax_data_parallel_across_two_processes_matches_one_process(tmp_path):
    cfg = tiny_config(backend="jax", distribution="data_parallel",
                      fit={"batch_size": 16, "epochs": 3, "shuffle": False})
    config = tmp_path / "dp.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO), "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
           "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{port},127.0.0.1:{port + 1}"}
    procs = [subprocess.Popen([sys.executable, "-m", "dlcli.cli", "train", str(config), "--runs-dir",
                               str(tmp_path / f"p{i}")], env={**env, "KERAS_DISTRIBUTION_PROCESS_ID": str(i)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in (0, 1)]
    try:
        outputs = [p.communicate(timeout=DEADLINE)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], "\n".join(outputs)
    single = subprocess.run([sys.executable, "-m", "dlcli.cli", "train", str(config), "--runs-dir",
                             str(tmp_path / "one")], env={**os.environ, "PYTHONPATH": str(REPO)},
                            check=False, capture_output=True, text=True, timeout=DEADLINE)
    assert single.returncode == 0, single.stdout + single.stderr
    one = read_csv(next((tmp_path / "one").glob("*/history.csv")))
    for i in (0, 1):
        run = next((tmp_path / f"p{i}").glob("*/run.json")).parent
        assert '"replicas": 2' in (run / "run.json").read_text()
        two = read_csv(run / "history.csv")
        assert len(two) == len(one) == 3
        for a, b in zip(two, one):
            for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
                assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-5), (key, a, b)
