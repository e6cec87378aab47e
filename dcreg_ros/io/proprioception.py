"""IMU, wheel odometry and static transforms from ROS 1 / ROS 2 bags, and their message converters.

The converters (:func:`imu_from_message`, :func:`wheel_sample_from_message`,
:func:`transforms_from_message`) are duck-typed: rosbags messages (ROS 1 or ROS 2 typestores) and
rclpy messages both work, so a ROS node can reuse them. The readers return the plain-array types
of :mod:`dcreg_ros.core.proprioception` in strictly increasing stamp order (``sorted_unique``:
out-of-order messages are sorted, duplicate stamps and non-finite samples dropped). Messages that
cannot be decoded are skipped and counted in ``stats`` like :func:`~.bags.read_scans`:
``read`` (decoded), ``skipped`` (undecodable), ``errors`` (first reasons), ``out_of_order``
(stamps not after every earlier one in bag order), ``dropped`` (removed by ``sorted_unique``).
A missing topic or one of another type raises a one-line :class:`~.bags.BagError`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..core.geometry import invert_pose
from ..core.pointcloud import InputError
from ..core.proprioception import ImuSamples, WheelOdometrySamples
from .bags import IMU, ODOMETRY, TF_MESSAGE, TF_STATIC_TOPIC, iter_messages, list_topics, topic_of_type
from .ros_time import stamp_to_seconds
from .skips import SkipLog
from .trajectory import matrix_from_message

STATIC_TF_TOPICS = (TF_STATIC_TOPIC, TF_STATIC_TOPIC.lstrip("/"))


class ImuReading(NamedTuple):
    """One sensor_msgs/Imu: ``stamp`` s, ``angular_velocity`` (3,) rad/s, ``linear_acceleration``
    (3,) m/s² (as published: specific force), both in ``frame_id``; 3x3 covariances."""

    stamp: float
    angular_velocity: np.ndarray
    linear_acceleration: np.ndarray
    frame_id: str
    angular_velocity_covariance: np.ndarray
    linear_acceleration_covariance: np.ndarray


class WheelReading(NamedTuple):
    """One nav_msgs/Odometry: ``pose`` T_frame_child (4x4, m), twist in the child frame (m/s,
    rad/s), 6x6 covariances in ROS order (x y z roll pitch yaw)."""

    stamp: float
    pose: np.ndarray
    linear_velocity: np.ndarray
    angular_velocity: np.ndarray
    pose_covariance: np.ndarray
    twist_covariance: np.ndarray
    frame_id: str
    child_frame_id: str


class StaticTransform(NamedTuple):
    """``T_parent_child`` (4x4, m) of a TransformStamped; frame names without a leading '/'."""

    parent: str
    child: str
    T_parent_child: np.ndarray


def _vector(v: Any) -> np.ndarray:
    return np.array([float(v.x), float(v.y), float(v.z)])


def _matrix(values: Any, n: int) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(n, n)


def _frame(name: Any) -> str:
    return str(name).lstrip("/")


def imu_from_message(msg: Any) -> ImuReading:
    """sensor_msgs/Imu (rosbags or rclpy) -> :class:`ImuReading` (orientation is ignored)."""
    return ImuReading(stamp_to_seconds(msg.header.stamp), _vector(msg.angular_velocity), _vector(msg.linear_acceleration),
                      _frame(msg.header.frame_id), _matrix(msg.angular_velocity_covariance, 3),
                      _matrix(msg.linear_acceleration_covariance, 3))


def wheel_sample_from_message(msg: Any) -> WheelReading:
    """nav_msgs/Odometry (rosbags or rclpy) -> :class:`WheelReading`."""
    pose = msg.pose.pose
    return WheelReading(stamp_to_seconds(msg.header.stamp), matrix_from_message(pose.position, pose.orientation),
                        _vector(msg.twist.twist.linear), _vector(msg.twist.twist.angular), _matrix(msg.pose.covariance, 6),
                        _matrix(msg.twist.covariance, 6), _frame(msg.header.frame_id), _frame(msg.child_frame_id))


def transforms_from_message(msg: Any) -> list[StaticTransform]:
    """tf2_msgs/TFMessage (rosbags or rclpy) -> its transforms."""
    return [StaticTransform(_frame(t.header.frame_id), _frame(t.child_frame_id), matrix_from_message(t.transform.translation, t.transform.rotation))
            for t in msg.transforms]


def _new_stats(stats: dict | None) -> dict:
    """``stats`` with every count of the module docstring (missing ones at 0)."""
    stats = {} if stats is None else stats
    SkipLog().add_to(stats)
    for key in ("out_of_order", "dropped"):
        stats.setdefault(key, 0)
    return stats


def _read_topic(path: str | Path, topic: str | None, msgtype: str, convert: Callable[[Any], Any], stats: dict) -> list:
    """Converted messages of one topic of type ``msgtype``, in bag order."""
    skips = SkipLog()
    try:
        out = list(iter_messages(path, topic_of_type(path, topic, msgtype), convert, skips))
    finally:
        skips.add_to(stats)
    stamps = np.array([r.stamp for r in out])
    if len(stamps) > 1:  # late or repeated: not after every earlier stamp
        stats["out_of_order"] += int(np.sum(stamps[1:] <= np.maximum.accumulate(stamps[:-1])))
    return out


def imu_samples(readings: Sequence[ImuReading]) -> ImuSamples:
    """The readings (at least one) as ImuSamples in their order, in the frame of the first."""
    return ImuSamples(np.array([r.stamp for r in readings]), np.array([r.angular_velocity for r in readings]),
                      np.array([r.linear_acceleration for r in readings]), readings[0].frame_id)


def wheel_samples(readings: Sequence[WheelReading]) -> WheelOdometrySamples:
    """The readings (at least one) as WheelOdometrySamples in their order, frames from the first."""
    first = readings[0]
    return WheelOdometrySamples(
        np.array([r.stamp for r in readings]), np.array([r.pose for r in readings]),
        np.array([r.linear_velocity for r in readings]), np.array([r.angular_velocity for r in readings]),
        np.array([r.pose_covariance for r in readings]), np.array([r.twist_covariance for r in readings]),
        first.frame_id, first.child_frame_id)


def _read_samples(path: str | Path, topic: str | None, msgtype: str, convert: Callable[[Any], Any],
                  build: Callable[[list], Any], empty: Callable[[], Any], stats: dict | None) -> Any:
    """The samples of one topic, sorted and without duplicate or non-finite rows (counted in
    ``stats["dropped"]``): ``convert`` maps a message to a reading, ``build`` readings to samples."""
    stats = _new_stats(stats)
    readings = _read_topic(path, topic, msgtype, convert, stats)
    if not readings:
        return empty()
    samples = build(readings)
    out = samples.sorted_unique()
    stats["dropped"] += len(samples) - len(out)
    return out


def read_imu(path: str | Path, topic: str | None = None, stats: dict | None = None) -> ImuSamples:
    """The IMU samples of ``topic`` (default: the bag's only sensor_msgs/Imu topic), in the frame
    of the first message (the values as published: check the unit with :func:`accelerometer_in_g`)."""
    return _read_samples(path, topic, IMU, imu_from_message, imu_samples, ImuSamples.empty, stats)


def read_wheel_odometry(path: str | Path, topic: str, stats: dict | None = None) -> WheelOdometrySamples:
    """The nav_msgs/Odometry samples of ``topic`` (e.g. ``/wheel/odom``): poses T_odom_base, twist
    in the child frame, covariances; frames from the first message."""
    return _read_samples(path, topic, ODOMETRY, wheel_sample_from_message, wheel_samples, WheelOdometrySamples.empty, stats)


class _Stamped(NamedTuple):
    """The transforms of one TFMessage and the stamp of its first (for the stamp-order count)."""

    stamp: float
    transforms: list[StaticTransform]


def _stamped_transforms(msg: Any) -> _Stamped:
    return _Stamped(stamp_to_seconds(msg.transforms[0].header.stamp) if msg.transforms else 0.0, transforms_from_message(msg))


def read_static_transforms(path: str | Path, topic: str | None = None, stats: dict | None = None) -> dict[tuple[str, str], np.ndarray]:
    """{(parent, child): T_parent_child} from tf2_msgs/TFMessage on ``topic`` (default ``/tf_static``
    or ``tf_static``; an empty dict when the bag has neither). A later message for the same pair
    replaces an earlier one, as in tf2."""
    stats = _new_stats(stats)
    if topic is None:
        topics = list_topics(path)
        topic = next((t for t in STATIC_TF_TOPICS if t in topics), None)
        if topic is None:
            return {}
    messages = _read_topic(path, topic, TF_MESSAGE, _stamped_transforms, stats)
    out: dict[tuple[str, str], np.ndarray] = {}
    for message in messages:
        for t in message.transforms:
            out[(t.parent, t.child)] = t.T_parent_child
    return out


class TransformError(InputError):
    """No chain of known transforms joins two frames."""


def lookup_transform(transforms: dict[tuple[str, str], np.ndarray], parent: str, child: str) -> np.ndarray:
    """T_parent_child (4x4) composed along the chain of ``transforms`` ({(parent, child): T})
    joining the two frames, each edge usable in both directions (e.g. T_base_imu from
    base_link -> lidar and lidar -> imu). Raises :class:`TransformError` when none joins them."""
    parent, child = _frame(parent), _frame(child)
    edges: dict[str, list[tuple[str, np.ndarray]]] = {}
    for (a, b), T in transforms.items():
        edges.setdefault(a, []).append((b, np.asarray(T, dtype=np.float64)))
        edges.setdefault(b, []).append((a, invert_pose(np.asarray(T, dtype=np.float64))))
    known: dict[str, np.ndarray] = {parent: np.eye(4)}  # T_parent_frame
    queue = deque([parent])
    while queue:
        frame = queue.popleft()
        if frame == child:
            return known[frame]
        for nxt, T in edges.get(frame, []):
            if nxt not in known:
                known[nxt] = known[frame] @ T
                queue.append(nxt)
    frames = ", ".join(sorted(edges)) or "none"
    raise TransformError(f"no transform chain from '{parent}' to '{child}' (known frames: {frames})")


def accelerometer_in_g(samples: ImuSamples) -> bool:
    """True when the accelerometer seems to report in g rather than m/s² (some drivers, e.g.
    Livox's): see :func:`magnitudes_in_g`. False when there are no samples."""
    if len(samples) == 0:
        return False
    return magnitudes_in_g(np.linalg.norm(samples.linear_acceleration, axis=1))


def magnitudes_in_g(magnitudes: Sequence[float] | np.ndarray) -> bool:
    """True when specific-force magnitudes look like g rather than m/s²: their median is near 1
    instead of near 9.81 (an IMU on a ground robot reads about gravity on average, moving or not)."""
    return 0.5 < float(np.median(magnitudes)) < 2.0
