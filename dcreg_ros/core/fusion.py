"""Fusing the LiDAR's pose with the motion prediction by information, after checking they agree.

The registration's own estimate (the data pose) and the prediction of the motion model are two
measurements of the same pose with honest covariances (core/measurement.py, core/motion_prior.py).
The fused pose is their information-weighted mean on every axis, so a direction the LiDAR does
not see stays on the prediction and a direction the prediction cannot know (the robot braked)
follows the LiDAR; the fused covariance is the frame's motion covariance.

Before fusing, the two are tested against each other: the normalized innovation squared (NIS)
of their difference. :class:`LidarCalibration` learns, per body axis, how much the LiDAR's
covariance has to be scaled to explain the innovations it produced so far (what the model of
core/measurement.py still misses: mis-associations, map errors), from data only.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import numpy as np

from .geometry import so3_exp, so3_log


def tangent(T_from: np.ndarray, T_to: np.ndarray) -> np.ndarray:
    """Rotation-first right perturbation e with T_to = T_from Exp(e) (translation part in T_from's frame)."""
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


def information(covariance: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric covariance through its eigen-decomposition (tiny eigenvalues floored)."""
    vals, vecs = np.linalg.eigh(0.5 * (covariance + covariance.T))
    vals = np.maximum(vals, max(float(vals.max()), 1e-300) * 1e-15)
    return (vecs / vals) @ vecs.T


class Fused(NamedTuple):
    """The fused pose (4x4), its covariance (6x6, rotation first, body frame: the frame's motion
    covariance when the prediction was relative to the previous pose), the innovation (data
    pose - prediction, 6) with its covariance, and the NIS."""

    pose: np.ndarray
    covariance: np.ndarray
    innovation: np.ndarray
    innovation_covariance: np.ndarray
    nis: float


def fuse(predicted: np.ndarray, prediction_covariance: np.ndarray, data_pose: np.ndarray, data_covariance: np.ndarray) -> Fused:
    """Information-weighted mean of the predicted pose and the LiDAR's data pose (both 4x4), each
    with its covariance (6x6, rotation first, body frame)."""
    nu = tangent(predicted, data_pose)
    S = prediction_covariance + data_covariance
    I_pred, I_data = information(prediction_covariance), information(data_covariance)
    C = information(I_pred + I_data)
    step = C @ (I_data @ nu)
    nis = float(nu @ np.linalg.solve(0.5 * (S + S.T), nu))
    return Fused(perturb(predicted, step), 0.5 * (C + C.T), nu, S, nis)


class InnovationCalibration:
    """Learns, per body axis (roll .. z), the two numbers the fusion's covariances rest on, from
    the innovations (LiDAR data pose - prediction) of the last ``window`` frames:

    - ``acceleration[a]``: how fast the motion really changes (rad/s^2 or m/s^2), which sets the
      constant-velocity prediction's uncertainty: (sigma_v + a dt)^2 dt^2 with sigma_v the
      velocity's standard deviation;
    - ``lidar_scale[a]``: the factor s on the LiDAR's modelled variance (core/measurement.py)
      that its innovations call for (mis-associations and map errors the model misses).

    nu_a ~ N(0, (sigma_v + a dt)^2 dt^2 + s R_aa), (a, s) by maximum a posteriori over a grid with
    log-normal priors around the configured acceleration and 1: an axis whose innovations are
    dominated by the prediction teaches a, one dominated by the LiDAR teaches s, and one where
    they cannot tell stays near the priors. Innovations are clipped at ``clip`` standard
    deviations so that one mis-association does not decide it. Learned from the data only.
    """

    ACCELERATION_GRID = np.exp(np.linspace(np.log(0.02), np.log(50.0), 41))  # factors on the configured acceleration
    SCALE_GRID = np.exp(np.linspace(np.log(0.1), np.log(1e5), 49))

    def __init__(self, configured_acceleration: np.ndarray, window: int = 60, every: int = 5, prior_sigma: float = 2.0,
                 clip: float = 6.0) -> None:
        self.configured = np.asarray(configured_acceleration, dtype=np.float64).copy()
        self.window, self.every, self.prior_sigma, self.clip = window, every, prior_sigma, clip
        self.samples: deque = deque(maxlen=window)
        self.reset()

    def reset(self) -> None:
        self.samples.clear()
        self.acceleration = self.configured.copy()
        self.lidar_scale = np.ones(6)
        self._since = 0

    def scaled(self, covariance: np.ndarray) -> np.ndarray:
        """The LiDAR covariance with ``lidar_scale`` applied (D C D, D = diag(sqrt(s)))."""
        d = np.sqrt(self.lidar_scale)
        return covariance * np.outer(d, d)

    def update(self, innovation: np.ndarray, velocity_std: np.ndarray, dt: float, data_covariance: np.ndarray) -> None:
        """Add one frame: the innovation, the velocity's standard deviation before the
        acceleration was added (6), the interval (s) and the LiDAR's unscaled covariance."""
        if not dt > 0.0 or not np.all(np.isfinite(innovation)):
            return
        self.samples.append((np.asarray(innovation, dtype=np.float64).copy(), np.asarray(velocity_std, dtype=np.float64).copy(),
                             float(dt), np.diag(data_covariance).copy()))
        self._since += 1
        if self._since >= self.every or len(self.samples) < self.every:
            self._since = 0
            self._estimate()

    def _estimate(self) -> None:
        nu = np.array([s[0] for s in self.samples])  # frames x 6
        sv = np.array([s[1] for s in self.samples])
        dt = np.array([s[2] for s in self.samples])[:, None]
        R = np.array([s[3] for s in self.samples])
        a_grid = self.ACCELERATION_GRID[None, :, None]  # relative to the configured acceleration
        s_grid = self.SCALE_GRID[None, None, :]
        for k in range(6):
            a = self.configured[k] * a_grid
            var = ((sv[:, k, None, None] + a * dt[:, :, None]) * dt[:, :, None]) ** 2 + s_grid * R[:, k, None, None]
            z2 = np.minimum(nu[:, k, None, None] ** 2 / var, self.clip**2)
            score = -0.5 * np.sum(z2 + np.log(var), axis=0)
            score += -0.5 * (np.log(self.ACCELERATION_GRID)[:, None] / self.prior_sigma) ** 2
            score += -0.5 * (np.log(self.SCALE_GRID)[None, :] / self.prior_sigma) ** 2
            i, j = np.unravel_index(int(np.argmax(score)), score.shape)
            self.acceleration[k] = self.configured[k] * self.ACCELERATION_GRID[i]
            self.lidar_scale[k] = self.SCALE_GRID[j]
