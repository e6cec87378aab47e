"""Ctrl-C between two pieces of work, never inside a numba kernel's return (standard library only).

Python raises KeyboardInterrupt between two bytecodes of whatever Python code runs when SIGINT
arrives. A numba kernel that returns arrays or tuples calls back into Python while it converts
its result (``numba/core/serialize.py``: ``_numba_unpickle``; a NamedTuple's ``__new__``) and does
not expect that call to fail: a KeyboardInterrupt raised there ends the process with a
segmentation fault on Python 3.12, on 3.11 with a SystemError chained to the interrupt. Measured
here: ``dcreg compare`` interrupted during a run crashed 1 time in 5 on a loaded machine with 3.12
(CI, stop 19); a loop calling ``analyze_hessian_arrays`` with a SIGALRM handler raising every 0.3 ms
crashed within seconds on 3.12. Where the handler was called cannot be told reliably from its
frame argument (at a function's first instruction Python passes the caller's frame).

So long jobs hold the first Ctrl-C and act on it at a checkpoint between two pieces of work
(a frame of a run, a simulated scan): :func:`ctrl_c_at_checkpoints` around the job,
:func:`ctrl_c_checkpoint` between the pieces. A second Ctrl-C raises at once, as Python's
default does (for a user who does not want to wait for the current piece to end).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType


class _Held:
    """The state of the innermost active :func:`ctrl_c_at_checkpoints` block."""

    requested = False  # a Ctrl-C waits for a checkpoint
    delivered = False  # a checkpoint acted on one: the next raises at once


_extra_checkpoints: list[Callable[[], None]] = []


def _hold(signum: int, frame: FrameType | None) -> None:
    if _Held.requested or _Held.delivered:  # the second Ctrl-C: now
        _Held.requested, _Held.delivered = False, True
        raise KeyboardInterrupt
    _Held.requested = True


@contextmanager
def ctrl_c_at_checkpoints() -> Iterator[None]:
    """Within the block a first Ctrl-C is held: :func:`ctrl_c_checkpoint` raises it as
    KeyboardInterrupt, or the end of the block does; a second Ctrl-C raises at once, also once
    a checkpoint acted on the first. Active from the main thread over Python's default SIGINT
    handler; elsewhere, with another handler (a ROS node's, an ignored SIGINT) and inside an
    active block, the block runs as is (an error that leaves the block drops a held Ctrl-C: the
    error is what the caller reports)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    _Held.requested = _Held.delivered = False
    signal.signal(signal.SIGINT, _hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        held, _Held.requested, _Held.delivered = _Held.requested, False, False
    if held:
        raise KeyboardInterrupt


def take_held_ctrl_c() -> bool:
    """True once for a Ctrl-C held by an active :func:`ctrl_c_at_checkpoints` block (from the
    main thread; the block counts it as acted on)."""
    if not (_Held.requested and threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is _hold):
        return False
    _Held.requested, _Held.delivered = False, True
    return True


def ctrl_c_checkpoint() -> None:
    """Raise KeyboardInterrupt for a held Ctrl-C (a cheap test: call it between two pieces of
    work). Also runs the checkpoints registered with :func:`add_checkpoint`."""
    for check in _extra_checkpoints:
        check()
    if take_held_ctrl_c():
        raise KeyboardInterrupt


def add_checkpoint(check: Callable[[], None]) -> None:
    """Have :func:`ctrl_c_checkpoint` call ``check`` too: a process with its own stop handling
    (the ROS nodes: nodes/stop_signals.py) raises its stop there."""
    if check not in _extra_checkpoints:
        _extra_checkpoints.append(check)


def caused_by_ctrl_c(exc: BaseException) -> bool:
    """Whether ``exc`` stands for Ctrl-C: a KeyboardInterrupt, or an error it caused (a library
    may wrap it: a SIGINT inside a numba kernel surfaces as a SystemError 'returned a result
    with an exception set' chained to the KeyboardInterrupt)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False
