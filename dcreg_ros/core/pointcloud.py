"""Validation and cropping of raw point arrays (the first thing every entry point does)."""

from __future__ import annotations

import numpy as np
from numba import njit

MIN_POINTS = 10


@njit(cache=True)
def finite_rows(xyz: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of an (N, >=3) array whose first three values are finite."""
    n = xyz.shape[0]
    keep = np.empty(n, dtype=np.bool_)
    for i in range(n):
        keep[i] = np.isfinite(xyz[i, 0]) and np.isfinite(xyz[i, 1]) and np.isfinite(xyz[i, 2])
    return keep


@njit(cache=True)
def _within_range(points: np.ndarray, min_r2: float, max_r2: float) -> np.ndarray:
    """Indices of the rows whose squared distance to the origin lies in [min_r2, max_r2], in order."""
    n = points.shape[0]
    out = np.empty(n, dtype=np.int64)
    m = 0
    for i in range(n):
        x, y, z = points[i, 0], points[i, 1], points[i, 2]
        r2 = x * x + y * y + z * z
        if min_r2 <= r2 <= max_r2:
            out[m] = i
            m += 1
    return out[:m]


class InputError(ValueError):
    """Input data that cannot be registered (with a one-line reason for the user)."""


def sanitize_points(points: np.ndarray, name: str = "cloud", min_points: int = MIN_POINTS) -> np.ndarray:
    """Return a C-contiguous float64 (N, 3) array without NaN/Inf rows.

    Accepts (N, >=3) arrays (extra columns such as intensity are dropped) and organised
    (H, W, >=3) clouds. Raises :class:`InputError` when fewer than ``min_points`` valid points remain.
    """
    return finite_points(points, name, min_points)[0]


def finite_points(points: np.ndarray, name: str = "cloud", min_points: int = MIN_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`sanitize_points`, also returning the boolean mask of kept input rows."""
    try:
        arr = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected a numeric (N, 3) array") from None
    if arr.ndim == 3 and arr.shape[2] >= 3:
        arr = arr.reshape(-1, arr.shape[2])
    if arr.ndim != 2 or arr.shape[1] < 3:
        raise InputError(f"{name}: expected an (N, 3) array of x, y, z in metres, got shape {arr.shape}")
    xyz = np.ascontiguousarray(arr[:, :3])
    finite = finite_rows(xyz)
    if not finite.all():
        xyz = xyz[finite]
    if len(xyz) < min_points:
        dropped = int((~finite).sum())
        extra = f" ({dropped} NaN/Inf rows dropped)" if dropped else ""
        raise InputError(f"{name}: {len(xyz)} valid points{extra}, need at least {min_points}")
    return np.ascontiguousarray(xyz), finite


def range_indices(points: np.ndarray, min_range: float, max_range: float, name: str = "cloud", min_points: int = MIN_POINTS) -> np.ndarray:
    """Indices (in order) of the points whose distance to the origin is within [min_range,
    max_range] (0 = no limit); InputError when fewer than ``min_points`` remain."""
    min_r2 = min_range * min_range if min_range > 0.0 else -1.0
    max_r2 = max_range * max_range if max_range > 0.0 else np.inf
    out = _within_range(np.ascontiguousarray(points, dtype=np.float64), min_r2, max_r2)
    if len(out) < min_points:
        raise InputError(f"{name}: {len(out)} points left within range [{min_range}, {max_range or 'inf'}] m, need at least {min_points}")
    return out


def crop_range(points: np.ndarray, min_range: float, max_range: float, name: str = "cloud", min_points: int = MIN_POINTS) -> np.ndarray:
    """Keep points whose distance to the origin is within [min_range, max_range] (0 = no limit)."""
    if min_range <= 0.0 and max_range <= 0.0:
        return points
    return np.ascontiguousarray(points, dtype=np.float64)[range_indices(points, min_range, max_range, name, min_points)]
