"""What one registration really knows: an honest covariance of the LiDAR's own pose estimate.

``sigma^2 H^-1`` assumes every point-to-plane residual is an independent measurement. It is not:
the points matched into one patch of the map share that patch's plane (its position and normal
are estimates, from scans registered at slightly wrong poses), so their errors move together and
a plane's information saturates however many points lie on it; noisy normals on long walls or
the ground give every point a small component along directions the surface does not constrain,
which adds up to information that is not there; and the scan was deskewed with a motion that is
itself uncertain. Measured on the simulator, ``sigma^2 H^-1`` is 2-50x too confident on
well-constrained axes and up to 2500x along a corridor (docs/ALGORITHM.md).

:func:`measurement_statistics` gathers, from the final linearisation of a registration:

- ``H``: sum w J^T J (rotation first), as the Gauss-Newton loop builds it;
- ``M``: the cluster-robust "meat" sum_c g_c g_c^T with g_c = sum_{i in c} w_i r_i J_i over the
  points of each ``cell`` cube of the map (a patch shares one plane): the covariance of the
  estimate is then H^-1 M H^-1 (the sandwich estimator), from the actual residuals, so an error
  shared by a patch's points counts once per patch, not once per point;
- ``B``: sum w Cov(J), the information the noise of the map's normals adds on average (errors in
  variables; each normal's covariance comes from its PCA neighbourhood, core/planes.py);
- ``D1``, ``D2``: sum w u J^T J and sum w u^2 J^T J over the points' sweep times u (in frame
  intervals, 0 at the registration's reference time, the middle of the sweep): how a velocity
  error of the deskewing (D1) or an acceleration within the sweep (D2) moves the estimate.

:func:`lidar_uncertainty` turns them into the covariance and the absolute weakness test.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from .hessian import robust_weight
from .voxel_hash import point_key


class MeasurementStatistics(NamedTuple):
    """Sums over the inlier correspondences of one linearisation (see the module docstring)."""

    H: np.ndarray
    M: np.ndarray
    D1: np.ndarray
    D2: np.ndarray
    count: int
    clusters: int
    chi2: float  # sum w r^2 over the inliers
    B: np.ndarray  # sum w Cov(J): what the noise of the map's normals adds to H on average (errors in variables)


@njit(cache=True)
def _statistics(source, fractions, R, t, normals, residuals, valid, kernel, scale, gate, inv_cell, slots, normal_cov, timed):
    n = source.shape[0]
    keys = np.empty(n, dtype=np.int64)
    weights = np.zeros(n)
    rows = np.zeros((n, 6))
    count = 0
    for i in range(n):
        keys[i] = -1
        if not valid[i]:
            continue
        r = residuals[i]
        if abs(r) > gate:
            continue
        if kernel == 1:  # loam: the weight of its scaled Jacobian
            w = 1.0 - 0.9 * abs(r)
            if w <= 0.1:
                continue
            w = (w - 0.9 * abs(r)) ** 2
        else:
            w = robust_weight(kernel, r, scale)
        nx, ny, nz = normals[i, 0], normals[i, 1], normals[i, 2]
        ax = R[0, 0] * nx + R[1, 0] * ny + R[2, 0] * nz
        ay = R[0, 1] * nx + R[1, 1] * ny + R[2, 1] * nz
        az = R[0, 2] * nx + R[1, 2] * ny + R[2, 2] * nz
        px, py, pz = source[i, 0], source[i, 1], source[i, 2]
        rows[i, 0] = py * az - pz * ay
        rows[i, 1] = pz * ax - px * az
        rows[i, 2] = px * ay - py * ax
        rows[i, 3] = ax
        rows[i, 4] = ay
        rows[i, 5] = az
        weights[i] = w
        wx = R[0, 0] * px + R[0, 1] * py + R[0, 2] * pz + t[0]
        wy = R[1, 0] * px + R[1, 1] * py + R[1, 2] * pz + t[1]
        wz = R[2, 0] * px + R[2, 1] * py + R[2, 2] * pz + t[2]
        keys[i] = point_key(wx, wy, wz, inv_cell)
        count += 1
    H = np.zeros((6, 6))
    B = np.zeros((6, 6))
    D1 = np.zeros((6, 6))
    D2 = np.zeros((6, 6))
    M = np.zeros((6, 6))
    order = np.argsort(keys)
    g = np.zeros(6)
    C = np.zeros((6, 3))  # per point: [[p]x; I] Sa, the rows of Cov(J) before the right factor
    current = np.int64(-1)
    clusters = 0
    chi2 = 0.0
    for k in range(n):
        i = order[k]
        if keys[i] < 0:
            continue
        if keys[i] != current:
            for u in range(6):
                for v in range(u, 6):
                    M[u, v] += g[u] * g[v]
            g[:] = 0.0
            current = keys[i]
            clusters += 1
        w = weights[i]
        chi2 += w * residuals[i] * residuals[i]
        j = slots[i]
        if j >= 0:  # E[J J^T] = J_true J_true^T + Cov(J): the normal's noise adds information on average
            c = normal_cov[j]
            # Sa = R^T Sn R: the normal's covariance in the body frame, where J lives (scalar code: no allocation)
            s00, s11, s22, s01, s02, s12 = c[0], c[1], c[2], c[3], c[4], c[5]
            # T = Sn R (3x3), then Sa = R^T T
            t00 = s00 * R[0, 0] + s01 * R[1, 0] + s02 * R[2, 0]
            t01 = s00 * R[0, 1] + s01 * R[1, 1] + s02 * R[2, 1]
            t02 = s00 * R[0, 2] + s01 * R[1, 2] + s02 * R[2, 2]
            t10 = s01 * R[0, 0] + s11 * R[1, 0] + s12 * R[2, 0]
            t11 = s01 * R[0, 1] + s11 * R[1, 1] + s12 * R[2, 1]
            t12 = s01 * R[0, 2] + s11 * R[1, 2] + s12 * R[2, 2]
            t20 = s02 * R[0, 0] + s12 * R[1, 0] + s22 * R[2, 0]
            t21 = s02 * R[0, 1] + s12 * R[1, 1] + s22 * R[2, 1]
            t22 = s02 * R[0, 2] + s12 * R[1, 2] + s22 * R[2, 2]
            a00 = R[0, 0] * t00 + R[1, 0] * t10 + R[2, 0] * t20
            a01 = R[0, 0] * t01 + R[1, 0] * t11 + R[2, 0] * t21
            a02 = R[0, 0] * t02 + R[1, 0] * t12 + R[2, 0] * t22
            a11 = R[0, 1] * t01 + R[1, 1] * t11 + R[2, 1] * t21
            a12 = R[0, 1] * t02 + R[1, 1] * t12 + R[2, 1] * t22
            a22 = R[0, 2] * t02 + R[1, 2] * t12 + R[2, 2] * t22
            px, py, pz = source[i, 0], source[i, 1], source[i, 2]
            # rows of [p]x Sa, then Sa itself: C = G Sa with G = [[p]x; I]
            C[0, 0] = -pz * a01 + py * a02
            C[0, 1] = -pz * a11 + py * a12
            C[0, 2] = -pz * a12 + py * a22
            C[1, 0] = pz * a00 - px * a02
            C[1, 1] = pz * a01 - px * a12
            C[1, 2] = pz * a02 - px * a22
            C[2, 0] = -py * a00 + px * a01
            C[2, 1] = -py * a01 + px * a11
            C[2, 2] = -py * a02 + px * a12
            C[3, 0], C[3, 1], C[3, 2] = a00, a01, a02
            C[4, 0], C[4, 1], C[4, 2] = a01, a11, a12
            C[5, 0], C[5, 1], C[5, 2] = a02, a12, a22
            # B += w C G^T: column v of G^T is row v of G
            for u in range(6):
                B[u, 0] += w * (-pz * C[u, 1] + py * C[u, 2])
                B[u, 1] += w * (pz * C[u, 0] - px * C[u, 2])
                B[u, 2] += w * (-py * C[u, 0] + px * C[u, 1])
                B[u, 3] += w * C[u, 0]
                B[u, 4] += w * C[u, 1]
                B[u, 5] += w * C[u, 2]
        u_frac = fractions[i]
        q = u_frac * u_frac
        for a in range(6):
            g[a] += w * residuals[i] * rows[i, a]
            for b in range(a, 6):
                h = w * rows[i, a] * rows[i, b]
                H[a, b] += h
                if timed:
                    D1[a, b] += u_frac * h
                    D2[a, b] += q * h
    for u in range(6):
        for v in range(u, 6):
            M[u, v] += g[u] * g[v]
    for u in range(6):
        for v in range(u + 1, 6):
            H[v, u] = H[u, v]
            M[v, u] = M[u, v]
            D1[v, u] = D1[u, v]
            D2[v, u] = D2[u, v]
    return H, M, D1, D2, count, clusters, chi2, 0.5 * (B + B.T)


def measurement_statistics(source: np.ndarray, fractions: np.ndarray | None, T: np.ndarray, normals: np.ndarray,
                           residuals: np.ndarray, valid: np.ndarray, kernel: int, scale: float, gate: float,
                           cell: float, slots: np.ndarray, normal_cov: np.ndarray) -> MeasurementStatistics:
    """The sums of the module docstring for correspondences found at pose ``T`` (4x4) of
    ``source`` (N, 3, source frame); ``fractions``: each point's sweep fraction relative to the
    reference time (-1/2..1/2), or None (no per-point times: no distortion terms); ``slots``:
    the map slot of each match (-1: none) and ``normal_cov`` the map's normal covariances."""
    u = np.zeros(len(source)) if fractions is None else np.ascontiguousarray(fractions, dtype=np.float64)
    out = _statistics(np.ascontiguousarray(source, dtype=np.float64), u, np.ascontiguousarray(T[:3, :3]),
                      np.ascontiguousarray(T[:3, 3]), normals, residuals, valid, kernel, scale, gate, 1.0 / cell,
                      np.ascontiguousarray(slots, dtype=np.int64), normal_cov, fractions is not None)
    return MeasurementStatistics(*out)


