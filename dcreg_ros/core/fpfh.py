"""Surface normals and sign-invariant FPFH descriptors (Rusu et al. 2009) for global registration.

FPFH describes the local shape around a point by histograms of the angles between its normal,
its neighbours' normals and the lines joining them (the Darboux-frame angles alpha, phi, theta;
11 bins each, 33 values). A prior map built from many scans has no single viewpoint to orient
normals by, and PCA normals come with an arbitrary sign, so this variant bins only quantities
that do not change when either normal flips: |alpha|, |phi| and theta folded onto [0, pi/2]
(the orbit of theta under the two flips is {theta, -theta, pi - theta, pi + theta}). The
descriptor of a point is half its own histogram plus half the distance-weighted mean of its
neighbours' (the "fast" part of FPFH); each 11-bin block sums to 1.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .planes import eigenvector_3x3, symmetric_eigenvalues_3x3
from .radius_search import Neighbours

BINS = 11
DIMENSIONS = 3 * BINS
MIN_NORMAL_NEIGHBOURS = 5


@njit(cache=True)
def _pca_normal(points, idx, count):
    """Unit eigenvector of the smallest eigenvalue of the covariance of ``points[idx[:count]]``
    (no acceptance test: every surface, corner or edge gets a normal to describe)."""
    mean = np.zeros(3)
    for a in range(count):
        mean += points[idx[a]]
    mean /= count
    C = np.zeros((3, 3))
    for a in range(count):
        d = points[idx[a]] - mean
        for r in range(3):
            for c in range(3):
                C[r, c] += d[r] * d[c]
    C /= count
    return eigenvector_3x3(C, symmetric_eigenvalues_3x3(C)[0])


@njit(cache=True, parallel=True)
def _normals_kernel(points, index, count, min_count):
    n = points.shape[0]
    normals = np.zeros((n, 3))
    valid = np.zeros(n, dtype=np.bool_)
    for i in prange(n):
        c = count[i]
        if c < min_count:
            continue
        normals[i] = _pca_normal(points, index[i], c)
        valid[i] = True
    return normals, valid


def estimate_normals(points: np.ndarray, neighbours: Neighbours) -> tuple[np.ndarray, np.ndarray]:
    """PCA normals (N, 3, unit, arbitrary sign) of ``points`` from their neighbours, and a validity
    mask (at least 5 neighbours)."""
    return _normals_kernel(np.ascontiguousarray(points, dtype=np.float64), neighbours.index, neighbours.count, MIN_NORMAL_NEIGHBOURS)


@njit(cache=True, inline="always")
def _bin(value: float) -> int:
    """Bin of a value in [0, 1]."""
    b = int(value * BINS)
    return BINS - 1 if b >= BINS else (0 if b < 0 else b)


@njit(cache=True, parallel=True)
def _spfh_kernel(points, normals, valid, index, count):
    n = points.shape[0]
    hist = np.zeros((n, DIMENSIONS))
    half_pi = 0.5 * np.pi
    for i in prange(n):
        if not valid[i]:
            continue
        m = 0
        for a in range(count[i]):
            j = index[i, a]
            if j == i or not valid[j]:
                continue
            dx = points[j, 0] - points[i, 0]
            dy = points[j, 1] - points[i, 1]
            dz = points[j, 2] - points[i, 2]
            dist = np.sqrt(dx * dx + dy * dy + dz * dz)
            if dist < 1e-9:
                continue
            dx /= dist
            dy /= dist
            dz /= dist
            ci = normals[i, 0] * dx + normals[i, 1] * dy + normals[i, 2] * dz
            cj = normals[j, 0] * dx + normals[j, 1] * dy + normals[j, 2] * dz
            # the Darboux frame sits on the point whose normal is closer to the joining line
            s, t = np.int64(i), np.int64(j)  # (the prange index is unsigned: keep one integer type)
            if abs(cj) > abs(ci):
                s, t = t, s
                dx, dy, dz = -dx, -dy, -dz
            ux, uy, uz = normals[s, 0], normals[s, 1], normals[s, 2]
            vx = uy * dz - uz * dy
            vy = uz * dx - ux * dz
            vz = ux * dy - uy * dx
            vn = np.sqrt(vx * vx + vy * vy + vz * vz)
            if vn < 1e-9:
                continue
            vx /= vn
            vy /= vn
            vz /= vn
            wx = uy * vz - uz * vy
            wy = uz * vx - ux * vz
            wz = ux * vy - uy * vx
            nx, ny, nz = normals[t, 0], normals[t, 1], normals[t, 2]
            alpha = abs(vx * nx + vy * ny + vz * nz)
            phi = abs(ux * dx + uy * dy + uz * dz)
            theta = abs(np.arctan2(wx * nx + wy * ny + wz * nz, ux * nx + uy * ny + uz * nz))
            if theta > half_pi:
                theta = np.pi - theta
            hist[i, _bin(alpha)] += 1.0
            hist[i, BINS + _bin(phi)] += 1.0
            hist[i, 2 * BINS + _bin(theta / half_pi)] += 1.0
            m += 1
        if m > 0:
            for b in range(DIMENSIONS):
                hist[i, b] /= m
    return hist


@njit(cache=True, parallel=True)
def _fpfh_kernel(spfh, valid, index, dist2, count, rows):
    n = rows.shape[0]
    out = np.zeros((n, DIMENSIONS), dtype=np.float32)
    usable = np.zeros(n, dtype=np.bool_)
    for r in prange(n):
        i = rows[r]
        if not valid[i]:
            continue
        acc = np.zeros(DIMENSIONS)
        wsum = 0.0
        for a in range(count[i]):
            j = index[i, a]
            if j == i or not valid[j] or dist2[i, a] <= 0.0:
                continue
            w = 1.0 / np.sqrt(dist2[i, a])
            wsum += w
            for b in range(DIMENSIONS):
                acc[b] += w * spfh[j, b]
        if wsum == 0.0:
            continue
        for b in range(DIMENSIONS):
            out[r, b] = 0.5 * spfh[i, b] + 0.5 * acc[b] / wsum
        usable[r] = True
    return out, usable


def fpfh_features(points: np.ndarray, normals: np.ndarray, valid: np.ndarray, neighbours: Neighbours,
                  rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sign-invariant FPFH (R, 33, float32) of ``points[rows]`` (default: all) with ``normals``
    over ``neighbours`` (the feature radius, of every point); also the mask of the rows that got a
    descriptor (a valid normal and at least one neighbour with one)."""
    points = np.ascontiguousarray(points, dtype=np.float64)
    rows = np.arange(len(points)) if rows is None else np.ascontiguousarray(rows, dtype=np.int64)
    spfh = _spfh_kernel(points, normals, valid, neighbours.index, neighbours.count)
    return _fpfh_kernel(spfh, valid, neighbours.index, neighbours.dist2, neighbours.count, rows)
