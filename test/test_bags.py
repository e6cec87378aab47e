"""ROS 1 / ROS 2 bags written with BagWriter / write_ros1_bag / plain rosbags and read back."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from dcreg_ros.core.pointcloud import InputError
from dcreg_ros.io.bags import (
    BagError,
    BagWriter,
    count_scans,
    list_topics,
    pointcloud_topic,
    read_ground_truth,
    read_scans,
    write_ros1_bag,
)
from dcreg_ros.io.pointcloud2 import scan_to_pointcloud2_parts, seconds_to_sec_nanosec
from dcreg_ros.io.scan import Scan
from dcreg_ros.io.skips import SkipLog
from dcreg_ros.io.trajectory import Trajectory, quaternion_to_rotation

T0 = 1_700_000_000.0


def make_scans(k: int = 3, n: int = 300, seed: int = 0) -> list[Scan]:
    rng = np.random.default_rng(seed)
    return [Scan(T0 + 0.1 * i + 0.0123, rng.uniform(-30, 30, (n, 3)), np.sort(rng.uniform(0, 0.1, n)),
                 rng.uniform(0, 100, n), "os_sensor") for i in range(k)]


def make_poses(k: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    poses = np.tile(np.eye(4), (k, 1, 1))
    for i in range(k):
        q = rng.normal(size=4)
        poses[i, :3, :3] = quaternion_to_rotation(*q)
        poses[i, :3, 3] = rng.uniform(-5, 5, 3)
    return poses


def assert_same_scans(out: list[Scan], ref: list[Scan]) -> None:
    assert len(out) == len(ref)
    for a, b in zip(out, ref):
        assert a.stamp == pytest.approx(b.stamp, abs=1e-6)
        assert a.frame_id == b.frame_id
        np.testing.assert_allclose(a.points, b.points.astype(np.float32), atol=0)
        np.testing.assert_allclose(a.times, b.times, atol=1e-7)
        np.testing.assert_allclose(a.intensity, b.intensity.astype(np.float32), atol=0)


@pytest.fixture(scope="module")
def ros2_bags(tmp_path_factory):
    """One bag per storage: /points (3 scans), /gt (Odometry) and /pose (PoseStamped)."""
    root = tmp_path_factory.mktemp("bags")
    scans, poses = make_scans(), make_poses(3)
    paths = {}
    for storage in ("mcap", "sqlite3"):
        path = root / storage
        with BagWriter(path, storage=storage) as writer:
            for scan, T in zip(scans, poses):
                writer.write_scan("/points", scan)
                writer.write_odometry("/gt", scan.stamp, T)
                writer.write_pose("/pose", scan.stamp + 0.05, T, frame_id="map")
        paths[storage] = path
    return paths, scans, poses


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_ros2_round_trip(ros2_bags, storage):
    paths, scans, poses = ros2_bags
    path = paths[storage]
    assert list((path).glob("*.mcap" if storage == "mcap" else "*.db3"))
    assert list_topics(path) == {"/points": "sensor_msgs/msg/PointCloud2", "/gt": "nav_msgs/msg/Odometry",
                                 "/pose": "geometry_msgs/msg/PoseStamped"}
    assert pointcloud_topic(path) == "/points"
    assert count_scans(path) == 3
    stats: dict = {}  # the older dict form the bag player passes
    assert_same_scans(list(read_scans(path, None, stats)), scans)
    assert stats == {"read": 3, "skipped": 0, "errors": []}
    gt = read_ground_truth(path, "/gt")
    np.testing.assert_allclose(gt.stamps, [s.stamp for s in scans], atol=1e-6)
    np.testing.assert_allclose(gt.poses, poses, atol=1e-9)
    pose = read_ground_truth(path, "/pose")
    np.testing.assert_allclose(pose.stamps, [s.stamp + 0.05 for s in scans], atol=1e-6)
    np.testing.assert_allclose(pose.poses, poses, atol=1e-9)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_storage_file_inside_the_bag_directory_is_accepted(ros2_bags, storage, tmp_path):
    paths, scans, _ = ros2_bags
    storage_file = next(p for p in paths[storage].iterdir() if p.suffix in (".mcap", ".db3"))
    assert_same_scans(list(read_scans(storage_file)), scans)
    # a bare storage file without metadata.yaml also works (rosbags reads the embedded schemas)
    bare = tmp_path / storage_file.name
    shutil.copy(storage_file, bare)
    assert_same_scans(list(read_scans(bare)), scans)


def test_header_stamp_is_used_not_record_time(tmp_path):
    scan = make_scans(1)[0]
    ts = get_typestore(Stores.ROS2_JAZZY)
    msg = _cloud(ts, scan)
    with Writer(tmp_path / "bag", version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection("/points", msg.__msgtype__, typestore=ts)
        writer.write(conn, 42, ts.serialize_cdr(msg, msg.__msgtype__))  # record time 42 ns
    (out,) = read_scans(tmp_path / "bag")
    assert out.stamp == pytest.approx(scan.stamp, abs=1e-6)


def test_ros1_round_trip(tmp_path):
    scans, poses = make_scans(4, seed=3), make_poses(4, seed=4)
    gt = Trajectory([s.stamp for s in scans], poses)
    path = tmp_path / "run.bag"
    write_ros1_bag(path, scans, topic="/velodyne_points", ground_truth=gt, ground_truth_topic="/odom")
    assert list_topics(path) == {"/velodyne_points": "sensor_msgs/msg/PointCloud2", "/odom": "nav_msgs/msg/Odometry"}
    assert count_scans(path) == 4
    assert_same_scans(list(read_scans(path)), scans)
    assert read_ground_truth(path) is None  # ground truth is /ground_truth or a named topic, never a guess
    back = read_ground_truth(path, "/odom")
    np.testing.assert_allclose(back.stamps, gt.stamps, atol=1e-6)
    np.testing.assert_allclose(back.poses, poses, atol=1e-9)
    with pytest.raises(BagError, match="refusing to overwrite"):
        write_ros1_bag(path, scans)


def test_topic_selection_and_its_errors(tmp_path):
    scans = make_scans(2)
    two = tmp_path / "two"
    with BagWriter(two) as writer:
        for s in scans:
            writer.write_scan("/front/points", s)
            writer.write_scan("/rear/points", s, frame_id="rear")
            writer.write_odometry("/odom", s.stamp, np.eye(4))
    with pytest.raises(BagError) as info:
        pointcloud_topic(two)
    assert "/front/points" in str(info.value) and "/rear/points" in str(info.value)
    assert pointcloud_topic(two, "/rear/points") == "/rear/points"
    assert [s.frame_id for s in read_scans(two, "/rear/points")] == ["rear", "rear"]
    with pytest.raises(BagError, match="no topic '/nope'"):
        pointcloud_topic(two, "/nope")
    with pytest.raises(BagError, match="nav_msgs/msg/Odometry"):
        read_scans(two, "/odom")  # raised at the call, before iterating
    with pytest.raises(BagError, match="expected"):
        read_ground_truth(two, "/front/points")

    no_clouds = tmp_path / "odom_only"
    with BagWriter(no_clouds, storage="sqlite3") as writer:
        writer.write_odometry("/odom", T0, np.eye(4))
    with pytest.raises(BagError, match="no sensor_msgs/msg/PointCloud2 topic"):
        count_scans(no_clouds)

    no_gt = tmp_path / "clouds_only"
    with BagWriter(no_gt) as writer:
        writer.write_scan("/points", scans[0])
    assert read_ground_truth(no_gt) is None

    several_gt = tmp_path / "several_gt"
    with BagWriter(several_gt) as writer:
        writer.write_odometry("/odom", T0, np.eye(4))
        writer.write_pose("/pose", T0, np.eye(4), "map")
        writer.write_pose("ground_truth", T0, np.eye(4), "map")
    assert len(read_ground_truth(several_gt)) == 1  # the one named ground_truth, whatever else there is
    assert len(read_ground_truth(several_gt, "/odom")) == 1


def test_writer_refuses_to_overwrite_and_bad_arguments(tmp_path):
    (tmp_path / "exists").mkdir()
    with pytest.raises(BagError, match="refusing to overwrite"):
        BagWriter(tmp_path / "exists")
    with pytest.raises(BagError, match="storage"):
        BagWriter(tmp_path / "new", storage="zip")
    with BagWriter(tmp_path / "new2") as writer:
        with pytest.raises(BagError, match="4x4"):
            writer.write_odometry("/odom", T0, np.eye(3))
        writer.write_odometry("/odom", T0, np.eye(4))
        with pytest.raises(BagError, match="already carries"):
            writer.write_pose("/odom", T0, np.eye(4), "map")


def _assert_bag_error(path, *calls):
    for call in calls:
        with pytest.raises(BagError) as info:
            call(path)  # read_scans too: it checks the bag before returning the iterator
        text = str(info.value)
        assert isinstance(info.value, InputError)
        assert str(path) in text and "\n" not in text, text


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_truncated_ros2_bag_gives_bag_error(ros2_bags, storage, tmp_path):
    src = ros2_bags[0][storage]
    dst = tmp_path / "cut"
    shutil.copytree(src, dst)
    storage_file = next(p for p in dst.iterdir() if p.suffix in (".mcap", ".db3"))
    data = storage_file.read_bytes()
    storage_file.write_bytes(data[: len(data) // 2])
    _assert_bag_error(dst, list_topics, read_scans, count_scans)


def test_corrupt_and_missing_bags_give_bag_errors(tmp_path):
    scans = make_scans(2)
    good = tmp_path / "good.bag"
    write_ros1_bag(good, scans)
    cut = tmp_path / "cut.bag"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.bag"
    garbage.write_bytes(b"this is not a bag\n" * 100)
    empty_dir = tmp_path / "empty_dir"
    empty_dir.mkdir()
    (empty_dir / "notes.txt").write_text("no bag here")
    bad_meta = tmp_path / "bad_meta"
    bad_meta.mkdir()
    (bad_meta / "metadata.yaml").write_text("rosbag2_bagfile_information: [unclosed\n")
    not_a_bag = tmp_path / "cloud.pcd"
    not_a_bag.write_text("x")
    for path in (cut, garbage, empty_dir, bad_meta, not_a_bag, tmp_path / "missing.bag"):
        _assert_bag_error(path, list_topics, read_scans, lambda p: read_ground_truth(p))


def _cloud(ts, scan: Scan, **override):
    T = ts.types
    fields, point_step, data = scan_to_pointcloud2_parts(scan)
    sec, nanosec = seconds_to_sec_nanosec(scan.stamp)
    args = dict(
        header=T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=scan.frame_id),
        height=1, width=len(scan),
        fields=[T["sensor_msgs/msg/PointField"](name=n, offset=o, datatype=d, count=c) for n, o, d, c in fields],
        is_bigendian=False, point_step=point_step, row_step=point_step * len(scan),
        data=np.frombuffer(data, np.uint8), is_dense=True)
    args.update(override)
    return T["sensor_msgs/msg/PointCloud2"](**args)


def test_malformed_messages_are_skipped_and_counted(tmp_path):
    scans = make_scans(3)
    ts = get_typestore(Stores.ROS2_JAZZY)
    path = tmp_path / "bag"
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection("/points", "sensor_msgs/msg/PointCloud2", typestore=ts)

        def put(i, raw):
            writer.write(conn, int((T0 + i) * 1e9), raw)

        put(0, ts.serialize_cdr(_cloud(ts, scans[0]), "sensor_msgs/msg/PointCloud2"))
        short = _cloud(ts, scans[1], data=np.zeros(10, np.uint8))  # claims 300 points, has 10 bytes
        put(1, ts.serialize_cdr(short, "sensor_msgs/msg/PointCloud2"))
        put(2, b"\x00\x01\x00\x00garbage")  # not deserialisable
        put(3, ts.serialize_cdr(_cloud(ts, scans[2]), "sensor_msgs/msg/PointCloud2"))
    assert count_scans(path) == 4
    skips = SkipLog()
    out = list(read_scans(path, skips=skips))
    assert_same_scans(out, [scans[0], scans[2]])
    assert skips.read == 2 and skips.skipped == 2 and skips.by_kind() == {"unreadable message": 2}
    assert len(skips.examples) == 2 and "message 1" in skips.examples[0] and "bytes" in skips.examples[0]
    assert {g.first_item for g in skips.groups.values()} == {"/points message 1", "/points message 2"}
    legacy: dict = {}
    list(read_scans(path, None, legacy))
    assert legacy["read"] == 2 and legacy["skipped"] == 2 and "message 1" in legacy["errors"][0]