UNOBSERVED_VARIANCE = 1.0  # rad^2 / m^2: a direction the LiDAR does not see at all: far beyond any per-frame prediction (a larger value leaks into the axes a slightly tilted null direction touches)


class LidarUncertainty(NamedTuple):
    """The LiDAR's covariance of its own pose estimate (6x6, rotation first, rad^2 / m^2, body
    frame; geometry and deskewing), the standard deviation per axis of its geometric
    part (rad, then m) and the axes that part leaves weak by the absolute test."""

    covariance: np.ndarray
    geometric_std: np.ndarray
    absolute_weak: np.ndarray


def lidar_uncertainty(stats: MeasurementStatistics, deskew_covariance: np.ndarray, acceleration_covariance: np.ndarray,
                      dt: float, max_std_rotation: float, max_std_translation: float) -> LidarUncertainty:
    """The honest covariance of a registration's own pose estimate:

    - geometry: the cluster-robust sandwich H_d^+ M H_d^+ with H_d = H - B, the information left
      once the average contribution of the map's normal noise (B) is taken out (noisy normals on
      a long wall or the ground otherwise fake information along it); directions H_d leaves
      empty get ``UNOBSERVED_VARIANCE``;
    - deskewing: A1 C_e A1^T for the error C_e (``deskew_covariance``) of the motion the scan was
      deskewed with, and A2 Q A2^T for the sweep's departure from constant velocity,
      e2 = a dt^2 / 2 with Q = ``acceleration_covariance`` of a (rotation first, (rad/s^2)^2, (m/s^2)^2).

    The absolute test flags an axis whose geometric standard deviation exceeds
    ``max_std_rotation`` (rad) or ``max_std_translation`` (m): weak in physical units, whatever the
    other axes (the relative Schur test misses an open field, where nothing is weak *relative*
    to the rest).
    """
    H_d = 0.5 * ((stats.H - stats.B) + (stats.H - stats.B).T)
    vals, vecs = np.linalg.eigh(H_d)
    top = max(float(vals.max()), 1e-300)
    seen = vals > top * 1e-9
    H_inv = (vecs[:, seen] / vals[seen]) @ vecs[:, seen].T
    unseen = vecs[:, ~seen]
    geometric = H_inv @ stats.M @ H_inv + UNOBSERVED_VARIANCE * (unseen @ unseen.T)
    A1, A2 = H_inv @ stats.D1, H_inv @ stats.D2
    deskewing = A1 @ deskew_covariance @ A1.T + A2 @ (acceleration_covariance * (0.5 * dt * dt) ** 2) @ A2.T
    geometric = 0.5 * (geometric + geometric.T)
    covariance = geometric + 0.5 * (deskewing + deskewing.T)
    std = np.sqrt(np.clip(np.diag(geometric), 0.0, None))
    limits = np.array([max_std_rotation] * 3 + [max_std_translation] * 3)
    return LidarUncertainty(covariance, std, std > limits)
