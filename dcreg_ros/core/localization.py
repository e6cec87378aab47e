"""Degeneracy-aware localization of LiDAR scans in a prior map.

    loc = dcreg_ros.Localizer(map_points)         # (M, 3) m, map frame; built once, never pruned
    loc.set_pose(T_map_sensor)                    # the first scan's pose; or loc.relocalize(scan)
    for scan in scans:
        report = loc.localize(scan.points, scan.times, stamp=scan.stamp)
        report.pose, report.tracking              # T_map_sensor at the stamp; OK / DEGRADED / LOST

Each scan goes through the odometry's steps against a static map instead of the local map:
validate the per-point times, predict with the odometry's motion priors (constant velocity, or
the robot's IMU and wheel odometry fed through :meth:`Localizer.add_imu` /
:meth:`Localizer.add_wheel_odometry`: core/motion_prior.py), deskew with that motion, crop,
downsample, and register with the same DCReg detection and mitigation (``dcreg_prior`` by
default: the flagged directions get the prediction with the weight its own uncertainty gives)
and the adaptive correspondence threshold. A quality
test follows: the fitness (share of scan points with a correspondence) and the inlier share
(share whose point-to-plane residual is below ``tracking.inlier_distance``). A frame below either
threshold is DEGRADED; ``tracking.lost_after`` such frames in a row make the track LOST, and the
localizer says so (large covariance, no extrapolation) instead of drifting silently. When lost,
and at the start without an initial pose, global registration can relocalize
(``relocalization`` section).

The map's own degeneracy remains: a featureless tunnel map cannot fix the position along the
tunnel, and the report flags that direction exactly as in odometry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
from .config import (SOURCE_BUDGET_HELP, SOURCE_POINT_BUDGET, ConvergenceConfig, CorrespondenceConfig, DegeneracyConfig, PreprocessConfig,
                     RegistrationConfig, RobustConfig)
from .config_io import ConfigError, LoadableConfig, non_negative, param, positive, section
from .correspondences import find_correspondences
from .covariance import UNINFORMATIVE_VARIANCE
from .deskew import ScanFractions, deskew, interpolate_motion, max_time_span, scan_points_and_times, sweep_share
from .geometry import invert_pose, is_valid_pose, project_to_so3
from .global_registration import GlobalTarget, global_register_to
from .fusion import LidarMeasurement, compound_covariance, information
from .measurement import lidar_uncertainty
from .motion_prior import (MotionPriorConfig, MotionPriors, Posterior, Prediction, configured_acceleration, delta_to_twist,
                           registration_prior)
from .odometry import TRACKING_DEGRADED, TRACKING_LOST, TRACKING_OK, AdaptiveThresholdConfig, FrameRecord, OdometryConfig
from .pointcloud import InputError, crop_range, finite_points
from .proprioception import ImuSamples, WheelOdometrySamples
from .registration import RegistrationResult, align, lidar_measurement, plane_parameters
from .solvers import strategy_code
from .threshold import AdaptiveThreshold
from .voxel_hash import voxel_downsample, voxel_downsample_within
from .voxel_map import VoxelMap

TRACKING_STATES = (TRACKING_OK, TRACKING_DEGRADED, TRACKING_LOST)
LOCALIZATION_TIMING_KEYS = ("preprocess", "correspondence", "hessian", "detection", "solve", "quality", "relocalization")
LOST_VARIANCE = UNINFORMATIVE_VARIANCE  # covariance of a lost pose: consumers must not trust it
LOCALIZATION_KAPPA_TARGET = 100.0  # clamp of the flagged eigenvalues (odometry: 20), see _localization_degeneracy
QUALITY_SAMPLES = 1500  # scan points the inlier share is measured on


# ---------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class LocalizationPreprocessConfig:
    """Per-scan preprocessing (as in odometry)."""

    min_range: float = param(1.0, "drop points closer than this to the sensor (m)", non_negative, ">= 0 m")
    max_range: float = param(100.0, "drop points farther than this (m)", positive, "> 0 m")
    deskew: bool = param(True, "motion-compensate scans that carry per-point time (with the predicted motion)")
    source_voxel_size: float = param(0.25, "voxel edge of the scan points registered against the map (m)", positive, "> 0 m")
    max_source_points: int = param(SOURCE_POINT_BUDGET, SOURCE_BUDGET_HELP, non_negative, ">= 0")


@dataclass(frozen=True)
class MapConfig:
    """The static map: downsampled once when loaded, then a voxel map that is never pruned."""

    load_voxel_size: float = param(0.25, "keep one map point per voxel of this edge when loading (m)", positive, "> 0 m")
    voxel_size: float = param(1.0, "voxel edge of the map (m); also the largest correspondence distance", positive, "> 0 m")
    max_points_per_voxel: int = param(0, "map points kept per voxel; 0 = every loaded point (capping drops the few points of small features such as door niches, which are what fixes the position along a corridor)", lambda k: 0 <= k <= 1000, "between 0 and 1000")
    max_points: int = param(20_000_000, "largest number of map points kept when loading (memory bound)", lambda k: k >= 10, ">= 10")


@dataclass(frozen=True)
class TrackingConfig:
    """The lost-track test."""

    min_fitness: float = param(0.3, "a frame is bad when fewer scan points than this share find a correspondence", lambda x: 0.0 <= x <= 1.0, "in [0, 1]")
    min_inlier_share: float = param(0.3, "a frame is bad when fewer scan points than this share lie within inlier_distance of a map plane", lambda x: 0.0 <= x <= 1.0, "in [0, 1]")
    inlier_distance: float = param(0.1, "point-to-plane distance of an inlier (m)", positive, "> 0 m")
    lost_after: int = param(5, "consecutive bad frames before the track is LOST", lambda k: k >= 1, ">= 1")


@dataclass(frozen=True)
class RelocalizationConfig:
    """Global relocalization (needs the global registration module)."""

    on_start: bool = param(False, "without an initial pose, find one by global registration of the first scan")
    when_lost: bool = param(True, "try global registration while the track is LOST")
    attempt_every: int = param(10, "frames between relocalization attempts while lost", lambda k: k >= 1, ">= 1")


def _localization_degeneracy() -> DegeneracyConfig:
    # The odometry's detection and mitigation (dcreg_prior, threshold 10). kappa_target only sets
    # the prior's strength with motion_prior.prior_strength kappa_target; there, against a fixed
    # map the weak information along a flagged direction is unbiased (a local map's drifts), so it
    # deserves more weight than in odometry: 100 instead of the odometry's 10, measured on the
    # simulated corridor, sparse corridor and tunnel (benchmarks/localization.py): 20 held a
    # sparse-corridor pass 87 cm off, 100 kept every pass within 3 cm.
    return replace(OdometryConfig().degeneracy, kappa_target=LOCALIZATION_KAPPA_TARGET)


def _localization_robust() -> RobustConfig:
    return OdometryConfig().robust


def _localization_convergence() -> ConvergenceConfig:
    return OdometryConfig().convergence


@dataclass(frozen=True)
class LocalizationConfig(LoadableConfig):
    """All localization parameters; registration defaults are the odometry's."""

    YAML_KEY = "localization"

    preprocess: LocalizationPreprocessConfig = section(LocalizationPreprocessConfig, "cropping, deskewing, downsampling of each scan")
    map: MapConfig = section(MapConfig, "the static map")
    adaptive_threshold: AdaptiveThresholdConfig = section(AdaptiveThresholdConfig, "correspondence threshold from the motion-model error")
    correspondence: CorrespondenceConfig = section(CorrespondenceConfig, "plane estimation of map points (max_distance and max_points_per_voxel come from map)")
    robust: RobustConfig = section(_localization_robust, "robust kernel (scale = sigma / 3 of the adaptive threshold)")
    degeneracy: DegeneracyConfig = section(_localization_degeneracy, "degeneracy detection and mitigation")
    convergence: ConvergenceConfig = section(_localization_convergence, "iteration control")
    motion_prior: MotionPriorConfig = section(MotionPriorConfig, "the prediction between scans (constant velocity, IMU, wheel odometry) and the dcreg_prior strength, as in odometry")
    tracking: TrackingConfig = section(TrackingConfig, "lost-track test")
    relocalization: RelocalizationConfig = section(RelocalizationConfig, "global relocalization")

    def check(self) -> None:
        p = self.preprocess
        if p.max_range <= p.min_range:
            raise ConfigError(f"preprocess.max_range ({p.max_range}) must exceed preprocess.min_range ({p.min_range})")

    def registration_config(self) -> RegistrationConfig:
        """The RegistrationConfig the scan-to-map alignment runs with."""
        cc = replace(self.correspondence, max_distance=self.map.voxel_size, max_points_per_voxel=self.map.max_points_per_voxel)
        return RegistrationConfig(preprocess=PreprocessConfig(), correspondence=cc, robust=self.robust,
                                  degeneracy=self.degeneracy, convergence=self.convergence)

    def with_strategy(self, strategy: str) -> "LocalizationConfig":
        strategy_code(strategy)
        return replace(self, degeneracy=replace(self.degeneracy, strategy=strategy))


