"""Reading and writing ROS 1 / ROS 2 bags with the pure-Python ``rosbags`` library (no ROS needed).

Accepted bag paths: a ROS 1 ``.bag`` file, a ROS 2 bag directory (``metadata.yaml`` plus sqlite3
or MCAP storage) or the ``.mcap`` / ``.db3`` file inside such a directory (then the whole
directory is read). Every failure to open or parse a bag raises :class:`BagError`, one line,
naming the path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

import numpy as np
from rosbags.rosbag1 import Writer as Writer1
from rosbags.rosbag2 import StoragePlugin, Writer as Writer2
from rosbags.typesys import Stores, get_typestore

from .bag_reader import BagError, BagReader, UnreadableConnection
from .bag_reader import one_line as _one_line
from .pointcloud2 import pointcloud2_to_scan, scan_to_pointcloud2_parts, seconds_to_sec_nanosec, stamp_to_seconds
from .scan import Scan
from .skips import SkipLog
from .trajectory import Trajectory, quaternion_to_rotation, rotation_to_quaternion

POINTCLOUD2 = "sensor_msgs/msg/PointCloud2"
ODOMETRY = "nav_msgs/msg/Odometry"
POSE_STAMPED = "geometry_msgs/msg/PoseStamped"
POSE_TYPES = (ODOMETRY, POSE_STAMPED)


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

    Messages that fail to deserialise or convert are skipped and counted in ``skips`` (a
    :class:`SkipLog`; a plain dict gets the older ``read``/``skipped``/``errors`` keys). Opening
    errors and a missing/ambiguous topic raise :class:`BagError` at the call, not at the first
    ``next()``; storage that breaks mid-bag raises :class:`BagError` from the iterator, after the
    scans before the damage were yielded.
    """
    log = skips if isinstance(skips, SkipLog) else SkipLog()
    legacy = skips if isinstance(skips, dict) else None
    if legacy is not None:
        legacy.update(read=0, skipped=0, errors=[])
    # validate eagerly so that callers see a bad path or topic before they start iterating
    chosen = pointcloud_topic(path, topic)
    return _iter_scans(path, chosen, log, legacy)


def _iter_scans(path: str | Path, topic: str, skips: SkipLog, legacy: dict | None) -> Iterator[Scan]:
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
                msg = reader.deserialize(raw, connection.msgtype)
                scan = pointcloud2_to_scan(msg)
            except Exception as exc:  # one bad message must not end a long run; it is counted in skips
                skips.skip("unreadable message", f"{topic} message {index}", _one_line(exc))
                if legacy is not None:
                    legacy["skipped"] += 1
                    legacy["errors"] = skips.examples
                continue
            skips.read += 1
            if legacy is not None:
                legacy["read"] += 1
            yield scan


def _pose_matrix(pose: Any) -> np.ndarray:
    p, q = pose.position, pose.orientation
    T = np.eye(4)
    T[:3, :3] = quaternion_to_rotation(q.x, q.y, q.z, q.w)
    T[:3, 3] = (p.x, p.y, p.z)
    return T


def read_ground_truth(path: str | Path, topic: str | None = None) -> Trajectory | None:
    """Poses T_frame_child from nav_msgs/Odometry or geometry_msgs/PoseStamped, at header stamps.

    With ``topic=None`` the only such topic is used; None when the bag has none, BagError when it
    has several. Messages with an invalid quaternion (e.g. all zeros) are left out.
    """
    with _open(path) as reader:
        topics = _topics(reader)
        chosen = _choose(path, topics, topic, POSE_TYPES, "pose (Odometry/PoseStamped)")
        if chosen is None:
            return None
        stamps, poses = [], []
        connections = [c for c in reader.connections if c.topic == chosen]
        try:
            for connection, _, raw in reader.messages(connections=connections):
                try:
                    msg = reader.deserialize(raw, connection.msgtype)
                    pose = msg.pose.pose if connection.msgtype == ODOMETRY else msg.pose
                    T = _pose_matrix(pose)
                except Exception:  # a single undecodable or uninitialised pose is not fatal
                    continue
                stamps.append(stamp_to_seconds(msg.header.stamp))
                poses.append(T)
        except Exception as exc:
            raise BagError(f"{path}: cannot read messages ({_one_line(exc)})") from None
    if not poses:
        raise BagError(f"{path}: topic '{chosen}' has no valid poses")
    return Trajectory(np.array(stamps), np.array(poses))


