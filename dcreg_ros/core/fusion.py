"""Fusing the LiDAR's pose with the motion prediction by information, after checking they agree.

The registration's own estimate (the data pose) and the motion model's prediction are two
measurements of the same pose, each with an honest covariance (core/measurement.py,
core/motion_prior.py). The fused pose is their information-weighted mean on every axis: a
direction the LiDAR does not see stays on the prediction, a direction the prediction cannot know
(the robot braked) follows the LiDAR. The fused covariance is the frame's motion covariance.

Before fusing, the two are tested against each other axis by axis (the normalized innovation,
:func:`check_consistency`): an axis where they are farther apart than ``gate`` standard
deviations has a source that is wrong for this frame. The less reliable one is down-weighted just
enough to explain the difference: the LiDAR on an axis it measures weakly (flagged by the relative
or the absolute test: a mis-association along a corridor) unless, on a rotation axis, its
standard deviation is still :data:`LIDAR_DOMINANT_RATIO` times smaller than the prediction's;
else the prediction (the robot, or the hand holding the sensor, accelerated more than the model
allows).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .degeneracy import AXIS_NAMES
from .geometry import so3_exp, so3_log


def tangent(T_from: np.ndarray, T_to: np.ndarray) -> np.ndarray:
    """Rotation-first right perturbation e with T_to = T_from Exp(e) (translation in T_from's axes)."""
    out = np.empty(6)
    out[:3] = so3_log(np.ascontiguousarray(T_from[:3, :3].T @ T_to[:3, :3]))
    out[3:] = T_from[:3, :3].T @ (T_to[:3, 3] - T_from[:3, 3])
    return out


def perturb(T: np.ndarray, e: np.ndarray) -> np.ndarray:
    """T Exp(e) in the convention of :func:`tangent`."""
    out = T.copy()
    out[:3, :3] = T[:3, :3] @ so3_exp(np.ascontiguousarray(e[:3], dtype=np.float64))
    out[:3, 3] = T[:3, 3] + T[:3, :3] @ e[3:]
    return out


def positive_semidefinite(covariance: np.ndarray) -> np.ndarray:
    """The nearest symmetric positive semi-definite matrix (negative eigenvalues, left by rounding
    or a non-positive update, set to zero)."""
    vals, vecs = np.linalg.eigh(0.5 * (covariance + covariance.T))
    return (vecs * np.maximum(vals, 0.0)) @ vecs.T


def information(covariance: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric covariance through its eigen-decomposition (tiny eigenvalues floored)."""
    vals, vecs = np.linalg.eigh(0.5 * (covariance + covariance.T))
    vals = np.maximum(vals, max(float(vals.max()), 1e-300) * 1e-15)
    return (vecs / vals) @ vecs.T


class LidarMeasurement(NamedTuple):
    """What one registration says about the pose: ``pose`` (4x4, T_world_lidar: the data's own
    solution), its ``covariance`` (6x6, rotation first, rad^2 / m^2, body frame), ``weak`` (6,)
    bool: the axes it measures weakly (relative or absolute test), where it is the suspect when it
    disagrees with the prediction, and ``absolute_weak``: those whose uncertainty in metres and
    degrees is too large to hold against a measured motion (the relative test also flags axes
    that are only weaker than the others, e.g. a corridor's roll)."""

    pose: np.ndarray
    covariance: np.ndarray
    weak: np.ndarray
    absolute_weak: np.ndarray


def with_axes_unobserved(covariance: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """``covariance`` with the (body) ``axes`` (6,) bool made uninformative: the variance there
    becomes :data:`~dcreg_ros.core.measurement.UNOBSERVED_VARIANCE`, the correlations with them vanish."""
    from .measurement import UNOBSERVED_VARIANCE

    out = covariance.copy()
    for a in np.flatnonzero(np.asarray(axes, dtype=bool)):
        out[a, :] = 0.0
        out[:, a] = 0.0
        out[a, a] = UNOBSERVED_VARIANCE
    return out


# On an axis the LiDAR measures weakly (relative or absolute test) it is still not the suspect of a
# disagreement while its standard deviation is this many times smaller than the prediction's: the
# absolute test flags 0.1 deg / 5 mm per frame, which a scan turning 100 deg/s exceeds, while the
# constant-velocity guess is off by degrees then (a hand-held sensor at 5 Hz: LiDAR 0.14 deg
# against the prediction's 2.4 deg; down-weighting the LiDAR there let the guess's yaw error into
# the map and the track diverged, 3.1 m ATE in the structured hall where `none` gives 4 cm).
# Rotation axes only: on translation (a corridor's x) a mis-association can be that certain and
# wrong, and trusting it there let a localization with the IMU in a corridor run off (seed 3:
# 9 cm -> 6.1 m); the hand-held cases were the same with rotation only (8 runs measured).
LIDAR_DOMINANT_RATIO = 10.0


class Consistency(NamedTuple):
    """The covariances after the check and what it did: ``normalized`` (6,) |innovation| / std
    before it, ``lidar_down`` / ``prediction_down`` the axes where that source was down-weighted."""

    prediction_covariance: np.ndarray
    lidar_covariance: np.ndarray
    normalized: np.ndarray
    lidar_down: tuple[str, ...]
    prediction_down: tuple[str, ...]

    def notes(self, source: str) -> list[str]:
        """One-line remarks for the frame (each worth a WARN)."""
        out = []
        if self.lidar_down:
            out.append(f"LiDAR disagrees with the {source} prediction along its weak {', '.join(self.lidar_down)}: down-weighted")
        if self.prediction_down:
            out.append(f"{source} prediction off along {', '.join(self.prediction_down)} (the LiDAR measures it well): down-weighted")
        return out


def _raise_axis(C: np.ndarray, a: int, variance: float) -> np.ndarray:
    """C with axis a's variance raised to ``variance``: its row and column scaled (correlations
    kept), or, from a zero variance, set on the diagonal alone."""
    if not C[a, a] > 0.0:
        out = C.copy()
        out[a, a] = variance
        return out
    d = np.ones(len(C))
    d[a] = np.sqrt(variance / C[a, a])
    return C * np.outer(d, d)


def check_consistency(innovation: np.ndarray, prediction_covariance: np.ndarray, lidar_covariance: np.ndarray,
                      lidar_weak: np.ndarray, gate: float) -> Consistency:
    """Per axis, |innovation| against sqrt(P + R) (rotation first, body frame): beyond ``gate``
    standard deviations the suspect source is down-weighted on that axis for the frame. The
    LiDAR on its weak axes (unless, on a rotation axis, it is still :data:`LIDAR_DOMINANT_RATIO`
    times more certain than the prediction there): its variance scaled until the difference sits
    at the gate, so it still pulls (against a constant-velocity guess it is often the one that is right: a single
    aliased frame put a spike in the velocity, and a LiDAR set aside entirely let the guess run
    off along a corridor). Else the prediction: its variance raised to the innovation's square,
    set aside for the frame (raised only to the gate, a lying wheel off by ten sigma still pulled
    the pose by three, frame after frame)."""
    P, R = prediction_covariance.copy(), lidar_covariance.copy()
    total = np.maximum(np.diag(P) + np.diag(R), 1e-300)
    normalized = np.abs(innovation) / np.sqrt(total)
    lidar_down, prediction_down = [], []
    for a in np.flatnonzero(normalized > gate):
        need = innovation[a] ** 2
        rotation = a < 3
        lidar_dominant = rotation and R[a, a] * LIDAR_DOMINANT_RATIO**2 < P[a, a]
        if lidar_weak[a] and not lidar_dominant:
            R = _raise_axis(R, a, max(need / gate**2 - P[a, a], R[a, a]))
            lidar_down.append(AXIS_NAMES[a])
        else:
            P = _raise_axis(P, a, max(need - R[a, a], P[a, a]))
            prediction_down.append(AXIS_NAMES[a])
    return Consistency(P, R, normalized, tuple(lidar_down), tuple(prediction_down))


def adjoint(T: np.ndarray) -> np.ndarray:
    """Adjoint of T (4x4) for rotation-first twists (omega, v): Ad_T xi = (R w, [t]x R w + R v)."""
    R, t = T[:3, :3], T[:3, 3]
    A = np.zeros((6, 6))
    A[:3, :3] = R
    A[3:, 3:] = R
    tx = np.array([[0.0, -t[2], t[1]], [t[2], 0.0, -t[0]], [-t[1], t[0], 0.0]])
    A[3:, :3] = tx @ R
    return A


def compound_covariance(pose_covariance: np.ndarray, delta: np.ndarray, motion_covariance: np.ndarray) -> np.ndarray:
    """A pose covariance (6x6, rotation first, body frame) carried through a motion ``delta``
    (4x4, T_prev_new) with covariance ``motion_covariance`` (body frame of the new pose):
    Ad(delta^-1) P Ad(delta^-1)^T + C. It grows while a direction stays unobserved."""
    A = adjoint(np.linalg.inv(delta))
    P = A @ pose_covariance @ A.T + motion_covariance
    return 0.5 * (P + P.T)


class Fused(NamedTuple):
    """The fused pose (4x4), its covariance (6x6, rotation first, body frame) and the innovation
    (data pose - prediction, 6, rotation first)."""

    pose: np.ndarray
    covariance: np.ndarray
    innovation: np.ndarray


def motion_covariance(previous: np.ndarray, delta: np.ndarray, process: np.ndarray, lidar: np.ndarray) -> np.ndarray:
    """Covariance of one frame's motion error m = e_k - Ad(delta^-1) e_(k-1), where e_(k-1) has
    covariance ``previous`` (the last pose relative to the map), e_k = Ad e_(k-1) + w with w of
    covariance ``process`` (the motion prediction's), and e_k was then measured by the LiDAR with
    covariance ``lidar``: the joint Kalman update of (e_(k-1), e_k). All 6x6, rotation first, body
    frames. The pose covariance alone would make every frame's motion as uncertain as the whole
    drift since the map last fixed it."""
    A = adjoint(np.linalg.inv(delta))
    joint = np.zeros((12, 12))
    joint[:6, :6] = previous
    joint[:6, 6:] = previous @ A.T
    joint[6:, :6] = A @ previous
    joint[6:, 6:] = A @ previous @ A.T + process
    H = np.zeros((6, 12))
    H[:, 6:] = np.eye(6)
    S = H @ joint @ H.T + lidar
    K = np.linalg.solve(0.5 * (S + S.T), H @ joint).T
    posterior = joint - K @ H @ joint
    D = np.hstack([-A, np.eye(6)])
    return positive_semidefinite(D @ posterior @ D.T)


def fuse(predicted: np.ndarray, prediction_covariance: np.ndarray, data_pose: np.ndarray, data_covariance: np.ndarray) -> Fused:
    """Information-weighted mean of the predicted pose and the LiDAR's data pose (both 4x4), each
    with its covariance (6x6, rotation first, body frame of the prediction)."""
    nu = tangent(predicted, data_pose)
    I_data = information(data_covariance)
    C = information(information(prediction_covariance) + I_data)
    C = 0.5 * (C + C.T)
    return Fused(perturb(predicted, C @ (I_data @ nu)), C, nu)
