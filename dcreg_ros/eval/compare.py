"""Several odometry methods on the same input, one row of numbers each (`dcreg compare`, `make demo`).

With an output folder every method streams its trajectory (and, for dcreg_ros strategies, its
diagnostics) into ``OUT/<method>/`` through :class:`~dcreg_ros.eval.run_outputs.RunWriter`, and
``OUT/compare.json`` is rewritten after each method, so an interrupted comparison keeps the
methods it finished and the part of the current one it computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np

from ..core.interrupts import caused_by_ctrl_c, ctrl_c_checkpoint, take_held_ctrl_c
from ..core.odometry import OdometryConfig
from ..core.pointcloud import InputError
from ..io.datasets import open_dataset
from ..io.trajectory import Trajectory
from .metrics import detection_scores, trajectory_errors
from .progress import Progress
from .run_outputs import RunWriter, prepare_output_dir, summarize, write_json
from .runner import END_OF_INPUT, INTERRUPTED, GuardedScans, RunStop, run_odometry

PEERS = ("kiss_icp",)
COMPARE_FILE = "compare.json"


@dataclass
class MethodResult:
    """One method's numbers on the input (m, ms); None where they could not be computed."""

    method: str
    frames: int
    ms_per_frame: float | None  # median over registered frames; None with fewer than 2 frames
    trajectory: Trajectory
    stop: RunStop = END_OF_INPUT
    ate_m: float | None = None
    rpe_m: float | None = None
    alignment: str | None = None
    accuracy_note: str = ""  # why there is no ATE/RPE, '' when there is or there is no ground truth
    precision: float | None = None
    recall: float | None = None
    false_alarm_rate: float | None = None
    skipped: int = 0

    def to_dict(self) -> dict:
        """The compare.json entry (no trajectory; None values left out)."""
        out = {"method": self.method, "frames": self.frames, "ms_per_frame": self.ms_per_frame,
               "completed": self.stop.completed, "stopped_reason": self.stop.reason, "skipped": self.skipped}
        for key in ("ate_m", "rpe_m", "alignment", "precision", "recall", "false_alarm_rate"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.accuracy_note:
            out["accuracy_note"] = self.accuracy_note
        return out


@dataclass
class Comparison:
    """The rows computed so far; ``interrupted`` when Ctrl-C ended the comparison early."""

    rows: list[MethodResult] = field(default_factory=list)
    interrupted: bool = False

    @property
    def completed(self) -> bool:
        return not self.interrupted and all(r.stop.completed for r in self.rows)


def method_folder(method: str) -> str:
    """Folder name of a method's outputs: 'dcreg_ros/none' -> 'dcreg_ros_none'."""
    return method.replace("/", "_")


def find_degeneracy_truth(path: str | Path) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-frame degeneracy truth (stamps, (N, 6) masks) stored by the simulator next to a bag, if any."""
    from ..sim import load_degeneracy_truth

    p = Path(path)
    for candidate in (p / "degeneracy_truth.json", p.parent / "degeneracy_truth.json"):
        if candidate.exists():
            return load_degeneracy_truth(candidate)
    return None


def _score(row: MethodResult, gt: Trajectory | None, truth, stamps: np.ndarray, masks: np.ndarray | None) -> None:
    if gt is not None and len(gt) > 1:
        try:
            e = trajectory_errors(row.trajectory, gt)
            row.ate_m, row.rpe_m, row.alignment = e.ate_rmse, e.rpe_rmse, e.alignment
        except InputError as exc:
            row.accuracy_note = str(exc)
    if truth is not None and masks is not None and len(stamps) > 1:
        s = detection_scores(stamps[1:], masks[1:], *truth)
        row.precision, row.recall, row.false_alarm_rate = s.precision, s.recall, s.false_alarm_rate


def compare_methods(input_path: str | Path, strategies: list[str], peers: list[str], config: OdometryConfig,
                    topic: str | None = None, max_frames: int | None = None, quiet: bool = True,
                    out: str | Path | None = None, gt_topic: str | None = None) -> Comparison:
    """Run every strategy (and peer) on the same input; one :class:`MethodResult` per method.

    ``out`` (checked before the first run) receives each method's streamed outputs and
    compare.json; ``gt_topic`` names a bag's ground-truth topic (default ``/ground_truth``). A broken input ends each method where it breaks (its row says so); Ctrl-C ends
    the comparison with the rows so far.
    """
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        raise ValueError(f"unknown peer {unknown[0]!r}; available: {', '.join(PEERS)}")
    out_dir = prepare_output_dir(out) if out is not None else None
    first = open_dataset(input_path, topic, ground_truth_topic=gt_topic)
    gt, truth = first.ground_truth, find_degeneracy_truth(input_path)
    comparison = Comparison()
    for strategy in strategies:
        if take_held_ctrl_c():  # came while the last method's outputs were written
            comparison.interrupted = True
            return comparison
        dataset = open_dataset(input_path, topic)
        total = min(len(dataset), max_frames) if max_frames else len(dataset)
        method = f"dcreg_ros/{strategy}"
        writer = RunWriter(out_dir / method_folder(method), {"method": method, "input": str(input_path)}) if out_dir else None
        progress = Progress(total, f"{strategy}: ", enabled=not quiet)
        result = run_odometry(dataset, config, strategy, progress, max_frames, writer.write_frame if writer else None)
        if writer is not None:
            writer.finish(summarize(result, len(dataset)))
        ms = result.frame_ms()
        row = MethodResult(method, len(result.records), float(np.median(ms)) if np.isfinite(ms).all() else None, result.trajectory,
                           result.stop, skipped=result.skips.skipped)
        _score(row, gt, truth, result.trajectory.stamps, result.masks)
        comparison.rows.append(row)
        comparison.interrupted = result.stop.interrupted
        _write_compare(out_dir, comparison)
        if comparison.interrupted:
            return comparison
    for peer in peers:
        if take_held_ctrl_c():
            comparison.interrupted = True
            return comparison
        row = run_kiss_icp(input_path, topic, config, max_frames, out_dir)
        _score(row, gt, None, row.trajectory.stamps, None)
        comparison.rows.append(row)
        comparison.interrupted = row.stop.interrupted
        _write_compare(out_dir, comparison)
        if comparison.interrupted:
            return comparison
    return comparison


def run_kiss_icp(input_path, topic, config: OdometryConfig, max_frames: int | None, out_dir: Path | None) -> MethodResult:
    from .peers import PeerUnavailable, kiss_icp_frames

    method = "kiss_icp"
    dataset = open_dataset(input_path, topic)
    source = GuardedScans(dataset)
    stamps, poses, ms = [], [], []
    stop = END_OF_INPUT
    writer = RunWriter(out_dir / method_folder(method), {"method": method, "input": str(input_path)}, diagnostics=False) if out_dir else None
    try:
        scans = []
        for scan in islice(source, max_frames):
            ctrl_c_checkpoint()
            scans.append(scan)
        if source.error is not None:
            stop = RunStop(False, source.error)
        for frame in kiss_icp_frames(scans, config.preprocess.max_range):
            stamps.append(frame.stamp)
            poses.append(frame.pose)
            ms.append(frame.ms)
            if writer is not None:
                writer.write_pose(frame.stamp, frame.pose)
            ctrl_c_checkpoint()  # the frame computed is kept
    except (KeyboardInterrupt, SystemError) as exc:
        if not caused_by_ctrl_c(exc):
            raise
        stop = INTERRUPTED
    except PeerUnavailable as exc:
        stop = RunStop(False, str(exc))
    traj = Trajectory(np.array(stamps), np.array(poses).reshape(-1, 4, 4))
    if writer is not None:
        writer.finish({"frames": len(stamps), "completed": stop.completed, "stopped_reason": stop.reason,
                       "skipped": dataset.skips.skipped, "skipped_by_reason": dataset.skips.to_list()})
    return MethodResult(method, len(stamps), float(np.median(ms[1:])) if len(ms) > 1 else None, traj, stop,
                        skipped=dataset.skips.skipped)


def _write_compare(out_dir: Path | None, comparison: Comparison) -> None:
    if out_dir is not None:
        write_json(out_dir / COMPARE_FILE, {"completed": comparison.completed, "interrupted": comparison.interrupted,
                                            "methods": [r.to_dict() for r in comparison.rows]})


def format_compare_table(rows: list[MethodResult]) -> str:
    """The comparison as a fixed-width text table (one line per method)."""
    def f(v, fmt):
        return fmt.format(v) if isinstance(v, (int, float)) and np.isfinite(v) else "-"

    lines = [f"{'method':<24} {'frames':>6} {'ATE m':>8} {'RPE m':>8} {'ms/frame':>9} {'precision':>9} {'recall':>7} {'false alarms':>12}"]
    for r in rows:
        line = (f"{r.method:<24} {r.frames:>6} {f(r.ate_m, '{:.3f}'):>8} {f(r.rpe_m, '{:.4f}'):>8} "
                f"{f(r.ms_per_frame, '{:.1f}'):>9} {f(r.precision, '{:.2f}'):>9} {f(r.recall, '{:.2f}'):>7} "
                f"{f(r.false_alarm_rate, '{:.1%}'):>12}")
        if not r.stop.completed:
            line += f"  (stopped: {r.stop.reason})"
        lines.append(line)
    return "\n".join(lines)
