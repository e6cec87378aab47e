"""Simulate a LiDAR moving through a scene: motion-skewed scans, ground truth, degeneracy truth.

Time and frame conventions (those of a real spinning LiDAR driver):

- A scan's ``stamp`` is the start of its revolution; point times are seconds after it, in
  [0, period); the next scan starts where this one ends (``stamp + period``).
- Each point is measured from the sensor pose at its own time and reported in the sensor frame
  *at that time* (range times beam direction), so a moving sensor's scan is skewed. Deskewing
  to the scan start is ``p_start = inv(T(stamp)) @ T(stamp + t_i) @ p_i`` with the ground-truth
  poses T_world_sensor; :func:`deskew` does exactly that.
- The ground-truth pose of a scan is T_world_sensor at its stamp (world -> lidar).
- The per-frame degeneracy truth comes from the exact geometry, independently of the detector:
  the Cramer-Rao standard deviation of each axis from the exact normals of the frame's returns,
  against fixed thresholds in metres and degrees (:mod:`.observability`).
"""

from __future__ import annotations

import dataclasses

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.degeneracy import AXIS_NAMES
from ..core.geometry import invert_pose
from ..core.interrupts import ctrl_c_checkpoint
from ..io.scan import Scan
from ..io.trajectory import Trajectory, write_tum
from .observability import MAX_STD_ROTATION_DEG, MAX_STD_TRANSLATION, PATCH_SIZE, frame_observability
from .raycast import PackedPrimitives, cast_rays
from .scenes import Scene, build_scene
from .sensors import LidarModel, sensor_preset
from .handheld import HandheldMotion
from .motion_profiles import MOTION_PROFILES, WHEELED_PROFILES, RobotMotion, sensor_motion
from .proprioception import (POST_ROLL, PRE_ROLL, ImuModel, ImuTruth, WheelModel, WheelTruth, sample_stamps, simulate_imu,
                             simulate_wheel_odometry)
from .scan_drops import ScanDrops
from .trajectories import SensorMotion
from .wheel_slip import SlipEpisode

TRUTH_FILE = "degeneracy_truth.json"
TUM_FILE = "ground_truth_tum.txt"
INFO_FILE = "simulation.json"
MAX_SPEED = 2.2  # m/s: bound on every scene's speed including its seeded variation (sizes the scene)


@dataclass
class FrameSample:
    """One simulated revolution. ``scan`` is what a driver publishes; the rest is truth for the
    same kept returns: ``points_true`` noise-free and deskewed, ``normals`` unit (both in the
    sensor frame at the stamp), ``ranges_true`` (m), ``primitive_ids`` (indices into the scene)."""

    scan: Scan
    points_true: np.ndarray
    normals: np.ndarray
    ranges_true: np.ndarray
    primitive_ids: np.ndarray


@dataclass
class SimulationResult:
    """Scans plus ground truth. ``degenerate_mask`` is (frames, 6) bool, axes roll pitch yaw x y z:
    the weak axes of each frame's geometry, with ``truth_std`` (frames, 6; rad, then m) the
    Cramer-Rao standard deviations they come from (:mod:`.observability`);
    ``motion`` gives T_world_sensor at any time, for exact deskewing; ``motion_profile`` is its
    name in ``MOTION_PROFILES``; ``imu`` and ``wheel`` hold the simulated proprioception with
    its extrinsics and drawn errors (None when left out). ``drops`` says which revolutions were
    left out (:mod:`.scan_drops`) and ``dropped_stamps`` (s) their stamps: ``scans``,
    ``ground_truth``, ``degenerate_mask`` and ``truth_std`` hold the kept ones only."""

    scene: Scene
    sensor: LidarModel
    scans: list[Scan]
    ground_truth: Trajectory
    nominal_mask: np.ndarray
    degenerate_mask: np.ndarray
    motion: SensorMotion | RobotMotion | HandheldMotion
    seed: int
    motion_profile: str = "smooth"
    imu: ImuTruth | None = None
    wheel: WheelTruth | None = None
    truth_std: np.ndarray | None = None
    drops: ScanDrops = ScanDrops()
    dropped_stamps: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return len(self.scans)

    def frames(self, start: int, stop: int | None = None) -> "SimulationResult":
        """The same simulation restricted to frames start..stop-1 (scans, ground truth, truth;
        IMU and wheel samples from PRE_ROLL before the first kept scan to POST_ROLL after the last;
        the stamps dropped between the first and the last kept scan)."""
        window = slice(start, stop)
        gt = self.ground_truth
        scans = self.scans[window]
        imu, wheel, dropped = self.imu, self.wheel, self.dropped_stamps[:0]
        if scans:
            inside = (self.dropped_stamps > scans[0].stamp) & (self.dropped_stamps < scans[-1].stamp)
            dropped = self.dropped_stamps[inside]
            t0, t1 = scans[0].stamp - PRE_ROLL, scans[-1].stamp + self.sensor.period + POST_ROLL
            if imu is not None:
                imu = dataclasses.replace(imu, samples=imu.samples.between(t0, t1))
            if wheel is not None:
                wheel = dataclasses.replace(wheel, samples=wheel.samples.between(t0, t1),
                                            episodes=tuple(e for e in wheel.episodes if e.end > t0 and e.start < t1))
        return dataclasses.replace(self, scans=scans, degenerate_mask=self.degenerate_mask[window],
                                   truth_std=None if self.truth_std is None else self.truth_std[window],
                                   ground_truth=Trajectory(gt.stamps[window], gt.poses[window]), imu=imu, wheel=wheel,
                                   dropped_stamps=dropped)


