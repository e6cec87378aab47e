"""Reading and writing ROS 1 / ROS 2 bags with the pure-Python ``rosbags`` library (no ROS needed).

Accepted bag paths: a ROS 1 ``.bag`` file, a ROS 2 bag directory (``metadata.yaml`` plus sqlite3
or MCAP storage) or the ``.mcap`` / ``.db3`` file inside such a directory (then the whole
directory is read). Every failure to open or parse a bag raises :class:`BagError`, one line,
naming the path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

import numpy as np
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag1 import Writer as Writer1
from rosbags.rosbag2 import StoragePlugin, Writer as Writer2
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from ..core.proprioception import ImuSamples, WheelOdometrySamples
from .bag_reader import BagError, BagReader, UnreadableConnection
from .bag_reader import one_line as _one_line
from .pointcloud2 import pointcloud2_to_scan, scan_to_pointcloud2_parts
from .ros_time import seconds_to_nanoseconds, seconds_to_sec_nanosec, stamp_to_seconds
from .scan import Scan
from .skips import SkipLog
from .trajectory import Trajectory, matrix_from_message, rotation_to_quaternion

POINTCLOUD2 = "sensor_msgs/msg/PointCloud2"
ODOMETRY = "nav_msgs/msg/Odometry"
POSE_STAMPED = "geometry_msgs/msg/PoseStamped"
POSE_TYPES = (ODOMETRY, POSE_STAMPED)
IMU = "sensor_msgs/msg/Imu"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
TF_STATIC_TOPIC = "/tf_static"
GROUND_TRUTH_TOPICS = ("/ground_truth", "ground_truth")  # what counts as ground truth without --gt-topic


@contextmanager
def _open(path: str | Path) -> Iterator[BagReader]:
    with BagReader(path) as reader:
        yield reader


def _topics(reader: BagReader) -> dict[str, str]:
    return {name: info.msgtype or "(mixed types)" for name, info in reader.topics.items()}


def _listing(reader: BagReader) -> str:
    """'/a (type), /b (type, definition unreadable)' over every topic of the bag."""
    entries = [f"{t} ({m})" for t, m in sorted(_topics(reader).items())]
    entries += [f"{t} ({m}, definition unreadable)" for t, m in sorted(reader.unreadable_topics().items())]
    return ", ".join(entries) or "none"


def _choose(path: str | Path, topics: dict[str, str], topic: str | None, types: tuple[str, ...], what: str) -> str | None:
    """The requested topic (checked) or the only topic of ``types``; None when there is none."""
    if topic is not None:
        if topic not in topics:
            listing = ", ".join(f"{t} ({m})" for t, m in sorted(topics.items())) or "none"
            raise BagError(f"{path}: no topic '{topic}' (topics: {listing})")
        if topics[topic] not in types:
            raise BagError(f"{path}: topic '{topic}' is {topics[topic]}, expected {' or '.join(types)}")
        return topic
    candidates = sorted(t for t, m in topics.items() if m in types)
    if len(candidates) > 1:
        raise BagError(f"{path}: several {what} topics ({', '.join(candidates)}); choose one")
    return candidates[0] if candidates else None


def _pointcloud_topic(path: str | Path, reader: BagReader, topic: str | None) -> str:
    topics = _topics(reader)
    unreadable = [u for u in reader.unreadable if u.topic == topic]
    if topic is not None and topic not in topics:
        if unreadable:
            raise BagError(f"{path}: topic '{topic}' cannot be decoded: {unreadable[0].reason}")
        raise BagError(f"{path}: no topic '{topic}' (topics: {_listing(reader)})")
    chosen = _choose(path, topics, topic, (POINTCLOUD2,), "PointCloud2")
    if chosen is None:
        unreadable = [u for u in reader.unreadable if u.msgtype == POINTCLOUD2]
        if unreadable:
            raise BagError(f"{path}: the PointCloud2 topic cannot be decoded: {unreadable[0].describe()}")
        raise BagError(f"{path}: no sensor_msgs/msg/PointCloud2 topic (topics: {_listing(reader)})")
    return chosen


def list_topics(path: str | Path) -> dict[str, str]:
    """Topic name -> message type (e.g. 'sensor_msgs/msg/PointCloud2') of a bag's decodable topics."""
    with _open(path) as reader:
        return _topics(reader)


