"""``dcreg_node``: DCReg LiDAR odometry as a ROS 2 node.

Subscribes to ``points`` (sensor_msgs/PointCloud2, remappable), registers each cloud with
:class:`dcreg_ros.Odometry` and publishes, in the ``odom_frame``:

- ``dcreg/odometry`` (nav_msgs/Odometry odom -> base, covariance inflated along the flagged
  degenerate directions), ``dcreg/pose``, ``dcreg/path``, TF odom -> base
- ``dcreg/cloud_registered`` (the frame's points in odom), ``dcreg/local_map`` (throttled)
- ``/diagnostics`` (OK / WARN when directions are flagged / ERROR for failures and bad messages)
- ``dcreg/degeneracy_markers`` (visualization_msgs/MarkerArray at the current pose)

Service ``dcreg/reset`` (std_srvs/Trigger) forgets the map and the trajectory; ``dcreg/save_map``
(std_srvs/Trigger) writes every frame registered so far to the file of parameter ``map_save_path``.

Threading: the subscription callback only parks the newest message in a one-slot buffer (a
replaced, unprocessed message counts as dropped) and a worker thread registers it, so a slow
frame never queues stale clouds: the node always works on the latest data.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry as OdometryMsg
from nav_msgs.msg import Path
from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import PointCloud2
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from ..core.config_io import ConfigError
from ..core.geometry import invert_pose, pose_from_xyz_rpy, transform_points
from ..core.global_map import GlobalMap
from ..core.odometry import FrameRecord, Odometry, OdometryConfig
from ..core.pointcloud import InputError
from ..io.pointcloud2 import pointcloud2_to_scan, stamp_to_seconds
from . import ros_messages as rm
from .parameters import NODE_NAME, NodeSettings, declare_parameters, parameter_specs, plain_value, settings_from_values

GOOD_STATUSES = ("first_frame", "converged", "max_iterations")
# not zero: some filters (e.g. robot_localization) reject exactly singular covariances
FIRST_FRAME_VARIANCE = 1e-9
DIAGNOSTIC_NAME = f"{NODE_NAME}: odometry"

# small per-frame messages: a deep history so a reliable subscriber that lags for a few seconds
# (a loaded machine, a slow estimator) still gets every pose and status
RELIABLE_OUTPUT = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
# registered clouds are large: keep only a few for laggards
CLOUD_OUTPUT = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
# late subscribers (RViz started after the node) still get the last map
LATCHED_OUTPUT = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                            durability=DurabilityPolicy.TRANSIENT_LOCAL)
# what tf2_ros.TransformBroadcaster uses for /tf: reliable, keep last 100
TF_QOS = RELIABLE_OUTPUT


def input_qos(name: str) -> QoSProfile:
    """QoS of the points subscription.

    ``sensor_data`` (best effort, keep last 5) matches every publisher, but large clouds between
    processes can lose fragments and so whole messages (measured: ~35% of 920 KB clouds at
    10 Hz); ``reliable`` loses none but does not match a best-effort publisher at all.
    """
    if name == "reliable":
        return QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
    return qos_profile_sensor_data


@dataclass
class Counters:
    """What happened to the incoming clouds (reported in every diagnostic)."""

    received: int = 0
    processed: int = 0
    dropped: int = 0
    bad_messages: int = 0
    out_of_order: int = 0
    failed_registrations: int = 0
    last_error: str = "none"

    def values(self) -> dict[str, Any]:
        return {"received": self.received, "processed": self.processed, "dropped_frames": self.dropped,
                "bad_messages": self.bad_messages, "out_of_order": self.out_of_order,
                "failed_registrations": self.failed_registrations, "last_error": self.last_error}


@dataclass
class OutputState:
    """Output-side state reset together with the odometry."""

    last_stamp: float | None = None
    path: list[PoseStamped] = field(default_factory=list)
    last_map_stamp: float | None = None
    last_path_stamp: float | None = None


class OdometryNode(Node):
    """Thin ROS wrapper around :class:`dcreg_ros.Odometry` (see the module docstring).

    Raises ConfigError or rclpy's ParameterException for invalid start-up parameters.
    """

    def __init__(self, node_name: str = NODE_NAME, **node_kwargs: Any) -> None:
        super().__init__(node_name, **node_kwargs)
        values = declare_parameters(self)
        self._warn_unknown_overrides()
        config, settings = settings_from_values(values)
        self._values = values
        self.settings: NodeSettings = settings
        self._set_extrinsics(settings)
        self.odometry = Odometry(config)
        self._sync_map_saving(settings)
        self.counters = Counters()
        self._output = OutputState()
        self._state_lock = threading.Lock()  # odometry, settings, trajectory: worker vs. services
        self._slot_cv = threading.Condition()
        self._slot: tuple[PointCloud2, float] | None = None
        self._stopping = False
        self._tf_send: Callable[[Any], None] | None = None
        self._tf_ready = False

        self.odom_pub = self.create_publisher(OdometryMsg, "dcreg/odometry", RELIABLE_OUTPUT)
        self.pose_pub = self.create_publisher(PoseStamped, "dcreg/pose", RELIABLE_OUTPUT)
        self.path_pub = self.create_publisher(Path, "dcreg/path", LATCHED_OUTPUT)
        self.cloud_pub = self.create_publisher(PointCloud2, "dcreg/cloud_registered", CLOUD_OUTPUT)
        self.map_pub = self.create_publisher(PointCloud2, "dcreg/local_map", LATCHED_OUTPUT)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", RELIABLE_OUTPUT)
        self.marker_pub = self.create_publisher(MarkerArray, "dcreg/degeneracy_markers", RELIABLE_OUTPUT)
        if settings.publish_tf:
            self._ensure_tf()
        self.create_subscription(PointCloud2, "points", self._on_cloud, input_qos(settings.input_qos))
        self.create_service(Trigger, "dcreg/reset", self._on_reset)
        self.create_service(Trigger, "dcreg/save_map", self._on_save_map)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        warm_ms = _warm_up(config)
        self._worker = threading.Thread(target=self._work, name="dcreg_worker", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"DCReg odometry on '{self.resolve_topic_name('points')}' (QoS {settings.input_qos}), "
            f"{settings.odom_frame} -> {settings.base_frame}, strategy {config.degeneracy.strategy} "
            f"(kernels warmed up in {warm_ms:.0f} ms)")

    # ----------------------------------------------------------------------- setup helpers
    def _warn_unknown_overrides(self) -> None:
        # a typo in a params file would otherwise be ignored silently (rclpy keeps the overrides
        # of undeclared names in this attribute; guarded because it is not public API)
        overrides = getattr(self, "_parameter_overrides", {}) or {}
        known = {spec.name for spec in parameter_specs()} | {"use_sim_time", "start_type_description_service"}
        unknown = sorted(name for name in overrides if name not in known and not name.startswith("qos_overrides."))
        if unknown:
            self.get_logger().warning(f"ignoring unknown parameter(s): {', '.join(unknown)}")

    def _set_extrinsics(self, settings: NodeSettings) -> None:
        self._T_base_lidar = pose_from_xyz_rpy(*settings.lidar_to_base)
        self._T_lidar_base = invert_pose(self._T_base_lidar)

    def _ensure_tf(self) -> None:
        """Pick the TF transport once: tf2_ros if installed, else a /tf publisher of
        tf2_msgs/TFMessage (what a broadcaster is), else log that TF is off."""
        if self._tf_ready:
            return
        self._tf_ready = True
        try:
            from tf2_ros import TransformBroadcaster

            broadcaster = TransformBroadcaster(self)
            self._tf_send = broadcaster.sendTransform
            return
        except ImportError:
            pass
        try:
            from tf2_msgs.msg import TFMessage
        except ImportError:
            self.get_logger().warning("neither tf2_ros nor tf2_msgs is installed: TF odom -> base is off "
                                      "(run scripts/build_tf2_msgs.sh VENV to build tf2_msgs)")
            return
        publisher = self.create_publisher(TFMessage, "/tf", TF_QOS)
        self._tf_send = lambda transform: publisher.publish(TFMessage(transforms=[transform]))

    # ----------------------------------------------------------------------- callbacks
    def _on_cloud(self, msg: PointCloud2) -> None:
        with self._slot_cv:
            self.counters.received += 1
            if self._slot is not None:
                self.counters.dropped += 1
            self._slot = (msg, time.perf_counter())
            self._slot_cv.notify()

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._state_lock:
            self.odometry.reset()
            self._output = OutputState()
        self.get_logger().info("reset: local map and trajectory cleared")
        response.success = True
        response.message = "local map and trajectory cleared"
        return response

    def _sync_map_saving(self, settings: NodeSettings) -> None:
        """Accumulate every registered frame for dcreg/save_map at ``map_save_voxel`` (0: off)."""
        voxel, current = settings.map_save_voxel, self.odometry.global_map
        if voxel <= 0:
            self.odometry.global_map = None
        elif current is None or current.voxel_size != voxel:
            self.odometry.global_map = GlobalMap(voxel)

    def _on_save_map(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        from ..io.maps import MapFileError, write_map

        settings = self.settings
        with self._state_lock:  # a copy, so the (slower) write does not hold up the odometry
            world = None if self.odometry.global_map is None else self.odometry.global_map.points.copy()
        response.success = False
        if not settings.map_save_path:
            response.message = f"parameter map_save_path is empty: ros2 param set {self.get_fully_qualified_name()} map_save_path /path/map.pcd"
        elif world is None:
            response.message = "map_save_voxel is 0: registered frames are not kept, nothing to save"
        elif len(world) == 0:
            response.message = "no frame registered yet: nothing to save"
        else:
            points = transform_points(self._T_base_lidar, world.astype(np.float64))  # the odom frame, as published
            try:
                write_map(settings.map_save_path, points)
            except MapFileError as exc:
                response.message = f"map not saved: {exc}"
            else:
                response.success = True
                response.message = (f"saved {len(points)} points to {settings.map_save_path} "
                                    f"({settings.odom_frame} frame, one per {settings.map_save_voxel:g} m voxel)")
        if response.success:  # rclpy insists on one severity per logging call site
            self.get_logger().info(f"save_map: {response.message}")
        else:
            self.get_logger().error(f"save_map: {response.message}")
        return response

    def _on_set_parameters(self, params: list) -> SetParametersResult:
        own = {spec.name for spec in parameter_specs()}
        changes = {p.name: plain_value(p.value) for p in params if p.name in own}
        if not changes:
            return SetParametersResult(successful=True)
        values = {**self._values, **changes}
        try:
            config, settings = settings_from_values(values)
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        with self._state_lock:
            was_reset = config != self.odometry.config and self.odometry.update_config(config)
            if was_reset:
                self._output = OutputState()
            self._values = values
            self.settings = settings
            self._set_extrinsics(settings)
            self._sync_map_saving(settings)
        if settings.publish_tf:
            self._ensure_tf()
        names = ", ".join(sorted(changes))
        if was_reset:
            self.get_logger().warning(f"parameter change ({names}) needs a new map: local map and trajectory reset")
        else:
            self.get_logger().info(f"parameter change applied from the next frame: {names}")
        return SetParametersResult(successful=True)

    # ----------------------------------------------------------------------- worker
    def _work(self) -> None:
        while True:
            with self._slot_cv:
                while self._slot is None and not self._stopping:
                    self._slot_cv.wait()
                if self._stopping:
                    return
                msg, received_at = self._slot
                self._slot = None
            try:
                self._process(msg, received_at)
            except Exception as exc:  # never let one frame kill the worker: report and go on
                self.get_logger().debug(traceback.format_exc())
                self._report_error(msg, f"internal error: {type(exc).__name__}: {exc}", "error")

    def _process(self, msg: PointCloud2, received_at: float) -> None:
        started = time.perf_counter()
        settings = self.settings
        n = int(msg.width) * int(msg.height)
        try:
            if n > settings.max_points:
                raise InputError(f"cloud has {n} points, more than max_points = {settings.max_points}")
            if n == 0:
                raise InputError("empty cloud (0 points)")
            scan = pointcloud2_to_scan(msg)
            if len(scan.points) == 0:
                raise InputError(f"no finite points (all {n} have NaN/Inf coordinates)")
        except InputError as exc:
            self._report_error(msg, f"bad PointCloud2 skipped: {exc}", "bad_messages")
            return
        times = {"received": received_at, "started": started, "converted": time.perf_counter()}
        with self._state_lock:
            last = self._output.last_stamp
            if last is not None and scan.stamp <= last:
                reason = (f"out-of-order stamp {scan.stamp:.6f} s is not after the last frame's {last:.6f} s: skipped "
                          "(call dcreg/reset to restart, e.g. when a bag loops)")
                self._report_error(msg, reason, "out_of_order")
                return
            try:
                record = self.odometry.register_frame(scan.points, scan.times, stamp=scan.stamp)
            except InputError as exc:
                self._report_error(msg, f"frame rejected: {exc}", "bad_messages")
                return
            self._output.last_stamp = scan.stamp
            self._publish_frame(msg, scan, record, settings, times)

    # ----------------------------------------------------------------------- output
    def _publish_frame(self, msg: PointCloud2, scan: Any, record: FrameRecord, settings: NodeSettings,
                       times: dict[str, float]) -> None:
        """Publish everything about one registered frame; ``times`` holds perf_counter instants
        (received, started, converted; odometry is added here) for the diagnostics."""
        stamp = msg.header.stamp
        T_odom_lidar = self._T_base_lidar @ record.pose
        T_odom_base = T_odom_lidar @ self._T_lidar_base
        if record.status == "first_frame":
            covariance = np.eye(6) * FIRST_FRAME_VARIANCE  # the first pose defines odom: exact
        else:
            covariance = rm.body_to_ros_covariance(
                rm.inflate_degenerate(record.covariance, record.degeneracy, settings.degenerate_variance_translation,
                                      settings.degenerate_variance_rotation),
                T_odom_lidar[:3, :3], self._T_lidar_base[:3, 3])
        # odometry first: it is what latency-sensitive consumers (and the --sync player) wait for
        self.odom_pub.publish(rm.odometry_msg(T_odom_base, covariance, stamp, settings.odom_frame, settings.base_frame))
        times["odometry"] = time.perf_counter()
        if settings.publish_tf and self._tf_send is not None:
            self._tf_send(rm.transform_msg(T_odom_base, stamp, settings.odom_frame, settings.base_frame))
        pose = rm.pose_stamped_msg(T_odom_base, stamp, settings.odom_frame)
        self.pose_pub.publish(pose)

        self.counters.processed += 1
        if record.status not in GOOD_STATUSES:
            self.counters.failed_registrations += 1
            self.counters.last_error = f"frame {record.index}: registration failed ({record.status})"
            self.get_logger().error(f"frame at {scan.stamp:.3f} s: registration failed ({record.status})")
        level, text, values = frame_diagnostic(record, scan.stamp, times)
        values.update(self.counters.values())
        self._publish_diagnostic(level, text, scan.frame_id, values)
        self.marker_pub.publish(rm.degeneracy_markers(record.degeneracy, T_odom_lidar, stamp, settings.odom_frame))

        # the two big clouds are only built when someone listens (RViz, a recorder)
        if settings.publish_registered_cloud and self.cloud_pub.get_subscription_count() > 0:
            self.cloud_pub.publish(rm.pointcloud2_msg(transform_points(T_odom_lidar, scan.points), stamp, settings.odom_frame,
                                                      scan.times, scan.intensity))
        out = self._output
        out.path.append(pose)
        if _due(out.last_path_stamp, scan.stamp, settings.path_publish_period, always_if_zero=True):
            out.last_path_stamp = scan.stamp
            self.path_pub.publish(rm.path_msg(out.path, stamp, settings.odom_frame))
        if (settings.map_publish_period > 0 and self.map_pub.get_subscription_count() > 0
                and _due(out.last_map_stamp, scan.stamp, settings.map_publish_period)):
            out.last_map_stamp = scan.stamp
            world = self.odometry.local_map.point_cloud()
            self.map_pub.publish(rm.pointcloud2_msg(transform_points(self._T_base_lidar, world), stamp, settings.odom_frame))

    def _report_error(self, msg: PointCloud2, reason: str, counter: str) -> None:
        """One ERROR diagnostic and one log line for a frame that could not be used."""
        with self._slot_cv:  # counters are also touched by the subscription callback
            if counter in ("bad_messages", "out_of_order"):
                setattr(self.counters, counter, getattr(self.counters, counter) + 1)
            self.counters.last_error = reason
        try:
            stamp = stamp_to_seconds(msg.header.stamp)
            frame_id = str(msg.header.frame_id)
        except Exception:  # a message so broken that its header is unusable
            stamp, frame_id = float("nan"), ""
        self.get_logger().error(f"cloud at {stamp:.3f} s: {reason}")
        self._publish_diagnostic(rm.ERROR, reason, frame_id, self.counters.values())

    def _publish_diagnostic(self, level: int, text: str, hardware_id: str, values: dict[str, Any]) -> None:
        now = self.get_clock().now().to_msg()  # node clock: follows /clock with use_sim_time
        self.diag_pub.publish(rm.diagnostics_msg(now, level, DIAGNOSTIC_NAME, text, hardware_id, values))

    # ----------------------------------------------------------------------- shutdown
    def stop(self) -> None:
        """Stop the worker thread (idempotent); call before destroy_node."""
        with self._slot_cv:
            self._stopping = True
            self._slot_cv.notify()
        if self._worker.is_alive() and threading.current_thread() is not self._worker:
            self._worker.join(timeout=10.0)

    def destroy_node(self) -> None:
        self.stop()
        super().destroy_node()


def frame_diagnostic(record: FrameRecord, stamp: float, times: dict[str, float]) -> tuple[int, str, dict[str, Any]]:
    """(level, message, key-values) of a registered frame: ERROR for a failed registration,
    WARN when directions are flagged, else OK; ``times`` are the node's perf_counter instants
    (received, started, converted, odometry published)."""
    report = record.degeneracy
    if record.status not in GOOD_STATUSES:
        level, text = rm.ERROR, f"registration failed ({record.status}); pose from the motion model"
    elif report is None:
        level, text = rm.OK, "first frame: local map initialised"
    else:
        level, text = (rm.WARN if report.degenerate else rm.OK), report.describe()
    values: dict[str, Any] = {"status": record.status, "frame": record.index, "cloud_stamp": f"{stamp:.9f}",
                              "iterations": record.iterations, "rmse": record.rmse, "fitness": record.fitness,
                              "points": record.num_points, "correspondences": record.num_correspondences,
                              "threshold": record.threshold}
    values.update(rm.degeneracy_values(report))
    values.update({f"time_{k}_ms": v for k, v in record.timings.items()})
    values["time_total_ms"] = record.total_ms
    values["time_node_ms"] = (times["odometry"] - times["started"]) * 1e3  # conversion + registration + message
    values["time_convert_ms"] = (times["converted"] - times["started"]) * 1e3  # PointCloud2 -> numpy
    values["time_queued_ms"] = (times["started"] - times["received"]) * 1e3  # waiting in the one-slot buffer
    return level, text, values


def _warm_up(config: OdometryConfig) -> float:
    """Register three synthetic frames with a throw-away odometry so the first real cloud does
    not pay for loading the compiled numba kernels (~0.5 s). Returns the milliseconds spent."""
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    faces = []
    for axis, value in ((0, -6.0), (0, 6.0), (1, -4.0), (1, 4.0), (2, -1.0), (2, 2.0)):
        face = rng.uniform(-6.0, 6.0, size=(800, 3)) * np.array([1.0, 4.0 / 6.0, 1.5 / 6.0]) + np.array([0.0, 0.0, 0.5])
        face[:, axis] = value
        faces.append(face)
    room = np.vstack(faces)
    odometry = Odometry(config)
    try:
        for k in range(3):  # the third frame also runs the deskewing kernel
            odometry.register_frame(room - np.array([0.05 * k, 0.0, 0.0]), np.linspace(0.0, 0.1, len(room)), stamp=0.1 * k)
    except InputError:  # a configuration that crops the synthetic room away: warm-up is optional
        pass
    return (time.perf_counter() - started) * 1e3


def _due(last: float | None, now: float, period: float, always_if_zero: bool = False) -> bool:
    """True when ``period`` seconds of data time have passed since ``last`` (or a time jump)."""
    if last is None or now < last:
        return True
    if period <= 0:
        return always_if_zero
    return now - last >= period - 1e-6


def main(args: list[str] | None = None) -> int:
    """Entry point of ``dcreg_node`` (accepts ``--ros-args ...``). Exits 1 on invalid parameters."""
    rclpy.init(args=args)
    try:
        node = OdometryNode()
    except (ConfigError, ParameterException) as exc:
        rclpy.logging.get_logger(NODE_NAME).error(f"invalid parameter: {exc}")
        rclpy.try_shutdown()
        return 1
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
