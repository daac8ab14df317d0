"""Report: tables for the console (``tables``) and plots as PNG files (``plots``).

May import: ``dlcli.model`` and below (it uses only ``dlcli.runs`` to write its PNG files atomically). Light:
matplotlib is imported only inside the plotting functions.
"""

from dlcli.report.plots import plot_confusion_matrix as plot_confusion_matrix
from dlcli.report.plots import plot_learning_curves as plot_learning_curves
from dlcli.report.tables import baseline_note as baseline_note
from dlcli.report.tables import format_sections as format_sections
from dlcli.report.tables import format_table as format_table
