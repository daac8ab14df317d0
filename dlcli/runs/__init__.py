"""Run directories, ``run.json``, the runs index and atomic file writes.

A run directory is created with ``os.mkdir`` (atomic: never two runs in one directory) only after
the config and data have been validated. Every file is written to a temporary name and renamed,
so a crash leaves either the old or the new version. ``runs/index.csv`` is rewritten under an
exclusive lock, so concurrent runs never corrupt it.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import errno
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dlcli.errors import RunError, StorageError

INDEX_NAME = "index.csv"
INDEX_FIRST_COLUMNS = ["run_id", "name", "command", "status", "started", "seconds", "epochs"]
# A running process rewrites its heartbeat at least this often (once per epoch, and at start and end);
# ``runs list`` shows a "running" run whose heartbeat is older than the stale limit as crashed.
HEARTBEAT_STALE_SECONDS = 600


def default_runs_dir() -> Path:
    """``$DLCLI_RUNS_DIR`` or ``./runs``."""
    return Path(os.environ.get("DLCLI_RUNS_DIR") or "runs")


def now_iso() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------
# The one owner of run-file writes and reads. Every file dlcli writes goes through ``replacing``: a unique
# temporary file (``mkstemp``: created exclusively, never a planted symlink) in the destination's directory,
# fsync, rename. No symlinked directory inside a run is written through. A write the disk refuses is one
# StorageError line. Every run file is read through ``read_run_file``: any parse failure names the file.

# errno -> the words of the one-line message (``no space left on device while writing <path>``)
STORAGE_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
                  errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                  errno.EPERM: "operation not permitted", errno.EFBIG: "file too large"}
# Below this many free bytes, a failed write is taken for a full disk whatever the library raised
# (h5py and zipfile do not always pass the errno on).
NEARLY_FULL_BYTES = 1 << 20


def storage_error(exc: BaseException, path: Path) -> StorageError | None:
    """The one-line StorageError for a write of ``path`` that the disk refused, or None if ``exc`` is
    something else (a real bug keeps its traceback)."""
    if isinstance(exc, StorageError):
        return exc
    code = getattr(exc, "errno", None)
    words = STORAGE_ERRNOS.get(code) if isinstance(code, int) else None
    if words is None:
        with contextlib.suppress(OSError):
            if shutil.disk_usage(_existing_parent(Path(path))).free < NEARLY_FULL_BYTES:
                words = STORAGE_ERRNOS[errno.ENOSPC]
    if words is None:
        return None
    hint = {errno.ENOSPC: "free some space (or point --runs-dir / $DLCLI_RUNS_DIR elsewhere) and run again",
            errno.EDQUOT: "free some space or raise the quota, and run again",
            errno.EFBIG: "the file system refuses files this large; use another runs directory"}.get(
                code if code in STORAGE_ERRNOS else errno.ENOSPC,
                "make it writable or point --runs-dir / $DLCLI_RUNS_DIR at a writable directory")
    return StorageError(f"{words} while writing {path}; {hint}")


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_no_symlinks(path: Path) -> None:
    """Refuse to write ``path`` through a symlinked directory inside its run.

    Checked: ``path``'s directory and every directory above it up to the nearest directory holding
    ``run.json`` (nothing outside a run). The runs directory itself may be a symlink.
    """
    path = Path(path)
    stop = next((d for d in list(path.parents)[:4] if (d / "run.json").exists()), None)
    if stop is None:  # not inside a run (the runs directory's own files, a user's --output)
        return
    for directory in [path.parent, *path.parent.parents]:
        if directory.is_symlink():
            raise RunError(f"{directory}: is a symlink inside the run directory; dlcli writes only into real "
                           f"directories of a run (it would write to {os.path.realpath(directory)}). Remove the "
                           f"link and run again")
        if directory == stop or directory == directory.parent:
            break


def check_tree_has_no_symlinks(run_dir: Path) -> None:
    """Refuse to continue a run that holds a symlink anywhere inside it: Keras's checkpoints and keras-tuner's
    trials write into it by fixed names, and dlcli never writes through a link.

    Raises:
        RunError: naming the first link found.
    """
    for root, dirs, files in os.walk(run_dir):
        for name in [*dirs, *files]:
            path = Path(root) / name
            if path.is_symlink():
                raise RunError(f"{path}: is a symlink inside the run (to {os.readlink(path)}); dlcli does not write "
                               f"through links inside a run. Remove it and run again")


@contextlib.contextmanager
def replacing(path: Path, durable: bool = True) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path``; when the block ends without error, flush it to disk and
    rename it onto ``path`` (so ``path`` is absent, old or complete, never half written). The temporary file
    is removed whatever happens. For writers that want a file name (``model.save``, ``np.savez``, ``savefig``).

    Raises:
        StorageError: the disk refused the write (full, read-only, no permission): one line naming ``path``.
        RunError: a directory on the way is a symlink inside the run.
    """
    path = Path(path)
    check_no_symlinks(path)
    try:
        # The temporary name keeps the whole suffix: Keras insists on ".keras" and ".weights.h5".
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{''.join(path.suffixes)}")
    except OSError as exc:
        raise (storage_error(exc, path) or exc) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except Exception as exc:
        error = storage_error(exc, path)
        if error is None:
            raise
        raise error from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` through :func:`replacing`."""
    with replacing(path, durable) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: Path, text: str, durable: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path`` through :func:`replacing`; ``durable`` also flushes it to disk
    first (against power loss), which per-epoch heartbeats skip for speed."""
    atomic_write_bytes(path, text.encode("utf-8"), durable)


def atomic_write_json(path: Path, data: Any, durable: bool = True) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n", durable)


def open_for_append(path: Path, mode: str = "a") -> Any:
    """Open ``path`` for appending (created if absent), never through a symlink: for files that grow line by
    line (history.csv, a worker's log) and so cannot be replaced whole on each write. ``mode``: "a" or "ab".

    Raises:
        RunError: ``path`` (or a directory of the run on the way) is a symlink.
        StorageError: the disk refused it.
    """
    path = Path(path)
    check_no_symlinks(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RunError(f"{path}: is a symlink; dlcli does not write through links inside a run. Remove it "
                           f"and run again") from None
        raise (storage_error(exc, path) or exc) from None
    return os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""}))


def append_text(path: Path, text: str) -> None:
    """Append ``text`` to ``path`` through :func:`open_for_append`."""
    try:
        with open_for_append(path) as fh:
            fh.write(text)
    except OSError as exc:
        raise (storage_error(exc, path) or exc) from None


def check_free_space(path: Path, needed: int, what: str) -> None:
    """Raise StorageError unless the disk holding ``path`` has ``needed`` bytes free: called before writes that
    h5py makes (the disk filling during an h5py write can crash the whole process instead of raising)."""
    free = shutil.disk_usage(_existing_parent(Path(path))).free
    if free < needed:
        raise StorageError(f"no space left on device for {what} in {path} ({free:,} bytes free, about "
                           f"{needed:,} needed); free some space (or point --runs-dir / $DLCLI_RUNS_DIR elsewhere) "
                           f"and run again")


def make_dir(path: Path) -> Path:
    """``mkdir -p`` for a directory inside a run: no symlink on the way, a refused write is a StorageError."""
    path = Path(path)
    check_no_symlinks(path / "x")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise (storage_error(exc, path) or exc) from None
    return path


def damaged(path: Path, why: str, fix: str | None = None) -> RunError:
    """The RunError for a run file that exists but cannot be used."""
    fix = fix or ("restore it, or delete the run directory if the run is no longer needed; the other runs "
                  "are unaffected")
    return RunError(f"{path}: damaged or unreadable ({why}); {fix}")


def read_run_file(path: Path, parse: Callable[[str], Any], what: str = "", fix: str | None = None) -> Any:
    """Read a run file as UTF-8 text and ``parse`` it: the one place where a run file's parse failure becomes
    a RunError naming the file. ``parse`` raises (anything) on text of the wrong shape.

    Raises:
        RunError: the file is missing (FileNotFoundError is left to callers that allow it), unreadable,
            not UTF-8, or ``parse`` failed.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise
    except UnicodeDecodeError:
        raise damaged(path, "not UTF-8 text", fix) from None
    except OSError as exc:
        raise damaged(path, exc.strerror or type(exc).__name__, fix) from None
    try:
        return parse(text)
    except Exception as exc:
        reason = str(exc).splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise damaged(path, f"{what + ': ' if what else ''}{reason}", fix) from None


def json_object(text: str) -> dict[str, Any]:
    """``text`` as a JSON object (a dict), else ValueError."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, found {type(data).__name__}")
    return data


def csv_table(text: str, required: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """``text`` as CSV rows of strings; ValueError if a row's fields do not match the header or a
    ``required`` column is missing. Empty text is an empty table."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = list(reader)
    header = reader.fieldnames or []
    if text.strip() and (not header or len(set(header)) != len(header)):
        raise ValueError("no valid header line")
    missing = [c for c in required if c not in header] if text.strip() else []
    if missing:
        raise ValueError(f"no {', '.join(missing)} column")
    for number, row in enumerate(rows, start=2):
        if None in row or any(v is None for v in row.values()):
            raise ValueError(f"line {number} does not have the header's {len(header)} fields")
    return rows


# Files a finished run needs; their SHA-256 goes into run.json (``files``) so a later command can tell a
# missing or changed file from a good one.
CHECKED_FILES = ("config.yaml", "model.keras", "preprocessing.json", "preprocessing.npz", "metrics.csv",
                 "best_config.yaml")


def file_digest(path: Path) -> str:
    with open(path, "rb") as fh:
        return "sha256:" + hashlib.file_digest(fh, "sha256").hexdigest()


def file_digests(run_dir: Path, names: tuple[str, ...] = CHECKED_FILES) -> dict[str, str]:
    """SHA-256 of each of ``names`` present in ``run_dir``."""
    return {name: file_digest(run_dir / name) for name in names if (run_dir / name).is_file()}


def verify_recorded(run_dir: Path, info: dict[str, Any]) -> None:
    """:func:`verify_files` for every file whose checksum run.json recorded (none for an unfinished run)."""
    recorded = info.get("files")
    if isinstance(recorded, dict):
        verify_files(run_dir, info, tuple(recorded))


def verify_files(run_dir: Path, info: dict[str, Any], needed: tuple[str, ...]) -> None:
    """Check that each of ``needed`` is in ``run_dir`` and unchanged since the run finished (its checksum in
    run.json). Runs from before checksums are checked for presence only; optional files (a run without
    scaling arrays has no preprocessing.npz) are required only when run.json recorded them.

    Raises:
        RunError: one message naming the first missing or changed file.
    """
    run_dir = Path(run_dir)
    recorded = info.get("files") if isinstance(info.get("files"), dict) else {}
    for name in needed:
        path = run_dir / name
        must_exist = name in recorded or (not recorded and name != "preprocessing.npz")
        if not path.is_file():
            if must_exist:
                raise RunError(f"{run_dir}: the run has no {name}; it cannot be used without it (was it deleted or "
                               f"moved?). Restore it, or train the run again")
            continue
        if name in recorded and file_digest(path) != recorded[name]:
            raise RunError(f"{path}: changed since the run finished (its SHA-256 differs from the one in "
                           f"run.json); restore the original file, or train the run again")


def safe_name(name: str) -> str:
    """A run name usable in a directory name: letters and digits of any script, ``.``, ``_`` and ``-`` kept; no
    separators, no leading dots, no ``..``."""
    cleaned = re.sub(r"[^\w.-]+", "_", name).strip("._-")
    return cleaned[:60] or "run"


def create_unique_dir(parent: Path, stem: str, what: str = "run") -> Path:
    """Create ``parent/<stem>``, or ``<stem>-2``, ``-3``... if taken: ``mkdir`` is atomic, so two processes
    never get the same directory and nothing is overwritten."""
    make_dir(parent)
    for attempt in range(1, 10_000):
        path = parent / (stem if attempt == 1 else f"{stem}-{attempt}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise (storage_error(exc, path) or exc) from None
        return path
    raise RunError(f"{parent}: could not create a new {what} directory for {stem}")


def create_run_dir(runs_dir: Path, name: str) -> Path:
    """Create ``runs_dir/<YYYYmmdd-HHMMSS>-<name>``, unique even within one second."""
    return create_unique_dir(runs_dir, f"{time.strftime('%Y%m%d-%H%M%S')}-{safe_name(name)}")


@contextlib.contextmanager
def _locked(runs_dir: Path) -> Iterator[None]:
    make_dir(runs_dir)
    try:
        fd = os.open(runs_dir / ".index.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        lock = os.fdopen(fd, "r+")
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RunError(f"{runs_dir / '.index.lock'}: is a symlink; remove it and run again") from None
        raise (storage_error(exc, runs_dir / ".index.lock") or exc) from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_index(runs_dir: Path) -> list[dict[str, str]]:
    """The rows of ``runs_dir/index.csv`` (empty if there is none).

    Raises:
        RunError: the index is damaged (:func:`index_rows` rebuilds it from the run directories instead).
    """
    try:
        return read_run_file(runs_dir / INDEX_NAME, lambda text: csv_table(text or "(empty)", ("run_id",)),
                             fix="dlcli rebuilds it from the run directories on the next train or tune")
    except FileNotFoundError:
        return []


def index_rows(runs_dir: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The index's rows and None; if ``index.csv`` is damaged, rows rebuilt from each run's run.json and
    metrics.csv (the index only repeats them) and the reason it was damaged."""
    try:
        return read_index(runs_dir), None
    except RunError as exc:
        problem = str(exc)
    rows = []
    for run_json in sorted(Path(runs_dir).glob("*/run.json")):
        try:
            info = load_run_info(run_json.parent)
            test = next((r for r in read_metrics(run_json.parent) if r.get("split") == "test"), {})
        except RunError:
            info, test = {"run_id": run_json.parent.name, "status": "damaged"}, {}
        row = {k: info.get(k) for k in INDEX_FIRST_COLUMNS} | {"run_id": run_json.parent.name}
        rows.append(row | {f"test_{k}": v for k, v in test.items() if k != "split"})
    return rows, problem


def upsert_index(runs_dir: Path, row: dict[str, Any]) -> None:
    """Add or replace the index row whose ``run_id`` matches, under an exclusive lock (a damaged index is
    rebuilt from the run directories first)."""
    with _locked(runs_dir):
        rows = [r for r in index_rows(runs_dir)[0] if r.get("run_id") != row["run_id"]]
        rows.append({k: "" if v is None else v for k, v in row.items()})
        columns = list(INDEX_FIRST_COLUMNS)
        for r in rows:
            columns += [k for k in r if k not in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(runs_dir / INDEX_NAME, buf.getvalue())


class Run:
    """One run directory and its ``run.json``, kept up to date as the run goes."""

    def __init__(self, runs_dir: Path, name: str, command: str, info: dict[str, Any]):
        self.runs_dir = runs_dir
        self.path = create_run_dir(runs_dir, name)
        self.id = self.path.name
        self._start = time.monotonic()
        self.info: dict[str, Any] = {
            "run_id": self.id, "name": name, "command": command, "status": "running", "reason": None,
            "started": now_iso(), "ended": None, "seconds": None, "heartbeat": now_iso(),
            "pid": os.getpid(), "host": socket.gethostname(), **info,
        }
        try:
            self.save()
            self.index()
        except StorageError:  # the disk refused even the record: leave no empty run behind
            with contextlib.suppress(OSError):
                (self.path / "run.json").unlink(missing_ok=True)
                self.path.rmdir()
            raise

    @classmethod
    def reopen(cls, run_dir: Path, command: str = "train") -> Run:
        """Continue an interrupted or crashed run in its own directory (``dlcli train/tune --resume``)."""
        run_dir = Path(run_dir)
        info = resumable_info(run_dir, command)
        check_tree_has_no_symlinks(run_dir)
        self = cls.__new__(cls)
        self.runs_dir, self.path, self.id = run_dir.parent, run_dir, run_dir.name
        # Seconds keep adding up across resumes.
        self._start = time.monotonic() - float(info.get("seconds") or 0)
        self.info = {**info, "status": "running", "reason": None, "ended": None, "pid": os.getpid(),
                     "host": socket.gethostname(), "resumed": int(info.get("resumed") or 0) + 1}
        self.update()
        self.index()
        return self

    def elapsed(self) -> float:
        return round(time.monotonic() - self._start, 3)

    def save(self, durable: bool = True) -> None:
        atomic_write_json(self.path / "run.json", self.info, durable)

    def update(self, durable: bool = True, **fields: Any) -> None:
        self.info.update(fields, heartbeat=now_iso())
        self.save(durable)

    def index(self, test_metrics: dict[str, float] | None = None) -> None:
        row = {k: self.info.get(k) for k in INDEX_FIRST_COLUMNS}
        row["run_id"] = self.id
        for key, value in (test_metrics or {}).items():
            row[f"test_{key}"] = value
        upsert_index(self.runs_dir, row)

    def finish(self, status: str, reason: str | None = None, test_metrics: dict[str, float] | None = None,
               **fields: Any) -> None:
        """Mark the run ``completed`` / ``failed`` / ``interrupted`` in run.json and the index."""
        if status == "completed":  # what evaluate / predict check before they trust the files
            fields["files"] = file_digests(self.path)
        self.update(status=status, reason=reason, ended=now_iso(), seconds=self.elapsed(), **fields)
        self.index(test_metrics)


def effective_status(info: dict[str, Any]) -> str:
    """The status to show: a ``running`` run whose process is gone or silent is ``crashed``."""
    status = info.get("status") or "unknown"
    if status != "running":
        return status
    pid, host = info.get("pid"), info.get("host")
    if host == socket.gethostname() and isinstance(pid, int):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return "crashed"
        except PermissionError:
            pass
    beat = info.get("heartbeat")
    if beat:
        with contextlib.suppress(ValueError):
            age = dt.datetime.now().astimezone() - dt.datetime.fromisoformat(beat)
            if age.total_seconds() > HEARTBEAT_STALE_SECONDS:
                return "crashed"
    return status


def resumable_info(run_dir: Path, command: str = "train") -> dict[str, Any]:
    """``run.json`` of a run that ``--resume`` may continue; RunError saying why not otherwise."""
    info = load_run_info(run_dir)
    if info.get("command") != command:
        raise RunError(f"{run_dir}: a `{info.get('command')}` run; resume it with `dlcli {info.get('command')} "
                       f"--resume`")
    status = effective_status(info)
    if status == "completed":
        raise RunError(f"{run_dir}: the run already completed; to train again, start a new run with "
                       f"`dlcli {command} {Path(run_dir) / 'config.yaml'}`")
    if status == "running":
        raise RunError(f"{run_dir}: the run is still running (pid {info.get('pid')} on {info.get('host')})")
    return info


