"""dcreg_bag_player + dcreg_node as processes on a simulated corridor bag (real rosbag2 files,
real middleware): odometry against the ground truth and the offline pipeline, degeneracy
diagnostics and markers, path, TF, sim time, the YAML parameters; player modes and errors."""

from __future__ import annotations

import re
import subprocess
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry as OdometryMsg
from nav_msgs.msg import Path
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import PointCloud2
from visualization_msgs.msg import MarkerArray

from dcreg_ros import Odometry, OdometryConfig
from dcreg_ros.core.geometry import pose_error
from dcreg_ros.io.bags import read_scans, write_ros1_bag
from dcreg_ros.io.trajectory import quaternion_to_rotation
from dcreg_ros.nodes import ros_messages as rm
from dcreg_ros.sim import simulate, write_simulation
from ros_helpers import (WAIT, LATCHED, RELIABLE, ROOT, Probe, executable, is_diagnostic_of, new_domain_id, ros_context, ros_env, spinning,
                         stamp_ns, start_process, stop_process, tf2_msgs_available)

pytestmark = pytest.mark.ros

FRAMES = 40
SKIP = 100  # simulated frames left out at the start (see corridor_bag)
OVERRIDES = """dcreg_node:
  ros__parameters:
    input_qos: reliable
    base_frame: base_test
    path_max_poses: 500
"""


@pytest.fixture(scope="session")
def corridor_bag(tmp_path_factory):
    """40 frames of a 16-beam LiDAR walking down the featureless corridor (x unobservable).

    The first 10 s (the start from rest in the structured entrance of the corridor) are left
    out: these tests are about the featureless part, on a steady walk."""
    result = simulate("corridor", frames=FRAMES + SKIP, beams=16, seed=1).frames(SKIP)
    return write_simulation(result, tmp_path_factory.mktemp("bags") / "corridor", storage="mcap"), result


def pose_of(msg: OdometryMsg) -> np.ndarray:
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    T = np.eye(4)
    T[:3, :3] = quaternion_to_rotation(q.x, q.y, q.z, q.w)
    T[:3, 3] = (p.x, p.y, p.z)
    return T


def values_of(diag: DiagnosticArray) -> dict[str, str]:
    return {kv.key: kv.value for kv in diag.status[0].values}


@pytest.fixture(scope="module")
def replay(corridor_bag, tmp_path_factory):
    """Node (shipped params file + an override file, sim time) and player --sync as processes;
    a probe records everything. Returns what was recorded."""
    bag, _ = corridor_bag
    tmp = tmp_path_factory.mktemp("replay")
    (tmp / "override.yaml").write_text(OVERRIDES)
    domain = new_domain_id()
    node = start_process(executable("dcreg_node") + ["--ros-args", "--params-file", str(ROOT / "config" / "dcreg.yaml"),
                                                      "--params-file", str(tmp / "override.yaml"), "-p", "use_sim_time:=true"],
                         domain, tmp / "node.log")
    record: dict = {}
    try:
        with ros_context(domain) as context:
            probe = Probe(context)
            for msg_type, topic, qos in ((OdometryMsg, "dcreg/odometry", RELIABLE), (DiagnosticArray, "/diagnostics", RELIABLE),
                                         (MarkerArray, "dcreg/degeneracy_markers", RELIABLE), (Path, "dcreg/path", LATCHED),
                                         (OdometryMsg, "ground_truth", RELIABLE), (Clock, "/clock", RELIABLE),
                                         (PointCloud2, "dcreg/local_map", LATCHED)):
                probe.listen(msg_type, topic, qos)
            if tf2_msgs_available():
                from tf2_msgs.msg import TFMessage

                probe.listen(TFMessage, "/tf", RELIABLE)
            with spinning(context, probe.node):
                names = ["input_qos", "base_frame", "path_max_poses", "degeneracy.strategy", "use_sim_time"]
                record["parameters"] = probe.get_parameters("/dcreg_node", names, timeout=WAIT)
                node_topics = ["dcreg/odometry", "/diagnostics", "dcreg/degeneracy_markers", "dcreg/path", "dcreg/local_map"]
                if tf2_msgs_available():
                    node_topics.append("/tf")
                # matched here, the node's side follows within milliseconds; its first odometry comes
                # only after the player process started, found the node and sent the first cloud
                assert probe.wait_until_matched(node_topics, timeout=WAIT), "the probe never matched the node's publishers"
                started = time.monotonic()
                player = subprocess.run(executable("dcreg_bag_player") + [str(bag), "--sync", "--wait", str(int(WAIT)), "--wait-for", "ground_truth",
                                                                        "--wait-for", "/clock"], cwd=ROOT, timeout=3 * WAIT,
                                        capture_output=True, text=True, env=ros_env(domain))
                record["player_seconds"] = time.monotonic() - started
                record["player"] = player
                assert probe.wait_for_count("dcreg/odometry", FRAMES, timeout=WAIT), player.stdout + player.stderr
                wait_for_last_frame_outputs(probe, replay_last_stamp(probe))
                for topic in ("dcreg/odometry", "/diagnostics", "dcreg/degeneracy_markers", "dcreg/path", "ground_truth",
                              "/clock", "/tf", "dcreg/local_map"):
                    record[topic] = probe.messages(topic)
            probe.node.destroy_node()
    finally:
        record["node_exit"] = stop_process(node)
        record["node_log"] = (tmp / "node.log").read_text()
    return record


