"""What dcreg_node publishes for each registered frame, and with which QoS.

:class:`OdometryOutputs` owns the publishers (odometry, pose, path, TF, registered cloud, local
map, diagnostics, markers) and the output-side state that a reset clears (the bounded path, the
throttling of path and map). The node hands it a frame record, the mounting and the settings;
everything here only translates to messages (the maths is core/covariance.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry as OdometryMsg
from nav_msgs.msg import Path
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import PointCloud2
from visualization_msgs.msg import MarkerArray

from ..core.bounded_history import BoundedHistory
from ..core.covariance import body_to_ros_covariance, twist_in_base
from ..core.geometry import invert_pose, transform_points
from ..core.odometry import FrameRecord
from ..io.scan import Scan
from . import ros_messages as rm
from .node_plumbing import tf_sender
from .parameters import NodeSettings

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


@dataclass
class OutputState:
    """Output-side state reset together with the odometry: the path kept for dcreg/path and
    the data time (s) of the last path and map messages."""

    path: BoundedHistory
    last_map_stamp: float | None = None
    last_path_stamp: float | None = None


@dataclass
class FrameTimes:
    """perf_counter instants (s) of one frame in the node, for the diagnostics."""

    received: float
    started: float
    converted: float = 0.0
    odometry: float = 0.0

    def values(self) -> dict[str, float]:
        return {"time_node_ms": (self.odometry - self.started) * 1e3,  # conversion + registration + message
                "time_convert_ms": (self.converted - self.started) * 1e3,  # PointCloud2 -> numpy
                "time_queued_ms": (self.started - self.received) * 1e3}  # waiting in the one-slot buffer


class Pose(NamedTuple):
    """The frame's pose in the odom frame, for the base and the sensor (4x4, m)."""

    T_odom_base: np.ndarray
    T_odom_lidar: np.ndarray


