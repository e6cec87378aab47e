"""One thread budget for every method in a benchmark process (ours and the peers').

A benchmark that compares times must give every method the same number of threads and say so.
numba (ours) and small_gicp / KISS-ICP (per call or per configuration) can be limited at run
time; Open3D's OpenMP reads ``OMP_NUM_THREADS`` once, when it is loaded, so the budget has to be
set before Open3D is imported (a benchmark that wants two budgets runs itself once per budget).
"""

from __future__ import annotations

import os
import sys

_budget: int | None = None


def all_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def set_thread_budget(threads: int | None) -> int:
    """Limit this process's methods to ``threads`` (None or 0: every core); returns the budget.
    Raises RuntimeError when Open3D is already loaded with another budget."""
    global _budget
    n = all_cores() if not threads else int(threads)
    if n < 1:
        raise ValueError(f"thread budget must be >= 1, got {threads}")
    if "open3d" in sys.modules and os.environ.get("OMP_NUM_THREADS") != str(n):
        raise RuntimeError("set the thread budget before open3d is imported (OpenMP reads OMP_NUM_THREADS once)")
    os.environ["OMP_NUM_THREADS"] = str(n)
    import numba

    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    _budget = n
    return n


def thread_budget() -> int:
    """The budget set by :func:`set_thread_budget`, else every core."""
    return _budget if _budget is not None else all_cores()