# ---------------------------------------------------------------------------------- reports
@dataclass
class LocalizationReport(FrameRecord):
    """What the localizer did with one scan: the odometry's frame record with ``pose`` =
    T_map_sensor (4x4, m) at the scan's stamp, plus the tracking state.

    ``tracking``: OK, DEGRADED (this frame failed the quality test) or LOST (``bad_frames``
    consecutive failures, or no pose yet). ``inlier_share``: share of scan points within
    ``tracking.inlier_distance`` of a map plane. ``relocalized``: the pose came from global
    registration. ``message``: why a frame is not OK, in words.
    """

    tracking: str = TRACKING_LOST
    inlier_share: float = float("nan")
    bad_frames: int = 0
    relocalized: bool = False
    message: str = ""


@dataclass(frozen=True)
class MapInfo:
    """The static map: points stored, bounds (m, map frame), build time and memory."""

    num_points: int
    bounds_min: np.ndarray
    bounds_max: np.ndarray
    build_seconds: float
    nbytes: int

    def distance_outside(self, position: np.ndarray) -> float:
        """Distance (m) from a position to the map's bounding box (0 inside)."""
        gap = np.maximum(self.bounds_min - position, 0.0) + np.maximum(position - self.bounds_max, 0.0)
        return float(np.linalg.norm(gap))


