"""The one owner of run-file writes: every file dlcli writes goes through :func:`replacing`.

A unique temporary file (``mkstemp``: created exclusively, never a planted symlink) in the destination's
directory, fsync, rename: a crash leaves the old or the new version, never half of one. No symlinked
directory inside a run is written through. A write the disk refuses is one StorageError line.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dlcli.errors import RunError, StorageError

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


def columns_of(rows: list[dict[str, Any]], first: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The columns of rows of dicts: the ``first`` ones, then the others in first-seen order."""
    columns: list[str] = list(first)
    for row in rows:
        columns += [k for k in row if k not in columns]
    return columns


def csv_text(rows: list[dict[str, Any]], first: list[str] | tuple[str, ...] = ()) -> str:
    """Rows of dicts as CSV text (:func:`columns_of` order; a row without a column gets an empty cell)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns_of(rows, first), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_csv(path: Path, rows: list[dict[str, Any]], first: list[str] | tuple[str, ...] = ()) -> None:
    """Rows of dicts as a CSV file (atomic), columns as :func:`csv_text` orders them."""
    atomic_write_text(path, csv_text(rows, first))
