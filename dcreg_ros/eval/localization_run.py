"""Offline localization runs: localize every scan of a dataset in a map, write the outputs.

The outputs follow ``dcreg run`` (``trajectory_tum.txt``, ``trajectory_kitti.txt``,
``diagnostics.csv``, ``summary.json``, plots) with the poses in the map frame and the tracking
state of every frame; the writers of :mod:`.runner` are reused through this one module.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from ..core.localization import TRACKING_STATES, LocalizationReport, Localizer
from ..core.pointcloud import InputError
from ..io.scan import Scan
from ..io.trajectory import Trajectory, write_kitti, write_tum
from .runner import DIAGNOSTIC_COLUMNS, Progress, diagnostics_rows, summarize

LOCALIZATION_COLUMNS = ["tracking", "inlier_share", "bad_frames", "relocalized", "quality_ms", "relocalization_ms", "message"]


@dataclass
class LocalizationRun:
    """Reports of one localization run plus the frames it could not use (``index``, reason)."""

    strategy: str
    records: list[LocalizationReport]
    skipped: list[tuple[int, str]] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def trajectory(self) -> Trajectory:
        if not self.records:
            return Trajectory(np.empty(0), np.empty((0, 4, 4)))
        return Trajectory(np.array([r.stamp for r in self.records]), np.stack([r.pose for r in self.records]))

    @property
    def masks(self) -> np.ndarray:
        return np.array([r.degenerate_mask for r in self.records], dtype=bool).reshape(-1, 6)

    @property
    def tracking(self) -> np.ndarray:
        return np.array([r.tracking for r in self.records])

    def frame_ms(self) -> np.ndarray:
        """Total time per frame (every frame is registered against the map)."""
        return np.array([r.total_ms for r in self.records]) if self.records else np.array([np.nan])


def run_localization(scans: Iterable[Scan], localizer: Localizer, progress: Progress | None = None,
                     max_frames: int | None = None) -> LocalizationRun:
    """Localize every scan in order. Unusable scans (too few points, stamps that go backwards)
    are skipped and listed, never fatal."""
    records: list[LocalizationReport] = []
    skipped: list[tuple[int, str]] = []
    last_stamp = -np.inf
    started = time.perf_counter()
    for index, scan in enumerate(scans):
        if max_frames is not None and index >= max_frames:
            break
        if not scan.stamp > last_stamp:
            skipped.append((index, f"stamp {scan.stamp:.6f} s is not after the previous {last_stamp:.6f} s"))
            continue
        try:
            report = localizer.localize(scan.points, scan.times, stamp=scan.stamp)
        except InputError as exc:
            skipped.append((index, str(exc)))
            continue
        last_stamp = scan.stamp
        records.append(report)
        if progress is not None:
            progress.update(report)
    if progress is not None:
        progress.close()
    return LocalizationRun(localizer.config.degeneracy.strategy, records, skipped, time.perf_counter() - started)


def write_diagnostics(path: Path, records: list[LocalizationReport]) -> None:
    """The odometry's diagnostics columns plus the tracking state of each frame."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=DIAGNOSTIC_COLUMNS + LOCALIZATION_COLUMNS)
        writer.writeheader()
        for record, row in zip(records, diagnostics_rows(records)):
            row.update(tracking=record.tracking, inlier_share=record.inlier_share, bad_frames=record.bad_frames,
                       relocalized=int(record.relocalized), quality_ms=record.timings.get("quality", 0.0),
                       relocalization_ms=record.timings.get("relocalization", 0.0), message=record.message)
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def summarize_localization(run: LocalizationRun) -> dict:
    """Numbers for the end-of-run lines and summary.json."""
    summary = summarize(run)  # the odometry summary: frames, ms/frame, path, degenerate axes
    states = run.tracking
    summary["tracking"] = {s: int((states == s).sum()) for s in TRACKING_STATES}
    lost = [r for r in run.records if r.tracking == "LOST"]
    summary["first_lost"] = None if not lost else {"index": lost[0].index, "stamp": lost[0].stamp, "reason": lost[0].message}
    summary["relocalizations"] = sum(1 for r in run.records if r.relocalized)
    shares = [r.inlier_share for r in run.records if np.isfinite(r.inlier_share)]
    summary["inlier_share_median"] = float(np.median(shares)) if shares else None
    return summary


def write_localization_outputs(run: LocalizationRun, out_dir: Path, map_points: np.ndarray | None = None,
                               plots: bool = True, extra: dict | None = None) -> dict:
    """trajectory_tum.txt, trajectory_kitti.txt (map frame), diagnostics.csv, summary.json and
    the plots (trajectory.png over the map's top view, degeneracy.png); ``extra`` goes into the
    summary. Returns the summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_tum(out_dir / "trajectory_tum.txt", run.trajectory)
    write_kitti(out_dir / "trajectory_kitti.txt", run.trajectory)
    write_diagnostics(out_dir / "diagnostics.csv", run.records)
    summary = summarize_localization(run)
    summary.update(extra or {})
    summary["skipped_frames"] = [{"index": i, "reason": why} for i, why in run.skipped]
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    if plots and run.records:
        from .plots import plot_degeneracy, plot_localization

        plot_localization(run, out_dir / "trajectory.png", map_points)
        plot_degeneracy(run, out_dir / "degeneracy.png")
    return summary


def tracking_line(summary: dict) -> str:
    """'OK 280, DEGRADED 3, LOST 0' plus where the track was first lost."""
    counts = ", ".join(f"{s} {n}" for s, n in summary["tracking"].items())
    lost = summary.get("first_lost")
    return counts + ("" if lost is None else f" (first LOST at frame {lost['index']}: {lost['reason']})")