class OdometryOutputs:
    """Publishers of one node and the output state (see the module docstring)."""

    def __init__(self, node: Any, settings: NodeSettings) -> None:
        self.node = node
        self.odom = node.create_publisher(OdometryMsg, "dcreg/odometry", RELIABLE_OUTPUT)
        self.pose = node.create_publisher(PoseStamped, "dcreg/pose", RELIABLE_OUTPUT)
        self.path = node.create_publisher(Path, "dcreg/path", LATCHED_OUTPUT)
        self.cloud = node.create_publisher(PointCloud2, "dcreg/cloud_registered", CLOUD_OUTPUT)
        self.map = node.create_publisher(PointCloud2, "dcreg/local_map", LATCHED_OUTPUT)
        self.diagnostics = node.create_publisher(DiagnosticArray, "/diagnostics", RELIABLE_OUTPUT)
        self.markers = node.create_publisher(MarkerArray, "dcreg/degeneracy_markers", RELIABLE_OUTPUT)
        self._tf_send: Callable[[Any], None] | None = None
        self._tf_ready = False
        self.tf_blocked_by = ""  # why TF odom -> base is withheld (another publisher owns it)
        self.state = self.new_state(settings)
        if settings.publish_tf:
            self.ensure_tf()

    @staticmethod
    def new_state(settings: NodeSettings) -> OutputState:
        return OutputState(BoundedHistory(settings.path_max_poses, settings.path_history))

    def reset(self, settings: NodeSettings) -> None:
        """Forget the path and the throttling (a new odom frame starts)."""
        self.state = self.new_state(settings)

    def resize_path(self, settings: NodeSettings) -> None:
        """Apply new path_max_poses / path_history, keeping the poses that still fit."""
        old = self.state.path.items()
        self.state.path = BoundedHistory(settings.path_max_poses, settings.path_history)
        for pose in old:
            self.state.path.append(pose)

    def ensure_tf(self) -> None:
        """Pick the TF transport once: tf2_ros if installed, else a /tf publisher of
        tf2_msgs/TFMessage (what a broadcaster is), else log that TF is off."""
        if self._tf_ready:
            return
        self._tf_ready = True
        self._tf_send = tf_sender(self.node, TF_QOS)
        if self._tf_send is None:
            self.node.get_logger().warning("neither tf2_ros nor tf2_msgs is installed: TF odom -> base is off "
                                           "(run scripts/build_tf2_msgs.sh VENV to build tf2_msgs)")

    def publish_pose(self, record: FrameRecord, T_base_lidar: np.ndarray, stamp: Any, settings: NodeSettings) -> Pose:
        """nav_msgs/Odometry (pose and twist of the base, with covariances), TF and PoseStamped
        of a registered frame; the odometry goes first, it is what latency-sensitive consumers
        (and the --sync player) wait for."""
        T_lidar_base = invert_pose(T_base_lidar)
        T_odom_lidar = T_base_lidar @ record.pose
        T_odom_base = T_odom_lidar @ T_lidar_base
        base_in_lidar = T_lidar_base[:3, 3]
        # REP-105: the pose's covariance accumulates in the odom frame (it grows while a direction
        # stays unobserved); the twist's is the frame's motion covariance per second squared
        covariance = body_to_ros_covariance(record.pose_covariance, T_odom_lidar[:3, :3], base_in_lidar)
        twist = twist_in_base(record.twist, record.twist_covariance, T_base_lidar[:3, :3], base_in_lidar)
        odom, base = settings.odom_frame_id, settings.base_frame_id
        self.odom.publish(rm.odometry_msg(T_odom_base, covariance, stamp, odom, base, twist))
        if settings.publish_tf and self._tf_send is not None and not self.tf_blocked_by:
            self._tf_send(rm.transform_msg(T_odom_base, stamp, odom, base))
        pose = rm.pose_stamped_msg(T_odom_base, stamp, odom)
        self.pose.publish(pose)
        self.state.path.append(pose)
        return Pose(T_odom_base, T_odom_lidar)

    def publish_extras(self, record: FrameRecord, pose: Pose, scan: Scan, stamp: Any, local_map_points: Callable[[], np.ndarray],
                       T_base_lidar: np.ndarray, settings: NodeSettings) -> None:
        """Markers, the registered cloud and the throttled path and map (after the diagnostics).
        The two big clouds are only built when someone listens (RViz, a recorder)."""
        odom = settings.odom_frame_id
        self.markers.publish(rm.degeneracy_markers(record.degeneracy, pose.T_odom_lidar, stamp, odom))
        if settings.publish_registered_cloud and self.cloud.get_subscription_count() > 0:
            self.cloud.publish(rm.pointcloud2_msg(transform_points(pose.T_odom_lidar, scan.points), stamp, odom,
                                                  scan.times, scan.intensity))
        state = self.state
        if due(state.last_path_stamp, scan.stamp, settings.path_publish_period, always_if_zero=True):
            state.last_path_stamp = scan.stamp
            self.path.publish(rm.path_msg(state.path.items(), stamp, odom))
        if (settings.map_publish_period > 0 and self.map.get_subscription_count() > 0
                and due(state.last_map_stamp, scan.stamp, settings.map_publish_period)):
            state.last_map_stamp = scan.stamp
            self.map.publish(rm.pointcloud2_msg(transform_points(T_base_lidar, local_map_points()), stamp, odom))

    def publish_diagnostic(self, level: int, name: str, text: str, hardware_id: str, values: dict[str, Any]) -> None:
        now = self.node.get_clock().now().to_msg()  # node clock: follows /clock with use_sim_time
        self.diagnostics.publish(rm.diagnostics_msg(now, level, name, text, hardware_id, values))


def due(last: float | None, now: float, period: float, always_if_zero: bool = False) -> bool:
    """True when ``period`` seconds of data time have passed since ``last`` (or a time jump)."""
    if last is None or now < last:
        return True
    if period <= 0:
        return always_if_zero
    return now - last >= period - 1e-6
