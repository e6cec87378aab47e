"""The ``handheld`` motion profile: a person walking with a LiDAR in the hand.

Position: the person walks the scene's path (:class:`~.motion_profiles.RobotMotion`: the same
centre line, weave and stairs, so the sensor stays in the same free space) at 0.8-1.6 m/s
(scaled down where the scene's ``speed_limit`` is lower: 0.5-1.0 m/s up the stairwell), walks
4-12 s, slows to a pause of 1-4 s, walks on; the device is carried ``HAND_HEIGHT`` above the
walking surface. Each step lifts it: a vertical bounce at the step frequency (drawn in
1.8-2.0 Hz, ``STEP_FREQUENCY``), a sideways sway at half of it (one stride) and a nod in
pitch, all proportional to the walking speed (gone at a pause): ``BOUNCE`` is the bounce's
amplitude at ``BOUNCE_REFERENCE_SPEED``.

Orientation (R = Rz Ry Rx, angles added to the path's heading and the walk's small wobbles):
deliberate sweeps, where the hand turns the device to look aside (yaw 40-110 deg off the
walking direction, pitch -35..+20 deg, roll +-15 deg), holds it 0.3-2 s, turns it back to
about ahead (+-15 deg yaw) and holds that 1-4 s; each turn is a cosine ramp of all three
angles together whose peak angular rate is drawn in ``SWEEP_PEAK_RATE_DEG`` (deg/s); and hand
shake: two sinusoids per axis at 2-9 Hz, ``SHAKE_DEG`` in total. Everything is drawn from the
seed (a stream of its own, apart from the walk's), closed form at any time: per-column casting,
deskewing and the IMU's finite differences see the same motion.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .speed_profiles import SpeedProfile, stop_and_go_speed
from .trajectories import MotionProfile, _Wave, poses_from_xyz_rpy

HAND_HEIGHT = 1.3  # m above the walking surface
WALKING_SPEEDS = (0.8, 1.6)  # m/s on flat ground
STEP_FREQUENCY = (1.8, 2.0)  # Hz
BOUNCE = (0.015, 0.025)  # m, vertical amplitude at BOUNCE_REFERENCE_SPEED (more when faster)
BOUNCE_REFERENCE_SPEED = 1.2  # m/s
STRIDE_SWAY = (0.01, 0.02)  # m, sideways amplitude at BOUNCE_REFERENCE_SPEED, half the step frequency
STEP_NOD_DEG = (0.3, 0.6)  # deg of pitch at the step frequency, at BOUNCE_REFERENCE_SPEED
SWEEP_PEAK_RATE_DEG = (90.0, 170.0)  # deg/s, the peak of each deliberate turn
SHAKE_DEG = (0.1, 0.25)  # deg per axis, the hand's tremor
SHAKE_PERIODS = (0.25, 0.5)  # s: the main component at 2-4 Hz, the second at 4.4-9 Hz (see _Wave)


@dataclasses.dataclass(frozen=True)
class Sweeps:
    """The deliberate turns: yaw, pitch and roll offsets (rad) over seconds since the start,
    each a chain of cosine ramps with the same timing (:class:`~.speed_profiles.SpeedProfile`,
    whose ``speed`` is the angle and ``acceleration`` its rate here)."""

    yaw: SpeedProfile
    pitch: SpeedProfile
    roll: SpeedProfile

    def angles(self, t: np.ndarray) -> np.ndarray:
        """(N, 3) roll, pitch, yaw offsets (rad) at ``t`` (s since the start)."""
        return np.column_stack([self.roll.speed(t), self.pitch.speed(t), self.yaw.speed(t)])


def draw_sweeps(rng: np.random.Generator, duration: float, start_hold: float = 1.0) -> Sweeps:
    """Look aside, hold, look ahead, hold, ... for at least ``duration`` s after holding
    ``start_hold`` s straight ahead; every turn moves the three angles together along a cosine
    ramp whose peak rate (the norm over the angles) is drawn in ``SWEEP_PEAK_RATE_DEG``."""
    segments: list[tuple[float, np.ndarray, np.ndarray]] = [(start_hold, np.zeros(3), np.zeros(3))]
    current, elapsed, aside = np.zeros(3), start_hold, True
    while elapsed < duration:
        if aside:  # roll, pitch, yaw (deg)
            side = rng.choice((-1.0, 1.0))
            target = np.array([rng.uniform(-15.0, 15.0), rng.uniform(-35.0, 20.0), side * rng.uniform(40.0, 110.0)])
            hold = rng.uniform(0.3, 2.0)
        else:
            target = np.array([rng.uniform(-3.0, 3.0), rng.uniform(-5.0, 5.0), rng.uniform(-15.0, 15.0)])
            hold = rng.uniform(1.0, 4.0)
        target = np.radians(target)
        peak_rate = np.radians(rng.uniform(*SWEEP_PEAK_RATE_DEG))
        turn = np.pi * np.linalg.norm(target - current) / (2.0 * peak_rate)  # a cosine ramp peaks at pi/2 x mean rate
        segments += [(turn, current, target), (hold, target, target)]
        elapsed += turn + hold
        current, aside = target, not aside
    axis = [SpeedProfile.from_segments([(d, a[i], b[i]) for d, a, b in segments]) for i in range(3)]
    return Sweeps(roll=axis[0], pitch=axis[1], yaw=axis[2])


def walking_speed(rng: np.random.Generator, duration: float, speed_limit: float) -> SpeedProfile:
    """Walk at 0.8-1.6 m/s (times min(1, ``speed_limit`` / 1.6)) for 4-12 s, pause 1-4 s, and
    again, speeding up and slowing down at 0.5-1.0 m/s² peak; at least ``duration`` s long."""
    scale = min(1.0, speed_limit / WALKING_SPEEDS[1])
    return stop_and_go_speed(rng, duration, cruise_speeds=(WALKING_SPEEDS[0] * scale, WALKING_SPEEDS[1] * scale),
                             cruise=(4.0, 12.0), accelerations=(0.5, 1.0), decelerations=(0.5, 1.0), wait=(1.0, 4.0),
                             start_rest=1.0)


class HandheldMotion:
    """A hand-held sensor carried along ``walk`` (a RobotMotion at ``HAND_HEIGHT``): step bounce,
    sweeps and shake on top. ``poses(stamps)`` -> T_world_sensor (N, 4, 4); ``speed`` is the
    walking speed (m/s); ``t0`` the stamp (s) of the start."""

    def __init__(self, walk, seed: int = 0, t0: float = 0.0, duration: float = 600.0) -> None:
        rng = np.random.default_rng([int(seed), 31])  # own stream: independent of the walk's path and speed
        self.walk, self.seed, self.t0 = walk, int(seed), float(t0)
        self.profile = walk.profile
        self.step_frequency = rng.uniform(*STEP_FREQUENCY)
        self.bounce, self.stride_sway = rng.uniform(*BOUNCE), rng.uniform(*STRIDE_SWAY)
        self.step_nod = np.radians(rng.uniform(*STEP_NOD_DEG))
        self._step_phase = rng.uniform(0.0, 2.0 * np.pi, size=3)  # bounce, sway, nod
        self.sweeps = draw_sweeps(rng, duration)
        self._shake = [_Wave(rng, np.radians(rng.uniform(*SHAKE_DEG)), SHAKE_PERIODS) for _ in range(3)]

    def speed(self, stamps) -> np.ndarray:
        """Walking speed (m/s) at ``stamps`` (s)."""
        return self.walk.speed(stamps)

    def xyz_rpy(self, stamps) -> np.ndarray:
        """(N, 6) x, y, z (m), roll, pitch, yaw (rad; R = Rz Ry Rx) at ``stamps`` (s)."""
        stamps = np.atleast_1d(np.asarray(stamps, dtype=np.float64))
        t = stamps - self.t0
        out = self.walk.xyz_rpy(stamps)
        gait = self.speed(stamps) / BOUNCE_REFERENCE_SPEED  # every step effect scales with the speed
        step = 2.0 * np.pi * self.step_frequency * t
        sway = self.stride_sway * gait * np.sin(0.5 * step + self._step_phase[1])
        heading = self.walk.heading(out[:, 0])  # sideways = across the path
        out[:, 0] -= sway * np.sin(heading)
        out[:, 1] += sway * np.cos(heading)
        out[:, 2] += self.bounce * gait * np.sin(step + self._step_phase[0])
        out[:, 3:] += self.sweeps.angles(t) + np.column_stack([w(t) for w in self._shake])
        out[:, 4] += self.step_nod * gait * np.sin(step + self._step_phase[2])
        return out

    def poses(self, stamps) -> np.ndarray:
        """(N, 4, 4) T_world_sensor at ``stamps`` (s)."""
        return poses_from_xyz_rpy(self.xyz_rpy(stamps))

    def pose(self, stamp: float) -> np.ndarray:
        """4x4 T_world_sensor at ``stamp`` (s)."""
        return self.poses([stamp])[0]


def carried(profile: MotionProfile) -> MotionProfile:
    """The scene's path, at hand height instead of the robot's sensor height."""
    return dataclasses.replace(profile, height=HAND_HEIGHT)
