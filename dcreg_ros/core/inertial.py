"""IMU motion prior: an error-state Kalman filter driven by the gyro and the accelerometer,
corrected by the registered LiDAR poses (and, when present, the wheel speeds).

State (world = the odometry frame, the first scan's LiDAR frame): the IMU's attitude R_wi and
position p_wi, its velocity v_w (m/s), the gyro and accelerometer biases b_g (rad/s) and b_a
(m/s²), and the gravity vector g_w (m/s², its norm fixed to :data:`GRAVITY`: the odometry frame
need not be level). Error state, 18 values: [dtheta (body), dp, dv, db_g, db_a, dg].

Two covariances are propagated. ``P`` is the filter's own: the pose uncertainty keeps growing
along a direction the LiDAR does not observe, so when a feature finally fixes it, the correction
goes mostly into the pose, the velocity only as far as their correlation says (a drift gathered
over seconds is not one frame's acceleration). ``P_motion`` is reset at every scan: its pose
part is the uncertainty of the motion *between* two scans, the prior the registration needs
(the local map moved with the earlier poses). Conventions: specific force
includes the reaction to gravity (REP-145: a level IMU at rest reads about (0, 0, +9.81));
``T_lidar_imu`` is the IMU's pose in the LiDAR frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .geometry import invert_pose, skew, so3_exp
from .proprioception import GRAVITY, ImuSamples

THETA, POS, VEL, BG, BA, GRAV = (slice(3 * k, 3 * k + 3) for k in range(6))
N_STATE = 18
MAX_POSITION_VARIANCE = 1e4  # m²


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
        """Start at rest at the LiDAR pose ``T_world_lidar`` at time ``t``: gravity and the gyro
        bias from the mean of the samples around ``t``, the velocity zero. When the samples show
        motion the filter stays uninitialized (see :meth:`initialize_from_motion`)."""
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
        if not self.static_start:
            return  # a moving start: initialize_from_motion once the LiDAR has seen some motion
        self.g = -self.R @ f
        self.g *= GRAVITY / max(np.linalg.norm(self.g), 1e-9)
        self.v = np.zeros(3)
        self.bg = w.copy() if self.static_start else np.zeros(3)
        self.ba = np.zeros(3)
        P = np.zeros((N_STATE, N_STATE))
        P[VEL, VEL] = np.eye(3) * 0.05**2
        P[BG, BG] = np.eye(3) * (0.1 * n.gyro_bias_sigma) ** 2
        P[BA, BA] = np.eye(3) * n.accel_bias_sigma**2
        # gravity fixed from here on: its direction and the accelerometer bias are told apart
        # only by turning, and letting both float let mis-associations tilt gravity
        self.P = P
        self.P_motion = P.copy()
        self.t = float(t)
        self.initialized = True

    def initialize_attitude(self, T_world_lidar: np.ndarray, samples: ImuSamples, t: float) -> None:
        """Start for predicting rotation only, at once, at rest or moving: the attitude from the
        LiDAR pose, the gyro bias zero within its configured uncertainty (the mean rate when the
        IMU is still: a start at rest). Gravity and velocity are not needed for rotation."""
        self.initialize(T_world_lidar, samples, t)
        if self.initialized:
            return
        T_wi = T_world_lidar @ self.T_lidar_imu
        self.R, self.p = T_wi[:3, :3].copy(), T_wi[:3, 3].copy()
        self.g = np.array([0.0, 0.0, -GRAVITY])
        self.v, self.bg, self.ba = np.zeros(3), np.zeros(3), np.zeros(3)
        n = self.noise
        P = np.zeros((N_STATE, N_STATE))
        P[VEL, VEL] = np.eye(3) * self.initial_speed_sigma**2
        P[BG, BG] = np.eye(3) * n.gyro_bias_sigma**2
        P[BA, BA] = np.eye(3) * n.accel_bias_sigma**2
        self.P, self.P_motion = P, P.copy()
        self.t = float(t)
        self.initialized = True

    def initialize_from_motion(self, times: np.ndarray, poses: np.ndarray, samples: ImuSamples) -> bool:
        """Start while moving: the LiDAR's poses ``poses`` (K, 4, 4) at ``times`` (K,) s over the
        first second or so, and the IMU over the same span, give the velocity at the start and
        the gravity vector by least squares (p_k - p_0 - double integral of R f = v0 dt_k +
        g dt_k^2 / 2), the attitudes from the LiDAR. False (not started) when the fitted gravity
        is implausible (norm off by more than 0.5 m/s²)."""
        T_wi = poses @ self.T_lidar_imu
        R0, p = T_wi[0, :3, :3], T_wi[:, :3, 3]
        dts, gyro, accel = resample(samples, float(times[0]), float(times[-1]))
        knots = float(times[0]) + np.concatenate([[0.0], np.cumsum(dts)])
        R, v, x = R0.copy(), np.zeros(3), np.zeros(3)
        dp, dv = [np.zeros(3)], [np.zeros(3)]
        k = 1
        for j, dt in enumerate(dts):  # specific force integrated along the gyro attitude, gravity left out
            a = R @ accel[j]
            x = x + v * dt + 0.5 * a * dt * dt
            v = v + a * dt
            R = R @ so3_exp(gyro[j] * dt)
            while k < len(times) and knots[j + 1] >= times[k] - 1e-9:
                dp.append(x.copy())
                dv.append(v.copy())
                k += 1
        if len(dp) != len(times):
            return False
        dt_k = times - times[0]
        A = np.zeros((3 * (len(times) - 1), 6))
        b = np.zeros(3 * (len(times) - 1))
        for i in range(1, len(times)):
            A[3 * (i - 1): 3 * i, :3] = np.eye(3) * dt_k[i]
            A[3 * (i - 1): 3 * i, 3:] = np.eye(3) * 0.5 * dt_k[i] ** 2
            b[3 * (i - 1): 3 * i] = p[i] - p[0] - dp[i]
        solution = np.linalg.lstsq(A, b, rcond=None)[0]
        v0, g = solution[:3], solution[3:]
        if not abs(np.linalg.norm(g) - GRAVITY) < 0.5:
            return False
        self.g = g * (GRAVITY / np.linalg.norm(g))
        self.R, self.p = T_wi[-1, :3, :3].copy(), p[-1].copy()
        self.v = v0 + self.g * dt_k[-1] + dv[-1]
        self.bg, self.ba = np.zeros(3), np.zeros(3)
        n = self.noise
        P = np.zeros((N_STATE, N_STATE))
        P[VEL, VEL] = np.eye(3) * 0.1**2
        P[BG, BG] = np.eye(3) * n.gyro_bias_sigma**2
        P[BA, BA] = np.eye(3) * n.accel_bias_sigma**2
        self.P, self.P_motion = P, P.copy()
        self.t = float(times[-1])
        self.static_start = False
        self.initialized = True
        return True

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
        R, p, v = self.R, self.p, self.v
        self.R, self.p, self.v, self.P = _propagate(R, p, v, self.bg, self.ba, self.g, self.P, dts, gyro, accel, q)
        self.P_motion = _propagate(R, p, v, self.bg, self.ba, self.g, self.P_motion, dts, gyro, accel, q)[3]
        # far beyond anything a registration could use; keeps the numbers finite on long blind stretches
        for i in range(POS.start, POS.stop):
            if self.P[i, i] > MAX_POSITION_VARIANCE:
                scale = np.sqrt(MAX_POSITION_VARIANCE / self.P[i, i])
                self.P[i, :] *= scale
                self.P[:, i] *= scale
        self.t = float(t1)

    def inflate_pose_covariance(self, extra: np.ndarray) -> None:
        """Add ``extra`` (6x6, rotation first, LiDAR body frame) to the pose part of both
        covariances: the prediction was worse than the filter thought (a consistency check said so)."""
        J_inv = np.linalg.inv(self._pose_jacobian())
        add = J_inv @ extra @ J_inv.T
        for P in (self.P, self.P_motion):
            P[:6, :6] += 0.5 * (add + add.T)

    def map_pose_covariance(self) -> np.ndarray:
        """Covariance (6x6, rotation first, LiDAR body frame) of the LiDAR pose in the odometry
        frame: the filter's own, which grows along what the LiDAR does not observe."""
        J = self._pose_jacobian()
        return J @ self.P[:6, :6] @ J.T

    def pose_covariance(self) -> np.ndarray:
        """Covariance (6x6, rotation first, LiDAR body frame) of the LiDAR pose since the reset."""
        J = self._pose_jacobian()
        return J @ self.P_motion[:6, :6] @ J.T

    def update(self, H: np.ndarray, information: np.ndarray, residual: np.ndarray) -> None:
        """Kalman update with a linear measurement ``H`` (m x 18), its ``information`` (m x m,
        possibly singular: directions without information are left out) and innovation
        ``residual`` (m,), then error injection. ``P_motion`` gets the same measurement."""
        vals, vecs = np.linalg.eigh(0.5 * (information + information.T))
        keep = vals > vals.max() * 1e-12 if vals.size and vals.max() > 0 else np.zeros(len(vals), dtype=bool)
        if not keep.any():
            return
        U = vecs[:, keep]
        Hk, rk, noise = U.T @ H, U.T @ residual, np.diag(1.0 / vals[keep])
        dx = None
        for name in ("P", "P_motion"):
            P = getattr(self, name)
            S = Hk @ P @ Hk.T + noise
            K = np.linalg.solve(S, Hk @ P).T
            IKH = np.eye(N_STATE) - K @ Hk
            P = IKH @ P @ IKH.T + K @ noise @ K.T  # Joseph form: stays symmetric positive
            setattr(self, name, 0.5 * (P + P.T))
            if dx is None:
                dx = K @ rk
        self.R = self.R @ so3_exp(np.ascontiguousarray(dx[THETA]))
        self.p = self.p + dx[POS]
        self.v = self.v + dx[VEL]
        self.bg = self.bg + dx[BG]
        self.ba = self.ba + dx[BA]
        g = self.g + dx[GRAV]
        self.g = g * (GRAVITY / max(np.linalg.norm(g), 1e-9))
        self._keep_plausible()

    BIAS_BOUND_SIGMAS = 4.0  # a bias estimate beyond this many initial sigmas is a runaway, not a bias

    VELOCITY_FLOOR = 0.05  # m/s: unmodelled accelerations (vibration, lever arms, timing) keep the velocity this uncertain
    BIAS_FLOOR_FRACTION = 0.05  # of the initial bias uncertainty: what the biases can never be known better than

    def _keep_plausible(self) -> None:
        """Biases within BIAS_BOUND_SIGMAS of their initial uncertainty: an estimate pushed beyond
        by inconsistent measurements is clipped and its uncertainty restored, so it can recover.
        Covariance floors on the velocity and the biases: a filter that believes it knows them
        better than the sensor model allows stops listening to the LiDAR and drifts unseen."""
        n = self.noise
        for part, floor in ((VEL, self.VELOCITY_FLOOR), (BG, self.BIAS_FLOOR_FRACTION * n.gyro_bias_sigma),
                            (BA, self.BIAS_FLOOR_FRACTION * n.accel_bias_sigma)):
            for P in (self.P,):
                for i in range(part.start, part.stop):
                    if P[i, i] < floor**2:
                        P[i, i] = floor**2
        for part, sigma in ((BG, n.gyro_bias_sigma), (BA, n.accel_bias_sigma)):
            bound = self.BIAS_BOUND_SIGMAS * sigma
            value = getattr(self, "bg" if part is BG else "ba")
            if np.any(np.abs(value) > bound):
                setattr(self, "bg" if part is BG else "ba", np.clip(value, -bound, bound))
                for P in (self.P, self.P_motion):
                    P[part, :] = 0.0
                    P[:, part] = 0.0
                    P[part, part] = np.eye(3) * sigma**2
        # the motion covariance starts at zero pose uncertainty every scan; only the filter's own needs its floors

    def restart_motion(self, velocity_world: np.ndarray, velocity_covariance: np.ndarray) -> None:
        """Restart the velocity from another estimate (the LiDAR's constant-velocity model, world
        frame, m/s) and forget what the biases learnt: after the filter disagreed with the LiDAR
        beyond doubt, its velocity and biases are what went wrong."""
        n = self.noise
        self.v = np.asarray(velocity_world, dtype=np.float64).copy()
        self.ba = np.zeros(3)
        for P in (self.P, self.P_motion):
            for part in (VEL, BG, BA):
                P[part, :] = 0.0
                P[:, part] = 0.0
            P[VEL, VEL] = velocity_covariance
            P[BG, BG] = np.eye(3) * n.gyro_bias_sigma**2
            P[BA, BA] = np.eye(3) * n.accel_bias_sigma**2

    def zero_velocity(self, sigma: float = 0.01) -> None:
        """A standstill is a measurement: velocity zero (m/s, world frame) within ``sigma``."""
        H = np.zeros((3, N_STATE))
        H[:, VEL] = np.eye(3)
        self.update(H, np.eye(3) / sigma**2, -self.v)

    def correct_pose(self, information: np.ndarray, information_vector: np.ndarray) -> np.ndarray:
        """Fuse the LiDAR's measurement of its pose in information form, relative to the predicted
        pose (information 6x6 and information x innovation, rotation first, body frame; zero along
        directions the LiDAR did not observe); the posterior LiDAR pose (the odometry's estimate)
        is returned and becomes the reference of the next motion."""
        vals, vecs = np.linalg.eigh(0.5 * (information + information.T))
        keep = vals > max(float(vals.max()), 0.0) * 1e-12 if vals.size else np.zeros(0, dtype=bool)
        H = np.zeros((6, N_STATE))
        H[:, :6] = self._pose_jacobian()
        if keep.any():
            U = vecs[:, keep]
            residual = U @ ((U.T @ information_vector) / vals[keep])
            self.update(H, information, residual)
        self.last_pose_covariance = self.pose_covariance()  # the motion's covariance since the last scan, after the update
        self.P_motion = self.P.copy()
        self.P_motion[:6, :] = 0.0
        self.P_motion[:, :6] = 0.0
        return self.T_world_lidar

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
