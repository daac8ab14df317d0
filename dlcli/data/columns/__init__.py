"""Table columns: infer each column's type, fit its encoding on the train split, encode any table.

A column is ``numeric`` (missing values filled, optional ``<name>_missing`` flag, scaled),
``categorical`` (one-hot of the most common values, with a ``<missing>`` input and an ``<other>``
input for rare and unseen values), ``binary`` (two values -> 0/1), ``date`` (numeric parts) or
``ignore``. Read in order:

- ``values.py``: a column's values as category keys, numbers or date parts (errors name the row);
- ``infer.py``: :func:`infer_column` applies the rules ``dlcli init`` writes into the config (and that
  columns the config does not list get); :func:`plan_columns` types every column but the target;
- ``fit.py``: :func:`fit_column` learns everything from the train split only, as plain JSON
  (``preprocessing.json``: nothing is pickled, so loading a run never runs code);
- ``encode.py``: :func:`encode` turns a raw DataFrame into the model's float32 inputs with that state.

Imports: ``dlcli.config``, ``dlcli.errors``, ``dlcli.data.scaling``; pandas lazily. No TensorFlow.
"""

from dlcli.data.columns.encode import encode, encode_table, layout, one_hot, output_names
from dlcli.data.columns.fit import fit_column
from dlcli.data.columns.infer import Planned, infer_column, plan_columns
from dlcli.data.columns.values import keys

# What other packages, the tests and the benchmarks import from here.
__all__ = ["Planned", "encode", "encode_table", "fit_column", "infer_column", "keys", "layout", "one_hot",
           "output_names", "plan_columns"]
