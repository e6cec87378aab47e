"""Peer registration methods (Open3D, small_gicp, KISS-ICP) behind one small interface, for
benchmarks and `dcreg compare`. Each is imported only when used, with a clear message if absent.

Every peer runs with the process's thread budget (:mod:`.threads`: the same one as ours) and is
timed, where it is timed, around the same call boundary as ours: input arrays in, pose out
(its own preprocessing included)."""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator, Sequence
from typing import Callable, NamedTuple

import numpy as np

from .threads import thread_budget

PairMethod = Callable[[np.ndarray, np.ndarray], np.ndarray]


class PeerUnavailable(RuntimeError):
    """A peer library is not installed or cannot be imported here."""


def _import(module: str, package: str):
    try:
        return importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - open3d raises OSError for a missing libusb, etc.
        raise PeerUnavailable(f"{package} is not usable here ({exc.__class__.__name__}: {exc}); install it with pip install {package}") from None


def open3d_point_to_plane(voxel: float = 0.25, max_distance: float = 1.0, normal_neighbors: int = 10) -> PairMethod:
    """Open3D point-to-plane ICP: downsample both clouds, target normals (hybrid KNN), ICP."""
    o3d = _import("open3d", "open3d-cpu")
    reg = o3d.pipelines.registration

    def run(source: np.ndarray, target: np.ndarray) -> np.ndarray:
        src = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(source)).voxel_down_sample(voxel)
        tgt = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(target)).voxel_down_sample(voxel)
        tgt.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=max_distance, max_nn=normal_neighbors))
        result = reg.registration_icp(src, tgt, max_distance, np.eye(4), reg.TransformationEstimationPointToPlane(),
                                      reg.ICPConvergenceCriteria(max_iteration=30))
        return np.asarray(result.transformation)

    return run


def small_gicp_align(registration_type: str, voxel: float = 0.25, max_distance: float = 1.0, threads: int | None = None) -> PairMethod:
    """small_gicp's one-call pipeline (downsampling, covariances/normals, KD-tree, registration);
    ``threads`` defaults to the process's thread budget."""
    sg = _import("small_gicp", "small-gicp")
    threads = threads or thread_budget()

    def run(source: np.ndarray, target: np.ndarray) -> np.ndarray:
        result = sg.align(target, source, registration_type=registration_type, downsampling_resolution=voxel,
                          max_correspondence_distance=max_distance, num_threads=threads)
        return np.asarray(result.T_target_source)

    return run


def kiss_icp_config(max_range: float = 100.0, deskew: bool = False, voxel_size: float | None = None):
    """KISS-ICP's default configuration for a sensor range, as its own loader builds it
    (voxel size = max_range / 100 unless given), with the process's thread budget."""
    _import("kiss_icp", "kiss-icp")
    from kiss_icp.config import KISSConfig

    cfg = KISSConfig()
    cfg.data.max_range = max_range
    cfg.data.min_range = 0.0
    cfg.data.deskew = deskew
    cfg.mapping.voxel_size = voxel_size or max_range / 100.0
    cfg.registration.max_num_threads = thread_budget()
    return cfg


def kiss_icp_pair(max_range: float = 100.0, voxel_size: float | None = None) -> PairMethod:
    """KISS-ICP's own pipeline on a pair: a two-frame odometry that maps the target, then
    registers the source (its pose is T_target_source). ``voxel_size`` defaults to KISS-ICP's
    max_range / 100 (1 m at 100 m)."""
    cfg = kiss_icp_config(max_range, voxel_size=voxel_size)
    from kiss_icp.kiss_icp import KissICP

    def run(source: np.ndarray, target: np.ndarray) -> np.ndarray:
        odom = KissICP(cfg)
        odom.register_frame(target, np.zeros(len(target)))
        odom.register_frame(source, np.zeros(len(source)))
        return np.asarray(odom.last_pose)

    return run


