"""Point-to-plane correspondences between a source cloud and a :class:`VoxelMap`.

Two searches produce the same output (per source point: the plane normal in the target frame,
the signed point-to-plane residual in metres and a validity flag):

- ``point_plane`` (default, fast): the nearest map point and its PCA plane (estimated lazily the
  first time the point is matched, then cached in the map); rejected when that plane is invalid.
- ``knn_plane`` (reference fidelity): the k nearest map points are re-fitted every iteration
  with the least-squares plane of the DCReg reference code (k = 5, 5th neighbour within radius).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .planes import least_squares_plane
from .voxel_map import PLANAR, VoxelMap, knn_points, nearest_point

METHODS = ("point_plane", "knn_plane")


@njit(cache=True, parallel=True)
def _nearest_kernel(src, R, t, max_d2, inv_size, voxel_size, table_keys, table_values, cell_counts, points, n_per):
    """Transformed source points and the slot of their nearest map point (-1 when none)."""
    n = src.shape[0]
    x = np.empty((n, 3))
    nearest = np.empty(n, dtype=np.int64)
    for i in prange(n):
        px, py, pz = src[i, 0], src[i, 1], src[i, 2]
        x[i, 0] = R[0, 0] * px + R[0, 1] * py + R[0, 2] * pz + t[0]
        x[i, 1] = R[1, 0] * px + R[1, 1] * py + R[1, 2] * pz + t[1]
        x[i, 2] = R[2, 0] * px + R[2, 1] * py + R[2, 2] * pz + t[2]
        nearest[i] = nearest_point(x[i, 0], x[i, 1], x[i, 2], inv_size, voxel_size, table_keys, table_values, cell_counts, points, n_per, max_d2)
    return x, nearest


@njit(cache=True, parallel=True)
def _plane_residual_kernel(x, nearest, points, normals, plane_state):
    n = x.shape[0]
    out_n = np.zeros((n, 3))
    out_r = np.zeros(n)
    valid = np.zeros(n, dtype=np.bool_)
    for i in prange(n):
        j = nearest[i]
        if j < 0 or plane_state[j] != PLANAR:
            continue
        nx, ny, nz = normals[j, 0], normals[j, 1], normals[j, 2]
        out_n[i, 0] = nx
        out_n[i, 1] = ny
        out_n[i, 2] = nz
        out_r[i] = nx * (x[i, 0] - points[j, 0]) + ny * (x[i, 1] - points[j, 1]) + nz * (x[i, 2] - points[j, 2])
        valid[i] = True
    return out_n, out_r, valid


@njit(cache=True, parallel=True)
def _knn_plane_kernel(src, R, t, k, radius, max_thickness, inv_size, voxel_size, table_keys, table_values, cell_counts, points, n_per):
    n = src.shape[0]
    out_n = np.zeros((n, 3))
    out_r = np.zeros(n)
    valid = np.zeros(n, dtype=np.bool_)
    max_d2 = radius * radius
    for i in prange(n):
        px, py, pz = src[i, 0], src[i, 1], src[i, 2]
        x = R[0, 0] * px + R[0, 1] * py + R[0, 2] * pz + t[0]
        y = R[1, 0] * px + R[1, 1] * py + R[1, 2] * pz + t[1]
        z = R[2, 0] * px + R[2, 1] * py + R[2, 2] * pz + t[2]
        idx = np.empty(k, dtype=np.int64)
        d2 = np.empty(k)
        found = knn_points(x, y, z, k, inv_size, voxel_size, table_keys, table_values, cell_counts, points, n_per, max_d2, idx, d2)
        if found < k:
            continue
        nb = np.empty((k, 3))
        for j in range(k):
            nb[j] = points[idx[j]]
        normal, d, ok = least_squares_plane(nb, max_thickness)
        if not ok:
            continue
        out_n[i] = normal
        out_r[i] = normal[0] * x + normal[1] * y + normal[2] * z + d
        valid[i] = True
    return out_n, out_r, valid


def find_correspondences(
    source: np.ndarray,
    T: np.ndarray,
    target: VoxelMap,
    method: str,
    max_distance: float,
    knn: int = 5,
    max_plane_thickness: float = 0.2,
    with_slots: bool = False,
) -> tuple:
    """Normals (N, 3), residuals (N,) in m and validity (N,) for source points under pose T;
    with ``with_slots`` also the map slot each point was matched to (N,; -1 for none, and for
    every point of ``knn_plane``, whose planes belong to no map point).

    ``max_distance`` (m) bounds the nearest-neighbour distance for ``point_plane`` and is the
    neighbourhood radius of the 5th neighbour for ``knn_plane``; both are capped at the map's
    voxel size, the radius its 27-voxel search covers exactly.
    """
    R = np.ascontiguousarray(T[:3, :3])
    t = np.ascontiguousarray(T[:3, 3])
    radius = min(float(max_distance), target.voxel_size)
    if method == "point_plane":
        x, nearest = _nearest_kernel(
            source, R, t, radius * radius, target.inv_size, target.voxel_size, target.table_keys, target.table_values,
            target.cell_counts, target.points, target.max_points_per_voxel,
        )
        target.ensure_normals(nearest)
        out = _plane_residual_kernel(x, nearest, target.points, target.normals, target.plane_state)
        return (*out, nearest) if with_slots else out
    if method == "knn_plane":
        out = _knn_plane_kernel(
            source, R, t, int(knn), radius, float(max_plane_thickness), target.inv_size, target.voxel_size,
            target.table_keys, target.table_values, target.cell_counts, target.points, target.max_points_per_voxel,
        )
        return (*out, np.full(len(source), -1, dtype=np.int64)) if with_slots else out
    raise ValueError(f"unknown correspondence method {method!r}; choose one of {', '.join(METHODS)}")