def replay_last_stamp(probe: Probe) -> int:
    """Stamp (ns) of the newest odometry received."""
    return max(stamp_ns(m.header.stamp) for m in probe.messages("dcreg/odometry"))


def wait_for_last_frame_outputs(probe: Probe, last_ns: int) -> None:
    """Wait for what the node publishes after the last frame's odometry: its diagnostic, its
    markers, its TF (when built) and a path that holds it (the path is throttled by data time, so
    the last one may end a few poses earlier)."""
    assert probe.wait_for_message("/diagnostics", lambda m: is_diagnostic_of(m, last_ns), WAIT) is not None
    assert probe.wait_for_message("dcreg/degeneracy_markers", lambda m: stamp_ns(m.markers[0].header.stamp) == last_ns, WAIT)
    if tf2_msgs_available():
        assert probe.wait_for_message("/tf", lambda m: any(stamp_ns(t.header.stamp) == last_ns for t in m.transforms), WAIT)
    assert probe.wait_for_message("dcreg/path", lambda m: len(m.poses) >= FRAMES - 5, WAIT) is not None
    assert probe.wait_for_count("dcreg/local_map", 1, timeout=WAIT)


def test_player_replays_every_cloud_in_sync_mode(replay):
    player = replay["player"]
    assert player.returncode == 0, player.stdout + player.stderr
    assert f"done: {FRAMES} clouds" in player.stdout and "0 sync timeout(s)" in player.stdout
    assert f"{FRAMES}/{FRAMES} clouds (100%)" in player.stdout
    assert replay["node_exit"] == 0, replay["node_log"]
    assert len(replay["dcreg/odometry"]) == FRAMES  # --sync + reliable QoS: nothing dropped


def test_yaml_parameters_are_in_effect(replay):
    assert replay["parameters"] == {"input_qos": "reliable", "base_frame": "base_test", "path_max_poses": 500,
                                    "degeneracy.strategy": "dcreg_prior", "use_sim_time": True}
    assert all(m.child_frame_id == "base_test" and m.header.frame_id == "odom" for m in replay["dcreg/odometry"])


