"""``dcreg_localization_node``: localization of LiDAR scans in a prior map as a ROS 2 node.

Loads ``map_file`` once and localizes each ``points`` cloud (sensor_msgs/PointCloud2) in it with
:class:`dcreg_ros.Localizer` (DCReg degeneracy handling, lost-track test). Frames follow REP-105:
the node publishes ``map -> odom`` on TF, T_map_odom = T_map_base * inv(T_odom_base) at the scan
stamp, composing with whatever publishes ``odom -> base_link`` (dcreg_node, wheel odometry):
looked up on TF through tf2_ros when it is installed, else read from the nav_msgs/Odometry topic
``odom_topic`` (parameter ``odom_source``). With ``odom_source: none`` it publishes
``map -> base_link`` directly.

- in: ``points``; ``initialpose`` (geometry_msgs/PoseWithCovarianceStamped of base_link in the
  map frame, what RViz's "2D Pose Estimate" publishes); the odometry topic (``topic`` source);
  optionally ``motion_prior.imu_topic`` (sensor_msgs/Imu) and ``motion_prior.wheel_odom_topic``
  (nav_msgs/Odometry) for the prediction between scans, as in dcreg_node (nodes/motion_inputs.py):
  where the map leaves a direction unobservable (a long featureless corridor) the wheels carry
  the pose along it
- out: ``dcreg/localization/pose`` (PoseWithCovarianceStamped, map frame, covariance inflated
  along flagged directions; 1e6 when LOST), ``dcreg/map`` (PointCloud2, transient local, once),
  ``/diagnostics`` (OK, WARN for flagged axes / a degraded frame / no initial pose yet, ERROR for
  LOST and bad messages), ``dcreg/localization/markers`` (degeneracy markers), ``/tf``
- service ``dcreg/relocalize`` (std_srvs/Trigger): global relocalization of the latest scan

While LOST the last map -> odom stays published (the TF tree stays connected) and, with
``relocalization.when_lost``, global registration is tried every ``relocalization.attempt_every``
frames.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry as OdometryMsg
from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Imu, PointCloud2
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from ..core.config_io import ConfigError, replace
from ..core.covariance import body_to_ros_covariance
from ..core.geometry import invert_pose, pose_from_xyz_rpy
from ..core.localization import (TRACKING_DEGRADED, TRACKING_LOST, TRACKING_OK, LocalizationConfig, LocalizationReport, Localizer)
from ..core.pointcloud import InputError
from ..io.maps import MapFileError, load_map
from ..io.ros_time import stamp_to_seconds
from ..io.scan import Scan
from . import ros_messages as rm
from .motion_inputs import MotionInputBuffer, motion_input_qos, resolve_motion_mountings
from .mounting import MountingLookup
from .localization_parameters import (LOCALIZATION_NODE_NAME, READ_ONLY, LocalizationNodeSettings, localization_parameter_specs,
                                      localization_settings_from_values)
from .node_plumbing import LatestOnlyWorker, scan_from_cloud, spin_node, tf_sender
from .stop_signals import start_up_checkpoint
from .odom_lookup import OdometryHistory, TfLookup
from .odometry_node import input_qos
from .outputs import LATCHED_OUTPUT, RELIABLE_OUTPUT, TF_QOS
from .parameters import declare_parameters, own_changes

DIAGNOSTIC_NAME = f"{LOCALIZATION_NODE_NAME}: localization"
INITIAL_POSE_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
ODOMETRY_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)


@dataclass
class LocalizationCounters:
    """What happened to the incoming clouds and poses (reported in every diagnostic)."""

    processed: int = 0
    bad_messages: int = 0
    out_of_order: int = 0
    lost_frames: int = 0
    initial_poses: int = 0
    relocalizations: int = 0
    missing_odometry: int = 0
    last_error: str = "none"


class LocalizationNode(Node):
    """Thin ROS wrapper around :class:`dcreg_ros.Localizer` (see the module docstring).

    Raises ConfigError / ParameterException for invalid parameters and MapFileError (an
    InputError) for a missing, unreadable or empty map.
    """

    def __init__(self, node_name: str = LOCALIZATION_NODE_NAME, **node_kwargs: Any) -> None:
        super().__init__(node_name, **node_kwargs)
        values = declare_parameters(self, localization_parameter_specs())
        config, settings = localization_settings_from_values(values)
        self._values = values
        self.settings: LocalizationNodeSettings = settings
        self._set_extrinsics(settings)
        started = time.perf_counter()
        self.get_logger().info(f"loading the map {settings.map_file} (large maps take seconds; Ctrl-C stops)")
        map_cloud = load_map(settings.map_file, config.map.load_voxel_size, config.map.max_points)
        start_up_checkpoint()
        self.localizer = Localizer(map_cloud.points, self._with_start(config, settings), downsample=False)
        start_up_checkpoint()
        self.map_load_seconds = time.perf_counter() - started
        imu, wheel = bool(settings.imu_topic), bool(settings.wheel_odom_topic)
        self.localizer.expect_motion_inputs(imu, wheel)
        self.motion_inputs = MotionInputBuffer(imu, wheel)
        self.motion_mounting_detail = ""
        self._motion_mountings_resolved = not (imu or wheel)
        self._resolved_mountings: dict[str, tuple] = {}  # motion_prior fields taken from TF (kept on parameter changes)
        self.counters = LocalizationCounters()
        self._state_lock = threading.Lock()  # localizer, pending pose, last scan: worker vs. services
        self._pending_pose: np.ndarray | None = None  # T_map_lidar to apply before the next scan
        if settings.initial_pose_source == "parameter":
            self._pending_pose = pose_from_xyz_rpy(*settings.initial_pose) @ self._T_base_lidar
        self._last_scan: Scan | None = None
        self._last_stamp: float | None = None
        self._T_map_odom: np.ndarray | None = None

        self.pose_pub = self.create_publisher(PoseWithCovarianceStamped, "dcreg/localization/pose", RELIABLE_OUTPUT)
        self.map_pub = self.create_publisher(PointCloud2, "dcreg/map", LATCHED_OUTPUT)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", RELIABLE_OUTPUT)
        self.marker_pub = self.create_publisher(MarkerArray, "dcreg/localization/markers", RELIABLE_OUTPUT)
        self._tf_send = tf_sender(self, TF_QOS) if settings.publish_tf else None
        if settings.publish_tf and self._tf_send is None:
            self.get_logger().warning("neither tf2_ros nor tf2_msgs is installed: TF map -> odom is off")
        self._odom = self._odometry_source(settings)
        self.create_subscription(PoseWithCovarianceStamped, "initialpose", self._on_initial_pose, INITIAL_POSE_QOS)
        self.create_service(Trigger, "dcreg/relocalize", self._on_relocalize)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._mounting_lookup = MountingLookup(self, True) if imu or wheel else None
        self._worker = LatestOnlyWorker(self._process, self._on_worker_error, "dcreg_localization_worker")
        self.create_subscription(PointCloud2, "points", self._worker.offer, input_qos(settings.input_qos))
        motion_qos = motion_input_qos(settings.input_qos)
        if imu:
            self.create_subscription(Imu, settings.imu_topic, self.motion_inputs.add_imu, motion_qos)
        if wheel:
            self.create_subscription(OdometryMsg, settings.wheel_odom_topic, self.motion_inputs.add_wheel, motion_qos)
        info = self.localizer.map_info
        inputs = [f"{what} '{self.resolve_topic_name(topic)}'" for what, topic in (("IMU", settings.imu_topic),
                                                                                    ("wheel odometry", settings.wheel_odom_topic)) if topic]
        self.get_logger().info(
            f"localizing '{self.resolve_topic_name('points')}' in {settings.map_file}: {map_cloud.source_points} points "
            f"-> {info.num_points} in the map, loaded in {self.map_load_seconds:.2f} s ({info.nbytes / 1e6:.0f} MB); "
            f"initial pose from {settings.initial_pose_source}, odom -> {settings.base_frame} from {self._odom_description}; "
            f"motion prior from {' and '.join(inputs) if inputs else 'the scans alone (constant velocity)'}")
        if settings.publish_map:  # last: a subscriber that got the map sees a node that has started
            self.map_pub.publish(rm.pointcloud2_msg(map_cloud.points, self.get_clock().now().to_msg(), settings.map_frame))

    # ----------------------------------------------------------------------- setup helpers
    @staticmethod
    def _with_start(config: LocalizationConfig, settings: LocalizationNodeSettings) -> LocalizationConfig:
        on_start = settings.initial_pose_source == "global"
        return replace(config, relocalization=replace(config.relocalization, on_start=on_start))

    def _set_extrinsics(self, settings: LocalizationNodeSettings) -> None:
        self._T_base_lidar = pose_from_xyz_rpy(*settings.lidar_to_base)
        self._T_lidar_base = invert_pose(self._T_base_lidar)

    def _odometry_source(self, settings: LocalizationNodeSettings):
        """TfLookup, OdometryHistory (fed by a subscription) or None (odom_source none)."""
        source = settings.odom_source
        if source in ("auto", "tf"):
            try:
                lookup = TfLookup(self, settings.odom_frame, settings.base_frame)
                self._odom_description = "TF (tf2_ros)"
                return lookup
            except ImportError:
                if source == "tf":
                    raise ConfigError("odom_source is tf but tf2_ros is not installed: use odom_source topic") from None
        if source == "none":
            self._odom_description = "nowhere (odom_source none: map -> base published)"
            return None
        history = OdometryHistory(settings.odom_tolerance)
        topic = settings.odom_topic
        self.create_subscription(OdometryMsg, topic, lambda msg: self._on_odometry(history, msg), ODOMETRY_QOS)
        self._odom_description = f"the nav_msgs/Odometry topic '{self.resolve_topic_name(topic)}'"
        return history

    def _resolve_motion_mountings(self, lidar_frame: str) -> None:
        """The IMU and wheel mountings of the motion prior (TF, else its parameters), once, at the
        first scan after the inputs sent something (call with the state lock)."""
        if self.motion_inputs.expect_imu and not self.motion_inputs.imu_frame:
            return
        if self.motion_inputs.expect_wheel and not self.motion_inputs.wheel_child_frame:
            return
        config = self.localizer.config
        mp, details = resolve_motion_mountings(self._mounting_lookup, self.motion_inputs, lidar_frame, config.motion_prior,
                                               self.settings.mounting_timeout)
        self.motion_mounting_detail = "; ".join(details)
        self._motion_mountings_resolved = True
        self._resolved_mountings = {name: getattr(mp, name) for name in ("imu_to_lidar", "lidar_to_base")
                                    if getattr(mp, name) != getattr(config.motion_prior, name)}
        if mp != config.motion_prior:
            self.localizer.update_config(replace(config, motion_prior=mp))
        self.get_logger().info(f"motion prior mountings: {self.motion_mounting_detail}")

    # ----------------------------------------------------------------------- callbacks
    def _on_odometry(self, history: OdometryHistory, msg: OdometryMsg) -> None:
        try:
            history.add(stamp_to_seconds(msg.header.stamp), rm.matrix_from_pose(msg.pose.pose))
        except ValueError:
            pass  # an odometry message with a broken pose is ignored; the lookup reports the gap

    def _on_initial_pose(self, msg: PoseWithCovarianceStamped) -> None:
        frame = str(msg.header.frame_id)
        settings = self.settings
        try:
            if frame not in ("", settings.map_frame):
                raise ValueError(f"frame '{frame}' is not the map frame '{settings.map_frame}'")
            T_map_base = rm.matrix_from_pose(msg.pose.pose)
        except ValueError as exc:
            self._report_error(f"initial pose ignored: {exc}", "")
            return
        with self._state_lock:
            self._pending_pose = T_map_base @ self._T_base_lidar
            self.counters.initial_poses += 1
        x, y, z = T_map_base[:3, 3]
        self.get_logger().info(f"initial pose ({x:.2f}, {y:.2f}, {z:.2f}) m in {settings.map_frame}: used from the next scan")

    def _on_relocalize(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._state_lock:
            scan = self._last_scan
            if scan is None:
                response.success, response.message = False, "no scan received yet"
                return response
            try:
                report = self.localizer.relocalize(scan.points, scan.times, stamp=scan.stamp)
            except InputError as exc:
                response.success, response.message = False, f"relocalization failed: {exc}"
                return response
            self._publish(report, scan, rm.time_msg(scan.stamp))
        response.success = report.tracking == TRACKING_OK
        x, y, z = (report.pose @ self._T_lidar_base)[:3, 3]
        response.message = (f"relocalized at ({x:.2f}, {y:.2f}, {z:.2f}) m, fitness {report.fitness:.2f}, "
                            f"inlier share {report.inlier_share:.2f}") if response.success else report.message
        self.get_logger().info(f"relocalize: {response.message}")
        return response

    def _on_set_parameters(self, params: list) -> SetParametersResult:
        changes = own_changes(params, localization_parameter_specs())
        if not changes:
            return SetParametersResult(successful=True)
        fixed = sorted(set(changes) & READ_ONLY)
        if fixed:
            return SetParametersResult(successful=False, reason=f"{', '.join(fixed)}: restart the node to change")
        values = {**self._values, **changes}
        try:
            config, settings = localization_settings_from_values(values)
            with self._state_lock:
                config = replace(config, motion_prior=replace(config.motion_prior, **self._resolved_mountings))
                self.localizer.update_config(self._with_start(config, settings))
                self._values, self.settings = values, settings
                self._set_extrinsics(settings)
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self.get_logger().info(f"parameter change applied from the next scan: {', '.join(sorted(changes))}")
        return SetParametersResult(successful=True)

    # ----------------------------------------------------------------------- worker
    def _on_worker_error(self, msg: PointCloud2, exc: Exception, trace: str) -> None:
        self.get_logger().debug(trace)
        self._report_error(f"internal error: {type(exc).__name__}: {exc}", _frame_id(msg))

    def _process(self, msg: PointCloud2, received_at: float) -> None:
        settings = self.settings
        try:
            scan = scan_from_cloud(msg, settings.max_points)
        except InputError as exc:
            self._report_error(f"bad PointCloud2 skipped: {exc}", _frame_id(msg), "bad_messages")
            return
        if self.motion_inputs.expect_imu or self.motion_inputs.expect_wheel:
            # the IMU / wheel messages of the sweep's last milliseconds may still be on their way
            self.motion_inputs.wait_until_covered(scan.sweep_end, self.localizer.config.motion_prior.max_data_age)
        with self._state_lock:
            if not self._motion_mountings_resolved:
                self._resolve_motion_mountings(scan.frame_id)
            self.motion_inputs.feed(self.localizer)
            if self._last_stamp is not None and scan.stamp <= self._last_stamp:
                self._report_error(f"out-of-order stamp {scan.stamp:.6f} s is not after the last scan's {self._last_stamp:.6f} s: "
                                   "skipped", scan.frame_id, "out_of_order")
                return
            if self._pending_pose is not None:
                pose, self._pending_pose = self._pending_pose, None
                try:
                    self.localizer.set_pose(pose)
                except InputError as exc:
                    self._report_error(f"initial pose rejected: {exc}", scan.frame_id)
            if not self.localizer.initialized and settings.initial_pose_source == "topic":
                self._last_scan, self._last_stamp = scan, scan.stamp
                self._publish_diagnostic(rm.WARN, "waiting for an initial pose on initialpose (RViz: 2D Pose Estimate)",
                                         scan.frame_id, self._counter_values())
                return
            try:
                report = self.localizer.localize(scan.points, scan.times, stamp=scan.stamp)
            except InputError as exc:
                self._report_error(f"scan rejected: {exc}", scan.frame_id, "bad_messages")
                return
            self._last_scan, self._last_stamp = scan, scan.stamp
            self._publish(report, scan, msg.header.stamp, received_at)

    # ----------------------------------------------------------------------- output
    def _publish(self, report: LocalizationReport, scan: Scan, stamp: Any, received_at: float | None = None) -> None:
        """Pose, TF, diagnostics and markers of one localized scan (call with the state lock)."""
        settings = self.settings
        T_map_lidar = report.pose
        T_map_base = T_map_lidar @ self._T_lidar_base
        # in physical units: the LiDAR's information, plus the motion prior along flagged directions
        covariance = body_to_ros_covariance(report.covariance, T_map_lidar[:3, :3], self._T_lidar_base[:3, 3])
        self.pose_pub.publish(rm.pose_with_covariance_msg(T_map_base, covariance, stamp, settings.map_frame))
        odom_note = self._publish_tf(report, T_map_base, scan.stamp)
        counters = self.counters
        counters.processed += 1
        counters.lost_frames += int(report.tracking == TRACKING_LOST)
        counters.relocalizations += int(report.relocalized and report.tracking == TRACKING_OK)
        level, text, values = localization_diagnostic(report)
        if odom_note:
            values["odometry"] = odom_note
            level = max(level, rm.WARN)
        values["time_node_ms"] = (time.perf_counter() - received_at) * 1e3 if received_at is not None else 0.0
        values.update(self.motion_inputs.values())
        if self.motion_mounting_detail:
            values["motion_prior_mounting"] = self.motion_mounting_detail
        values.update(self._counter_values())
        self._publish_diagnostic(level, text, scan.frame_id, values)
        self.marker_pub.publish(rm.degeneracy_markers(report.degeneracy, T_map_lidar, stamp, settings.map_frame))

    def _publish_tf(self, report: LocalizationReport, T_map_base: np.ndarray, stamp: float) -> str:
        """Broadcast map -> odom (or map -> base without odometry); '' or a note on what failed."""
        settings = self.settings
        if self._tf_send is None:
            return ""
        tf_stamp = rm.time_msg(stamp + settings.transform_tolerance)
        if self._odom is None:
            if report.tracking != TRACKING_LOST:
                self._tf_send(rm.transform_msg(T_map_base, tf_stamp, settings.map_frame, settings.base_frame))
            return ""
        note = ""
        if report.tracking != TRACKING_LOST:
            T_odom_base = self._odom.at(stamp)
            if T_odom_base is None:
                self.counters.missing_odometry += 1
                note = f"no {settings.odom_frame} -> {settings.base_frame} at {stamp:.3f} s from {self._odom_description}"
            else:
                self._T_map_odom = T_map_base @ invert_pose(T_odom_base)
        if self._T_map_odom is not None:  # while lost or without odometry: keep the tree connected
            self._tf_send(rm.transform_msg(self._T_map_odom, tf_stamp, settings.map_frame, settings.odom_frame))
        return note

    def _counter_values(self) -> dict[str, Any]:
        c = self.counters
        return {"received": self._worker.received, "processed": c.processed, "dropped_frames": self._worker.dropped,
                "bad_messages": c.bad_messages, "out_of_order": c.out_of_order, "lost_frames": c.lost_frames,
                "initial_poses": c.initial_poses, "relocalizations": c.relocalizations, "missing_odometry": c.missing_odometry,
                "last_error": c.last_error, "map_points": self.localizer.map_info.num_points}

    def _report_error(self, reason: str, frame_id: str, counter: str | None = None) -> None:
        """One ERROR diagnostic and one log line for something that could not be used."""
        if counter is not None:
            setattr(self.counters, counter, getattr(self.counters, counter) + 1)
        self.counters.last_error = reason
        self.get_logger().error(reason)
        self._publish_diagnostic(rm.ERROR, reason, frame_id, self._counter_values())

    def _publish_diagnostic(self, level: int, text: str, hardware_id: str, values: dict[str, Any]) -> None:
        now = self.get_clock().now().to_msg()
        self.diag_pub.publish(rm.diagnostics_msg(now, level, DIAGNOSTIC_NAME, text, hardware_id, values))

    # ----------------------------------------------------------------------- shutdown
    def stop(self) -> None:
        """Stop the worker thread (idempotent); call before destroy_node."""
        self._worker.stop()

    def destroy_node(self) -> None:
        self.stop()
        super().destroy_node()


def localization_diagnostic(report: LocalizationReport) -> tuple[int, str, dict[str, Any]]:
    """(level, message, key-values): ERROR when LOST, WARN when DEGRADED or directions are
    flagged, else OK."""
    degeneracy = report.degeneracy
    if report.tracking == TRACKING_LOST:
        level, text = rm.ERROR, f"LOST: {report.message}"
    elif report.tracking == TRACKING_DEGRADED:
        level, text = rm.WARN, f"DEGRADED: {report.message}"
    else:
        flagged = degeneracy is not None and degeneracy.degenerate
        level = rm.WARN if flagged else rm.OK
        text = ("OK (relocalized)" if report.relocalized else "OK") + (f"; {degeneracy.describe()}" if flagged else "")
    values: dict[str, Any] = {"tracking": report.tracking, "status": report.status, "frame": report.index,
                              "cloud_stamp": f"{report.stamp:.9f}", "fitness": report.fitness, "inlier_share": report.inlier_share,
                              "bad_frames": report.bad_frames, "iterations": report.iterations, "rmse": report.rmse,
                              "points": report.num_points, "correspondences": report.num_correspondences,
                              "threshold": report.threshold, "relocalized": report.relocalized}
    values.update(rm.degeneracy_values(degeneracy))
    values.update({f"time_{k}_ms": v for k, v in report.timings.items()})
    values["time_total_ms"] = report.total_ms
    values.update(rm.prior_values(report))
    if report.notes and level == rm.OK:  # a motion-prior fallback, deskewing off
        level, text = rm.WARN, report.notes[0]
    return level, text, values


def _frame_id(msg: Any) -> str:
    try:
        return str(msg.header.frame_id)
    except Exception:  # noqa: BLE001 - a message so broken that its header is unusable
        return ""


def main(args: list[str] | None = None) -> int:
    """Entry point of ``dcreg_localization_node``; exits 1 on invalid parameters or an unusable map."""
    return spin_node(LocalizationNode, LOCALIZATION_NODE_NAME, (ConfigError, ParameterException, MapFileError, InputError), args)


if __name__ == "__main__":
    sys.exit(main())
