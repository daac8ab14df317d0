"""Plots as PNG files: learning curves and the confusion matrix.

matplotlib is imported inside the plotting functions (Agg canvas, no pyplot, no display needed), so that
importing ``dlcli.report`` stays cheap for the light commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlcli.runs import replacing


def _figure(width: float, height: float) -> Any:
    """A matplotlib Figure drawn by the Agg canvas: no pyplot, no display, no global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: start-up speed
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    """Write a figure as PNG through a temporary name and a rename (no half-written images)."""
    path = Path(path)
    with replacing(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def plot_learning_curves(history: dict[str, list[Any]], path: Path, best_epoch: int | None = None,
                         title: str | None = None) -> Path:
    """Loss and each metric by epoch, train against validation, the best epoch marked.

    Args:
        history: columns of ``history.csv``: ``{"epoch": [...], "loss": [...], "val_loss": [...], ...}``.
        path: the PNG file to write.
        best_epoch: 1-based epoch to mark (lowest validation loss), if known.
        title: drawn above the panels.

    Returns:
        ``path``.
    """
    from matplotlib.ticker import MaxNLocator  # lazy: start-up speed

    names = [k for k in history if k not in ("epoch", "learning_rate") and not k.startswith("val_")]
    names.sort(key=lambda k: k != "loss")
    if not names:
        names = [k for k in history if k.startswith("val_")][:1]
    n = max(1, len(names))
    fig = _figure(4.5 * n, 3.6)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, name in zip(axes, names):
        for key, label, style in ((name, "train", "-"), (f"val_{name}", "validation", "--")):
            values = history.get(key)
            if not values:
                continue
            epochs = history.get("epoch") or list(range(1, len(values) + 1))
            points = [(e, v) for e, v in zip(epochs, values) if isinstance(v, (int, float))]
            if points:
                ax.plot(*zip(*points), style, marker="o" if len(points) < 30 else None, markersize=3, label=label)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch ({best_epoch})")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_confusion_matrix(matrix: list[list[int]], class_names: list[str], path: Path,
                          title: str | None = None) -> Path:
    """A confusion matrix as a heat map with the counts written in: true class by row, predicted by column.

    Returns:
        ``path``.
    """
    k = len(class_names)
    side = min(12.0, 3.0 + 0.6 * k)
    fig = _figure(side + 1.2, side)
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_xticks(range(k), labels=class_names, rotation=45 if k > 4 else 0, ha="right" if k > 4 else "center")
    ax.set_yticks(range(k), labels=class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    peak = max((max(row) for row in matrix), default=0)
    if k <= 30:
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                ax.text(j, i, str(count), ha="center", va="center", fontsize="small",
                        color="white" if peak and count > peak / 2 else "black")
    ax.set_title(title or "confusion matrix")
    return _save(fig, path)
