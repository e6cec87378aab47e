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
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class _Held:
    """The Ctrl-C held by the innermost active :func:`ctrl_c_at_checkpoints` block."""

    requested = False


def _hold(signum: int, frame: FrameType | None) -> None:
    if _Held.requested:  # the second Ctrl-C: now
        _Held.requested = False
        raise KeyboardInterrupt
    _Held.requested = True


def _holding() -> bool:
    return signal.getsignal(signal.SIGINT) is _hold


@contextmanager
def ctrl_c_at_checkpoints() -> Iterator[None]:
    """Within the block a first Ctrl-C is held: :func:`ctrl_c_checkpoint` raises it as
    KeyboardInterrupt, or the end of the block does; a second Ctrl-C raises at once. Active from
    the main thread over Python's default SIGINT handler; elsewhere, with another handler (a
    ROS node's, an ignored SIGINT) and inside an active block, the block runs as is."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    _Held.requested = False
    signal.signal(signal.SIGINT, _hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        held, _Held.requested = _Held.requested, False
    if held:
        raise KeyboardInterrupt


def ctrl_c_checkpoint() -> None:
    """Raise KeyboardInterrupt if a Ctrl-C is held by an active :func:`ctrl_c_at_checkpoints`
    block (a cheap test: call it between two pieces of work)."""
    if _Held.requested and _holding():
        _Held.requested = False
        raise KeyboardInterrupt


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
