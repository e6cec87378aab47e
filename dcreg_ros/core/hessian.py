"""Gauss-Newton normal equations H delta = g of point-to-plane ICP (rotation first).

For source point p_i (source frame) under pose (R, t), with target-frame normal n_i and residual
r_i = n_i^T (R p_i + t) - (plane offset), the right-perturbation Jacobian is

    J_i = [ -n_i^T R [p_i]x ,  n_i^T R ] = [ (p_i x a_i)^T , a_i^T ],   a_i = R^T n_i.

Robust kernels:
- ``loam`` (the DCReg reference): w = max(0, 1 - 0.9 |r|), rejected when w <= 0.1; the Jacobian is
  scaled by d(w r)/dr = w - 0.9 |r| and b = -w r, so H = sum s^2 J^T J, g = sum s J^T b.
- ``none``, ``huber``, ``cauchy``, ``geman_mcclure``: iteratively reweighted least squares,
  H = sum w J^T J, g = -sum w J^T r, with the kernel scale in metres.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

KERNELS = ("none", "loam", "huber", "cauchy", "geman_mcclure")
KERNEL_CODES = {name: code for code, name in enumerate(KERNELS)}

_CHUNKS = 32


@njit(cache=True, inline="always")
def robust_weight(kernel: int, r: float, scale: float) -> float:
    """IRLS weight of residual r (m) for kernels other than ``loam`` (code 1)."""
    a = abs(r)
    if kernel == 2:  # huber
        return 1.0 if a <= scale else scale / a
    if kernel == 3:  # cauchy
        u = r / scale
        return 1.0 / (1.0 + u * u)
    if kernel == 4:  # geman_mcclure
        s2 = scale * scale
        q = s2 / (s2 + r * r)
        return q * q
    return 1.0


@njit(cache=True)
def _accumulate(lo, hi, source, R, normals, residuals, valid, kernel, scale, gate, H, g, stats):
    """Add correspondences lo..hi-1 to the upper triangle of H (6x6), to g (6) and to
    stats = (count, chi2, sum r^2). Serial; the parallel caller gives each chunk its own outputs."""
    J = np.empty(6)
    for i in range(lo, hi):
        if not valid[i]:
            continue
        r = residuals[i]
        if abs(r) > gate:
            valid[i] = False
            continue
        if kernel == 1:
            w = 1.0 - 0.9 * abs(r)
            if w <= 0.1:
                valid[i] = False
                continue
            s = w - 0.9 * abs(r)
            b = -w * r
            hw = s * s
            gw = s * b
            stats[1] += b * b
        else:
            w = robust_weight(kernel, r, scale)
            hw = w
            gw = -w * r
            stats[1] += w * r * r
        nx, ny, nz = normals[i, 0], normals[i, 1], normals[i, 2]
        ax = R[0, 0] * nx + R[1, 0] * ny + R[2, 0] * nz
        ay = R[0, 1] * nx + R[1, 1] * ny + R[2, 1] * nz
        az = R[0, 2] * nx + R[1, 2] * ny + R[2, 2] * nz
        px, py, pz = source[i, 0], source[i, 1], source[i, 2]
        J[0] = py * az - pz * ay
        J[1] = pz * ax - px * az
        J[2] = px * ay - py * ax
        J[3] = ax
        J[4] = ay
        J[5] = az
        for u in range(6):
            ju = hw * J[u]
            g[u] += gw * J[u]
            for v in range(u, 6):
                H[u, v] += ju * J[v]
        stats[0] += 1.0
        stats[2] += r * r


@njit(cache=True, parallel=True)
def assemble_normal_equations(source, R, normals, residuals, valid, kernel, scale, gate=np.inf):
    """Return (H 6x6, g 6, correspondences used, chi2 = sum of weighted squared residuals,
    sum of squared raw residuals over the used correspondences).

    Residuals beyond ``gate`` (m) are rejected; ``valid`` is updated in place so that rejected
    correspondences become False.
    """
    n = source.shape[0]
    chunk = (n + _CHUNKS - 1) // _CHUNKS
    H_parts = np.zeros((_CHUNKS, 6, 6))
    g_parts = np.zeros((_CHUNKS, 6))
    stats = np.zeros((_CHUNKS, 3))
    for c in prange(_CHUNKS):
        _accumulate(c * chunk, min(n, (c + 1) * chunk), source, R, normals, residuals, valid, kernel, scale, gate, H_parts[c], g_parts[c], stats[c])
    return _reduce(H_parts, g_parts, stats)


@njit(cache=True)
def _reduce(H_parts, g_parts, stats):
    # Kept out of the parallel function: there every array expression becomes its own
    # parallel region, and 100 tiny launches cost more than the whole assembly.
    H = H_parts.sum(axis=0)
    g = g_parts.sum(axis=0)
    total = stats.sum(axis=0)
    for u in range(6):
        for v in range(u + 1, 6):
            H[v, u] = H[u, v]
    return H, g, int(total[0]), total[1], total[2]