def load_run_info(run_dir: Path) -> dict[str, Any]:
    """``run.json`` of a run directory; a clear RunError if it is not one."""
    path = Path(run_dir)
    if not path.is_dir():
        raise RunError(f"{path}: no such run directory (see `dlcli runs list`)")
    try:
        return read_run_file(path / "run.json", _run_record)
    except FileNotFoundError:
        raise RunError(f"{path}: not a dlcli run directory (it has no run.json)") from None


def _run_record(text: str) -> dict[str, Any]:
    info = json_object(text)
    wrong = [k for k in ("run_id", "command", "status") if not isinstance(info.get(k, ""), str)]
    if wrong or not isinstance(info.get("status"), str):
        raise ValueError(f"no text {', '.join(wrong or ['status'])} field")
    return info


# ---------------------------------------------------------------------------------------------
# Reading runs back (``dlcli runs``, ``evaluate``, ``predict``): read-only, and light on purpose:
# ``dlcli runs ...`` must not import TensorFlow, pandas or matplotlib.

# Metric names where a lower value is better; ``runs list --sort`` puts the best runs first.
LOWER_IS_BETTER = ("loss", "error", "mae", "mse", "rmse", "mape", "msle", "hinge", "crossentropy", "divergence")
LIST_COLUMNS = ["run_id", "name", "command", "status", "epochs"]
# The `split` of the metrics.csv row that holds the trivial baseline's scores (dlcli/baseline.py) on the
# test split (val, else train, when there is none; run.json's baseline_split says which).
BASELINE_SPLIT = "baseline"