def unreadable_connections(path: str | Path) -> list[UnreadableConnection]:
    """Connections of a bag that are set aside because their messages cannot be decoded."""
    with _open(path) as reader:
        return list(reader.unreadable)


def pointcloud_topic(path: str | Path, topic: str | None = None) -> str:
    """``topic`` if it exists and is PointCloud2, else the bag's only PointCloud2 topic."""
    with _open(path) as reader:
        return _pointcloud_topic(path, reader, topic)


class ScanTopic(NamedTuple):
    """The PointCloud2 topic a run reads, its message count (bag index) and what the bag sets aside."""

    topic: str
    count: int
    unreadable: list[UnreadableConnection]


def scan_topic(path: str | Path, topic: str | None = None) -> ScanTopic:
    """The checked or auto-detected PointCloud2 topic with its count, in one opening of the bag."""
    with _open(path) as reader:
        chosen = _pointcloud_topic(path, reader, topic)
        return ScanTopic(chosen, int(reader.topics[chosen].msgcount), list(reader.unreadable))


def count_scans(path: str | Path, topic: str | None = None) -> int:
    """Number of PointCloud2 messages on the (auto-detected) topic, from the bag index."""
    with _open(path) as reader:
        chosen = _pointcloud_topic(path, reader, topic)
        return int(reader.topics[chosen].msgcount)


def read_scans(path: str | Path, topic: str | None = None, skips: SkipLog | dict | None = None) -> Iterator[Scan]:
    """Scans of a PointCloud2 topic in bag order, stamped with the message header stamp (s).

    Messages that fail to deserialise or convert are skipped and counted in ``skips``: a
    :class:`SkipLog` (see :func:`iter_messages`) or a dict, which then holds ``read``,
    ``skipped`` and ``errors`` (the first reasons) of this reading, updated as it goes.
    Opening errors and a missing/ambiguous topic raise :class:`BagError` at the call, not at the
    first ``next()``; storage that breaks mid-bag raises :class:`BagError` from the iterator,
    after the scans before the damage were yielded.
    """
    log = skips if isinstance(skips, SkipLog) else SkipLog()
    if isinstance(skips, dict):
        _mirror(log, skips)
    # validate eagerly so that callers see a bad path or topic before they start iterating
    chosen = pointcloud_topic(path, topic)
    scans = iter_messages(path, chosen, pointcloud2_to_scan, log)
    return _mirrored(scans, log, skips) if isinstance(skips, dict) else scans


def _mirror(log: SkipLog, stats: dict) -> None:
    stats.update(read=0, skipped=0, errors=[])
    log.add_to(stats)


def _mirrored(values: Iterator[Any], log: SkipLog, stats: dict) -> Iterator[Any]:
    """``values``, keeping the dict ``stats`` equal to the counts of ``log`` after every item."""
    try:
        for value in values:
            _mirror(log, stats)
            yield value
    finally:
        _mirror(log, stats)


def ground_truth_topic(path: str | Path, topics: dict[str, str], topic: str | None = None) -> str | None:
    """The ground-truth topic of a bag with ``topics`` (name -> type): ``topic`` when given
    (checked: it must exist and be Odometry or PoseStamped), else ``/ground_truth`` (or
    ``ground_truth``) when present, else None. Never any other pose topic: wheel or visual
    odometry on ``/odom`` is a sensor, not the truth."""
    if topic is None:
        topic = next((t for t in GROUND_TRUTH_TOPICS if t in topics), None)
        if topic is None:
            return None
    return _choose(path, topics, topic, POSE_TYPES, "pose (Odometry/PoseStamped)")


