"""Local plane fitting: PCA normals (default path) and the reference least-squares fit.

Both return unit normals; a plane is only accepted when every neighbour lies within
``max_thickness`` (m) of it, as in the reference implementation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit


@dataclass(frozen=True)
class PlaneParameters:
    """PCA plane estimation of map points: ``neighbors`` nearest points within ``radius`` (m),
    rejected as described in :func:`pca_plane_indexed`. The defaults are those of
    ``CorrespondenceConfig`` (which takes them from here)."""

    neighbors: int = 10
    radius: float = 1.0
    max_thickness: float = 0.2
    min_planarity: float = 0.03
    max_thickness_ratio: float = 0.5


@njit(cache=True)
def symmetric_eigenvalues_3x3(A: np.ndarray) -> tuple[float, float, float]:
    """Ascending eigenvalues of a symmetric 3x3 matrix (closed form, trigonometric method)."""
    return _sym_eigenvalues(A[0, 0], A[1, 1], A[2, 2], A[0, 1], A[0, 2], A[1, 2])


@njit(cache=True, inline="always")
def _sym_eigenvalues(a00, a11, a22, a01, a02, a12):
    p1 = a01 * a01 + a02 * a02 + a12 * a12
    if p1 == 0.0:
        lo = min(a00, min(a11, a22))
        hi = max(a00, max(a11, a22))
        return lo, a00 + a11 + a22 - lo - hi, hi
    q = (a00 + a11 + a22) / 3.0
    p2 = (a00 - q) ** 2 + (a11 - q) ** 2 + (a22 - q) ** 2 + 2.0 * p1
    p = np.sqrt(p2 / 6.0)
    b00 = (a00 - q) / p
    b11 = (a11 - q) / p
    b22 = (a22 - q) / p
    b01 = a01 / p
    b02 = a02 / p
    b12 = a12 / p
    det_b = b00 * (b11 * b22 - b12 * b12) - b01 * (b01 * b22 - b12 * b02) + b02 * (b01 * b12 - b11 * b02)
    r = min(1.0, max(-1.0, 0.5 * det_b))
    phi = np.arccos(r) / 3.0
    hi = q + 2.0 * p * np.cos(phi)
    lo = q + 2.0 * p * np.cos(phi + 2.0 * np.pi / 3.0)
    return lo, 3.0 * q - hi - lo, hi


@njit(cache=True)
def eigenvector_3x3(A: np.ndarray, eigenvalue: float) -> np.ndarray:
    """Unit eigenvector of a symmetric 3x3 matrix for a simple eigenvalue."""
    x, y, z = _eigenvector_sym(A[0, 0], A[1, 1], A[2, 2], A[0, 1], A[0, 2], A[1, 2], eigenvalue)
    return np.array([x, y, z])


@njit(cache=True, inline="always")
def _eigenvector_sym(a00, a11, a22, a01, a02, a12, eigenvalue):
    """Eigenvector of [[a00 a01 a02] [a01 a11 a12] [a02 a12 a22]] for ``eigenvalue``: the largest
    cross product of two rows of (A - eigenvalue I). Allocation-free for hot loops."""
    m00 = a00 - eigenvalue
    m11 = a11 - eigenvalue
    m22 = a22 - eigenvalue
    # rows r0 = (m00, a01, a02), r1 = (a01, m11, a12), r2 = (a02, a12, m22)
    c01x = a01 * a12 - a02 * m11
    c01y = a02 * a01 - m00 * a12
    c01z = m00 * m11 - a01 * a01
    c02x = a01 * m22 - a02 * a12
    c02y = a02 * a02 - m00 * m22
    c02z = m00 * a12 - a01 * a02
    c12x = m11 * m22 - a12 * a12
    c12y = a12 * a02 - a01 * m22
    c12z = a01 * a12 - m11 * a02
    n01 = c01x * c01x + c01y * c01y + c01z * c01z
    n02 = c02x * c02x + c02y * c02y + c02z * c02z
    n12 = c12x * c12x + c12y * c12y + c12z * c12z
    if n01 >= n02 and n01 >= n12:
        bx, by, bz, nb = c01x, c01y, c01z, n01
    elif n02 >= n12:
        bx, by, bz, nb = c02x, c02y, c02z, n02
    else:
        bx, by, bz, nb = c12x, c12y, c12z, n12
    if nb <= 0.0:
        return 0.0, 0.0, 1.0
    inv = 1.0 / np.sqrt(nb)
    return bx * inv, by * inv, bz * inv


@njit(cache=True)
def pca_plane_indexed(points: np.ndarray, idx: np.ndarray, count: int, max_thickness: float, min_planarity: float,
                      max_thickness_ratio: float) -> tuple[float, float, float, bool]:
    """PCA plane of ``points[idx[:count]]``: (nx, ny, nz, ok), with covariance eigenvalues
    l0 <= l1 <= l2.

    Accepted when planarity (l1 - l0) / l2 >= ``min_planarity`` (rejects lines), the RMS
    thickness sqrt(l0) is at most ``max_thickness_ratio`` times the smaller in-plane extent
    sqrt(l1) (rejects blobs and corners, whose normal is arbitrary: they create information
    along directions the scene does not constrain) and every point lies within
    ``max_thickness`` (m) of the plane. Allocation-free.
    """
    mx = my = mz = 0.0
    for j in range(count):
        q = idx[j]
        mx += points[q, 0]
        my += points[q, 1]
        mz += points[q, 2]
    mx /= count
    my /= count
    mz /= count
    cxx = cyy = czz = cxy = cxz = cyz = 0.0
    for j in range(count):
        q = idx[j]
        dx = points[q, 0] - mx
        dy = points[q, 1] - my
        dz = points[q, 2] - mz
        cxx += dx * dx
        cyy += dy * dy
        czz += dz * dz
        cxy += dx * dy
        cxz += dx * dz
        cyz += dy * dz
    inv = 1.0 / count
    cxx *= inv
    cyy *= inv
    czz *= inv
    cxy *= inv
    cxz *= inv
    cyz *= inv
    l0, l1, l2 = _sym_eigenvalues(cxx, cyy, czz, cxy, cxz, cyz)
    nx, ny, nz = _eigenvector_sym(cxx, cyy, czz, cxy, cxz, cyz, l0)
    if l2 <= 0.0 or (l1 - l0) < min_planarity * l2 or l0 > max_thickness_ratio * max_thickness_ratio * l1:
        return nx, ny, nz, False
    for j in range(count):
        q = idx[j]
        if abs(nx * (points[q, 0] - mx) + ny * (points[q, 1] - my) + nz * (points[q, 2] - mz)) >= max_thickness:
            return nx, ny, nz, False
    return nx, ny, nz, True


@njit(cache=True)
def pca_normal_covariance(points: np.ndarray, idx: np.ndarray, count: int, nx: float, ny: float, nz: float) -> tuple:
    """Covariance of the PCA normal (nx, ny, nz) of ``points[idx[:count]]`` as its six entries
    (xx, yy, zz, xy, xz, yz): the normal tilts towards in-plane direction e_m by about
    l0 / (count l_m), l0 the spread across the plane (noise and curvature), l_m along e_m. With the
    neighbourhood covariance C = l0 n n^T + l1 e1 e1^T + l2 e2 e2^T this is
    (adj(C) / (l1 l2) - n n^T) / count, which stays finite on a noise-free plane (l0 = 0)."""
    mx = my = mz = 0.0
    for j in range(count):
        q = idx[j]
        mx += points[q, 0]
        my += points[q, 1]
        mz += points[q, 2]
    mx /= count
    my /= count
    mz /= count
    c00 = c11 = c22 = c01 = c02 = c12 = 0.0
    for j in range(count):
        q = idx[j]
        dx = points[q, 0] - mx
        dy = points[q, 1] - my
        dz = points[q, 2] - mz
        c00 += dx * dx
        c11 += dy * dy
        c22 += dz * dz
        c01 += dx * dy
        c02 += dx * dz
        c12 += dy * dz
    c00 /= count
    c11 /= count
    c22 /= count
    c01 /= count
    c02 /= count
    c12 /= count
    l0, l1, l2 = _sym_eigenvalues(c00, c11, c22, c01, c02, c12)
    denominator = l1 * l2 * count
    if not denominator > 0.0:
        return 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    k = 1.0 / count
    s00 = (c11 * c22 - c12 * c12) / denominator - nx * nx * k
    s11 = (c00 * c22 - c02 * c02) / denominator - ny * ny * k
    s22 = (c00 * c11 - c01 * c01) / denominator - nz * nz * k
    s01 = (c02 * c12 - c01 * c22) / denominator - nx * ny * k
    s02 = (c01 * c12 - c02 * c11) / denominator - nx * nz * k
    s12 = (c01 * c02 - c00 * c12) / denominator - ny * nz * k
    return s00, s11, s22, s01, s02, s12


@njit(cache=True)
def pca_plane(neighbours: np.ndarray, max_thickness: float, min_planarity: float,
              max_thickness_ratio: float = PlaneParameters.max_thickness_ratio) -> tuple[np.ndarray, bool]:
    """Plane normal of (k, 3) points by PCA (see :func:`pca_plane_indexed`)."""
    idx = np.arange(neighbours.shape[0])
    nx, ny, nz, ok = pca_plane_indexed(neighbours, idx, neighbours.shape[0], max_thickness, min_planarity, max_thickness_ratio)
    return np.array([nx, ny, nz]), ok


@njit(cache=True)
def least_squares_plane(neighbours: np.ndarray, max_thickness: float) -> tuple[np.ndarray, float, bool]:
    """Reference plane fit: least squares [q_j^T] c = -1, n = c/|c|, d = 1/|c|.

    Solved by QR with column pivoting (modified Gram-Schmidt). Like the reference's
    column-pivoting QR, a rank-deficient system (e.g. points on a plane through the origin,
    which this parameterisation cannot represent) gets the basic solution with the
    undetermined coefficients set to zero. Rejected when |c| < 1e-6 or any
    |n^T q_j + d| >= max_thickness (m). Returns (n, d, ok) with the plane n^T x + d = 0.
    """
    k = neighbours.shape[0]
    # Q is stored transposed (one contiguous row per column of the system): numba's '@' on
    # strided column views is slow and warns (NumbaPerformanceWarning)
    Q = np.ascontiguousarray(neighbours.T)
    R = np.zeros((3, 3))
    perm = np.arange(3)
    rank = 0
    first_norm = 0.0
    for j in range(3):
        # pivot: the remaining column with the largest norm
        best, best_norm2 = j, -1.0
        for col in range(j, 3):
            n2 = Q[col] @ Q[col]
            if n2 > best_norm2:
                best, best_norm2 = col, n2
        if best != j:
            tmp = Q[j].copy()
            Q[j] = Q[best]
            Q[best] = tmp
            tmp_r = R[:, j].copy()
            R[:, j] = R[:, best]
            R[:, best] = tmp_r
            p = perm[j]
            perm[j] = perm[best]
            perm[best] = p
        norm = np.sqrt(max(best_norm2, 0.0))
        if j == 0:
            first_norm = norm
        if norm <= 3.0 * 2.220446049250313e-16 * first_norm or norm == 0.0:
            break
        R[j, j] = norm
        Q[j] /= norm
        for col in range(j + 1, 3):
            R[j, col] = Q[j] @ Q[col]
            Q[col] -= R[j, col] * Q[j]
        rank += 1
    if rank == 0:
        return np.zeros(3), 0.0, False
    rhs = np.zeros(3)
    for j in range(rank):
        rhs[j] = -Q[j].sum()
    y = np.zeros(3)
    for j in range(rank - 1, -1, -1):
        s = rhs[j]
        for i in range(j + 1, rank):
            s -= R[j, i] * y[i]
        y[j] = s / R[j, j]
    c = np.zeros(3)
    for j in range(3):
        c[perm[j]] = y[j]
    norm_c = np.sqrt(c @ c)
    if norm_c < 1e-6:
        return np.zeros(3), 0.0, False
    n = c / norm_c
    d = 1.0 / norm_c
    for j in range(k):
        if abs(n @ neighbours[j] + d) >= max_thickness:
            return n, d, False
    return n, d, True
