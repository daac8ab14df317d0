"""``dlcli plot``: learning curves from history.csv and, for a classification run, the confusion matrix on its own
test split, as PNG files."""

from __future__ import annotations

from pathlib import Path

from dlcli.errors import RunError
from dlcli.evaluate.reload import load_model, open_run, own_test_split
from dlcli.evaluate.score import class_probabilities, classification_scores, true_indices
from dlcli.model.scoring import predict
from dlcli.report import plot_confusion_matrix, plot_learning_curves
from dlcli.runs import effective_status, load_run_info, read_history
from dlcli.runs.diagnosis import best_epoch


def plot_run(run_dir: Path, out_dir: Path | None = None, confusion: bool = True, force: bool = False,
             unsafe: bool = False, backend: str | None = None) -> list[Path]:
    """Learning curves (from history.csv) and, for a classification run, the confusion matrix on its
    own test split, as PNG files in ``out_dir`` (default: the run directory).

    Raises:
        RunError: the run has no history yet (and, for the confusion matrix, see :func:`evaluate_run`).
    """
    run_dir = Path(run_dir)
    info = load_run_info(run_dir)
    out_dir = Path(out_dir or run_dir)
    history = read_history(run_dir)
    if not history.get("loss"):
        raise RunError(f"{run_dir}: the run has no history.csv with epochs to plot (status: "
                       f"{effective_status(info)})")
    files = [plot_learning_curves(history, out_dir / "learning_curves.png", best_epoch(history)[0],
                                  title=info.get("run_id", run_dir.name))]
    task = (info.get("data") or {}).get("task")
    if confusion and task == "classification":
        run = open_run(run_dir, backend)
        x, y = own_test_split(run, force)
        load_model(run, unsafe=unsafe)
        probs = class_probabilities(predict(run.model, x, run.cfg.fit.batch_size), run.prep.encoding)
        names = list(run.prep.class_names or [])
        matrix = classification_scores(true_indices(y, run.prep.encoding), probs, names)["matrix"]
        files.append(plot_confusion_matrix(matrix, names, out_dir / "confusion_matrix.png",
                                           title=f"{run.id}: test ({len(x)} samples)"))
    return files
