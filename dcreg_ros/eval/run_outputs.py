"""The files of an offline run, written while it runs.

:class:`RunWriter` appends a line to ``trajectory_tum.txt`` and ``trajectory_kitti.txt`` and a
row to ``diagnostics.csv`` for every registered frame and flushes them, so whatever was computed
survives a broken bag, an unexpected error or Ctrl-C. ``summary.json`` is written when the
writer opens (``completed: false``, so a killed run is recognisable) and replaced atomically by
:meth:`RunWriter.finish` with the final numbers and ``completed`` / ``stopped_reason``. Every
command that produces a trajectory (``run``, ``compare``, ``localize``) writes through it.
"""

from __future__ import annotations

from collections import Counter

import csv
import json
import os
import tempfile
from pathlib import Path
from collections.abc import Callable
from types import TracebackType
from typing import Any

import numpy as np

from ..core.covariance import std_items
from ..core.degeneracy import AXIS_NAMES, flagged_axes
from ..core.geometry import pose_to_xyz_rpy
from ..core.interrupts import caused_by_ctrl_c
from ..core.odometry import FRAME_TIMING_KEYS, FrameRecord
from ..io.trajectory import kitti_line, tum_line
from .runner import INTERRUPTED, RunResult, RunStop

TUM_FILE = "trajectory_tum.txt"
KITTI_FILE = "trajectory_kitti.txt"
DIAGNOSTICS_FILE = "diagnostics.csv"
SUMMARY_FILE = "summary.json"

DIAGNOSTIC_COLUMNS = (
    ["index", "stamp", "status", "iterations", "rmse", "fitness", "num_points", "num_correspondences", "threshold",
     "kappa_rotation", "kappa_translation", "kappa_full"]
    + [f"degenerate_{a}" for a in AXIS_NAMES]
    + [f"eigenvalue_{a}" for a in AXIS_NAMES]
    + ["x", "y", "z", "roll_deg", "pitch_deg", "yaw_deg"]
    + list(std_items(np.zeros(6), "std")) + list(std_items(np.zeros(6), "pose_std"))
    + ["relative_axes", "absolute_axes", "prior_source", "prior_age_s", "prior_axes", "tracking"]
    + [f"{k}_ms" for k in FRAME_TIMING_KEYS]
    + ["total_ms", "notes"]
)


class OutputError(Exception):
    """An output folder or file that cannot be written (one-line reason naming the path)."""


def prepare_output_dir(path: str | Path) -> Path:
    """Create ``path`` (and parents) and check that files can be written in it, before any work."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: cannot be the output folder, it is a file")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None
    try:
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write_test_"):
            pass
    except OSError as exc:
        raise OutputError(f"{out}: cannot write in the output folder ({exc.strerror or exc})") from None
    return out


def write_json(path: Path, data: dict) -> None:
    """Replace ``path`` atomically (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, default=_json_default))
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def diagnostics_row(r: FrameRecord) -> dict:
    """The diagnostics.csv values of one frame (keys: DIAGNOSTIC_COLUMNS)."""
    d = r.degeneracy
    eig = d.eigenvalues if d else np.full(6, np.nan)
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
    row.update(std_items(r.axis_std, "std"))
    row.update(std_items(r.pose_std, "pose_std"))
    row.update({"relative_axes": " ".join(flagged_axes(r.relative_weak)), "absolute_axes": " ".join(flagged_axes(r.absolute_weak)),
                "prior_source": r.prior_source, "prior_age_s": r.prior_age, "prior_axes": " ".join(r.prior_axes),
                "tracking": r.tracking})
    row.update({f"{k}_ms": r.timings.get(k, 0.0) for k in FRAME_TIMING_KEYS})
    row["total_ms"] = r.total_ms
    row["notes"] = "; ".join(r.notes)
    return row


