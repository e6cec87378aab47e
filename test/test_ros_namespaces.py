"""Two robots on one machine: two dcreg_node processes in two namespaces (one shared ROS graph,
one shared /tf) run side by side without crosstalk. Each gets only its own clouds, publishes
under its namespace and its TF frames carry its prefix; the /** params file reaches both."""

from __future__ import annotations

import math

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry as OdometryMsg
from sensor_msgs.msg import PointCloud2

from conftest import box_room
from dcreg_ros.nodes import ros_messages as rm
from dcreg_ros.nodes.matching import poll_until
from ros_helpers import (WAIT, RELIABLE, ROOT, Probe, executable, new_domain_id, ros_context, spinning, stamp_ns, start_process,
                         stop_process, tf2_msgs_available)

pytestmark = pytest.mark.ros

FRAMES = 6
PERIOD = 0.1
ROOM = box_room(5000, seed=2)
# robot -> (direction the sensor moves per frame in its own frame, T_base_lidar as x y z roll pitch yaw)
ROBOTS = {"robot1": (np.array([0.03, 0.0, 0.0]), [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
          "robot2": (np.array([0.0, 0.03, 0.0]), [0.2, 0.0, 1.0, 0.0, 0.0, math.pi / 2])}


def status_values(diag: DiagnosticArray) -> dict[str, str]:
    return {kv.key: kv.value for kv in diag.status[0].values}


@pytest.fixture(scope="module")
def two_robots(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("robots")
    domain = new_domain_id()
    processes = {}
    for name, (_, mounting) in ROBOTS.items():
        args = ["--ros-args", "-r", f"__ns:=/{name}", "--params-file", str(ROOT / "config" / "dcreg.yaml"),
                "-p", f"frame_prefix:={name}/", "-p", "input_qos:=reliable", "-p", f"lidar_to_base:={mounting}"]
        processes[name] = start_process(executable("dcreg_node") + args, domain, tmp / f"{name}.log")
    record: dict = {}
    try:
        with ros_context(domain) as context:
            probe = Probe(context)
            publishers = {}
            for name in ROBOTS:
                probe.listen(OdometryMsg, f"/{name}/dcreg/odometry", RELIABLE)
                publishers[name] = probe.node.create_publisher(PointCloud2, f"/{name}/points", RELIABLE)
            probe.listen(DiagnosticArray, "/diagnostics", RELIABLE)
            if tf2_msgs_available():
                from tf2_msgs.msg import TFMessage

                probe.listen(TFMessage, "/tf", RELIABLE)
            with spinning(context, probe.node):
                topics = [f"/{name}/dcreg/odometry" for name in ROBOTS] + ["/diagnostics"]
                assert probe.wait_until_matched(topics, WAIT), "the probe never matched both nodes"
                assert all(poll_until(lambda p=p: p.get_subscription_count() > 0, WAIT) for p in publishers.values())
                for k in range(FRAMES):
                    for j, (name, (step, _)) in enumerate(ROBOTS.items()):
                        # the two robots' clouds differ in motion and stamps, so crosstalk would show
                        stamp = 100.0 + 50.0 * j + PERIOD * k
                        publishers[name].publish(rm.pointcloud2_msg(ROOM - k * step, stamp, f"{name}/lidar"))
                        assert probe.wait_for_count(f"/{name}/dcreg/odometry", k + 1, timeout=WAIT), f"{name} frame {k}"
                assert probe.wait_for_count("/diagnostics", 2 * FRAMES, lambda m: "status" in status_values(m), WAIT)
                for topic in topics + ["/tf"]:
                    record[topic] = probe.messages(topic)
            probe.node.destroy_node()
    finally:
        for name, process in processes.items():
            record[f"{name}_exit"] = stop_process(process)
            record[f"{name}_log"] = (tmp / f"{name}.log").read_text()
    return record


def test_each_robot_registers_only_its_own_clouds(two_robots):
    for j, (name, (step, mounting)) in enumerate(ROBOTS.items()):
        odoms = two_robots[f"/{name}/dcreg/odometry"]
        assert len(odoms) == FRAMES, two_robots[f"{name}_log"]
        stamps = [stamp_ns(m.header.stamp) for m in odoms]
        assert stamps == [stamp_ns(rm.time_msg(100.0 + 50.0 * j + PERIOD * k)) for k in range(FRAMES)]
        assert all((m.header.frame_id, m.child_frame_id) == (f"{name}/odom", f"{name}/base_link") for m in odoms)
        # the base moves as its own sensor does, turned by its own mounting (robot2: yaw 90 deg)
        p = odoms[-1].pose.pose.position
        yaw = mounting[5]
        R = np.array([[math.cos(yaw), -math.sin(yaw), 0.0], [math.sin(yaw), math.cos(yaw), 0.0], [0.0, 0.0, 1.0]])
        expected = R @ (step * (FRAMES - 1))
        assert np.allclose([p.x, p.y, p.z], expected, atol=0.01), (name, p)
        v = odoms[-1].twist.twist.linear  # in the base frame: the sensor's velocity, turned by the mounting
        assert np.allclose([v.x, v.y, v.z], R @ (step / PERIOD), atol=0.05), (name, v)
        assert two_robots[f"{name}_exit"] == 0, two_robots[f"{name}_log"]


def test_diagnostics_name_the_robot_and_count_only_its_clouds(two_robots):
    for name in ROBOTS:
        mine = [d for d in two_robots["/diagnostics"] if d.status[0].name == f"{name}/dcreg_node: odometry"]
        assert len(mine) == FRAMES
        values = status_values(mine[-1])
        assert int(values["received"]) == FRAMES and int(values["processed"]) == FRAMES
        assert values["mounting"] == "parameter" and values["mounting_detail"].startswith("lidar_to_base")
        assert mine[-1].status[0].hardware_id == f"{name}/lidar"


def test_tf_frames_carry_the_robot_prefix(two_robots):
    if not tf2_msgs_available():
        pytest.skip("tf2_msgs not built (scripts/build_tf2_msgs.sh)")
    pairs = {(t.header.frame_id, t.child_frame_id) for m in two_robots["/tf"] for t in m.transforms}
    assert pairs == {("robot1/odom", "robot1/base_link"), ("robot2/odom", "robot2/base_link")}
