"""Data: load a source, encode labels for the loss, split, scale and reshape.

Owns everything between a config's ``data:`` section and the arrays (or ``tf.data`` pipelines) that
``model.fit`` receives, and the :class:`Preprocessing` fitted on the train split that the run directory
stores, so that ``evaluate`` and ``predict`` apply exactly what training applied. Read in order:

- ``checks.py``: the gate before reading a user's file; header and value checks;
- ``sources.py``: bundled, Keras and .npz datasets as raw arrays; ``tables.py``: .csv / .parquet files;
  ``images.py``: image folders (``tf.data`` pipelines, TensorFlow imported only to load one);
- ``labels.py``: targets as the loss wants them; ``splits.py``: train / val / test;
  ``scaling.py``: feature and target scaling, reshape; ``fingerprints.py``: same data, same fingerprint;
- ``columns/``: a table's column types, fitted encodings and encoding;
- ``dataset.py``: :class:`Dataset` and :class:`Preprocessing` (saved with the run);
- ``prepare.py``: :func:`prepare` / :func:`prepare_table`, the pipeline from config to :class:`Dataset`.

Imports: ``dlcli.runs`` (run files), ``dlcli.runtime``, ``dlcli.config``, ``dlcli.errors``; NumPy, and
pandas, scikit-learn, PIL and TensorFlow lazily, inside the functions that need them.
"""

from dlcli.data.checks import check_data_file, check_finite
from dlcli.data.dataset import Dataset, Preprocessing, is_streamed, keras_inputs
from dlcli.data.fingerprints import row_hashes
from dlcli.data.prepare import prepare, prepare_table
from dlcli.data.scaling import PIXEL_MAX
from dlcli.data.sources import load_raw
from dlcli.data.splits import split_indices
from dlcli.data.tables import load_table, read_table, table_features

# What other packages (and the tests and benchmarks) import from here.
__all__ = ["PIXEL_MAX", "Dataset", "Preprocessing", "check_data_file", "check_finite", "is_streamed", "keras_inputs",
           "load_raw", "load_table", "prepare", "prepare_table", "read_table", "row_hashes", "split_indices",
           "table_features"]