class RunWriter:
    """Streams one trajectory's outputs into ``out_dir`` (created and checked on construction).

    ``write_frame`` adds a frame (pose lines and a diagnostics row: DIAGNOSTIC_COLUMNS, then
    ``extra_columns`` filled by ``extra_row(record)``, e.g. a localization's tracking state), ``write_pose`` a
    bare pose (methods without diagnostics, e.g. KISS-ICP); both flush. ``finish(summary)``
    writes the final ``summary.json``. Leaving a ``with`` block without ``finish`` (an exception)
    records the exception as the stop reason, so the folder always says how far it got.
    """

    def __init__(self, out_dir: str | Path, header: dict | None = None, diagnostics: bool = True,
                 extra_columns: tuple[str, ...] = (), extra_row: Callable[[FrameRecord], dict] | None = None) -> None:
        self.out_dir = prepare_output_dir(out_dir)
        self._extra_row = extra_row
        self.header = dict(header or {})
        self.frames = 0
        self.last_stamp: float | None = None
        self._finished = False
        try:
            self._tum = open(self.out_dir / TUM_FILE, "w")
            self._kitti = open(self.out_dir / KITTI_FILE, "w")
            self._csv_file = open(self.out_dir / DIAGNOSTICS_FILE, "w", newline="") if diagnostics else None
        except OSError as exc:
            self._close_files()
            raise OutputError(f"{self.out_dir}: cannot create the output files ({exc.strerror or exc})") from None
        self._csv = None
        if self._csv_file is not None:
            self._csv = csv.DictWriter(self._csv_file, fieldnames=list(DIAGNOSTIC_COLUMNS) + list(extra_columns))
            self._csv.writeheader()
        write_json(self.out_dir / SUMMARY_FILE, {**self.header, "completed": False,
                                                 "stopped_reason": "still running, or killed before it could finish"})

    def write_pose(self, stamp: float, pose: np.ndarray) -> None:
        """Append one pose (T_world_sensor 4x4 at ``stamp`` s) to the trajectory files."""
        self._write(self._tum, tum_line(stamp, pose) + "\n")
        self._write(self._kitti, kitti_line(pose) + "\n")
        self.frames += 1
        self.last_stamp = float(stamp)

    def write_frame(self, record: FrameRecord) -> None:
        """Append one registered frame: its pose and its diagnostics row."""
        if self._csv is not None:
            row = diagnostics_row(record)
            if self._extra_row is not None:
                row.update(self._extra_row(record))
            try:
                self._csv.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
                self._csv_file.flush()
            except OSError as exc:
                raise OutputError(f"{self.out_dir / DIAGNOSTICS_FILE}: cannot write ({exc.strerror or exc})") from None
        self.write_pose(record.stamp, record.pose)

    def _write(self, f, text: str) -> None:
        try:
            f.write(text)
            f.flush()
        except OSError as exc:
            raise OutputError(f"{f.name}: cannot write ({exc.strerror or exc})") from None

    def finish(self, summary: dict) -> dict:
        """Close the files and write ``summary.json`` (header + ``summary``); returns what was written."""
        self._close_files()
        full = {**self.header, **summary}
        write_json(self.out_dir / SUMMARY_FILE, full)
        self._finished = True
        return full

    def _close_files(self) -> None:
        for name in ("_tum", "_kitti", "_csv_file"):
            f = getattr(self, name, None)
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
                setattr(self, name, None)

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._finished:
            return
        self._close_files()
        if exc_type is None:
            return
        reason = INTERRUPTED.reason if caused_by_ctrl_c(exc) else f"{exc_type.__name__}: {exc}"
        try:
            write_json(self.out_dir / SUMMARY_FILE, {**self.header, "frames": self.frames, "last_stamp": self.last_stamp,
                                                     "completed": False, "stopped_reason": reason})
        except OutputError:
            pass  # the original exception says more than a second failure to write


def read_flags(run_dir: str | Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(stamps, (N, 6) flagged-axis masks) from a run folder's diagnostics.csv; None if it has none."""
    path = Path(run_dir) / DIAGNOSTICS_FILE
    if not path.is_file():
        return None
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        stamps = np.array([float(r["stamp"]) for r in rows])
        masks = np.array([[r[f"degenerate_{a}"] == "1" for a in AXIS_NAMES] for r in rows], dtype=bool).reshape(-1, 6)
    except (OSError, KeyError, ValueError):
        return None  # the flags only decorate the plot; a damaged file must not stop the evaluation
    return stamps, masks


def summarize(result: RunResult, total: int | None = None) -> dict:
    """Numbers for the end-of-run table and summary.json (``total``: frames the input announced)."""
    ms = result.frame_ms()
    timed = bool(np.isfinite(ms).all())
    masks = result.masks
    traj = result.trajectory
    return {
        "strategy": result.strategy,
        "completed": result.stop.completed,
        "stopped_reason": result.stop.reason,
        "input_frames": total,
        "frames": len(result.records),
        "last_stamp": result.records[-1].stamp if result.records else None,
        "skipped": result.skips.skipped,
        "skipped_by_kind": result.skips.by_kind(),
        "skipped_by_reason": result.skips.to_list(),
        "skipped_examples": result.skips.examples,
        "frame_notes": result.frame_notes().to_list(),
        "ms_per_frame_median": float(np.median(ms)) if timed else None,  # None: no frame was registered against a map
        "ms_per_frame_p95": float(np.percentile(ms, 95)) if timed else None,
        "wall_hz": len(result.records) / result.wall_seconds if result.wall_seconds > 0 else None,
        "path_length_m": traj.path_length(),
        "degenerate_frames": int(masks.any(axis=1).sum()) if len(masks) else 0,
        "degenerate_frames_per_axis": {a: int(masks[:, i].sum()) for i, a in enumerate(AXIS_NAMES)} if len(masks) else {},
        "failed_registrations": sum(1 for r in result.records if not r.ok),
        "frames_per_tracking_state": dict(Counter(r.tracking for r in result.records)),
        "frames_per_prior_source": dict(Counter(r.prior_source for r in result.records[1:])),
    }


def stop_line(stop: RunStop, frames: int, total: int | None, out_dir: Path) -> str:
    """One line for the console when a run ended early, e.g. 'stopped after 8 of 20 frames: ...'."""
    of = f" of {total}" if total else ""
    return f"stopped after {frames}{of} frames: {stop.reason}; the outputs so far are in {out_dir} (summary.json: completed false)"
