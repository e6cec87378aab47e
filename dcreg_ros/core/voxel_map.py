"""Voxel hash map of points with per-point surface normals.

The map is the registration target, both for pairwise registration (built once from the target
cloud) and for odometry (the local map, updated every frame). Each voxel stores at most
``max_points_per_voxel`` points in a fixed block of slots, so a voxel's points are contiguous
and a neighbourhood query touches 27 small blocks.

Normals are estimated lazily: a stored point's plane (PCA over its nearest map neighbours) is
computed the first time the point is matched, then cached in ``plane_state`` (UNKNOWN, PLANAR,
NOT_PLANAR) until a new point enters its voxel. Most map points are never matched, so this
saves most of the normal estimation, and planes follow the neighbourhood as it grows denser.
"""

from __future__ import annotations


import numpy as np
from numba import njit, prange

from .voxel_hash import (
    EMPTY,
    neighbourhood_search,
    point_key,
    table_find,
    table_insert,
    table_size_for,
    voxel_occupancy,
)
from .planes import PlaneParameters, pca_normal_covariance, pca_plane_indexed

UNKNOWN = np.int8(0)
PLANAR = np.int8(1)
NOT_PLANAR = np.int8(2)


@njit(cache=True)
def _insert_kernel(
    pts, start, inv_size, table_keys, table_values, cell_keys, cell_counts, points, plane_state, capacity_cells, num_cells, n_per
):
    """Insert pts[start:] until done or until the cell arrays / table need to grow.

    Returns (next index to insert, new number of cells, indices of stored points, count stored).
    """
    n = pts.shape[0]
    stored = np.empty(n - start, dtype=np.int64)
    m = 0
    max_load = table_keys.shape[0] // 2
    i = start
    while i < n:
        key = point_key(pts[i, 0], pts[i, 1], pts[i, 2], inv_size)
        cell = table_find(table_keys, table_values, key)
        if cell < 0:
            if num_cells >= capacity_cells or num_cells + 1 > max_load:
                break
            cell = num_cells
            table_insert(table_keys, table_values, key, cell)
            cell_keys[cell] = key
            cell_counts[cell] = 0
            num_cells += 1
        c = cell_counts[cell]
        if c < n_per:
            slot = cell * n_per + c
            points[slot, 0] = pts[i, 0]
            points[slot, 1] = pts[i, 1]
            points[slot, 2] = pts[i, 2]
            # the voxel's neighbourhood changed: its cached planes are re-estimated when next
            # matched (a plane estimated while the map was sparse can be far off, and would
            # otherwise be kept for good)
            for j in range(c + 1):
                plane_state[cell * n_per + j] = UNKNOWN
            cell_counts[cell] = c + 1
            stored[m] = slot
            m += 1
        i += 1
    return i, num_cells, stored[:m]


@njit(cache=True)
def _rebuild_table(cell_keys, num_cells, table_keys, table_values):
    table_keys[:] = EMPTY
    for c in range(num_cells):
        table_insert(table_keys, table_values, cell_keys[c], np.int64(c))


@njit(cache=True)
def _compact_far_cells(center, max_distance, cell_keys, cell_counts, points, normals, normal_cov, plane_state, num_cells, n_per):
    """Drop voxels whose first point is farther than max_distance from center; keep order."""
    max_d2 = max_distance * max_distance
    w = 0
    for c in range(num_cells):
        s = c * n_per
        dx = points[s, 0] - center[0]
        dy = points[s, 1] - center[1]
        dz = points[s, 2] - center[2]
        if cell_counts[c] > 0 and dx * dx + dy * dy + dz * dz <= max_d2:
            if w != c:
                cell_keys[w] = cell_keys[c]
                cell_counts[w] = cell_counts[c]
                d = w * n_per
                for j in range(cell_counts[c]):
                    points[d + j] = points[s + j]
                    normals[d + j] = normals[s + j]
                    normal_cov[d + j] = normal_cov[s + j]
                    plane_state[d + j] = plane_state[s + j]
            w += 1
    return w


@njit(cache=True)
def nearest_point(qx, qy, qz, inv_size, voxel_size, table_keys, table_values, cell_counts, points, n_per, max_d2):
    """Slot of the nearest map point within sqrt(max_d2), or -1. Correct for max distances up
    to one voxel edge."""
    return neighbourhood_search(qx, qy, qz, 1, inv_size, voxel_size, table_keys, table_values, None, cell_counts, n_per, points,
                                max_d2, None, None)[1]