def test_odometry_matches_the_offline_pipeline_and_follows_the_ground_truth(replay, corridor_bag):
    bag, result = corridor_bag
    odoms = {stamp_ns(m.header.stamp): pose_of(m) for m in replay["dcreg/odometry"]}
    # 1) the node is the core pipeline: same scans from the same bag give the same poses
    offline = Odometry(OdometryConfig())
    stamps = []
    for scan in read_scans(bag):
        record = offline.register_frame(scan.points, scan.times, stamp=scan.stamp)
        ns = stamp_ns(rm.time_msg(scan.stamp))
        stamps.append(ns)
        t_err, r_err = pose_error(odoms[ns], record.pose)
        assert t_err < 1e-3 and r_err < 0.01, f"frame at {scan.stamp}: node differs from offline by {t_err} m, {r_err} deg"
    # 2) against the ground truth republished by the player (relative to the first scan).
    # The corridor leaves x unobservable (flagged below), so x is held by the motion prior (bound
    # below); the walls, floor and ceiling pin y and
    # z: in our runs the errors stayed below 0.16 m (y), 0.05 m (z) and 1.6 deg, and the bounds
    # are twice that. A wrong frame, stamp or pose conversion gives metres and tens of degrees.
    gt = {stamp_ns(m.header.stamp): pose_of(m) for m in replay["ground_truth"]}
    common = [ns for ns in stamps if ns in gt]
    assert len(common) == FRAMES  # the player waited for the probe's ground-truth subscription
    for ns in common:
        error = odoms[ns][:3, 3] - gt[ns][:3, 3]
        assert abs(error[1]) < 0.32 and abs(error[2]) < 0.1, f"lateral/vertical error {error}"
        assert pose_error(odoms[ns], gt[ns])[1] < 3.0
        # x is unobservable here: carried by the constant-velocity motion model, within 5% of the
        # distance walked (measured: 9 cm, and 19 cm since the fusion of issue 14, at most over the
        # 6 m walked; the node is the offline pipeline, so this is deterministic); a motion model
        # that stopped carrying x would be metres off, a 10% scale error 0.6 m
        assert abs(error[0]) < 0.05 * result.ground_truth.path_length(), f"error along the corridor {error[0]:.3f} m"
    assert all(m.header.frame_id == "odom" and m.child_frame_id == "ground_truth" for m in replay["ground_truth"])


def test_diagnostics_and_markers_flag_x_translation(replay):
    frames = [d for d in replay["/diagnostics"] if "status" in values_of(d)]
    assert len(frames) == FRAMES
    later = frames[1:]  # the first frame only initialises the map
    flagged = [d for d in later if "x" in values_of(d)["degenerate_axes"].split(", ")]
    assert len(flagged) >= 0.8 * len(later)
    for d in flagged:
        assert d.status[0].level == bytes([rm.WARN]) and "x translation" in d.status[0].message
        assert "x=1" in values_of(d)["mask"]
    assert all(int(values_of(d)["dropped_frames"]) == 0 for d in frames)
    # sim time: diagnostics are stamped with /clock (bag time starts at 1000 s), not wall time
    end = 1001.0 + 0.1 * (SKIP + FRAMES)
    assert all(999.0 < d.header.stamp.sec < end for d in frames[1:])
    assert replay["/clock"] and all(999 < m.clock.sec < end for m in replay["/clock"])

    with_arrows = 0
    for array in replay["dcreg/degeneracy_markers"]:
        arrows = [m for m in array.markers if m.action == m.ADD and m.type == m.ARROW and m.id in (3, 13)]
        for m in arrows:
            d = np.array([m.points[1].x - m.points[0].x, m.points[1].y - m.points[0].y, m.points[1].z - m.points[0].z])
            assert abs(d[0]) / np.linalg.norm(d) > 0.9  # along the corridor, in odom
        with_arrows += bool(arrows)
        assert array.markers[0].action == array.markers[0].DELETEALL
    assert with_arrows >= 0.8 * len(later)