def simulate_frame(primitives: PackedPrimitives, sensor: LidarModel, motion: "SensorMotion | RobotMotion | HandheldMotion",
                   stamp: float, rng: np.random.Generator, frame_id: str = "lidar") -> FrameSample:
    """Cast one revolution starting at ``stamp`` (s): column c is cast from the pose at
    ``stamp + c * period / columns``. Points come out in column (= time = azimuth) order."""
    directions = sensor.beam_directions()  # (columns, beams, 3), sensor frame
    column_times = sensor.column_times()
    poses = motion.poses(stamp + column_times)
    world_dirs = np.einsum("cij,cbj->cbi", poses[:, :3, :3], directions).reshape(-1, 3)
    origins = np.repeat(poses[:, :3, 3], sensor.beams, axis=0)
    # t_min = 0: an obstacle closer than min_range still blocks the beam, it is just not reported
    hits = cast_rays(primitives, origins, world_dirs, t_min=0.0, t_max=sensor.max_range)
    ranges, kept = sensor.measure(hits.t, rng)
    ids = hits.ids[kept]
    cos_incidence = np.einsum("ij,ij->i", world_dirs[kept], hits.normals[kept])
    intensity = sensor.intensity(primitives.reflectivity[ids], cos_incidence, ranges[kept])
    scan = Scan(
        stamp=float(stamp),
        points=ranges[kept, None] * directions.reshape(-1, 3)[kept],
        times=np.repeat(column_times, sensor.beams)[kept],
        intensity=intensity,
        frame_id=frame_id,
    )
    R0, t0 = poses[0, :3, :3], poses[0, :3, 3]  # column 0 fires at the stamp
    return FrameSample(
        scan=scan,
        points_true=(hits.points[kept] - t0) @ R0,
        normals=hits.normals[kept] @ R0,
        ranges_true=hits.t[kept],
        primitive_ids=ids,
    )


