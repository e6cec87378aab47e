"""Solve strategies for the Gauss-Newton system H delta = g (rotation first), selectable by name.

- ``none``: plain Gauss-Newton (direct solve).
- ``dcreg``: the reference DCReg update: targeted preconditioner from the Schur analysis + PCG.
  On a 6x6 SPD system PCG converges to the exact solution, so its step equals Gauss-Newton; the
  value of this strategy is the per-axis diagnosis that comes with it (method file section 4).
- ``dcreg_prior``: the MAP reading of the same preconditioner: the clamped eigenvalues define a
  Gaussian prior Gamma on the degenerate directions only, centred on the initial guess, and the
  step solves (H + Gamma) delta = g - Gamma e, with e the current deviation from the guess.
- ``solution_remapping`` (ME-SR, Zhang et al. 2016): eigenvalues of H below an absolute
  threshold are degenerate; the Gauss-Newton step is projected onto the well-constrained
  eigenvectors (recomputed every iteration, which reproduces the paper's ME-SR cylinder result).
- ``tsvd`` (ME-TSVD): same detection; the system is solved with the degenerate modes truncated.
  For a symmetric H this equals the remapped step up to rounding; the paper's different ME-TSVD
  number is not reproduced (see docs/ALGORITHM.md).
- ``tikhonov`` (ME-TReg): when degenerate, solve (H + gamma I) delta = g.
- ``fcn_sr`` (Hinduja et al. 2019): when kappa_full exceeds its threshold, remap away the modes
  whose lambda_max / lambda_i exceeds it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

STRATEGIES = ("none", "dcreg", "dcreg_prior", "solution_remapping", "tsvd", "tikhonov", "fcn_sr")
STRATEGY_CODES = {name: code for code, name in enumerate(STRATEGIES)}


def strategy_code(name: str) -> int:
    """Integer code of a strategy name, with a helpful error for unknown names."""
    try:
        return STRATEGY_CODES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}") from None


@dataclass(frozen=True)
class SolverParameters:
    """Parameters of the solve strategies (see the module docstring)."""

    pcg_max_iterations: int = 10
    pcg_tolerance: float = 1e-6
    eigen_threshold: float = 120.0
    tikhonov_gamma: float = 100.0
    fcn_kappa: float = 10.0

    def as_array(self) -> np.ndarray:
        return np.array(
            [self.pcg_max_iterations, self.pcg_tolerance, self.eigen_threshold, self.tikhonov_gamma, self.fcn_kappa],
            dtype=np.float64,
        )


@njit(cache=True)
def direct_solve(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """H^-1 g by LU; least squares when H is singular or the LU result is not finite."""
    try:
        x = np.linalg.solve(H, g)
        if np.all(np.isfinite(x)):
            return x
    except Exception:  # noqa: BLE001 - numba raises a generic LinAlgError for singular H
        pass
    return np.linalg.lstsq(H, g)[0]


@njit(cache=True)
def targeted_preconditioner(bases: np.ndarray, clamped: np.ndarray) -> np.ndarray:
    """P = blockdiag(V_R diag(1/lambda~_R) V_R^T, V_t diag(1/lambda~_t) V_t^T) (method eq. 43-44)."""
    P = np.zeros((6, 6))
    for s in range(2):
        V = bases[s]
        inv = np.empty(3)
        for a in range(3):
            inv[a] = 1.0 / max(clamped[3 * s + a], 1e-9)
        block = (V * inv) @ V.T
        P[3 * s: 3 * s + 3, 3 * s: 3 * s + 3] = block
    return P


@njit(cache=True)
def pcg_solve(H: np.ndarray, g: np.ndarray, P: np.ndarray, max_iterations: int, tolerance: float) -> tuple[np.ndarray, int, bool]:
    """Preconditioned conjugate gradient for H x = g with left preconditioner P, x0 = 0.

    Returns (x, iterations, converged). Not converged means the caller should fall back to a
    direct solve (non-finite P r, vanishing r^T z or p^T H p, or the iteration limit).
    """
    x = np.zeros(6)
    g_norm = np.sqrt(g @ g)
    if g_norm < 1e-12:
        return x, 0, True
    r = g.copy()
    z = P @ r
    if not np.all(np.isfinite(z)):
        return x, 0, False
    p = z.copy()
    rz = r @ z
    if abs(rz) < 1e-20:
        return x, 0, False
    stop = tolerance * max(1.0, g_norm)
    for it in range(1, max_iterations + 1):
        Hp = H @ p
        pHp = p @ Hp
        if not (abs(pHp) > 1e-30) or not np.isfinite(pHp):
            return x, it, False
        alpha = rz / pHp
        x += alpha * p
        r -= alpha * Hp
        if np.sqrt(r @ r) <= stop:
            return x, it, True
        z = P @ r
        if not np.all(np.isfinite(z)):
            return x, it, False
        rz_new = r @ z
        if abs(rz_new) < 1e-20:
            return x, it, False
        p = z + (rz_new / rz) * p
        rz = rz_new
    return x, max_iterations, False


@njit(cache=True)
def prior_information(bases: np.ndarray, aligned: np.ndarray, clamped: np.ndarray) -> np.ndarray:
    """Gamma = blockdiag(V (lambda~ - lambda) V^T): nonzero only along degenerate directions."""
    G = np.zeros((6, 6))
    for s in range(2):
        V = bases[s]
        d = np.empty(3)
        for a in range(3):
            d[a] = max(clamped[3 * s + a] - aligned[3 * s + a], 0.0)
        G[3 * s: 3 * s + 3, 3 * s: 3 * s + 3] = (V * d) @ V.T
    return G


@njit(cache=True)
def _eigen_projection(H: np.ndarray, mode: int, eigen_threshold: float, fcn_kappa: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Eigen-decomposition of H and the keep-mask of its modes.

    mode 0: absolute threshold (ME-*), mode 1: relative (FCN). Returns (values, vectors, keep, degenerate).
    """
    vals, vecs = np.linalg.eigh(0.5 * (H + H.T))
    keep = np.ones(6, dtype=np.bool_)
    if mode == 0:
        for i in range(6):
            keep[i] = vals[i] >= eigen_threshold
    else:
        lmax = vals.max()
        if lmax / max(vals.min(), 1e-12) > fcn_kappa:
            for i in range(6):
                keep[i] = lmax / max(vals[i], 1e-12) <= fcn_kappa
    return vals, vecs, keep, not np.all(keep)


