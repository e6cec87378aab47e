"""Global registration: align two clouds without an initial guess, then refine with DCReg.

1. **Features**: both clouds are voxel-downsampled (``features.voxel_size``), get PCA normals and
   sign-invariant FPFH descriptors (:mod:`dcreg_ros.core.fpfh`).
2. **Matching**: mutually nearest descriptors (:mod:`dcreg_ros.core.feature_matching`).
3. **Consensus**: a few distinct rigid hypotheses from the pairwise distance-compatibility graph
   of the matches (:mod:`dcreg_ros.core.consensus`), no random sampling.
4. **Refinement and verification**: each hypothesis is refined by the DCReg registration
   (:func:`dcreg_ros.core.registration.align`) and scored by the share of source points that land
   within ``verification.distance`` of a target point; the best one is the result. Repetitive
   scenes (a suite of identical rooms) give several strong feature hypotheses, and only the dense
   check tells them apart.

``success`` is a plausibility test, not "it ran": enough consistent feature matches, a dense
overlap above ``verification.min_fitness`` and no rival pose that explains the source nearly as
well (``verification.max_ambiguity``: in a repetitive scene the aliased pose can fit best). For relocalization against a prior map, build a
:class:`GlobalTarget` once (its features and voxel map) and call :func:`global_register_to`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from numba import njit, prange

from .config import RegistrationConfig
from .config_io import ConfigError, LoadableConfig, non_negative, param, positive, replace, section
from .consensus import Hypothesis, consensus_hypotheses
from .geometry import pose_error
from .feature_matching import mutual_matches
from .fpfh import estimate_normals, fpfh_features
from .pointcloud import crop_range, sanitize_points
from .radius_search import RadiusGrid
from .registration import RegistrationResult, align, build_target_map
from .solvers import strategy_code
from .voxel_hash import voxel_downsample, voxel_downsample_indices
from .voxel_map import VoxelMap, nearest_point


@dataclass(frozen=True)
class FeatureConfig:
    """Keypoints and FPFH descriptors; radii are in voxel edges so that one parameter sets the scale."""

    voxel_size: float = param(0.5, "voxel edge of the keypoints (m); 0.5 suits rooms as well as streets", positive, "> 0 m")
    normal_radius_voxels: float = param(2.0, "radius of the PCA normals, in voxel edges", lambda x: positive(x) and x >= 1.0, ">= 1")
    feature_radius_voxels: float = param(5.0, "radius of the FPFH neighbourhood, in voxel edges", lambda x: positive(x) and x >= 1.0, ">= 1")
    max_normal_neighbours: int = param(30, "nearest neighbours used for a normal", lambda k: 5 <= k <= 200, "between 5 and 200")
    max_feature_neighbours: int = param(100, "nearest neighbours used for a descriptor", lambda k: 5 <= k <= 500, "between 5 and 500")
    max_range: float = param(0.0, "ignore points farther than this from the cloud's origin for features (m); 0 = no limit", non_negative, ">= 0 m")
    max_keypoints: int = param(5000, "source keypoints matched at most: more are thinned on a coarser voxel grid (descriptors still see every keypoint); 0 = all", lambda k: k >= 0, ">= 0")
    max_target_keypoints: int = param(0, "the same for the target (a prior map); 0 = all", lambda k: k >= 0, ">= 0")


@dataclass(frozen=True)
class ConsensusConfig:
    """Robust estimation on the feature matches."""

    edge_tolerance_voxels: float = param(2.0, "largest change of the distance between two correct matches, in voxel edges", positive, "> 0")
    inlier_distance_voxels: float = param(1.5, "largest residual of an inlier match, in voxel edges", positive, "> 0")
    max_seeds: int = param(1000, "matches that seed a clique (the best connected ones)", lambda k: 1 <= k <= 100000, "between 1 and 100000")
    max_clique: int = param(64, "largest clique grown from one seed", lambda k: 3 <= k <= 10000, "between 3 and 10000")
    hypotheses: int = param(16, "distinct hypotheses kept (most consistent matches first) and compared by a short refinement", lambda k: 1 <= k <= 1000, "between 1 and 1000")


@dataclass(frozen=True)
class VerificationConfig:
    """Dense check of a refined hypothesis and the success test."""

    distance: float = param(0.3, "a source point fits when its nearest target point is this close (m)", positive, "> 0 m")
    probe_inlier_ratio: float = param(0.3, "look only at hypotheses with at least this share of the best one's feature inliers", lambda x: 0.0 <= x <= 1.0, "in [0, 1]")
    probe_points: int = param(1000, "source points of the quick refinement that compares the hypotheses", lambda k: k >= 10, ">= 10")
    probe_iterations: int = param(6, "DCReg iterations of that quick refinement", lambda k: 1 <= k <= 1000, "between 1 and 1000")
    min_inliers: int = param(8, "success needs at least this many consistent feature matches", lambda k: k >= 3, ">= 3")
    min_fitness: float = param(0.3, "success needs this share of source points to fit", lambda x: 0.0 <= x <= 1.0, "in [0, 1]")
    max_ambiguity: float = param(0.5, "success needs the best rival pose (> 2 m or 10 deg away) to misfit at least 1 / this as many points; 1 = no test", lambda x: 0.0 < x <= 1.0, "in (0, 1]")


@dataclass(frozen=True)
class GlobalRegistrationConfig(LoadableConfig):
    """All parameters of global registration; ``refinement`` is the DCReg registration run from
    the coarse result (see config/registration.yaml)."""

    YAML_KEY = "global_registration"

    features: FeatureConfig = section(FeatureConfig, "keypoints and descriptors")
    consensus: ConsensusConfig = section(ConsensusConfig, "robust estimation")
    verification: VerificationConfig = section(VerificationConfig, "dense check and success test")
    refinement: RegistrationConfig = section(RegistrationConfig, "DCReg refinement from the coarse result")

    def check(self) -> None:
        if self.verification.distance > self.refinement.correspondence.max_distance:
            raise ConfigError(
                f"verification.distance ({self.verification.distance}) must not exceed "
                f"refinement.correspondence.max_distance ({self.refinement.correspondence.max_distance})"
            )


@dataclass
class FeatureCloud:
    """Keypoints (K, 3, metres, the cloud's frame) and their descriptors (K, 33, float32)."""

    points: np.ndarray
    descriptors: np.ndarray

    def __len__(self) -> int:
        return len(self.points)


def compute_features(points: np.ndarray, config: FeatureConfig, max_keypoints: int | None = None) -> FeatureCloud:
    """Keypoints and sign-invariant FPFH descriptors of a sanitized cloud (N, 3, metres);
    ``max_keypoints`` overrides ``config.max_keypoints``."""
    v = config.voxel_size
    if config.max_range > 0.0:
        r2 = np.einsum("ij,ij->i", points, points)
        points = points[r2 <= config.max_range**2]
    keypoints = voxel_downsample(points, v)
    if len(keypoints) < 3:
        return FeatureCloud(np.zeros((0, 3)), np.zeros((0, 33), dtype=np.float32))
    normal_nb = RadiusGrid.build(keypoints, config.normal_radius_voxels * v).neighbours(keypoints, max_neighbours=config.max_normal_neighbours)
    normals, has_normal = estimate_normals(keypoints, normal_nb)
    feature_nb = RadiusGrid.build(keypoints, config.feature_radius_voxels * v).neighbours(keypoints, max_neighbours=config.max_feature_neighbours)
    # every keypoint shapes the descriptors, but only the thinned ones are described and matched
    rows = np.flatnonzero(has_normal)
    rows = rows[thin_keypoints(keypoints[rows], v, config.max_keypoints if max_keypoints is None else max_keypoints)]
    descriptors, usable = fpfh_features(keypoints, normals, has_normal, feature_nb, rows)
    rows = rows[usable]
    return FeatureCloud(np.ascontiguousarray(keypoints[rows]), np.ascontiguousarray(descriptors[usable]))


def thin_keypoints(points: np.ndarray, voxel_size: float, max_keypoints: int) -> np.ndarray:
    """Indices of at most ``max_keypoints`` of ``points`` (0 = all), evenly spread: one per voxel
    of a grid coarsened until few enough remain (matching costs keypoints x keypoints)."""
    keep = np.arange(len(points))
    if max_keypoints <= 0 or len(points) <= max_keypoints:
        return keep
    coarse = voxel_size
    while len(keep) > max_keypoints:
        # keypoints lie on surfaces: their number falls roughly with the square of the voxel edge
        coarse *= max(1.05, np.sqrt(len(keep) / max_keypoints))
        keep = voxel_downsample_indices(points, coarse)
    return keep


@dataclass
class GlobalTarget:
    """A target prepared once for many global registrations (a prior map for relocalization):
    its keypoint descriptors and the voxel map the refinement and verification query.
    ``timings`` holds the milliseconds spent preparing it."""

    features: FeatureCloud
    map: VoxelMap
    config: GlobalRegistrationConfig
    num_points: int
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_points(cls, points: np.ndarray, config: GlobalRegistrationConfig | None = None,
                    max_keypoints: int | None = None) -> "GlobalTarget":
        """Prepare a target cloud (N, 3, metres); ``max_keypoints`` overrides
        ``config.features.max_target_keypoints``. Raises InputError for an unusable cloud."""
        config = config or GlobalRegistrationConfig()
        t0 = time.perf_counter()
        pts = sanitize_points(points, "target")
        limit = config.features.max_target_keypoints if max_keypoints is None else max_keypoints
        features = compute_features(pts, config.features, limit)
        t1 = time.perf_counter()
        pp = config.refinement.preprocess
        target_map = build_target_map(crop_range(pts, pp.min_range, pp.max_range, "target"), config.refinement)
        t2 = time.perf_counter()
        return cls(features, target_map, config, len(pts), {"target_features": (t1 - t0) * 1e3, "target_map": (t2 - t1) * 1e3})


@dataclass
class GlobalRegistrationResult:
    """Outcome of a global registration.

    ``T_target_source`` (4x4) maps source points into the target frame after the DCReg
    refinement, ``coarse`` before it. ``fitness`` is the share of the refinement's source points
    within ``verification.distance`` of a target point, ``inlier_rmse`` (m) their RMS distance.
    ``num_feature_matches`` mutual descriptor matches, ``num_inliers`` of them consistent with the
    chosen hypothesis; ``success`` the plausibility test; ``timings`` milliseconds per stage.
    ``ambiguity`` compares the result with the best rival pose (more than 2 m or 10 deg away) on
    the probe subset: the ratio of their shares of misfitting points, 0 = no rival, near 1 = the
    rival explains the scan as well (a repetitive scene: identical rooms, stair flights).
    """

    T_target_source: np.ndarray
    coarse: np.ndarray
    fitness: float
    inlier_rmse: float
    num_feature_matches: int
    num_inliers: int
    success: bool
    refinement: RegistrationResult
    timings: dict[str, float]
    num_hypotheses: int = 0
    ambiguity: float = 0.0

    def to_dict(self) -> dict:
        """JSON-friendly dictionary (the CLI's --json output)."""
        return {
            "T_target_source": self.T_target_source.tolist(),
            "coarse": self.coarse.tolist(),
            "success": self.success,
            "fitness": float(self.fitness),
            "inlier_rmse": None if not np.isfinite(self.inlier_rmse) else float(self.inlier_rmse),
            "num_feature_matches": self.num_feature_matches,
            "num_inliers": self.num_inliers,
            "num_hypotheses": self.num_hypotheses,
            "ambiguity": float(self.ambiguity),
            "timings_ms": {k: round(v, 3) for k, v in self.timings.items()},
            "refinement": self.refinement.to_dict(),
        }


@njit(cache=True, parallel=True)
def _nearest_distances(src, R, t, max_d2, inv_size, voxel_size, table_keys, table_values, cell_counts, points, n_per):
    """Squared distance of each transformed source point to its nearest map point (inf beyond max)."""
    n = src.shape[0]
    out = np.full(n, np.inf)
    for i in prange(n):
        px, py, pz = src[i, 0], src[i, 1], src[i, 2]
        x = R[0, 0] * px + R[0, 1] * py + R[0, 2] * pz + t[0]
        y = R[1, 0] * px + R[1, 1] * py + R[1, 2] * pz + t[1]
        z = R[2, 0] * px + R[2, 1] * py + R[2, 2] * pz + t[2]
        j = nearest_point(x, y, z, inv_size, voxel_size, table_keys, table_values, cell_counts, points, n_per, max_d2)
        if j >= 0:
            out[i] = (points[j, 0] - x) ** 2 + (points[j, 1] - y) ** 2 + (points[j, 2] - z) ** 2
    return out


def dense_fit(source: np.ndarray, target: VoxelMap, T: np.ndarray, distance: float) -> tuple[float, float]:
    """(share of ``source`` points (N, 3) within ``distance`` (m) of a map point under T, their RMS distance)."""
    if len(source) == 0:
        return 0.0, float("nan")
    d2 = _nearest_distances(source, np.ascontiguousarray(T[:3, :3]), np.ascontiguousarray(T[:3, 3]), distance * distance,
                            target.inv_size, target.voxel_size, target.table_keys, target.table_values,
                            target.cell_counts, target.points, target.max_points_per_voxel)
    fits = np.isfinite(d2)
    rmse = float(np.sqrt(d2[fits].mean())) if fits.any() else float("nan")
    return float(fits.mean()), rmse


def _check_features_match(config: GlobalRegistrationConfig, target: GlobalTarget) -> None:
    if config.features != target.config.features:
        raise ConfigError("the target's features were computed with other features settings: build the GlobalTarget with this config")


@dataclass
class _Candidate:
    """A hypothesis after refinement, with its dense fit."""

    hypothesis: Hypothesis | None
    refined: RegistrationResult
    fitness: float
    rmse: float
    ambiguity: float


def _probe_config(config: GlobalRegistrationConfig) -> RegistrationConfig:
    """The refinement settings for the quick look at each hypothesis: few iterations, no subset stage."""
    r = config.refinement
    return replace(r, convergence=replace(r.convergence, max_iterations=config.verification.probe_iterations, coarse_fraction=0.0))


def _verified_best(hypotheses: list[Hypothesis], points: np.ndarray, target: GlobalTarget, config: GlobalRegistrationConfig,
                   strategy: str | None, timings: dict[str, float]) -> _Candidate:
    """Look at every hypothesis with a short refinement on a probe subset, then refine the best
    from there with every point. Coarse poses are off by decimetres and degrees, too much for a
    static dense score to separate a right hypothesis from an aliased one (the next room of a
    suite); a few DCReg iterations are enough."""
    vc = config.verification
    t0 = time.perf_counter()
    probe = points[:: max(1, len(points) // vc.probe_points)]
    probe_config = _probe_config(config)
    looked: list[tuple[float, int, np.ndarray]] = []  # (probe fit, hypothesis index, probed pose)
    most = max((h.num_inliers for h in hypotheses), default=0)
    for i, h in enumerate(hypotheses):
        if h.num_inliers < vc.probe_inlier_ratio * most:
            continue
        r = align(probe, target.map, h.T_target_source, probe_config, strategy)
        if not r.ok or any(_close(r.T_target_source, T) for _, _, T in looked):
            continue
        looked.append((dense_fit(probe, target.map, r.T_target_source, vc.distance)[0], i, r.T_target_source))
    t1 = time.perf_counter()
    fit_best, index, start = max(looked, key=lambda x: x[0], default=(0.0, -1, np.eye(4)))
    refined = align(points, target.map, start, config.refinement, strategy)
    t2 = time.perf_counter()
    fit, rmse = dense_fit(points, target.map, refined.T_target_source, vc.distance) if refined.ok else (0.0, float("nan"))
    # another pose far from the chosen one that explains the probe nearly as well: a repetitive scene
    rivals = [f for f, i, T in looked if i != index and not _close(T, start, AMBIGUITY_DISTANCE, AMBIGUITY_ANGLE_DEG)]
    ambiguity = (1.0 - fit_best) / max(1.0 - max(rivals), 1e-9) if rivals else 0.0
    timings.update(probing=(t1 - t0) * 1e3, refinement=(t2 - t1) * 1e3, verification=(time.perf_counter() - t2) * 1e3)
    return _Candidate(hypotheses[index] if index >= 0 else None, refined, fit, rmse, float(min(ambiguity, 1.0)))


AMBIGUITY_DISTANCE, AMBIGUITY_ANGLE_DEG = 2.0, 10.0  # m, deg: a rival pose is at least this far from the result


def _close(A: np.ndarray, B: np.ndarray, distance: float = 0.2, angle_deg: float = 1.0) -> bool:
    """True when two poses differ by less than ``distance`` (m) and ``angle_deg``."""
    t, r = pose_error(A, B)
    return t < distance and r < angle_deg


def global_register_to(source: np.ndarray, target: GlobalTarget, config: GlobalRegistrationConfig | None = None,
                       strategy: str | None = None) -> GlobalRegistrationResult:
    """Register ``source`` (N, 3, metres, its own frame) to a prepared target without a guess.

    ``config`` defaults to the target's; its ``features`` section must equal the target's.
    ``strategy`` selects the DCReg solve strategy of the refinement (default from
    ``config.refinement``). Raises InputError for an unusable source cloud.
    """
    config = config or target.config
    _check_features_match(config, target)
    if strategy is not None:
        strategy_code(strategy)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    src = sanitize_points(source, "source")
    features = compute_features(src, config.features)
    pp = config.refinement.preprocess
    refine_points = voxel_downsample(crop_range(src, pp.min_range, pp.max_range, "source"), pp.source_voxel_size)
    t1 = time.perf_counter()
    matches = mutual_matches(features.descriptors, target.features.descriptors)
    t2 = time.perf_counter()
    v, cc = config.features.voxel_size, config.consensus
    hypotheses = consensus_hypotheses(
        features.points[matches.source], target.features.points[matches.target],
        cc.edge_tolerance_voxels * v, cc.inlier_distance_voxels * v, max_hypotheses=cc.hypotheses,
        max_seeds=cc.max_seeds, max_clique=cc.max_clique,
    )
    t3 = time.perf_counter()
    timings.update(source_features=(t1 - t0) * 1e3, matching=(t2 - t1) * 1e3, consensus=(t3 - t2) * 1e3)
    best = _verified_best(hypotheses, refine_points, target, config, strategy, timings)
    timings["total"] = (time.perf_counter() - t0) * 1e3
    vc = config.verification
    inliers = 0 if best.hypothesis is None else best.hypothesis.num_inliers
    return GlobalRegistrationResult(
        T_target_source=best.refined.T_target_source,
        coarse=np.eye(4) if best.hypothesis is None else best.hypothesis.T_target_source,
        fitness=best.fitness,
        inlier_rmse=best.rmse,
        num_feature_matches=len(matches),
        num_inliers=inliers,
        success=(inliers >= vc.min_inliers and best.refined.ok and best.fitness >= vc.min_fitness
                 and (best.ambiguity <= vc.max_ambiguity or vc.max_ambiguity >= 1.0)),
        refinement=best.refined,
        timings=timings,
        num_hypotheses=len(hypotheses),
        ambiguity=best.ambiguity,
    )


def global_register(source: np.ndarray, target: np.ndarray, config: GlobalRegistrationConfig | None = None,
                    strategy: str | None = None) -> GlobalRegistrationResult:
    """Register ``source`` (N, 3) onto ``target`` (M, 3), both in metres, without an initial guess.

    Returns the refined T_target_source, the coarse estimate, the dense fit and the success test
    (see :class:`GlobalRegistrationResult`); ``timings`` include preparing the target.
    Raises InputError for unusable clouds.
    """
    config = config or GlobalRegistrationConfig()
    if strategy is not None:
        strategy_code(strategy)
    sanitize_points(source, "source")  # report a bad source before the target's work
    # a scan against a scan: the target's keypoints are thinned like the source's
    prepared = GlobalTarget.from_points(target, config, max_keypoints=config.features.max_keypoints)
    result = global_register_to(source, prepared, config, strategy)
    result.timings = {**prepared.timings, **result.timings}
    result.timings["total"] += prepared.timings["target_features"] + prepared.timings["target_map"]
    return result


__all__ = [
    "ConsensusConfig",
    "FeatureCloud",
    "FeatureConfig",
    "GlobalRegistrationConfig",
    "GlobalRegistrationResult",
    "GlobalTarget",
    "VerificationConfig",
    "compute_features",
    "dense_fit",
    "global_register",
    "global_register_to",
]
