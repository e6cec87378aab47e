"""Simulated proprioception: an IMU and wheel odometry riding on the simulated LiDAR's motion.

Mounting (the defaults of :class:`ImuModel` and :class:`WheelModel`, written to ``/tf_static``):

- ``T_lidar_imu``: the IMU 4 cm forward, 3 cm right and 5 cm below the LiDAR origin, rotated
  roll 180 deg then yaw 90 deg (R = Rz(90) Rx(180)): IMU x points to the LiDAR's left (+y),
  IMU y forward (+x), IMU z down, like IMUs mounted upside down in a housing. A level IMU at
  rest therefore reads (0, 0, -9.81): gravity's reaction along LiDAR +z, which is IMU -z.
- ``T_base_lidar``: the LiDAR 0.2 m forward of and 0.4 m above the base_link origin, level.

IMU (REP-145): ``angular_velocity`` rad/s and ``linear_acceleration`` = specific force
f = R_world_imu^T (a_world - g_world), g_world = (0, 0, -9.81) m/s², both in the IMU frame,
with the lever-arm terms of the IMU's offset (:func:`~.kinematics.transfer`). Each sample adds
a constant bias (per axis, drawn once) and white noise. Named grades (:data:`IMU_GRADES`,
``ImuModel.grade(name)``) set the noise and bias magnitudes: ``default`` (what ``ImuModel()``
has always been), ``consumer`` (the consumer MEMS of issue 14), ``poor`` (3 x consumer) and
``industrial`` (consumer / 10). The biases are constant over a run: no random walk (over the
simulated minute a MEMS bias instability of ~0.003 deg/s is far below the drawn biases).

Wheel odometry (planar, REP-105): the base_link's forward speed v (its velocity along base x)
times (1 + scale error), and its yaw rate (about base z) plus a constant slip bias; both get
white noise. Slip and noise grow with |v| (errors per metre driven): a standing robot's wheels
read exactly zero, which is what makes them valuable at a stop. Optional slip episodes
(:mod:`.wheel_slip`) make the wheels lie for seconds: spinning (speed x 1.5-3) or skidding
(heading drift). No lateral velocity. x, y, yaw
are integrated in ``odom`` from the identity at the first sample (trapezoidal rates, mid-point
heading). The covariances propagate these errors: the scale error and the slip as unknown
constants whose standard deviations are the largest values the model draws, the white noise per
step, and the unmodelled sideways motion of a swaying sensor (``lateral_velocity`` in the twist,
``lateral_drift`` as a random walk of the sideways position per metre driven); z, roll and
pitch, which planar odometry does not measure, get the large variance ``UNKNOWN_VARIANCE``
(not zero: many consumers read zero as "unknown" or reject it as singular).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.geometry import invert_pose, pose_from_xyz_rpy
from ..core.proprioception import GRAVITY, ImuSamples, WheelOdometrySamples
from .kinematics import Kinematics, kinematics, transfer
from .motion_profiles import kinematic_twin
from .wheel_slip import SlipEpisode, WheelSlip, draw_episodes, episode_values

UNKNOWN_VARIANCE = 1e6  # m², rad², (m/s)², (rad/s)²: what planar odometry does not measure
VARIANCE_FLOOR = 1e-9  # added to measured variances: an exactly zero one reads as "unknown" to many consumers
PRE_ROLL = 0.5  # s of IMU / wheel data before the first scan
POST_ROLL = 0.5  # s after the last scan ends


def _mount(xyz: tuple[float, float, float], rpy_deg: tuple[float, float, float]) -> np.ndarray:
    return pose_from_xyz_rpy(*xyz, *np.radians(rpy_deg))


def _signed_uniform(rng: np.random.Generator, bounds: tuple[float, float], size: int | None = None) -> np.ndarray:
    """Magnitudes uniform in ``bounds`` with random signs."""
    return rng.uniform(*bounds, size=size) * rng.choice((-1.0, 1.0), size=size)


@dataclass(frozen=True)
class ImuModel:
    """MEMS IMU. ``rate`` Hz; white noise standard deviations per sample (``gyro_noise`` rad/s,
    ``accel_noise`` m/s²); constant biases drawn per axis with magnitudes uniform in
    ``gyro_bias_deg`` (deg/s) and ``accel_bias`` (m/s²), random signs; mounted at ``mount_xyz`` (m)
    and ``mount_rpy_deg`` (roll, pitch, yaw in deg, R = Rz Ry Rx) in the LiDAR frame. The field
    defaults are the ``default`` grade; ``ImuModel.grade(name)`` gives one of :data:`IMU_GRADES`."""

    rate: float = 200.0
    gyro_noise: float = 3e-3
    accel_noise: float = 0.02
    gyro_bias_deg: tuple[float, float] = (0.01, 0.05)
    accel_bias: tuple[float, float] = (0.01, 0.05)
    mount_xyz: tuple[float, float, float] = (0.04, -0.03, -0.05)
    mount_rpy_deg: tuple[float, float, float] = (180.0, 0.0, 90.0)
    frame_id: str = "imu"

    @property
    def T_lidar_imu(self) -> np.ndarray:
        """4x4 pose of the IMU in the LiDAR frame (m)."""
        return _mount(self.mount_xyz, self.mount_rpy_deg)

    @property
    def errors(self) -> tuple:
        """What a grade sets: (rate, gyro_noise, accel_noise, gyro_bias_deg, accel_bias)."""
        return (self.rate, self.gyro_noise, self.accel_noise, tuple(self.gyro_bias_deg), tuple(self.accel_bias))

    @property
    def grade_name(self) -> str:
        """The name of the grade whose errors this model has (its mounting may differ), else "custom"."""
        return next((name for name, g in IMU_GRADES.items() if g.errors == self.errors), "custom")

    @classmethod
    def grade(cls, name: str) -> "ImuModel":
        """The IMU of grade ``name`` (one of :data:`IMU_GRADES`); ValueError for another name."""
        if name not in IMU_GRADES:
            raise ValueError(f"unknown IMU grade '{name}' (choose one of {', '.join(IMU_GRADES)})")
        return IMU_GRADES[name]


# Issue 14's consumer MEMS at 200 Hz: gyro bias 0.06-0.15 deg/s after a start-up calibration,
# accelerometer bias 0.01-0.02 m/s², white noise 0.005 rad/s and 0.04 m/s² per sample.
CONSUMER_IMU = {"gyro_noise": 0.005, "accel_noise": 0.04, "gyro_bias_deg": (0.06, 0.15), "accel_bias": (0.01, 0.02)}
GRADE_FACTORS = {"consumer": 1.0, "poor": 3.0, "industrial": 0.1}  # noise and biases relative to consumer


def _scaled(errors: dict, factor: float) -> dict:
    def times(v: float) -> float:
        return round(v * factor, 12)  # 0.1 x 0.005 is 0.0005, not 0.0005000000000000001

    return {k: tuple(map(times, v)) if isinstance(v, tuple) else times(v) for k, v in errors.items()}


IMU_GRADES: dict[str, ImuModel] = {
    "default": ImuModel(),  # kept as it was: the demo, the benchmarks and the tests were tuned on it
    **{name: ImuModel(**_scaled(CONSUMER_IMU, f)) for name, f in GRADE_FACTORS.items()},
}


@dataclass(frozen=True)
class WheelModel:
    """Planar wheel odometry at ``rate`` Hz; every error is per metre driven (times |v|, m/s).
    The scale error (fraction: reported = (1 + scale error) x true speed) is ``scale_error``
    itself when a number, or drawn once with a magnitude uniform in the (low, high) bounds and a
    random sign; the slip (yaw-rate bias, rad/s per m/s, i.e. rad per metre) is drawn once with a
    magnitude uniform in ``slip``; per sample white noise of ``speed_noise`` (fraction of the
    speed) and ``yaw_rate_noise`` (rad/s per m/s); ``episodes`` adds slip episodes
    (:class:`~.wheel_slip.WheelSlip`, none by default). The model ignores sideways motion, which
    the simulated sensor's sway and head wobble have (0.04-0.09 m/s rms at 1.5 m/s, correlated
    over metres): the covariances describe it by ``lateral_velocity`` (m/s per m/s, twist) and
    ``lateral_drift`` (m per sqrt(m) driven, the standard deviation of the sideways position
    error after one metre, as a random walk). The LiDAR sits at ``mount_xyz`` /
    ``mount_rpy_deg`` in ``child_frame_id`` (T_base_lidar)."""

    rate: float = 50.0
    scale_error: float | tuple[float, float] = (0.01, 0.04)
    speed_noise: float = 0.01
    yaw_rate_noise: float = 0.01
    slip: tuple[float, float] = (0.0, 0.005)
    lateral_velocity: float = 0.08
    lateral_drift: float = 0.1
    mount_xyz: tuple[float, float, float] = (0.2, 0.0, 0.4)
    mount_rpy_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    frame_id: str = "odom"
    child_frame_id: str = "base_link"
    episodes: WheelSlip = WheelSlip()

    def __post_init__(self) -> None:
        s = self.scale_error
        if isinstance(s, (int, float, np.floating)) and not isinstance(s, bool):
            if not (np.isfinite(s) and -1.0 < s < 1.0):
                raise ValueError(f"wheel scale error must be a fraction in (-1, 1), got {s}")
            object.__setattr__(self, "scale_error", float(s))
            return
        s = tuple(s)
        if len(s) != 2 or not all(np.isfinite(s)) or not 0.0 <= s[0] <= s[1] < 1.0:
            raise ValueError(f"wheel scale error bounds must be magnitudes 0 <= low <= high < 1, got {s}")
        object.__setattr__(self, "scale_error", (float(s[0]), float(s[1])))

    @property
    def max_scale_error(self) -> float:
        """The largest scale error (magnitude) the model gives: the covariances' standard deviation."""
        return abs(self.scale_error) if isinstance(self.scale_error, float) else self.scale_error[1]

    @property
    def T_base_lidar(self) -> np.ndarray:
        """4x4 pose of the LiDAR in the base frame (m)."""
        return _mount(self.mount_xyz, self.mount_rpy_deg)


