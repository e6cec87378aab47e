"""The DCReg registration loop: point-to-plane Gauss-Newton with degeneracy-aware steps.

``register(source, target)`` is the pairwise entry point; ``align`` runs the loop against an
already built :class:`VoxelMap` (the odometry pipeline calls it with its local map).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .config import RegistrationConfig
from .correspondences import find_correspondences
from .degeneracy import DegeneracyReport, analyze_hessian_arrays
from .geometry import apply_right_perturbation, is_valid_pose, so3_log
from .hessian import KERNEL_CODES, assemble_normal_equations
from .pointcloud import InputError, crop_range, sanitize_points
from .solvers import STRATEGY_CODES, solve_step, strategy_code
from .voxel_hash import voxel_downsample
from .voxel_map import PlaneParameters, VoxelMap

TIMING_KEYS = ("preprocess", "correspondence", "hessian", "detection", "solve")


@dataclass
class RegistrationResult:
    """Outcome of one registration.

    ``T_target_source`` (4x4) maps source points into the target frame, p_t = R p_s + t (m).
    ``covariance`` (6x6, rotation first, rad^2 / m^2) is sigma^2 H^-1 of the final system,
    expressed in the right-perturbation (source/body) frame; ``timings`` are milliseconds.
    """

    T_target_source: np.ndarray
    converged: bool
    status: str
    iterations: int
    rmse: float
    fitness: float
    num_correspondences: int
    covariance: np.ndarray
    hessian: np.ndarray
    degeneracy_first: DegeneracyReport | None
    degeneracy_last: DegeneracyReport | None
    strategy: str
    pcg_iterations: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the loop ran on enough correspondences (converged or hit the limit)."""
        return self.status in ("converged", "max_iterations")

    def to_dict(self) -> dict:
        """JSON-friendly dictionary (the CLI's --json output)."""

        def report(r: DegeneracyReport | None) -> dict | None:
            return None if r is None else r.to_dict()

        return {
            "T_target_source": self.T_target_source.tolist(),
            "converged": self.converged,
            "status": self.status,
            "iterations": self.iterations,
            "rmse": _finite(self.rmse),
            "fitness": _finite(self.fitness),
            "num_correspondences": self.num_correspondences,
            "covariance": [[_finite(v) for v in row] for row in self.covariance],
            "degeneracy_first": report(self.degeneracy_first),
            "degeneracy_last": report(self.degeneracy_last),
            "strategy": self.strategy,
            "pcg_iterations": self.pcg_iterations,
            "timings_ms": {k: round(v, 4) for k, v in self.timings.items()},
        }


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def covariance_from_hessian(H: np.ndarray, chi2: float, count: int) -> np.ndarray:
    """sigma^2 H^-1 with sigma^2 = chi2 / (count - 6); weak directions get a large but finite variance."""
    sigma2 = chi2 / max(count - 6, 1)
    vals, vecs = np.linalg.eigh(0.5 * (H + H.T))
    if not np.all(np.isfinite(vals)) or vals.max() <= 0:
        return np.eye(6) * 1e6
    floor = vals.max() * 1e-12
    inv = 1.0 / np.maximum(vals, floor)
    return sigma2 * (vecs * inv) @ vecs.T


def _deviation(T: np.ndarray, T0: np.ndarray) -> np.ndarray:
    """Rotation-first tangent deviation of T from the initial guess (for the prior strategy)."""
    out = np.empty(6)
    out[:3] = so3_log(np.ascontiguousarray(T0[:3, :3].T @ T[:3, :3]))
    out[3:] = T[:3, :3].T @ (T[:3, 3] - T0[:3, 3])
    return out


def _limit_step(delta: np.ndarray, max_rotation: float, max_translation: float) -> np.ndarray:
    """Scale a step down to the trust region (0 = unlimited): an ill-posed system (e.g. plain
    Gauss-Newton along an unobservable axis) can otherwise jump kilometres in one iteration."""
    scale = 1.0
    if max_rotation > 0:
        scale = min(scale, max_rotation / max(np.linalg.norm(delta[:3]), 1e-300))
    if max_translation > 0:
        scale = min(scale, max_translation / max(np.linalg.norm(delta[3:]), 1e-300))
    return delta * scale if scale < 1.0 else delta


