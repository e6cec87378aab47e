"""Trajectory accuracy (ATE / RPE via evo) and degeneracy-detection scores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.pointcloud import InputError
from ..io.trajectory import Trajectory


@dataclass
class TrajectoryErrors:
    """ATE: translation RMSE (m) after SE(3) alignment; RPE: translation RMSE (m) of the relative
    motion over ``rpe_delta`` frames; both over the ``matched`` poses associated by stamp."""

    ate_rmse: float
    ate_max: float
    rpe_rmse: float
    rpe_delta: int
    matched: int
    ate_series: np.ndarray  # per matched pose, m
    stamps: np.ndarray
    estimate_aligned: np.ndarray  # (matched, 4, 4)
    reference: np.ndarray  # (matched, 4, 4)


def _to_evo(traj: Trajectory):
    from evo.core.trajectory import PoseTrajectory3D

    return PoseTrajectory3D(poses_se3=[p.copy() for p in traj.poses], timestamps=traj.stamps.copy())


def trajectory_errors(estimate: Trajectory, reference: Trajectory, rpe_delta: int = 1, max_time_diff: float = 0.02,
                      align: bool = True) -> TrajectoryErrors:
    """ATE and RPE of ``estimate`` against ``reference`` (evo: association by stamp, Umeyama SE(3)
    unless ``align`` is False: localization in a map given in the reference's frame)."""
    from evo.core import metrics, sync

    if len(estimate) < 2 or len(reference) < 2:
        raise InputError("need at least two poses in both trajectories")
    ref, est = sync.associate_trajectories(_to_evo(reference), _to_evo(estimate), max_diff=max_time_diff)
    if ref.num_poses < 2:
        raise InputError(f"only {ref.num_poses} poses share stamps (within {max_time_diff} s); check the time bases")
    if align:
        from evo.core.geometry import GeometryException

        try:
            est.align(ref, correct_scale=False)
        except GeometryException:
            raise InputError("cannot align the trajectories: the estimate does not move (e.g. a lost track)") from None
    ape = metrics.APE(metrics.PoseRelation.translation_part)
    ape.process_data((ref, est))
    rpe = metrics.RPE(metrics.PoseRelation.translation_part, delta=rpe_delta, delta_unit=metrics.Unit.frames, all_pairs=False)
    rpe.process_data((ref, est))
    return TrajectoryErrors(
        ate_rmse=float(ape.get_statistic(metrics.StatisticsType.rmse)),
        ate_max=float(ape.get_statistic(metrics.StatisticsType.max)),
        rpe_rmse=float(rpe.get_statistic(metrics.StatisticsType.rmse)),
        rpe_delta=rpe_delta,
        matched=int(ref.num_poses),
        ate_series=np.asarray(ape.error),
        stamps=np.asarray(ref.timestamps),
        estimate_aligned=np.asarray(est.poses_se3),
        reference=np.asarray(ref.poses_se3),
    )


@dataclass
class DetectionScores:
    """Per-direction detection counts over frames (positive = degenerate)."""

    true_positive: int
    false_positive: int
    false_negative: int
    true_negative: int
    frames: int
    false_alarm_frames: int  # frames with a flag where the truth has none

    @property
    def precision(self) -> float:
        flagged = self.true_positive + self.false_positive
        return self.true_positive / flagged if flagged else float("nan")

    @property
    def recall(self) -> float:
        actual = self.true_positive + self.false_negative
        return self.true_positive / actual if actual else float("nan")

    @property
    def false_alarm_rate(self) -> float:
        return self.false_alarm_frames / self.frames if self.frames else float("nan")


def detection_scores(est_stamps: np.ndarray, est_masks: np.ndarray, true_stamps: np.ndarray, true_masks: np.ndarray,
                     max_time_diff: float = 0.02) -> DetectionScores:
    """Compare per-frame masks (frames, 6) associated by nearest stamp."""
    est_masks = np.asarray(est_masks, dtype=bool).reshape(-1, 6)
    true_masks = np.asarray(true_masks, dtype=bool).reshape(-1, 6)
    true_stamps = np.asarray(true_stamps, dtype=np.float64)
    order = np.argsort(true_stamps)
    true_stamps, true_masks = true_stamps[order], true_masks[order]
    tp = fp = fn = tn = frames = alarms = 0
    for stamp, mask in zip(np.asarray(est_stamps, dtype=np.float64), est_masks):
        j = int(np.clip(np.searchsorted(true_stamps, stamp), 1, len(true_stamps) - 1)) if len(true_stamps) > 1 else 0
        if len(true_stamps) > 1 and abs(true_stamps[j - 1] - stamp) < abs(true_stamps[j] - stamp):
            j -= 1
        if abs(true_stamps[j] - stamp) > max_time_diff:
            continue
        truth = true_masks[j]
        frames += 1
        tp += int(np.sum(mask & truth))
        fp += int(np.sum(mask & ~truth))
        fn += int(np.sum(~mask & truth))
        tn += int(np.sum(~mask & ~truth))
        alarms += int(mask.any() and not truth.any())
    return DetectionScores(tp, fp, fn, tn, frames, alarms)
