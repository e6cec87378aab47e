"""Motion priors of the odometry: the predicted motion between two scans and how uncertain it is.

Every source predicts the LiDAR's motion over one frame interval, ``delta`` = T_prev_new (4x4,
from the previous scan's reference time to the new one's), and the covariance of that
prediction (6x6, rotation first, rad^2 and m^2, in the predicted pose's body frame: the right
perturbation the registration uses). The registration holds the directions DCReg flags on this
prediction, unless the data clearly disagrees, and then weighs the two by their information
(``dcreg_prior``, core/solvers.py); well-constrained directions are the LiDAR's alone. After the
registration the source is corrected with the registered motion and its covariance.

:class:`ConstantVelocityModel` is the LiDAR-only source: the last velocity, whose uncertainty
grows with the robot's possible acceleration (``acceleration_noise``, m/s², and
``angular_acceleration_noise``, rad/s²) and is capped by the largest plausible speed and turn
rate, so a direction that stays unobserved does not end up with an unbounded variance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import math

from .config_io import one_of, param, positive
from .geometry import invert_pose, pose_from_xyz_rpy, so3_exp, so3_log
from .proprioception import ImuSamples, WheelOdometrySamples
from .registration import PredictionPrior

SOURCES = ("auto", "constant_velocity", "imu", "wheel", "imu_wheel")
UNKNOWN_VARIANCE = 1e3  # a wheel-odometry variance at or above this (or zero) means "not measured"


def _pose6(v) -> bool:
    return isinstance(v, tuple) and len(v) == 6 and all(math.isfinite(x) for x in v)


def _non_negative(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x >= 0


@dataclass(frozen=True)
class MotionPriorConfig:
    """How the odometry predicts the motion between scans, and how much it trusts the prediction."""

    acceleration_noise: float = param(1.0, "how fast the robot's speed can change (m/s^2, one sigma): the constant-velocity prediction's uncertainty grows by this per second", positive, "> 0 m/s^2")
    angular_acceleration_noise: float = param(1.0, "how fast the turn rate can change (rad/s^2, one sigma)", positive, "> 0 rad/s^2")
    max_speed: float = param(3.0, "largest plausible speed (m/s): caps the velocity uncertainty of a direction that stays unobserved", positive, "> 0 m/s")
    max_angular_rate: float = param(1.5, "largest plausible turn rate (rad/s): caps the angular velocity uncertainty", positive, "> 0 rad/s")
    source: str = param("auto", "motion prediction: auto (IMU and wheel odometry when they are given, else constant velocity), constant_velocity, imu, wheel or imu_wheel; a source without fresh data falls back to constant velocity with a note", one_of(*SOURCES), "one of " + ", ".join(SOURCES))
    imu_to_lidar: tuple[float, ...] = param((0.0, 0.0, 0.0, 0.0, 0.0, 0.0), "T_lidar_imu: the IMU's pose in the LiDAR frame as x y z roll pitch yaw (m, rad; R = Rz Ry Rx)", _pose6, "6 finite numbers: x y z roll pitch yaw")
    lidar_to_base: tuple[float, ...] = param((0.0, 0.0, 0.0, 0.0, 0.0, 0.0), "T_base_lidar: the LiDAR's pose in the wheel odometry's child frame (base_link) as x y z roll pitch yaw (m, rad)", _pose6, "6 finite numbers: x y z roll pitch yaw")
    max_data_age: float = param(0.2, "IMU / wheel data must reach to within this many seconds of the scan, else the prediction falls back to constant velocity (s)", positive, "> 0 s")
    gyro_noise_density: float = param(2.5e-4, "gyro white noise (rad/s/sqrt(Hz)); consumer MEMS 1e-4 to 5e-4", positive, "> 0")
    accel_noise_density: float = param(2e-3, "accelerometer white noise (m/s^2/sqrt(Hz)); consumer MEMS 1e-3 to 3e-3", positive, "> 0")
    gyro_bias_walk: float = param(2e-5, "gyro bias random walk (rad/s^2/sqrt(Hz))", positive, "> 0")
    accel_bias_walk: float = param(2e-4, "accelerometer bias random walk (m/s^3/sqrt(Hz))", positive, "> 0")
    gyro_bias_sigma: float = param(0.005, "initial gyro bias uncertainty (rad/s)", positive, "> 0 rad/s")
    accel_bias_sigma: float = param(0.1, "initial accelerometer bias uncertainty (m/s^2)", positive, "> 0 m/s^2")
    plausibility_sigma: float = param(5.5, "... and by less than this many standard deviations of prediction and data together: a flagged direction whose data jumps further than the prediction allows is a mis-association (recessed doorways pull the same way frame after frame), not a measurement", lambda x: isinstance(x, (int, float)) and x > 0.0, "> 0")
    wheel_speed_error: float = param(0.05, "wheel odometry distance error as a fraction of the distance (scale error of tyres and load; one sigma)", _non_negative, ">= 0")
    wheel_yaw_error: float = param(0.02, "wheel odometry heading error per metre driven (rad/m, slip; one sigma)", _non_negative, ">= 0 rad/m")
    wheel_lateral_error: float = param(0.05, "sideways and vertical velocity error of the wheel odometry's no-slip assumption (m/s per m/s; one sigma)", _non_negative, ">= 0")
    prior_strength: str = param("prediction", "strength of the dcreg_prior prior on flagged directions: prediction (the prediction's own uncertainty, in physical units) or kappa_target (lambda_max / kappa_target, the MAP reading of the targeted preconditioner)", one_of("prediction", "kappa_target"), "prediction or kappa_target")
    flagged_information: float = param(0.0, "fraction of the LiDAR's apparent information along a flagged direction that the motion model (velocity, IMU biases) uses when the data does not significantly disagree with the prediction (featureless surfaces fake several times the true information)", lambda x: isinstance(x, (int, float)) and 0.0 <= x <= 1.0, "in [0, 1]")
    significance_sigma: float = param(4.0, "the LiDAR updates the motion model (velocity, IMU biases) along a flagged direction only where its own solution differs from the prediction by more than this many of its standard deviations: what the noise of a featureless surface fakes stays centred on the prediction; 0 = always", lambda x: isinstance(x, (int, float)) and 0.0 <= x < 1e3, "in [0, 1000)")


@dataclass
class Prediction:
    """The predicted motion over one frame interval.

    ``delta``: T_prev_new (4x4, m) of the LiDAR; ``covariance``: 6x6, rotation first (rad^2,
    m^2), body frame of the predicted pose; ``source``: which model made it; ``age``: seconds
    since the newest measurement the source used (0 for the constant-velocity model);
    ``notes``: warnings (fallbacks, stale data) for the diagnostics.
    """

    delta: np.ndarray
    covariance: np.ndarray
    source: str
    age: float = 0.0
    notes: list[str] = field(default_factory=list)


def twist_to_delta(xi: np.ndarray, dt: float) -> np.ndarray:
    """T_prev_new (4x4) after moving ``dt`` s with the rotation-first body velocity ``xi``
    (rad/s, m/s): rotation Exp(omega dt), translation v dt in the previous frame (the
    representation :func:`~dcreg_ros.core.deskew.interpolate_motion` interpolates)."""
    out = np.eye(4)
    out[:3, :3] = so3_exp(np.ascontiguousarray(xi[:3] * dt, dtype=np.float64))
    out[:3, 3] = xi[3:] * dt
    return out


def delta_to_twist(delta: np.ndarray, dt: float) -> np.ndarray:
    """Inverse of :func:`twist_to_delta`: rotation-first body velocity (rad/s, m/s)."""
    out = np.empty(6)
    out[:3] = so3_log(np.ascontiguousarray(delta[:3, :3])) / dt
    out[3:] = delta[:3, 3] / dt
    return out


def configured_acceleration(config: "MotionPriorConfig") -> np.ndarray:
    """(6,) rotation first: the configured angular (rad/s^2) and linear (m/s^2) acceleration noise."""
    return np.array([config.angular_acceleration_noise] * 3 + [config.acceleration_noise] * 3, dtype=np.float64)


class ConstantVelocityModel:
    """The velocity of the last frame interval, held; its covariance (rotation first,
    (rad/s)^2 and (m/s)^2) grows with the acceleration noise and shrinks with what the LiDAR
    measured."""

    source = "constant_velocity"

    def __init__(self, config: MotionPriorConfig) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        c = self.config
        self.twist = np.zeros(6)
        self.acceleration = configured_acceleration(c)
        # at the start nothing is known about the velocity but its plausible range
        self.covariance = np.diag([c.max_angular_rate**2] * 3 + [c.max_speed**2] * 3)

    def _capped(self, covariance: np.ndarray) -> np.ndarray:
        c = self.config
        cap = np.array([c.max_angular_rate] * 3 + [c.max_speed] * 3) ** 2
        scale = np.sqrt(np.minimum(1.0, cap / np.maximum(np.diag(covariance), 1e-300)))
        return covariance * np.outer(scale, scale)

    def velocity_covariance(self, dt: float) -> np.ndarray:
        """Covariance of the velocity ``dt`` s after the last correction: each axis's standard
        deviation grows by acceleration x dt (what a robot can really do: brake or speed up
        for a while, not a random walk), correlations kept, capped at the plausible range.
        The acceleration per axis is ``self.acceleration`` (the configured one until the
        fusion's calibration learns the real one)."""
        growth = self.acceleration * dt
        std = np.sqrt(np.maximum(np.diag(self.covariance), 1e-300))
        scale = (std + growth) / std
        return self._capped(self.covariance * np.outer(scale, scale))

    def predict(self, dt: float) -> Prediction:
        """Motion over the next ``dt`` s: the held velocity; covariance dt^2 times the grown
        velocity covariance."""
        return Prediction(twist_to_delta(self.twist, dt), self.velocity_covariance(dt) * (dt * dt), self.source)

    def correct(self, delta: np.ndarray, covariance: np.ndarray, dt: float) -> None:
        """The registered motion ``delta`` (4x4) over ``dt`` s with its covariance (6x6, rotation
        first, body frame) becomes the velocity and its covariance."""
        if not dt > 0.0:
            return
        self.twist = self._plausible(delta_to_twist(delta, dt))
        self.covariance = self._capped(0.5 * (covariance + covariance.T) / (dt * dt))

    def _plausible(self, twist: np.ndarray) -> np.ndarray:
        """The velocity scaled down to the largest plausible speed and turn rate: a registration
        that slid along an unobserved direction must not make the next prediction slide faster."""
        c = self.config
        out = twist.copy()
        for part, limit in ((slice(0, 3), c.max_angular_rate), (slice(3, 6), c.max_speed)):
            norm = np.linalg.norm(out[part])
            if norm > limit:
                out[part] *= limit / norm
        return out


class _Buffer:
    """Time-ordered samples of one sensor; out-of-order and duplicate stamps are dropped and
    counted, except that data starting more than ``RESTART_JUMP`` s before the newest sample
    (a looping bag, a restarted driver) replaces the buffer."""

    RESTART_JUMP = 1.0  # s

    def __init__(self, empty) -> None:
        self.samples = empty
        self.dropped = 0

    def add(self, new) -> None:
        new = new.sorted_unique()
        if len(new) == 0:
            return
        if len(self.samples) and new.stamps[0] < self.samples.stamps[-1] - self.RESTART_JUMP:
            self.samples = new
            return
        if len(self.samples):
            fresh = new.stamps > self.samples.stamps[-1]
            self.dropped += int((~fresh).sum())
            if not fresh.any():
                return
            new = new.rows(fresh)
            self.samples = self.samples.followed_by(new)
        else:
            self.samples = new

    def trim(self, before: float) -> None:
        """Forget samples older than ``before`` (s), keeping one for interpolation."""
        s = self.samples.stamps
        k = int(np.searchsorted(s, before)) - 1
        if k > 0:
            self.samples = self.samples.rows(np.arange(len(s)) >= k)

    def covers(self, t0: float, t1: float, max_age: float) -> str | None:
        """None when the samples span [t0, t1] without gaps longer than ``max_age``, else why not."""
        s = self.samples.stamps
        if len(s) < 2:
            return "no data"
        if s[0] > t0 + max_age:
            return f"data starts {s[0] - t0:.2f} s after the previous scan"
        if s[-1] < t1 - max_age:
            return f"newest sample {t1 - s[-1]:.2f} s older than the scan"
        inside = s[(s >= t0) & (s <= t1)]
        edges = np.concatenate([[t0], inside, [t1]])
        gap = float(np.max(np.diff(edges)))
        if gap > max_age:
            return f"a gap of {gap:.2f} s in the data"
        return None


def interpolate_pose(stamps: np.ndarray, poses: np.ndarray, t: float) -> np.ndarray:
    """T at time ``t`` (s) between the two samples around it (rotation along the geodesic,
    translation linearly); held at the ends."""
    k = int(np.clip(np.searchsorted(stamps, t) - 1, 0, len(stamps) - 2))
    t0, t1 = stamps[k], stamps[k + 1]
    u = float(np.clip((t - t0) / (t1 - t0), 0.0, 1.0)) if t1 > t0 else 0.0
    A, B = poses[k], poses[k + 1]
    out = np.eye(4)
    out[:3, :3] = A[:3, :3] @ so3_exp(u * so3_log(np.ascontiguousarray(A[:3, :3].T @ B[:3, :3])))
    out[:3, 3] = (1.0 - u) * A[:3, 3] + u * B[:3, 3]
    return out


def adjoint(T: np.ndarray) -> np.ndarray:
    """Adjoint of T (4x4) for rotation-first twists (omega, v): Ad_T xi = (R w, [t]x R w + R v)."""
    R, t = T[:3, :3], T[:3, 3]
    A = np.zeros((6, 6))
    A[:3, :3] = R
    A[3:, 3:] = R
    tx = np.array([[0.0, -t[2], t[1]], [t[2], 0.0, -t[0]], [-t[1], t[0], 0.0]])
    A[3:, :3] = tx @ R
    return A


def fuse(first: Prediction, second: Prediction, source: str) -> Prediction:
    """Information-weighted mean of two predictions of the same motion (tangent space at ``first``)."""
    d = np.concatenate([so3_log(np.ascontiguousarray(first.delta[:3, :3].T @ second.delta[:3, :3])),
                        first.delta[:3, :3].T @ (second.delta[:3, 3] - first.delta[:3, 3])])
    Y1, Y2 = np.linalg.inv(first.covariance), np.linalg.inv(second.covariance)
    C = np.linalg.inv(Y1 + Y2)
    step = C @ (Y2 @ d)
    delta = first.delta.copy()
    delta[:3, :3] = first.delta[:3, :3] @ so3_exp(np.ascontiguousarray(step[:3]))
    delta[:3, 3] = first.delta[:3, 3] + first.delta[:3, :3] @ step[3:]
    return Prediction(delta, 0.5 * (C + C.T), source, max(first.age, second.age), first.notes + second.notes)


def wheel_motion_prediction(samples: WheelOdometrySamples, t0: float, t1: float, T_base_lidar: np.ndarray,
                            config: MotionPriorConfig) -> Prediction:
    """The LiDAR's motion from t0 to t1 from interpolated wheel odometry poses; x, y and yaw of the
    base get the configured errors, the rest (what planar odometry does not measure) a variance
    of UNKNOWN_VARIANCE, so fusing with another source leaves those directions to it."""
    A = interpolate_pose(samples.stamps, samples.poses, t0)
    B = interpolate_pose(samples.stamps, samples.poses, t1)
    delta_base = invert_pose(A) @ B
    T_lb = invert_pose(T_base_lidar)
    delta = T_lb @ delta_base @ T_base_lidar
    distance = float(np.linalg.norm(delta_base[:3, 3]))
    yaw = abs(float(so3_log(np.ascontiguousarray(delta_base[:3, :3]))[2]))
    c = config
    var = np.full(6, UNKNOWN_VARIANCE)
    var[2] = (c.wheel_yaw_error * distance + 0.02 * yaw + 1e-4) ** 2  # yaw
    var[3] = (c.wheel_speed_error * distance + 1e-3) ** 2  # forward
    var[4] = (c.wheel_lateral_error * distance + 1e-3) ** 2  # sideways
    Ad = adjoint(T_lb)  # base-frame errors of the motion -> LiDAR-frame errors
    covariance = Ad @ np.diag(var) @ Ad.T
    age = max(0.0, t1 - float(samples.stamps[-1]))
    return Prediction(delta, covariance, "wheel", age)


def translation_observed(information: np.ndarray) -> bool:
    """True when the LiDAR's own information (6x6, rotation first) constrains every translation
    direction: no translation axis was flagged and left to the prediction."""
    eigenvalues = np.linalg.eigvalsh(0.5 * (information[3:, 3:] + information[3:, 3:].T))
    return bool(eigenvalues[-1] > 0.0 and eigenvalues[0] > 1e-6 * eigenvalues[-1])


class MotionPriors:
    """The odometry's motion prediction from the configured source, with fallback.

    ``add_imu`` / ``add_wheel_odometry`` feed measurements (any time before the scans that need
    them); ``predict`` gives the LiDAR motion between two scan reference times; ``correct``
    passes the registered motion back. The constant-velocity model is always kept current, so
    a source that runs out of data falls back to it at once (the prediction's notes say why).
    """

    def __init__(self, config: MotionPriorConfig) -> None:
        self.config = config
        self.imu = _Buffer(ImuSamples.empty())
        self.wheel = _Buffer(WheelOdometrySamples.empty())
        self.expected = (False, False)  # (IMU, wheel) inputs the caller set up, for source "auto"
        self.reset()

    def reset(self) -> None:
        """Restart the models (after a reset of the odometry); buffered measurements stay."""
        from .inertial import ImuNoise, InertialFilter

        c = self.config
        self.constant_velocity = ConstantVelocityModel(c)
        noise = ImuNoise(c.gyro_noise_density, c.accel_noise_density, c.gyro_bias_walk, c.accel_bias_walk,
                         c.gyro_bias_sigma, c.accel_bias_sigma)
        self.filter = InertialFilter(noise, pose_from_xyz_rpy(*c.imu_to_lidar), c.max_speed / 2.0)
        self.T_base_lidar = pose_from_xyz_rpy(*c.lidar_to_base)
        self._used_filter = False
        self._wheel_predicted = False
        self._window: list[tuple[float, np.ndarray]] = []  # LiDAR poses for a moving start of the IMU filter

    def add_imu(self, samples: ImuSamples) -> None:
        self.imu.add(samples)

    def add_wheel_odometry(self, samples: WheelOdometrySamples) -> None:
        self.wheel.add(samples)

    def expect(self, imu: bool, wheel: bool) -> None:
        """Say which inputs are set up (e.g. the node's topics): with source "auto" their absence
        is then reported (a WARN note per frame) rather than silently predicting without them."""
        self.expected = (bool(imu), bool(wheel))

    def _wants(self) -> tuple[bool, bool]:
        s = self.config.source
        if s == "auto":
            return self.expected[0] or len(self.imu.samples) > 0, self.expected[1] or len(self.wheel.samples) > 0
        return s in ("imu", "imu_wheel"), s in ("wheel", "imu_wheel")

    def start(self, T_world_lidar: np.ndarray, t: float) -> None:
        """The first scan: where the IMU filter starts at rest (when IMU data reach it)."""
        want_imu, _ = self._wants()
        self._window = [(t, T_world_lidar.copy())]
        if want_imu and self.imu.covers(t - self.config.max_data_age, t, self.config.max_data_age) is None:
            self.filter.initialize(T_world_lidar, self.imu.samples, t)

    def predict(self, t0: float, t1: float, T_world_lidar: np.ndarray) -> Prediction:
        """The LiDAR's motion from the scan at t0 (at pose ``T_world_lidar``) to the scan at t1 (s)."""
        c = self.config
        dt = t1 - t0 if t1 > t0 else 0.1
        cv = self.constant_velocity.predict(dt)
        want_imu, want_wheel = self._wants()
        notes: list[str] = []
        prediction = cv
        self._used_filter = False
        self._wheel_predicted = False
        if want_imu:
            why = self.imu.covers(t0, t1, c.max_data_age)
            if why is None and not self.filter.initialized:
                why = self._start_filter(T_world_lidar, t0)
            if why is None:
                prediction = self._imu_prediction(t0, t1, T_world_lidar, want_wheel, notes)
                self._used_filter = True
            else:
                notes.append(f"IMU: {why}; constant-velocity prediction")
                if self.filter.initialized:
                    self.filter.initialized = False  # restart from the next usable data
                    self._window = []
        if want_wheel and not self._used_filter:
            why = self.wheel.covers(t0, t1, c.max_data_age)
            if why is None:
                wheel = wheel_motion_prediction(self.wheel.samples, t0, t1, self.T_base_lidar, c)
                prediction = fuse(wheel, cv, "wheel" if prediction is cv else "imu_wheel")
                self._wheel_predicted = True
            else:
                notes.append(f"wheel odometry: {why}; {'IMU' if self._used_filter else 'constant-velocity'} prediction")
        # keep what a moving start of the IMU filter integrates over
        self.imu.trim(t0 - (1.0 if self.filter.initialized else 2.0 * self.WINDOW_SECONDS))
        self.wheel.trim(t0 - 1.0)
        prediction.notes = notes + prediction.notes
        return prediction

    WINDOW_FRAMES, WINDOW_SECONDS = 30, 3.0  # LiDAR motion a moving start of the IMU filter needs

    def _start_filter(self, T_world_lidar: np.ndarray, t: float) -> str | None:
        """Start the IMU filter at rest, or from the recent LiDAR motion; None when it runs, else why not yet."""
        self.filter.initialize(T_world_lidar, self.imu.samples, t)
        if self.filter.initialized:
            return None
        window = [(s, T) for s, T in self._window if s >= float(self.imu.samples.stamps[0])]
        if len(window) < self.WINDOW_FRAMES or window[-1][0] - window[0][0] < self.WINDOW_SECONDS:
            return f"starting while moving: gathering {self.WINDOW_SECONDS:g} s of LiDAR motion observed along x, y and z"
        times = np.array([s for s, _ in window])
        if not self.filter.initialize_from_motion(times, np.array([T for _, T in window]), self.imu.samples):
            self._window = self._window[-self.WINDOW_FRAMES:]
            return "starting while moving: the LiDAR motion and the accelerometer do not agree on gravity yet"
        return None

    def _imu_prediction(self, t0: float, t1: float, T_world_lidar: np.ndarray, with_wheel: bool, notes: list[str]) -> Prediction:
        f = self.filter
        f.R, f.p = (T_world_lidar @ f.T_lidar_imu)[:3, :3].copy(), (T_world_lidar @ f.T_lidar_imu)[:3, 3].copy()
        f.t = t0
        source = "imu"
        wheel_ok = with_wheel and self.wheel.covers(t0, t1, self.config.max_data_age) is None
        if with_wheel and not wheel_ok:
            notes.append("wheel odometry: " + str(self.wheel.covers(t0, t1, self.config.max_data_age)) + "; IMU only")
        if wheel_ok:
            source = "imu_wheel"
            w = self.wheel.samples
            T_imu_base = invert_pose(f.T_lidar_imu) @ invert_pose(self.T_base_lidar)
            for t in w.stamps[(w.stamps > t0) & (w.stamps <= t1)]:
                f.propagate(self.imu.samples, float(t))
                self._wheel_velocity_update(float(t), T_imu_base)
        f.propagate(self.imu.samples, t1)
        delta = invert_pose(T_world_lidar) @ f.T_world_lidar
        age = max(0.0, t1 - float(self.imu.samples.stamps[-1]))
        return Prediction(delta, f.pose_covariance(), source, age)

    def _wheel_velocity_update(self, t: float, T_imu_base: np.ndarray) -> None:
        w = self.wheel.samples
        k = int(np.clip(np.searchsorted(w.stamps, t), 0, len(w) - 1))
        v = w.linear_velocity[k]
        speed = abs(float(v[0]))
        c = self.config
        var = np.array([(c.wheel_speed_error * speed + 0.01) ** 2, (c.wheel_lateral_error * speed + 0.02) ** 2,
                        (c.wheel_lateral_error * speed + 0.02) ** 2])
        gyro = np.array([np.interp(t, self.imu.samples.stamps, self.imu.samples.angular_velocity[:, i]) for i in range(3)])
        self.filter.correct_body_velocity(T_imu_base, np.array([v[0], 0.0, 0.0]), var, gyro)

    def correct(self, T_previous: np.ndarray, T_world_lidar: np.ndarray, covariance: np.ndarray, information: np.ndarray,
                information_vector: np.ndarray, dt: float, t: float) -> np.ndarray:
        """Pass back the registered pose ``T_world_lidar`` (from ``T_previous`` of the last scan)
        with the registration's covariance (prior included) and the LiDAR's own measurement in
        information form relative to the prediction (``information`` 6x6 and ``information_vector``,
        rotation first, body frame; zero where it did not observe anything). Returns the odometry's
        pose: the registered one, or the IMU filter's posterior (which fuses the LiDAR's own
        measurement, so the prediction is not counted twice) when the filter made the prediction."""
        pose = T_world_lidar
        if self._used_filter:
            pose = self.filter.correct_pose(information, information_vector)
        elif not self.filter.initialized and self._wants()[0]:
            if translation_observed(information) or self._wheel_predicted:  # the wheels measured what the LiDAR could not
                self._window = (self._window + [(t, pose.copy())])[-4 * self.WINDOW_FRAMES:]
            else:  # this pose is a guess along a flagged axis: fitting gravity to it would tilt it
                self._window = [(t, pose.copy())]
        self.constant_velocity.correct(invert_pose(T_previous) @ pose, covariance, dt)
        return pose

    @property
    def state(self) -> dict:
        """Diagnostic values of the IMU filter (biases, speed) when it runs."""
        f = self.filter
        if not f.initialized:
            return {}
        return {"imu_gyro_bias": f.bg.copy(), "imu_accel_bias": f.ba.copy(), "imu_speed": float(np.linalg.norm(f.v))}


def registration_prior(config: MotionPriorConfig, prediction: Prediction | None) -> PredictionPrior | None:
    """What ``dcreg_prior`` knows of the registration's initial guess: the prediction's covariance
    and the significance settings, or None (the kappa_target clamp) without a prediction or with
    ``prior_strength: kappa_target``."""
    if prediction is None or config.prior_strength != "prediction":
        return None
    return PredictionPrior(prediction.covariance, config.significance_sigma, config.flagged_information, config.plausibility_sigma)
