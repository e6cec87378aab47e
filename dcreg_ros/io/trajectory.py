"""Trajectories (stamped 4x4 poses) and the TUM / KITTI pose file formats."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.pointcloud import InputError


class TrajectoryFileError(InputError):
    """A trajectory file is missing or malformed."""


@dataclass
class Trajectory:
    """Poses T_world_sensor (N, 4, 4) at ``stamps`` (N,) seconds."""

    stamps: np.ndarray
    poses: np.ndarray

    def __post_init__(self) -> None:
        self.stamps = np.asarray(self.stamps, dtype=np.float64).reshape(-1)
        self.poses = np.asarray(self.poses, dtype=np.float64).reshape(-1, 4, 4)
        if len(self.stamps) != len(self.poses):
            raise ValueError(f"{len(self.stamps)} stamps but {len(self.poses)} poses")

    def __len__(self) -> int:
        return len(self.stamps)

    @property
    def positions(self) -> np.ndarray:
        return self.poses[:, :3, 3]

    def path_length(self) -> float:
        return float(np.linalg.norm(np.diff(self.positions, axis=0), axis=1).sum()) if len(self) > 1 else 0.0


def _quat_from_rotation(R: np.ndarray) -> np.ndarray:
    """(qx, qy, qz, qw) of a rotation matrix, qw >= 0."""
    m = R
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = np.sqrt(tr + 1.0) * 2
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    q = np.array(q)
    q /= np.linalg.norm(q)
    return q if q[3] >= 0 else -q


def quaternion_to_rotation(qx: float, qy: float, qz: float, qw: float) -> np.ndarray:
    """Rotation matrix of a (normalised) quaternion."""
    q = np.array([qx, qy, qz, qw], dtype=np.float64)
    n = np.linalg.norm(q)
    if not np.isfinite(n) or n < 1e-12:
        raise ValueError("quaternion has zero or non-finite norm")
    x, y, z, w = q / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def rotation_to_quaternion(R: np.ndarray) -> np.ndarray:
    """(qx, qy, qz, qw) with qw >= 0."""
    return _quat_from_rotation(np.asarray(R, dtype=np.float64))


def matrix_from_message(translation: Any, rotation: Any) -> np.ndarray:
    """4x4 rigid transform of message parts, duck-typed: ``translation`` with x, y, z (m; a
    geometry_msgs Point or Vector3) and ``rotation`` a quaternion with x, y, z, w (normalised
    here). Raises ValueError for a zero or non-finite quaternion."""
    T = np.eye(4)
    T[:3, :3] = quaternion_to_rotation(float(rotation.x), float(rotation.y), float(rotation.z), float(rotation.w))
    T[:3, 3] = (float(translation.x), float(translation.y), float(translation.z))
    return T


def tum_line(stamp: float, T: np.ndarray) -> str:
    """One TUM line 'stamp tx ty tz qx qy qz qw' (s, m) of pose T (4x4), without newline."""
    q = rotation_to_quaternion(T[:3, :3])
    return f"{stamp:.9f} {T[0, 3]:.9f} {T[1, 3]:.9f} {T[2, 3]:.9f} {q[0]:.9f} {q[1]:.9f} {q[2]:.9f} {q[3]:.9f}"


def kitti_line(T: np.ndarray) -> str:
    """One KITTI line: the first three rows of the 4x4 pose, row-major, 12 numbers."""
    return " ".join(f"{v:.9e}" for v in T[:3, :].reshape(-1))


def write_tum(path: str | Path, trajectory: Trajectory) -> None:
    """TUM format: 'stamp tx ty tz qx qy qz qw' per line."""
    lines = [tum_line(stamp, T) for stamp, T in zip(trajectory.stamps, trajectory.poses)]
    Path(path).write_text("\n".join(lines) + ("\n" if lines else ""))


def write_kitti(path: str | Path, trajectory: Trajectory) -> None:
    """KITTI format: the first three rows of each 4x4 pose, row-major, 12 numbers per line."""
    lines = [kitti_line(T) for T in trajectory.poses]
    Path(path).write_text("\n".join(lines) + ("\n" if lines else ""))


def _read_rows(path: str | Path, columns: int, what: str) -> np.ndarray:
    path = Path(path)
    if not path.exists():
        raise TrajectoryFileError(f"{path}: no such file")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.replace(",", " ").split()
        if len(parts) != columns:
            raise TrajectoryFileError(f"{path}:{number}: a {what} line has {columns} numbers, found {len(parts)}")
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            raise TrajectoryFileError(f"{path}:{number}: not a number in a {what} line") from None
    if not rows:
        raise TrajectoryFileError(f"{path}: no poses")
    values = np.array(rows)
    if not np.all(np.isfinite(values)):
        raise TrajectoryFileError(f"{path}: contains NaN or Inf")
    return values


def read_tum(path: str | Path) -> Trajectory:
    values = _read_rows(path, 8, "TUM")
    poses = np.tile(np.eye(4), (len(values), 1, 1))
    for i, (_, x, y, z, qx, qy, qz, qw) in enumerate(values):
        try:
            poses[i, :3, :3] = quaternion_to_rotation(qx, qy, qz, qw)
        except ValueError as exc:
            raise TrajectoryFileError(f"{path}: pose {i}: {exc}") from None
        poses[i, :3, 3] = (x, y, z)
    return Trajectory(values[:, 0], poses)


def read_kitti(path: str | Path, period: float = 0.1) -> Trajectory:
    """KITTI poses have no stamps: frame i gets stamp i * period."""
    values = _read_rows(path, 12, "KITTI")
    poses = np.tile(np.eye(4), (len(values), 1, 1))
    poses[:, :3, :] = values.reshape(-1, 3, 4)
    return Trajectory(np.arange(len(values)) * period, poses)