def _revisits(T: np.ndarray, recent: list[np.ndarray], rot_tol: float, trans_tol: float) -> bool:
    """True when T is within tolerance of one of the poses before the previous one (a cycle)."""
    for P in recent[:-1]:
        if np.linalg.norm(T[:3, 3] - P[:3, 3]) < trans_tol:
            cos_angle = 0.5 * (np.trace(P[:3, :3].T @ T[:3, :3]) - 1.0)
            if np.arccos(min(1.0, max(-1.0, cos_angle))) < rot_tol:
                return True
    return False


def coarse_to_fine_sets(source: np.ndarray, fraction: float, min_points: int = 2000) -> list[np.ndarray]:
    """[every k-th point, all points] when a fraction of the source suffices to converge first;
    the evenly spaced subset keeps the spatial spread of the (voxel-ordered) cloud."""
    if not 0.0 < fraction < 1.0 or len(source) * fraction < min_points:
        return [source]
    step = max(2, int(round(1.0 / fraction)))
    return [np.ascontiguousarray(source[::step]), source]


def align(
    source: np.ndarray,
    target: VoxelMap,
    init: np.ndarray,
    config: RegistrationConfig,
    strategy: str | None = None,
    max_distance: float | None = None,
    kernel_scale: float | None = None,
) -> RegistrationResult:
    """Register prepared source points (N, 3, source frame) to a target map.

    ``max_distance`` and ``kernel_scale`` override the config (the odometry pipeline passes its
    adaptive threshold); the strategy defaults to ``config.degeneracy.strategy``.
    """
    strategy = strategy or config.degeneracy.strategy
    code = strategy_code(strategy)
    cc, dc, conv = config.correspondence, config.degeneracy, config.convergence
    max_distance = cc.max_distance if max_distance is None else max_distance
    scale = config.robust.scale if kernel_scale is None else kernel_scale
    rc = config.robust
    kernel = KERNEL_CODES[rc.kernel]
    adaptive = rc.adaptive_scale and kernel_scale is None
    params = dc.solver_parameters().as_array()
    source = np.ascontiguousarray(source, dtype=np.float64)
    T = np.array(init, dtype=np.float64)
    T0 = T.copy()
    timings = dict.fromkeys(TIMING_KEYS, 0.0)
    first = last = None
    H = np.zeros((6, 6))
    chi2, count, r2sum = 0.0, 0, 0.0
    status, converged, iterations, pcg_total = "max_iterations", False, 0, 0
    zero_offset = np.zeros(6)
    small = 0
    recent: list[np.ndarray] = []
    stages = coarse_to_fine_sets(source, conv.coarse_fraction)
    stage = 0
    points = stages[0]
    for it in range(conv.max_iterations):
        t0 = time.perf_counter()
        normals, residuals, valid = find_correspondences(points, T, target, cc.method, max_distance, cc.knn, cc.max_plane_thickness)
        t1 = time.perf_counter()
        R = np.ascontiguousarray(T[:3, :3])
        scale_it, gate_it = scale, np.inf
        if it > 0 and count > 0:
            prev_rmse = np.sqrt(r2sum / count)
            if adaptive:
                scale_it = max(scale, 2.0 * prev_rmse)
            if rc.gate_factor > 0:
                gate_it = max(rc.min_gate, rc.gate_factor * prev_rmse)
        elif adaptive:
            scale_it = max(scale, max_distance / 3.0)
        H_it, g, count_it, chi2_it, r2_it = assemble_normal_equations(points, R, normals, residuals, valid, kernel, scale_it, gate_it)
        t2 = time.perf_counter()
        timings["correspondence"] += (t1 - t0) * 1e3
        timings["hessian"] += (t2 - t1) * 1e3
        if count_it < conv.min_correspondences:
            status = "too_few_correspondences"
            if it == 0:
                count, chi2, r2sum = count_it, chi2_it, r2_it
            break
        H, chi2, count, r2sum = H_it, chi2_it, count_it, r2_it
        analysis = analyze_hessian_arrays(H, dc.threshold, dc.kappa_target)
        t3 = time.perf_counter()
        mitigate = dc.handling == "every_iteration" or it == 0
        step_code = code if mitigate else 0
        offset = _deviation(T, T0) if step_code == STRATEGY_CODES["dcreg_prior"] else zero_offset
        delta, pcg_it, _ = solve_step(H, g, step_code, analysis[0], analysis[6], analysis[5], analysis[8], params, offset)
        t4 = time.perf_counter()
        timings["detection"] += (t3 - t2) * 1e3
        timings["solve"] += (t4 - t3) * 1e3
        pcg_total += pcg_it
        iterations = it + 1
        if it == 0:
            first = analysis
        last = analysis
        if not np.all(np.isfinite(delta)):
            status = "numerical_failure"
            break
        delta = _limit_step(delta, conv.max_step_rotation, conv.max_step_translation)
        T = apply_right_perturbation(T, delta)
        step_r, step_t = np.linalg.norm(delta[:3]), np.linalg.norm(delta[3:])
        # Correspondence switching can leave a limit cycle of steps just above the tolerance:
        # several consecutive small steps, or a return to a recent pose, count as converged too.
        small = small + 1 if (step_r < 10 * conv.rotation_tolerance and step_t < 10 * conv.translation_tolerance) else 0
        cycled = _revisits(T, recent, 10 * conv.rotation_tolerance, 10 * conv.translation_tolerance)
        recent = (recent + [T])[-6:]
        stalled = conv.stop_on_stall and (small >= 3 or cycled)
        if (step_r < conv.rotation_tolerance and step_t < conv.translation_tolerance) or stalled:
            if stage + 1 < len(stages):  # the subset has converged: refine with every point
                stage, small, recent = stage + 1, 0, []
                points = stages[stage]
                continue
            status, converged = "converged", True
            break
    rmse = float(np.sqrt(r2sum / count)) if count > 0 else float("nan")
    covariance = covariance_from_hessian(H, chi2, count) if count >= 6 else np.eye(6) * 1e6
    return RegistrationResult(
        T_target_source=T,
        converged=converged,
        status=status,
        iterations=iterations,
        rmse=rmse,
        fitness=count / max(len(points), 1),
        num_correspondences=int(count),
        covariance=covariance,
        hessian=H,
        degeneracy_first=None if first is None else DegeneracyReport.from_arrays(first, dc.threshold),
        degeneracy_last=None if last is None else DegeneracyReport.from_arrays(last, dc.threshold),
        strategy=strategy,
        pcg_iterations=pcg_total,
        timings=timings,
    )


