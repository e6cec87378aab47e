"""Trajectory accuracy (ATE / RPE via evo) and degeneracy-detection scores."""

from __future__ import annotations

from collections.abc import Sequence

from dataclasses import dataclass, field

import numpy as np

from ..core.pointcloud import InputError
from ..io.trajectory import Trajectory


ALIGN_SE3 = "SE(3) Umeyama"
ALIGN_FIRST_POSE = "first pose"
ALIGN_NONE = "none"  # both in one frame already (localization in the reference's map)


@dataclass
class TrajectoryErrors:
    """ATE: translation RMSE (m) after aligning the estimate to the reference (``alignment``:
    SE(3) Umeyama over all matched positions, no scale; or the first matched pose when the
    positions cannot determine a rotation, see ``alignment_note``); RPE: translation RMSE (m)
    of the relative motion over ``rpe_delta`` frames; both over the ``matched`` poses
    associated by stamp."""

    ate_rmse: float
    ate_max: float
    rpe_rmse: float
    rpe_delta: int
    matched: int
    ate_series: np.ndarray  # per matched pose, m
    stamps: np.ndarray
    estimate_aligned: np.ndarray  # (matched, 4, 4), in the reference frame
    reference: np.ndarray  # (matched, 4, 4)
    alignment: str = ALIGN_SE3
    alignment_note: str = ""  # why the fallback was used, '' for SE(3)
    T_reference_estimate: np.ndarray = field(default_factory=lambda: np.eye(4))  # the alignment applied

    def body_errors(self) -> np.ndarray:
        """(matched, 3) translation error of the aligned estimate in the reference's body frame
        (m; x forward, y left, z up for a REP-103 sensor): along which axis the estimate is off."""
        d = self.estimate_aligned[:, :3, 3] - self.reference[:, :3, 3]
        return np.einsum("nji,nj->ni", self.reference[:, :3, :3], d)

    def describe_alignment(self) -> str:
        """'SE(3) Umeyama alignment, no scale', 'no alignment (...)' or 'first-pose alignment (...why...)'."""
        if self.alignment == ALIGN_SE3:
            return "SE(3) Umeyama alignment, no scale"
        if self.alignment == ALIGN_NONE:
            return "no alignment (both in the map frame)"
        return f"first-pose alignment ({self.alignment_note})"


def _to_evo(traj: Trajectory):
    from evo.core.trajectory import PoseTrajectory3D

    return PoseTrajectory3D(poses_se3=[p.copy() for p in traj.poses], timestamps=traj.stamps.copy())


def trajectory_errors(estimate: Trajectory, reference: Trajectory, rpe_delta: int = 1, max_time_diff: float = 0.02,
                      align: bool = True) -> TrajectoryErrors:
    """ATE and RPE of ``estimate`` against ``reference`` (evo: association by stamp, Umeyama SE(3);
    the first matched pose aligns them when Umeyama is undetermined: 2 poses, a straight line or
    no motion; no alignment when ``align`` is False: localization in a map given in the
    reference's frame). Raises InputError (one line, what is needed) when they cannot be compared."""
    from evo.core import geometry, metrics, sync

    if len(estimate) < 2 or len(reference) < 2:
        raise InputError(f"need at least two poses in both trajectories (estimate {len(estimate)}, reference {len(reference)})")
    if rpe_delta < 1:
        raise InputError(f"the RPE delta must be at least 1 frame, got {rpe_delta}")
    try:
        ref, est = sync.associate_trajectories(_to_evo(reference), _to_evo(estimate), max_diff=max_time_diff)
    except sync.SyncException:
        raise InputError(_no_common_stamps(estimate, reference, max_time_diff)) from None
    if ref.num_poses < 2:
        raise InputError(f"only {ref.num_poses} poses share stamps (within {max_time_diff} s); need at least 2: check the time bases")
    if rpe_delta >= ref.num_poses:
        raise InputError(f"the RPE delta ({rpe_delta} frames) needs more than {rpe_delta} matched poses, there are {ref.num_poses}")
    alignment, note, T_align = ALIGN_SE3, "", np.eye(4)
    if not align:
        alignment = ALIGN_NONE
    else:
        try:
            r, t, _ = est.align(ref, correct_scale=False)
            T_align[:3, :3], T_align[:3, 3] = r, t
        except geometry.GeometryException:
            # Umeyama needs positions that span a plane: with 2 poses, a straight line or no motion the
            # rotation about the line is undetermined; pinning the first poses together is well defined
            alignment = ALIGN_FIRST_POSE
            note = f"SE(3) alignment needs at least 3 matched positions not on one line; {ref.num_poses} matched"
            T_align = np.asarray(est.align_origin(ref))
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
        alignment=alignment,
        alignment_note=note,
        T_reference_estimate=T_align,
    )


def _no_common_stamps(estimate: Trajectory, reference: Trajectory, max_time_diff: float) -> str:
    return (f"no pose stamps in common (within {max_time_diff} s): estimate {estimate.stamps[0]:.3f}..{estimate.stamps[-1]:.3f} s, "
            f"reference {reference.stamps[0]:.3f}..{reference.stamps[-1]:.3f} s; both must use the same clock")


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


def nearest_stamps(sorted_stamps: np.ndarray, query: np.ndarray, max_time_diff: float) -> tuple[np.ndarray, np.ndarray]:
    """For each ``query`` stamp (s) the index of the nearest of ``sorted_stamps`` (ascending) and
    whether it lies within ``max_time_diff`` s."""
    ref = np.asarray(sorted_stamps, dtype=np.float64)
    q = np.asarray(query, dtype=np.float64).reshape(-1)
    if len(ref) == 0:
        return np.zeros(len(q), dtype=int), np.zeros(len(q), dtype=bool)
    if len(ref) == 1:
        j = np.zeros(len(q), dtype=int)
    else:
        j = np.clip(np.searchsorted(ref, q), 1, len(ref) - 1)
        j = np.where(np.abs(ref[j - 1] - q) < np.abs(ref[j] - q), j - 1, j)
    return j, np.abs(ref[j] - q) <= max_time_diff


