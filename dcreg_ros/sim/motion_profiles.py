"""Motion profiles of the simulator: how fast the sensor moves and along which path.

``smooth`` is :class:`~.trajectories.SensorMotion` (near-constant speed, time-parameterised
sway), unchanged. The robot-like profiles ``variable`` (speed changing between about 0.5 and
2 m/s) and ``stop_and_go`` (cruise, brake to a full stop, wait, go again) are a
:class:`RobotMotion`: a seeded forward-speed profile (:mod:`.speed_profiles`) along a path whose
whole shape is a function of the distance travelled, so a robot that stops is truly still. A
scene's ``speed_limit`` scales their speeds (the stairwell: up to 1 m/s). ``handheld``
(:mod:`.handheld`) is a person walking that path with the sensor in the hand: walking speed
with pauses, step bounce, fast deliberate sweeps (up to 180 deg/s) and hand shake; it has no
wheel odometry (``WHEELED_PROFILES`` are the ones that do).

Path (world frame, metres): the centre line y(x) over the ground, set by the scene's lateral
freedom (:class:`~.trajectories.MotionProfile` ``weave``, ``gate_spacing``; else its small
``sway``); the distance travelled s is the arc length of that line in the horizontal plane
(the stairwell's climb is not counted). Heading follows the path (atan dy/dx) plus a small head
wobble; roll/pitch wobble, bob and the stair surface's height and slope are functions of x or s.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .handheld import HandheldMotion, carried, walking_speed
from .speed_profiles import SpeedProfile, stop_and_go_speed, variable_speed
from .trajectories import MotionProfile, SensorMotion, _Wave, poses_from_xyz_rpy

MOTION_PROFILES = ("smooth", "variable", "stop_and_go", "handheld")
WHEELED_PROFILES = ("smooth", "variable", "stop_and_go")  # a hand-held sensor has no wheel odometry
_GAUSS_NODES, _GAUSS_WEIGHTS = np.polynomial.legendre.leggauss(8)


class _RoomWeave:
    """y(x) = A_k sin^3(pi u) in room k, u = x / spacing - k: zero with zero slope and curvature
    at every multiple of ``spacing`` (the doorways), a bend of seeded size and side in between.
    Each room's amplitude is drawn from its own stream, so any x can be evaluated."""

    def __init__(self, seed: int, amplitude: float, spacing: float) -> None:
        self.seed, self.amplitude, self.spacing = int(seed), float(amplitude), float(spacing)
        self._cache: dict[int, float] = {}

    def _amplitudes(self, rooms: np.ndarray) -> np.ndarray:
        unique, inverse = np.unique(rooms, return_inverse=True)
        for k in unique:
            if int(k) not in self._cache:
                rng = np.random.default_rng([self.seed, 19, int(k) + 1_000_000])  # rooms left of 0 too
                self._cache[int(k)] = self.amplitude * rng.uniform(0.5, 1.0) * rng.choice((-1.0, 1.0))
        return np.array([self._cache[int(k)] for k in unique])[inverse].reshape(rooms.shape)

    def _phase(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rooms = np.floor(np.asarray(x) / self.spacing)
        return self._amplitudes(rooms), np.pi * (np.asarray(x) / self.spacing - rooms)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        a, phase = self._phase(x)
        return a * np.sin(phase) ** 3

    def rate(self, x: np.ndarray) -> np.ndarray:
        a, phase = self._phase(x)
        return a * 3.0 * np.sin(phase) ** 2 * np.cos(phase) * (np.pi / self.spacing)


class _ArcLength:
    """s(x) = integral from 0 to x of sqrt(1 + y'(x)^2) (m) and its inverse x(s).

    s is tabulated on 1 m knots with 8-point Gauss-Legendre quadrature per knot interval (exact to
    rounding for paths whose wavelengths are metres); x(s) starts from the table and takes three
    Newton steps, so poses stay smooth to rounding (their finite differences feed the IMU)."""

    KNOT = 1.0

    def __init__(self, slope) -> None:
        self.slope = slope
        self.knots = np.zeros(1)
        self.s = np.zeros(1)
        self._extend(100.0)

    def _segment(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        mid, half = 0.5 * (a + b), 0.5 * (b - a)
        x = mid[..., None] + half[..., None] * _GAUSS_NODES
        return half * (np.sqrt(1.0 + self.slope(x) ** 2) @ _GAUSS_WEIGHTS)

    def _extend(self, x_max: float) -> None:
        new = np.arange(self.knots[-1] + self.KNOT, x_max + self.KNOT, self.KNOT)
        if len(new):
            starts = np.concatenate([[self.knots[-1]], new[:-1]])
            self.s = np.concatenate([self.s, self.s[-1] + np.cumsum(self._segment(starts, new))])
            self.knots = np.concatenate([self.knots, new])

    def length(self, x: np.ndarray) -> np.ndarray:
        """s(x) for x >= 0."""
        k = np.clip(np.floor(x / self.KNOT).astype(np.int64), 0, len(self.knots) - 1)
        return self.s[k] + self._segment(self.knots[k], x)

    def x_of(self, s: np.ndarray) -> np.ndarray:
        """x(s) for s >= 0 (m)."""
        s = np.maximum(np.asarray(s, dtype=np.float64), 0.0)
        if s.size and s.max() >= self.s[-1]:
            self._extend(float(s.max()) + 100.0)  # the path is never longer in x than in s
        x = np.interp(s, self.s, self.knots)
        for _ in range(3):
            x = x - (self.length(x) - s) / np.sqrt(1.0 + self.slope(x) ** 2)
        return x


class RobotMotion:
    """Robot-like sensor motion: ``speed`` (forward speed over time) along the scene's path.

    ``poses(stamps)`` -> T_world_sensor (N, 4, 4); ``distance`` / ``speed`` give the arc length
    travelled (m) and the forward speed (m/s). ``t0`` is the stamp (s) at which the profile
    starts (the robot is at rest at x = 0 before it); the path shape and the wobbles are drawn
    from ``seed``, independently of the speed profile.
    """

    def __init__(self, profile: MotionProfile, speed: SpeedProfile, seed: int = 0, t0: float = 0.0) -> None:
        rng = np.random.default_rng([int(seed), 17])
        self.profile, self.speed_profile, self.seed, self.t0 = profile, speed, int(seed), float(t0)
        v = profile.speed  # wavelengths of the wobbles: today's periods at the scene's speed
        if profile.gate_spacing > 0.0:
            self._lateral = _RoomWeave(seed, profile.weave, profile.gate_spacing)
        elif profile.weave > 0.0:
            self._lateral = _Wave(rng, profile.weave, profile.weave_wavelength)
        else:
            self._lateral = _Wave(rng, profile.sway, (6.0 * v, 11.0 * v))
        self._arc = _ArcLength(self._lateral.rate)
        self._yaw = _Wave(rng, np.radians(profile.yaw_deg), (3.0 * v, 6.0 * v))
        self._roll = _Wave(rng, np.radians(profile.tilt_deg), (1.5 * v, 3.5 * v))
        self._pitch = _Wave(rng, np.radians(profile.tilt_deg), (1.5 * v, 3.5 * v))
        self._bob = _Wave(rng, profile.bob, (0.8 * v, 1.4 * v))

    def distance(self, stamps) -> np.ndarray:
        """Arc length travelled (m) at ``stamps`` (s)."""
        return self.speed_profile.distance(np.atleast_1d(np.asarray(stamps, dtype=np.float64)) - self.t0)

    def speed(self, stamps) -> np.ndarray:
        """Forward speed (m/s) at ``stamps`` (s)."""
        return self.speed_profile.speed(np.atleast_1d(np.asarray(stamps, dtype=np.float64)) - self.t0)

    def heading(self, x: np.ndarray) -> np.ndarray:
        """Direction (rad, about world z) of the path centre line at ``x`` (m)."""
        return np.arctan(self._lateral.rate(x))

    def path_xy(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x, y (m) of the path centre line after a distance ``s`` (m)."""
        x = self._arc.x_of(s)
        return x, self.profile.y + self._lateral(x)

    def xyz_rpy(self, stamps) -> np.ndarray:
        """(N, 6) x, y, z (m), roll, pitch, yaw (rad; R = Rz Ry Rx) at ``stamps`` (s)."""
        p = self.profile
        s = self.distance(stamps)
        x, y = self.path_xy(s)
        ground = p.ground
        if ground is None:
            z_ground, slope = np.zeros_like(x), np.zeros_like(x)
        elif hasattr(ground, "smooth"):
            z_ground, slope = ground.smooth(x), ground.slope(x)
        else:
            h = 1e-3
            z_ground, slope = ground(x), (ground(x + h) - ground(x - h)) / (2.0 * h)
        z = z_ground + p.height + self._bob(s)
        yaw = self.heading(x) + self._yaw(s)
        pitch = self._pitch(s) - p.pitch_follow * np.arctan(slope)  # looking up a slope is negative pitch
        return np.column_stack([x, y, z, self._roll(s), pitch, yaw])

    def poses(self, stamps) -> np.ndarray:
        """(N, 4, 4) T_world_sensor at ``stamps`` (s)."""
        return poses_from_xyz_rpy(self.xyz_rpy(stamps))

    def pose(self, stamp: float) -> np.ndarray:
        """4x4 T_world_sensor at ``stamp`` (s)."""
        return self.poses([stamp])[0]


def sensor_motion(profile_name: str, profile: MotionProfile, seed: int = 0, t0: float = 0.0,
                  duration: float = 600.0) -> "SensorMotion | RobotMotion | HandheldMotion":
    """The motion of profile ``profile_name`` (one of ``MOTION_PROFILES``) through a scene whose
    lateral freedom and heights are ``profile``; speed profiles cover at least ``duration`` s
    after ``t0`` (then the last speed is kept)."""
    if profile_name == "smooth":
        return SensorMotion(profile, seed=seed, x_start=0.0, t0=t0)
    rng = np.random.default_rng([int(seed), 13])  # the speed profile's own stream
    scale = profile.speed_limit / 2.0  # the builders' speed ranges end at 2 m/s
    if profile_name == "variable":
        speed = variable_speed(rng, duration, speeds=(0.5 * scale, 2.0 * scale), min_change=0.3 * scale)
        return RobotMotion(profile, speed, seed, t0)
    if profile_name == "stop_and_go":
        return RobotMotion(profile, stop_and_go_speed(rng, duration, cruise_speeds=(1.0 * scale, 2.0 * scale)), seed, t0)
    if profile_name == "handheld":
        walk = RobotMotion(carried(profile), walking_speed(rng, duration, profile.speed_limit), seed, t0)
        return HandheldMotion(walk, seed, t0, duration)
    raise ValueError(f"unknown motion profile '{profile_name}' (choose one of {', '.join(MOTION_PROFILES)})")


def kinematic_twin(motion):
    """The same motion with a C2 walking surface, for derivatives (IMU, wheels).

    The smooth profile interpolates the stair surface linearly (kept: its poses are fixed by its
    seed), whose kinks at the 1 cm grid nodes would show up as acceleration spikes; the twin
    uses the spline through the same values (micrometres away). Other motions are returned."""
    if isinstance(motion, SensorMotion) and hasattr(motion.profile.ground, "smooth"):
        profile = dataclasses.replace(motion.profile, ground=motion.profile.ground.smooth)
        return SensorMotion(profile, seed=motion.seed, x_start=motion.x_start, t0=motion.t0)
    return motion