def test_covariance_is_largest_along_the_corridor(replay):
    """x (along the corridor) is flagged and carries the motion prior's uncertainty, y and z the
    LiDAR's: in physical units, x is much less certain, and both the published pose covariance
    (accumulated: it grows along x) and the diagnostics (per frame) state it."""
    covs = [np.asarray(m.pose.covariance).reshape(6, 6) for m in replay["dcreg/odometry"][1:]]
    along = [c for c in covs if c[0, 0] > 4.0 * max(c[1, 1], c[2, 2])]
    assert len(along) >= 0.8 * len(covs)
    x_std = [np.sqrt(c[0, 0]) for c in covs]
    assert x_std[-1] > x_std[len(x_std) // 2] > 0.0 and x_std[-1] < 2.0  # accumulates while x stays unobserved
    # per frame: x the prediction's ~2 cm, y the LiDAR's ~4 mm (16 beams; measured medians 1.8 cm, 4.1 mm)
    stds = [float(values_of(d)["std_x_m"]) for d in replay["/diagnostics"] if "std_x_m" in values_of(d)]
    assert stds and max(stds) < 1.0 and np.median(stds) > 3.0 * np.median(
        [float(values_of(d)["std_y_m"]) for d in replay["/diagnostics"] if "std_y_m" in values_of(d)])
    pose_stds = [float(values_of(d)["pose_std_x_m"]) for d in replay["/diagnostics"] if "pose_std_x_m" in values_of(d)]
    assert pose_stds[-1] > np.median(stds)


def test_path_grows_and_tf_and_map_are_published(replay):
    lengths = [len(p.poses) for p in replay["dcreg/path"]]
    assert lengths and lengths == sorted(lengths) and lengths[-1] >= FRAMES - 5 and lengths[-1] > lengths[0]
    assert replay["dcreg/local_map"] and replay["dcreg/local_map"][-1].width > 1000
    if not tf2_msgs_available():
        pytest.skip("tf2_msgs not built (scripts/build_tf2_msgs.sh): TF part not checked")
    transforms = [t for m in replay["/tf"] for t in m.transforms]
    assert len(transforms) >= FRAMES - 5
    assert all((t.header.frame_id, t.child_frame_id) == ("odom", "base_test") for t in transforms)


# --------------------------------------------------------------------------- player alone
def test_rate_mode_replays_a_ros1_bag_with_clock_and_ground_truth(corridor_bag, tmp_path):
    _, result = corridor_bag
    bag = tmp_path / "corridor.bag"
    write_ros1_bag(bag, result.scans[:20], topic="/velodyne_points", ground_truth=result.ground_truth)
    domain = new_domain_id()
    with ros_context(domain) as context:
        probe = Probe(context)
        probe.listen(PointCloud2, "/lidar/points", RELIABLE)
        probe.listen(OdometryMsg, "ground_truth", RELIABLE)
        probe.listen(Clock, "/clock", RELIABLE)
        with spinning(context, probe.node):
            player = subprocess.run(executable("dcreg_bag_player") + [str(bag), "--rate", "10", "--wait", str(int(WAIT)), "--wait-for", "ground_truth",
                                                                  "--wait-for", "/clock", "--ros-args", "-r", "points:=/lidar/points"],
                                    cwd=ROOT, timeout=3 * WAIT, capture_output=True, text=True, env=ros_env(domain))
            assert probe.wait_for_count("/lidar/points", 20, timeout=WAIT), player.stdout + player.stderr
            clouds = probe.messages("/lidar/points")
            truth = probe.messages("ground_truth")
            clock = probe.messages("/clock")
        probe.node.destroy_node()
    assert player.returncode == 0, player.stdout + player.stderr
    assert "(rate x10, QoS reliable)" in player.stdout
    # the pace: the 19 periods of 0.1 s between the first and the last cloud take 0.19 s at 10x
    # (the player never sends early) and would take 1.9 s at 1x (a loaded machine has 1.7 s to stall)
    elapsed = float(re.search(r"done: 20 clouds in ([\d.]+) s", player.stdout).group(1))
    assert 0.18 <= elapsed < 1.9, player.stdout
    assert len(clouds) == 20  # the player waited for this subscriber; reliable QoS loses nothing
    stamps = [stamp_ns(c.header.stamp) for c in clouds]
    assert stamps == sorted(stamps) and stamps[0] == stamp_ns(rm.time_msg(result.scans[0].stamp))
    assert np.allclose(np.frombuffer(clouds[5].data, dtype=np.float32).reshape(-1, 5)[:, :3], result.scans[5].points, atol=1e-4)
    # the stamps are the bag's (never rewritten to the replay's pace)
    assert 1e-9 * (stamps[-1] - stamps[0]) == pytest.approx(1.9, abs=1e-6)
    assert truth and all(m.header.frame_id == "odom" for m in truth)
    at_first = [m for m in truth if stamp_ns(m.header.stamp) == stamps[0]]
    assert len(at_first) == 1 and np.allclose(pose_of(at_first[0]), np.eye(4), atol=1e-9)  # relative to the first scan
    assert clock and {stamp_ns(m.clock) for m in clock} >= set(stamps[-5:])


def test_demo_replay_records_every_frame(corridor_bag):
    """The ROS part of `make demo`: its own probe must be matched before the player starts."""
    from dcreg_ros.nodes.replay_demo import replay_through_node, summarize_replay

    bag, result = corridor_bag
    record = replay_through_node(bag, ROOT / "config" / "dcreg.yaml", domain=new_domain_id())
    assert record["player"].returncode == 0, record["player"].stdout + record["player"].stderr
    assert len(record["odometry"]) == FRAMES
    flagged = [d for d in record["diagnostics"] if "x" in values_of(d).get("degenerate_axes", "").split(", ")]
    assert len(flagged) >= 0.9 * (FRAMES - 1)  # the first frame only initialises the map
    text = summarize_replay(record, result.ground_truth)
    assert f"received {FRAMES} nav_msgs/Odometry" in text
    assert re.search(r"flagged axes \(frames\):.*\bx \d+", text), text


@pytest.mark.parametrize("kind", ["missing", "not_a_bag", "no_pointcloud", "bad_topic"])
def test_bad_bag_is_a_one_line_error_and_exit_1(kind, corridor_bag, tmp_path):
    bag, result = corridor_bag
    args = []
    if kind == "missing":
        path = tmp_path / "nope"
    elif kind == "not_a_bag":
        path = tmp_path / "cloud.txt"
        path.write_text("1 2 3\n")
    elif kind == "no_pointcloud":
        from dcreg_ros.io.bags import BagWriter

        path = tmp_path / "poses_only"
        with BagWriter(path) as writer:
            writer.write_odometry("/odom", 1.0, np.eye(4))
    else:
        path, args = bag, ["--topic", "/nonexistent"]
    run = subprocess.run(executable("dcreg_bag_player") + [str(path), *args], cwd=ROOT, timeout=WAIT, capture_output=True,
                         text=True, env=ros_env(new_domain_id()))
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dcreg_bag_player: error:"), run.stderr
    assert "Traceback" not in run.stderr


def test_wait_for_gives_up_after_wait_and_plays_anyway(corridor_bag):
    bag, _ = corridor_bag
    run = subprocess.run(executable("dcreg_bag_player") + [str(bag), "--rate", "50", "--wait", "1", "--wait-for", "/nobody_listens"],
                         cwd=ROOT, timeout=3 * WAIT, capture_output=True, text=True, env=ros_env(new_domain_id()))
    assert run.returncode == 0, run.stderr
    assert "not every subscriber was there (/points, /nobody_listens) after 1 s; playing anyway" in run.stdout
    assert f"done: {FRAMES} clouds" in run.stdout


def test_invalid_wait_for_topic_is_a_usage_error(corridor_bag):
    bag, _ = corridor_bag
    run = subprocess.run(executable("dcreg_bag_player") + [str(bag), "--wait-for", "bad name!"], cwd=ROOT, timeout=WAIT,
                         capture_output=True, text=True, env=ros_env(new_domain_id()))
    assert run.returncode == 2
    assert "--wait-for 'bad name!' is not a valid topic name" in run.stderr and "Traceback" not in run.stderr