@njit(cache=True)
def knn_points(qx, qy, qz, k, inv_size, voxel_size, table_keys, table_values, cell_counts, points, n_per, max_d2, out_idx, out_d2):
    """The k nearest map points within sqrt(max_d2), ascending; returns how many were found.

    ``out_idx`` / ``out_d2`` must hold at least k entries. Correct for radii up to one voxel edge.
    """
    return neighbourhood_search(qx, qy, qz, k, inv_size, voxel_size, table_keys, table_values, None, cell_counts, n_per, points,
                                max_d2, out_idx, out_d2)[0]


@njit(cache=True)
def unknown_planes(slots: np.ndarray, plane_state: np.ndarray) -> np.ndarray:
    """Distinct slots (>= 0) among ``slots`` whose plane is still UNKNOWN."""
    out = np.empty(slots.shape[0], dtype=np.int64)
    m = 0
    for s in slots:
        if s >= 0 and plane_state[s] == UNKNOWN:
            plane_state[s] = NOT_PLANAR  # provisional mark, removes duplicates; set properly next
            out[m] = s
            m += 1
    return out[:m]


@njit(cache=True, parallel=True)
def _estimate_normals_kernel(
    slots, k, radius, max_thickness, min_planarity, max_thickness_ratio, inv_size, voxel_size, table_keys, table_values,
    cell_counts, points, n_per, normals, normal_cov, plane_state
):
    max_d2 = radius * radius
    n = slots.shape[0]
    chunks = min(n, 64)
    size = (n + chunks - 1) // chunks
    for c in prange(chunks):
        idx = np.empty(k, dtype=np.int64)  # per-chunk buffers: no allocation per point
        d2 = np.empty(k)
        for ii in range(c * size, min(n, (c + 1) * size)):
            i = slots[ii]
            found = knn_points(
                points[i, 0], points[i, 1], points[i, 2], k, inv_size, voxel_size,
                table_keys, table_values, cell_counts, points, n_per, max_d2, idx, d2,
            )
            plane_state[i] = NOT_PLANAR
            if found < 5:
                continue
            nx, ny, nz, ok = pca_plane_indexed(points, idx, found, max_thickness, min_planarity, max_thickness_ratio)
            if ok:
                normals[i, 0] = nx
                normals[i, 1] = ny
                normals[i, 2] = nz
                normal_cov[i, 0], normal_cov[i, 1], normal_cov[i, 2], normal_cov[i, 3], normal_cov[i, 4], normal_cov[i, 5] = \
                    pca_normal_covariance(points, idx, found, nx, ny, nz)
                plane_state[i] = PLANAR


