"""``dcreg_node``: DCReg LiDAR odometry as a ROS 2 node.

Subscribes to ``points`` (sensor_msgs/PointCloud2, remappable), registers each cloud with
:class:`dcreg_ros.Odometry` and publishes, in ``frame_prefix + odom_frame`` (nodes/outputs.py):

- ``dcreg/odometry`` (nav_msgs/Odometry odom -> base: pose with its covariance in physical
  units, where the flagged directions carry the motion prior's uncertainty, twist of the base
  in the base frame), ``dcreg/pose``,
  ``dcreg/path`` (bounded), TF odom -> base
- ``dcreg/cloud_registered`` (the frame's points in odom), ``dcreg/local_map`` (throttled)
- ``/diagnostics`` (OK / WARN when directions are flagged or the stamps jumped / ERROR for
  failures and bad messages), with every loss counted
- ``dcreg/degeneracy_markers`` (visualization_msgs/MarkerArray at the current pose)

Service ``dcreg/reset`` (std_srvs/Trigger) forgets the map and the trajectory; ``dcreg/save_map``
(std_srvs/Trigger) writes every frame registered so far to the file of parameter ``map_save_path``.
Optional inputs: ``motion_prior.imu_topic`` (sensor_msgs/Imu) and ``motion_prior.wheel_odom_topic``
(nav_msgs/Odometry) feed the motion prior (nodes/motion_inputs.py).

Threading: the subscription callback only parks the newest message in a one-slot buffer (a
replaced, unprocessed message counts as dropped) and a worker thread registers it, so a slow
frame never queues stale clouds: the node always works on the latest data. Start-up order: the
numba kernels are warmed up before the input subscriptions exist, so a publisher that waits for
a subscriber (``dcreg_bag_player``) does not start into a node that is still compiling.

Adding inputs or services: subscriptions go into :meth:`OdometryNode._create_inputs`, services
into :meth:`OdometryNode._create_services`; both run with the odometry and the outputs ready.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import rclpy
from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import SubscriptionEventCallbacks, UnsupportedEventTypeError
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import PointCloud2
from std_srvs.srv import Trigger

from ..core.config_io import ConfigError
from ..core.geometry import pose_from_xyz_rpy, transform_points
from ..core.global_map import GlobalMap
from ..core.odometry import TRACKING_DEGRADED, TRACKING_LOST, FrameRecord, Odometry, OdometryConfig
from ..core.pointcloud import InputError
from ..core.stamps import OUT_OF_ORDER, StampGaps, StampRejected
from ..io.ros_time import stamp_to_seconds
from ..io.scan import Scan
from . import ros_messages as rm
from .motion_inputs import MotionInputBuffer, motion_input_qos, resolve_motion_mountings
from .mounting import PARAMETER, Mounting, MountingLookup
from .node_plumbing import LatestOnlyWorker, scan_from_cloud, spin_node
from .stop_signals import start_up_checkpoint
from .outputs import FrameTimes, OdometryOutputs
from .parameters import NODE_NAME, NodeSettings, declare_parameters, own_changes, parameter_specs, settings_from_values
from .transport import check_transport

# the node's input and middleware counters; the per-frame values follow them in the diagnostics
COUNTER_KEYS = ("received", "processed", "dropped_frames", "lost_messages", "stamp_gaps", "bad_messages", "out_of_order",
                "stamp_jumps", "sequence_resets", "failed_registrations", "last_error")


def input_qos(name: str) -> QoSProfile:
    """QoS of the points subscription.

    ``sensor_data`` (best effort, keep last 5) matches every publisher, but large clouds between
    processes can lose fragments and so whole messages (measured: ~35% of 920 KB clouds at
    10 Hz); ``reliable`` does not match a best-effort publisher at all, and still loses clouds
    when the transport cannot keep up (counted in ``lost_messages`` / ``stamp_gaps``).
    """
    if name == "reliable":
        return QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
    return qos_profile_sensor_data


@dataclass
class Counters:
    """What happened to the incoming clouds (reported in every diagnostic). Every cloud the
    sensor sent is processed, dropped by the one-slot buffer (``dropped``), refused (bad,
    out of order, a stamp jump), or lost before the callback: reported by the middleware
    (``lost_messages``, where it reports losses) and estimated from gaps in the stamps against
    the sensor period (``stamp_gaps``)."""

    received: int = 0
    processed: int = 0
    dropped: int = 0
    lost_messages: int | None = 0  # None: the middleware does not report lost messages
    stamp_gaps: int = 0
    bad_messages: int = 0
    out_of_order: int = 0
    stamp_jumps: int = 0
    sequence_resets: int = 0
    failed_registrations: int = 0
    last_error: str = "none"

    def values(self) -> dict[str, Any]:
        values = {key: getattr(self, key) for key in COUNTER_KEYS if key != "dropped_frames"}
        values["dropped_frames"] = self.dropped
        if self.lost_messages is None:
            values["lost_messages"] = "not reported by this middleware"
        return {key: values[key] for key in COUNTER_KEYS}


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
        self.odometry = Odometry(config)
        self.odometry.expect_motion_inputs(bool(settings.imu_topic), bool(settings.wheel_odom_topic))
        self._sync_map_saving(settings)
        self.counters = Counters()
        self._gaps = StampGaps(config.stamps)
        self._state_lock = threading.Lock()  # odometry, settings, outputs, mounting: worker vs. services
        self._counters_lock = threading.RLock()  # the counters: subscription callbacks vs. the worker
        self.motion_inputs = MotionInputBuffer(bool(settings.imu_topic), bool(settings.wheel_odom_topic))
        self.motion_mounting_detail = ""
        self._resolved_mountings: dict[str, Any] = {}  # motion_prior fields taken from TF (kept on parameter changes)
        self.diagnostic_name = f"{self.get_fully_qualified_name().lstrip('/')}: odometry"
        self.transport = check_transport()
        if not self.transport.ok:
            self.get_logger().warning(self.transport.advice)

        self.outputs = OdometryOutputs(self, settings)
        self._mounting_lookup = MountingLookup(self, settings.use_tf_mounting)
        self.mounting = self._parameter_mounting(settings)
        self._create_services()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        warm_ms = _warm_up(config)  # a stop during it: between two of its frames, or in spin_node after it
        self.warmed_up_at = time.monotonic()
        self._worker = LatestOnlyWorker(self._process, self._on_worker_error, "dcreg_worker")
        self._create_inputs()
        self.get_logger().info(
            f"DCReg odometry on '{self.points_sub.topic_name}' (QoS {settings.input_qos}), "
            f"{settings.odom_frame_id} -> {settings.base_frame_id}, strategy {config.degeneracy.strategy} "
            f"(kernels warmed up in {warm_ms:.0f} ms); transport: {self.transport.summary}")

    # ----------------------------------------------------------------------- setup
    def _create_services(self) -> None:
        """Services of the node."""
        self.create_service(Trigger, "dcreg/reset", self._on_reset)
        self.create_service(Trigger, "dcreg/save_map", self._on_save_map)

    def _create_inputs(self) -> None:
        """Input subscriptions, created last (after the warm-up): the points and their
        middleware events, and the motion prior's IMU and wheel odometry when configured."""
        self.points_sub = self._subscribe_counting_losses(PointCloud2, "points", self._on_cloud, input_qos(self.settings.input_qos))
        if self.settings.imu_topic:
            from sensor_msgs.msg import Imu

            self.create_subscription(Imu, self.settings.imu_topic, self.motion_inputs.add_imu, motion_input_qos(self.settings.input_qos))
        if self.settings.wheel_odom_topic:
            from nav_msgs.msg import Odometry as OdometryMsg

            self.create_subscription(OdometryMsg, self.settings.wheel_odom_topic, self.motion_inputs.add_wheel,
                                     motion_input_qos(self.settings.input_qos))

    def _subscribe_counting_losses(self, msg_type: Any, topic: str, callback: Any, qos: QoSProfile) -> Any:
        """A subscription whose lost-message events (where the middleware reports them) add to
        ``counters.lost_messages``."""
        events = SubscriptionEventCallbacks(message_lost=self._on_message_lost)
        try:
            return self.create_subscription(msg_type, topic, callback, qos, event_callbacks=events)
        except UnsupportedEventTypeError:
            self.counters.lost_messages = None
            return self.create_subscription(msg_type, topic, callback, qos)

    def _warn_unknown_overrides(self) -> None:
        # a typo in a params file would otherwise be ignored silently (rclpy keeps the overrides
        # of undeclared names in this attribute; guarded because it is not public API)
        overrides = getattr(self, "_parameter_overrides", {}) or {}
        known = {spec.name for spec in parameter_specs()} | {"use_sim_time", "start_type_description_service"}
        unknown = sorted(name for name in overrides if name not in known and not name.startswith("qos_overrides."))
        if unknown:
            self.get_logger().warning(f"ignoring unknown parameter(s): {', '.join(unknown)}")

    @staticmethod
    def _parameter_mounting(settings: NodeSettings) -> Mounting:
        return Mounting(pose_from_xyz_rpy(*settings.lidar_to_base), PARAMETER, "lidar_to_base")

    # ----------------------------------------------------------------------- callbacks
    def _on_cloud(self, msg: PointCloud2) -> None:
        stamp = stamp_to_seconds(msg.header.stamp)
        with self._counters_lock:
            self._gaps.add(stamp)
            self.counters.stamp_gaps = self._gaps.missing
            self._worker.offer(msg)
            self.counters.received, self.counters.dropped = self._worker.received, self._worker.dropped

    def _on_message_lost(self, info: Any) -> None:
        with self._counters_lock:
            self.counters.lost_messages = int(info.total_count)

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._state_lock:
            self.odometry.reset()
            self.outputs.reset(self.settings)
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
            points = transform_points(self.mounting.T_base_lidar, world.astype(np.float64))  # the odom frame, as published
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
        changes = own_changes(params, parameter_specs())
        if not changes:
            return SetParametersResult(successful=True)
        values = {**self._values, **changes}
        try:
            config, settings = settings_from_values(values)
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        with self._state_lock:
            # the mountings found in TF stay (the parameters hold only the fallback)
            config = replace(config, motion_prior=replace(config.motion_prior, **self._resolved_mountings))
            old = self.settings
            was_reset = config != self.odometry.config and self.odometry.update_config(config)
            if was_reset:
                self.outputs.reset(settings)
            elif (old.path_max_poses, old.path_history) != (settings.path_max_poses, settings.path_history):
                self.outputs.resize_path(settings)
            self._values = values
            self.settings = settings
            if self.mounting.source == PARAMETER:  # the parameter applies at once; TF per sequence
                self.mounting = self._parameter_mounting(settings)
            if settings.use_tf_mounting and not old.use_tf_mounting:
                self._mounting_lookup = MountingLookup(self, True)
            self._sync_map_saving(settings)
        with self._counters_lock:
            self._gaps.config = config.stamps
        if settings.publish_tf:
            self.outputs.ensure_tf()
        self._check_tf_owner(settings)
        names = ", ".join(sorted(changes))
        if was_reset:
            self.get_logger().warning(f"parameter change ({names}) needs a new map: local map and trajectory reset")
        else:
            self.get_logger().info(f"parameter change applied from the next frame: {names}")
        return SetParametersResult(successful=True)

    # ----------------------------------------------------------------------- worker
    def _on_worker_error(self, msg: PointCloud2, exc: Exception, trace: str) -> None:
        self.get_logger().debug(trace)
        self._report_refused(msg, f"internal error: {type(exc).__name__}: {exc}", None)

    def _process(self, msg: PointCloud2, received_at: float) -> None:
        times = FrameTimes(received=received_at, started=time.perf_counter())
        settings = self.settings
        try:
            scan = scan_from_cloud(msg, settings.max_points)
            if len(scan.points) == 0:
                raise InputError(f"no finite points (all {int(msg.width) * int(msg.height)} have NaN/Inf coordinates)")
        except InputError as exc:
            self._report_refused(msg, f"bad PointCloud2 skipped: {exc}", "bad_messages")
            return
        times.converted = time.perf_counter()
        if self.motion_inputs.expect_imu or self.motion_inputs.expect_wheel:
            self.motion_inputs.wait_until_covered(scan.sweep_end, self.odometry.config.motion_prior.max_data_age)
        with self._state_lock:
            settings = self.settings
            if not self.odometry.poses:  # a new sequence: where the IMU and the base sit
                self._resolve_motion_mountings(scan.frame_id, settings)
            self.motion_inputs.feed(self.odometry)
            try:
                record = self.odometry.register_frame(scan.points, scan.times, stamp=scan.stamp)
            except StampRejected as exc:
                if exc.verdict.action == OUT_OF_ORDER:
                    self._report_refused(msg, f"{exc} (a bag that loops restarts the odometry by itself)", "out_of_order")
                else:
                    self._report_refused(msg, str(exc), "stamp_jumps", rm.WARN)
                return
            except InputError as exc:
                self._report_refused(msg, f"frame rejected: {exc}", "bad_messages")
                return
            if record.index == 0:  # a new sequence: a new odom frame, a new mounting
                self._start_sequence(record, scan, settings)
            self._publish_frame(msg, scan, record, settings, times)

    def _resolve_motion_mountings(self, lidar_frame: str, settings: NodeSettings) -> None:
        """T_lidar_imu and T_base_lidar of the motion prior from TF (the messages' frames), else
        the motion_prior parameters; the odometry has no frame yet, so the change costs nothing."""
        mp, details = resolve_motion_mountings(self._mounting_lookup, self.motion_inputs, lidar_frame,
                                               self.odometry.config.motion_prior, settings.mounting_timeout)
        self._check_tf_owner(settings)
        if details:
            self.motion_mounting_detail = "; ".join(details)
            self._resolved_mountings = {name: getattr(mp, name) for name in ("imu_to_lidar", "lidar_to_base")
                                        if getattr(mp, name) != getattr(self.odometry.config.motion_prior, name)}
            if mp != self.odometry.config.motion_prior:
                self.odometry.update_config(replace(self.odometry.config, motion_prior=mp))

    def _check_tf_owner(self, settings: NodeSettings) -> None:
        """Withhold our odom -> base TF when the wheel odometry names the very same two frames:
        its driver (e.g. diff_drive_controller) broadcasts that transform, and two publishers of
        one parent -> child pair make TF jump between them (REP-105: one parent per frame)."""
        wheel = (self.motion_inputs.wheel_frame, self.motion_inputs.wheel_child_frame)
        blocked = ""
        if settings.publish_tf and settings.wheel_odom_topic and wheel == (settings.odom_frame_id, settings.base_frame_id):
            blocked = (f"wheel odometry on {settings.wheel_odom_topic} is {wheel[0]} -> {wheel[1]}, the same transform as ours: "
                       "dcreg TF is withheld (REP-105: one parent per frame); dcreg/odometry is still published, "
                       "fuse it with the wheels (robot_localization) or set publish_tf false")
        if blocked and blocked != self.outputs.tf_blocked_by:
            self.get_logger().warning(blocked)
        self.outputs.tf_blocked_by = blocked

    def _start_sequence(self, record: FrameRecord, scan: Scan, settings: NodeSettings) -> None:
        self.outputs.reset(settings)
        self.mounting = self._mounting_lookup.resolve(settings.base_frame_id, scan.frame_id,
                                                      self._parameter_mounting(settings).T_base_lidar, settings.mounting_timeout)
        if record.sequence_reset:
            with self._counters_lock:
                self.counters.sequence_resets += 1
            self.get_logger().warning(f"cloud at {scan.stamp:.3f} s: {record.notes[0]}")
        self.get_logger().info(f"mounting T_base_lidar from {self.mounting.detail}")

    # ----------------------------------------------------------------------- output
    def _publish_frame(self, msg: PointCloud2, scan: Scan, record: FrameRecord, settings: NodeSettings,
                       times: FrameTimes) -> None:
        """Publish everything about one registered frame."""
        stamp = msg.header.stamp
        T_base_lidar = self.mounting.T_base_lidar
        pose = self.outputs.publish_pose(record, T_base_lidar, stamp, settings)
        times.odometry = time.perf_counter()
        with self._counters_lock:
            self.counters.processed += 1
            if not record.ok:
                self.counters.failed_registrations += 1
                self.counters.last_error = f"frame {record.index}: registration failed ({record.status})"
            counters = self.counters.values()
        if not record.ok:
            self.get_logger().error(f"frame at {scan.stamp:.3f} s: registration failed ({record.status})")
        level, text, values = frame_diagnostic(record, scan.stamp, times)
        values.update(self._context_values())
        values.update(counters)
        self.outputs.publish_diagnostic(level, self.diagnostic_name, text, scan.frame_id, values)
        self.outputs.publish_extras(record, pose, scan, stamp, self.odometry.local_map.point_cloud, T_base_lidar, settings)

    def _context_values(self) -> dict[str, Any]:
        period = self._gaps.period
        values = {"mounting": self.mounting.source, "mounting_detail": self.mounting.detail, "transport": self.transport.summary,
                  "sensor_period": f"{period:.4f}" if period is not None else "unknown"}
        values.update(self.motion_inputs.values())
        if self.motion_mounting_detail:
            values["motion_prior_mounting"] = self.motion_mounting_detail
        if self.outputs.tf_blocked_by:
            values["tf"] = self.outputs.tf_blocked_by
        return values

    def _report_refused(self, msg: PointCloud2, reason: str, counter: str | None, level: int = rm.ERROR) -> None:
        """One diagnostic (ERROR, or WARN for a stamp jump) and one log line for a frame that
        could not be used; ``counter`` is the Counters field it adds to."""
        with self._counters_lock:  # counters are also touched by the subscription callback
            if counter is not None:
                setattr(self.counters, counter, getattr(self.counters, counter) + 1)
            self.counters.last_error = reason
            counters = self.counters.values()
        try:
            stamp = stamp_to_seconds(msg.header.stamp)
            frame_id = str(msg.header.frame_id)
        except Exception:  # a message so broken that its header is unusable
            stamp, frame_id = float("nan"), ""
        # rclpy ties a severity to each logging call site: one call per level
        if level == rm.WARN:
            self.get_logger().warning(f"cloud at {stamp:.3f} s: {reason}")
        else:
            self.get_logger().error(f"cloud at {stamp:.3f} s: {reason}")
        self.outputs.publish_diagnostic(level, self.diagnostic_name, reason, frame_id, {**self._context_values(), **counters})

    # ----------------------------------------------------------------------- shutdown
    def stop(self) -> None:
        """Stop the worker thread (idempotent); call before destroy_node."""
        self._worker.stop()

    def destroy_node(self) -> None:
        self.stop()
        super().destroy_node()


