"""Solve strategies for the Gauss-Newton system H delta = g (rotation first), selectable by name.

- ``none``: plain Gauss-Newton (direct solve).
- ``dcreg``: the reference DCReg update: targeted preconditioner from the Schur analysis + PCG.
  On a 6x6 SPD system PCG converges to the exact solution, so its step equals Gauss-Newton; the
  value of this strategy is the per-axis diagnosis that comes with it (method file section 4).
- ``dcreg_prior``: the MAP reading of the same preconditioner: a Gaussian prior Gamma on the
  degenerate directions only, centred on the initial guess (the motion prediction in odometry),
  and the step solves (H + Gamma) delta = g - Gamma e, with e the current deviation from the
  guess. When the caller knows the guess's covariance C (odometry, localization: a motion
  model's prediction) Gamma along a flagged direction v is the prediction's information
  sigma^2 / (v^T C v) (``prediction_information``: a Kalman update along v); otherwise
  (pairwise registration) the clamp lambda_max / kappa_target of the targeted preconditioner
  (``prior_information``).
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

from typing import NamedTuple

import numpy as np
from numba import njit

from .degeneracy import HessianAnalysis

STRATEGIES = ("none", "dcreg", "dcreg_prior", "solution_remapping", "tsvd", "tikhonov", "fcn_sr")
# numba reads module-level integers as compile-time constants: the dispatch below stays readable
NONE, DCREG, DCREG_PRIOR, SOLUTION_REMAPPING, TSVD, TIKHONOV, FCN_SR = range(len(STRATEGIES))
STRATEGY_CODES = {name: code for code, name in enumerate(STRATEGIES)}
_ABSOLUTE, _RELATIVE = 0, 1  # eigenvalue tests of the ME-* and FCN baselines


def strategy_code(name: str) -> int:
    """Integer code of a strategy name, with a helpful error for unknown names."""
    try:
        return STRATEGY_CODES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}") from None


class SolverParameters(NamedTuple):
    """Parameters of the solve strategies (see the module docstring; defaults in core/config.py)."""

    pcg_max_iterations: int
    pcg_tolerance: float
    eigen_threshold: float
    tikhonov_gamma: float
    fcn_kappa: float


class StepPrior(NamedTuple):
    """The motion prior of ``dcreg_prior`` for one Gauss-Newton step.

    ``offset``: the current estimate's deviation from the initial guess (rotation first, rad and
    m, body frame). ``covariance``: the initial guess's covariance (6x6, rotation first, rad^2 and
    m^2) and ``residual_variance``: sigma^2 of the point-to-plane residuals (m^2), used when
    ``physical`` is True; otherwise the prior is the kappa_target clamp.
    """

    offset: np.ndarray
    covariance: np.ndarray
    residual_variance: float
    physical: bool


class StepResult(NamedTuple):
    delta: np.ndarray  # (6,) rotation first
    pcg_iterations: int
    fell_back: bool  # a direct solve replaced the requested method


def no_prior() -> StepPrior:
    """The prior of a strategy that needs none (and of dcreg_prior centred on the current pose)."""
    return StepPrior(np.zeros(6), np.zeros((6, 6)), 0.0, False)


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
def prediction_information(analysis: HessianAnalysis, covariance: np.ndarray, residual_variance: float) -> np.ndarray:
    """Gamma along the flagged directions only: for each flagged axis with aligned eigenvector v
    (of S_R or S_t), sigma^2 / (v^T C v) v v^T, the prediction's information along v in the units
    of H (H is sum J^T J, the information times sigma^2). The step is then the Kalman/MAP update
    along v: the data wins where it knows more than the prediction, the prediction where it
    knows more; the well-constrained directions are the data's alone."""
    G = np.zeros((6, 6))
    for s in range(2):
        C = np.ascontiguousarray(covariance[3 * s: 3 * s + 3, 3 * s: 3 * s + 3])  # a slice: "@" wants contiguous
        for a in range(3):
            if not analysis.mask[3 * s + a]:
                continue
            v = analysis.bases[s][:, a].copy()
            variance = v @ (C @ v)
            if not (variance > 0.0) or not np.isfinite(variance):
                continue
            weight = residual_variance / variance
            for i in range(3):
                for j in range(3):
                    G[3 * s + i, 3 * s + j] += weight * v[i] * v[j]
    return G


