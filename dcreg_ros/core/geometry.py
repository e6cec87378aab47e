"""SO(3) / SE(3) helpers.

Conventions used across the package:
- A pose is a 4x4 homogeneous matrix ``T_a_b`` that maps points from frame b into frame a:
  ``p_a = R p_b + t`` (metres).
- Euler angles are (roll, pitch, yaw) in radians with ``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``.
- The 6-vector state of the registration is rotation first: ``[omega (3), v (3)]``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_SMALL_ANGLE = 1e-10


@njit(cache=True)
def skew(v: np.ndarray) -> np.ndarray:
    """Skew-symmetric matrix [v]x such that [v]x @ w = v x w."""
    out = np.zeros((3, 3))
    out[0, 1] = -v[2]
    out[0, 2] = v[1]
    out[1, 0] = v[2]
    out[1, 2] = -v[0]
    out[2, 0] = -v[1]
    out[2, 1] = v[0]
    return out


@njit(cache=True)
def so3_exp(omega: np.ndarray) -> np.ndarray:
    """Rodrigues' formula: rotation vector (rad) -> 3x3 rotation matrix."""
    theta = np.sqrt(omega[0] ** 2 + omega[1] ** 2 + omega[2] ** 2)
    K = skew(omega)
    if theta < _SMALL_ANGLE:
        return np.eye(3) + K
    a = np.sin(theta) / theta
    b = (1.0 - np.cos(theta)) / (theta * theta)
    return np.eye(3) + a * K + b * (K @ K)


@njit(cache=True, inline="always")
def rotate_by_vector(wx: float, wy: float, wz: float, px: float, py: float, pz: float) -> tuple[float, float, float]:
    """Exp(w) p without building the matrix: p + a (w x p) + b (w x (w x p)) (Rodrigues)."""
    theta2 = wx * wx + wy * wy + wz * wz
    if theta2 < _SMALL_ANGLE * _SMALL_ANGLE:
        a, b = 1.0, 0.0
    else:
        theta = np.sqrt(theta2)
        a = np.sin(theta) / theta
        b = (1.0 - np.cos(theta)) / theta2
    cx = wy * pz - wz * py
    cy = wz * px - wx * pz
    cz = wx * py - wy * px
    return (px + a * cx + b * (wy * cz - wz * cy),
            py + a * cy + b * (wz * cx - wx * cz),
            pz + a * cz + b * (wx * cy - wy * cx))


@njit(cache=True)
def so3_log(R: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix -> rotation vector (rad), robust near 0 and pi."""
    cos_theta = 0.5 * (R[0, 0] + R[1, 1] + R[2, 2] - 1.0)
    cos_theta = min(1.0, max(-1.0, cos_theta))
    theta = np.arccos(cos_theta)
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    if theta < 1e-7:
        return 0.5 * w
    if np.pi - theta < 1e-4:
        # Near pi the antisymmetric part vanishes; the symmetric part is
        # cos(theta) I + (1 - cos(theta)) a a^T, so any dominant column of it gives the axis a.
        B = 0.5 * (R + R.T) - np.eye(3) * cos_theta
        k = 0
        for i in range(1, 3):
            if B[i, i] > B[k, k]:
                k = i
        col = B[:, k].copy()
        axis = col / np.sqrt(max(col @ col, 1e-300))
        if axis[0] * w[0] + axis[1] * w[1] + axis[2] * w[2] < 0.0:
            axis = -axis
        return axis * theta
    return w * (theta / (2.0 * np.sin(theta)))


def euler_to_rotation(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """R = Rz(yaw) Ry(pitch) Rx(roll); angles in radians."""
    cr, sr = np.cos(roll), np.sin(roll)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def rotation_to_euler(R: np.ndarray) -> np.ndarray:
    """Inverse of :func:`euler_to_rotation`: returns (roll, pitch, yaw) in radians."""
    pitch = np.arcsin(-np.clip(R[2, 0], -1.0, 1.0))
    if abs(np.cos(pitch)) > 1e-9:
        roll = np.arctan2(R[2, 1], R[2, 2])
        yaw = np.arctan2(R[1, 0], R[0, 0])
    else:  # gimbal lock: fold everything into yaw
        roll = 0.0
        yaw = np.arctan2(-R[0, 1], R[1, 1])
    return np.array([roll, pitch, yaw])


def pose_from_xyz_rpy(x: float, y: float, z: float, roll: float, pitch: float, yaw: float) -> np.ndarray:
    """4x4 pose from a translation (m) and Euler angles (rad, R = Rz Ry Rx)."""
    T = np.eye(4)
    T[:3, :3] = euler_to_rotation(roll, pitch, yaw)
    T[:3, 3] = (x, y, z)
    return T


def pose_to_xyz_rpy(T: np.ndarray) -> np.ndarray:
    """(x, y, z, roll, pitch, yaw) of a 4x4 pose; metres and radians."""
    return np.concatenate([T[:3, 3], rotation_to_euler(T[:3, :3])])


def invert_pose(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid 4x4 transform without a general matrix inverse."""
    out = np.eye(4)
    R = T[:3, :3]
    out[:3, :3] = R.T
    out[:3, 3] = -R.T @ T[:3, 3]
    return out


def apply_right_perturbation(T: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Apply a rotation-first increment on the right: R <- R Exp(omega), t <- t + R v."""
    out = np.eye(4)
    R = T[:3, :3]
    out[:3, :3] = R @ so3_exp(np.ascontiguousarray(delta[:3], dtype=np.float64))
    out[:3, 3] = T[:3, 3] + R @ delta[3:6]
    return out


def project_to_so3(R: np.ndarray) -> np.ndarray:
    """Closest rotation matrix (SVD), to undo numerical drift."""
    U, _, Vt = np.linalg.svd(R)
    D = np.eye(3)
    D[2, 2] = np.sign(np.linalg.det(U @ Vt))
    return U @ D @ Vt


def pose_error(T_est: np.ndarray, T_ref: np.ndarray) -> tuple[float, float]:
    """Translation (m) and rotation (deg) of inv(T_ref) @ T_est."""
    E = invert_pose(T_ref) @ T_est
    cos_angle = np.clip(0.5 * (np.trace(E[:3, :3]) - 1.0), -1.0, 1.0)
    return float(np.linalg.norm(E[:3, 3])), float(np.degrees(np.arccos(cos_angle)))


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to an (N, 3) array of points (metres)."""
    # written out per output column instead of `points @ R.T`: an (N, 3) x (3, 3) BLAS product
    # starts OpenBLAS's threads, which on a loaded 2-core machine cost 10-100 ms for 100k points
    # (measured in dcreg_node's registered-cloud output); this takes about 1 ms
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    R, t = np.asarray(T, dtype=np.float64)[:3, :3], np.asarray(T, dtype=np.float64)[:3, 3]
    out = np.empty_like(points)
    for i in range(3):
        out[:, i] = points[:, 0] * R[i, 0] + points[:, 1] * R[i, 1] + points[:, 2] * R[i, 2] + t[i]
    return out


def is_valid_pose(T: np.ndarray, tol: float = 1e-6) -> bool:
    """True when T is a finite 4x4 rigid transform (orthonormal rotation, last row 0 0 0 1)."""
    T = np.asarray(T, dtype=float)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        return False
    R = T[:3, :3]
    return bool(
        np.allclose(R.T @ R, np.eye(3), atol=tol * 1e3)
        and abs(np.linalg.det(R) - 1.0) < tol * 1e3
        and np.allclose(T[3], (0.0, 0.0, 0.0, 1.0), atol=tol)
    )
