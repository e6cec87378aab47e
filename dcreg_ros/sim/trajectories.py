"""Smooth, seeded sensor motion along a scene's x axis: the continuous ground truth.

The sensor walks along +x at a roughly constant speed with a slow lateral sway, its heading
following the sway plus a small head oscillation, a little roll/pitch wobble and bobbing; on
stairs its height follows the (smoothed) walking surface and it pitches towards the slope. Every
component is a sum of sinusoids with seeded periods and phases, so poses are analytic at any time
(no interpolation) and identical for identical seeds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..core.geometry import euler_to_rotation


@dataclass(frozen=True)
class MotionProfile:
    """How a scene is traversed. Metres, m/s and degrees.

    ``ground(x)`` gives the walking-surface height at x (None = flat at z = 0) and
    ``pitch_follow`` the fraction of the surface slope angle the sensor pitches with.

    The scene's lateral freedom, used by the robot-like profiles (:mod:`.motion_profiles`; the
    smooth profile always sways by ``sway``): ``weave`` (m) is the amplitude of real turns where
    the scene has room for them (0 = keep the small ``sway``), ``weave_wavelength`` (m along x)
    their length; with ``gate_spacing`` > 0 (m) the path passes y = ``y`` with zero slope at
    every multiple of ``gate_spacing`` in x (doorways in cross walls there) and weaves between.
    ``speed_limit`` (m/s) scales the robot-like profiles' speeds (drawn for 2 m/s) where a scene
    is not driven that fast (stairs).
    """

    speed: float = 1.5
    height: float = 1.5
    y: float = 0.0
    sway: float = 0.2
    yaw_deg: float = 3.0
    tilt_deg: float = 1.0
    bob: float = 0.02
    ground: Callable[[np.ndarray], np.ndarray] | None = None
    pitch_follow: float = 0.0
    start_ramp: float = 1.5  # s: time constant of the start from rest (0 = start at full speed)
    weave: float = 0.0
    weave_wavelength: tuple[float, float] = (60.0, 90.0)
    gate_spacing: float = 0.0
    speed_limit: float = 2.0


class _Wave:
    """a * sum_k w_k sin(omega_k t + phi_k) with sum w_k = 1, so |value| <= a."""

    def __init__(self, rng: np.random.Generator, amplitude: float, period_range: tuple[float, float]) -> None:
        weights = np.array([0.7, 0.3])
        periods = rng.uniform(*period_range, size=2) * np.array([1.0, 0.45])
        self.a = amplitude * weights
        self.omega = 2.0 * np.pi / periods
        self.phi = rng.uniform(0.0, 2.0 * np.pi, size=2)

    def __call__(self, t: np.ndarray) -> np.ndarray:
        return np.sin(np.multiply.outer(t, self.omega) + self.phi) @ self.a

    def rate(self, t: np.ndarray) -> np.ndarray:
        return np.cos(np.multiply.outer(t, self.omega) + self.phi) @ (self.a * self.omega)


class SensorMotion:
    """Ground-truth sensor motion: ``poses(stamps)`` -> T_world_sensor (N, 4, 4).

    ``t0`` is the stamp (s) at which the sensor is near ``x_start`` (m); the speed, sway and
    wobble periods and phases are drawn from ``seed``.
    """

    def __init__(self, profile: MotionProfile, seed: int = 0, x_start: float = 0.0, t0: float = 0.0) -> None:
        rng = np.random.default_rng([int(seed), 7])  # own stream: independent of the sensor noise
        self.profile = profile
        self.seed = int(seed)
        self.t0 = float(t0)
        self.x_start = float(x_start)
        self.speed = profile.speed * rng.uniform(0.95, 1.05)
        self._surge = _Wave(rng, 0.08 * self.speed, (7.0, 13.0))  # speed variation (m/s)
        self._sway = _Wave(rng, profile.sway, (6.0, 11.0))
        self._yaw = _Wave(rng, np.radians(profile.yaw_deg), (3.0, 6.0))
        self._roll = _Wave(rng, np.radians(profile.tilt_deg), (1.5, 3.5))
        self._pitch = _Wave(rng, np.radians(profile.tilt_deg), (1.5, 3.5))
        self._bob = _Wave(rng, profile.bob, (0.8, 1.4))

    def _warp(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Warped time t_e = t - tau (1 - exp(-t / tau)) and its rate dt_e/dt (start from rest)."""
        tau = self.profile.start_ramp
        if tau <= 0:
            return t, np.ones_like(t)
        tp = np.maximum(t, 0.0)
        return tp - tau * (1.0 - np.exp(-tp / tau)), 1.0 - np.exp(-tp / tau)

    def _x(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x (m) and dx/dt (m/s); the surge wave is a velocity, integrated analytically.

        The sensor starts from rest: time is warped by t_e = t - tau (1 - exp(-t / tau)), whose
        rate 1 - exp(-t / tau) ramps the speed up smoothly (robots do not start at full speed,
        and a constant-velocity model starts right)."""
        w = self._surge
        te, rate = self._warp(t)
        x = self.x_start + self.speed * te + ((np.cos(w.phi) - np.cos(np.multiply.outer(te, w.omega) + w.phi)) @ (w.a / w.omega))
        return x, (self.speed + w(te)) * rate

    def xyz_rpy(self, stamps) -> np.ndarray:
        """(N, 6) x, y, z (m), roll, pitch, yaw (rad; R = Rz Ry Rx) at ``stamps`` (s)."""
        t = np.atleast_1d(np.asarray(stamps, dtype=np.float64)) - self.t0
        p = self.profile
        x, vx = self._x(t)
        # the sway follows the warped time too, so the path (and the heading along it) is the
        # same curve however fast the sensor moves on it
        te, _ = self._warp(t)
        y = p.y + self._sway(te)
        if p.ground is None:
            z_ground, slope = np.zeros_like(x), np.zeros_like(x)
        else:
            z_ground = p.ground(x)
            h = 0.01
            slope = (p.ground(x + h) - p.ground(x - h)) / (2.0 * h)
        z = z_ground + p.height + self._bob(t)
        # heading along the path: the ramp rate scales vx and vy alike, so leave it out (at rest
        # the direction of a zero velocity is undefined)
        yaw = np.arctan2(self._sway.rate(te), self.speed + self._surge(te)) + self._yaw(t)
        # positive pitch tilts +x downwards (R = Rz Ry Rx), so looking up a slope is negative pitch
        pitch = self._pitch(t) - p.pitch_follow * np.arctan(slope)
        roll = self._roll(t)
        return np.column_stack([x, y, z, roll, pitch, yaw])

    def poses(self, stamps) -> np.ndarray:
        """(N, 4, 4) T_world_sensor at ``stamps`` (s)."""
        return poses_from_xyz_rpy(self.xyz_rpy(stamps))

    def pose(self, stamp: float) -> np.ndarray:
        """4x4 T_world_sensor at ``stamp`` (s)."""
        return self.poses([stamp])[0]


def poses_from_xyz_rpy(values: np.ndarray) -> np.ndarray:
    """(N, 4, 4) poses from (N, 6) x, y, z (m), roll, pitch, yaw (rad; R = Rz Ry Rx)."""
    out = np.tile(np.eye(4), (len(values), 1, 1))
    # euler_to_rotation broadcasts over arrays, giving (3, 3, N)
    out[:, :3, :3] = np.moveaxis(euler_to_rotation(values[:, 3], values[:, 4], values[:, 5]), -1, 0)
    out[:, :3, 3] = values[:, :3]
    return out
