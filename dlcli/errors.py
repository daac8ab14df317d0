"""The errors dlcli raises for user mistakes.

Library code raises these; only ``dlcli.cli`` catches them, prints the message and chooses
the exit code. Anything else is a real bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class DlcliError(Exception):
    """A mistake in what the user gave us: printed as one message, exit code 2."""

    exit_code = 2


class ConfigError(DlcliError):
    """The YAML config (or a ``--set`` override) is wrong.

    Args:
        path: dotted YAML path of the offending value, e.g. ``model.layers[2].activation``.
        message: what is wrong, what was given and what is allowed.
    """

    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class DataError(DlcliError):
    """A data file or dataset cannot be used as given."""


class RunError(DlcliError):
    """A run directory is missing, incomplete or of the wrong kind."""


class StorageError(DlcliError):
    """The disk refused a write (full, read-only, no permission): one line naming the file, exit code 1.

    Raised by the one owner of run-file writes (``dlcli.runs``) and by training when Keras's own saves fail.
    """

    exit_code = 1


class RunFailed(Exception):
    """Training started but failed (e.g. the loss became NaN): the run is marked failed, exit 1."""

    exit_code = 1


class RunInterrupted(Exception):
    """Ctrl-C or SIGTERM stopped a run; it is marked ``interrupted`` and the exit code is 130."""

    exit_code = 130


# The longest error line dlcli prints (``cli.py`` caps every message at this, whatever raised it), and the longest
# piece of user data (a cell, a column name, a line of a file) quoted inside one.
MAX_MESSAGE = 800
MAX_QUOTED = 200


def shorten(text: str, limit: int = MAX_QUOTED) -> str:
    """``text`` cut to at most ``limit`` characters, keeping its head and tail around an ellipsis.

    A 10 MB cell or a file's whole line quoted in a message stays readable, and the end of a message
    (usually the fix) survives.

    Example:
        >>> shorten("a" * 50 + "b" * 50, 11)
        'aaaaa…bbbbb'
    """
    text = str(text)
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2 + (limit - 1) % 2
    return text[:head] + "…" + text[len(text) - (limit - 1 - head):] if limit > 1 else "…"


def quoted(value: object, limit: int = MAX_QUOTED) -> str:
    """``repr(value)`` shortened with :func:`shorten`: a user's value as a message quotes it."""
    return shorten(repr(value), limit)


def did_you_mean(given: str, allowed: Iterable[str]) -> str:
    """Return ``" did you mean 'x'?"`` for the closest allowed name, or ``""``."""
    allowed = list(allowed)
    lowered = {a.lower(): a for a in allowed}
    if str(given).lower() in lowered and lowered[str(given).lower()] != given:
        return f" did you mean '{shorten(lowered[str(given).lower()], 60)}'?"
    close = difflib.get_close_matches(str(given), allowed, n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(str(given).lower(), list(lowered), n=1, cutoff=0.6)
        close = [lowered[c] for c in close]
    return f" did you mean '{shorten(close[0], 60)}'?" if close else ""


def allowed_list(names: Iterable[str], limit: int = 12) -> str:
    """Format allowed names for a message, shortened to ``limit`` entries (each cut to 60 characters)."""
    names = sorted(set(names), key=str.lower)
    shown = ", ".join(shorten(name, 60) for name in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """How an exception becomes a message: its first non-empty line (cut to ``limit``), or its type's name.

    Library errors (h5py, pandas, YAML parsers) put the useful part first and a long context after it.

    Example:
        >>> first_line(ValueError("bad value\\n  context"))
        'bad value'
    """
    line = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
    if not line:
        return type(exc).__name__
    return line if limit is None else line[:limit]
