"""Plausibility of frame stamps: out of order, jumps that start a new sequence, gaps.

A LiDAR stream's stamps advance by about one sensor period. Three things break that, and none
of them may cost more than the frames involved:

- a stamp not after the last accepted one, by less than the jump limit (a duplicate, a reordered
  message): refused as out of order;
- a jump forward or backward beyond the limit (a driver glitch stamping 2038, a clock step, a
  bag that loops): the frame is held back as a *candidate*. If the next stamp continues the old
  sequence, the candidate was an outlier (one frame lost); if it continues the candidate, a new
  sequence has started: with ``on_jump = reset`` the odometry restarts there, with ``skip`` its
  frames are skipped until the stamps continue the old sequence again;
- gaps: frames missing against the estimated sensor period (counted, not refused).

Everything here is pure bookkeeping on float seconds; :class:`StampGuard` decides and
:class:`StampGaps` counts, so the odometry, the offline runner and the ROS node share one rule.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .config_io import non_negative, one_of, param, positive
from .pointcloud import InputError

ON_JUMP_CHOICES = ("reset", "skip")
# verdicts of StampGuard.check
ACCEPT = "accept"  # register the frame
NEW_SEQUENCE = "new_sequence"  # restart the odometry, then register the frame as its first
OUT_OF_ORDER = "out_of_order"  # refuse: not after the last frame
JUMP = "jump"  # refuse: held back as a candidate (outlier or the start of a new sequence)
SKIP = "skip"  # refuse: on_jump = skip and the stamps have not come back yet
REFUSED = (OUT_OF_ORDER, JUMP, SKIP)

PERIOD_WINDOW = 50  # recent stamp intervals the period estimate looks at
MIN_INTERVALS = 5  # intervals needed before a period is estimated
PERIOD_QUANTILE = 25  # percentile: robust to up to 3/4 of the intervals spanning lost frames
GAP_FACTOR = 1.5  # an interval longer than this many periods has frames missing


@dataclass(frozen=True)
class StampConfig:
    """When a stamp starts a new sequence instead of continuing the current one."""

    max_jump: float = param(10.0, "a stamp farther than this from the last frame's, forward or backward, is a jump: an outlier or a new sequence (s)", positive, "> 0 s")
    max_jump_periods: float = param(0.0, "also a jump beyond this many estimated sensor periods (whichever limit is smaller); 0 = off", non_negative, ">= 0")
    on_jump: str = param("reset", "when the stamps continue after a jump: reset (restart the odometry there) or skip (skip frames until the stamps continue the old sequence)", one_of(*ON_JUMP_CHOICES), "reset or skip")


class StampVerdict(NamedTuple):
    """What to do with one frame: ``action`` is one of ACCEPT, NEW_SEQUENCE, OUT_OF_ORDER, JUMP,
    SKIP; ``reason`` is a one-line explanation (empty for a plain accept); ``outlier`` the stamp
    of a held frame that turned out to be an outlier (s), else None."""

    action: str
    reason: str = ""
    outlier: float | None = None

    @property
    def refused(self) -> bool:
        return self.action in REFUSED


class StampRejected(InputError):
    """A frame refused for its stamp; ``verdict`` says why (OUT_OF_ORDER, JUMP or SKIP)."""

    def __init__(self, verdict: StampVerdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict


class PeriodEstimator:
    """The sensor period from recent stamp intervals (a low percentile: lost frames only make
    intervals longer, so the short ones are the period)."""

    def __init__(self) -> None:
        self._intervals: deque[float] = deque(maxlen=PERIOD_WINDOW)

    def add(self, interval: float) -> None:
        """Record an interval (s) between consecutive stamps of one sequence."""
        if interval > 0 and math.isfinite(interval):
            self._intervals.append(interval)

    @property
    def period(self) -> float | None:
        """Estimated period (s), or None before MIN_INTERVALS intervals were seen."""
        if len(self._intervals) < MIN_INTERVALS:
            return None
        return float(np.percentile(np.fromiter(self._intervals, float), PERIOD_QUANTILE))


def jump_limit(config: StampConfig, period: float | None) -> float:
    """Largest plausible distance (s) between consecutive stamps."""
    if config.max_jump_periods > 0 and period is not None:
        return min(config.max_jump, config.max_jump_periods * period)
    return config.max_jump


def _seconds(stamp: float) -> str:
    return f"{stamp:.6f} s"


class StampGuard:
    """Decides per frame stamp (see the module docstring). ``check`` gives the verdict and
    remembers a held candidate; ``commit`` records a stamp once its frame was registered."""

    def __init__(self, config: StampConfig | None = None) -> None:
        self.config = config or StampConfig()
        self.periods = PeriodEstimator()
        self.last: float | None = None  # stamp of the last registered frame (s)
        self.candidate: float | None = None  # stamp of a held frame after a jump (s)

    def reset(self) -> None:
        """Forget the sequence (the next stamp is accepted as a first frame)."""
        self.last = None
        self.candidate = None
        self.periods = PeriodEstimator()

    @property
    def limit(self) -> float:
        return jump_limit(self.config, self.periods.period)

    def check(self, stamp: float) -> StampVerdict:
        """Verdict for a frame stamped ``stamp`` (s). Refused frames leave ``last`` alone."""
        if self.last is None:
            self.candidate = None
            return StampVerdict(ACCEPT)
        limit = self.limit
        step = stamp - self.last
        if 0.0 < step <= limit:  # continues the current sequence
            outlier, self.candidate = self.candidate, None
            if outlier is None:
                return StampVerdict(ACCEPT)
            return StampVerdict(ACCEPT, f"the held frame stamped {_seconds(outlier)} was an outlier: skipped", outlier)
        if -limit < step <= 0.0:
            return StampVerdict(OUT_OF_ORDER, f"out-of-order stamp {_seconds(stamp)} is not after the last frame's "
                                              f"{_seconds(self.last)}: skipped")
        candidate = self.candidate
        if candidate is not None and 0.0 < stamp - candidate <= limit:  # the jump persists
            if self.config.on_jump == "reset":
                self.candidate = None
                return StampVerdict(NEW_SEQUENCE, f"stamps jumped by {candidate - self.last:+.3f} s (from {_seconds(self.last)} "
                                                  f"to {_seconds(candidate)}) and continue there: new sequence, odometry reset")
            self.candidate = stamp
            return StampVerdict(SKIP, f"stamp {_seconds(stamp)} is {step:+.3f} s from the last frame's {_seconds(self.last)} "
                                      "(stamps.on_jump = skip): skipped until the stamps continue the old sequence")
        self.candidate = stamp
        return StampVerdict(JUMP, f"stamp {_seconds(stamp)} jumps {step:+.3f} s from the last frame's {_seconds(self.last)} "
                                  f"(limit {limit:.3f} s): frame held back; the next stamp tells an outlier from a new sequence")

    def commit(self, stamp: float) -> None:
        """Record the stamp (s) of a frame that was registered."""
        if self.last is not None and stamp > self.last:
            self.periods.add(stamp - self.last)
        self.last = stamp


class StampGaps:
    """Counts frames missing from a stream of stamps: an interval of k estimated periods (k >=
    GAP_FACTOR) means round(k) - 1 frames never arrived. Jumps and out-of-order stamps are not
    gaps (a jumped frame did arrive)."""

    def __init__(self, config: StampConfig | None = None) -> None:
        self.config = config or StampConfig()
        self.periods = PeriodEstimator()
        self.last: float | None = None
        self.missing = 0  # frames missing so far

    def add(self, stamp: float) -> int:
        """Record the next received stamp (s); returns how many frames are missing before it."""
        last, self.last = self.last, stamp
        if last is None or not math.isfinite(stamp):
            return 0
        interval = stamp - last
        if not 0.0 < interval <= jump_limit(self.config, self.periods.period):
            return 0
        period = self.periods.period
        self.periods.add(interval)
        if period is None or interval < GAP_FACTOR * period:
            return 0
        missed = int(round(interval / period)) - 1
        self.missing += missed
        return missed

    @property
    def period(self) -> float | None:
        return self.periods.period
