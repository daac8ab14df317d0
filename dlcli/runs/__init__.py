"""Runs: the one owner of run-file reads and writes, run records and state, the index, and the queries on them.

A run directory is created with ``os.mkdir`` (atomic: never two runs in one directory) only after the config and
data have been validated. Every file is written to a temporary name and renamed, so a crash leaves either the old
or the new version. ``runs/index.csv`` is rewritten under an exclusive lock, so concurrent runs never corrupt it.

Modules, bottom up: ``files`` (atomic writes, storage errors), ``reading`` (parsing run files), ``checksums``,
``record`` (``run.json`` and the status), ``contents`` (metrics, history, diagnosis, config, evaluations),
``index``, ``run`` (the :class:`Run` that train and tune keep up to date), ``query`` (list / find), ``compare``,
``details`` (``runs show``) and ``diagnosis`` (the fit verdict).

May import: ``dlcli.config``, ``dlcli.runtime``, ``dlcli.errors`` (the layers below it). Light on purpose: no
TensorFlow, pandas or matplotlib; the config models only where a function needs them.
"""

from dlcli.runs.checksums import CHECKED_FILES as CHECKED_FILES
from dlcli.runs.checksums import file_digest as file_digest
from dlcli.runs.checksums import file_digests as file_digests
from dlcli.runs.checksums import verify_files as verify_files
from dlcli.runs.checksums import verify_recorded as verify_recorded
from dlcli.runs.compare import compare_configs as compare_configs
from dlcli.runs.compare import compare_metrics as compare_metrics
from dlcli.runs.compare import flatten as flatten
from dlcli.runs.contents import BASELINE_SPLIT as BASELINE_SPLIT
from dlcli.runs.contents import list_evaluations as list_evaluations
from dlcli.runs.contents import read_diagnosis as read_diagnosis
from dlcli.runs.contents import read_history as read_history
from dlcli.runs.contents import read_metrics as read_metrics
from dlcli.runs.contents import read_run_config as read_run_config
from dlcli.runs.details import run_details as run_details
from dlcli.runs.files import append_text as append_text
from dlcli.runs.files import atomic_write_bytes as atomic_write_bytes
from dlcli.runs.files import atomic_write_json as atomic_write_json
from dlcli.runs.files import atomic_write_text as atomic_write_text
from dlcli.runs.files import check_free_space as check_free_space
from dlcli.runs.files import columns_of as columns_of
from dlcli.runs.files import create_unique_dir as create_unique_dir
from dlcli.runs.files import csv_text as csv_text
from dlcli.runs.files import make_dir as make_dir
from dlcli.runs.files import open_for_append as open_for_append
from dlcli.runs.files import replacing as replacing
from dlcli.runs.files import storage_error as storage_error
from dlcli.runs.files import write_csv as write_csv
from dlcli.runs.index import default_runs_dir as default_runs_dir
from dlcli.runs.index import index_rows as index_rows
from dlcli.runs.index import read_index as read_index
from dlcli.runs.index import upsert_index as upsert_index
from dlcli.runs.query import find_run_dir as find_run_dir
from dlcli.runs.query import list_runs as list_runs
from dlcli.runs.query import sort_runs as sort_runs
from dlcli.runs.reading import damaged as damaged
from dlcli.runs.reading import json_object as json_object
from dlcli.runs.reading import read_csv_rows as read_csv_rows
from dlcli.runs.reading import read_run_file as read_run_file
from dlcli.runs.record import effective_status as effective_status
from dlcli.runs.record import load_run_info as load_run_info
from dlcli.runs.record import now_iso as now_iso
from dlcli.runs.record import resumable_info as resumable_info
from dlcli.runs.run import Run as Run
