"""A global point map that keeps one point per voxel of everything ever inserted.

The odometry's local map forgets what lies beyond ``max_range``; a saved map must keep every
registered frame. :class:`GlobalMap` accumulates world-frame points, keeping the first point that
falls into each voxel of edge ``voxel_size`` (a real measurement, like the downsampling of
:mod:`.voxel_hash`), with an optional intensity per point, in memory bounded by ``max_points``.
The same accumulator deduplicates a large map file chunk by chunk when it is loaded.

Points are stored as float32 (what a PCD map holds; 60 um resolution at 1 km) and the voxel keys
are computed from the stored float32 values, so the hash table can be rebuilt from the points
alone when it grows: memory is 12 bytes per point (16 with intensity) plus 16-32 bytes of table.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .voxel_hash import EMPTY, point_keys, probe_slot, table_size_for

DEFAULT_MAX_POINTS = 20_000_000


@njit(cache=True)
def _insert_new_keys(keys, points, intensity, has_intensity, table, count, out_points, out_intensity, capacity):
    """Store points[i] for every key not yet in ``table`` until the table is half full or the
    point arrays are full. Returns (next input index, new count)."""
    max_load = table.shape[0] // 2
    n = keys.shape[0]
    i = 0
    while i < n:
        s = probe_slot(table, keys[i])
        if table[s] == EMPTY:
            if count >= capacity or count + 1 > max_load:
                return i, count
            table[s] = keys[i]
            out_points[count, 0] = points[i, 0]
            out_points[count, 1] = points[i, 1]
            out_points[count, 2] = points[i, 2]
            if has_intensity:
                out_intensity[count] = intensity[i]
            count += 1
        i += 1
    return i, count


@njit(cache=True)
def _rehash(keys, table):
    for i in range(keys.shape[0]):
        table[probe_slot(table, keys[i])] = keys[i]


class GlobalMap:
    """Voxel-deduplicated accumulation of world-frame points (see the module docstring).

    ``voxel_size`` (m): one point is kept per voxel. ``max_points``: once this many points are
    stored, points in new voxels are dropped (``dropped`` counts them, ``full`` becomes True), so
    a robot that never saves its map cannot run out of memory.
    """

    def __init__(self, voxel_size: float, max_points: int = DEFAULT_MAX_POINTS, with_intensity: bool = False) -> None:
        if not (np.isfinite(voxel_size) and voxel_size > 0.0):
            raise ValueError(f"voxel_size must be > 0 m, got {voxel_size}")
        if max_points < 1:
            raise ValueError(f"max_points must be >= 1, got {max_points}")
        self.voxel_size = float(voxel_size)
        self.max_points = int(max_points)
        self.with_intensity = bool(with_intensity)
        self.dropped = 0
        self.clear()

    def clear(self) -> None:
        """Forget every point (and release the memory)."""
        self._count = 0
        self._points = np.empty((0, 3), dtype=np.float32)
        self._intensity = np.empty(0, dtype=np.float32)
        self._table = np.full(1024, EMPTY, dtype=np.int64)
        self.dropped = 0

    @property
    def full(self) -> bool:
        return self._count >= self.max_points

    def __len__(self) -> int:
        return self._count

    @property
    def points(self) -> np.ndarray:
        """(M, 3) float32 stored points, m (a view: copy it before inserting more)."""
        return self._points[: self._count]

    @property
    def intensity(self) -> np.ndarray | None:
        """(M,) float32 intensities, or None when the map was created without intensity."""
        return self._intensity[: self._count] if self.with_intensity else None

    @property
    def nbytes(self) -> int:
        """Memory held by the map's arrays (bytes)."""
        return int(self._points.nbytes + self._intensity.nbytes + self._table.nbytes)

    def insert(self, points: np.ndarray, intensity: np.ndarray | None = None) -> int:
        """Add (N, 3) world-frame points (m; non-finite rows are skipped) and, when the map has
        intensity, their (N,) intensities (zeros when None). Returns how many points were new."""
        pts = np.asarray(points)
        if pts.ndim != 2 or pts.shape[1] < 3:
            raise ValueError(f"expected (N, 3) points, got shape {pts.shape}")
        pts = np.ascontiguousarray(pts[:, :3], dtype=np.float32)
        finite = np.isfinite(pts).all(axis=1)
        if not finite.all():
            pts = np.ascontiguousarray(pts[finite])
        if self.with_intensity:
            inten = np.zeros(len(finite), np.float32) if intensity is None else np.asarray(intensity, np.float32).reshape(-1)
            if len(inten) != len(finite):
                raise ValueError(f"{len(inten)} intensities for {len(finite)} points")
            inten = np.ascontiguousarray(inten[finite])
        else:
            inten = np.zeros(0, np.float32)
        # keys of the float32 values (exactly representable in float64): the table can be rebuilt
        # from the stored points, which need not keep their keys
        keys = point_keys(pts.astype(np.float64), 1.0 / self.voxel_size)
        before = self._count
        start = 0
        while start < len(keys):
            self._reserve(len(keys) - start)
            capacity = min(len(self._points), self.max_points)
            used, self._count = _insert_new_keys(keys[start:], pts[start:], inten[start:], self.with_intensity, self._table,
                                                 self._count, self._points, self._intensity, capacity)
            start += used
            if start < len(keys) and self._count >= self.max_points:
                self.dropped += _count_absent(keys[start:], self._table)
                break
        return self._count - before

    def _reserve(self, incoming: int) -> None:
        """Grow the point arrays and the table so that ``incoming`` more points may fit (up to
        ``max_points``); the table keeps a load factor of at most one half."""
        need = min(self._count + incoming, self.max_points)
        if need > len(self._points):
            size = min(max(need, 2 * len(self._points), 1024), self.max_points)
            points = np.empty((size, 3), dtype=np.float32)
            points[: self._count] = self._points[: self._count]
            self._points = points
            if self.with_intensity:
                inten = np.empty(size, dtype=np.float32)
                inten[: self._count] = self._intensity[: self._count]
                self._intensity = inten
        if 2 * need > len(self._table):
            size = table_size_for(max(need, 2 * self._count))
            self._table = np.full(size, EMPTY, dtype=np.int64)
            _rehash(point_keys(self.points.astype(np.float64), 1.0 / self.voxel_size), self._table)


@njit(cache=True)
def _count_absent(keys, table):
    """How many of ``keys`` are not in ``table`` (the points a full map drops)."""
    absent = 0
    for i in range(keys.shape[0]):
        if table[probe_slot(table, keys[i])] == EMPTY:
            absent += 1
    return absent