@njit(cache=True)
def _eigen_projection(H: np.ndarray, test: int, eigen_threshold: float, fcn_kappa: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Eigen-decomposition of H and the keep-mask of its modes (absolute test of the ME-*
    baselines or relative test of FCN). Returns (values, vectors, keep, degenerate)."""
    vals, vecs = np.linalg.eigh(0.5 * (H + H.T))
    keep = np.ones(6, dtype=np.bool_)
    if test == _ABSOLUTE:
        for i in range(6):
            keep[i] = vals[i] >= eigen_threshold
    else:
        lmax = vals.max()
        if lmax / max(vals.min(), 1e-12) > fcn_kappa:
            for i in range(6):
                keep[i] = lmax / max(vals[i], 1e-12) <= fcn_kappa
    return vals, vecs, keep, not np.all(keep)


@njit(cache=True)
def _step(delta: np.ndarray, pcg_iterations: int = 0, fell_back: bool = False) -> StepResult:
    return StepResult(delta, pcg_iterations, fell_back)


@njit(cache=True)
def _dcreg_pcg(H, g, analysis, params) -> StepResult:
    if not analysis.ok:
        return _step(direct_solve(H, g), 0, True)
    P = targeted_preconditioner(analysis.bases, analysis.clamped)
    x, iters, converged = pcg_solve(H, g, P, params.pcg_max_iterations, params.pcg_tolerance)
    if not converged:
        return _step(direct_solve(H, g), iters, True)
    return _step(x, iters)


@njit(cache=True)
def _dcreg_prior(H, g, analysis, prior) -> StepResult:
    if not analysis.ok:
        return _step(direct_solve(H, g), 0, True)
    if prior.physical:
        G = prediction_information(analysis, prior.covariance, prior.residual_variance)
    else:
        G = prior_information(analysis.bases, analysis.aligned, analysis.clamped)
    return _step(direct_solve(H + G, g - G @ prior.offset))


@njit(cache=True)
def _truncated(H, g, params) -> StepResult:
    vals, vecs, keep, _ = _eigen_projection(H, _ABSOLUTE, params.eigen_threshold, params.fcn_kappa)
    coeff = np.zeros(6)
    proj_g = vecs.T @ g
    for i in range(6):
        if keep[i]:
            coeff[i] = proj_g[i] / vals[i]
    return _step(vecs @ coeff)


@njit(cache=True)
def _tikhonov(H, g, params) -> StepResult:
    _, _, _, degenerate = _eigen_projection(H, _ABSOLUTE, params.eigen_threshold, params.fcn_kappa)
    if degenerate:
        return _step(direct_solve(H + params.tikhonov_gamma * np.eye(6), g))
    return _step(direct_solve(H, g))


@njit(cache=True)
def _remapped(H, g, test, params) -> StepResult:
    """Project the Gauss-Newton step onto the kept eigenvectors (ME-SR, FCN-SR)."""
    _, vecs, keep, degenerate = _eigen_projection(H, test, params.eigen_threshold, params.fcn_kappa)
    step = direct_solve(H, g)
    if degenerate:
        step = ((vecs * keep.astype(np.float64)) @ vecs.T) @ step
    return _step(step)


@njit(cache=True)
def solve_step(H: np.ndarray, g: np.ndarray, strategy: int, analysis: HessianAnalysis, params: SolverParameters,
               prior: StepPrior) -> StepResult:
    """One mitigated Gauss-Newton step of ``strategy`` (a module constant: NONE, DCREG, ...)."""
    if strategy == DCREG:
        return _dcreg_pcg(H, g, analysis, params)
    if strategy == DCREG_PRIOR:
        return _dcreg_prior(H, g, analysis, prior)
    if strategy == TSVD:
        return _truncated(H, g, params)
    if strategy == TIKHONOV:
        return _tikhonov(H, g, params)
    if strategy == SOLUTION_REMAPPING:
        return _remapped(H, g, _ABSOLUTE, params)
    if strategy == FCN_SR:
        return _remapped(H, g, _RELATIVE, params)
    return _step(direct_solve(H, g))
