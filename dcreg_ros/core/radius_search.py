"""Fixed-radius neighbour search on a hashed grid (normals and features of global registration).

Points are sorted by the key of their grid cell (edge = the search radius), so each cell's points
are contiguous, and a hash table maps a cell key to its run. A radius query visits the 27 cells
around the query (the search of :func:`~dcreg_ros.core.voxel_hash.neighbourhood_search`), which
is exact because the cell edge equals the radius. Unlike
:class:`~dcreg_ros.core.voxel_map.VoxelMap` nothing is capped per cell: every point is found.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from .voxel_hash import EMPTY, neighbourhood_search, point_keys, table_insert, table_size_for


@njit(cache=True)
def _cell_table(sorted_keys: np.ndarray, table_keys: np.ndarray, table_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run start and length of each distinct key of ``sorted_keys``; fills key -> run index."""
    n = sorted_keys.shape[0]
    starts = np.empty(n, dtype=np.int64)
    counts = np.empty(n, dtype=np.int64)
    m = 0
    for i in range(n):
        if i == 0 or sorted_keys[i] != sorted_keys[i - 1]:
            table_insert(table_keys, table_values, sorted_keys[i], np.int64(m))
            starts[m] = i
            counts[m] = 0
            m += 1
        counts[m - 1] += 1
    return starts[:m], counts[:m]


@dataclass
class RadiusGrid:
    """Points (N, 3, metres) indexed for neighbour queries within ``radius`` (m).

    ``points`` is the cloud reordered by cell and ``order`` maps those rows back to the input
    (``points = input[order]``); query results are indices into the input.
    """

    radius: float
    points: np.ndarray
    order: np.ndarray
    starts: np.ndarray
    counts: np.ndarray
    table_keys: np.ndarray
    table_values: np.ndarray

    @classmethod
    def build(cls, points: np.ndarray, radius: float) -> "RadiusGrid":
        points = np.ascontiguousarray(points, dtype=np.float64)
        keys = point_keys(points, 1.0 / radius)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        size = table_size_for(len(points))
        table_keys = np.full(size, EMPTY, dtype=np.int64)
        table_values = np.empty(size, dtype=np.int64)
        starts, counts = _cell_table(sorted_keys, table_keys, table_values)
        return cls(float(radius), np.ascontiguousarray(points[order]), order, starts, counts, table_keys, table_values)

    def neighbours(self, queries: np.ndarray, radius: float | None = None, max_neighbours: int = 32) -> "Neighbours":
        """The ``max_neighbours`` nearest points within ``radius`` (<= the grid's) of each query."""
        r = self.radius if radius is None else min(float(radius), self.radius)
        queries = np.ascontiguousarray(queries, dtype=np.float64)
        bound = float(np.nextafter(r * r, np.inf))  # the search keeps d2 < bound: every point at most r away
        idx, d2, count = _radius_kernel(queries, bound, 1.0 / self.radius, self.radius, self.points, self.order, self.starts,
                                        self.counts, self.table_keys, self.table_values, int(max_neighbours))
        return Neighbours(idx, d2, count)


@dataclass
class Neighbours:
    """Per query: ``index[i, :count[i]]`` (into the grid's input cloud) sorted by distance,
    ``dist2`` the squared distances (m^2)."""

    index: np.ndarray
    dist2: np.ndarray
    count: np.ndarray


@njit(cache=True, parallel=True)
def _radius_kernel(queries, bound, inv_size, cell_size, points, order, starts, counts, table_keys, table_values, k):
    """The k nearest points with squared distance below ``bound`` of every query (indices into
    the input cloud through ``order``), by the 27-cell search of voxel_hash."""
    n = queries.shape[0]
    out_idx = np.full((n, k), -1, dtype=np.int64)
    out_d2 = np.full((n, k), np.inf)
    out_count = np.zeros(n, dtype=np.int64)
    chunks = max(1, min(n, 64))
    size = (n + chunks - 1) // chunks
    for c in prange(chunks):
        idx = np.empty(k, dtype=np.int64)  # per-chunk buffers: no allocation per query
        d2 = np.empty(k)
        for i in range(c * size, min(n, (c + 1) * size)):
            m = neighbourhood_search(queries[i, 0], queries[i, 1], queries[i, 2], k, inv_size, cell_size, table_keys, table_values,
                                     starts, counts, 0, points, bound, idx, d2)[0]
            for a in range(m):
                out_idx[i, a] = order[idx[a]]
                out_d2[i, a] = d2[a]
            out_count[i] = m
    return out_idx, out_d2, out_count