@dataclass
class _Scan:
    """A preprocessed scan: points registered against the map, whether it carried times (then
    it is registered at mid-sweep, ``reference_time``), notes for the report."""

    source: np.ndarray
    timed: bool
    preprocess_ms: float
    reference_time: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass
class _Track:
    """Tracking state reset by set_pose / relocalization."""

    scan_pose: np.ndarray | None = None  # T_map_sensor at the last scan's reference time
    delta: np.ndarray = field(default_factory=lambda: np.eye(4))  # motion over the last interval
    frames: int = 0  # frames since the pose was set (0: the motion priors start at the next scan)
    bad_frames: int = 0
    since_attempt: int = 0  # frames since the last relocalization attempt
    # covariance of scan_pose in the map frame (6x6, rotation first, body frame), None until a registration fixed it
    pose_covariance: np.ndarray | None = None


def map_covariance(previous: np.ndarray | None, prediction: Prediction, posterior: Posterior) -> np.ndarray | None:
    """The pose's covariance in the map frame (6x6, rotation first, body frame): the previous one
    carried through the predicted motion, then fused with the LiDAR's measurement against the map
    (an absolute one: where the map constrains an axis it stays at the LiDAR's uncertainty, where
    it does not, as along a featureless corridor, it grows with the motion prior's)."""
    if previous is None:
        return None
    predicted = compound_covariance(previous, prediction.delta, prediction.covariance)
    if posterior.check is None:  # the LiDAR had nothing to say
        return predicted
    C = information(information(predicted) + information(posterior.check.lidar_covariance))
    return 0.5 * (C + C.T)