@njit(cache=True)
def solve_step(
    H: np.ndarray,
    g: np.ndarray,
    strategy: int,
    analysis_ok: bool,
    bases: np.ndarray,
    aligned: np.ndarray,
    clamped: np.ndarray,
    params: np.ndarray,
    prior_offset: np.ndarray,
) -> tuple[np.ndarray, int, bool]:
    """One mitigated Gauss-Newton step: (delta, PCG iterations, fell back to a direct solve).

    ``prior_offset`` is the current deviation from the initial guess (dcreg_prior only).
    """
    pcg_max = int(params[0])
    pcg_tol = params[1]
    eigen_threshold = params[2]
    gamma = params[3]
    fcn_kappa = params[4]
    if strategy == 0:
        return direct_solve(H, g), 0, False
    if strategy == 1:
        if not analysis_ok:
            return direct_solve(H, g), 0, True
        P = targeted_preconditioner(bases, clamped)
        x, iters, converged = pcg_solve(H, g, P, pcg_max, pcg_tol)
        if not converged:
            return direct_solve(H, g), iters, True
        return x, iters, False
    if strategy == 2:
        if not analysis_ok:
            return direct_solve(H, g), 0, True
        G = prior_information(bases, aligned, clamped)
        return direct_solve(H + G, g - G @ prior_offset), 0, False
    if strategy == 4:
        vals, vecs, keep, _ = _eigen_projection(H, 0, eigen_threshold, fcn_kappa)
        coeff = np.zeros(6)
        proj_g = vecs.T @ g
        for i in range(6):
            if keep[i]:
                coeff[i] = proj_g[i] / vals[i]
        return vecs @ coeff, 0, False
    if strategy == 5:
        vals, vecs, keep, degenerate = _eigen_projection(H, 0, eigen_threshold, fcn_kappa)
        if degenerate:
            return direct_solve(H + gamma * np.eye(6), g), 0, False
        return direct_solve(H, g), 0, False
    # solution_remapping (3) and fcn_sr (6): project the Gauss-Newton step
    vals, vecs, keep, degenerate = _eigen_projection(H, 0 if strategy == 3 else 1, eigen_threshold, fcn_kappa)
    step = direct_solve(H, g)
    if degenerate:
        step = ((vecs * keep.astype(np.float64)) @ vecs.T) @ step
    return step, 0, False
