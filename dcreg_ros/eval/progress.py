"""Progress of an offline run on stderr: a live tqdm bar on a terminal, a line per ~10% otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

from ..core.degeneracy import flagged_axes
from ..core.odometry import FrameRecord

_BAR = "{desc}{bar:16} frame {n_fmt}/{total_fmt} [{elapsed}<{remaining}]{postfix}"
_LINE = "{desc}frame {n_fmt}/{total_fmt} [{elapsed}<{remaining}]{postfix}"
_LINE_NO_TOTAL = "{desc}frame {n_fmt} [{elapsed}]{postfix}"
_TTY_REFRESH_S = 0.2


def describe_frame(record: FrameRecord, hz: float) -> str:
    """'12.3 Hz, degenerate: x (kappa_t 32)' for the progress display."""
    weak = ", ".join(flagged_axes(record.degenerate_mask)) or "none"
    kappa = f" (kappa_t {record.degeneracy.kappa_translation:.0f})" if record.degeneracy else ""
    return f"{hz:5.1f} Hz, degenerate: {weak}{kappa}"


class Progress:
    """Frames registered so far with the live rate (Hz) and the current degeneracy.

    On a terminal a tqdm bar is redrawn in place; on a pipe or log file (non-tty) the same text
    is written as one line per ~10% of ``total`` (per 100 frames when the total is unknown), so
    logs stay readable. ``enabled=False`` prints nothing (``--quiet``).
    """

    def __init__(self, total: int | None, label: str = "", stream: TextIO | None = None, enabled: bool = True) -> None:
        self.total = total or None
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.count = 0
        self._start = time.perf_counter()
        self._last_step = -1
        tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar = (tqdm(total=self.total, desc=label, file=self.stream, bar_format=_BAR, mininterval=_TTY_REFRESH_S,
                          dynamic_ncols=True, leave=True)
                     if enabled and tty else None)

    def update(self, record: FrameRecord) -> None:
        """Count one registered frame (``record``) and refresh the display when due."""
        self.count += 1
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self._start
        text = describe_frame(record, self.count / max(elapsed, 1e-9))
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)
            self._bar.update(1)
            return
        step = int(10 * self.count / self.total) if self.total else self.count // 100
        if step != self._last_step or self.count == self.total:
            self._last_step = step
            fmt = _LINE if self.total else _LINE_NO_TOTAL
            line = tqdm.format_meter(self.count, self.total, elapsed, prefix=self.label, bar_format=fmt, postfix=text)
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
