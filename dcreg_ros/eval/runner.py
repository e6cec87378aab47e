"""Offline odometry runs: iterate a dataset, keep every frame record, say how and why it ended.

The loop never loses what it computed: a storage error in the middle of a bag, an unexpected
error or Ctrl-C end the run early with :class:`RunStop` saying why, and every frame registered
before that is in :class:`RunResult` (and, through ``on_frame``, already written by a
:class:`~dcreg_ros.eval.run_outputs.RunWriter`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

import numpy as np

from ..core.global_map import GlobalMap
from ..core.interrupts import caused_by_ctrl_c, ctrl_c_at_checkpoints, ctrl_c_checkpoint
from ..core.odometry import FrameRecord, Odometry, OdometryConfig
from ..core.pointcloud import InputError
from ..io.motion_inputs import MotionInputs
from ..io.scan import Scan
from ..io.skips import SkipLog
from ..io.trajectory import Trajectory
from .progress import Progress


@dataclass(frozen=True)
class RunStop:
    """How a run ended: ``completed`` is False when the input could not be read to its end (or
    to ``max_frames``); ``reason`` says why in words; ``interrupted`` marks Ctrl-C."""

    completed: bool
    reason: str
    interrupted: bool = False


END_OF_INPUT = RunStop(True, "end of input")
INTERRUPTED = RunStop(False, "interrupted (Ctrl-C)", interrupted=True)


@dataclass
class RunResult:
    """Frame records of one odometry run, what it skipped and how it ended."""

    strategy: str
    records: list[FrameRecord]
    skips: SkipLog = field(default_factory=SkipLog)  # unreadable files/messages and unusable frames
    wall_seconds: float = 0.0
    stop: RunStop = END_OF_INPUT
    notes: list[str] = field(default_factory=list)  # run-level remarks (where the motion inputs' mountings came from)

    @property
    def trajectory(self) -> Trajectory:
        if not self.records:
            return Trajectory(np.empty(0), np.empty((0, 4, 4)))
        return Trajectory(np.array([r.stamp for r in self.records]), np.stack([r.pose for r in self.records]))

    @property
    def masks(self) -> np.ndarray:
        return np.array([r.degenerate_mask for r in self.records], dtype=bool).reshape(-1, 6)

    def frame_ms(self) -> np.ndarray:
        """Total time per registered frame (the first frame only initialises the map)."""
        return np.array([r.total_ms for r in self.records[1:]]) if len(self.records) > 1 else np.array([np.nan])

    def frame_notes(self) -> SkipLog:
        """The frames' notes (e.g. why deskewing was off), grouped by reason like skips."""
        log = SkipLog()
        for r in self.records:
            for note in r.notes:
                log.skip("frame", f"frame {r.index}", note)
        return log


class GuardedScans:
    """Iterates scans and turns a read error of the source (InputError, e.g. a bag whose storage
    breaks mid-way: nothing after it is reachable) into the end of the iteration, keeping the
    message in ``error``."""

    def __init__(self, scans: Iterable[Scan]) -> None:
        self._scans = scans
        self._it: Iterator[Scan] | None = None
        self.error: str | None = None

    def __iter__(self) -> GuardedScans:
        return self

    def __next__(self) -> Scan:
        try:
            if self._it is None:
                self._it = iter(self._scans)
            return next(self._it)
        except InputError as exc:
            self.error = str(exc)
            raise StopIteration from None


def run_odometry(scans: Iterable[Scan], config: OdometryConfig | None = None, strategy: str | None = None,
                 progress: Progress | None = None, max_frames: int | None = None,
                 on_frame: Callable[[FrameRecord], None] | None = None, motion: MotionInputs | None = None,
                 global_map: GlobalMap | None = None) -> RunResult:
    """Register every scan in order (at most ``max_frames``), calling ``on_frame`` with each record;
    ``motion`` feeds IMU / wheel odometry to the motion prior (mountings resolved for the first
    scan's frame; the notes say from where); ``global_map`` accumulates every registered frame
    (for ``--save-map``).

    Unusable frames (too few points, NaN only, stamps out of order or after a jump: core/stamps.py)
    are skipped and counted, never fatal (a jump that persists restarts the odometry there,
    ``FrameRecord.sequence_reset``); so are the unreadable files or messages the source (a Dataset) counts in its
    ``skips``. A read error of the source, an unexpected error in a frame and Ctrl-C
    (KeyboardInterrupt) end the run early: ``result.stop`` says why and the records so far are kept.
    """
    odometry = Odometry(config, strategy)
    odometry.global_map = global_map
    notes: list[str] = list(motion.notes) if motion is not None else []

    def register(index: int, scan: Scan) -> FrameRecord:
        if index == 0 and motion is not None and not motion.empty:
            configured, where = motion.configure(odometry.config, scan.frame_id)
            notes.extend(where)
            odometry.update_config(configured)
            motion.feed(odometry)
        return odometry.register_frame(scan.points, scan.times, stamp=scan.stamp)

    result = run_frames(scans, register, progress, max_frames, on_frame)
    result.strategy, result.notes = odometry.config.degeneracy.strategy, notes
    return result


def run_frames(scans: Iterable[Scan], register: Callable[[int, Scan], FrameRecord], progress: Progress | None = None,
               max_frames: int | None = None, on_frame: Callable[[FrameRecord], None] | None = None,
               result_type: type[RunResult] = RunResult) -> RunResult:
    """The offline loop of every run (odometry, localization): ``register(index, scan)`` makes a
    frame's record or raises InputError for an unusable frame (skipped and counted). A read error
    of the source, an unexpected error in a frame and Ctrl-C end the loop early with the records
    so far; ``result.stop`` says why."""
    records: list[FrameRecord] = []
    skipped: list[tuple[int, str]] = []
    stop = END_OF_INPUT
    source = GuardedScans(scans)
    seen = 0
    t0 = time.perf_counter()
    try:
        with ctrl_c_at_checkpoints():  # Ctrl-C between two frames (core/interrupts.py): a record and its row stay in step
            for index, scan in enumerate(islice(source, max_frames)):
                ctrl_c_checkpoint()
                seen = index + 1
                try:
                    record = register(index, scan)
                except InputError as exc:
                    skipped.append((index, str(exc)))
                    continue
                except Exception as exc:  # a bug must not cost the frames already registered
                    if caused_by_ctrl_c(exc):
                        raise
                    stop = RunStop(False, f"unexpected error in frame {index}: {type(exc).__name__}: {exc}")
                    break
                records.append(record)
                if on_frame is not None:
                    on_frame(record)
                if progress is not None:
                    progress.update(record)
            else:
                if max_frames is not None and seen >= max_frames:
                    stop = RunStop(True, f"max_frames ({max_frames}) reached")
            ctrl_c_checkpoint()  # one that came during the last frame
    except (KeyboardInterrupt, SystemError) as exc:
        if not caused_by_ctrl_c(exc):
            raise
        stop = INTERRUPTED
    finally:
        if progress is not None:
            progress.close()
    if source.error is not None:
        stop = RunStop(False, source.error)
    skips = SkipLog.merged(getattr(scans, "skips", None), _frame_skips(skipped))
    return result_type("", records, skips, time.perf_counter() - t0, stop)


def _frame_skips(skipped: list[tuple[int, str]]) -> SkipLog:
    log = SkipLog()
    for index, reason in skipped:
        log.skip("unusable frame", f"frame {index}", reason.removeprefix("frame: "))
    return log
