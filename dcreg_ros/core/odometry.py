"""Degeneracy-aware scan-to-map LiDAR odometry.

    odom = dcreg_ros.Odometry()
    for scan in scans:
        record = odom.register_frame(scan.points, scan.times, stamp=scan.stamp)
        record.pose          # 4x4 world_T_sensor at the scan start
        record.degeneracy    # per-axis report of the last Gauss-Newton iteration

Each frame: crop and deskew (constant velocity), downsample, predict with constant velocity,
register against the voxel-hash local map with the adaptive correspondence threshold and the
selected DCReg strategy, update the motion model, the threshold and the map.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from .config import ConvergenceConfig, CorrespondenceConfig, DegeneracyConfig, PreprocessConfig, RegistrationConfig, RobustConfig
from .config_io import ConfigError, LoadableConfig, non_negative, param, positive, section
from .degeneracy import DegeneracyReport
from .deskew import deskew, interpolate_motion, normalize_times
from .geometry import invert_pose, project_to_so3, so3_log, transform_points
from .global_map import GlobalMap
from .pointcloud import InputError, crop_range, finite_points
from .registration import RegistrationResult, align, plane_parameters
from .solvers import strategy_code
from .threshold import AdaptiveThreshold
from .voxel_hash import voxel_downsample_indices
from .voxel_map import VoxelMap

FRAME_TIMING_KEYS = ("preprocess", "correspondence", "hessian", "detection", "solve", "map_update")


@dataclass(frozen=True)
class OdometryPreprocessConfig:
    """Per-frame preprocessing."""

    min_range: float = param(1.0, "drop points closer than this to the sensor (m): robot body, operator", non_negative, ">= 0 m")
    max_range: float = param(100.0, "drop points farther than this (m); also the local map radius", positive, "> 0 m")
    deskew: bool = param(True, "motion-compensate scans that carry per-point time (constant velocity)")
    source_voxel_size: float = param(0.25, "voxel edge of the points registered against the map (m); not finer than map_voxel_size", positive, "> 0 m")
    map_voxel_size: float = param(0.25, "voxel edge of the points inserted into the map (m)", positive, "> 0 m")


@dataclass(frozen=True)
class MappingConfig:
    """The voxel-hash local map."""

    voxel_size: float = param(1.0, "map voxel edge (m); also the largest correspondence distance", positive, "> 0 m")
    max_points_per_voxel: int = param(20, "points kept per map voxel", lambda k: 1 <= k <= 1000, "between 1 and 1000")


@dataclass(frozen=True)
class AdaptiveThresholdConfig:
    """Correspondence threshold from the motion-model error (KISS-ICP style)."""

    initial_threshold: float = param(2.0, "sigma before any motion was observed (m)", positive, "> 0 m")
    min_motion: float = param(0.1, "frames whose model error is below this (m) do not update sigma", non_negative, ">= 0 m")


def _odometry_robust() -> RobustConfig:
    return RobustConfig(kernel="geman_mcclure", adaptive_scale=False)


def _odometry_degeneracy() -> DegeneracyConfig:
    # kappa_target 20 rather than the paper's 10: measured on the simulated corridor, tunnel and
    # sparse corridor (3 seeds each), the prior at 10 holds the motion model too firmly where the
    # flagged direction still carries some information (docs/ALGORITHM.md, benchmarks/RESULTS.md)
    return DegeneracyConfig(strategy="dcreg_prior", kappa_target=20.0)


def _odometry_convergence() -> ConvergenceConfig:
    return ConvergenceConfig(max_iterations=30, rotation_tolerance=1e-4, translation_tolerance=1e-3, coarse_fraction=0.0)


@dataclass(frozen=True)
class OdometryConfig(LoadableConfig):
    """All odometry parameters; defaults work on 16- to 128-beam spinning LiDARs in metres."""

    YAML_KEY = "odometry"

    preprocess: OdometryPreprocessConfig = section(OdometryPreprocessConfig, "cropping, deskewing, downsampling")
    mapping: MappingConfig = section(MappingConfig, "local map")
    adaptive_threshold: AdaptiveThresholdConfig = section(AdaptiveThresholdConfig, "correspondence threshold")
    correspondence: CorrespondenceConfig = section(CorrespondenceConfig, "plane estimation of map points (max_distance and max_points_per_voxel come from mapping)")
    robust: RobustConfig = section(_odometry_robust, "robust kernel (scale = sigma / 3 of the adaptive threshold)")
    degeneracy: DegeneracyConfig = section(_odometry_degeneracy, "degeneracy detection and mitigation")
    convergence: ConvergenceConfig = section(_odometry_convergence, "iteration control")

    def check(self) -> None:
        p = self.preprocess
        if p.max_range <= p.min_range:
            raise ConfigError(f"preprocess.max_range ({p.max_range}) must exceed preprocess.min_range ({p.min_range})")

    def registration_config(self) -> RegistrationConfig:
        """The RegistrationConfig the frame-to-map alignment runs with."""
        cc = replace(self.correspondence, max_distance=self.mapping.voxel_size, max_points_per_voxel=self.mapping.max_points_per_voxel)
        return RegistrationConfig(
            preprocess=PreprocessConfig(),
            correspondence=cc,
            robust=self.robust,
            degeneracy=self.degeneracy,
            convergence=self.convergence,
        )


    def with_strategy(self, strategy: str) -> "OdometryConfig":
        strategy_code(strategy)
        return replace(self, degeneracy=replace(self.degeneracy, strategy=strategy))


@dataclass
class FrameRecord:
    """What the odometry did with one frame.

    ``pose``: world_T_sensor (4x4, m) at the scan start (header stamp). ``covariance``: 6x6,
    rotation first, in the sensor frame. ``twist``: the sensor's velocity over the last frame
    interval, rotation first (rad/s, then m/s) in the sensor frame, with ``twist_covariance``
    (6x6, same order). ``timings``: milliseconds per stage.
    """

    index: int
    stamp: float
    pose: np.ndarray
    status: str
    iterations: int = 0
    rmse: float = float("nan")
    fitness: float = float("nan")
    num_points: int = 0
    num_correspondences: int = 0
    threshold: float = float("nan")
    covariance: np.ndarray = field(default_factory=lambda: np.eye(6) * 1e6)
    twist: np.ndarray = field(default_factory=lambda: np.zeros(6))
    twist_covariance: np.ndarray = field(default_factory=lambda: np.eye(6) * 1e6)
    degeneracy: DegeneracyReport | None = None
    degeneracy_first: DegeneracyReport | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def total_ms(self) -> float:
        return float(sum(self.timings.values()))

    @property
    def degenerate_mask(self) -> tuple[bool, ...]:
        return self.degeneracy.mask if self.degeneracy is not None else (False,) * 6


class Odometry:
    """Scan-to-map odometry with DCReg degeneracy handling (see the module docstring)."""

    def __init__(self, config: OdometryConfig | None = None, strategy: str | None = None) -> None:
        config = config or OdometryConfig()
        if strategy is not None:
            config = config.with_strategy(strategy)
        self.config = config
        self._registration = config.registration_config()
        self.global_map: GlobalMap | None = None  # set one to keep every registered frame (map saving)
        self.reset()

    def update_config(self, config: OdometryConfig) -> bool:
        """Use a new configuration from the next frame on. Returns True when the change
        required a fresh map (mapping or plane parameters changed), which resets the odometry."""
        old = self.config
        self.config = config
        self._registration = config.registration_config()
        needs_reset = (
            old.mapping != config.mapping or old.correspondence != config.correspondence
            or old.adaptive_threshold != config.adaptive_threshold or old.preprocess.max_range != config.preprocess.max_range
        )
        if needs_reset:
            self.reset()
        return needs_reset

    def reset(self) -> None:
        """Forget the map and the trajectory."""
        cfg = self.config
        self.local_map = VoxelMap(cfg.mapping.voxel_size, cfg.mapping.max_points_per_voxel, plane=plane_parameters(self._registration))
        self.threshold = AdaptiveThreshold(cfg.adaptive_threshold.initial_threshold, cfg.adaptive_threshold.min_motion, cfg.preprocess.max_range)
        self.poses: list[np.ndarray] = []  # world_T_sensor at each scan's stamp (scan start)
        self.stamps: list[float] = []
        self._scan_pose = np.eye(4)  # pose of the last scan's reference time (mid-scan if deskewed)
        self._delta = np.eye(4)  # motion over the last frame interval
        if self.global_map is not None:
            self.global_map.clear()  # its points are in the frame of the trajectory just forgotten

    @property
    def last_pose(self) -> np.ndarray:
        return self.poses[-1] if self.poses else np.eye(4)

    def _preprocess(self, points: np.ndarray, timestamps: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, bool]:
        """Sanitised, cropped, deskewed points -> (source for registration, points for the map,
        whether the scan carried usable per-point times)."""
        p = self.config.preprocess
        pts, finite = finite_points(points, "frame")
        fractions = None
        if timestamps is not None:
            times = np.asarray(timestamps, dtype=np.float64).reshape(-1)
            if len(times) != len(finite):
                raise InputError(f"frame: {len(times)} timestamps for {len(finite)} points")
            fractions = normalize_times(times[finite])
        if fractions is not None and p.deskew and len(self.poses) >= 2:
            pts = deskew(pts, fractions, self._delta)
        pts = crop_range(pts, p.min_range, p.max_range, "frame")
        frame = pts[voxel_downsample_indices(pts, p.map_voxel_size)]
        source = frame[voxel_downsample_indices(frame, p.source_voxel_size)] if p.source_voxel_size > p.map_voxel_size else frame
        return source, frame, fractions is not None

    def register_frame(self, points: np.ndarray, timestamps: np.ndarray | None = None, stamp: float | None = None) -> FrameRecord:
        """Register one scan (N, 3 metres, sensor frame) with optional per-point times (any
        unit; only their spread over the scan is used). Raises InputError for unusable frames,
        leaving the odometry state unchanged."""
        index = len(self.poses)
        stamp = float(stamp) if stamp is not None else index * 0.1
        t0 = time.perf_counter()
        source, frame, timed = self._preprocess(points, timestamps)
        preprocess_ms = (time.perf_counter() - t0) * 1e3
        prediction = self._scan_pose @ self._delta
        if index == 0:
            pose, result = prediction, None
        else:
            sigma = self.threshold.sigma
            result = align(
                source, self.local_map, prediction, self._registration,
                max_distance=min(3.0 * sigma, self.config.mapping.voxel_size), kernel_scale=max(sigma / 3.0, 1e-3),
            )
            pose = result.T_target_source if result.ok else prediction
            pose[:3, :3] = project_to_so3(pose[:3, :3])  # keep the chained poses orthonormal
        t1 = time.perf_counter()
        if index > 0:
            self.threshold.update(prediction, pose)
            self._delta = invert_pose(self._scan_pose) @ pose
        world = transform_points(pose, frame)
        self.local_map.insert(world)
        if self.global_map is not None:
            self.global_map.insert(world)
        self.local_map.remove_far(pose[:3, 3], self.config.preprocess.max_range)
        map_ms = (time.perf_counter() - t1) * 1e3
        self._scan_pose = pose
        # A scan is registered at its mid-point (where a skewed scan's points sit on average and
        # where deskewing is unbiased by velocity errors); report the pose at its stamp, the start.
        stamp_pose = pose @ interpolate_motion(self._delta, -0.5) if timed else pose
        record = _record(index, stamp, stamp_pose, result, len(source), self.threshold.sigma, preprocess_ms, map_ms)
        if index > 0 and stamp > self.stamps[-1]:
            dt = stamp - self.stamps[-1]
            record.twist = body_twist(self._delta, dt)
            # the frame's motion is the difference of two registered poses: both errors count
            record.twist_covariance = 2.0 * record.covariance / (dt * dt)
        self.poses.append(stamp_pose)
        self.stamps.append(stamp)
        return record


def body_twist(delta: np.ndarray, dt: float) -> np.ndarray:
    """Rotation-first body velocity (rad/s, m/s) of a motion ``delta`` (4x4, T_prev_curr) over ``dt`` s."""
    out = np.empty(6)
    out[:3] = so3_log(np.ascontiguousarray(delta[:3, :3])) / dt
    out[3:] = delta[:3, 3] / dt
    return out


def _record(index, stamp, pose, result: RegistrationResult | None, num_points, sigma, preprocess_ms, map_ms) -> FrameRecord:
    timings = dict.fromkeys(FRAME_TIMING_KEYS, 0.0)
    timings["preprocess"] = preprocess_ms
    timings["map_update"] = map_ms
    if result is None:
        return FrameRecord(index, stamp, pose, "first_frame", num_points=num_points, threshold=sigma, timings=timings)
    for key in ("correspondence", "hessian", "detection", "solve"):
        timings[key] = result.timings[key]
    return FrameRecord(
        index=index, stamp=stamp, pose=pose, status=result.status, iterations=result.iterations, rmse=result.rmse,
        fitness=result.fitness, num_points=num_points, num_correspondences=result.num_correspondences, threshold=sigma,
        covariance=result.covariance, degeneracy=result.degeneracy_last, degeneracy_first=result.degeneracy_first,
        timings=timings,
    )
