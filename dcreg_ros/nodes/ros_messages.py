"""Builders of the ROS messages the nodes publish.

Conventions: poses are 4x4 numpy arrays (metres); ``T_a_b`` maps points of frame b into frame a.
Covariances arrive here already in ROS order (x, y, z, roll, pitch, yaw); the conversion from
the core's rotation-first sensor-frame covariances is core/covariance.py.
"""

from __future__ import annotations

import array
import math
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point, Pose, PoseStamped, PoseWithCovarianceStamped, Quaternion, TransformStamped, Vector3
from nav_msgs.msg import Odometry as OdometryMsg
from nav_msgs.msg import Path
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from ..core.covariance import UNINFORMATIVE_VARIANCE, BaseTwist, std_items
from ..core.degeneracy import AXIS_NAMES, DegeneracyReport, flagged_axes
from ..io.pointcloud2 import scan_to_pointcloud2_parts
from ..io.ros_time import seconds_to_sec_nanosec
from ..io.scan import Scan
from ..io.trajectory import matrix_from_message, rotation_to_quaternion

# diagnostic levels as ints (the message field is a single byte; see diagnostics_msg)
OK, WARN, ERROR = 0, 1, 2


# ------------------------------------------------------------------------------ basic pieces
def time_msg(seconds: float) -> Time:
    """builtin_interfaces/Time of a stamp in seconds."""
    sec, nanosec = seconds_to_sec_nanosec(seconds)
    return Time(sec=sec, nanosec=nanosec)


def header(stamp: float | Time, frame_id: str) -> Header:
    return Header(stamp=stamp if isinstance(stamp, Time) else time_msg(stamp), frame_id=frame_id)


def quaternion_msg(R: np.ndarray) -> Quaternion:
    q = rotation_to_quaternion(R)
    return Quaternion(x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3]))


def pose_msg(T: np.ndarray) -> Pose:
    """geometry_msgs/Pose of a 4x4 transform."""
    return Pose(position=Point(x=float(T[0, 3]), y=float(T[1, 3]), z=float(T[2, 3])), orientation=quaternion_msg(T[:3, :3]))


def matrix_from_pose(msg: Any) -> np.ndarray:
    """4x4 transform of a geometry_msgs/Pose (position, orientation) or Transform (translation,
    rotation). Raises ValueError for a zero or non-finite quaternion or position."""
    t = msg.translation if hasattr(msg, "translation") else msg.position
    q = msg.rotation if hasattr(msg, "rotation") else msg.orientation
    T = matrix_from_message(t, q)
    if not np.all(np.isfinite(T)):
        raise ValueError("pose has non-finite values")
    return T


def pose_stamped_msg(T: np.ndarray, stamp: float | Time, frame_id: str) -> PoseStamped:
    return PoseStamped(header=header(stamp, frame_id), pose=pose_msg(T))


def pose_with_covariance_msg(T: np.ndarray, covariance_ros: np.ndarray, stamp: float | Time, frame_id: str) -> PoseWithCovarianceStamped:
    """geometry_msgs/PoseWithCovarianceStamped of pose T in ``frame_id`` with a 6x6 covariance
    already in ROS order (x y z roll pitch yaw, in ``frame_id``)."""
    msg = PoseWithCovarianceStamped(header=header(stamp, frame_id))
    msg.pose.pose = pose_msg(T)
    msg.pose.covariance = np.asarray(covariance_ros, dtype=np.float64).reshape(36)
    return msg


def odometry_msg(T: np.ndarray, covariance_ros: np.ndarray, stamp: float | Time, frame_id: str, child_frame_id: str,
                 twist: BaseTwist | None = None) -> OdometryMsg:
    """nav_msgs/Odometry with pose T_frame_child and a 6x6 pose covariance already in ROS
    order (x y z roll pitch yaw, in ``frame_id``), and the twist of the child in the child frame
    (m/s, rad/s, ROS-order covariance). Without a twist: zero with an uninformative covariance."""
    msg = OdometryMsg(header=header(stamp, frame_id), child_frame_id=child_frame_id)
    msg.pose.pose = pose_msg(T)
    msg.pose.covariance = np.asarray(covariance_ros, dtype=np.float64).reshape(36)
    if twist is None:
        msg.twist.covariance = (np.eye(6) * UNINFORMATIVE_VARIANCE).reshape(36)
        return msg
    msg.twist.twist.linear = Vector3(x=float(twist.linear[0]), y=float(twist.linear[1]), z=float(twist.linear[2]))
    msg.twist.twist.angular = Vector3(x=float(twist.angular[0]), y=float(twist.angular[1]), z=float(twist.angular[2]))
    msg.twist.covariance = np.asarray(twist.covariance, dtype=np.float64).reshape(36)
    return msg