def read_ground_truth(path: str | Path, topic: str | None = None) -> Trajectory | None:
    """Poses T_frame_child from nav_msgs/Odometry or geometry_msgs/PoseStamped, at header stamps.

    ``topic=None`` reads ``/ground_truth`` (or ``ground_truth``) and returns None when the bag
    has neither (:func:`ground_truth_topic`). Messages with an invalid quaternion (e.g. all zeros)
    are left out.
    """
    with _open(path) as reader:
        topics = _topics(reader)
        chosen = ground_truth_topic(path, topics, topic)
        if chosen is None:
            return None
        stamps, poses = [], []
        connections = [c for c in reader.connections if c.topic == chosen]
        try:
            for connection, _, raw in reader.messages(connections=connections):
                try:
                    msg = reader.deserialize(raw, connection.msgtype)
                    pose = msg.pose.pose if connection.msgtype == ODOMETRY else msg.pose
                    T = matrix_from_message(pose.position, pose.orientation)
                except Exception:  # a single undecodable or uninitialised pose is not fatal
                    continue
                stamps.append(stamp_to_seconds(msg.header.stamp))
                poses.append(T)
        except Exception as exc:
            raise BagError(f"{path}: cannot read messages ({_one_line(exc)})") from None
    if not poses:
        raise BagError(f"{path}: topic '{chosen}' has no valid poses")
    return Trajectory(np.array(stamps), np.array(poses))


def topic_of_type(path: str | Path, topic: str | None, msgtype: str) -> str:
    """``topic`` if it exists and carries ``msgtype``, else the bag's only topic of that type;
    a one-line BagError naming the topic and its actual type, or listing the topics, otherwise."""
    with _open(path) as reader:
        topics = _topics(reader)
    chosen = _choose(path, topics, topic, (msgtype,), msgtype)
    if chosen is None:
        listing = ", ".join(f"{t} ({m})" for t, m in sorted(topics.items())) or "none"
        raise BagError(f"{path}: no {msgtype} topic (topics: {listing})")
    return chosen


def iter_messages(path: str | Path, topic: str, convert: Callable[[Any], Any], skips: SkipLog) -> Iterator[Any]:
    """``convert(message)`` for every message of ``topic`` in bag (record time) order.

    A message that fails to deserialise or convert is skipped and counted in ``skips`` (kind
    "unreadable message"); each one converted counts as read. Storage that breaks mid-bag
    raises :class:`BagError` saying after which message."""
    with _open(path) as reader:
        messages = reader.messages([c for c in reader.connections if c.topic == topic])
        index = -1
        while True:
            try:
                connection, _, raw = next(messages)
            except StopIteration:
                return
            except Exception as exc:  # the storage itself is broken: no later message is reachable
                where = f"after {topic} message {index}" if index >= 0 else f"at the first {topic} message"
                raise BagError(f"{path}: cannot read messages {where} ({_one_line(exc)})") from None
            index += 1
            try:
                value = convert(reader.deserialize(raw, connection.msgtype))
            except Exception as exc:  # one bad message must not end a long run; it is counted in skips
                skips.skip("unreadable message", f"{topic} message {index}", _one_line(exc))
                continue
            skips.read += 1
            yield value


# -------------------------------------------------------------------------------------- writing
def _check_pose(pose_4x4: np.ndarray) -> np.ndarray:
    T = np.asarray(pose_4x4, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise BagError(f"pose must be a finite 4x4 matrix, got shape {T.shape}")
    return T


def _header(types: Any, stamp: float, frame_id: str, ros1: bool) -> Any:
    sec, nanosec = seconds_to_sec_nanosec(stamp)
    extra = {"seq": 0} if ros1 else {}  # ROS 1 headers carry a sequence number
    return types["std_msgs/msg/Header"](**extra, stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=frame_id)


def _pose_msg(types: Any, T: np.ndarray) -> Any:
    q = rotation_to_quaternion(T[:3, :3])
    return types["geometry_msgs/msg/Pose"](
        position=types["geometry_msgs/msg/Point"](x=float(T[0, 3]), y=float(T[1, 3]), z=float(T[2, 3])),
        orientation=types["geometry_msgs/msg/Quaternion"](x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])))


def _vector3(types: Any, v: Any) -> Any:
    return types["geometry_msgs/msg/Vector3"](x=float(v[0]), y=float(v[1]), z=float(v[2]))


