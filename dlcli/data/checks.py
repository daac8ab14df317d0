"""Checks on a user's data before and after it is read: the file itself (kind, permissions, size limit),
a table's header (repeated column names) and its values (NaN, infinity)."""

from __future__ import annotations

import errno
import math
import os
import stat
from pathlib import Path

import numpy as np

from dlcli.errors import ConfigError, DataError, quoted

# A data file is read into memory whole (pandas, NumPy): a larger one is refused before reading, with how to
# raise the limit. A sparse file counts at its full size, since that is what a reader would have to go through.
MAX_DATA_MB_ENV = "DLCLI_MAX_DATA_MB"
DEFAULT_MAX_DATA_MB = 1024
_NOT_REGULAR = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def max_data_mb() -> float:
    """The size limit of a data file in MB: ``$DLCLI_MAX_DATA_MB``, else 1024 (1 GiB)."""
    text = os.environ.get(MAX_DATA_MB_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_DATA_MB
    try:
        limit = float(text)
    except ValueError:
        limit = math.nan
    if not (math.isfinite(limit) and limit > 0):
        raise ConfigError(MAX_DATA_MB_ENV, f"{quoted(text, 60)} is not a size in MB; give a positive number, e.g. "
                          f"{MAX_DATA_MB_ENV}=4096 (unset, the limit is {DEFAULT_MAX_DATA_MB} MB)")
    return limit


def check_data_file(path: Path, where: str = "") -> os.stat_result:
    """The one gate before reading a user's data file: it must be a readable regular file within the size limit.

    Every reader of user data (tables, .npz files, images; train, tune, init, evaluate, predict) calls this
    first, so that a symlink loop, a directory, a pipe (reading one would wait forever), a file without read
    permission or one too large to load is one message, not a traceback, a hang or an exhausted memory.

    Args:
        path: the file.
        where: what named it (e.g. ``data.source``), put before the message.

    Returns:
        The file's ``os.stat`` (size, modification time).

    Raises:
        DataError: naming the path, what is wrong and how to fix it.
    """
    prefix = f"{where}: " if where else ""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        dangling = " (a symbolic link whose target does not exist)" if os.path.islink(path) else ""
        raise DataError(f"{prefix}file not found: {path}{dangling}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DataError(f"{prefix}{path} is a symbolic link loop (it leads back to itself); point the link at "
                            f"the real data file") from None
        if exc.errno == errno.EACCES:
            raise DataError(f"{prefix}{path}: permission denied (a folder on its path cannot be entered); check "
                            f"the folders' permissions") from None
        raise DataError(f"{prefix}{path}: cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise DataError(f"{prefix}{path} is a directory, not a file; give a .csv, .parquet or .npz file")
    kind = next((name for test, name in _NOT_REGULAR if test(info.st_mode)), None)
    if kind is not None or not stat.S_ISREG(info.st_mode):
        raise DataError(f"{prefix}{path} is {kind or 'not a regular file'}; dlcli reads data only from regular files "
                        f"(a pipe or device could be read forever): save the data to a file first")
    if not os.access(path, os.R_OK):
        raise DataError(f"{prefix}{path}: permission denied; the file cannot be read (e.g. chmod u+r {path})")
    limit = max_data_mb()
    if info.st_size > limit * 2**20:
        raise DataError(f"{prefix}{path} is {info.st_size / 2**20:,.1f} MB ({info.st_size:,} bytes), over the "
                        f"{limit:g} MB limit for a data file, which is read into memory whole; to read it anyway, "
                        f"raise the limit with the environment variable {MAX_DATA_MB_ENV}, e.g. "
                        f"{MAX_DATA_MB_ENV}={_raised_limit(info.st_size)}, or use a sample of the data")
    return info


def _raised_limit(size: int) -> int:
    """A round limit in MB (a power of two) that ``size`` bytes fit under."""
    mb = 1024
    while mb * 2**20 < size:
        mb *= 2
    return mb


def check_unique_columns(names: list[str], path: Path | str) -> None:
    """Raise DataError naming the column names a table's header repeats (empty names aside)."""
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(names, start=1):
        positions.setdefault(name, []).append(i)
    repeated = [(name, where) for name, where in positions.items() if len(where) > 1 and name != ""]
    if repeated:
        listed = ", ".join(f"{quoted(name, 60)} (columns {', '.join(map(str, where[:5]))})"
                           for name, where in repeated[:5])
        more = f" and {len(repeated) - 5} more" if len(repeated) > 5 else ""
        raise DataError(f"{path}: the header repeats the column name{'s' if len(repeated) > 1 else ''} {listed}"
                        f"{more}; each column needs a name of its own (pandas would silently rename a copy to "
                        f"'<name>.1'): rename or drop the copies")


def check_finite(x: np.ndarray, feature_names: list[str] | None, path: Path | str) -> None:
    """Raise DataError naming the first column holding NaN or inf."""
    flat = x.reshape(len(x), -1)
    bad = ~np.isfinite(flat)
    if bad.any():
        rows, cols = np.nonzero(bad)
        col = int(cols[0])
        name = feature_names[col] if feature_names and col < len(feature_names) else f"feature {col}"
        what = "NaN (missing)" if np.isnan(flat[rows[0], col]) else "infinite"
        raise DataError(f"{path}: column {name!r} has {int(bad[:, col].sum())} {what} value(s), first in data row "
                        f"{int(rows[0]) + 1}; fill or drop them before training")
