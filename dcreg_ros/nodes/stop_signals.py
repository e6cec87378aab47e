"""How the dcreg processes stop on SIGINT (Ctrl-C) and SIGTERM: once, cleanly, exit status 0.

A Ctrl-C under ``ros2 launch`` reaches each node twice: the terminal sends SIGINT to the whole
process group and launch forwards its own SIGINT (then SIGTERM after a timeout). rclpy's own
handler shuts the context down from a signal thread and raises KeyboardInterrupt in the main
thread wherever it happens to be: in the middle of creating the executor ("the given context is
not valid") or of ``destroy_node``, which ends the node with a traceback and exit status -2.

Here instead (standard library only, installed before the heavy imports by nodes/entry.py):
the first signal raises KeyboardInterrupt only inside an :meth:`StopSignals.interruptible`
block (module imports, a bag replay: stop at once; the caller treats any exception out of the
block as the stop once ``requested`` is set, since a library may wrap the interrupt, as numba
does in a SystemError) or at a :meth:`StopSignals.checkpoint` of a node's start-up (which runs
numba kernels: an interrupt inside one can crash the interpreter, core/interrupts.py), and
otherwise just sets ``requested`` (a spinning loop polls it); every later signal is ignored, so
the clean-up (executor shutdown, destroy_node, rclpy shutdown) always runs to its end. rclpy is initialised
without its signal handlers (``SignalHandlerOptions.NO``). Once the work is done,
:meth:`StopSignals.exiting` ignores SIGINT for good: Python puts its handlers back to the
default while it tears the interpreter down (about a second with numba and Fast DDS loaded), and
a SIGINT then would end a process that already stopped cleanly with status -2.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..core.interrupts import add_checkpoint

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_installed: "StopSignals | None" = None


class StopSignals:
    """The process's stop request (see the module docstring)."""

    def __init__(self) -> None:
        self.requested = False
        self.signals = 0  # how many arrived (the second one of a launch Ctrl-C is counted, not acted on)
        self._interrupting = False
        self._starting = False

    def _handle(self, signum: int, frame: Any) -> None:
        self.signals += 1
        first = not self.requested
        self.requested = True
        if first and self._interrupting:
            self._interrupting = False
            raise KeyboardInterrupt
        if not first and signum == signal.SIGTERM and self._starting:  # launch escalates: now
            # not a KeyboardInterrupt (it could land inside a kernel): nothing is computed yet
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            print("stopped while starting (SIGTERM)", file=sys.stderr, flush=True)
            os._exit(0)

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """A block that the first stop signal ends with KeyboardInterrupt (raised at once when a
        stop was requested before the block)."""
        if self.requested:
            raise KeyboardInterrupt
        self._interrupting = True
        try:
            yield
        finally:
            self._interrupting = False

    @contextmanager
    def starting(self) -> Iterator[None]:
        """A node's start-up, which runs numba kernels (loading a map, the warm-up): the first stop
        signal is held until :meth:`checkpoint` (between two steps) raises it as KeyboardInterrupt,
        never inside a kernel (core/interrupts.py); a SIGTERM after it (``ros2 launch`` escalating
        after its timeout) ends the process at once with status 0 (``os._exit``: nothing has been
        computed yet, and an exception could land inside a kernel)."""
        if self.requested:
            raise KeyboardInterrupt
        self._starting = True
        try:
            yield
        finally:
            self._starting = False

    def checkpoint(self) -> None:
        """Raise KeyboardInterrupt if a stop was requested during :meth:`starting` (in the main
        thread; registered as a core checkpoint, core/interrupts.py, so that a map's loading
        checks it between chunks)."""
        if self.requested and self._starting and threading.current_thread() is threading.main_thread():
            self._starting = False
            raise KeyboardInterrupt

    def exiting(self) -> None:
        """The process has finished its work: from now on SIGINT is ignored (SIGTERM stays
        deadly, for ``ros2 launch`` to end a process that hangs while exiting)."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def start_up_checkpoint() -> None:
    """:meth:`StopSignals.checkpoint` of the process's handlers, if installed (a node built in a
    test's process has none): call it between two steps of a node's start-up."""
    if _installed is not None:
        _installed.checkpoint()


def install() -> StopSignals:
    """Install the handlers of SIGINT and SIGTERM (once per process, from the main thread) and
    return the process's StopSignals."""
    global _installed
    if _installed is None:
        stop = StopSignals()
        for signum in STOP_SIGNALS:
            signal.signal(signum, stop._handle)
        add_checkpoint(stop.checkpoint)
        _installed = stop
    return _installed
