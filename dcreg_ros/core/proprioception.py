"""Measurements of the robot's own motion sensors, as plain arrays (no ROS types).

Conventions (``../shared/reference/robot_sensors.md``, REP-145 / REP-105):

- :class:`ImuSamples`: ``angular_velocity`` in rad/s and ``linear_acceleration`` as the specific
  force in m/s² (it *includes* the reaction to gravity: a level IMU at rest reads about
  (0, 0, +9.81)), both in the IMU frame ``frame_id``.
- :class:`WheelOdometrySamples`: ``poses`` T_odom_base (4x4, metres) in ``frame_id`` (usually
  ``odom``), the twist in the child frame ``child_frame_id`` (usually ``base_link``);
  covariances in ROS order (x, y, z, roll, pitch, yaw), 6x6 each.

Stamps are seconds, strictly increasing after :meth:`sorted_unique` (readers call it).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

GRAVITY = 9.81  # m/s², the magnitude of gravity (standard gravity, rounded): a level IMU at rest reads it


def _stamps(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(-1)


def _vectors(values: np.ndarray, n: int, name: str) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64).reshape(-1, 3)
    if len(out) != n:
        raise ValueError(f"{name}: {len(out)} rows for {n} stamps")
    return out


def _window(stamps: np.ndarray, t0: float, t1: float) -> slice:
    """The rows of sorted ``stamps`` with t0 <= stamp <= t1."""
    return slice(int(np.searchsorted(stamps, t0, side="left")), int(np.searchsorted(stamps, t1, side="right")))


def _increasing_order(stamps: np.ndarray, finite_rows: np.ndarray) -> np.ndarray:
    """Indices of the finite rows sorted by stamp, keeping the first of equal stamps."""
    idx = np.flatnonzero(finite_rows & np.isfinite(stamps))
    idx = idx[np.argsort(stamps[idx], kind="stable")]
    if len(idx) > 1:
        keep = np.concatenate([[True], np.diff(stamps[idx]) > 0.0])
        idx = idx[keep]
    return idx


class _StampedRows:
    """Row selection and concatenation of a samples dataclass whose array fields all hold one row
    per stamp (the frame ids are kept)."""

    def _arrays(self) -> list[str]:
        return [f.name for f in fields(self) if isinstance(getattr(self, f.name), np.ndarray)]

    def rows(self, k: np.ndarray | slice):
        """The samples at rows ``k`` (indices, a boolean mask or a slice)."""
        return replace(self, **{name: getattr(self, name)[k] for name in self._arrays()})

    def followed_by(self, later):
        """These samples, then ``later``'s (same type; no re-sorting)."""
        return replace(self, **{name: np.concatenate([getattr(self, name), getattr(later, name)]) for name in self._arrays()})


@dataclass(frozen=True)
class ImuSamples(_StampedRows):
    """IMU measurements: ``stamps`` (N,) s, ``angular_velocity`` (N, 3) rad/s and
    ``linear_acceleration`` (N, 3) m/s² (specific force, gravity reaction included), IMU frame."""

    stamps: np.ndarray
    angular_velocity: np.ndarray
    linear_acceleration: np.ndarray
    frame_id: str = "imu"

    def __post_init__(self) -> None:
        stamps = _stamps(self.stamps)
        object.__setattr__(self, "stamps", stamps)
        object.__setattr__(self, "angular_velocity", _vectors(self.angular_velocity, len(stamps), "angular_velocity"))
        object.__setattr__(self, "linear_acceleration", _vectors(self.linear_acceleration, len(stamps), "linear_acceleration"))

    def __len__(self) -> int:
        return len(self.stamps)

    @classmethod
    def empty(cls, frame_id: str = "imu") -> "ImuSamples":
        return cls(np.empty(0), np.empty((0, 3)), np.empty((0, 3)), frame_id)

    def sorted_unique(self) -> "ImuSamples":
        """Finite samples in strictly increasing stamp order (duplicates and NaN rows dropped)."""
        finite = np.isfinite(self.angular_velocity).all(axis=1) & np.isfinite(self.linear_acceleration).all(axis=1)
        return self.rows(_increasing_order(self.stamps, finite))

    def between(self, t0: float, t1: float) -> "ImuSamples":
        """Samples with t0 <= stamp <= t1 (stamps sorted)."""
        return self.rows(_window(self.stamps, t0, t1))

    def scaled_accelerometer(self, factor: float) -> "ImuSamples":
        """The same samples with ``linear_acceleration`` times ``factor`` (GRAVITY for a driver
        that reports in g)."""
        return ImuSamples(self.stamps, self.angular_velocity, self.linear_acceleration * factor, self.frame_id)


@dataclass(frozen=True)
class WheelOdometrySamples(_StampedRows):
    """Wheel (or any external) odometry: ``poses`` T_odom_base (N, 4, 4) at ``stamps`` (N,) s;
    ``linear_velocity`` / ``angular_velocity`` (N, 3) in the child frame (m/s, rad/s);
    ``pose_covariance`` / ``twist_covariance`` (N, 6, 6) in ROS order (x y z roll pitch yaw)."""

    stamps: np.ndarray
    poses: np.ndarray
    linear_velocity: np.ndarray
    angular_velocity: np.ndarray
    pose_covariance: np.ndarray
    twist_covariance: np.ndarray
    frame_id: str = "odom"
    child_frame_id: str = "base_link"

    def __post_init__(self) -> None:
        stamps = _stamps(self.stamps)
        n = len(stamps)
        object.__setattr__(self, "stamps", stamps)
        object.__setattr__(self, "poses", np.asarray(self.poses, dtype=np.float64).reshape(n, 4, 4))
        object.__setattr__(self, "linear_velocity", _vectors(self.linear_velocity, n, "linear_velocity"))
        object.__setattr__(self, "angular_velocity", _vectors(self.angular_velocity, n, "angular_velocity"))
        object.__setattr__(self, "pose_covariance", np.asarray(self.pose_covariance, dtype=np.float64).reshape(n, 6, 6))
        object.__setattr__(self, "twist_covariance", np.asarray(self.twist_covariance, dtype=np.float64).reshape(n, 6, 6))

    def __len__(self) -> int:
        return len(self.stamps)

    @classmethod
    def empty(cls, frame_id: str = "odom", child_frame_id: str = "base_link") -> "WheelOdometrySamples":
        return cls(np.empty(0), np.empty((0, 4, 4)), np.empty((0, 3)), np.empty((0, 3)), np.empty((0, 6, 6)),
                   np.empty((0, 6, 6)), frame_id, child_frame_id)

    def sorted_unique(self) -> "WheelOdometrySamples":
        """Finite samples in strictly increasing stamp order (duplicates and NaN rows dropped)."""
        finite = np.isfinite(self.poses).all(axis=(1, 2)) & np.isfinite(self.linear_velocity).all(axis=1) \
            & np.isfinite(self.angular_velocity).all(axis=1)
        return self.rows(_increasing_order(self.stamps, finite))

    def between(self, t0: float, t1: float) -> "WheelOdometrySamples":
        """Samples with t0 <= stamp <= t1 (stamps sorted)."""
        return self.rows(_window(self.stamps, t0, t1))