def detection_scores(est_stamps: np.ndarray, est_masks: np.ndarray, true_stamps: np.ndarray, true_masks: np.ndarray,
                     max_time_diff: float = 0.02, axes: Sequence[int] | None = None) -> DetectionScores:
    """Compare per-frame masks (frames, 6) associated by nearest stamp; ``axes`` (indices, roll = 0
    ... z = 5) restricts the counts to those directions."""
    est_masks = np.asarray(est_masks, dtype=bool).reshape(-1, 6)
    true_masks = np.asarray(true_masks, dtype=bool).reshape(-1, 6)
    if axes is not None:
        est_masks, true_masks = est_masks[:, list(axes)], true_masks[:, list(axes)]
    true_stamps = np.asarray(true_stamps, dtype=np.float64)
    order = np.argsort(true_stamps)
    true_stamps, true_masks = true_stamps[order], true_masks[order]
    j, matched = nearest_stamps(true_stamps, est_stamps, max_time_diff)
    mask, truth = est_masks[matched], true_masks[j[matched]]
    return DetectionScores(
        true_positive=int(np.sum(mask & truth)), false_positive=int(np.sum(mask & ~truth)),
        false_negative=int(np.sum(~mask & truth)), true_negative=int(np.sum(~mask & ~truth)),
        frames=int(matched.sum()), false_alarm_frames=int(np.sum(mask.any(axis=1) & ~truth.any(axis=1))),
    )


@dataclass
class Consistency:
    """How well a published covariance matches the real error, per axis (roll, pitch, yaw, x, y, z).

    ``nees``: mean of err^2 / variance over the frames (1 = honest, 100 = ten times too
    confident, 0.01 = ten times too cautious); ``ratio``: the median of |err| / std (0.67 for an
    honest Gaussian); ``frames``: how many frames were compared."""

    nees: np.ndarray
    ratio: np.ndarray
    frames: int


def _tangent_error(T_est: np.ndarray, T_true: np.ndarray) -> np.ndarray:
    """Rotation-first right-perturbation error of T_est against T_true, in T_true's body frame (rad, m)."""
    from ..core.geometry import so3_log

    out = np.empty(6)
    out[:3] = so3_log(np.ascontiguousarray(T_true[:3, :3].T @ T_est[:3, :3]))
    out[3:] = T_true[:3, :3].T @ (T_est[:3, 3] - T_true[:3, 3])
    return out


def _consistency(errors: np.ndarray, variances: np.ndarray) -> Consistency:
    errors, variances = np.asarray(errors).reshape(-1, 6), np.asarray(variances).reshape(-1, 6)
    if len(errors) == 0:
        return Consistency(np.full(6, np.nan), np.full(6, np.nan), 0)
    variances = np.maximum(variances, 1e-300)
    return Consistency(np.mean(errors**2 / variances, axis=0), np.median(np.abs(errors) / np.sqrt(variances), axis=0), len(errors))


def motion_consistency(stamps: np.ndarray, poses: np.ndarray, covariances: np.ndarray, reference: Trajectory,
                       max_time_diff: float = 0.02) -> Consistency:
    """Each frame's motion since the previous frame (``poses`` T_world_sensor at ``stamps``)
    against the reference's motion over the same interval, with the frame's motion covariance
    (``covariances`` (N, 6, 6), rotation first, body frame of the new pose); frames whose
    neighbour has no reference pose are left out."""
    stamps, poses = np.asarray(stamps, dtype=np.float64), np.asarray(poses).reshape(-1, 4, 4)
    ref_stamps = np.asarray(reference.stamps, dtype=np.float64)
    order = np.argsort(ref_stamps)
    j, ok = nearest_stamps(ref_stamps[order], stamps, max_time_diff)
    ref = np.asarray(reference.poses)[order][j]
    errors, variances = [], []
    for k in range(1, len(stamps)):
        if not (ok[k] and ok[k - 1]):
            continue
        from ..core.geometry import invert_pose

        est = invert_pose(poses[k - 1]) @ poses[k]
        true = invert_pose(ref[k - 1]) @ ref[k]
        errors.append(_tangent_error(est, true))
        variances.append(np.diag(covariances[k]))
    return _consistency(np.array(errors), np.array(variances))


def pose_consistency(stamps: np.ndarray, poses: np.ndarray, covariances: np.ndarray, reference: Trajectory,
                     max_time_diff: float = 0.02) -> Consistency:
    """Each pose against the reference, both taken relative to their first pose (the odometry
    frame starts at the first scan), with the accumulated pose covariance (``covariances``
    (N, 6, 6), rotation first, body frame); the first frame is left out."""
    from ..core.geometry import invert_pose

    stamps, poses = np.asarray(stamps, dtype=np.float64), np.asarray(poses).reshape(-1, 4, 4)
    ref_stamps = np.asarray(reference.stamps, dtype=np.float64)
    order = np.argsort(ref_stamps)
    j, ok = nearest_stamps(ref_stamps[order], stamps, max_time_diff)
    ref = np.asarray(reference.poses)[order][j]
    first = int(np.argmax(ok)) if ok.any() else len(stamps)
    errors, variances = [], []
    for k in range(first + 1, len(stamps)):
        if ok[k]:
            errors.append(_tangent_error(invert_pose(poses[first]) @ poses[k], invert_pose(ref[first]) @ ref[k]))
            variances.append(np.diag(covariances[k]))
    return _consistency(np.array(errors), np.array(variances))