def imu_msg(stamp: float, angular_velocity: np.ndarray, linear_acceleration: np.ndarray, frame_id: str) -> Any:
    """sensor_msgs/Imu without orientation (orientation_covariance[0] = -1, REP-145)."""
    from sensor_msgs.msg import Imu

    msg = Imu(header=header(stamp, frame_id))
    msg.orientation_covariance[0] = -1.0
    w, a = angular_velocity, linear_acceleration
    msg.angular_velocity = Vector3(x=float(w[0]), y=float(w[1]), z=float(w[2]))
    msg.linear_acceleration = Vector3(x=float(a[0]), y=float(a[1]), z=float(a[2]))
    return msg


def transform_msg(T: np.ndarray, stamp: float | Time, frame_id: str, child_frame_id: str) -> TransformStamped:
    """geometry_msgs/TransformStamped of T_frame_child."""
    msg = TransformStamped(header=header(stamp, frame_id), child_frame_id=child_frame_id)
    msg.transform.translation = Vector3(x=float(T[0, 3]), y=float(T[1, 3]), z=float(T[2, 3]))
    msg.transform.rotation = quaternion_msg(T[:3, :3])
    return msg


def pointcloud2_msg(points: np.ndarray, stamp: float | Time, frame_id: str, times: np.ndarray | None = None,
                    intensity: np.ndarray | None = None) -> PointCloud2:
    """Height-1 PointCloud2 (float32 x, y, z, intensity, t) from an (N, 3) array in metres.

    The payload is packed by numpy and handed over as an ``array('B')``: assigning bytes or a
    list would make rclpy check every byte in Python.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    fields, point_step, data = scan_to_pointcloud2_parts(Scan(0.0, points, times, intensity, frame_id))
    n = len(points)
    msg = PointCloud2(header=header(stamp, frame_id), height=1, width=n, is_bigendian=False,
                      point_step=point_step, row_step=point_step * n, is_dense=bool(np.isfinite(points).all()))
    msg.fields = [PointField(name=name, offset=offset, datatype=datatype, count=count) for name, offset, datatype, count in fields]
    msg.data = array.array("B", data)
    return msg


def path_msg(poses: list[PoseStamped], stamp: float | Time, frame_id: str) -> Path:
    return Path(header=header(stamp, frame_id), poses=poses)


# ------------------------------------------------------------------------------ diagnostics
def key_values(values: dict[str, Any]) -> list[KeyValue]:
    """KeyValue list; floats are printed with 4 significant digits."""
    out = []
    for key, value in values.items():
        if isinstance(value, float):
            text = f"{value:.4g}"
        elif isinstance(value, (list, tuple, np.ndarray)):
            text = " ".join(f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v) for v in value)
        else:
            text = str(value)
        out.append(KeyValue(key=key, value=text))
    return out


def diagnostics_msg(stamp: float | Time, level: int, name: str, message: str, hardware_id: str,
                    values: dict[str, Any]) -> DiagnosticArray:
    """DiagnosticArray with one status; ``level`` is OK, WARN or ERROR of this module."""
    status = DiagnosticStatus(level=bytes([level]), name=name,
                              message=message, hardware_id=hardware_id, values=key_values(values))
    return DiagnosticArray(header=header(stamp, ""), status=[status])


def degeneracy_values(report: DegeneracyReport | None) -> dict[str, Any]:
    """Diagnostic key-values of a degeneracy report: mask, axes, condition numbers, the
    axis-aligned eigenvalues of the Schur complements."""
    if report is None:
        return {"degenerate_axes": "none (first frame)"}
    values: dict[str, Any] = {
        "mask": " ".join(f"{n}={int(m)}" for n, m in zip(AXIS_NAMES, report.mask)),
        "degenerate_axes": ", ".join(report.degenerate_axes) or "none",
        "kappa_rotation": report.kappa_rotation,
        "kappa_translation": report.kappa_translation,
        "kappa_full": report.kappa_full,
    }
    for name, value in zip(AXIS_NAMES, report.eigenvalues):
        values[f"eigenvalue_{name}"] = float(value)
    return values


# ------------------------------------------------------------------------------ markers
MARKER_NAMESPACE = "dcreg_degeneracy"


def prior_values(record: Any) -> dict[str, Any]:
    """Diagnostic key-values of a frame record's motion prior and uncertainty: the prior source,
    its age, the flagged axes it acted on, which test flagged which axis, each axis's standard
    deviation of the frame's motion (std_*) and of the accumulated pose (pose_std_*; deg, m) and
    the notes."""
    values: dict[str, Any] = {"prior_source": record.prior_source, "prior_age_s": record.prior_age,
                              "prior_axes": " ".join(record.prior_axes) or "none",
                              "weak_relative": ", ".join(flagged_axes(record.relative_weak)) or "none",
                              "weak_absolute": ", ".join(flagged_axes(record.absolute_weak)) or "none"}
    values.update(std_items(record.axis_std, "std"))
    values.update(std_items(record.pose_std, "pose_std"))
    if record.notes:
        values["notes"] = "; ".join(record.notes)
    return values


def _severity_color(ratio: float, threshold: float) -> ColorRGBA:
    """Yellow just above the threshold, red at 10x the threshold and beyond."""
    s = float(np.clip(math.log10(max(ratio, threshold) / threshold), 0.0, 1.0)) if threshold > 0 else 1.0
    return ColorRGBA(r=1.0, g=float(0.85 * (1.0 - s)), b=0.0, a=0.9)


def degeneracy_markers(report: DegeneracyReport | None, T_odom_sensor: np.ndarray, stamp: float | Time,
                       frame_id: str, scale: float = 2.0) -> MarkerArray:
    """Markers at the sensor pose: a double arrow along each degenerate translation direction,
    a ring around each degenerate rotation axis (with an arrow on the axis), coloured by how far
    the eigenvalue ratio exceeds the threshold, and a text line. Always starts with DELETEALL, so
    nothing stale remains; when nothing is flagged that is all it contains."""
    out = MarkerArray()
    clear = Marker(header=header(stamp, frame_id), ns=MARKER_NAMESPACE, action=Marker.DELETEALL)
    out.markers.append(clear)
    if report is None or not report.degenerate:
        return out
    R, origin = T_odom_sensor[:3, :3], T_odom_sensor[:3, 3]
    ratios = report.eigenvalue_ratios
    hdr = header(stamp, frame_id)

    def point(p: np.ndarray) -> Point:
        return Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))

    for a, flagged in enumerate(report.mask):
        if not flagged:
            continue
        color = _severity_color(ratios[a], report.threshold)
        basis = report.basis_rotation if a < 3 else report.basis_translation
        direction = R @ basis[:, a % 3]
        if a >= 3:
            for sign, mid in ((1.0, a), (-1.0, a + 10)):
                m = Marker(header=hdr, ns=MARKER_NAMESPACE, id=mid, type=Marker.ARROW, action=Marker.ADD, color=color)
                m.points = [point(origin), point(origin + sign * scale * direction)]
                m.scale = Vector3(x=0.08 * scale, y=0.16 * scale, z=0.2 * scale)
                out.markers.append(m)
        else:
            # ring in the plane normal to the rotation axis, plus the axis itself
            u = np.cross(direction, [0.0, 0.0, 1.0] if abs(direction[2]) < 0.9 else [1.0, 0.0, 0.0])
            u /= np.linalg.norm(u)
            w = np.cross(direction, u)
            angles = np.linspace(0.0, 1.75 * np.pi, 36)
            ring = Marker(header=hdr, ns=MARKER_NAMESPACE, id=a, type=Marker.LINE_STRIP, action=Marker.ADD, color=color)
            ring.points = [point(origin + 0.6 * scale * (np.cos(t) * u + np.sin(t) * w)) for t in angles]
            ring.scale.x = 0.05 * scale
            axis = Marker(header=hdr, ns=MARKER_NAMESPACE, id=a + 10, type=Marker.ARROW, action=Marker.ADD, color=color)
            axis.points = [point(origin), point(origin + scale * direction)]
            axis.scale = Vector3(x=0.05 * scale, y=0.1 * scale, z=0.15 * scale)
            out.markers.extend([ring, axis])
    text = Marker(header=hdr, ns=MARKER_NAMESPACE, id=100, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD,
                  color=ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0), text="degenerate: " + ", ".join(report.degenerate_axes))
    text.pose.position = point(origin + np.array([0.0, 0.0, 1.2 * scale]))
    text.pose.orientation.w = 1.0
    text.scale.z = 0.3 * scale
    out.markers.append(text)
    return out