def build_target_map(points: np.ndarray, config: RegistrationConfig) -> VoxelMap:
    """Downsample a target cloud into a voxel map (voxel edge = max correspondence distance)."""
    cc = config.correspondence
    target = voxel_downsample(points, config.preprocess.target_voxel_size)
    return VoxelMap.from_points(target, cc.max_distance, cc.max_points_per_voxel, plane_parameters(config))


def plane_parameters(config: RegistrationConfig) -> PlaneParameters:
    """PCA plane settings of the target map from the correspondence config."""
    cc = config.correspondence
    return PlaneParameters(cc.normal_neighbors, cc.max_distance, cc.max_plane_thickness, cc.min_planarity)


def register(
    source: np.ndarray,
    target: np.ndarray,
    init: np.ndarray | None = None,
    strategy: str | None = None,
    config: RegistrationConfig | None = None,
) -> RegistrationResult:
    """Register ``source`` (N, 3) onto ``target`` (M, 3), both in metres.

    ``init`` is the initial guess of T_target_source (4x4, identity by default); ``strategy``
    is one of :data:`dcreg_ros.core.solvers.STRATEGIES` (default ``config.degeneracy.strategy``,
    i.e. ``dcreg``). Raises :class:`InputError` for unusable clouds or an invalid initial guess.
    """
    config = config or RegistrationConfig()
    if strategy is not None:
        strategy_code(strategy)
    t0 = time.perf_counter()
    init = np.eye(4) if init is None else np.asarray(init, dtype=np.float64)
    if not is_valid_pose(init):
        raise InputError("init must be a finite 4x4 rigid transform")
    pp = config.preprocess
    src = crop_range(sanitize_points(source, "source"), pp.min_range, pp.max_range, "source")
    tgt = crop_range(sanitize_points(target, "target"), pp.min_range, pp.max_range, "target")
    src = voxel_downsample(src, pp.source_voxel_size)
    target_map = build_target_map(tgt, config)
    preprocess_ms = (time.perf_counter() - t0) * 1e3
    result = align(src, target_map, init, config, strategy)
    result.timings["preprocess"] = preprocess_ms
    return result
