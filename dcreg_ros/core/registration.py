"""The DCReg registration loop: point-to-plane Gauss-Newton with degeneracy-aware steps.

``register(source, target)`` is the pairwise entry point; ``align`` runs the loop against an
already built :class:`VoxelMap` (the odometry pipeline calls it with its local map).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .config import RegistrationConfig
from .covariance import UNINFORMATIVE_VARIANCE
from .correspondences import find_correspondences
from .degeneracy import DegeneracyReport, HessianAnalysis, analyze_hessian_arrays
from .geometry import apply_right_perturbation, is_valid_pose, so3_log
from .hessian import KERNEL_CODES, assemble_normal_equations
from .pointcloud import InputError, crop_range, sanitize_points
from .solvers import DCREG_PRIOR, NONE, StepPrior, direct_solve, no_prior, solve_step, strategy_code
from .voxel_hash import voxel_downsample
from .fusion import LidarMeasurement
from .measurement import LidarUncertainty, MeasurementStatistics, lidar_uncertainty, measurement_statistics
from .planes import PlaneParameters
from .voxel_map import VoxelMap

TIMING_KEYS = ("preprocess", "correspondence", "hessian", "detection", "solve")
_ZERO6 = np.zeros((6, 6))
# statuses of a registration that ran on enough correspondences (converged or hit the iteration
# limit); anything else (too_few_correspondences, numerical_failure) is a failed registration
REGISTERED_STATUSES = ("converged", "max_iterations")


@dataclass
class RegistrationResult:
    """Outcome of one registration.

    ``T_target_source`` (4x4) maps source points into the target frame, p_t = R p_s + t (m).
    ``covariance`` (6x6, rotation first, rad^2 / m^2, right-perturbation / body frame) is the
    honest covariance of the final system when the statistics were gathered (``measurement``:
    cluster-robust, the normals' noise taken out, core/measurement.py), else sigma^2 H^-1;
    ``timings`` are milliseconds.
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
    residual_variance: float = float("nan")  # sigma^2 (m^2) of the final system, the scale of H
    data_pose: np.ndarray | None = None  # the data's own solution (one step without any prior), T_target_source
    # sums of the final linearisation for an honest covariance (core/measurement.py); None unless asked for
    statistics: MeasurementStatistics | None = None

    @property
    def ok(self) -> bool:
        """True when the loop ran on enough correspondences (converged or hit the limit)."""
        return self.status in REGISTERED_STATUSES

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
        return np.eye(6) * UNINFORMATIVE_VARIANCE
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


@dataclass(frozen=True)
class PredictionPrior:
    """What the caller knows about its initial guess, for ``dcreg_prior``: the guess's covariance
    (6x6, rotation first, rad^2 / m^2, body frame), e.g. a motion model's prediction uncertainty.
    Without one, ``dcreg_prior`` uses the kappa_target clamp as its strength."""

    covariance: np.ndarray


class NormalEquations(NamedTuple):
    """H delta = g of one linearisation plus its residual statistics."""

    H: np.ndarray
    g: np.ndarray
    count: int
    chi2: float  # sum of weighted squared residuals (m^2), the scale of H
    r2: float  # sum of squared raw residuals (m^2)

    @property
    def residual_variance(self) -> float:
        return self.chi2 / max(self.count - 6, 1)


class _GaussNewton:
    """The loop of :func:`align`, one small method per step of the algorithm."""

    def __init__(self, source, target, init, config, strategy, max_distance, kernel_scale, prior, fractions=None,
                 measure_cell=0.0, prior_origin=None, measure_unflagged_only=False) -> None:
        self.config = config
        self.strategy = strategy or config.degeneracy.strategy
        self.code = strategy_code(self.strategy)
        self.target = target
        cc = config.correspondence
        self.max_distance = cc.max_distance if max_distance is None else max_distance
        self.scale = config.robust.scale if kernel_scale is None else kernel_scale
        self.adaptive = config.robust.adaptive_scale and kernel_scale is None
        self.kernel = KERNEL_CODES[config.robust.kernel]
        self.params = config.degeneracy.solver_parameters()
        self.prior = prior
        self.T = np.array(init, dtype=np.float64)
        self.T0 = self.T.copy() if prior_origin is None else np.array(prior_origin, dtype=np.float64)  # where dcreg_prior's prior is centred
        self.stages = coarse_to_fine_sets(np.ascontiguousarray(source, dtype=np.float64), config.convergence.coarse_fraction)
        self.fractions = fractions  # sweep fraction of each source point relative to the reference time, or None
        self.measure_cell = measure_cell  # > 0: gather MeasurementStatistics over map patches of this edge (m)
        self.measure_unflagged_only = measure_unflagged_only  # ... only when no iteration flagged a direction
        self._flagged = False  # whether any iteration flagged a direction
        self._last_correspondences = None
        self.stage = 0
        self.timings = dict.fromkeys(TIMING_KEYS, 0.0)
        self.equations = NormalEquations(np.zeros((6, 6)), np.zeros(6), 0, 0.0, 0.0)
        self.first: HessianAnalysis | None = None
        self.last: HessianAnalysis | None = None
        self.status, self.converged, self.iterations, self.pcg_total = "max_iterations", False, 0, 0
        self._small = 0
        self._recent: list[np.ndarray] = []
        self.T_linearized = self.T.copy()

    @property
    def points(self) -> np.ndarray:
        return self.stages[self.stage]

    def run(self) -> RegistrationResult:
        for it in range(self.config.convergence.max_iterations):
            equations = self.linearize(it)
            if equations.count < self.config.convergence.min_correspondences:
                self.status = "too_few_correspondences"
                if it == 0:  # keep the counts for the report; there is no usable system
                    self.equations = equations._replace(H=np.zeros((6, 6)), g=np.zeros(6))
                break
            self.equations = equations
            self.T_linearized = self.T
            delta = self.step(equations, it)
            if not np.all(np.isfinite(delta)):
                self.status = "numerical_failure"
                break
            if self.update(delta):
                break
        return self.result()

    def robust_parameters(self, it: int) -> tuple[float, float]:
        """(kernel scale, residual gate) of iteration ``it``: the scale anneals from
        max_distance / 3 to twice the previous RMSE; the gate follows the previous RMSE."""
        rc = self.config.robust
        previous = self.equations
        if it > 0 and previous.count > 0:
            rmse = np.sqrt(previous.r2 / previous.count)
            scale = max(self.scale, 2.0 * rmse) if self.adaptive else self.scale
            gate = max(rc.min_gate, rc.gate_factor * rmse) if rc.gate_factor > 0 else np.inf
            return scale, gate
        return (max(self.scale, self.max_distance / 3.0) if self.adaptive else self.scale), np.inf

    def linearize(self, it: int) -> NormalEquations:
        """Correspondences at the current pose and the normal equations they give."""
        cc = self.config.correspondence
        t0 = time.perf_counter()
        normals, residuals, valid, slots = find_correspondences(self.points, self.T, self.target, cc.method, self.max_distance,
                                                                cc.knn, cc.max_plane_thickness, with_slots=True)
        t1 = time.perf_counter()
        scale, gate = self.robust_parameters(it)
        equations = NormalEquations(*assemble_normal_equations(self.points, np.ascontiguousarray(self.T[:3, :3]), normals,
                                                               residuals, valid, self.kernel, scale, gate))
        self._last_correspondences = (self.T, normals, residuals, valid, scale, gate, slots)
        self.timings["correspondence"] += (t1 - t0) * 1e3
        self.timings["hessian"] += (time.perf_counter() - t1) * 1e3
        return equations

    def step_prior(self, equations: NormalEquations) -> StepPrior:
        if self.code != DCREG_PRIOR:
            return no_prior()
        offset = _deviation(self.T, self.T0)
        if self.prior is None:
            return StepPrior(offset, np.zeros((6, 6)), 0.0, False)
        return StepPrior(offset, np.ascontiguousarray(self.prior.covariance, dtype=np.float64), equations.residual_variance, True)

    def step(self, equations: NormalEquations, it: int) -> np.ndarray:
        """Detection, then the strategy's step (mitigated in every iteration or only the first)."""
        dc = self.config.degeneracy
        t0 = time.perf_counter()
        analysis = analyze_hessian_arrays(equations.H, dc.threshold, dc.kappa_target)
        t1 = time.perf_counter()
        mitigate = dc.handling == "every_iteration" or it == 0
        code = self.code if mitigate else NONE
        solved = solve_step(equations.H, equations.g, code, analysis, self.params, self.step_prior(equations) if mitigate else no_prior())
        self.timings["detection"] += (t1 - t0) * 1e3
        self.timings["solve"] += (time.perf_counter() - t1) * 1e3
        self.pcg_total += solved.pcg_iterations
        self.iterations = it + 1
        if it == 0:
            self.first = analysis
        self.last = analysis
        self._flagged = self._flagged or bool(analysis.mask.any())
        return solved.delta

    def update(self, delta: np.ndarray) -> bool:
        """Apply the (trust-region limited) step; True when the loop is done."""
        conv = self.config.convergence
        delta = _limit_step(delta, conv.max_step_rotation, conv.max_step_translation)
        self.T = apply_right_perturbation(self.T, delta)
        step_r, step_t = np.linalg.norm(delta[:3]), np.linalg.norm(delta[3:])
        # Correspondence switching can leave a limit cycle of steps just above the tolerance:
        # several consecutive small steps, or a return to a recent pose, count as converged too.
        small = step_r < 10 * conv.rotation_tolerance and step_t < 10 * conv.translation_tolerance
        self._small = self._small + 1 if small else 0
        cycled = _revisits(self.T, self._recent, 10 * conv.rotation_tolerance, 10 * conv.translation_tolerance)
        self._recent = (self._recent + [self.T])[-6:]
        stalled = conv.stop_on_stall and (self._small >= 3 or cycled)
        if not ((step_r < conv.rotation_tolerance and step_t < conv.translation_tolerance) or stalled):
            return False
        if self.stage + 1 < len(self.stages):  # the subset has converged: refine with every point
            self.stage, self._small, self._recent = self.stage + 1, 0, []
            return False
        self.status, self.converged = "converged", True
        return True

    def data_solution(self, eq: NormalEquations) -> np.ndarray:
        """The data's own solution: one Gauss-Newton step without any prior from the last
        linearisation (the LiDAR's measurement, which the motion priors fuse with their
        prediction; along directions the data does not constrain it is meaningless, and its
        covariance says so: core/measurement.py)."""
        delta = _limit_step(direct_solve(eq.H, eq.g), self.config.convergence.max_step_rotation,
                            self.config.convergence.max_step_translation)
        return apply_right_perturbation(self.T_linearized, delta)

    def result(self) -> RegistrationResult:
        eq, threshold = self.equations, self.config.degeneracy.threshold
        rmse = float(np.sqrt(eq.r2 / eq.count)) if eq.count > 0 else float("nan")
        covariance = covariance_from_hessian(eq.H, eq.chi2, eq.count) if eq.count >= 6 else np.eye(6) * UNINFORMATIVE_VARIANCE
        usable = self.last is not None and eq.count > 6
        data_pose = self.data_solution(eq) if usable else self.T
        measurement = None  # MeasurementStatistics of the final linearisation
        flagged = self._flagged or self.first is None
        if (usable and self.measure_cell > 0.0 and self._last_correspondences is not None and self.stage == len(self.stages) - 1
                and not (self.measure_unflagged_only and flagged)):
            T, normals, residuals, valid, kscale, gate, slots = self._last_correspondences
            fractions = self.fractions if self.fractions is not None and len(self.fractions) == len(self.points) else None
            measurement = measurement_statistics(self.points, fractions, T, normals, residuals, valid, self.kernel, kscale, gate,
                                                 self.measure_cell, slots, self.target.normal_cov)
            # the geometry's honest covariance (no deskewing terms: the caller knows its motion, see core/measurement.py)
            covariance = lidar_uncertainty(measurement, _ZERO6, _ZERO6, 0.0, np.inf, np.inf).covariance
        return RegistrationResult(
            T_target_source=self.T,
            converged=self.converged,
            status=self.status,
            iterations=self.iterations,
            rmse=rmse,
            fitness=eq.count / max(len(self.points), 1),
            num_correspondences=int(eq.count),
            covariance=covariance,
            hessian=eq.H,
            degeneracy_first=None if self.first is None else DegeneracyReport.from_analysis(self.first, threshold),
            degeneracy_last=None if self.last is None else DegeneracyReport.from_analysis(self.last, threshold),
            strategy=self.strategy,
            pcg_iterations=self.pcg_total,
            timings=self.timings,
            residual_variance=eq.residual_variance if eq.count > 6 else float("nan"),
            data_pose=data_pose,
            statistics=measurement,
        )


def align(
    source: np.ndarray,
    target: VoxelMap,
    init: np.ndarray,
    config: RegistrationConfig,
    strategy: str | None = None,
    max_distance: float | None = None,
    kernel_scale: float | None = None,
    prior: PredictionPrior | None = None,
    source_fractions: np.ndarray | None = None,
    measure_cell: float = 0.0,
    prior_origin: np.ndarray | None = None,
    measure_unflagged_only: bool = False,
) -> RegistrationResult:
    """Register prepared source points (N, 3, source frame) to a target map, starting at ``init``.

    ``max_distance`` and ``kernel_scale`` override the config (the odometry pipeline passes its
    adaptive threshold); the strategy defaults to ``config.degeneracy.strategy``; ``prior`` is the
    uncertainty of ``init`` that sets the strength of ``dcreg_prior``. With ``measure_cell`` > 0
    the result carries the statistics of an honest covariance (``result.statistics``, map
    patches of that edge; ``source_fractions``: each point's sweep time relative to the
    reference, in frame intervals, for the deskewing terms). ``prior_origin`` (4x4) centres
    ``dcreg_prior``'s prior elsewhere than at ``init`` (a second pass started at the first one's
    result keeps its prior on the prediction). ``measure_unflagged_only``: gather the statistics
    only when no iteration flagged a direction (then no prior acted and the result is the data's
    own: the odometry needs no second pass for it).
    """
    return _GaussNewton(source, target, init, config, strategy, max_distance, kernel_scale, prior, source_fractions,
                        measure_cell, prior_origin, measure_unflagged_only).run()


def build_target_map(points: np.ndarray, config: RegistrationConfig) -> VoxelMap:
    """Downsample a target cloud into a voxel map (voxel edge = max correspondence distance)."""
    cc = config.correspondence
    target = voxel_downsample(points, config.preprocess.target_voxel_size)
    return VoxelMap.from_points(target, cc.max_distance, cc.max_points_per_voxel, plane_parameters(config))


def plane_parameters(config: RegistrationConfig) -> PlaneParameters:
    """PCA plane settings of the target map from the correspondence config."""
    cc = config.correspondence
    return PlaneParameters(cc.normal_neighbors, cc.max_distance, cc.max_plane_thickness, cc.min_planarity, cc.max_thickness_ratio)


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
    result = align(src, target_map, init, config, strategy, measure_cell=target_map.voxel_size)
    result.timings["preprocess"] = preprocess_ms
    return result


def lidar_measurement(result: RegistrationResult, uncertainty: LidarUncertainty | None, fusing: bool) -> LidarMeasurement | None:
    """What the registration tells the motion priors (core/fusion.py): its data pose (``fusing``:
    the data's own solution, else the registered pose as it stands) with the honest covariance of
    ``uncertainty`` (None: the registration's own covariance) and the axes it measures weakly
    (relative test, and the absolute test when known); None for a failed registration."""
    if not result.ok:
        return None
    relative = np.asarray(result.degeneracy_last.mask if result.degeneracy_last is not None else (False,) * 6, dtype=bool)
    pose = result.data_pose if fusing and result.data_pose is not None else result.T_target_source
    if uncertainty is None:
        return LidarMeasurement(pose, result.covariance, relative, np.zeros(6, dtype=bool))
    return LidarMeasurement(pose, uncertainty.covariance, relative | uncertainty.absolute_weak, uncertainty.absolute_weak.copy())