def deskew(scan: Scan, poses_at: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """(N, 3) points of ``scan`` moved to the sensor frame at its stamp, given ``poses_at(stamps)``
    -> T_world_sensor (N, 4, 4) (e.g. ``SimulationResult.motion.poses``)."""
    if scan.times is None:
        return scan.points.copy()
    unique, inverse = np.unique(scan.times, return_inverse=True)
    poses = poses_at(scan.stamp + np.concatenate([[0.0], unique]))
    start_inv = invert_pose(poses[0])
    relative = start_inv[None] @ poses[1:]  # T_start_point for each distinct time
    R, t = relative[inverse, :3, :3], relative[inverse, :3, 3]
    return np.einsum("nij,nj->ni", R, scan.points) + t


DEFAULT_WHEEL = WheelModel()  # simulate()'s default: left out, not refused, for the handheld profile


def simulate(scene: "str | Scene | Callable[[float], Scene]" = "corridor", frames: int = 300, beams: int = 32,
             seed: int = 0, noise: float = 0.015, dropout: float = 0.0, period: float = 0.1, *,
             columns: int = 1024, start_stamp: float = 1000.0,
             sensor: LidarModel | None = None, frame_id: str = "lidar", motion: str = "smooth",
             imu: ImuModel | None = ImuModel(), wheel: WheelModel | None = DEFAULT_WHEEL,
             keep_every: int = 1, drop_every: int | None = None, drop_probability: float = 0.0) -> SimulationResult:
    """Simulate ``frames`` consecutive revolutions of a LiDAR moving through ``scene``.

    ``scene`` is a name from ``SCENE_NAMES``, a builder from ``SCENES`` or a built Scene.
    ``noise`` is the range noise sigma (m), ``dropout`` the probability of losing a return,
    ``period`` the revolution time (s); ``sensor`` overrides the preset built from ``beams``,
    ``columns``, ``noise``, ``dropout`` and ``period``. Revolution k starts at
    ``start_stamp + k * period``. The per-frame degeneracy truth comes from the exact geometry
    (:mod:`.observability`). ``motion`` is one of ``MOTION_PROFILES`` (see
    :mod:`.motion_profiles`). ``imu`` and ``wheel`` are the models of the simulated IMU and wheel
    odometry (:mod:`.proprioception`; None leaves one out): e.g. ``imu=ImuModel.grade("poor")``,
    ``wheel=WheelModel(scale_error=0.03, episodes=WheelSlip(count=2))``; their samples run from
    PRE_ROLL before the first revolution to POST_ROLL after the last, the wheels' slip episodes
    lie within the revolutions (a ValueError when they do not fit). A hand-held sensor has no wheels:
    with ``motion="handheld"`` the default wheel model is left out and an explicit one is a
    ValueError.

    ``keep_every``, ``drop_every`` and ``drop_probability`` leave revolutions out of the output
    (:class:`~.scan_drops.ScanDrops`): the scans, the ground truth and the degeneracy truth hold
    the kept revolutions at their own stamps; the IMU keeps running through the gaps; the noise
    of a kept scan is the same as without drops. Deterministic given ``seed``; each part
    (motion, LiDAR noise, IMU, wheels, drops) draws from its own stream.
    """
    if frames < 1:
        raise ValueError("frames must be >= 1")
    if motion not in MOTION_PROFILES:
        raise ValueError(f"unknown motion profile '{motion}' (choose one of {', '.join(MOTION_PROFILES)})")
    if motion not in WHEELED_PROFILES:
        if wheel is not None and wheel is not DEFAULT_WHEEL:
            raise ValueError(f"the {motion} profile has no wheel odometry (a hand-held sensor has no wheels); pass wheel=None")
        wheel = None
    if wheel is not None:
        wheel.episodes.check_fits(frames * period if sensor is None else frames * sensor.period)
    drops = ScanDrops(keep_every, drop_every, drop_probability)
    kept = drops.kept(frames, seed)
    if not kept.any():
        raise ValueError(f"no scan left: all {frames} revolutions dropped ({drops.describe()})")
    if sensor is None:
        sensor = sensor_preset(beams, columns=columns, range_noise=noise, dropout=dropout, period=period)
    travel = MAX_SPEED * frames * sensor.period + 10.0
    scene = build_scene(scene, length=travel)
    primitives = scene.pack()
    motion_name, motion = motion, sensor_motion(motion, scene.motion, seed=seed, t0=start_stamp,
                                                duration=frames * sensor.period + 10.0)
    rng = np.random.default_rng([int(seed), 11])  # sensor noise stream, separate from the motion's
    revolutions = start_stamp + np.arange(frames) * sensor.period
    stamps = revolutions[kept]
    scans, masks, stds = [], np.zeros((len(stamps), 6), dtype=bool), np.zeros((len(stamps), 6))
    for stamp, keep in zip(revolutions, kept):
        ctrl_c_checkpoint()
        if not keep:
            # the same draws as a cast revolution (measure's draws depend on the ray count only),
            # so the kept scans are those of the simulation without drops
            sensor.measure(np.full(sensor.rays_per_scan, np.inf), rng)
            continue
        sample = simulate_frame(primitives, sensor, motion, float(stamp), rng, frame_id)
        stds[len(scans)], masks[len(scans)] = frame_observability(sample.points_true, sample.normals, sensor.range_noise)
        scans.append(sample.scan)
    end = float(revolutions[-1]) + sensor.period
    imu_truth = None if imu is None else simulate_imu(
        motion, sample_stamps(start_stamp, end, imu.rate), imu, np.random.default_rng([int(seed), 23]))
    wheel_truth = None if wheel is None else simulate_wheel_odometry(
        motion, sample_stamps(start_stamp, end, wheel.rate), wheel, np.random.default_rng([int(seed), 29]),
        window=(start_stamp, end))
    return SimulationResult(
        scene=scene, sensor=sensor, scans=scans, ground_truth=Trajectory(stamps, motion.poses(stamps)),
        nominal_mask=np.array(scene.nominal_mask, dtype=bool), degenerate_mask=masks, motion=motion, seed=int(seed),
        motion_profile=motion_name, imu=imu_truth, wheel=wheel_truth, truth_std=stds, drops=drops,
        dropped_stamps=revolutions[~kept],
    )


def _mounting(T: np.ndarray, xyz: tuple, rpy_deg: tuple) -> dict:
    """A mounting for simulation.json: as configured (m, deg; R = Rz Ry Rx) and as a 4x4 matrix."""
    return {"xyz_m": list(xyz), "rpy_deg": list(rpy_deg), "matrix": [[round(float(v), 12) + 0.0 for v in row] for row in T]}


def simulation_info(result: SimulationResult, imu_topic: str | None, wheel_topic: str | None) -> dict:
    """What ``simulation.json`` holds: scene, motion profile, seed, the scan drops (options, kept
    scans, dropped stamps in s), extrinsics (4x4, m), the IMU's grade, noise and drawn biases
    (rad/s, m/s², IMU frame) and the wheels' drawn errors and slip episodes (start and end in s,
    kind, effect), with the topics they went to."""
    info: dict = {"scene": result.scene.name, "motion_profile": result.motion_profile, "seed": result.seed,
                  "lidar_frame": result.scans[0].frame_id if result.scans else "lidar",
                  "scan_drops": {**result.drops.as_dict(), "scans": len(result.scans),
                                 "dropped_stamps": [float(t) for t in result.dropped_stamps]},
                  "extrinsics": {}}
    if result.imu is not None:
        m = result.imu.model
        info["extrinsics"]["T_lidar_imu"] = _mounting(result.imu.T_lidar_imu, m.mount_xyz, m.mount_rpy_deg)
        info["imu"] = {"topic": imu_topic, "frame_id": m.frame_id, "grade": m.grade_name, "rate_hz": m.rate,
                       "gyro_noise_rad_s": m.gyro_noise, "accel_noise_m_s2": m.accel_noise,
                       "gyro_bias_range_deg_s": list(m.gyro_bias_deg), "accel_bias_range_m_s2": list(m.accel_bias),
                       "gyro_bias_rad_s": [float(v) for v in result.imu.gyro_bias],
                       "accel_bias_m_s2": [float(v) for v in result.imu.accel_bias]}
    if result.wheel is not None:
        m = result.wheel.model
        info["extrinsics"]["T_base_lidar"] = _mounting(result.wheel.T_base_lidar, m.mount_xyz, m.mount_rpy_deg)
        info["wheel"] = {"topic": wheel_topic, "frame_id": m.frame_id, "child_frame_id": m.child_frame_id, "rate_hz": m.rate,
                         "scale_error": result.wheel.scale_error,
                         "scale_error_model": m.scale_error if isinstance(m.scale_error, float) else list(m.scale_error),
                         "slip_rad_per_m": result.wheel.slip,
                         "speed_noise_fraction": m.speed_noise, "yaw_rate_noise_rad_per_m": m.yaw_rate_noise,
                         "slip_episode_model": m.episodes.as_dict(),
                         "slip_episodes": [e.as_dict() for e in result.wheel.episodes]}
    return info


def static_transforms(result: SimulationResult) -> list[tuple[str, str, np.ndarray]]:
    """(parent, child, T_parent_child) of the simulated robot: base_link -> lidar, lidar -> imu."""
    lidar = result.scans[0].frame_id if result.scans else "lidar"
    out = []
    if result.wheel is not None:
        out.append((result.wheel.model.child_frame_id, lidar, result.wheel.T_base_lidar))
    if result.imu is not None:
        out.append((lidar, result.imu.model.frame_id, result.imu.T_lidar_imu))
    return out


def write_simulation(result: SimulationResult, out: str | Path, storage: str = "mcap",
                     points_topic: str = "/points", ground_truth_topic: str = "/ground_truth",
                     imu_topic: str | None = "/imu", wheel_topic: str | None = "/wheel/odom") -> Path:
    """Write a ROS 2 bag directory ``out`` (must not exist) with PointCloud2 scans, nav_msgs/Odometry
    ground truth (world -> lidar), the simulated IMU (sensor_msgs/Imu, no orientation, the model's
    noise variances) and wheel odometry (nav_msgs/Odometry odom -> base_link with covariances),
    and their mounting on ``/tf_static`` (base_link -> lidar, lidar -> imu), all in stamp order;
    a topic of None (or a result without that sensor, e.g. the handheld profile's wheels) leaves
    it out. Scans and ground truth are those of the kept revolutions (``result.drops``).
    ``ground_truth_tum.txt``, ``degeneracy_truth.json`` and ``simulation.json``
    (:func:`simulation_info`) go inside the bag directory. Returns it."""
    from ..io.bags import BagWriter  # rosbags is only needed when a bag is written

    out = Path(out)
    gt = result.ground_truth
    imu = result.imu if imu_topic is not None else None
    wheel = result.wheel if wheel_topic is not None else None
    kept = dataclasses.replace(result, imu=imu, wheel=wheel)
    # (stamp, kind, index): kinds sort the messages of equal stamps deterministically
    events = [(float(s.stamp), 0, k) for k, s in enumerate(result.scans)]
    if imu is not None:
        events += [(float(t), 1, k) for k, t in enumerate(imu.samples.stamps)]
    if wheel is not None:
        events += [(float(t), 2, k) for k, t in enumerate(wheel.samples.stamps)]
    events.sort()
    with BagWriter(out, storage=storage) as writer:
        transforms = static_transforms(kept)
        if transforms and events:
            writer.write_static_transforms(events[0][0], transforms)
        if imu is not None:
            gyro_cov = np.eye(3) * imu.model.gyro_noise**2
            accel_cov = np.eye(3) * imu.model.accel_noise**2
        for stamp, kind, k in events:
            if kind == 0:
                scan = result.scans[k]
                writer.write_scan(points_topic, scan)
                writer.write_odometry(ground_truth_topic, scan.stamp, gt.poses[k], frame_id="world", child_frame_id=scan.frame_id)
            elif kind == 1:
                s = imu.samples
                writer.write_imu(imu_topic, stamp, s.angular_velocity[k], s.linear_acceleration[k], s.frame_id, gyro_cov, accel_cov)
            else:
                w = wheel.samples
                writer.write_wheel_odometry(wheel_topic, stamp, w.poses[k], w.linear_velocity[k], w.angular_velocity[k],
                                            w.pose_covariance[k], w.twist_covariance[k], w.frame_id, w.child_frame_id)
    write_tum(out / TUM_FILE, gt)
    stds = result.truth_std if result.truth_std is not None else np.full((len(gt.stamps), 6), np.nan)
    truth = {
        "scene": result.scene.name,
        "axes": list(AXIS_NAMES),
        "nominal_mask": [bool(m) for m in result.nominal_mask],
        "definition": {"weak": "Cramer-Rao standard deviation of one frame from the exact normals above the limit",
                       "patch_size_m": PATCH_SIZE, "max_std_translation_m": MAX_STD_TRANSLATION,
                       "max_std_rotation_deg": MAX_STD_ROTATION_DEG, "range_noise_m": result.sensor.range_noise},
        "frames": [{"stamp": float(s), "mask": [bool(m) for m in mask],
                    "std": [round(float(np.degrees(v)), 6) for v in sd[:3]] + [round(float(v), 6) for v in sd[3:]]}
                   for s, mask, sd in zip(gt.stamps, result.degenerate_mask, stds)],
    }
    (out / TRUTH_FILE).write_text(json.dumps(truth, indent=1))
    info = simulation_info(kept, imu_topic if imu is not None else None, wheel_topic if wheel is not None else None)
    (out / INFO_FILE).write_text(json.dumps(info, indent=1))
    return out


def load_simulation_info(path: str | Path) -> dict:
    """The content of ``simulation.json`` (a path to it or to the bag directory holding it)."""
    path = Path(path)
    return json.loads((path / INFO_FILE if path.is_dir() else path).read_text())


def load_slip_episodes(path: str | Path) -> tuple[SlipEpisode, ...]:
    """The wheels' slip episodes from ``simulation.json`` (or the bag directory holding it); none
    without wheel odometry. :func:`~.wheel_slip.slipping` tells which stamps lie inside one."""
    wheel = load_simulation_info(path).get("wheel") or {}
    return tuple(SlipEpisode.from_dict(d) for d in wheel.get("slip_episodes", []))


def load_degeneracy_truth(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(stamps (N,) s, masks (N, 6) bool) from ``degeneracy_truth.json`` or a bag directory holding it."""
    path = Path(path)
    if path.is_dir():
        path = path / TRUTH_FILE
    data = json.loads(path.read_text())
    frames = data["frames"]
    stamps = np.array([f["stamp"] for f in frames], dtype=np.float64)
    masks = np.array([f["mask"] for f in frames], dtype=bool).reshape(-1, 6)
    return stamps, masks
