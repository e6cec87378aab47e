"""IMU motion prior: an error-state Kalman filter driven by the gyro and the accelerometer,
corrected by the registered LiDAR poses (and, when present, the wheel speeds).

State (world = the odometry frame, the first scan's LiDAR frame): the IMU's attitude R_wi and
position p_wi, its velocity v_w (m/s), the gyro and accelerometer biases b_g (rad/s) and b_a
(m/s²), and the gravity vector g_w (m/s², its norm fixed to :data:`GRAVITY`: the odometry frame
need not be level). Error state, 18 values: [dtheta (body), dp, dv, db_g, db_a, dg].

The filter works relative to the last registered scan: after each correction the pose error is
reset (the local map moves with the pose), so the pose part of the covariance at the next scan is
the uncertainty of the motion *between* the scans, the prior the registration needs; velocity,
biases and gravity keep their uncertainty and their correlations. Conventions: specific force
includes the reaction to gravity (REP-145: a level IMU at rest reads about (0, 0, +9.81));
``T_lidar_imu`` is the IMU's pose in the LiDAR frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .geometry import invert_pose, skew, so3_exp, so3_log
from .proprioception import ImuSamples

GRAVITY = 9.81  # m/s², the norm of the gravity vector
THETA, POS, VEL, BG, BA, GRAV = (slice(3 * k, 3 * k + 3) for k in range(6))
N_STATE = 18


@dataclass(frozen=True)
class ImuNoise:
    """Continuous-time noise of the IMU: white noise densities (rad/s/sqrt(Hz), m/s²/sqrt(Hz)),
    bias random walks (rad/s²/sqrt(Hz), m/s³/sqrt(Hz)) and the initial bias uncertainties."""

    gyro_density: float
    accel_density: float
    gyro_bias_walk: float
    accel_bias_walk: float
    gyro_bias_sigma: float
    accel_bias_sigma: float


@njit(cache=True)
def _propagate(R, p, v, bg, ba, g, P, dts, gyro, accel, q):
    """Integrate the nominal state and the error covariance over the sub-steps ``dts`` (s) with
    the measured rates ``gyro`` (K, 3) and specific forces ``accel`` (K, 3); ``q`` = the four
    noise densities squared (gyro, accel, gyro bias, accel bias)."""
    F = np.eye(18)
    for k in range(dts.shape[0]):
        dt = dts[k]
        if dt <= 0.0:
            continue
        w = gyro[k] - bg
        a = accel[k] - ba
        Ra = R @ a
        acc = Ra + g
        p = p + v * dt + 0.5 * acc * dt * dt
        v = v + acc * dt
        dR = so3_exp(w * dt)
        F[:, :] = 0.0
        for i in range(18):
            F[i, i] = 1.0
        # dtheta' = -[w]x dtheta - db_g: over dt, dtheta <- Exp(-w dt) dtheta - dt db_g
        Et = dR.T
        for i in range(3):
            for j in range(3):
                F[i, j] = Et[i, j]
            F[i, 9 + i] = -dt
            F[3 + i, 6 + i] = dt
            F[6 + i, 15 + i] = dt
        RaX = R @ skew(a)
        for i in range(3):
            for j in range(3):
                F[6 + i, j] = -RaX[i, j] * dt
                F[6 + i, 12 + j] = -R[i, j] * dt
        P = F @ P @ F.T
        for i in range(3):
            P[i, i] += q[0] * dt
            P[6 + i, 6 + i] += q[1] * dt
            P[9 + i, 9 + i] += q[2] * dt
            P[12 + i, 12 + i] += q[3] * dt
        R = R @ dR
    return R, p, v, P


def resample(samples: ImuSamples, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sub-steps covering [t0, t1] exactly: (durations (K,), gyro (K, 3), accel (K, 3)); each
    sub-step between two samples uses their mean (trapezoid), the ends hold the nearest sample."""
    s = samples.stamps
    inner = np.flatnonzero((s > t0) & (s < t1))
    knots = np.concatenate([[t0], s[inner], [t1]])
    mid = 0.5 * (knots[:-1] + knots[1:])
    gyro = np.column_stack([np.interp(mid, s, samples.angular_velocity[:, k]) for k in range(3)])
    accel = np.column_stack([np.interp(mid, s, samples.linear_acceleration[:, k]) for k in range(3)])
    return np.diff(knots), gyro, accel


