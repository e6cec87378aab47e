"""Covariances and velocities the odometry publishes: sensor -> base frame, rotation-first -> ROS
order (the covariance itself is the registration's physical posterior, see core/registration.py).

The core reports a 6x6 covariance rotation first (roll, pitch, yaw, x, y, z) in the sensor frame
for the right perturbation ``R <- R Exp(w), t <- t + R v``, and the body twist rotation first
(rad/s, then m/s) in the sensor frame. ROS messages want translation first (x, y, z, roll,
pitch, yaw): the pose covariance of the base in the odometry's parent frame, the twist of the
base in the base frame (nav_msgs/Odometry's child_frame_id).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .geometry import skew

# variance of the first pose, which defines the odom frame: exact, but not zero (some filters,
# e.g. robot_localization, reject exactly singular covariances)
FIRST_FRAME_VARIANCE = 1e-9
# what a non-finite entry (a singular system) becomes: finite, obviously uninformative
UNINFORMATIVE_VARIANCE = 1e6


def sensor_to_base_jacobian(R: np.ndarray, base_in_sensor: np.ndarray | None = None) -> np.ndarray:
    """6x6 J taking a rotation-first sensor-frame pair (w, v) to the ROS-order pair (translation,
    rotation) of the base origin, expressed in a frame rotated by ``R`` from the sensor frame.

    A rotation w moves the base origin (at ``c`` = base_in_sensor, m) by ``w x c = -c x w``, so
    translation = R (v - c x w) and rotation = R w. This holds for small pose errors (the
    perturbation) and for velocities (the twist) alike."""
    R = np.asarray(R, dtype=np.float64)
    J = np.zeros((6, 6))
    J[3:, :3] = R
    J[:3, 3:] = R
    if base_in_sensor is not None:
        J[:3, :3] = -R @ skew(np.asarray(base_in_sensor, dtype=np.float64))
    return J


def _propagate(J: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        cov = J @ np.asarray(covariance, dtype=np.float64) @ J.T
        cov = 0.5 * (cov + cov.T)
    return np.where(np.isfinite(cov), cov, UNINFORMATIVE_VARIANCE)


def body_to_ros_covariance(covariance_body: np.ndarray, R_odom_sensor: np.ndarray,
                           base_in_sensor: np.ndarray | None = None) -> np.ndarray:
    """Rotation-first sensor-frame pose covariance -> ROS pose covariance (x y z roll pitch yaw)
    of the base in the odom frame.

    With the core's perturbation the odom-frame rotation error is ``R w`` and the sensor
    position error ``R v``; the base origin moves by ``R (v - c x w)``. With the base at the
    sensor this is just both 3x3 blocks rotated by R. Non-finite entries become 1e6."""
    return _propagate(sensor_to_base_jacobian(R_odom_sensor, base_in_sensor), covariance_body)


class BaseTwist(NamedTuple):
    """Velocity of the base in the base frame: ``linear`` (m/s), ``angular`` (rad/s), and the
    6x6 ``covariance`` in ROS order (vx vy vz wx wy wz)."""

    linear: np.ndarray
    angular: np.ndarray
    covariance: np.ndarray


def twist_in_base(twist_sensor: np.ndarray, covariance_sensor: np.ndarray, R_base_sensor: np.ndarray,
                  base_in_sensor: np.ndarray | None = None) -> BaseTwist:
    """The rigidly mounted base's twist from the sensor's (rotation first: rad/s then m/s, in
    the sensor frame): angular ``R w``, linear ``R (v + w x c)`` with the lever arm ``c`` = base
    origin in sensor coordinates (m) and ``R`` = R_base_sensor (the mounting's rotation)."""
    J = sensor_to_base_jacobian(R_base_sensor, base_in_sensor)
    twist = J @ np.asarray(twist_sensor, dtype=np.float64)
    if not np.all(np.isfinite(twist)):
        return BaseTwist(np.zeros(3), np.zeros(3), np.eye(6) * UNINFORMATIVE_VARIANCE)
    return BaseTwist(twist[:3], twist[3:], _propagate(J, covariance_sensor))


def std_items(std: np.ndarray, prefix: str) -> dict[str, float]:
    """Named standard deviations for diagnostics: ``std`` (6,) roll, pitch, yaw (deg), x, y, z (m)
    -> {prefix_roll_deg: ..., prefix_x_m: ...} (the one naming of diagnostics.csv and /diagnostics)."""
    from .degeneracy import AXIS_NAMES

    names = [f"{prefix}_{a}_deg" for a in AXIS_NAMES[:3]] + [f"{prefix}_{a}_m" for a in AXIS_NAMES[3:]]
    return {n: float(v) for n, v in zip(names, std)}
