"""What a search reports: each trial as it starts and ends (``TrialEvent``), and the finished search."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def format_value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@dataclass
class TrialEvent:
    """A trial started or ended; ``line()`` is what the console shows."""

    kind: str  # "start", "end", or "note" (a line about the whole search, in ``reason``)
    trial_id: str = ""  # keras-tuner's id, as in trials.csv and tuner/trial_<id>
    number: int = 0  # 1, 2, ... in the order the trials were created
    total: int | None = None
    values: dict[str, Any] = field(default_factory=dict)
    worker: str | None = None
    status: str = "running"
    objective: str = ""
    score: float | None = None
    best_score: float | None = None
    best_id: str | None = None
    epochs: int | None = None
    seconds: float | None = None
    reason: str | None = None

    def line(self) -> str:
        if self.kind == "note":
            return self.reason or ""
        trial = f"trial {self.number}" + (f"/{self.total}" if self.total else "") + f" (id {self.trial_id})"
        if self.kind == "start":
            values = ", ".join(f"{k}={format_value(v)}" for k, v in self.values.items())
            worker = f" [{self.worker}]" if self.worker and self.worker not in ("tuner0", "chief") else ""
            return f"{trial}{worker}: {values}"
        if self.status != "completed":
            return f"  {trial} {self.status}: {self.reason or 'no reason recorded'}"
        best = f"{self.best_score:.4f} (id {self.best_id})" if self.best_score is not None else "-"
        return (f"  {trial}: {self.objective} {self.score:.4f}, best so far {best}; {self.epochs} epochs, "
                f"{self.seconds:.1f} s")


@dataclass
class TuneResult:
    run_dir: Path
    run_id: str
    objective: str
    direction: str
    trials: list[dict[str, Any]]  # every trial, best first (the rows of trials.csv)
    metrics: list[dict[str, Any]] = field(default_factory=list)  # the best model on train / val / test, baseline
    baseline: Any = None  # dlcli.model.baseline.Baseline: the trivial predictor's scores (the `baseline` row)
    best_values: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