@dataclass(frozen=True)
class ImuTruth:
    """What the simulated IMU measured and its drawn errors: ``samples`` as published,
    ``gyro_bias`` (3,) rad/s and ``accel_bias`` (3,) m/s² in the IMU frame, ``T_lidar_imu``."""

    samples: ImuSamples
    gyro_bias: np.ndarray
    accel_bias: np.ndarray
    model: ImuModel

    @property
    def T_lidar_imu(self) -> np.ndarray:
        return self.model.T_lidar_imu


@dataclass(frozen=True)
class WheelTruth:
    """The simulated wheel odometry and its drawn errors: ``scale_error`` (fraction, measured
    speed = (1 + scale_error) x true speed), ``slip`` (rad/s per m/s: the yaw-rate bias is
    slip x |v|) and the slip ``episodes`` (:class:`~.wheel_slip.SlipEpisode`, in time order)."""

    samples: WheelOdometrySamples
    scale_error: float
    slip: float
    model: WheelModel
    episodes: tuple[SlipEpisode, ...] = ()

    @property
    def T_base_lidar(self) -> np.ndarray:
        return self.model.T_base_lidar


def sample_stamps(first_scan: float, last_scan_end: float, rate: float) -> np.ndarray:
    """Stamps (s) every 1 / ``rate`` from PRE_ROLL before the first scan to POST_ROLL after the last
    one ends (on the grid first_scan + k / rate, so the scans' stamps are samples)."""
    k0 = -int(round(PRE_ROLL * rate))
    k1 = int(np.ceil((last_scan_end - first_scan + POST_ROLL) * rate))
    return first_scan + np.arange(k0, k1 + 1) / rate