def find_run_dir(run: str | Path, runs_dir: Path) -> Path:
    """A run directory from a path or a run id (looked up under ``runs_dir``).

    Raises:
        RunError: neither a run directory nor a known run id (with the closest id, if any).
    """
    path = Path(run)
    for candidate in (path, runs_dir / str(run)):
        if candidate.is_dir():
            if not (candidate / "run.json").is_file():
                raise RunError(f"{candidate}: not a dlcli run directory (it has no run.json)")
            return candidate
    from dlcli.errors import did_you_mean

    ids = [str(r.get("run_id") or "") for r in index_rows(runs_dir)[0]]
    close = did_you_mean(str(run), ids)
    hint = f";{close}" if close else ""
    raise RunError(f"{run}: no such run directory, and no run with that id in {runs_dir}{hint} "
                   f"(see `dlcli runs list`)")


def to_number(text: Any) -> Any:
    """``"0.25"`` -> 0.25, ``"3"`` -> 3, anything else unchanged."""
    if not isinstance(text, str) or not text:
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def read_csv_rows(path: Path, required: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """A small CSV run file as rows of dicts, numbers parsed (no pandas).

    Raises:
        RunError: the file is damaged (rows that do not match the header, a ``required`` column missing).
    """
    rows = read_run_file(path, lambda text: csv_table(text, required))
    return [{k: to_number(v) for k, v in row.items()} for row in rows]


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rows of dicts as a CSV file (atomic), columns in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """``metrics.csv`` of a run (one row per split, then the ``baseline`` row), or [] if it has none."""
    path = Path(run_dir) / "metrics.csv"
    return read_csv_rows(path, ("split",)) if path.is_file() else []


def read_history(run_dir: Path) -> dict[str, list[Any]]:
    """``history.csv`` of a run as columns (``{"epoch": [1, 2], "loss": [..], ...}``), or {}."""
    path = Path(run_dir) / "history.csv"
    if not path.is_file():
        return {}
    rows = read_csv_rows(path, ("epoch",) if path.stat().st_size else ())  # empty: resumed from epoch 0
    columns: dict[str, list[Any]] = {k: [] for k in (rows[0] if rows else {})}
    for row in rows:
        for key in columns:
            value = row.get(key)
            columns[key].append(None if value in ("", None) else value)
    return columns


def read_diagnosis(run_dir: Path) -> dict[str, Any] | None:
    """``diagnosis.json`` of a run, or None (a run from before diagnoses, or one that did not finish)."""
    path = Path(run_dir) / "diagnosis.json"
    if not path.is_file():
        return None
    return read_run_file(path, json_object)


def list_evaluations(run_dir: Path) -> list[Path]:
    """The run's evaluation directories, oldest first."""
    root = Path(run_dir) / "evaluations"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def list_runs(runs_dir: Path) -> list[dict[str, Any]]:
    """One row per run in ``runs_dir/index.csv``: id, name, command, status, epochs and the test metrics.

    The status is :func:`effective_status`, so a ``running`` run whose process died shows as ``crashed``.
    """
    rows = []
    for entry in index_rows(runs_dir)[0]:
        status = entry.get("status") or "unknown"
        run_dir = runs_dir / str(entry.get("run_id") or "")
        if run_dir.is_dir() and entry.get("run_id"):
            try:
                info = load_run_info(run_dir)
                status = effective_status(info) if status == "running" else status
            except RunError:
                status = "damaged"  # run.json unreadable: `dlcli runs show` names the problem
        row: dict[str, Any] = {k: to_number(entry.get(k, "")) for k in LIST_COLUMNS}
        row["status"] = status
        row.update({k: to_number(v) for k, v in entry.items() if k.startswith("test_")})
        rows.append(row)
    return rows


def sort_runs(rows: list[dict[str, Any]], column: str | None, top: int | None = None,
              reverse: bool = False) -> list[dict[str, Any]]:
    """Rows sorted by ``column``, best first for metrics (lower first for losses and errors,
    higher first for the rest), ascending for other columns; ``reverse`` flips it; runs without
    a value go last; ``top`` keeps the first N.

    Raises:
        RunError: ``column`` is not a column of the table (the message lists the columns).
    """
    if column is not None:
        columns = list(dict.fromkeys(k for row in rows for k in row)) or list(LIST_COLUMNS)
        if column not in columns:
            from dlcli.errors import did_you_mean

            hint = did_you_mean(column, columns)
            raise RunError(f"--sort: {column!r} is not a column{';' + hint if hint else ''} "
                           f"(columns: {', '.join(columns)})")
        is_metric = column.startswith(("test_", "val_", "train_"))
        descending = is_metric and not any(word in column.lower() for word in LOWER_IS_BETTER)
        descending ^= reverse
        present = [r for r in rows if r.get(column) not in ("", None)]
        missing = [r for r in rows if r.get(column) in ("", None)]
        numeric = all(isinstance(r[column], (int, float)) for r in present)
        key = (lambda r: r[column]) if numeric else (lambda r: str(r[column]))
        rows = sorted(present, key=key, reverse=descending) + missing
    return rows[:top] if top is not None else rows


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested config data as dotted paths: ``{"model.layers.0.units": 64, ...}``."""
    out: dict[str, Any] = {}
    if isinstance(data, dict) and data:
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(data, list) and data:
        for index, value in enumerate(data):
            out.update(flatten(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        out[prefix] = data
    return out


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """``config.yaml`` of a run as plain data (safe YAML loader; {} if missing)."""
    from dlcli.config import read_yaml

    path = Path(run_dir) / "config.yaml"
    data = read_yaml(path) if path.is_file() else None
    return data if isinstance(data, dict) else {}


def _cell(value: Any) -> Any:
    return "" if value is None else (value if isinstance(value, (int, float, str)) else json.dumps(value))


def _merged_keys(dicts: list[dict[str, Any]]) -> list[str]:
    """The keys of several dicts in one order: a key missing from the first goes right after the key
    it follows in its own dict, so that related keys stay together."""
    keys: list[str] = []
    for d in dicts:
        previous = None
        for key in d:
            if key not in keys:
                keys.insert(keys.index(previous) + 1 if previous is not None else 0, key)
            previous = key
    return keys


def compare_configs(run_dirs: list[Path]) -> list[dict[str, Any]]:
    """The config values that differ between runs: one row per dotted path, one column per run."""
    flat = [flatten(read_run_config(d)) for d in run_dirs]
    keys = _merged_keys(flat)
    missing = object()
    rows = []
    for key in keys:
        values = [f.get(key, missing) for f in flat]
        if all(v == values[0] for v in values[1:]):
            continue
        row: dict[str, Any] = {"config": key}
        for run_dir, value in zip(run_dirs, values):
            # YAML spelling (null, true, 1e-05): a table's float format would hide small values.
            if value is missing:
                row[run_dir.name] = "(absent)"
            else:
                row[run_dir.name] = value if isinstance(value, str) else json.dumps(value)
        rows.append(row)
    return rows


def compare_metrics(run_dirs: list[Path]) -> list[dict[str, Any]]:
    """Status, epochs, each split's metrics and the fit diagnosis: one row per value, one column per run."""
    per_run: list[dict[str, Any]] = []
    for run_dir in run_dirs:
        info = load_run_info(run_dir)
        verify_recorded(run_dir, info)
        values: dict[str, Any] = {"status": effective_status(info), "epochs": info.get("epochs"),
                                  "seconds": info.get("seconds"), "params": info.get("params")}
        for row in read_metrics(run_dir):
            split = row.get("split")
            values.update({f"{split}_{k}": v for k, v in row.items() if k != "split"})
        diagnosis = read_diagnosis(run_dir)
        if diagnosis:
            values["diagnosis"] = diagnosis.get("verdict")
            values["best_epoch"] = diagnosis.get("best_epoch")
        per_run.append(values)
    keys = _merged_keys(per_run)
    return [{"metric": key, **{d.name: _cell(v.get(key)) for d, v in zip(run_dirs, per_run)}} for key in keys]


def _diagnosis_text(run_dir: Path, metrics: list[dict[str, Any]], high_error: float | None,
                    max_gap: float | None) -> str:
    from dlcli.runs.diagnosis import diagnose, rejudge

    saved = read_diagnosis(run_dir)
    if saved is None:
        if not metrics:
            return "diagnosis: none (the run has no metrics.csv: it did not finish)"
        from dlcli.config import DiagnosisConfig

        section = read_run_config(run_dir).get("diagnosis")
        settings = DiagnosisConfig.model_validate(section) if isinstance(section, dict) else DiagnosisConfig()
        saved = diagnose(metrics, read_history(run_dir), settings).to_dict()
    return rejudge(saved, high_error, max_gap).text()


def run_details(run_dir: Path, high_error: float | None = None, max_gap: float | None = None) -> dict[str, Any]:
    """What ``dlcli runs show`` prints: the run's record, config text, metrics, what the baseline row is,
    fit diagnosis and evaluations.

    Args:
        run_dir: the run directory.
        high_error / max_gap: judge the fit again with these thresholds (default: the run's own).
    """
    run_dir = Path(run_dir)
    info = load_run_info(run_dir)
    verify_recorded(run_dir, info)
    data = info.get("data") or {}
    classes = data.get("classes")
    record: dict[str, Any] = {
        "run": info.get("run_id", run_dir.name), "path": str(run_dir), "name": info.get("name"),
        "command": info.get("command"), "status": effective_status(info), "reason": info.get("reason"),
        "started": info.get("started"), "seconds": info.get("seconds"), "epochs": info.get("epochs"),
        "parameters": info.get("params"),
        "data": (f"{data.get('source')} ({data.get('fingerprint')}): {data.get('train')} train / {data.get('val')} "
                 f"val / {data.get('test')} test, {data.get('task')}"
                 + (f", {len(classes)} classes" if classes else "")) if data else None,
    }
    config_path = run_dir / "config.yaml"
    metrics = read_metrics(run_dir)
    evaluations = []
    for path in list_evaluations(run_dir):
        if (path / "evaluation.json").is_file():  # absent while an evaluation is being written
            saved = read_run_file(path / "evaluation.json", json_object)
            # Both absent from evaluations written before dlcli recorded them.
            backend, keras_row = (value if isinstance(value, dict) else {}
                                  for value in (saved.get("backend"), saved.get("metrics")))
            evaluations.append({"evaluation": path.name, "split": saved.get("split"), "samples": saved.get("samples"),
                                "backend": backend.get("backend"), "loss": keras_row.get("loss"),
                                **(saved.get("scores") or {})})
    return {
        "record": {k: v for k, v in record.items() if v not in (None, "")},
        "config": config_path.read_text(encoding="utf-8") if config_path.is_file() else "(no config.yaml)",
        "metrics": metrics,
        # (split, what it predicts) of the metrics' baseline row; None for runs from before baselines
        "baseline": (info["baseline_split"], info.get("baseline_predicts")) if info.get("baseline_split") else None,
        "diagnosis": _diagnosis_text(run_dir, metrics, high_error, max_gap),
        "evaluations": evaluations,
    }