def _covariance(values: Any, n: int, what: str) -> np.ndarray:
    """Row-major flat float64 covariance of an n x n matrix (zeros when None)."""
    if values is None:
        return np.zeros(n * n)
    out = np.asarray(values, dtype=np.float64).reshape(-1)
    if out.size != n * n or not np.all(np.isfinite(out)):
        raise BagError(f"{what} must be a finite {n}x{n} matrix, got {np.shape(values)}")
    return out


def _odometry_msg(types: Any, stamp: float, T: np.ndarray, frame_id: str, child_frame_id: str, ros1: bool,
                  linear: Any = (0.0, 0.0, 0.0), angular: Any = (0.0, 0.0, 0.0), pose_covariance: Any = None,
                  twist_covariance: Any = None) -> Any:
    return types[ODOMETRY](
        header=_header(types, stamp, frame_id, ros1), child_frame_id=child_frame_id,
        pose=types["geometry_msgs/msg/PoseWithCovariance"](
            pose=_pose_msg(types, T), covariance=_covariance(pose_covariance, 6, "pose covariance")),
        twist=types["geometry_msgs/msg/TwistWithCovariance"](
            twist=types["geometry_msgs/msg/Twist"](linear=_vector3(types, linear), angular=_vector3(types, angular)),
            covariance=_covariance(twist_covariance, 6, "twist covariance")))


def _imu_msg(types: Any, stamp: float, angular_velocity: Any, linear_acceleration: Any, frame_id: str, ros1: bool,
             angular_velocity_covariance: Any = None, linear_acceleration_covariance: Any = None) -> Any:
    """sensor_msgs/Imu without orientation (orientation_covariance[0] = -1, REP-145)."""
    no_orientation = np.zeros(9)
    no_orientation[0] = -1.0
    return types[IMU](
        header=_header(types, stamp, frame_id, ros1),
        orientation=types["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0), orientation_covariance=no_orientation,
        angular_velocity=_vector3(types, angular_velocity),
        angular_velocity_covariance=_covariance(angular_velocity_covariance, 3, "angular velocity covariance"),
        linear_acceleration=_vector3(types, linear_acceleration),
        linear_acceleration_covariance=_covariance(linear_acceleration_covariance, 3, "linear acceleration covariance"))


def _tf_msg(types: Any, stamp: float, transforms: Iterable[tuple[str, str, np.ndarray]], ros1: bool) -> Any:
    """tf2_msgs/TFMessage from (parent, child, T_parent_child) triples."""
    out = []
    for parent, child, T in transforms:
        T = _check_pose(T)
        q = rotation_to_quaternion(T[:3, :3])
        out.append(types["geometry_msgs/msg/TransformStamped"](
            header=_header(types, stamp, parent, ros1), child_frame_id=child,
            transform=types["geometry_msgs/msg/Transform"](
                translation=_vector3(types, T[:3, 3]),
                rotation=types["geometry_msgs/msg/Quaternion"](x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])))))
    return types[TF_MESSAGE](transforms=out)


_UNSPECIFIED = QosTime(sec=0, nsec=0)
# what tf2's StaticTransformBroadcaster offers, so a player re-publishes /tf_static latched
STATIC_TF_QOS = Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL, _UNSPECIFIED,
                    _UNSPECIFIED, QosLiveliness.AUTOMATIC, _UNSPECIFIED, False)


def _cloud_msg(types: Any, scan: Scan, frame_id: str, ros1: bool) -> Any:
    fields, point_step, data = scan_to_pointcloud2_parts(scan)
    PointField = types["sensor_msgs/msg/PointField"]
    n = len(scan.points)
    return types[POINTCLOUD2](
        header=_header(types, scan.stamp, frame_id, ros1), height=1, width=n,
        fields=[PointField(name=name, offset=offset, datatype=datatype, count=count) for name, offset, datatype, count in fields],
        is_bigendian=False, point_step=point_step, row_step=point_step * n,
        data=np.frombuffer(data, dtype=np.uint8), is_dense=bool(np.isfinite(scan.points).all()))