def ideal_imu(state: Kinematics) -> tuple[np.ndarray, np.ndarray]:
    """Noise- and bias-free (angular velocity rad/s, specific force m/s²), IMU frame, of the
    kinematics of the IMU frame itself."""
    g_world = np.array([0.0, 0.0, -GRAVITY])  # world z up
    R = state.poses[:, :3, :3]
    return state.angular_velocity, np.einsum("nji,nj->ni", R, state.acceleration - g_world)


def simulate_imu(motion, stamps: np.ndarray, model: ImuModel, rng: np.random.Generator) -> ImuTruth:
    """IMU samples at ``stamps`` (s) for a LiDAR moving as ``motion`` (T_world_lidar)."""
    state = transfer(kinematics(kinematic_twin(motion), stamps), model.T_lidar_imu)
    gyro, accel = ideal_imu(state)
    gyro_bias = np.radians(_signed_uniform(rng, model.gyro_bias_deg, 3))
    accel_bias = _signed_uniform(rng, model.accel_bias, 3)
    n = len(stamps)
    samples = ImuSamples(stamps, gyro + gyro_bias + rng.normal(0.0, model.gyro_noise, (n, 3)),
                         accel + accel_bias + rng.normal(0.0, model.accel_noise, (n, 3)), model.frame_id)
    return ImuTruth(samples, gyro_bias, accel_bias, model)


def base_motion(motion, stamps: np.ndarray, model: WheelModel) -> tuple[np.ndarray, np.ndarray, Kinematics]:
    """True forward speed (m/s) and yaw rate (rad/s) of base_link, and its kinematics."""
    state = transfer(kinematics(kinematic_twin(motion), stamps), invert_pose(model.T_base_lidar))
    body_velocity = np.einsum("nji,nj->ni", state.poses[:, :3, :3], state.velocity)
    return body_velocity[:, 0], state.angular_velocity[:, 2], state


