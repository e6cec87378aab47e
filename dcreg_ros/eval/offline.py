"""An offline odometry job: a dataset run into a folder (streamed), its summary, accuracy and plots.

`dcreg run` and `make demo` both run through :func:`run_into_folder` and :func:`write_run_plots`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.global_map import GlobalMap
from ..core.odometry import OdometryConfig
from ..core.pointcloud import InputError
from ..io.datasets import Dataset
from ..io.motion_inputs import MotionInputs
from ..io.trajectory import Trajectory
from .metrics import TrajectoryErrors, trajectory_errors
from .progress import Progress
from .run_outputs import RunWriter, summarize
from .runner import RunResult, run_odometry


@dataclass
class RunReport:
    """A finished (or stopped) run: the records, what summary.json says, the accuracy if known."""

    result: RunResult
    summary: dict
    out_dir: Path
    total: int  # frames the input announced (capped by max_frames)
    errors: TrajectoryErrors | None = None
    accuracy_note: str = ""  # why there is no accuracy although there is ground truth


def run_into_folder(dataset: Dataset, out_dir: str | Path, config: OdometryConfig | None = None, strategy: str | None = None,
                    max_frames: int | None = None, quiet: bool = True, header: dict | None = None,
                    motion: MotionInputs | None = None, global_map: GlobalMap | None = None) -> RunReport:
    """Run the odometry over ``dataset``, streaming trajectory and diagnostics into ``out_dir``
    (checked before the first frame), then write summary.json with the skips, how the run ended
    and, when the dataset has ground truth, ATE/RPE and the alignment they used; ``global_map``
    accumulates the registered frames (``--save-map``)."""
    total = min(len(dataset), max_frames) if max_frames else len(dataset)
    with RunWriter(out_dir, {"input": str(getattr(dataset, "path", dataset.name)), **(header or {})}) as writer:
        result = run_odometry(dataset, config, strategy, Progress(total, enabled=not quiet), max_frames, writer.write_frame, motion,
                               global_map)
        summary = summarize(result, len(dataset))
        summary["notes"] = list(dataset.notes) + result.notes
        report = RunReport(result, summary, writer.out_dir, total)
        gt = dataset.ground_truth
        if gt is not None and len(gt) > 1:
            _accuracy(report, gt)
        writer.finish(summary)
    return report


def _accuracy(report: RunReport, gt: Trajectory) -> None:
    try:
        errors = trajectory_errors(report.result.trajectory, gt)
    except InputError as exc:
        report.accuracy_note = str(exc)
        report.summary["accuracy_note"] = str(exc)
        return
    report.errors = errors
    report.summary.update(ate_rmse_m=errors.ate_rmse, rpe_rmse_m=errors.rpe_rmse, alignment=errors.describe_alignment())


def write_run_plots(result: RunResult, out_dir: Path, ground_truth: Trajectory | None = None,
                    truth: tuple[np.ndarray, np.ndarray] | None = None) -> list[str]:
    """trajectory.png (in the ground truth's frame when given), degeneracy.png (with the
    simulator's per-frame ``truth`` when given) and, with ground truth, errors.png (ATE and the
    error per body axis over time, flagged frames marked). Returns the names written."""
    from .plots import plot_degeneracy, plot_errors, plot_trajectory

    if not result.records:
        return []
    errors = plot_trajectory(result, out_dir / "trajectory.png", ground_truth)
    plot_degeneracy(result, out_dir / "degeneracy.png", truth)
    if errors is None:
        return ["trajectory.png", "degeneracy.png"]
    plot_errors(errors, out_dir / "errors.png", result.strategy, flags=(result.trajectory.stamps, result.masks))
    return ["trajectory.png", "degeneracy.png", "errors.png"]
