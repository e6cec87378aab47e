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
from collections import deque
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

from .config import (SOURCE_BUDGET_HELP, SOURCE_POINT_BUDGET, ConvergenceConfig, CorrespondenceConfig, DegeneracyConfig, PreprocessConfig,
                     RegistrationConfig, RobustConfig)
from .config_io import ConfigError, LoadableConfig, non_negative, param, positive, section
from .degeneracy import AXIS_NAMES, DegeneracyReport
from .covariance import FIRST_FRAME_VARIANCE, UNINFORMATIVE_VARIANCE
from .deskew import ScanFractions, deskew, interpolate_motion, max_time_span, scan_points_and_times, sweep_share
from .geometry import invert_pose, project_to_so3, transform_points
from .fusion import compound_covariance, perturb, tangent
from .global_map import GlobalMap
from .measurement import LidarUncertainty, lidar_uncertainty
from .motion_prior import (MotionPriorConfig, MotionPriors, Posterior, Prediction, configured_acceleration, delta_to_twist,
                           registration_prior)
from .proprioception import ImuSamples, WheelOdometrySamples
from .pointcloud import InputError, range_indices
from .fusion import LidarMeasurement
from .registration import REGISTERED_STATUSES, RegistrationResult, align, lidar_measurement, plane_parameters
from .solvers import strategy_code
from .stamps import NEW_SEQUENCE, StampConfig, StampGuard, StampRejected
from .threshold import AdaptiveThreshold
from .voxel_hash import voxel_downsample_indices, voxel_downsample_within
from .voxel_map import VoxelMap

FRAME_TIMING_KEYS = ("preprocess", "correspondence", "hessian", "detection", "solve", "map_update")
FIRST_FRAME = "first_frame"  # the status of the frame that starts the map (and the odom frame)
# statuses of a frame whose pose came from registration (or that started the map)
GOOD_STATUSES = (FIRST_FRAME, *REGISTERED_STATUSES)


@dataclass(frozen=True)
class OdometryPreprocessConfig:
    """Per-frame preprocessing."""

    min_range: float = param(1.0, "drop points closer than this to the sensor (m): robot body, operator", non_negative, ">= 0 m")
    max_range: float = param(100.0, "drop points farther than this (m); also the local map radius", positive, "> 0 m")
    deskew: bool = param(True, "motion-compensate scans that carry per-point time (constant velocity)")
    source_voxel_size: float = param(0.25, "voxel edge of the points registered against the map (m); not finer than map_voxel_size", positive, "> 0 m")
    map_voxel_size: float = param(0.25, "voxel edge of the points inserted into the map (m)", positive, "> 0 m")
    max_source_points: int = param(SOURCE_POINT_BUDGET, SOURCE_BUDGET_HELP, non_negative, ">= 0")
    deskew_passes: int = param(2, "1: deskew with the predicted motion; 2: then deskew again with the registered motion and register once more (the prediction's error otherwise distorts the scan: 2-4x the per-frame error on a wobbling robot)", lambda k: k in (1, 2), "1 or 2")


@dataclass(frozen=True)
class MappingConfig:
    """The voxel-hash local map."""

    voxel_size: float = param(1.0, "map voxel edge (m); also the largest correspondence distance", positive, "> 0 m")
    max_points_per_voxel: int = param(20, "points kept per map voxel", lambda k: 1 <= k <= 1000, "between 1 and 1000")


@dataclass(frozen=True)
class AdaptiveThresholdConfig:
    """Correspondence threshold from the motion-model error (KISS-ICP style)."""

    initial_threshold: float = param(2.0, "sigma before any motion was observed (m)", positive, "> 0 m")
    min_motion: float = param(0.1, "frames whose model error is below this (m) do not update sigma; in odometry, once 10 frames that moved further were all predicted this well (an IMU, the wheels), sigma is this", non_negative, ">= 0 m")


def _odometry_robust() -> RobustConfig:
    return RobustConfig(kernel="geman_mcclure", adaptive_scale=False)


def _odometry_degeneracy() -> DegeneracyConfig:
    return DegeneracyConfig(strategy="dcreg_prior")


def _odometry_convergence() -> ConvergenceConfig:
    return ConvergenceConfig(max_iterations=30, rotation_tolerance=1e-4, translation_tolerance=1e-3, coarse_fraction=0.0)