class PeerFrame(NamedTuple):
    """One frame of a peer odometry: stamp (s), pose T_world_sensor (4x4, m), time spent (ms)."""

    stamp: float
    pose: np.ndarray
    ms: float


def kiss_icp_frames(scans: Sequence, max_range: float = 100.0, deskew: bool = True) -> Iterator[PeerFrame]:
    """Run KISS-ICP over scans (dcreg_ros.io.scan.Scan), one :class:`PeerFrame` per scan as it is registered."""
    # KISS-ICP divides by the spread of the timestamps when deskewing: without per-point times
    # (all zero) that is 0/0 and its SO(3) exp aborts the process, so deskew only timed scans
    deskew = deskew and all(s.times is not None and np.ptp(s.times) > 0 for s in scans)
    cfg = kiss_icp_config(max_range, deskew=deskew)
    from kiss_icp.kiss_icp import KissICP

    odom = KissICP(cfg)
    for scan in scans:
        t0 = time.perf_counter()  # the same boundary as ours: arrays in (NaN rows included), pose out
        finite = np.isfinite(scan.points).all(axis=1)
        pts = scan.points[finite]
        times = scan.times[finite] if deskew else np.zeros(len(pts))
        odom.register_frame(pts, times)
        pose = np.array(odom.last_pose)
        yield PeerFrame(scan.stamp, pose, (time.perf_counter() - t0) * 1e3)


def open3d_frames(scans: Sequence, voxel: float = 0.25, max_distance: float = 1.0) -> Iterator[PeerFrame]:
    """Frame-to-frame point-to-plane ICP with Open3D (each scan against the previous one, started
    at the previous motion: a constant-velocity guess), chained into an odometry."""
    o3d = _import("open3d", "open3d-cpu")
    reg, search = o3d.pipelines.registration, o3d.geometry.KDTreeSearchParamHybrid
    previous, pose, motion = None, np.eye(4), np.eye(4)
    for scan in scans:
        t0 = time.perf_counter()
        pts = scan.points[np.isfinite(scan.points).all(axis=1)]
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts)).voxel_down_sample(voxel)
        cloud.estimate_normals(search(radius=max_distance, max_nn=10))
        if previous is not None:
            result = reg.registration_icp(cloud, previous, max_distance, motion, reg.TransformationEstimationPointToPlane(),
                                          reg.ICPConvergenceCriteria(max_iteration=30))
            motion = np.asarray(result.transformation)  # T_previous_current
            pose = pose @ motion
        previous = cloud
        yield PeerFrame(scan.stamp, pose.copy(), (time.perf_counter() - t0) * 1e3)