# -------------------------------------------------------------------------------------- writing
def _check_pose(pose_4x4: np.ndarray) -> np.ndarray:
    T = np.asarray(pose_4x4, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise BagError(f"pose must be a finite 4x4 matrix, got shape {T.shape}")
    return T


def _stamp_ns(stamp: float) -> int:
    sec, nanosec = seconds_to_sec_nanosec(stamp)
    return sec * 1_000_000_000 + nanosec


def _header(types: Any, stamp: float, frame_id: str, ros1: bool) -> Any:
    sec, nanosec = seconds_to_sec_nanosec(stamp)
    extra = {"seq": 0} if ros1 else {}  # ROS 1 headers carry a sequence number
    return types["std_msgs/msg/Header"](**extra, stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=frame_id)


def _pose_msg(types: Any, T: np.ndarray) -> Any:
    q = rotation_to_quaternion(T[:3, :3])
    return types["geometry_msgs/msg/Pose"](
        position=types["geometry_msgs/msg/Point"](x=float(T[0, 3]), y=float(T[1, 3]), z=float(T[2, 3])),
        orientation=types["geometry_msgs/msg/Quaternion"](x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])))


def _odometry_msg(types: Any, stamp: float, T: np.ndarray, frame_id: str, child_frame_id: str, ros1: bool) -> Any:
    zero = types["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0)
    return types[ODOMETRY](
        header=_header(types, stamp, frame_id, ros1), child_frame_id=child_frame_id,
        pose=types["geometry_msgs/msg/PoseWithCovariance"](pose=_pose_msg(types, T), covariance=np.zeros(36)),
        twist=types["geometry_msgs/msg/TwistWithCovariance"](
            twist=types["geometry_msgs/msg/Twist"](linear=zero, angular=zero), covariance=np.zeros(36)))


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

    def _write(self, topic: str, msgtype: str, stamp: float, msg: Any) -> None:
        if not self._open:
            raise BagError(f"{self.path}: writer is closed")
        connection = self._connections.get(topic)
        if connection is None:
            connection = self._writer.add_connection(topic, msgtype, typestore=self._typestore)
            self._connections[topic] = connection
        elif connection.msgtype != msgtype:
            raise BagError(f"{self.path}: topic '{topic}' already carries {connection.msgtype}, not {msgtype}")
        self._writer.write(connection, _stamp_ns(stamp), self._typestore.serialize_cdr(msg, msgtype))

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


def write_ros1_bag(path: str | Path, scans: Iterable[Scan], topic: str = "/points",
                   ground_truth: Trajectory | None = None, ground_truth_topic: str = "/ground_truth") -> None:
    """Write scans (and optionally ground truth as nav_msgs/Odometry) to a ROS 1 bag (Noetic types)."""
    path = Path(path)
    if path.exists():
        raise BagError(f"{path}: exists already, refusing to overwrite")
    typestore = get_typestore(Stores.ROS1_NOETIC)
    types = typestore.types
    try:
        with Writer1(path) as writer:
            connection = writer.add_connection(topic, POINTCLOUD2, typestore=typestore)
            for scan in scans:
                msg = _cloud_msg(types, scan, scan.frame_id, ros1=True)
                writer.write(connection, _stamp_ns(scan.stamp), typestore.serialize_ros1(msg, POINTCLOUD2))
            if ground_truth is not None:
                gt = writer.add_connection(ground_truth_topic, ODOMETRY, typestore=typestore)
                for stamp, T in zip(ground_truth.stamps, ground_truth.poses):
                    msg = _odometry_msg(types, float(stamp), T, "world", "lidar", ros1=True)
                    writer.write(gt, _stamp_ns(stamp), typestore.serialize_ros1(msg, ODOMETRY))
    except Exception as exc:
        raise BagError(f"{path}: cannot write ROS 1 bag ({_one_line(exc)})") from None
