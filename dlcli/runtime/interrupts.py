"""Ctrl-C and SIGTERM: how a signal stops a run, in one place.

``train`` and ``tune`` call :func:`install` before their run starts and :func:`restore` when it ends. In
between, SIGINT and SIGTERM raise KeyboardInterrupt, which the run turns into the ``interrupted`` status
(exit code 130) and a working ``--resume``.

A KeyboardInterrupt can get lost: raised inside a ``__del__`` (TensorFlow has many) or a library's
``except BaseException``, Python prints "Exception ignored in ..." and carries on. So the signal is also
recorded, and each boundary of a run (an epoch's end, a trial's start and end, scoring, saving) calls
:func:`checkpoint`, which raises it there. A signal never interrupts:

- a finalizer (``__del__``): it is raised at the next boundary instead;
- an ``except`` or ``finally`` block, such as the one marking the run interrupted: a second Ctrl-C cannot
  cut that short, it is only recorded;
- a :func:`deferred` block (keras-tuner's state files at a trial's start and end, the trained model's save):
  it is raised when the block ends, so those files are either all before or all after the step;
- anything after :func:`hold`: the run has finished and is only being marked completed.

A worker process of ``tune --workers`` ends with its chief, even one killed with ``kill -9``
(:func:`exit_with_parent`), and cleanly on the SIGTERM that stops it (:func:`exit_on_sigterm`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Test hook: "SIG@POINT" (e.g. "INT@trial_end:2", "TERM@saving") sends SIG to this process the first
# time the run reaches checkpoint POINT. Read when a run installs its handlers; unset, it costs nothing.
FAULT_VARIABLE = "DLCLI_FAULT_SIGNAL"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h

_active = False  # between install() and restore()
_received: int | None = None  # the first signal of this run
_held = False
_deferring = 0  # depth of deferred() blocks in the main thread
_fault: tuple[int, str] | None = None


def install() -> dict[int, Any]:
    """Make SIGINT and SIGTERM raise KeyboardInterrupt (see the module's docstring); returns the previous
    handlers for :func:`restore`. Only the main thread can handle signals: elsewhere this does nothing."""
    global _active, _received, _held, _deferring, _fault
    if threading.current_thread() is not threading.main_thread():
        return {}
    _received, _held, _deferring = None, False, 0
    _fault = _parse_fault(os.environ.get(FAULT_VARIABLE))
    previous = {sig: signal.signal(sig, _on_signal) for sig in SIGNALS}
    _active = True
    return previous


def restore(previous: dict[int, Any]) -> None:
    """Put back the handlers :func:`install` replaced."""
    global _active, _fault
    if not previous:
        return
    _active, _fault = False, None
    for sig, handler in previous.items():
        signal.signal(sig, signal.SIG_DFL if handler is None else handler)


def hold() -> None:
    """From here on a signal is only recorded: the run is done and is being marked completed."""
    global _held
    _held = True


def checkpoint(point: str) -> None:
    """A boundary of the run: raise KeyboardInterrupt here if a signal came and was not raised yet.

    ``point`` names the boundary for the test hook (``DLCLI_FAULT_SIGNAL="INT@point"``):

    - ``train``: ``before_fit``, ``epoch_end:N`` (N counts from 1, across resumes), ``saving`` (the fit
      is over; the trained model is saved next), ``scoring``, ``finish`` (before the run is marked completed);
    - ``tune``: ``trial_start:N`` and ``trial_end:N`` (N: the trial's number, its id + 1; in the chief with
      ``--workers`` they run in its gRPC thread), ``epoch_end:N`` (inside a trial, the first to reach it),
      ``serving`` (the chief's wait for its workers, every 0.25 s), ``scoring`` and ``saving`` (the best
      trial's model), ``finish``.
    """
    global _fault
    if not _active:
        return
    if _fault is not None and _fault[1] == point:
        sig, _fault = _fault[0], None
        os.kill(os.getpid(), sig)
    if _received is not None:
        _raise_if_due()


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A step that a signal must not cut in two: a signal during it is raised when it ends."""
    global _deferring
    if threading.current_thread() is not threading.main_thread():
        yield  # signals interrupt only the main thread
        return
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    _raise_if_due()


def _raise_if_due() -> None:
    if (_active and _received is not None and not _held and not _deferring
            and threading.current_thread() is threading.main_thread()):
        raise KeyboardInterrupt


def _on_signal(signum: int, frame: Any) -> None:
    global _received
    if _received is None:
        _received = signum
    # While an exception is being handled (sys.exc_info), a KeyboardInterrupt would replace it halfway
    # through its except / finally block: marking the run interrupted, for one.
    if _held or _deferring or sys.exc_info()[0] is not None or _in_finalizer(frame):
        return
    raise KeyboardInterrupt


def _in_finalizer(frame: Any) -> bool:
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


def _parse_fault(spec: str | None) -> tuple[int, str] | None:
    if not spec:
        return None
    name, _, point = spec.partition("@")
    sig = getattr(signal, "SIG" + name.upper().removeprefix("SIG"), None)
    if not point or not isinstance(sig, signal.Signals):
        raise ValueError(f"{FAULT_VARIABLE}={spec!r}: expected SIGNAL@POINT, e.g. INT@epoch_end:2")
    return int(sig), point


def exit_on_sigterm(grace_seconds: float = 10.0) -> None:
    """Make SIGTERM end this process (exit code 143) through its ``finally`` blocks, so that no temporary file
    stays behind (a ``tune`` worker, which its chief stops with SIGTERM). If that takes more than
    ``grace_seconds``, or a second SIGTERM comes, the process ends at once."""

    def stop(signum: int, frame: Any) -> None:
        code = 128 + signum
        if _in_finalizer(frame):
            os._exit(code)  # Python would swallow a SystemExit raised here
        signal.signal(signum, lambda *_: os._exit(code))
        timer = threading.Timer(grace_seconds, os._exit, (code,))
        timer.daemon = True
        timer.start()
        raise SystemExit(code)

    signal.signal(signal.SIGTERM, stop)


def exit_with_parent(parent_pid: int, poll_seconds: float = 2.0) -> None:
    """End this process (SIGTERM) as soon as ``parent_pid``, its parent, is gone, whatever killed it.

    On Linux the kernel sends the signal (PR_SET_PDEATHSIG); a thread also checks every ``poll_seconds``
    that the parent is still this process's parent (other systems, and a parent that died before the
    kernel was asked).
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)

    def orphaned() -> bool:
        return os.getppid() != parent_pid

    def watch() -> None:
        while not orphaned():
            time.sleep(poll_seconds)
        print(f"the chief (pid {parent_pid}) is gone; this worker stops", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="dlcli-parent-watch", daemon=True).start()
