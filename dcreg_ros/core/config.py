"""Configuration of the registration core (pairwise ICP + DCReg), one typed object with sections.

Load from YAML with ``RegistrationConfig.from_yaml(path)``; every parameter has a default that
works on spinning LiDAR scans in metres. ``RegistrationConfig.reference()`` reproduces the
settings of the DCReg reference code (method file section 1) for fidelity checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config_io import ConfigError, LoadableConfig, non_negative, one_of, param, positive, section
from .correspondences import METHODS
from .hessian import KERNELS
from .planes import PlaneParameters
from .solvers import STRATEGIES, SolverParameters

# the most scan points registered per frame by odometry and localization: a dense scan (128 beams:
# 35,000 points at 0.25 m) is thinned evenly in space to this many, which costs no accuracy
# measured (benchmarks/RESULTS.md, tracking) and bounds the time per frame whatever the sensor;
# the simulated 32-beam scans keep 2,700-7,600 points, below it
SOURCE_POINT_BUDGET = 12_000
SOURCE_BUDGET_HELP = ("most points registered per scan; a denser scan is thinned evenly by a coarser voxel edge "
                      "(bounds the time per frame of 64/128-beam sensors); 0 = no limit")


@dataclass(frozen=True)
class PreprocessConfig:
    """Cropping and voxel downsampling applied before registration."""

    min_range: float = param(0.0, "drop points closer than this to the sensor origin (m)", non_negative, ">= 0 m")
    max_range: float = param(0.0, "drop points farther than this from the sensor origin (m); 0 = no limit", non_negative, ">= 0 m")
    source_voxel_size: float = param(0.25, "voxel edge for downsampling the source cloud (m); 0 = keep all points", non_negative, ">= 0 m")
    target_voxel_size: float = param(0.2, "voxel edge for downsampling the target cloud (m); 0 = keep all points", non_negative, ">= 0 m")


@dataclass(frozen=True)
class CorrespondenceConfig:
    """Point-to-plane correspondence search."""

    method: str = param("point_plane", "point_plane (nearest point with PCA normal, fast) or knn_plane (reference k-NN plane fit per iteration)", one_of(*METHODS), "one of " + ", ".join(METHODS))
    max_distance: float = param(1.0, "largest source-to-target point distance accepted (m); also the map voxel edge", positive, "> 0 m")
    knn: int = param(5, "neighbours per plane fit for knn_plane (reference: 5)", lambda k: 3 <= k <= 64, "between 3 and 64")
    normal_neighbors: int = param(PlaneParameters.neighbors, "neighbours for the PCA normals of point_plane", lambda k: 5 <= k <= 64, "between 5 and 64")
    max_plane_thickness: float = param(PlaneParameters.max_thickness, "reject a plane when a neighbour lies farther than this from it (m)", positive, "> 0 m")
    min_planarity: float = param(PlaneParameters.min_planarity, "reject PCA planes with (l1 - l0) / l2 below this (lines); l0 <= l1 <= l2 are the neighbourhood's covariance eigenvalues", lambda x: 0.0 <= x < 1.0, "in [0, 1)")
    max_thickness_ratio: float = param(PlaneParameters.max_thickness_ratio, "reject PCA planes thicker than this fraction of their smaller in-plane extent, sqrt(l0 / l1) (blobs, corners: their normals point anywhere and fake information along unconstrained directions)", lambda x: 0.0 < x <= 1.0, "in (0, 1]")
    max_points_per_voxel: int = param(20, "points kept per map voxel; 0 = all (exact k-NN)", lambda k: k >= 0, ">= 0")


@dataclass(frozen=True)
class RobustConfig:
    """Robust kernel applied to point-to-plane residuals."""

    kernel: str = param("none", "robust kernel: " + ", ".join(KERNELS) + " (loam = reference weighting)", one_of(*KERNELS), "one of " + ", ".join(KERNELS))
    scale: float = param(0.1, "kernel scale (m), ignored by none and loam; the floor of the adaptive scale", positive, "> 0 m")
    adaptive_scale: bool = param(True, "anneal the scale from max_distance / 3 down to max(scale, 2 x RMSE of the previous iteration)")
    gate_factor: float = param(0.0, "after the first iteration reject |residual| > max(min_gate, gate_factor x previous RMSE); 0 = off", non_negative, ">= 0")
    min_gate: float = param(0.1, "smallest residual gate (m)", positive, "> 0 m")


@dataclass(frozen=True)
class DegeneracyConfig:
    """DCReg detection and the solve strategy (method sections 2-5)."""

    strategy: str = param("dcreg", "solve strategy: " + ", ".join(STRATEGIES), one_of(*STRATEGIES), "one of " + ", ".join(STRATEGIES))
    threshold: float = param(10.0, "a direction is degenerate when lambda_max / lambda of its subspace exceeds this", lambda x: positive(x) and x > 1.0, "> 1")
    kappa_target: float = param(10.0, "condition number the targeted preconditioner enforces on each subspace", lambda x: positive(x) and x >= 1.0, ">= 1")
    handling: str = param("every_iteration", "apply mitigation in every_iteration or only the first_iteration", one_of("every_iteration", "first_iteration"), "every_iteration or first_iteration")
    pcg_max_iterations: int = param(10, "PCG iteration limit before the direct-solve fallback", lambda k: 1 <= k <= 1000, "between 1 and 1000")
    pcg_tolerance: float = param(1e-6, "PCG stops when |r| <= tolerance * max(1, |g|)", positive, "> 0")
    eigen_threshold: float = param(120.0, "absolute eigenvalue threshold of the ME-* baselines", positive, "> 0")
    tikhonov_gamma: float = param(100.0, "damping of the tikhonov baseline", positive, "> 0")
    fcn_kappa: float = param(10.0, "condition threshold of the fcn_sr baseline", lambda x: positive(x) and x > 1.0, "> 1")
    max_std_translation: float = param(0.005, "absolute test (odometry, localization): a translation axis whose standard deviation from the scan's geometry exceeds this (m per frame) is weak, whatever the other axes", positive, "> 0 m")
    max_std_rotation: float = param(0.1, "absolute test: a rotation axis whose standard deviation from the scan's geometry exceeds this (deg per frame) is weak", positive, "> 0 deg")

    def solver_parameters(self) -> SolverParameters:
        return SolverParameters(self.pcg_max_iterations, self.pcg_tolerance, self.eigen_threshold, self.tikhonov_gamma, self.fcn_kappa)


@dataclass(frozen=True)
class ConvergenceConfig:
    """Iteration limits and the convergence test of the ICP loop."""

    max_iterations: int = param(30, "Gauss-Newton iterations at most", lambda k: 1 <= k <= 1000, "between 1 and 1000")
    rotation_tolerance: float = param(1e-5, "converged when |delta_rotation| is below this (rad) ...", positive, "> 0 rad")
    translation_tolerance: float = param(1e-3, "... and |delta_translation| is below this (m)", positive, "> 0 m")
    min_correspondences: int = param(10, "abort an iteration with fewer correspondences", lambda k: k >= 6, ">= 6")
    max_step_rotation: float = param(0.5, "largest rotation step per iteration (rad); larger steps are scaled down; 0 = unlimited", non_negative, ">= 0 rad")
    max_step_translation: float = param(2.0, "largest translation step per iteration (m); 0 = unlimited", non_negative, ">= 0 m")
    stop_on_stall: bool = param(True, "also stop after 3 steps below 10x the tolerances or on returning to a recent pose (limit cycles of correspondence switching)")
    coarse_fraction: float = param(0.25, "iterate first with this fraction of the source points, then refine with all; 0 = off", lambda x: 0.0 <= x <= 1.0, "in [0, 1]")


@dataclass(frozen=True)
class RegistrationConfig(LoadableConfig):
    """All parameters of pairwise registration."""

    YAML_KEY = "registration"

    preprocess: PreprocessConfig = section(PreprocessConfig, "cropping and downsampling")
    correspondence: CorrespondenceConfig = section(CorrespondenceConfig, "correspondence search")
    robust: RobustConfig = section(RobustConfig, "robust kernel")
    degeneracy: DegeneracyConfig = section(DegeneracyConfig, "degeneracy detection and mitigation")
    convergence: ConvergenceConfig = section(ConvergenceConfig, "iteration control")

    def check(self) -> None:
        p = self.preprocess
        if p.max_range and p.max_range <= p.min_range:
            raise ConfigError(f"preprocess.max_range ({p.max_range}) must exceed preprocess.min_range ({p.min_range})")


    @classmethod
    def reference(cls, search_radius: float = 1.0) -> "RegistrationConfig":
        """Settings of the DCReg reference code: no downsampling, 5-NN least-squares planes
        with the 5th neighbour within ``search_radius`` (m), loam weighting, 30 iterations."""
        return cls.from_dict(
            {
                "preprocess": {"source_voxel_size": 0.0, "target_voxel_size": 0.0},
                "correspondence": {"method": "knn_plane", "max_distance": search_radius, "knn": 5, "max_plane_thickness": 0.2, "max_points_per_voxel": 0},
                "robust": {"kernel": "loam", "adaptive_scale": False, "gate_factor": 0.0},
                "convergence": {"coarse_fraction": 0.0, "stop_on_stall": False, "max_step_rotation": 0.0, "max_step_translation": 0.0},
            }
        )
