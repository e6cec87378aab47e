"""The odometry node with the robot's IMU and wheel odometry, over the real middleware: the
player replays a simulated bag's /imu, /wheel/odom and /tf_static next to the clouds, the node
takes the mountings from /tf_static, predicts with both and says so in its diagnostics; without
the IMU it falls back to constant velocity with a WARN that says why."""

from __future__ import annotations

import subprocess
from collections import Counter

import numpy as np
import pytest

from dcreg_ros.nodes.transport import profile_environment
from dcreg_ros.sim import simulate, write_simulation

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from nav_msgs.msg import Odometry as OdometryMsg  # noqa: E402

from ros_helpers import (WAIT, RELIABLE, ROOT, Probe, default_sigint, executable, is_diagnostic_of, new_domain_id, ros_context, ros_env, spinning,  # noqa: E402
                         stamp_ns, stop_process, tf2_msgs_available)

FRAMES = 40


@pytest.fixture(scope="module")
def stop_and_go_bag(tmp_path_factory):
    result = simulate("structured", frames=FRAMES, beams=16, seed=7, motion="stop_and_go")
    return write_simulation(result, tmp_path_factory.mktemp("bags") / "structured", storage="mcap"), result


def replay(bag, tmp, node_parameters: list[str], player_arguments: list[str]) -> dict:
    """Node and player --sync as processes with the shipped Fast DDS profile; a probe records."""
    domain = new_domain_id()
    env = {**ros_env(domain), **profile_environment()}
    command = executable("dcreg_node") + ["--ros-args", "-p", "use_sim_time:=true", "-p", "input_qos:=reliable", *node_parameters]
    log = tmp / "node.log"
    with open(log, "w") as out:
        node = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, preexec_fn=default_sigint)
    record: dict = {}
    try:
        with ros_context(domain) as context:
            probe = Probe(context)
            probe.listen(OdometryMsg, "dcreg/odometry", RELIABLE)
            probe.listen(DiagnosticArray, "/diagnostics", RELIABLE)
            with spinning(context, probe.node):
                # matched here; the node's first odometry comes only after the player process started
                assert probe.wait_until_matched(["dcreg/odometry", "/diagnostics"], timeout=WAIT), "no node"
                player = subprocess.run(executable("dcreg_bag_player") + [str(bag), "--sync", "--wait", str(int(WAIT)), *player_arguments],
                                        cwd=ROOT, timeout=3 * WAIT, capture_output=True, text=True, env=env)
                record["player"] = player
                assert probe.wait_for_count("dcreg/odometry", FRAMES, timeout=WAIT), player.stdout + log.read_text()[-2000:]
                last = max(stamp_ns(m.header.stamp) for m in probe.messages("dcreg/odometry"))
                # the diagnostic of the last frame follows its odometry
                assert probe.wait_for_message("/diagnostics", lambda m: is_diagnostic_of(m, last), WAIT)
                record["odometry"] = probe.messages("dcreg/odometry")
                record["diagnostics"] = [{kv.key: kv.value for kv in m.status[0].values} | {"level": m.status[0].level}
                                         for m in probe.messages("/diagnostics")]
            probe.node.destroy_node()
    finally:
        record["node_exit"] = stop_process(node)
        record["node_log"] = log.read_text()
    return record


@pytest.mark.skipif(not tf2_msgs_available(), reason="tf2_msgs not built: /tf_static cannot be replayed")
def test_node_predicts_with_imu_and_wheel_odometry_and_mountings_from_tf_static(stop_and_go_bag, tmp_path):
    bag, result = stop_and_go_bag
    record = replay(bag, tmp_path, ["-p", "motion_prior.imu_topic:=/imu", "-p", "motion_prior.wheel_odom_topic:=/wheel/odom"],
                    ["--imu-topic", "/imu", "--wheel-odom-topic", "/wheel/odom"])
    assert record["player"].returncode == 0, record["player"].stderr
    assert len(record["odometry"]) == FRAMES, record["node_log"][-2000:]
    frames = [d for d in record["diagnostics"] if "prior_source" in d]
    sources = Counter(d["prior_source"] for d in frames)
    assert sources["imu_wheel"] >= 0.8 * (FRAMES - 1), sources
    last = frames[-1]
    assert "/tf_static lidar <- imu" in last["motion_prior_mounting"] and "/tf_static base_link <- lidar" in last["motion_prior_mounting"]
    assert int(last["imu_messages"]) > 150 * FRAMES * 0.1 and int(last["wheel_messages"]) > 40 * FRAMES * 0.1
    assert all(np.isfinite(float(d["std_x_m"])) and float(d["std_x_m"]) < 1.0 for d in frames)
    # the simulated wheel odometry is odom -> base_link, exactly our TF: ours is withheld, with a WARN
    assert "odom -> base_link, the same transform as ours" in last["tf"] and "publish_tf false" in record["node_log"]
    # the published odometry follows the ground truth; without tf2_ros the node's base mounting is
    # its lidar_to_base parameter (zero here), so base = LiDAR and odom = the first LiDAR pose
    gt = result.ground_truth.poses
    est = [np.array([m.pose.pose.position.x, m.pose.pose.position.y, m.pose.pose.position.z]) for m in record["odometry"]]
    truth = [(np.linalg.inv(gt[0]) @ T)[:3, 3] for T in gt]
    assert max(np.linalg.norm(e - t) for e, t in zip(est, truth)) < 0.1


def test_missing_imu_falls_back_to_constant_velocity_with_a_warning(stop_and_go_bag, tmp_path):
    bag, _ = stop_and_go_bag
    record = replay(bag, tmp_path, ["-p", "motion_prior.imu_topic:=/imu", "-p", "motion_prior.max_data_age:=0.05"], [])  # the player sends no IMU
    assert len(record["odometry"]) == FRAMES, record["node_log"][-2000:]
    frames = [d for d in record["diagnostics"] if "prior_source" in d and d["prior_source"] != "none"]
    assert frames and all(d["prior_source"] == "constant_velocity" for d in frames)
    warned = [d for d in frames if "IMU: no data" in d.get("notes", "")]
    assert len(warned) == len(frames) and all(d["level"] == bytes([1]) for d in warned)  # WARN
    assert not any("tf" in d for d in frames)  # no wheel odometry: our TF is published
