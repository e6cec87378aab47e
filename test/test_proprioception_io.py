"""IMU / wheel odometry / static transforms in real bags: simulated, written, read back (ROS 1 and 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from conftest import assert_one_line_error, run_cli
from dcreg_ros.core.proprioception import ImuSamples
from dcreg_ros.io.bags import BagError, BagWriter, read_ground_truth, write_ros1_bag
from dcreg_ros.io.datasets import open_dataset
from dcreg_ros.io.proprioception import (TransformError, accelerometer_in_g, imu_from_message, lookup_transform, read_imu,
                                         read_static_transforms, read_wheel_odometry, transforms_from_message,
                                         wheel_sample_from_message)
from dcreg_ros.sim import simulate, write_simulation
from dcreg_ros.sim.proprioception import UNKNOWN_VARIANCE, ImuModel
from dcreg_ros.sim.simulate import load_simulation_info, static_transforms

T0 = 1000.0


@pytest.fixture(scope="module")
def sim():
    return simulate("structured", frames=6, beams=16, columns=128, seed=2, motion="stop_and_go", start_stamp=T0)


def assert_same_imu(a: ImuSamples, b: ImuSamples) -> None:
    np.testing.assert_allclose(a.stamps, b.stamps, atol=1e-9)  # nanosecond stamps
    np.testing.assert_array_equal(a.angular_velocity, b.angular_velocity)
    np.testing.assert_array_equal(a.linear_acceleration, b.linear_acceleration)
    assert a.frame_id == b.frame_id


def assert_same_wheel(a, b) -> None:
    np.testing.assert_allclose(a.stamps, b.stamps, atol=1e-9)
    np.testing.assert_allclose(a.poses, b.poses, atol=1e-12)  # through a quaternion
    for name in ("linear_velocity", "angular_velocity", "pose_covariance", "twist_covariance"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert (a.frame_id, a.child_frame_id) == (b.frame_id, b.child_frame_id)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_ros2_simulation_bag_round_trip(sim, tmp_path, storage):
    bag = write_simulation(sim, tmp_path / "bag", storage=storage)
    stats: dict = {}
    imu = read_imu(bag, "/imu", stats=stats)
    assert_same_imu(imu, sim.imu.samples)
    assert stats == {"read": len(imu), "skipped": 0, "out_of_order": 0, "dropped": 0, "errors": []}
    assert_same_imu(read_imu(bag), imu)  # the only Imu topic
    assert_same_wheel(read_wheel_odometry(bag, "/wheel/odom"), sim.wheel.samples)
    tf = read_static_transforms(bag)
    assert set(tf) == {("base_link", "lidar"), ("lidar", "imu")}
    np.testing.assert_allclose(tf[("lidar", "imu")], sim.imu.T_lidar_imu, atol=1e-12)
    T_base_imu = lookup_transform(tf, "base_link", "imu")
    np.testing.assert_allclose(T_base_imu, sim.wheel.T_base_lidar @ sim.imu.T_lidar_imu, atol=1e-12)
    np.testing.assert_allclose(lookup_transform(tf, "imu", "base_link") @ T_base_imu, np.eye(4), atol=1e-12)
    with pytest.raises(TransformError, match="no transform chain from 'imu' to 'map'"):
        lookup_transform(tf, "imu", "map")
    # ground truth and scans are kept; the wheel odometry is not taken for ground truth
    np.testing.assert_allclose(read_ground_truth(bag).poses, sim.ground_truth.poses, atol=1e-9)
    info = load_simulation_info(bag)
    assert info["motion_profile"] == "stop_and_go" and info["seed"] == 2
    np.testing.assert_allclose(info["imu"]["accel_bias_m_s2"], sim.imu.accel_bias)
    np.testing.assert_allclose(info["imu"]["gyro_bias_rad_s"], sim.imu.gyro_bias)
    assert info["wheel"]["scale_error"] == sim.wheel.scale_error
    np.testing.assert_allclose(info["extrinsics"]["T_lidar_imu"]["matrix"], sim.imu.T_lidar_imu, atol=1e-12)
    # the messages as written: record times = header stamps in non-decreasing order, REP-145
    # "no orientation", the model's noise variances, tf_static latched like tf2's broadcaster
    with AnyReader([bag]) as reader:
        times = [t for _, t, _ in reader.messages()]
        assert times == sorted(times) and len(times) == 6 * 2 + len(imu) + len(sim.wheel.samples) + 1
        imu_conn = next(c for c in reader.connections if c.topic == "/imu")
        _, t, raw = next(reader.messages(connections=[imu_conn]))
        msg = reader.deserialize(raw, imu_conn.msgtype)
        assert msg.orientation_covariance[0] == -1.0 and msg.header.frame_id == "imu"
        reading = imu_from_message(msg)
        np.testing.assert_allclose(np.diag(reading.angular_velocity_covariance), ImuModel().gyro_noise**2)
        np.testing.assert_allclose(np.diag(reading.linear_acceleration_covariance), ImuModel().accel_noise**2)
        tf_conn = next(c for c in reader.connections if c.topic == "/tf_static")
        assert tf_conn.ext.offered_qos_profiles[0].durability.name == "TRANSIENT_LOCAL"
    wheel = read_wheel_odometry(bag, "/wheel/odom")
    assert np.all(wheel.pose_covariance[:, [2, 3, 4], [2, 3, 4]] == UNKNOWN_VARIANCE)


def test_bag_without_proprioception_and_a_ros1_round_trip(sim, tmp_path):
    bare = write_simulation(sim, tmp_path / "bare", imu_topic=None, wheel_topic=None)
    assert read_static_transforms(bare) == {}
    with pytest.raises(BagError, match="no sensor_msgs/msg/Imu topic"):
        read_imu(bare)
    assert "imu" not in load_simulation_info(bare) and "wheel" not in load_simulation_info(bare)
    path = tmp_path / "run.bag"
    write_ros1_bag(path, sim.scans, ground_truth=sim.ground_truth, imu=sim.imu.samples, wheel=sim.wheel.samples,
                   static_transforms=static_transforms(sim))
    assert_same_imu(read_imu(path, "/imu"), sim.imu.samples)
    assert_same_wheel(read_wheel_odometry(path, "/wheel/odom"), sim.wheel.samples)
    tf = read_static_transforms(path)
    np.testing.assert_allclose(lookup_transform(tf, "base_link", "imu"), sim.wheel.T_base_lidar @ sim.imu.T_lidar_imu, atol=1e-12)


def test_wrong_topics_give_one_line_errors(sim, tmp_path):
    bag = write_simulation(sim, tmp_path / "bag")
    for call, topic, actual, expected in [
        (read_imu, "/points", "sensor_msgs/msg/PointCloud2", "sensor_msgs/msg/Imu"),
        (read_wheel_odometry, "/imu", "sensor_msgs/msg/Imu", "nav_msgs/msg/Odometry"),
        (read_static_transforms, "/wheel/odom", "nav_msgs/msg/Odometry", "tf2_msgs/msg/TFMessage"),
    ]:
        with pytest.raises(BagError) as info:
            call(bag, topic)
        text = str(info.value)
        assert "\n" not in text and f"'{topic}' is {actual}" in text and expected in text, text
    with pytest.raises(BagError, match="no topic '/nope'"):
        read_wheel_odometry(bag, "/nope")


def test_bad_unsorted_and_duplicate_messages_are_skipped_counted_and_sorted(tmp_path):
    ts = get_typestore(Stores.ROS2_JAZZY)
    types = ts.types
    imu_type = "sensor_msgs/msg/Imu"

    def imu(stamp: float, value: float):
        vec = types["geometry_msgs/msg/Vector3"](x=value, y=0.0, z=9.81)
        sec, nsec = int(stamp), int(round((stamp % 1) * 1e9))
        header = types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec), frame_id="imu_link")
        return types[imu_type](header=header, orientation=types["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
                               orientation_covariance=np.zeros(9), angular_velocity=vec, angular_velocity_covariance=np.zeros(9),
                               linear_acceleration=vec, linear_acceleration_covariance=np.zeros(9))

    path = tmp_path / "bag"
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection("/imu", imu_type, typestore=ts)
        # record times in order, header stamps not: a burst delivered late, a duplicate, a NaN
        sequence = [(1.00, 1.0), (1.02, 3.0), (1.01, 2.0), (1.02, 99.0), (1.03, np.nan), (1.04, 5.0)]
        for k, (stamp, value) in enumerate(sequence):
            writer.write(conn, 10**9 + k, ts.serialize_cdr(imu(stamp, value), imu_type))
        writer.write(conn, 10**9 + 10, b"\x00\x01\x00\x00garbage")  # undecodable
    stats: dict = {}
    samples = read_imu(path, "/imu", stats=stats)
    np.testing.assert_allclose(samples.stamps, [1.00, 1.01, 1.02, 1.04])
    np.testing.assert_array_equal(samples.angular_velocity[:, 0], [1.0, 2.0, 3.0, 5.0])  # the first of a duplicate kept
    assert samples.frame_id == "imu_link"
    assert stats["read"] == 6 and stats["skipped"] == 1 and stats["dropped"] == 2 and stats["out_of_order"] == 2
    assert "/imu message 6" in stats["errors"][0]


@pytest.mark.ros  # the ROS message packages (the robot-install check runs it once they are installed)
def test_converters_accept_rclpy_messages():
    from builtin_interfaces.msg import Time
    from geometry_msgs.msg import TransformStamped
    from nav_msgs.msg import Odometry
    from sensor_msgs.msg import Imu
    from tf2_msgs.msg import TFMessage

    imu = Imu()
    imu.header.stamp = Time(sec=12, nanosec=500_000_000)
    imu.header.frame_id = "imu"
    imu.angular_velocity.z = 0.25
    imu.linear_acceleration.z = -9.81
    imu.angular_velocity_covariance[0] = 1e-5
    reading = imu_from_message(imu)
    assert reading.stamp == 12.5 and reading.angular_velocity[2] == 0.25 and reading.linear_acceleration[2] == -9.81
    assert reading.angular_velocity_covariance[0, 0] == 1e-5
    odom = Odometry()
    odom.header.frame_id, odom.child_frame_id = "odom", "base_link"
    odom.pose.pose.position.x = 2.0
    odom.pose.pose.orientation.z, odom.pose.pose.orientation.w = np.sin(0.25), np.cos(0.25)  # yaw 0.5 rad
    odom.twist.twist.linear.x = 1.5
    odom.pose.covariance[35] = 0.01
    sample = wheel_sample_from_message(odom)
    assert sample.pose[0, 3] == 2.0 and np.isclose(np.arctan2(sample.pose[1, 0], sample.pose[0, 0]), 0.5)
    assert sample.linear_velocity[0] == 1.5 and sample.pose_covariance[5, 5] == 0.01
    tf = TransformStamped()
    tf.header.frame_id, tf.child_frame_id = "/base_link", "lidar"
    tf.transform.translation.z = 0.4
    tf.transform.rotation.w = 1.0
    (t,) = transforms_from_message(TFMessage(transforms=[tf]))
    assert (t.parent, t.child) == ("base_link", "lidar") and t.T_parent_child[2, 3] == 0.4


def test_accelerometer_in_g_is_detected(sim):
    imu = sim.imu.samples
    assert not accelerometer_in_g(imu)
    in_g = ImuSamples(imu.stamps, imu.angular_velocity, imu.linear_acceleration / 9.80665)
    assert accelerometer_in_g(in_g) and not accelerometer_in_g(ImuSamples.empty())


def test_ground_truth_is_never_guessed_from_wheel_odometry(tmp_path):
    sim = simulate("structured", frames=6, beams=16, columns=256, seed=2, motion="smooth", start_stamp=T0 + 3.0)
    path = tmp_path / "wheel_only"
    w = sim.wheel.samples
    with BagWriter(path) as writer:
        for scan in sim.scans:
            k = int(np.argmin(np.abs(w.stamps - scan.stamp)))  # the wheel sample at the scan's stamp
            writer.write_scan("/points", scan)
            writer.write_wheel_odometry("/wheel/odom", scan.stamp, w.poses[k], w.linear_velocity[k], w.angular_velocity[k],
                                        w.pose_covariance[k], w.twist_covariance[k])
    assert read_ground_truth(path) is None
    dataset = open_dataset(path)
    assert dataset.ground_truth is None and "/wheel/odom" in dataset.notes[0] and "--gt-topic" in dataset.notes[0]
    assert len(open_dataset(path, ground_truth_topic="/wheel/odom").ground_truth) == len(sim.scans)
    # the CLI: no accuracy line without ground truth, one with --gt-topic; eval says what is missing
    plain = run_cli("run", path, "--out", tmp_path / "a", "--no-plots", "--quiet")
    assert "ATE" not in plain.stdout and "/wheel/odom" in plain.stderr
    named = run_cli("run", path, "--out", tmp_path / "b", "--no-plots", "--quiet", "--gt-topic", "/wheel/odom")
    assert "accuracy" in named.stdout and "ATE" in named.stdout
    assert_one_line_error(run_cli("eval", tmp_path / "b", path, ok=False), "--gt-topic")
    res = json.loads(run_cli("eval", tmp_path / "b", path, "--gt-topic", "/wheel/odom", "--json").stdout)
    assert res["matched_poses"] == len(sim.scans)
    assert_one_line_error(run_cli("run", path, "--out", tmp_path / "c", "--gt-topic", "/points", ok=False), "/points")


def test_run_uses_imu_and_wheel_topics_with_mountings_from_tf_static(tmp_path):
    """`dcreg run --imu-topic --wheel-odom-topic` on a simulated bag: both feed the prediction
    (summary.json counts the frames per source), the mountings come from the bag's /tf_static."""

    from dcreg_ros.sim import simulate, write_simulation

    bag = write_simulation(simulate("structured", frames=25, beams=16, seed=2, motion="stop_and_go"), tmp_path / "bag")
    run_cli("run", bag, "--out", tmp_path / "out", "--imu-topic", "/imu", "--wheel-odom-topic", "/wheel/odom", "--quiet", "--no-plots")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["frames_per_prior_source"] == {"imu_wheel": 24}
    assert any("from /tf_static" in n and "IMU" in n for n in summary["notes"])
    assert any("from /tf_static" in n and "LiDAR mounting" in n for n in summary["notes"])
    header = (tmp_path / "out" / "diagnostics.csv").read_text().splitlines()[0].split(",")
    assert {"prior_source", "std_x_m", "std_yaw_deg", "prior_axes"} <= set(header)
    bad = run_cli("run", bag, "--out", tmp_path / "out2", "--imu-topic", "/nope", ok=False)
    assert_one_line_error(bad, "/nope")
