"""Velocities and accelerations of a simulated motion, and their transfer to another rigid frame.

Any motion object with ``poses(stamps)`` -> T_world_body (N, 4, 4) works: derivatives are central
finite differences of the poses with a step of ``h`` = 1 ms, whose error is O(h²) (micrometres
per second; ``test_sim_proprioception`` checks them against closed-form motion). Angular rates
are in the *body* frame (R' = R [omega]x), linear ones in the world frame.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

FINITE_DIFFERENCE_STEP = 1e-3  # s


class Kinematics(NamedTuple):
    """State of a rigid body at N stamps: ``poses`` T_world_body (N, 4, 4, m); ``velocity`` and
    ``acceleration`` of its origin in the world frame (N, 3; m/s, m/s²); ``angular_velocity`` and
    ``angular_acceleration`` in the body frame (N, 3; rad/s, rad/s²)."""

    poses: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray
    angular_velocity: np.ndarray
    angular_acceleration: np.ndarray


def _small_rotation_vectors(R: np.ndarray) -> np.ndarray:
    """Rotation vectors (N, 3) of rotations (N, 3, 3) smaller than 90 degrees."""
    w = 0.5 * np.stack([R[:, 2, 1] - R[:, 1, 2], R[:, 0, 2] - R[:, 2, 0], R[:, 1, 0] - R[:, 0, 1]], axis=1)
    sin_angle = np.linalg.norm(w, axis=1)
    scale = np.ones_like(sin_angle)
    nonzero = sin_angle > 1e-300
    scale[nonzero] = np.arcsin(np.minimum(sin_angle[nonzero], 1.0)) / sin_angle[nonzero]
    return w * scale[:, None]


def _body_rate(R_a: np.ndarray, R_b: np.ndarray, dt: float) -> np.ndarray:
    """Body angular velocity (rad/s) that turns R_a into R_b in dt seconds."""
    return _small_rotation_vectors(np.transpose(R_a, (0, 2, 1)) @ R_b) / dt


def kinematics(motion, stamps, h: float = FINITE_DIFFERENCE_STEP) -> Kinematics:
    """Poses and their derivatives at ``stamps`` (s) by central differences of ``motion.poses``."""
    t = np.atleast_1d(np.asarray(stamps, dtype=np.float64))
    offsets = (-2.0 * h, -h, 0.0, h, 2.0 * h)
    poses = motion.poses(np.concatenate([t + o for o in offsets])).reshape(len(offsets), len(t), 4, 4)
    p = poses[:, :, :3, 3]
    R = poses[:, :, :3, :3]
    velocity = (p[3] - p[1]) / (2.0 * h)
    acceleration = (p[3] - 2.0 * p[2] + p[1]) / (h * h)
    angular_velocity = _body_rate(R[1], R[3], 2.0 * h)
    # body rates at t - h and t + h, each a central difference over 2 h
    angular_acceleration = (_body_rate(R[2], R[4], 2.0 * h) - _body_rate(R[0], R[2], 2.0 * h)) / (2.0 * h)
    return Kinematics(poses[2], velocity, acceleration, angular_velocity, angular_acceleration)


def transfer(state: Kinematics, T_body_child: np.ndarray) -> Kinematics:
    """The same rigid motion seen at a frame mounted at ``T_body_child`` (4x4, m): lever arm
    r = t_body_child gives v + R (omega x r) and a + R (alpha x r + omega x (omega x r)); the
    angular rates are rotated into the child frame."""
    T = np.asarray(T_body_child, dtype=np.float64)
    r, R_bc = T[:3, 3], T[:3, :3]
    R = state.poses[:, :3, :3]
    w, alpha = state.angular_velocity, state.angular_acceleration
    wxr = np.cross(w, r)
    velocity = state.velocity + np.einsum("nij,nj->ni", R, wxr)
    acceleration = state.acceleration + np.einsum("nij,nj->ni", R, np.cross(alpha, r) + np.cross(w, wxr))
    return Kinematics(state.poses @ T, velocity, acceleration, w @ R_bc, alpha @ R_bc)