@dataclass(frozen=True)
class TrackingConfig:
    """The quality test of every registered scan and what happens when scans fail it."""

    min_inlier_ratio: float = param(0.6, "a scan whose inlier share (correspondences / points) falls below this fraction of the recent scans' median is refused", lambda x: isinstance(x, (int, float)) and 0.0 <= x < 1.0, "in [0, 1)")
    max_rmse_ratio: float = param(3.0, "a scan whose point-to-plane RMSE exceeds this multiple of the recent scans' median, and a quarter of the correspondence threshold, is refused (it fits the map nowhere: a scan from elsewhere)", lambda x: isinstance(x, (int, float)) and x > 1.0, "> 1")
    max_jump_sigma: float = param(10.0, "a scan the registration moves further from the prediction than this many standard deviations (prediction and LiDAR together), on an axis it measures well, is refused: a scan from elsewhere, a corrupted one, a wrong local minimum", lambda x: isinstance(x, (int, float)) and x > 3.0, "> 3")
    lost_after: int = param(5, "refused scans in a row before the track counts as LOST and global registration against the local map is tried", lambda k: isinstance(k, int) and k >= 1, ">= 1")
    relocalize_every: int = param(5, "while LOST, try global registration against the local map every this many scans", lambda k: isinstance(k, int) and k >= 1, ">= 1")
    reset_after: int = param(50, "refused scans in a row after which the odometry restarts from the current scan (a new map; the record says so)", lambda k: isinstance(k, int) and k >= 2, ">= 2")


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
    motion_prior: MotionPriorConfig = section(MotionPriorConfig, "the motion prediction between scans and its uncertainty (the prior of dcreg_prior)")
    convergence: ConvergenceConfig = section(_odometry_convergence, "iteration control")
    stamps: StampConfig = section(StampConfig, "frame stamp sanity: out of order, jumps (outlier or new sequence)")
    tracking: TrackingConfig = section(TrackingConfig, "the quality test of every scan: refused scans stay out of the map; LOST, recovery")

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
    (6x6, same order). ``timings``: milliseconds per stage. ``sequence_reset``: the stamps
    jumped and continued elsewhere, so the odometry restarted at this frame; ``notes``: one-line
    remarks on the frame for the user (deskewing off, a stamp outlier, a motion-prior fallback),
    each worth a WARN; ``prior_source``: the motion model that predicted the frame.
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
    covariance: np.ndarray = field(default_factory=lambda: np.eye(6) * UNINFORMATIVE_VARIANCE)
    twist: np.ndarray = field(default_factory=lambda: np.zeros(6))
    twist_covariance: np.ndarray = field(default_factory=lambda: np.eye(6) * UNINFORMATIVE_VARIANCE)
    degeneracy: DegeneracyReport | None = None
    degeneracy_first: DegeneracyReport | None = None
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    prior_source: str = "none"  # constant_velocity, imu, wheel or imu_wheel
    prior_age: float = 0.0  # s since the newest IMU / wheel sample the prediction used
    prior_axes: tuple[str, ...] = ()  # the flagged axes the prediction's prior acted on (dcreg_prior)
    sequence_reset: bool = False
    wall_ms: float = float("nan")  # wall-clock time of the whole call (points in, pose out), ms
    # accumulated since the first scan (6x6, rotation first, body frame): grows while a direction stays unobserved
    pose_covariance: np.ndarray = field(default_factory=lambda: np.eye(6) * FIRST_FRAME_VARIANCE)
    absolute_weak: tuple[bool, ...] = (False,) * 6  # axes whose geometric std exceeds the absolute limits
    tracking: str = "OK"  # OK, DEGRADED (the scan was refused: pose from the prediction) or LOST (refused lost_after times in a row)
    tracking_message: str = ""  # why the scan was refused, or how the track recovered
    lidar_std: np.ndarray = field(default_factory=lambda: np.full(6, np.nan))  # the LiDAR's own geometric std (rad, m)

    @property
    def axis_std(self) -> np.ndarray:
        """Standard deviation per axis from ``covariance``: roll, pitch, yaw (deg), x, y, z (m)."""
        std = np.sqrt(np.clip(np.diag(self.covariance), 0.0, None))
        return np.concatenate([np.degrees(std[:3]), std[3:]])

    @property
    def ok(self) -> bool:
        """True unless the registration failed (then the pose is the motion model's)."""
        return self.status in GOOD_STATUSES

    @property
    def total_ms(self) -> float:
        """Wall-clock ms of the call that produced the record (the time a user measures around it);
        ``timings`` is the breakdown by stage, which leaves the bookkeeping between stages out."""
        return self.wall_ms if np.isfinite(self.wall_ms) else float(sum(self.timings.values()))

    @property
    def relative_weak(self) -> tuple[bool, ...]:
        """The axes DCReg's relative (Schur) test flagged in the last iteration."""
        return tuple(self.degeneracy.mask) if self.degeneracy is not None else (False,) * 6

    @property
    def degenerate_mask(self) -> tuple[bool, ...]:
        """The weak axes: flagged by the relative test, the absolute test or both."""
        return tuple(r or a for r, a in zip(self.relative_weak, self.absolute_weak))

    @property
    def pose_std(self) -> np.ndarray:
        """Standard deviation per axis of the accumulated pose: roll, pitch, yaw (deg), x, y, z (m)."""
        std = np.sqrt(np.clip(np.diag(self.pose_covariance), 0.0, None))
        return np.concatenate([np.degrees(std[:3]), std[3:]])