class BagWriter:
    """Writes a ROS 2 bag (format version 9, CDR, Jazzy message definitions).

    Use as a context manager; the bag is complete (metadata.yaml written) after ``close()``.
    Record times equal header stamps.
    """

    def __init__(self, path: str | Path, storage: str = "mcap") -> None:
        self.path = Path(path)
        plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
        if storage not in plugins:
            raise BagError(f"{self.path}: unknown storage '{storage}' (use 'mcap' or 'sqlite3')")
        if self.path.exists():
            raise BagError(f"{self.path}: exists already, refusing to overwrite")
        self._typestore = get_typestore(Stores.ROS2_JAZZY)
        self._connections: dict[str, Any] = {}
        try:
            self._writer = Writer2(self.path, version=9, storage_plugin=plugins[storage])
            self._writer.open()
        except Exception as exc:
            raise BagError(f"{self.path}: cannot create bag ({_one_line(exc)})") from None
        self._open = True

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Finish the bag (idempotent)."""
        if self._open:
            self._open = False
            self._writer.close()

    def _write(self, topic: str, msgtype: str, stamp: float, msg: Any, qos: tuple[Qos, ...] = ()) -> None:
        if not self._open:
            raise BagError(f"{self.path}: writer is closed")
        connection = self._connections.get(topic)
        if connection is None:
            connection = self._writer.add_connection(topic, msgtype, typestore=self._typestore, offered_qos_profiles=qos)
            self._connections[topic] = connection
        elif connection.msgtype != msgtype:
            raise BagError(f"{self.path}: topic '{topic}' already carries {connection.msgtype}, not {msgtype}")
        self._writer.write(connection, seconds_to_nanoseconds(stamp), self._typestore.serialize_cdr(msg, msgtype))

    def write_scan(self, topic: str, scan: Scan, frame_id: str | None = None) -> None:
        """Write ``scan`` as sensor_msgs/PointCloud2 (float32 x, y, z, intensity, t)."""
        msg = _cloud_msg(self._typestore.types, scan, frame_id or scan.frame_id, ros1=False)
        self._write(topic, POINTCLOUD2, scan.stamp, msg)

    def write_odometry(self, topic: str, stamp: float, pose_4x4: np.ndarray, frame_id: str = "world", child_frame_id: str = "lidar") -> None:
        """Write nav_msgs/Odometry with pose T_frame_child (m), zero twist and covariances."""
        msg = _odometry_msg(self._typestore.types, stamp, _check_pose(pose_4x4), frame_id, child_frame_id, ros1=False)
        self._write(topic, ODOMETRY, stamp, msg)

    def write_pose(self, topic: str, stamp: float, pose_4x4: np.ndarray, frame_id: str) -> None:
        """Write geometry_msgs/PoseStamped with pose T_frame_sensor (m)."""
        types = self._typestore.types
        msg = types[POSE_STAMPED](header=_header(types, stamp, frame_id, ros1=False), pose=_pose_msg(types, _check_pose(pose_4x4)))
        self._write(topic, POSE_STAMPED, stamp, msg)

    def write_imu(self, topic: str, stamp: float, angular_velocity: Any, linear_acceleration: Any, frame_id: str = "imu",
                  angular_velocity_covariance: Any = None, linear_acceleration_covariance: Any = None) -> None:
        """Write sensor_msgs/Imu: rad/s and specific force m/s² in ``frame_id``, 3x3 covariances
        (zeros when None: "unknown" in REP-145), no orientation (orientation_covariance[0] = -1)."""
        msg = _imu_msg(self._typestore.types, stamp, angular_velocity, linear_acceleration, frame_id, False,
                       angular_velocity_covariance, linear_acceleration_covariance)
        self._write(topic, IMU, stamp, msg)

    def write_wheel_odometry(self, topic: str, stamp: float, pose_4x4: np.ndarray, linear_velocity: Any, angular_velocity: Any,
                             pose_covariance: Any, twist_covariance: Any, frame_id: str = "odom",
                             child_frame_id: str = "base_link") -> None:
        """Write nav_msgs/Odometry: pose T_frame_child (m) with its 6x6 covariance, twist (m/s,
        rad/s) in the child frame with its 6x6 covariance (ROS order x y z roll pitch yaw)."""
        msg = _odometry_msg(self._typestore.types, stamp, _check_pose(pose_4x4), frame_id, child_frame_id, False,
                            linear_velocity, angular_velocity, pose_covariance, twist_covariance)
        self._write(topic, ODOMETRY, stamp, msg)

    def write_static_transforms(self, stamp: float, transforms: Iterable[tuple[str, str, np.ndarray]],
                                topic: str = TF_STATIC_TOPIC) -> None:
        """Write tf2_msgs/TFMessage of (parent, child, T_parent_child) with the transient-local
        QoS of tf2's static broadcaster, as robot_state_publisher does."""
        self._write(topic, TF_MESSAGE, stamp, _tf_msg(self._typestore.types, stamp, transforms, False), (STATIC_TF_QOS,))