class Open3DGlobal:
    """Open3D's global registration as its tutorial sets it up: voxel downsampling, normals
    (radius 2 voxels), FPFH (radius 5 voxels), RANSAC on mutual feature matches with the
    edge-length and distance checkers (1.5 voxels), then point-to-plane ICP on a finer cloud (the
    tutorial's refinement, and the same cost as our refinement, so the accuracy column compares
    the global stages).
    ``prepare`` computes a target's features once (a prior map); calling the object does both."""

    def __init__(self, voxel: float = 0.5, icp_voxel: float = 0.25, icp_distance: float = 1.0,
                 max_iterations: int = 100_000, confidence: float = 0.999) -> None:
        self.o3d = _import("open3d", "open3d-cpu")
        self.voxel, self.icp_voxel, self.icp_distance = voxel, icp_voxel, icp_distance
        self.max_iterations, self.confidence = max_iterations, confidence

    def _cloud(self, points: np.ndarray):
        o3d = self.o3d
        return o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.ascontiguousarray(points, dtype=np.float64)))

    def prepare(self, points: np.ndarray):
        """(downsampled cloud with normals, its FPFH features, the ICP cloud) of a target."""
        reg, search = self.o3d.pipelines.registration, self.o3d.geometry.KDTreeSearchParamHybrid
        cloud = self._cloud(points)
        down = cloud.voxel_down_sample(self.voxel)
        down.estimate_normals(search(radius=2.0 * self.voxel, max_nn=30))
        fine = cloud.voxel_down_sample(self.icp_voxel)
        fine.estimate_normals(search(radius=self.icp_distance, max_nn=10))
        return down, reg.compute_fpfh_feature(down, search(radius=5.0 * self.voxel, max_nn=100)), fine

    def register(self, source: np.ndarray, prepared) -> tuple[np.ndarray, np.ndarray, float]:
        """(refined T_target_source, coarse T, ICP fitness) of a source against a prepared target."""
        reg = self.o3d.pipelines.registration
        (src, fs, src_icp), (tgt, ft, tgt_icp) = self.prepare(source), prepared
        distance = 1.5 * self.voxel
        coarse = reg.registration_ransac_based_on_feature_matching(
            src, tgt, fs, ft, True, distance, reg.TransformationEstimationPointToPoint(False), 3,
            [reg.CorrespondenceCheckerBasedOnEdgeLength(0.9), reg.CorrespondenceCheckerBasedOnDistance(distance)],
            reg.RANSACConvergenceCriteria(self.max_iterations, self.confidence))
        fine = reg.registration_icp(src_icp, tgt_icp, self.icp_distance, coarse.transformation,
                                    reg.TransformationEstimationPointToPlane(), reg.ICPConvergenceCriteria(max_iteration=30))
        return np.asarray(fine.transformation), np.asarray(coarse.transformation), float(fine.fitness)

    def __call__(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        return self.register(source, self.prepare(target))[0]


ScanToMap = Callable[[np.ndarray, np.ndarray], np.ndarray]


def small_gicp_scan_to_map(map_points: np.ndarray, registration_type: str = "PLANE_ICP", voxel: float = 0.25,
                           max_distance: float = 1.0, threads: int = 2) -> ScanToMap:
    """small_gicp registration of scans against a fixed map: the map is downsampled, its normals
    and covariances estimated and its KD-tree built once; each call aligns a prepared scan
    (N, 3, sensor frame, already downsampled) from ``init`` and returns T_map_sensor."""
    sg = _import("small_gicp", "small-gicp")
    target, tree = sg.preprocess_points(np.asarray(map_points, dtype=np.float64), downsampling_resolution=voxel,
                                        num_neighbors=10, num_threads=threads)

    def run(source: np.ndarray, init: np.ndarray) -> np.ndarray:
        cloud = sg.PointCloud(np.asarray(source, dtype=np.float64))
        if registration_type == "GICP":  # GICP needs the scan's covariances too
            sg.estimate_covariances(cloud, num_neighbors=10, num_threads=threads)
        result = sg.align(target, cloud, tree, init_T_target_source=init, registration_type=registration_type,
                          max_correspondence_distance=max_distance, num_threads=threads)
        return np.asarray(result.T_target_source)

    return run


def open3d_scan_to_map(map_points: np.ndarray, voxel: float = 0.25, max_distance: float = 1.0, normal_neighbors: int = 10) -> ScanToMap:
    """Open3D point-to-plane ICP of scans against a fixed map (downsampled, normals estimated
    once; Open3D builds its KD-tree of the map inside every registration call)."""
    o3d = _import("open3d", "open3d-cpu")
    reg = o3d.pipelines.registration
    target = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(map_points, dtype=np.float64))).voxel_down_sample(voxel)
    target.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=max_distance, max_nn=normal_neighbors))

    def run(source: np.ndarray, init: np.ndarray) -> np.ndarray:
        src = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(source, dtype=np.float64)))
        result = reg.registration_icp(src, target, max_distance, np.asarray(init, dtype=np.float64),
                                      reg.TransformationEstimationPointToPlane(), reg.ICPConvergenceCriteria(max_iteration=30))
        return np.asarray(result.transformation)

    return run