class Preprocessed(NamedTuple):
    """One frame after preprocessing: ``source`` (registered), ``frame`` (inserted into the map),
    whether it was ``timed`` (a sweep with per-point times, deskewed unless a note says why not),
    ``notes`` for the record and ``source_fractions``: each source point's time relative to the
    middle of the sweep, in frame intervals (-1/2..1/2 when the sweep fills the interval), or None
    without per-point times; ``sweep``: the sweep's share of the frame interval (below 1 when
    scans were dropped or skipped: a 0.1 s sweep 0.5 s after the last scan)."""

    source: np.ndarray
    frame: np.ndarray
    timed: bool
    notes: list[str]
    source_fractions: np.ndarray | None = None
    frame_index: np.ndarray | None = None  # of the frame's points among the scan's (to deskew them again)
    source_in_frame: np.ndarray | None = None  # of the source points among the frame's (None: all)
    sweep: float = 1.0


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
        self._stamp_guard.config = config.stamps
        if config.motion_prior != old.motion_prior:
            self.priors.config = config.motion_prior
            self.priors.reset()
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
        self._reference_time = 0.0  # of the last scan (s): the stamp, or mid-sweep when deskewed
        self._stamp_guard = StampGuard(cfg.stamps)
        self._pose_covariance = np.eye(6) * FIRST_FRAME_VARIANCE  # accumulated, body frame of the last pose
        self._fitness: deque[tuple[float, float]] = deque(maxlen=TRACKING_WINDOW)  # (inlier share, RMSE) of the recent accepted scans
        self._refused = 0  # scans refused in a row
        self._sweep_middle: float | None = None  # the last timed scan's middle, s after its stamp
        if hasattr(self, "priors"):
            self.priors.reset()  # measurements already fed stay (and what is expected); the filters restart
        else:
            self.priors = MotionPriors(cfg.motion_prior)
        if self.global_map is not None:
            self.global_map.clear()  # its points are in the frame of the trajectory just forgotten

    def add_imu(self, samples: ImuSamples) -> None:
        """Feed IMU measurements (REP-145, IMU frame; see ``motion_prior.imu_to_lidar``), at any
        time before the scans that need them; out-of-order samples are dropped and counted."""
        self.priors.add_imu(samples)

    def expect_motion_inputs(self, imu: bool, wheel: bool) -> None:
        """Which of add_imu / add_wheel_odometry the caller will feed: their absence is then noted."""
        self.priors.expect(imu, wheel)

    def add_wheel_odometry(self, samples: WheelOdometrySamples) -> None:
        """Feed wheel odometry (T_odom_base poses and base twists; see ``motion_prior.lidar_to_base``)."""
        self.priors.add_wheel_odometry(samples)

    @property
    def last_pose(self) -> np.ndarray:
        return self.poses[-1] if self.poses else np.eye(4)

    def _preprocess(self, pts: np.ndarray, times: ScanFractions, motion: np.ndarray, sweep: float) -> Preprocessed:
        """Cropped, deskewed, downsampled points; ``motion`` (4x4) is the predicted motion over
        the frame interval, of which the sweep lasts the share ``sweep``."""
        p = self.config.preprocess
        fractions, notes = times.fractions, [times.note] if times.note else []
        if fractions is not None and p.deskew and len(self.poses) >= 2:
            pts = deskew(pts, fractions * sweep, motion, 0.5 * sweep)
        kept = range_indices(pts, p.min_range, p.max_range, "frame")
        pts = pts[kept]
        in_frame = voxel_downsample_indices(pts, p.map_voxel_size)
        frame = pts[in_frame]
        in_source = voxel_downsample_within(frame, max(p.source_voxel_size, p.map_voxel_size), p.max_source_points,
                                            downsampled=p.source_voxel_size <= p.map_voxel_size)
        in_source = None if len(in_source) == len(frame) else in_source
        source = frame if in_source is None else frame[in_source]
        source_fractions = None
        if fractions is not None:
            source_fractions = (fractions[kept][in_frame] - 0.5) * sweep
            source_fractions = source_fractions if in_source is None else source_fractions[in_source]
        # implausible times still mark a sweep: its pose is reported like the neighbours' (at the stamp)
        return Preprocessed(source, frame, fractions is not None or bool(notes), notes, source_fractions, kept[in_frame], in_source,
                            sweep)

    def _deskew_again(self, pts: np.ndarray, times: ScanFractions, scan: Preprocessed, motion: np.ndarray) -> Preprocessed:
        """The same preprocessed points deskewed with another motion (only the kept ones: they move
        by centimetres, not across voxels)."""
        frame = deskew(pts[scan.frame_index], times.fractions[scan.frame_index] * scan.sweep, motion, 0.5 * scan.sweep)
        source = frame if scan.source_in_frame is None else frame[scan.source_in_frame]
        return scan._replace(source=source, frame=frame)

    def register_frame(self, points: np.ndarray, timestamps: np.ndarray | None = None, stamp: float | None = None) -> FrameRecord:
        """Register one scan (see :meth:`_register_frame`); ``record.wall_ms`` is the call's wall-clock time."""
        started = time.perf_counter()
        record = self._register_frame(points, timestamps, stamp)
        record.wall_ms = (time.perf_counter() - started) * 1e3
        return record

    def _register_frame(self, points: np.ndarray, timestamps: np.ndarray | None, stamp: float | None) -> FrameRecord:
        """Register one scan (N, 3 metres, sensor frame) with optional per-point times (s
        relative to the stamp; implausible ones turn deskewing off for the frame, with a note in
        the record) at ``stamp`` (s; default: 0.1 s per frame). Raises InputError for unusable
        frames, leaving the odometry state unchanged; stamps are checked first (core/stamps.py):
        a frame out of order or after a jump is refused, and a jump that persists restarts the
        odometry (``record.sequence_reset``)."""
        stamp = float(stamp) if stamp is not None else len(self.poses) * 0.1
        if not np.isfinite(stamp):
            raise InputError(f"frame stamp {stamp} is not a finite number of seconds")
        verdict = self._stamp_guard.check(stamp)
        if verdict.refused:
            raise StampRejected(verdict)
        if verdict.action == NEW_SEQUENCE:
            self.reset()
        index = len(self.poses)
        dt = stamp - self.stamps[-1] if self.stamps else 0.0
        t0 = time.perf_counter()
        pts, times = scan_points_and_times(points, timestamps, max_time_span(dt if self.stamps else None), "frame")
        reference_time = times.reference_time(stamp)  # the middle of the sweep (see the deskew module)
        if times.fractions is not None:
            self._sweep_middle = reference_time - stamp
        elif times.note and self._sweep_middle is not None:
            reference_time = stamp + self._sweep_middle  # unusable times still mark a sweep: where the last ones put its middle
        if index == 0:
            self.priors.start(self._scan_pose, reference_time)
            prediction = None
        else:
            prediction = self.priors.predict(self._reference_time, reference_time, self._scan_pose)
        interval = (reference_time - self._reference_time if reference_time > self._reference_time else dt) if index else 0.0
        scan = self._preprocess(pts, times, self._delta if prediction is None else prediction.delta, sweep_share(times, interval))
        preprocess_ms = (time.perf_counter() - t0) * 1e3
        estimate = None
        if index == 0:
            pose = self._scan_pose
        else:
            estimate = self._estimate(pts, times, scan, prediction, interval, reference_time)
            scan, pose = estimate.scan, estimate.posterior.pose
            tracking = self._track(estimate, scan, reference_time)
            if tracking.restart:
                return self._restart(points, timestamps, stamp, tracking.message)
            if tracking.pose is not None:
                pose = tracking.pose
            pose[:3, :3] = project_to_so3(pose[:3, :3])  # keep the chained poses orthonormal
            if tracking.pose is not None:  # recovered: the jump is no motion (nothing is known of it)
                self._delta = np.eye(4)
            else:
                if tracking.state == TRACKING_OK:
                    self.threshold.update(self._scan_pose @ prediction.delta, pose, self._scan_pose)
                self._delta = invert_pose(self._scan_pose) @ pose
        t1 = time.perf_counter()
        self._reference_time = reference_time
        if estimate is None or tracking.state == TRACKING_OK:  # a refused scan stays out of the map
            world = transform_points(pose, scan.frame)
            self.local_map.insert(world)
            if self.global_map is not None:
                self.global_map.insert(world)
            self.local_map.remove_far(pose[:3, 3], self.config.preprocess.max_range)
        map_ms = (time.perf_counter() - t1) * 1e3
        self._scan_pose = pose
        # A scan is registered at its mid-point (where a skewed scan's points sit on average and
        # where deskewing is unbiased by velocity errors); report the pose at its stamp, the start.
        offset = reference_time - stamp  # from the stamp to the sweep's middle (s)
        stamp_pose = pose @ interpolate_motion(self._delta, -offset / interval) if scan.timed and interval > 0.0 else pose
        record = _record(index, stamp, stamp_pose, None if estimate is None else estimate.result, len(scan.source),
                         self.threshold.sigma, preprocess_ms, map_ms)
        record.notes = list(scan.notes)
        if estimate is not None:
            self._pose_covariance = compound_covariance(self._pose_covariance, self._delta, estimate.posterior.covariance)
            record.covariance = estimate.posterior.covariance
            record.notes = prediction.notes + estimate.notes + record.notes
            record.tracking, record.tracking_message = tracking.state, tracking.message
            if tracking.message and tracking.state == TRACKING_OK:
                record.notes.append(tracking.message)
            if estimate.uncertainty is not None:
                record.absolute_weak = tuple(bool(w) for w in estimate.uncertainty.absolute_weak)
                record.lidar_std = estimate.uncertainty.geometric_std
        record.pose_covariance = self._pose_covariance.copy()
        if index > 0 and dt > 0.0:
            record.twist = delta_to_twist(self._delta, dt)
            record.twist_covariance = record.covariance / (dt * dt)  # the frame's motion, per second
            record.prior_source = prediction.source
            record.prior_age = prediction.age
            if estimate.result is not None and self._fusing and record.degeneracy is not None:
                record.prior_axes = tuple(record.degeneracy.degenerate_axes)
        self.poses.append(stamp_pose)
        self.stamps.append(stamp)
        self._stamp_guard.commit(stamp)
        record.sequence_reset = verdict.action == NEW_SEQUENCE
        if verdict.reason:
            record.notes = [verdict.reason] + record.notes
        return record

    def _track(self, estimate: "FrameEstimate", scan: "Preprocessed", reference_time: float) -> "TrackingVerdict":
        """The tracking state after this scan: OK (accepted), DEGRADED (refused: the prediction
        stands and the scan stays out of the map) or LOST (refused ``lost_after`` times in a row:
        every ``relocalize_every`` scans global registration against the local map is tried, and a
        pose it finds that passes the quality test resumes tracking); after ``reset_after`` refused
        scans the odometry restarts from the current one."""
        tc = self.config.tracking
        if not estimate.problem:
            refused, self._refused = self._refused, 0
            self._fitness.append((estimate.result.fitness, estimate.result.rmse))
            return TrackingVerdict(TRACKING_OK, f"track resumed after {refused} refused scans" if refused else "")
        self._refused += 1
        if self._refused >= tc.reset_after:
            return TrackingVerdict(TRACKING_LOST, f"refused {self._refused} scans in a row ({estimate.problem}): the odometry "
                                                  "restarts from this scan", restart=True)
        if self._refused < tc.lost_after:
            return TrackingVerdict(TRACKING_DEGRADED, estimate.problem)
        if (self._refused - tc.lost_after) % tc.relocalize_every == 0:
            found = self._recover(scan)
            if found is not None:
                self._refused = 0
                self.priors.reset()  # the jump is no motion: the velocity starts again from here
                self.priors.start(found, reference_time)
                return TrackingVerdict(TRACKING_OK, "track recovered by global registration against the local map", found)
        return TrackingVerdict(TRACKING_LOST, f"lost for {self._refused} scans ({estimate.problem})")

    def _recover(self, scan: "Preprocessed") -> np.ndarray | None:
        """The scan's pose in the local map from global registration (features, consensus, DCReg
        refinement: core/global_registration.py), if it finds a plausible one that also passes the
        inlier test against the recent scans; else None."""
        from .global_registration import GlobalTarget, global_register_to

        cloud = self.local_map.point_cloud()
        if len(cloud) < 100:
            return None
        found = global_register_to(scan.frame, GlobalTarget.from_points(cloud))
        if not found.success:
            return None
        check = self._align(scan, np.asarray(found.T_target_source, dtype=np.float64), None, "none")
        typical = float(np.median([f for f, _ in self._fitness])) if self._fitness else 0.0
        if not check.ok or check.fitness < self.config.tracking.min_inlier_ratio * typical:
            return None
        return check.T_target_source.copy()

    def _restart(self, points: np.ndarray, timestamps: np.ndarray | None, stamp: float, why: str) -> FrameRecord:
        """Forget the map and start again from this scan (as a new sequence does)."""
        self.reset()
        record = self._register_frame(points, timestamps, stamp)
        record.sequence_reset = True
        record.notes = [why] + record.notes
        return record

    @property
    def _fusing(self) -> bool:
        """The default: dcreg_prior with the prediction's uncertainty, fused with the LiDAR by information."""
        return self.config.degeneracy.strategy == "dcreg_prior" and self.config.motion_prior.prior_strength == "prediction"

    def _align(self, scan: "Preprocessed", init: np.ndarray, prediction: Prediction | None, strategy: str | None = None,
               measure: bool = True, unflagged_only: bool = False) -> RegistrationResult:
        """Register against the local map with the adaptive threshold; ``prediction`` None: no prior
        (the data's own solution, ``strategy`` plain Gauss-Newton); ``measure``: gather the
        statistics of the honest covariance (core/measurement.py)."""
        sigma = self.threshold.sigma
        return align(scan.source, self.local_map, init, self._registration, strategy=strategy,
                     max_distance=self._max_distance, kernel_scale=max(sigma / 3.0, 1e-3),
                     prior=registration_prior(self.config.motion_prior, prediction), source_fractions=scan.source_fractions,
                     measure_cell=self.config.mapping.voxel_size if measure else 0.0, measure_unflagged_only=unflagged_only)

    @property
    def _max_distance(self) -> float:
        """The correspondence threshold of the registration: 3 adaptive sigmas, at most a voxel."""
        return min(3.0 * self.threshold.sigma, self.config.mapping.voxel_size)

    def _uncertainty(self, result: RegistrationResult, deskew_covariance: np.ndarray, interval: float) -> LidarUncertainty | None:
        if not result.ok or result.statistics is None:
            return None
        d = self.config.degeneracy
        acceleration = np.diag(configured_acceleration(self.config.motion_prior) ** 2)
        return lidar_uncertainty(result.statistics, deskew_covariance, acceleration, interval,
                                 np.radians(d.max_std_rotation), d.max_std_translation)

    def _estimate(self, pts: np.ndarray, times: ScanFractions, scan: "Preprocessed", prediction: Prediction, interval: float,
                  reference_time: float) -> "FrameEstimate":
        """Register the scan (DCReg with the prediction as the prior of its flagged directions),
        then, with ``deskew_passes`` 2 and the default strategy, deskew it again with that motion
        and register it once more without any prior from there: the data's own converged solution,
        which the motion priors fuse with their prediction by information (a single Gauss-Newton
        step from a pose the prior held keeps most of the prior's bias along a weak axis)."""
        guess = self._scan_pose @ prediction.delta
        deskewed = scan.source_fractions is not None and self.config.preprocess.deskew and len(self.poses) >= 2
        again = self.config.preprocess.deskew_passes > 1 and (self._fusing or deskewed)
        # without a second deskewing, a first pass that flagged nothing is already the data's own
        # solution (no prior acted): its statistics are gathered and the second pass is skipped
        result = self._align(scan, guess, prediction, measure=not again or not deskewed, unflagged_only=again)
        if again and result.statistics is not None:
            again = False
        uncertainty = None if again else self._uncertainty(result, prediction.covariance, interval)
        if again and result.ok:
            # the first pass (DCReg, the flagged directions held on the prediction) steers the second:
            # its rotation deskews the scan again, its pose is where the second starts
            start = result.T_target_source
            motion = deskew_motion(prediction.delta, invert_pose(self._scan_pose) @ start, interval,
                                   configured_acceleration(self.config.motion_prior))
            rescan = self._deskew_again(pts, times, scan, motion) if deskewed else scan
            second = self._align(rescan, start, None, "none") if self._fusing else self._align(rescan, start, prediction)
            if second.ok:
                # the motion the scan was deskewed with: the first pass's rotation, the predicted translation
                deskew_covariance = prediction.covariance.copy()
                if deskewed and not np.allclose(motion, prediction.delta):
                    deskew_covariance[:3, :] = 0.0
                    deskew_covariance[:, :3] = 0.0
                    deskew_covariance[:3, :3] = result.covariance[:3, :3]
                scan, result = rescan, second
                uncertainty = self._uncertainty(second, deskew_covariance, interval)
        measurement = lidar_measurement(result, uncertainty, self._fusing)
        problem = self._judge(result, measurement, interval)
        if problem:
            # more tries, coarse to fine over the widest reach the map allows: from the prediction
            # again, then (when the IMU or the wheels made it: they may be the ones that lie) from
            # the constant-velocity model's, with the scan deskewed by its motion too (a lying gyro
            # also distorts the scan)
            starts = [(guess, scan)]
            if prediction.source != "constant_velocity":
                cv = self.priors.constant_velocity.predict(interval).delta
                starts.append((self._scan_pose @ cv, self._deskew_again(pts, times, scan, cv) if deskewed else scan))
            for start, candidate in starts:
                retry = self._retry(candidate, start)
                retry_uncertainty = self._uncertainty(retry, prediction.covariance, interval)
                retry_measurement = lidar_measurement(retry, retry_uncertainty, self._fusing)
                if not self._judge(retry, retry_measurement, interval):
                    result, measurement, uncertainty, problem, scan = retry, retry_measurement, retry_uncertainty, "", candidate
                    break
        refused = bool(problem)
        posterior = self.priors.correct(self._scan_pose, prediction, None if refused else measurement, interval, reference_time,
                                        fusing=self._fusing)
        notes = list(posterior.notes)
        if refused:
            notes.append(f"scan refused ({problem}): the {prediction.source.replace('_', ' ')} prediction stands and the scan "
                         "stays out of the map")
        return FrameEstimate(result, uncertainty, posterior, scan, notes, problem)

    def _judge(self, result: RegistrationResult, measurement: LidarMeasurement | None, interval: float) -> str:
        """'' when the registration passes the quality test, else why not: it ran on too few
        correspondences or did not run, its inlier share fell far below the recent frames', or it
        moved the pose further from where the constant-velocity model puts it, on an axis it
        measures well, than that model's and its own uncertainty allow (``tracking.max_jump_sigma``:
        a scan from elsewhere, a corrupted one, a wrong local minimum; judged against the motion
        model, not the IMU or wheel prediction, which may be the ones that lie)."""
        tc = self.config.tracking
        if not result.ok or measurement is None:
            return f"registration failed ({result.status})"
        if len(self._fitness) >= 5:
            typical = float(np.median([f for f, _ in self._fitness]))
            if result.fitness < tc.min_inlier_ratio * typical:
                return f"inlier share {result.fitness:.2f}, below {tc.min_inlier_ratio:g} x the recent {typical:.2f}"
            typical_rmse = float(np.median([r for _, r in self._fitness]))
            if result.rmse > tc.max_rmse_ratio * typical_rmse and result.rmse > MISFIT_RMSE_SHARE * self._max_distance:
                return f"residuals {result.rmse * 100:.1f} cm RMS, above {tc.max_rmse_ratio:g} x the recent {typical_rmse * 100:.1f} cm"
        sigma = self.priors.plausibility_sigma(self._scan_pose, interval, measurement)
        jumps = [f"{a} {z:.0f} sigma" for a, z, weak in zip(AXIS_NAMES, sigma, measurement.weak) if not weak and z > tc.max_jump_sigma]
        if jumps:
            return "an implausible jump along " + ", ".join(jumps)
        return ""

    def _retry(self, scan: "Preprocessed", guess: np.ndarray) -> RegistrationResult:
        """The registration again from ``guess``: coarse to fine (a quarter of the points
        first), correspondences as far as the map's voxel reaches, plain Gauss-Newton; then refined
        with the usual correspondence threshold, so that its inlier share and residuals compare
        with the recent scans' (a wider reach admits worse pairs and inflates both)."""
        registration = replace(self._registration, convergence=replace(self._registration.convergence, coarse_fraction=0.25))
        wide = align(scan.source, self.local_map, guess, registration, strategy="none", max_distance=self.config.mapping.voxel_size,
                     kernel_scale=max(self.config.mapping.voxel_size / 3.0, 1e-3), source_fractions=scan.source_fractions,
                     measure_cell=0.0)
        if not wide.ok:
            return wide
        return self._align(scan, wide.T_target_source, None, "none")


