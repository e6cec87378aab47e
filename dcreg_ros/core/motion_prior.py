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

from .config_io import one_of, param, positive
from .geometry import so3_exp, so3_log


@dataclass(frozen=True)
class MotionPriorConfig:
    """How the odometry predicts the motion between scans, and how much it trusts the prediction."""

    acceleration_noise: float = param(1.0, "how fast the robot's speed can change (m/s^2, one sigma): the constant-velocity prediction's uncertainty grows by this per second", positive, "> 0 m/s^2")
    angular_acceleration_noise: float = param(1.0, "how fast the turn rate can change (rad/s^2, one sigma)", positive, "> 0 rad/s^2")
    max_speed: float = param(3.0, "largest plausible speed (m/s): caps the velocity uncertainty of a direction that stays unobserved", positive, "> 0 m/s")
    max_angular_rate: float = param(1.5, "largest plausible turn rate (rad/s): caps the angular velocity uncertainty", positive, "> 0 rad/s")
    prior_strength: str = param("prediction", "strength of the dcreg_prior prior on flagged directions: prediction (the prediction's own uncertainty, in physical units) or kappa_target (lambda_max / kappa_target, the MAP reading of the targeted preconditioner)", one_of("prediction", "kappa_target"), "prediction or kappa_target")
    plausible_sigma: float = param(0.0, "... but only when that difference is within this many standard deviations of prediction and data together, i.e. a velocity change the robot can make (0 = no upper limit)", lambda x: isinstance(x, (int, float)) and 0.0 <= x < 1e3, "in [0, 1000)")
    release_sigma: float = param(4.0, "a flagged direction follows the data instead of the prediction when the data's own solution differs from it by more than this many of the data's standard deviations (0 = always weigh them, a plain Kalman update)", lambda x: isinstance(x, (int, float)) and 0.0 <= x < 1e3, "in [0, 1000)")


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
        for a while, not a random walk), correlations kept, capped at the plausible range."""
        c = self.config
        growth = np.array([c.angular_acceleration_noise] * 3 + [c.acceleration_noise] * 3) * dt
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
        self.twist = delta_to_twist(delta, dt)
        self.covariance = self._capped(0.5 * (covariance + covariance.T) / (dt * dt))