class VoxelMap:
    """Voxel hash map: at most ``max_points_per_voxel`` points per voxel of edge ``voxel_size`` (m).

    Stored points live in the ``points`` array at slots ``cell * max_points_per_voxel + j``; the
    arrays are exposed so numba kernels can query the map without Python overhead.
    """

    def __init__(
        self,
        voxel_size: float,
        max_points_per_voxel: int = 20,
        initial_cells: int = 1024,
        plane: PlaneParameters | None = None,
    ) -> None:
        if not voxel_size > 0.0:
            raise ValueError(f"voxel_size must be > 0 m, got {voxel_size}")
        if max_points_per_voxel < 1:
            raise ValueError(f"max_points_per_voxel must be >= 1, got {max_points_per_voxel}")
        self.voxel_size = float(voxel_size)
        self.inv_size = 1.0 / self.voxel_size
        self.max_points_per_voxel = int(max_points_per_voxel)
        self.plane = plane or PlaneParameters()
        self.num_cells = 0
        self._allocate(max(16, initial_cells))

    @classmethod
    def from_points(cls, points: np.ndarray, voxel_size: float, max_points: int = 20, plane: PlaneParameters | None = None) -> "VoxelMap":
        """Map of a fixed cloud; ``max_points = 0`` keeps every point (exact neighbour search)."""
        pts = np.ascontiguousarray(points, dtype=np.float64)
        cells, fullest = voxel_occupancy(pts, float(voxel_size))
        if max_points <= 0:
            max_points = max(1, fullest)
        vmap = cls(voxel_size, max_points, initial_cells=max(16, cells), plane=plane)
        vmap.insert(pts)
        return vmap

    def _allocate(self, capacity_cells: int) -> None:
        n = self.max_points_per_voxel
        self.capacity_cells = capacity_cells
        self.cell_keys = np.full(capacity_cells, EMPTY, dtype=np.int64)
        self.cell_counts = np.zeros(capacity_cells, dtype=np.int64)
        self.points = np.zeros((capacity_cells * n, 3))
        self.normals = np.zeros((capacity_cells * n, 3))
        # covariance of each normal (xx, yy, zz, xy, xz, yz): how far noise can tilt it (core/measurement.py)
        self.normal_cov = np.zeros((capacity_cells * n, 6))
        self.plane_state = np.zeros(capacity_cells * n, dtype=np.int8)
        size = table_size_for(capacity_cells)
        self.table_keys = np.full(size, EMPTY, dtype=np.int64)
        self.table_values = np.full(size, -1, dtype=np.int64)

    def _grow(self, needed_cells: int) -> None:
        old = (self.cell_keys, self.cell_counts, self.points, self.normals, self.plane_state, self.normal_cov)
        used = self.num_cells
        n = self.max_points_per_voxel
        self._allocate(max(2 * self.capacity_cells, needed_cells))
        self.cell_keys[:used] = old[0][:used]
        self.cell_counts[:used] = old[1][:used]
        self.points[: used * n] = old[2][: used * n]
        self.normals[: used * n] = old[3][: used * n]
        self.plane_state[: used * n] = old[4][: used * n]
        self.normal_cov[: used * n] = old[5][: used * n]
        _rebuild_table(self.cell_keys, used, self.table_keys, self.table_values)

    def clear(self) -> None:
        """Remove every point, keeping the allocated memory."""
        self.num_cells = 0
        self.table_keys[:] = EMPTY
        self.cell_counts[:] = 0
        self.plane_state[:] = UNKNOWN

    def insert(self, points: np.ndarray) -> np.ndarray:
        """Add points (N, 3), m; voxels already full drop the extra points. Returns stored slots."""
        pts = np.ascontiguousarray(points, dtype=np.float64)
        chunks = []
        start = 0
        while start < len(pts):
            start, self.num_cells, stored = _insert_kernel(
                pts, start, self.inv_size, self.table_keys, self.table_values, self.cell_keys,
                self.cell_counts, self.points, self.plane_state, self.capacity_cells, self.num_cells,
                self.max_points_per_voxel,
            )
            chunks.append(stored)
            if start < len(pts):
                self._grow(self.num_cells + min(len(pts) - start, self.capacity_cells))
        return np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int64)

    def estimate_normals(self, slots: np.ndarray) -> None:
        """(Re)compute PCA planes of the given slots from their nearest map neighbours."""
        if len(slots) == 0:
            return
        p = self.plane
        _estimate_normals_kernel(
            np.ascontiguousarray(slots, dtype=np.int64), int(p.neighbors), float(min(p.radius, self.voxel_size)),
            float(p.max_thickness), float(p.min_planarity), float(p.max_thickness_ratio), self.inv_size, self.voxel_size, self.table_keys,
            self.table_values, self.cell_counts, self.points, self.max_points_per_voxel, self.normals, self.normal_cov,
            self.plane_state,
        )

    def ensure_normals(self, slots: np.ndarray) -> int:
        """Estimate the planes of those ``slots`` (-1 entries ignored) not estimated yet; returns how many."""
        todo = unknown_planes(np.ascontiguousarray(slots, dtype=np.int64), self.plane_state)
        self.estimate_normals(todo)
        return len(todo)

    def remove_far(self, center: np.ndarray, max_distance: float) -> None:
        """Drop voxels farther than ``max_distance`` (m) from ``center`` (3,)."""
        if self.num_cells == 0:
            return
        kept = _compact_far_cells(
            np.asarray(center, dtype=np.float64), float(max_distance), self.cell_keys,
            self.cell_counts, self.points, self.normals, self.normal_cov, self.plane_state, self.num_cells, self.max_points_per_voxel,
        )
        if kept != self.num_cells:
            self.num_cells = kept
            _rebuild_table(self.cell_keys, kept, self.table_keys, self.table_values)

    def used_slots(self) -> np.ndarray:
        """Flat indices of the occupied slots of ``points`` / ``normals``."""
        n = self.max_points_per_voxel
        counts = self.cell_counts[: self.num_cells]
        mask = np.arange(n)[None, :] < counts[:, None]
        return np.flatnonzero(mask.ravel())

    def point_cloud(self) -> np.ndarray:
        """All stored points as an (M, 3) array, m."""
        return self.points[self.used_slots()]

    def planes(self) -> tuple[np.ndarray, np.ndarray]:
        """Every stored point with a valid plane and its unit normal (estimates missing planes)."""
        slots = self.used_slots()
        self.ensure_normals(slots)
        slots = slots[self.plane_state[slots] == PLANAR]
        return self.points[slots], self.normals[slots]

    def __len__(self) -> int:
        return int(self.cell_counts[: self.num_cells].sum())