class InertialFilter:
    """Error-state Kalman filter of the IMU between scans (see the module docstring)."""

    source = "imu"

    def __init__(self, noise: ImuNoise, T_lidar_imu: np.ndarray, initial_speed_sigma: float) -> None:
        self.noise = noise
        self.T_lidar_imu = np.asarray(T_lidar_imu, dtype=np.float64)
        self.T_imu_lidar = invert_pose(self.T_lidar_imu)
        self.initial_speed_sigma = float(initial_speed_sigma)
        self.initialized = False
        self.static_start = False

    # ------------------------------------------------------------------ set-up
    def initialize(self, T_world_lidar: np.ndarray, samples: ImuSamples, t: float) -> None:
        """Start at the LiDAR pose ``T_world_lidar`` at time ``t``: gravity from the mean specific
        force of the samples around ``t`` (a start at rest makes it exact, and the biases and a
        zero velocity known; a moving start gets a wider uncertainty that the LiDAR narrows)."""
        T_wi = T_world_lidar @ self.T_lidar_imu
        self.R, self.p = T_wi[:3, :3].copy(), T_wi[:3, 3].copy()
        recent = samples.between(t - 0.5, t + 0.05)
        if len(recent) < 3:
            recent = samples
        f = recent.linear_acceleration.mean(axis=0)
        w = recent.angular_velocity.mean(axis=0)
        n = self.noise
        accel_std = float(recent.linear_acceleration.std(axis=0).max())
        gyro_std = float(recent.angular_velocity.std(axis=0).max())
        # at rest the scatter is the sensor noise alone; a moving robot shakes and turns
        self.static_start = accel_std < 0.2 and gyro_std < 0.05 and abs(np.linalg.norm(f) - GRAVITY) < 0.3
        self.g = -self.R @ f
        self.g *= GRAVITY / max(np.linalg.norm(self.g), 1e-9)
        self.v = np.zeros(3)
        self.bg = w.copy() if self.static_start else np.zeros(3)
        self.ba = np.zeros(3)
        P = np.zeros((N_STATE, N_STATE))
        speed = 0.05 if self.static_start else self.initial_speed_sigma
        P[VEL, VEL] = np.eye(3) * speed**2
        P[BG, BG] = np.eye(3) * (0.1 * n.gyro_bias_sigma if self.static_start else n.gyro_bias_sigma) ** 2
        P[BA, BA] = np.eye(3) * n.accel_bias_sigma**2
        P[GRAV, GRAV] = np.eye(3) * (0.05 if self.static_start else 0.5) ** 2
        self.P = P
        self.t = float(t)
        self.initialized = True

    @property
    def T_world_lidar(self) -> np.ndarray:
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = self.R, self.p
        return T @ self.T_imu_lidar

    def _pose_jacobian(self) -> np.ndarray:
        """d(LiDAR body-frame pose error, rotation first) / d(dtheta, dp) of the IMU state."""
        R_il, t_il = self.T_imu_lidar[:3, :3], self.T_imu_lidar[:3, 3]
        R_wl = self.R @ R_il
        J = np.zeros((6, 6))
        J[:3, :3] = R_il.T
        J[3:, :3] = -R_wl.T @ self.R @ skew(t_il)
        J[3:, 3:] = R_wl.T
        return J

    # ------------------------------------------------------------------ filter
    def propagate(self, samples: ImuSamples, t1: float) -> None:
        """Integrate the IMU from the filter's time to ``t1`` (s)."""
        if t1 <= self.t:
            return
        dts, gyro, accel = resample(samples, self.t, t1)
        n = self.noise
        q = np.array([n.gyro_density, n.accel_density, n.gyro_bias_walk, n.accel_bias_walk]) ** 2
        self.R, self.p, self.v, self.P = _propagate(self.R, self.p, self.v, self.bg, self.ba, self.g, self.P,
                                                      dts, gyro, accel, q)
        self.t = float(t1)

    def pose_covariance(self) -> np.ndarray:
        """Covariance (6x6, rotation first, LiDAR body frame) of the LiDAR pose since the reset."""
        J = self._pose_jacobian()
        return J @ self.P[:6, :6] @ J.T

    def update(self, H: np.ndarray, information: np.ndarray, residual: np.ndarray) -> None:
        """Information-form update with a linear measurement ``H`` (m x 18) of information
        ``information`` (m x m) and innovation ``residual`` (m,), then error injection."""
        Y = np.linalg.inv(self.P + np.eye(N_STATE) * 1e-12) + H.T @ information @ H
        Y = 0.5 * (Y + Y.T)
        P = np.linalg.inv(Y)
        dx = P @ (H.T @ (information @ residual))
        self.P = 0.5 * (P + P.T)
        self.R = self.R @ so3_exp(np.ascontiguousarray(dx[THETA]))
        self.p = self.p + dx[POS]
        self.v = self.v + dx[VEL]
        self.bg = self.bg + dx[BG]
        self.ba = self.ba + dx[BA]
        g = self.g + dx[GRAV]
        self.g = g * (GRAVITY / max(np.linalg.norm(g), 1e-9))

    def correct_pose(self, measured: np.ndarray, information: np.ndarray, reference: np.ndarray) -> None:
        """Fuse a measured LiDAR pose (T_world_lidar with information 6x6, rotation first, body
        frame; zero along directions the LiDAR did not observe), then take ``reference`` (the
        registered pose) as the new reference and reset the pose uncertainty."""
        T_pred = self.T_world_lidar
        E = invert_pose(T_pred) @ measured
        residual = np.concatenate([so3_log(np.ascontiguousarray(E[:3, :3])), E[:3, 3]])
        H = np.zeros((6, N_STATE))
        H[:, :6] = self._pose_jacobian()
        self.update(H, information, residual)
        T_wi = reference @ self.T_lidar_imu
        self.R, self.p = T_wi[:3, :3].copy(), T_wi[:3, 3].copy()
        self.P[:6, :] = 0.0
        self.P[:, :6] = 0.0

    def correct_body_velocity(self, T_imu_body: np.ndarray, velocity: np.ndarray, variance: np.ndarray,
                              angular_velocity_imu: np.ndarray) -> None:
        """Fuse a velocity measured in another body frame (e.g. wheel odometry's base_link,
        ``T_imu_body``): ``velocity`` (3,) m/s of that frame's origin in its own axes, per-axis
        ``variance`` (m²/s², large = unknown), the IMU's current angular rate for the lever arm."""
        R_ib, t_ib = T_imu_body[:3, :3], T_imu_body[:3, 3]
        omega = angular_velocity_imu - self.bg
        u = self.R.T @ self.v + np.cross(omega, t_ib)  # the body origin's velocity in IMU axes
        predicted = R_ib.T @ u
        H = np.zeros((3, N_STATE))
        H[:, VEL] = R_ib.T @ self.R.T
        H[:, THETA] = R_ib.T @ skew(self.R.T @ self.v)
        known = variance < 1e3
        if not known.any():
            return
        info = np.diag(np.where(known, 1.0 / np.maximum(variance, 1e-12), 0.0))
        self.update(H, info, velocity - predicted)
