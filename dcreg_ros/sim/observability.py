"""The simulator's per-frame degeneracy truth, from the scene's exact geometry.

It is computed independently of the detector it is used to score (no Schur complement, no ratio
test, no estimated normals): the Cramer-Rao bound of the frame's pose from the exact surface
normals of every return, in physical units, against fixed thresholds.

Measurement model. Every return measures its surface along the normal with the sensor's range
noise, but returns on the same patch of surface do not give independent information to a
registration: they are matched against one local plane of a map, whose own error they share. So
the information of each ``PATCH_SIZE`` cube of surface is that of a single return (one return's
worth, spread over the patch's returns): the information saturates with the area that faces a
direction, not with the point density (the truth is then the same for 16 and 128 beams).

An axis is *weak* when its standard deviation from one frame exceeds ``MAX_STD_TRANSLATION`` (m)
or ``MAX_STD_ROTATION_DEG``. With 1.5 cm range noise, 2.5 mm means fewer than about 36 square
metres of surface facing that direction: measured on the scenes (32 beams, per-frame medians)
the well-constrained ones stay at 0.8-1.8 mm on every translation axis (structured, stairwell)
and the degenerate directions lie at 2.9-15 mm (corridor, sparse corridor, tunnel x beyond their
entrances, open field x and y); no rotation of any scene exceeds 0.06 deg (docs/ALGORITHM.md).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

PATCH_SIZE = 1.0  # m: a patch of surface carries one return's information (the map voxel of the odometry)
MAX_STD_TRANSLATION = 0.0025  # m per frame
MAX_STD_ROTATION_DEG = 0.1  # deg per frame
_RIDGE = 1e-12  # relative to the largest diagonal entry: keeps an exactly null direction finite (and weak)


class Observability(NamedTuple):
    """Per axis (roll, pitch, yaw, x, y, z): the Cramer-Rao standard deviation of one frame's pose
    (``std``: rad, then m) and whether the axis is weak by the thresholds above."""

    std: np.ndarray
    weak: np.ndarray


def frame_observability(points: np.ndarray, normals: np.ndarray, range_noise: float) -> Observability:
    """The truth of one frame from noise-free returns ``points`` and their exact unit ``normals``
    (N, 3 each, sensor frame at the stamp) and the sensor's range noise (m, one sigma)."""
    points = np.asarray(points, dtype=np.float64)
    normals = np.asarray(normals, dtype=np.float64)
    if len(points) == 0:
        return Observability(np.full(6, np.inf), np.ones(6, dtype=bool))
    keys = np.floor(points / PATCH_SIZE).astype(np.int64)
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    weights = 1.0 / counts[inverse.ravel()]
    J = np.hstack([np.cross(points, normals), normals])  # rows of the point-to-plane Jacobian, rotation first
    information = (J * weights[:, None]).T @ J / max(range_noise, 1e-6) ** 2
    information += np.eye(6) * (_RIDGE * max(float(np.max(np.diag(information))), 1e-300))
    std = np.sqrt(np.clip(np.diag(np.linalg.inv(information)), 0.0, None))
    limits = np.array([np.radians(MAX_STD_ROTATION_DEG)] * 3 + [MAX_STD_TRANSLATION] * 3)
    return Observability(std, std > limits)