def _integrate_planar(stamps: np.ndarray, speed: np.ndarray, yaw_rate: np.ndarray, model: WheelModel) -> tuple[np.ndarray, np.ndarray]:
    """Poses T_odom_base (N, 4, 4) and pose covariances (N, 6, 6, ROS order) from measured rates.

    The error state (x, y, yaw, scale error, slip) is propagated linearly: the two constants
    start with the variances of the largest values the model draws, the white speed and yaw-rate
    noise enter per step (proportional to the distance driven in the step), the sideways drift
    per metre driven."""
    n = len(stamps)
    poses = np.tile(np.eye(4), (n, 1, 1))
    cov = np.zeros((n, 6, 6))
    x = y = yaw = 0.0
    P = np.diag([0.0, 0.0, 0.0, model.max_scale_error**2, model.slip[1] ** 2])
    xy, heading = [0, 1], 5
    for k in range(n):
        if k > 0:
            dt = stamps[k] - stamps[k - 1]
            v, w = 0.5 * (speed[k - 1] + speed[k]), 0.5 * (yaw_rate[k - 1] + yaw_rate[k])
            mid = yaw + 0.5 * w * dt
            c, s = np.cos(mid), np.sin(mid)
            step = abs(v) * dt  # m driven
            F = np.eye(5)
            F[0, 2], F[1, 2] = -v * dt * s, v * dt * c
            F[0, 3], F[1, 3] = v * dt * c, v * dt * s
            F[2, 4] = step
            along, across = np.array([c, s]), np.array([-s, c])
            Q = np.zeros((5, 5))
            Q[:2, :2] = (step * model.speed_noise) ** 2 * np.outer(along, along) \
                + step * model.lateral_drift**2 * np.outer(across, across)
            Q[2, 2] = step**2 * model.yaw_rate_noise**2
            P = F @ P @ F.T + Q
            x, y, yaw = x + v * dt * c, y + v * dt * s, yaw + w * dt
        poses[k, :2, :2] = [[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]]
        poses[k, :2, 3] = (x, y)
        cov[k] = np.diag([0.0, 0.0, UNKNOWN_VARIANCE, UNKNOWN_VARIANCE, UNKNOWN_VARIANCE, 0.0])
        idx = xy + [heading]
        cov[k][np.ix_(idx, idx)] = P[:3, :3] + np.eye(3) * VARIANCE_FLOOR
    return poses, cov


def simulate_wheel_odometry(motion, stamps: np.ndarray, model: WheelModel, rng: np.random.Generator,
                            window: tuple[float, float] | None = None) -> WheelTruth:
    """Planar wheel odometry of the base carrying a LiDAR that moves as ``motion``; its slip
    episodes fall in ``window`` (start, end in s; default: all of ``stamps``)."""
    speed, yaw_rate, _ = base_motion(motion, stamps, model)
    fixed = isinstance(model.scale_error, float)
    # drawn even when fixed: the noise and the episodes stay the same whatever the scale error
    drawn = float(_signed_uniform(rng, (0.0, 0.0) if fixed else model.scale_error))
    scale = model.scale_error if fixed else drawn
    slip = float(_signed_uniform(rng, model.slip))
    n = len(stamps)
    driving = np.abs(speed)
    speed_noise = rng.normal(0.0, model.speed_noise, n) * driving
    rate_noise = rng.normal(0.0, model.yaw_rate_noise, n)
    episodes = draw_episodes(model.episodes, *(window or (stamps[0], stamps[-1])), rng)
    measured_speed = speed * (1.0 + scale) * episode_values(episodes, stamps, "spin", 1.0) + speed_noise
    measured_rate = yaw_rate + (slip + episode_values(episodes, stamps, "skid", 0.0) + rate_noise) * driving
    poses, pose_cov = _integrate_planar(stamps, measured_speed, measured_rate, model)
    v2 = measured_speed**2
    twist_cov = np.zeros((n, 6, 6))
    twist_cov[:, 0, 0] = (model.max_scale_error**2 + model.speed_noise**2) * v2 + VARIANCE_FLOOR
    twist_cov[:, 1, 1] = model.lateral_velocity**2 * v2 + VARIANCE_FLOOR
    twist_cov[:, 2, 2] = twist_cov[:, 3, 3] = twist_cov[:, 4, 4] = UNKNOWN_VARIANCE
    twist_cov[:, 5, 5] = (model.slip[1] ** 2 + model.yaw_rate_noise**2) * v2 + VARIANCE_FLOOR
    zeros = np.zeros(n)
    samples = WheelOdometrySamples(stamps, poses, np.column_stack([measured_speed, zeros, zeros]),
                                   np.column_stack([zeros, zeros, measured_rate]), pose_cov, twist_cov,
                                   model.frame_id, model.child_frame_id)
    return WheelTruth(samples, scale, slip, model, episodes)