class Localizer:
    """Scan-to-map localization with DCReg degeneracy handling (see the module docstring).

    ``map_points`` (M, 3) in metres, map frame. With ``downsample`` the map keeps one point per
    ``map.load_voxel_size`` voxel first (``dcreg_ros.io.maps.load_map`` already did that).
    Raises InputError for a map with fewer than 10 finite points.
    """

    def __init__(self, map_points: np.ndarray, config: LocalizationConfig | None = None, strategy: str | None = None,
                 downsample: bool = True) -> None:
        config = config or LocalizationConfig()
        if strategy is not None:
            config = config.with_strategy(strategy)
        self.config = config
        self._registration = config.registration_config()
        started = time.perf_counter()
        points, _ = finite_points(map_points, "map")
        if downsample:
            points = voxel_downsample(points, config.map.load_voxel_size)
        mc = config.map
        self.map = VoxelMap.from_points(points, mc.voxel_size, mc.max_points_per_voxel, plane_parameters(self._registration))
        m = self.map
        self.map_info = MapInfo(len(m), points.min(axis=0), points.max(axis=0), time.perf_counter() - started,
                                int(m.points.nbytes + m.normals.nbytes + m.plane_state.nbytes + m.table_keys.nbytes
                                    + m.table_values.nbytes + m.cell_keys.nbytes + m.cell_counts.nbytes))
        self._global_target = None
        self.threshold = AdaptiveThreshold(config.adaptive_threshold.initial_threshold, config.adaptive_threshold.min_motion,
                                           config.preprocess.max_range)
        self._track = _Track()
        self._index = 0
        self._last_stamp: float | None = None
        self._reference_time = 0.0  # of the last scan registered (s)
        self.priors = MotionPriors(config.motion_prior)

    def update_config(self, config: LocalizationConfig) -> None:
        """Use a new configuration from the next scan on. Raises ConfigError when the change
        needs a new map (the ``map`` or ``correspondence`` sections)."""
        if config.map != self.config.map or config.correspondence != self.config.correspondence:
            raise ConfigError("map and correspondence parameters need a new map: restart with the new values")
        if config.motion_prior != self.config.motion_prior:
            self.priors.config = config.motion_prior
            self.priors.reset()
        self.config = config
        self._registration = config.registration_config()
        at = config.adaptive_threshold  # the learnt sigma stays
        self.threshold.initial, self.threshold.min_motion, self.threshold.max_range = at.initial_threshold, at.min_motion, config.preprocess.max_range

    # ------------------------------------------------------------------------ state
    @property
    def initialized(self) -> bool:
        """True once a pose was set (by the user or by relocalization)."""
        return self._track.scan_pose is not None

    @property
    def lost(self) -> bool:
        return not self.initialized or self._track.bad_frames >= self.config.tracking.lost_after

    def set_pose(self, T_map_sensor: np.ndarray) -> None:
        """Set the pose of the next scan (4x4, map frame, at its stamp); forgets the velocity.

        Raises InputError for an invalid pose or one so far outside the map (more than
        ``preprocess.max_range`` from its bounding box) that no map point could be in view.
        """
        T = np.asarray(T_map_sensor, dtype=np.float64)
        if not is_valid_pose(T):
            raise InputError("initial pose must be a finite 4x4 rigid transform")
        gap = self.map_info.distance_outside(T[:3, 3])
        if gap > self.config.preprocess.max_range:
            lo, hi = self.map_info.bounds_min, self.map_info.bounds_max
            raise InputError(f"initial position ({T[0, 3]:.1f}, {T[1, 3]:.1f}, {T[2, 3]:.1f}) m is {gap:.0f} m outside the map "
                             f"(bounds x {lo[0]:.1f}..{hi[0]:.1f}, y {lo[1]:.1f}..{hi[1]:.1f}, z {lo[2]:.1f}..{hi[2]:.1f} m), "
                             f"beyond the sensor range of {self.config.preprocess.max_range:g} m")
        self._track = _Track(scan_pose=T.copy())

    def reset(self) -> None:
        """Forget the pose, the velocity and the learnt threshold (the map and the buffered IMU /
        wheel measurements stay)."""
        self._track = _Track()
        self.threshold.reset()
        self._last_stamp = None
        self.priors.reset()

    # ------------------------------------------------------------------------ motion inputs
    def add_imu(self, samples: ImuSamples) -> None:
        """Feed IMU measurements (REP-145, IMU frame; see ``motion_prior.imu_to_lidar``) before
        the scans that need them, as for :meth:`dcreg_ros.Odometry.add_imu`."""
        self.priors.add_imu(samples)

    def add_wheel_odometry(self, samples: WheelOdometrySamples) -> None:
        """Feed wheel odometry (T_odom_base poses and base twists; see ``motion_prior.lidar_to_base``)."""
        self.priors.add_wheel_odometry(samples)

    def expect_motion_inputs(self, imu: bool, wheel: bool) -> None:
        """Which of add_imu / add_wheel_odometry the caller will feed: their absence is then noted."""
        self.priors.expect(imu, wheel)

    # ------------------------------------------------------------------------ per scan
    def localize(self, points: np.ndarray, timestamps: np.ndarray | None = None, stamp: float | None = None) -> LocalizationReport:
        """Localize one scan (see :meth:`_localize`); ``report.wall_ms`` is the call's wall-clock time."""
        started = time.perf_counter()
        report = self._localize(points, timestamps, stamp)
        report.wall_ms = (time.perf_counter() - started) * 1e3
        return report

    def _localize(self, points: np.ndarray, timestamps: np.ndarray | None, stamp: float | None) -> LocalizationReport:
        """Localize one scan (N, 3 m, sensor frame; optional per-point times, s relative to the
        stamp: implausible ones turn deskewing off for the frame, with a note in the report).

        Raises InputError for unusable scans, leaving the state unchanged.
        """
        stamp = self._stamp(stamp)
        pts, times = self._scan_times(points, timestamps, stamp)
        reference_time = times.reference_time(stamp)
        if not self.initialized:
            scan = self._preprocess(pts, times, None, reference_time)
            if self.config.relocalization.on_start:
                return self._relocalize_scan(scan, stamp)
            return self._lost_report(scan, stamp, np.eye(4), "no initial pose: set one or enable relocalization")
        track = self._track
        attempt_ms = 0.0
        if self.lost and self.config.relocalization.when_lost:
            track.since_attempt += 1
            if track.since_attempt >= self.config.relocalization.attempt_every:
                track.since_attempt = 0
                report = self._relocalize_scan(self._preprocess(pts, times, None, reference_time), stamp)
                if report.tracking == TRACKING_OK:
                    return report
                # the failed attempt's report is not returned: this frame keeps its index and
                # reports the attempt's time
                self._index, attempt_ms = report.index, report.timings["relocalization"]
        prediction = self._predict(reference_time)
        scan = self._preprocess(pts, times, None if prediction is None else prediction.delta, reference_time)
        guess = track.scan_pose if prediction is None else track.scan_pose @ prediction.delta
        result = self._align(scan.source, guess, prediction)
        return self._finish(scan, stamp, guess, result, prediction, extra_ms=attempt_ms)

    def relocalize(self, points: np.ndarray, timestamps: np.ndarray | None = None, stamp: float | None = None) -> LocalizationReport:
        """Find the pose of one scan by global registration against the map, refine it with the
        localizer's registration and test it; on success (``tracking == OK``) tracking restarts
        from it, otherwise the state is unchanged. Raises InputError for unusable scans."""
        started = time.perf_counter()
        stamp = self._stamp(stamp)
        pts, times = self._scan_times(points, timestamps, stamp)
        reference_time = times.reference_time(stamp)
        report = self._relocalize_scan(self._preprocess(pts, times, None, reference_time), stamp)
        report.wall_ms = (time.perf_counter() - started) * 1e3
        return report

    def _stamp(self, stamp: float | None) -> float:
        stamp = float(stamp) if stamp is not None else self._index * 0.1
        if not np.isfinite(stamp):
            raise InputError(f"scan stamp {stamp} is not a finite number of seconds")
        return stamp

    def _scan_times(self, points: np.ndarray, timestamps: np.ndarray | None, stamp: float) -> tuple[np.ndarray, ScanFractions]:
        """Finite points and their validated per-point times (within a plausible sweep span)."""
        dt = stamp - self._last_stamp if self._last_stamp is not None and stamp > self._last_stamp else None
        return scan_points_and_times(points, timestamps, max_time_span(dt), "scan")

    def _predict(self, reference_time: float) -> Prediction | None:
        """The motion priors' prediction from the last scan to this one; None right after the pose
        was set (the priors start there: no velocity is known yet)."""
        track = self._track
        if track.frames == 0:
            return None
        return self.priors.predict(self._reference_time, reference_time, track.scan_pose)

    def _align(self, source: np.ndarray, init: np.ndarray, prediction: Prediction | None = None) -> RegistrationResult:
        """Scan-to-map registration with the odometry's DCReg strategy, motion prior and adaptive threshold.

        Right after a pose was set the threshold starts from ``initial_threshold`` (the initial
        error is not a motion-model error and may be larger than the learnt sigma)."""
        sigma = self.threshold.sigma if self._track.frames > 0 else self.threshold.initial
        return align(source, self.map, init, self._registration,
                     max_distance=min(3.0 * sigma, self.config.map.voxel_size), kernel_scale=max(sigma / 3.0, 1e-3),
                     prior=registration_prior(self.config.motion_prior, prediction), measure_cell=self.config.map.voxel_size)

    @property
    def _fusing(self) -> bool:
        return self.config.degeneracy.strategy == "dcreg_prior" and self.config.motion_prior.prior_strength == "prediction"

    def _measurement(self, result: RegistrationResult, interval: float) -> LidarMeasurement | None:
        """The registration's measurement of the pose in the map with its honest covariance
        (core/measurement.py; the scan's deskewing is not modelled here: no per-point times are kept)."""
        uncertainty = None
        if result.ok and result.statistics is not None:
            d = self.config.degeneracy
            acceleration = np.diag(configured_acceleration(self.config.motion_prior) ** 2)
            uncertainty = lidar_uncertainty(result.statistics, np.zeros((6, 6)), acceleration, interval,
                                            np.radians(d.max_std_rotation), d.max_std_translation)
        return lidar_measurement(result, uncertainty, self._fusing)

    def _preprocess(self, pts: np.ndarray, times: ScanFractions, motion: np.ndarray | None, reference_time: float) -> _Scan:
        """Deskewed (with the predicted ``motion`` over the sweep, when there is one), cropped and
        downsampled scan points."""
        started = time.perf_counter()
        p = self.config.preprocess
        fractions, notes = times.fractions, [times.note] if times.note else []
        if fractions is not None and p.deskew and motion is not None:
            sweep = sweep_share(times, reference_time - self._reference_time)  # the sweep's share of the motion's interval
            pts = deskew(pts, fractions * sweep, motion, 0.5 * sweep)
        pts = crop_range(pts, p.min_range, p.max_range, "scan")
        source = pts[voxel_downsample_within(pts, p.source_voxel_size, p.max_source_points)]
        timed = fractions is not None or bool(notes)
        return _Scan(source, timed, (time.perf_counter() - started) * 1e3, reference_time, notes)

    def _quality(self, source: np.ndarray, T: np.ndarray) -> tuple[float, float]:
        """(inlier share, milliseconds): share of scan points within ``inlier_distance`` of a map
        plane under pose T."""
        started = time.perf_counter()
        cc = self._registration.correspondence
        # a share needs no more than a few thousand samples: an evenly spaced subset costs a
        # fraction of a registration iteration
        sample = source[:: max(1, len(source) // QUALITY_SAMPLES)]
        _, residuals, valid = find_correspondences(sample, T, self.map, "point_plane", cc.max_distance, cc.knn, cc.max_plane_thickness)
        with np.errstate(invalid="ignore"):
            inliers = np.count_nonzero(valid & (np.abs(residuals) <= self.config.tracking.inlier_distance))
        share = inliers / max(len(sample), 1)
        return float(share), (time.perf_counter() - started) * 1e3

    def _judge(self, result: RegistrationResult, inlier_share: float) -> str:
        """'' when the frame passes the quality test, else the reason in words."""
        tc = self.config.tracking
        if not result.ok:
            return f"registration failed ({result.status})"
        if not result.fitness >= tc.min_fitness:
            return f"fitness {result.fitness:.2f} < {tc.min_fitness:g}"
        if not inlier_share >= tc.min_inlier_share:
            return f"inlier share {inlier_share:.2f} < {tc.min_inlier_share:g}"
        return ""

    def _finish(self, scan: _Scan, stamp: float, guess: np.ndarray, result: RegistrationResult,
                prediction: Prediction | None = None, relocalized: bool = False, extra_ms: float = 0.0) -> LocalizationReport:
        """Judge a registered scan, update the track and the motion priors, build the report."""
        track = self._track
        pose = result.T_target_source.copy() if result.ok else guess.copy()
        pose[:3, :3] = project_to_so3(pose[:3, :3])
        share, quality_ms = self._quality(scan.source, pose)
        problem = self._judge(result, share)
        tc = self.config.tracking
        track.bad_frames = 0 if not problem else track.bad_frames + 1
        tracking = TRACKING_OK if not problem else (TRACKING_LOST if track.bad_frames >= tc.lost_after else TRACKING_DEGRADED)
        previous = track.scan_pose
        notes = list(scan.notes)
        if tracking == TRACKING_LOST:
            pose = previous.copy()  # hold the last pose: a lost track must not wander with bad fits
            track.frames = 0  # and must not extrapolate a velocity it no longer measures: the priors restart
            track.delta = np.eye(4)
        elif prediction is None:  # the first scan at a new pose: the motion priors start here
            self.priors.reset()
            self.priors.start(pose, scan.reference_time)
            track.delta = np.eye(4)
            track.frames += 1
            measurement = self._measurement(result, 0.1)
            track.pose_covariance = None if measurement is None else measurement.covariance.copy()
        else:
            interval = scan.reference_time - self._reference_time
            if not interval > 0.0:
                interval = stamp - self._last_stamp if self._last_stamp is not None and stamp > self._last_stamp else 0.1
            measurement = self._measurement(result, interval)
            posterior = self.priors.correct(previous, prediction, measurement, interval, scan.reference_time, fusing=self._fusing)
            pose = posterior.pose
            pose[:3, :3] = project_to_so3(pose[:3, :3])
            track.pose_covariance = map_covariance(track.pose_covariance, prediction, posterior)
            notes = prediction.notes + posterior.notes + notes
            # no fallback to min_motion here (previous pose not given): against a fixed map the wide
            # initial threshold is what lets a few features pull back a drift along a weak axis
            # (measured: the sparse corridor with the IMU, seed 3, 2.6 cm -> 6.7 m with it)
            self.threshold.update(guess, pose)
            track.delta = invert_pose(previous) @ pose
            track.frames += 1
        track.scan_pose = pose
        previous_reference, self._reference_time = self._reference_time, scan.reference_time
        interval = scan.reference_time - previous_reference
        offset = scan.reference_time - stamp  # from the stamp to the sweep's middle (s)
        stamp_pose = pose @ interpolate_motion(track.delta, -offset / interval) if scan.timed and interval > 0.0 else pose
        report = self._report(scan, stamp, stamp_pose, result, share, tracking, problem)
        if tracking != TRACKING_LOST and track.pose_covariance is not None:
            report.covariance = track.pose_covariance.copy()
            report.pose_covariance = track.pose_covariance.copy()
        report.notes = notes
        report.relocalized = relocalized
        report.timings["quality"] = quality_ms
        report.timings["relocalization"] = extra_ms
        if prediction is not None:
            report.prior_source, report.prior_age = prediction.source, prediction.age
            if self.config.degeneracy.strategy == "dcreg_prior" and registration_prior(self.config.motion_prior, prediction) is not None and report.degeneracy:
                report.prior_axes = tuple(report.degeneracy.degenerate_axes)
        if self._last_stamp is not None and stamp > self._last_stamp and tracking != TRACKING_LOST and track.frames > 1:
            dt = stamp - self._last_stamp
            report.twist = delta_to_twist(track.delta, dt)
            report.twist_covariance = self.priors.constant_velocity.covariance.copy()
        self._last_stamp = stamp
        self._index += 1
        return report

    def _report(self, scan: _Scan, stamp: float, pose: np.ndarray, result: RegistrationResult | None, share: float,
                tracking: str, message: str) -> LocalizationReport:
        timings = dict.fromkeys(LOCALIZATION_TIMING_KEYS, 0.0)
        timings["preprocess"] = scan.preprocess_ms
        report = LocalizationReport(index=self._index, stamp=stamp, pose=pose, status="not_registered", num_points=len(scan.source),
                                    threshold=self.threshold.sigma, timings=timings, tracking=tracking, inlier_share=share,
                                    bad_frames=self._track.bad_frames, message=message)
        if result is not None:
            for key in ("correspondence", "hessian", "detection", "solve"):
                timings[key] = result.timings[key]
            report.status, report.iterations, report.rmse = result.status, result.iterations, result.rmse
            report.fitness, report.num_correspondences = result.fitness, result.num_correspondences
            report.covariance = result.covariance
            report.degeneracy, report.degeneracy_first = result.degeneracy_last, result.degeneracy_first
        if tracking == TRACKING_LOST:
            report.covariance = np.eye(6) * LOST_VARIANCE
        return report

    def _lost_report(self, scan: _Scan, stamp: float, pose: np.ndarray, message: str, extra_ms: float = 0.0) -> LocalizationReport:
        report = self._report(scan, stamp, pose, None, float("nan"), TRACKING_LOST, message)
        report.timings["relocalization"] = extra_ms
        self._index += 1
        return report

    # ------------------------------------------------------------------------ relocalization
    def _relocalize_scan(self, scan: _Scan, stamp: float) -> LocalizationReport:
        started = time.perf_counter()
        candidate = self._global_candidate(scan.source)
        extra_ms = (time.perf_counter() - started) * 1e3
        if candidate is None:
            pose = self._track.scan_pose if self.initialized else np.eye(4)
            return self._lost_report(scan, stamp, pose, "relocalization failed: global registration found no plausible pose", extra_ms)
        saved_track = self._track
        self._track = _Track(scan_pose=candidate)
        result = self._align(scan.source, candidate)
        report = self._finish(scan, stamp, candidate, result, relocalized=True, extra_ms=extra_ms)
        if report.tracking != TRACKING_OK:  # the candidate does not hold: keep the previous state
            self._track = saved_track
            report.tracking = TRACKING_LOST
            report.covariance = np.eye(6) * LOST_VARIANCE
            report.message = f"relocalization rejected: {report.message}"
            report.pose = saved_track.scan_pose.copy() if saved_track.scan_pose is not None else np.eye(4)
        return report

    def _global_candidate(self, source: np.ndarray) -> np.ndarray | None:
        """T_map_sensor of a scan from global registration against the map (core/global_registration.py:
        the map's features are computed once), or None when it found no plausible pose."""
        if self._global_target is None:
            self._global_target = GlobalTarget.from_points(self.map.point_cloud())
        result = global_register_to(source, self._global_target)
        if not result.success or not is_valid_pose(result.T_target_source):
            return None
        return np.asarray(result.T_target_source, dtype=np.float64)