DESKEW_CORRECTION_SIGMAS = 3.0  # a correction of the predicted motion beyond this many accelerations is not a velocity error


def deskew_motion(predicted: np.ndarray, registered: np.ndarray, interval: float, acceleration: np.ndarray) -> np.ndarray:
    """The motion over a frame interval to deskew a scan again with (4x4): the predicted one with
    the registered rotation, unless that rotation corrects the prediction by more than the motion
    could have changed (DESKEW_CORRECTION_SIGMAS x the rotation-first ``acceleration`` x
    interval^2): a larger correction is drift the registration took out against the map, not
    motion within the sweep. The rotation is what distorts a scan at range (0.1 deg is 3.5 cm at
    20 m); a translation correction moves points by half of itself at most, and along a weak axis
    it is mostly the map's drift: re-deskewing with it kept the sparse corridor from snapping back
    to a door niche (test_motion_prior)."""
    correction = tangent(predicted, registered)
    limit = DESKEW_CORRECTION_SIGMAS * acceleration * interval * interval
    keep = np.zeros(6)
    if np.all(np.abs(correction[:3]) <= limit[:3]):
        keep[:3] = 1.0  # the rotation: what distorts a scan at range
    return perturb(predicted, correction * keep)


TRACKING_OK, TRACKING_DEGRADED, TRACKING_LOST = "OK", "DEGRADED", "LOST"
# a scan's residuals count as a misfit only beyond this share of the correspondence threshold
# as well: a scan from elsewhere pairs points at random within the threshold (RMS about 0.58 of
# it), a good fit stays below 0.15 in the simulated scenes and the real sequences, however its
# RMSE grows with speed and range
MISFIT_RMSE_SHARE = 0.25
TRACKING_WINDOW = 10  # accepted scans whose median inlier share and RMSE a new scan is compared with: short, as both drift
# with speed (the adaptive threshold) and the scene; a scan from elsewhere changes them within one frame


