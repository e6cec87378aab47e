"""Offline localization runs: localize every scan of a dataset in a map, streaming the outputs.

The outputs follow ``dcreg run`` (``trajectory_tum.txt``, ``trajectory_kitti.txt``,
``diagnostics.csv``, ``summary.json``, plots), written through the same
:class:`~dcreg_ros.eval.run_outputs.RunWriter` while the run goes (a broken bag or Ctrl-C keeps
every pose computed), with the poses in the map frame and the tracking state of every frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.localization import TRACKING_LOST, TRACKING_STATES, LocalizationReport, Localizer
from ..core.pointcloud import InputError
from ..io.motion_inputs import MotionInputs
from ..io.scan import Scan
from .progress import Progress
from .run_outputs import RunWriter, summarize
from .runner import RunResult, run_frames

LOCALIZATION_COLUMNS = ("inlier_share", "bad_frames", "relocalized", "quality_ms", "relocalization_ms", "message")


@dataclass
class LocalizationRun(RunResult):
    """Reports of one localization run (:class:`RunResult` with the tracking states)."""

    @property
    def tracking(self) -> np.ndarray:
        return np.array([r.tracking for r in self.records])

    def frame_ms(self) -> np.ndarray:
        """Total time per frame (every frame, the first too, is registered against the map)."""
        return np.array([r.total_ms for r in self.records]) if self.records else np.array([np.nan])


def localization_row(record: LocalizationReport) -> dict:
    """The diagnostics.csv values of LOCALIZATION_COLUMNS for one report (``tracking`` is one of
    the odometry's columns)."""
    return {"inlier_share": record.inlier_share, "bad_frames": record.bad_frames,
            "relocalized": int(record.relocalized), "quality_ms": record.timings.get("quality", 0.0),
            "relocalization_ms": record.timings.get("relocalization", 0.0), "message": record.message}


def run_localization(scans: Iterable[Scan], localizer: Localizer, progress: Progress | None = None,
                     max_frames: int | None = None, on_frame: Callable[[LocalizationReport], None] | None = None,
                     motion: MotionInputs | None = None) -> LocalizationRun:
    """Localize every scan in order (at most ``max_frames``), calling ``on_frame`` with each
    report; ``motion`` feeds IMU / wheel odometry to the localizer's motion priors (mountings
    from the bag's static transforms for the first scan's frame). Unusable scans (too few points,
    stamps that do not increase) are skipped and counted; a read error, an unexpected error or
    Ctrl-C ends the run with the reports so far (``run.stop`` says why)."""
    notes: list[str] = list(motion.notes) if motion is not None else []
    last_stamp = [-np.inf]

    def register(index: int, scan: Scan) -> LocalizationReport:
        if not scan.stamp > last_stamp[0]:
            raise InputError(f"stamp {scan.stamp:.6f} s is not after the previous {last_stamp[0]:.6f} s")
        if index == 0 and motion is not None and not motion.empty:
            configured, where = motion.configure(localizer.config, scan.frame_id)
            notes.extend(where)
            localizer.update_config(configured)
            motion.feed(localizer)
        report = localizer.localize(scan.points, scan.times, stamp=scan.stamp)
        last_stamp[0] = scan.stamp
        return report

    run = run_frames(scans, register, progress, max_frames, on_frame, result_type=LocalizationRun)
    run.strategy, run.notes = localizer.config.degeneracy.strategy, notes
    return run


def summarize_localization(run: LocalizationRun, total: int | None = None) -> dict:
    """Numbers for the end-of-run lines and summary.json: the odometry summary plus tracking."""
    summary = summarize(run, total)
    states = run.tracking
    summary["tracking"] = {s: int((states == s).sum()) for s in TRACKING_STATES}
    lost = [r for r in run.records if r.tracking == TRACKING_LOST]
    summary["first_lost"] = None if not lost else {"index": lost[0].index, "stamp": lost[0].stamp, "reason": lost[0].message}
    summary["relocalizations"] = sum(1 for r in run.records if r.relocalized)
    shares = [r.inlier_share for r in run.records if np.isfinite(r.inlier_share)]
    summary["inlier_share_median"] = float(np.median(shares)) if shares else None
    return summary


def localize_into_folder(scans: Iterable[Scan], localizer: Localizer, out_dir: str | Path, total: int | None = None,
                         max_frames: int | None = None, quiet: bool = True, header: dict | None = None,
                         motion: MotionInputs | None = None) -> tuple[LocalizationRun, dict, Path]:
    """Localize ``scans`` streaming trajectory and diagnostics into ``out_dir`` (checked first),
    then write summary.json; returns (run, summary, folder). Plots are separate
    (:func:`write_localization_plots`)."""
    count = min(total, max_frames) if (total and max_frames) else (max_frames or total)
    with RunWriter(out_dir, header, extra_columns=LOCALIZATION_COLUMNS, extra_row=localization_row) as writer:
        run = run_localization(scans, localizer, Progress(count, enabled=not quiet), max_frames, writer.write_frame, motion)
        summary = summarize_localization(run, total)
        summary["notes"] = list(getattr(scans, "notes", [])) + run.notes
        writer.finish(summary)
    return run, summary, writer.out_dir


def write_localization_plots(run: LocalizationRun, out_dir: Path, map_points: np.ndarray | None = None) -> list[str]:
    """trajectory.png over the map's top view and degeneracy.png; returns the names written."""
    if not run.records:
        return []
    from .plots import plot_degeneracy, plot_localization

    plot_localization(run, out_dir / "trajectory.png", map_points)
    plot_degeneracy(run, out_dir / "degeneracy.png")
    return ["trajectory.png", "degeneracy.png"]


def tracking_line(summary: dict) -> str:
    """'OK 280, DEGRADED 3, LOST 0' plus where the track was first lost."""
    counts = ", ".join(f"{s} {n}" for s, n in summary["tracking"].items())
    lost = summary.get("first_lost")
    return counts + ("" if lost is None else f" (first LOST at frame {lost['index']}: {lost['reason']})")
