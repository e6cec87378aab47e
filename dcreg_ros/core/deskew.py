"""Motion compensation of a spinning-LiDAR scan under a constant-velocity model.

Each point p_i is measured at a normalised time s_i in [0, 1] over the scan; with the motion
of the last frame interval ``delta`` (T_prev^-1 T_curr, 4x4), the sensor pose at s_i relative
to the scan start is Exp(s_i log(delta)). Points are moved into the sensor frame at a reference
fraction of the scan: the middle by default. Referencing the middle keeps a velocity error from
shifting the scan as a whole (points before and after the middle move in opposite directions),
so errors of the motion model do not feed back into the next prediction; referencing the
start turns them into a half-frame offset that oscillates from frame to frame.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from .geometry import rotate_by_vector, so3_exp, so3_log
from .pointcloud import InputError, finite_points

# Per-point times may span at most this many frame intervals (a spinning LiDAR's sweep takes one);
# before the first interval is known, at most DEFAULT_MAX_TIME_SPAN_S.
MAX_TIME_SPAN_INTERVALS = 2.0
DEFAULT_MAX_TIME_SPAN_S = 1.0


class ScanFractions(NamedTuple):
    """Validated per-point times: ``fractions`` in [0, 1] over the scan, or None with a ``note``
    saying why deskewing is off for this frame (None when the scan simply has no time spread)."""

    fractions: np.ndarray | None
    note: str | None = None
    start: float = 0.0  # earliest per-point time (s after the stamp)
    span: float = 0.0  # latest minus earliest (s)

    def reference_time(self, stamp: float) -> float:
        """The middle of the sweep (s), where a scan stamped ``stamp`` is registered."""
        return stamp + (self.start + 0.5 * self.span if self.fractions is not None else 0.0)


def max_time_span(frame_interval: float | None) -> float:
    """Largest plausible spread of per-point times (s) for scans ``frame_interval`` s apart."""
    if frame_interval is not None and np.isfinite(frame_interval) and frame_interval > 0:
        return MAX_TIME_SPAN_INTERVALS * float(frame_interval)
    return DEFAULT_MAX_TIME_SPAN_S


def scan_fractions(times: np.ndarray, max_span: float) -> ScanFractions:
    """Per-point times (s, relative to the scan stamp) -> scan fractions, if they are plausible.

    Every time must be finite and their spread at most ``max_span`` seconds (see
    :func:`max_time_span`); otherwise deskewing this frame would move points by a meaningless
    motion (a single time of 1e308 squeezes every other point to the same fraction), so the
    fractions are None and the note says why.
    """
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    if t.size == 0:
        return ScanFractions(None)
    bad = int(np.count_nonzero(~np.isfinite(t)))
    if bad:
        return ScanFractions(None, f"deskewing off: {bad} of {t.size} per-point times are NaN or Inf")
    with np.errstate(over="ignore"):
        span = float(t.max() - t.min())
    if not span <= max_span:
        return ScanFractions(None, f"deskewing off: per-point times span {span:.3g} s, more than the plausible {max_span:.3g} s")
    return ScanFractions(normalize_times(t), None, float(t.min()), span)


def normalize_times(times: np.ndarray) -> np.ndarray | None:
    """Per-point times in any unit -> fractions of the scan in [0, 1]; None if they carry no spread."""
    t = np.asarray(times, dtype=np.float64)
    finite = np.isfinite(t)
    if not finite.any():
        return None
    lo, hi = t[finite].min(), t[finite].max()
    if not hi > lo:
        return None
    s = (t - lo) / (hi - lo)
    s[~finite] = 0.0
    return s


@njit(cache=True, parallel=True)
def _deskew_kernel(points, fractions, omega, v):
    n = points.shape[0]
    out = np.empty_like(points)
    for i in prange(n):
        s = fractions[i]
        x, y, z = rotate_by_vector(omega[0] * s, omega[1] * s, omega[2] * s, points[i, 0], points[i, 1], points[i, 2])
        out[i, 0] = x + v[0] * s
        out[i, 1] = y + v[1] * s
        out[i, 2] = z + v[2] * s
    return out


def deskew(points: np.ndarray, fractions: np.ndarray, delta: np.ndarray, reference: float = 0.5) -> np.ndarray:
    """Move (N, 3) points measured at scan fractions (N,) into the sensor frame at the
    ``reference`` fraction of the scan (0 = start, 0.5 = middle).

    Rotation and translation are interpolated linearly in (omega, v), which is exact for
    constant velocity up to second order.
    """
    omega = so3_log(np.ascontiguousarray(delta[:3, :3]))
    v = np.ascontiguousarray(delta[:3, 3], dtype=np.float64)
    shifted = np.ascontiguousarray(fractions, dtype=np.float64) - reference
    return _deskew_kernel(np.ascontiguousarray(points, dtype=np.float64), shifted, omega, v)


def sweep_share(times: ScanFractions, interval: float) -> float:
    """The share of the frame interval (s) the sweep lasts: 1 for a spinning LiDAR that sends
    every scan, below 1 after dropped or skipped scans (a 0.1 s sweep 0.5 s after the last scan),
    so that deskewing interpolates the motion over the sweep, not over the whole interval."""
    if times.fractions is None or not interval > 0.0 or not times.span > 0.0:
        return 1.0
    return float(times.span / interval)


def interpolate_motion(delta: np.ndarray, fraction: float) -> np.ndarray:
    """The pose change over ``fraction`` of a frame interval with motion ``delta`` (4x4),
    interpolated like :func:`deskew` (negative fractions go back in time)."""
    omega = so3_log(np.ascontiguousarray(delta[:3, :3]))
    out = np.eye(4)
    out[:3, :3] = so3_exp(omega * fraction)
    out[:3, 3] = delta[:3, 3] * fraction
    return out


def scan_points_and_times(points: np.ndarray, timestamps: np.ndarray | None, max_span: float,
                          label: str = "scan") -> tuple[np.ndarray, ScanFractions]:
    """The finite points (N, 3, m) of a scan and their validated per-point times (s, spanning at
    most ``max_span`` s); InputError (named ``label``) for a times array of the wrong length."""
    pts, finite = finite_points(points, label)
    if timestamps is None:
        return pts, ScanFractions(None)
    times = np.asarray(timestamps, dtype=np.float64).reshape(-1)
    if len(times) != len(finite):
        raise InputError(f"{label}: {len(times)} timestamps for {len(finite)} points")
    return pts, scan_fractions(times[finite], max_span)
