"""Offline odometry runs: iterate a dataset, keep every frame record, write the outputs."""

from __future__ import annotations

import csv
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, TextIO

import numpy as np

from ..core.degeneracy import AXIS_NAMES
from ..core.geometry import pose_to_xyz_rpy
from ..core.global_map import GlobalMap
from ..core.odometry import FRAME_TIMING_KEYS, FrameRecord, Odometry, OdometryConfig
from ..core.pointcloud import InputError
from ..io.scan import Scan
from ..io.trajectory import Trajectory, write_kitti, write_tum


class Progress:
    """One status line on a terminal (rewritten in place), a line per ~10% otherwise."""

    def __init__(self, total: int | None, label: str = "", stream: TextIO | None = None, enabled: bool = True) -> None:
        self.total = total
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self._last_print = 0.0
        self._last_decile = -1
        self._count = 0

    def update(self, record: FrameRecord) -> None:
        self._count += 1
        if not self.enabled:
            return
        now = time.perf_counter()
        hz = self._count / max(now - self.start, 1e-9)
        weak = ", ".join(a for a, m in zip(AXIS_NAMES, record.degenerate_mask) if m) or "none"
        kappa = f"kappa_t {record.degeneracy.kappa_translation:.0f}" if record.degeneracy else ""
        total = f"/{self.total}" if self.total else ""
        line = f"{self.label}frame {self._count}{total}  {hz:5.1f} Hz  degenerate: {weak} {kappa}"
        if self.tty:
            if now - self._last_print > 0.2 or self._count == self.total:
                self.stream.write("\r" + line.ljust(90)[:120])
                self.stream.flush()
                self._last_print = now
        else:
            decile = int(10 * self._count / self.total) if self.total else self._count // 100
            if decile != self._last_decile:
                self.stream.write(line + "\n")
                self.stream.flush()
                self._last_decile = decile

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class RunResult:
    """Frame records of one odometry run plus the frames it could not use."""

    strategy: str
    records: list[FrameRecord]
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

    def frame_ms(self) -> np.ndarray:
        """Total time per registered frame (the first frame only initialises the map)."""
        return np.array([r.total_ms for r in self.records[1:]]) if len(self.records) > 1 else np.array([np.nan])


def run_odometry(scans: Iterable[Scan], config: OdometryConfig | None = None, strategy: str | None = None,
                 progress: Progress | None = None, max_frames: int | None = None, global_map: GlobalMap | None = None) -> RunResult:
    """Register every scan in order. Unusable frames (too few points, NaN only, stamps that go
    backwards) are skipped and listed, never fatal. ``global_map`` accumulates every registered
    frame (for ``--save-map``)."""
    odometry = Odometry(config, strategy)
    odometry.global_map = global_map
    records: list[FrameRecord] = []
    skipped: list[tuple[int, str]] = []
    last_stamp = -np.inf
    t0 = time.perf_counter()
    for index, scan in enumerate(scans):
        if max_frames is not None and index >= max_frames:
            break
        if not scan.stamp > last_stamp:
            skipped.append((index, f"stamp {scan.stamp:.6f} s is not after the previous {last_stamp:.6f} s"))
            continue
        try:
            record = odometry.register_frame(scan.points, scan.times, stamp=scan.stamp)
        except InputError as exc:
            skipped.append((index, str(exc)))
            continue
        last_stamp = scan.stamp
        records.append(record)
        if progress is not None:
            progress.update(record)
    if progress is not None:
        progress.close()
    return RunResult(odometry.config.degeneracy.strategy, records, skipped, time.perf_counter() - t0)


DIAGNOSTIC_COLUMNS = (
    ["index", "stamp", "status", "iterations", "rmse", "fitness", "num_points", "num_correspondences", "threshold",
     "kappa_rotation", "kappa_translation", "kappa_full"]
    + [f"degenerate_{a}" for a in AXIS_NAMES]
    + [f"eigenvalue_{a}" for a in AXIS_NAMES]
    + ["x", "y", "z", "roll_deg", "pitch_deg", "yaw_deg"]
    + [f"{k}_ms" for k in FRAME_TIMING_KEYS]
    + ["total_ms"]
)


def diagnostics_rows(records: list[FrameRecord]) -> list[dict]:
    rows = []
    for r in records:
        d = r.degeneracy
        eig = np.concatenate([d.eigenvalues_rotation, d.eigenvalues_translation]) if d else np.full(6, np.nan)
        xyz_rpy = pose_to_xyz_rpy(r.pose)
        row = {
            "index": r.index, "stamp": f"{r.stamp:.9f}", "status": r.status, "iterations": r.iterations,
            "rmse": r.rmse, "fitness": r.fitness, "num_points": r.num_points, "num_correspondences": r.num_correspondences,
            "threshold": r.threshold, "kappa_rotation": d.kappa_rotation if d else np.nan,
            "kappa_translation": d.kappa_translation if d else np.nan, "kappa_full": d.kappa_full if d else np.nan,
        }
        row.update({f"degenerate_{a}": int(m) for a, m in zip(AXIS_NAMES, r.degenerate_mask)})
        row.update({f"eigenvalue_{a}": v for a, v in zip(AXIS_NAMES, eig)})
        row.update(dict(zip(["x", "y", "z"], xyz_rpy[:3])))
        row.update(dict(zip(["roll_deg", "pitch_deg", "yaw_deg"], np.degrees(xyz_rpy[3:]))))
        row.update({f"{k}_ms": r.timings.get(k, 0.0) for k in FRAME_TIMING_KEYS})
        row["total_ms"] = r.total_ms
        rows.append(row)
    return rows


def write_diagnostics_csv(path: Path, records: list[FrameRecord]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=DIAGNOSTIC_COLUMNS)
        writer.writeheader()
        for row in diagnostics_rows(records):
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def summarize(result: RunResult) -> dict:
    """Numbers for the end-of-run table and summary.json."""
    ms = result.frame_ms()
    masks = result.masks
    traj = result.trajectory
    return {
        "strategy": result.strategy,
        "frames": len(result.records),
        "skipped": len(result.skipped),
        "ms_per_frame_median": float(np.nanmedian(ms)),
        "ms_per_frame_p95": float(np.nanpercentile(ms, 95)),
        "wall_hz": len(result.records) / result.wall_seconds if result.wall_seconds > 0 else float("nan"),
        "path_length_m": traj.path_length(),
        "degenerate_frames": int(masks.any(axis=1).sum()) if len(masks) else 0,
        "degenerate_frames_per_axis": {a: int(masks[:, i].sum()) for i, a in enumerate(AXIS_NAMES)} if len(masks) else {},
        "failed_registrations": sum(1 for r in result.records if r.status not in ("converged", "max_iterations", "first_frame")),
    }


def write_run_outputs(result: RunResult, out_dir: Path, plots: bool = True) -> dict:
    """trajectory_tum.txt, trajectory_kitti.txt, diagnostics.csv, summary.json and the plots."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_tum(out_dir / "trajectory_tum.txt", result.trajectory)
    write_kitti(out_dir / "trajectory_kitti.txt", result.trajectory)
    write_diagnostics_csv(out_dir / "diagnostics.csv", result.records)
    summary = summarize(result)
    summary["skipped_frames"] = [{"index": i, "reason": why} for i, why in result.skipped]
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    if plots and result.records:
        from .plots import plot_degeneracy, plot_trajectory

        plot_trajectory(result, out_dir / "trajectory.png")
        plot_degeneracy(result, out_dir / "degeneracy.png")
    return summary
