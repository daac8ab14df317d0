"""The benchmark must keep working: its quick mode runs and produces every figure (no timing thresholds)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # end-to-end runs: not in the quick loop (python -m pytest -m "not slow")

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_produces_every_figure(tmp_path):
    out = tmp_path / "results.md"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = out.read_text()
    for heading in ("1. Start-up", "2. Train overhead", "3. Data loading", "4. Tuning", "5. Throughput", "6. Backends",
                    "9. Op determinism"):
        assert f"### {heading}" in text, heading
    for figure in ("dlcli --help", "dlcli runs list", "dlcli validate", "import tensorflow", "bare Typer app --help",
                   "vs bare Typer --help", "dlcli config show", "1st epoch later by s", "RSS ratio", "s/epoch not",
                   "same numbers twice, not",
                   "digits MLP", "digits CNN", "| csv |", "| parquet |", "wall ratio", "epoch ratio", "epoch ratio, lean",
                   "dlcli peak RSS MB", "fits by hand", "--workers 2 vs --workers 1", "peak RSS MB, 2 trials vs 1",
                   "samples/s", "| tensorflow |", "| jax |", "| torch |", "CNN test acc"):
        assert figure in text, figure
    assert "nan" not in text.lower()
    assert "Machine:" in text and "CPU cores" in text