def frame_diagnostic(record: FrameRecord, stamp: float, times: FrameTimes) -> tuple[int, str, dict[str, Any]]:
    """(level, message, key-values) of a registered frame: ERROR for a failed registration or a
    LOST track, WARN for a refused scan (DEGRADED), flagged directions or a new sequence after a
    stamp jump, else OK; a track that resumed or was recovered says so first."""
    report = record.degeneracy
    if record.tracking == TRACKING_LOST:  # also when the registrations keep failing (a covered sensor)
        level, text = rm.ERROR, f"track LOST: {record.tracking_message}"
    elif not record.ok:
        level, text = rm.ERROR, f"registration failed ({record.status}); pose from the motion model"
    elif record.tracking == TRACKING_DEGRADED:
        level, text = rm.WARN, f"scan refused (DEGRADED): {record.tracking_message}; pose from the motion model, the map unchanged"
    elif record.sequence_reset:
        level, text = rm.WARN, record.notes[0]
    elif report is None:
        level, text = rm.OK, "first frame: local map initialised"
    else:
        level, text = (rm.WARN if report.degenerate else rm.OK), report.describe()
    if record.ok and record.tracking not in (TRACKING_LOST, TRACKING_DEGRADED) and record.tracking_message:
        text = f"{record.tracking_message}; {text}"  # the track resumed or was recovered
    values: dict[str, Any] = {"status": record.status, "tracking": record.tracking, "frame": record.index, "cloud_stamp": f"{stamp:.9f}",
                              "iterations": record.iterations, "rmse": record.rmse, "fitness": record.fitness,
                              "points": record.num_points, "correspondences": record.num_correspondences,
                              "threshold": record.threshold}
    values.update(rm.degeneracy_values(report))
    values.update({f"time_{k}_ms": v for k, v in record.timings.items()})
    values["time_total_ms"] = record.total_ms
    values.update(times.values())
    values.update(rm.prior_values(record))
    if record.notes:
        if level == rm.OK:  # a motion-prior fallback, deskewing off, a held stamp outlier
            level, text = rm.WARN, record.notes[0]
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
            start_up_checkpoint()
            odometry.register_frame(room - np.array([0.05 * k, 0.0, 0.0]), np.linspace(0.0, 0.1, len(room)), stamp=0.1 * k)
    except InputError:  # a configuration that crops the synthetic room away: warm-up is optional
        pass
    return (time.perf_counter() - started) * 1e3


def main(args: list[str] | None = None) -> int:
    """Entry point of ``dcreg_node`` (accepts ``--ros-args ...``). Exits 1 on invalid parameters."""
    return spin_node(OdometryNode, NODE_NAME, (ConfigError, ParameterException), args,
                     error_prefix="invalid parameter")


if __name__ == "__main__":
    sys.exit(main())