class TrackingVerdict(NamedTuple):
    """The tracking state after a scan, why (or how it recovered), the recovered pose (None: keep
    the estimate) and whether the odometry must restart from the scan."""

    state: str
    message: str = ""
    pose: np.ndarray | None = None
    restart: bool = False


class FrameEstimate(NamedTuple):
    """One frame's registration, the LiDAR's uncertainty (None when the registration failed), the
    fused posterior, the preprocessed scan it was registered with, notes for the record and, when
    the quality test refused the scan, why ('' when it passed)."""

    result: RegistrationResult
    uncertainty: LidarUncertainty | None
    posterior: Posterior
    scan: Preprocessed
    notes: list[str]
    problem: str = ""


def _record(index, stamp, pose, result: RegistrationResult | None, num_points, sigma, preprocess_ms, map_ms) -> FrameRecord:
    timings = dict.fromkeys(FRAME_TIMING_KEYS, 0.0)
    timings["preprocess"] = preprocess_ms
    timings["map_update"] = map_ms
    if result is None:
        # the first pose defines the odometry frame: exact (not zero: some filters reject singular covariances)
        return FrameRecord(index, stamp, pose, FIRST_FRAME, num_points=num_points, threshold=sigma, timings=timings,
                           covariance=np.eye(6) * FIRST_FRAME_VARIANCE)
    for key in ("correspondence", "hessian", "detection", "solve"):
        timings[key] = result.timings[key]
    return FrameRecord(
        index=index, stamp=stamp, pose=pose, status=result.status, iterations=result.iterations, rmse=result.rmse,
        fitness=result.fitness, num_points=num_points, num_correspondences=result.num_correspondences, threshold=sigma,
        covariance=result.covariance, degeneracy=result.degeneracy_last, degeneracy_first=result.degeneracy_first,
        timings=timings,
    )