def write_ros1_bag(path: str | Path, scans: Iterable[Scan], topic: str = "/points",
                   ground_truth: Trajectory | None = None, ground_truth_topic: str = "/ground_truth", *,
                   imu: ImuSamples | None = None, imu_topic: str = "/imu", wheel: WheelOdometrySamples | None = None,
                   wheel_topic: str = "/wheel/odom", static_transforms: list[tuple[str, str, np.ndarray]] | None = None) -> None:
    """Write scans (and optionally ground truth as nav_msgs/Odometry, IMU samples as
    sensor_msgs/Imu with unknown covariances, wheel odometry as nav_msgs/Odometry and
    (parent, child, T_parent_child) static transforms on /tf_static) to a ROS 1 bag (Noetic types)."""
    path, scans = Path(path), list(scans)
    if path.exists():
        raise BagError(f"{path}: exists already, refusing to overwrite")
    typestore = get_typestore(Stores.ROS1_NOETIC)
    if static_transforms is not None:  # Noetic's store has no tf2_msgs
        typestore.register(get_types_from_msg("geometry_msgs/TransformStamped[] transforms", TF_MESSAGE))
    types = typestore.types
    try:
        with Writer1(path) as writer:
            def put(topic_name: str, msgtype: str, stamped: Iterable[tuple[float, Any]], latching: int | None = None) -> None:
                connection = writer.add_connection(topic_name, msgtype, typestore=typestore, latching=latching)
                for stamp, msg in stamped:
                    writer.write(connection, seconds_to_nanoseconds(stamp), typestore.serialize_ros1(msg, msgtype))

            put(topic, POINTCLOUD2, ((scan.stamp, _cloud_msg(types, scan, scan.frame_id, ros1=True)) for scan in scans))
            if ground_truth is not None:
                put(ground_truth_topic, ODOMETRY, ((float(t), _odometry_msg(types, float(t), T, "world", "lidar", ros1=True))
                                                   for t, T in zip(ground_truth.stamps, ground_truth.poses)))
            if imu is not None:
                put(imu_topic, IMU, ((float(t), _imu_msg(types, float(t), w, a, imu.frame_id, ros1=True))
                                     for t, w, a in zip(imu.stamps, imu.angular_velocity, imu.linear_acceleration)))
            if wheel is not None:
                put(wheel_topic, ODOMETRY, (
                    (float(wheel.stamps[k]), _odometry_msg(
                        types, float(wheel.stamps[k]), wheel.poses[k], wheel.frame_id, wheel.child_frame_id, True,
                        wheel.linear_velocity[k], wheel.angular_velocity[k], wheel.pose_covariance[k], wheel.twist_covariance[k]))
                    for k in range(len(wheel))))
            if static_transforms is not None:
                first = scans[0].stamp if scans else 0.0
                put(TF_STATIC_TOPIC, TF_MESSAGE, [(first, _tf_msg(types, first, static_transforms, ros1=True))], latching=1)
    except Exception as exc:
        raise BagError(f"{path}: cannot write ROS 1 bag ({_one_line(exc)})") from None
