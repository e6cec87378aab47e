"""The package as users run it: `ros2 launch` of both launch files (every launch argument), their
`--show-args`, `ros2 param get / describe / set` and `ros2 topic echo / hz` on the running nodes,
`ros2 run`, `ros2 pkg`, and Ctrl-C (SIGINT to the whole process group, as a terminal sends it):
exit status 0, every process "finished cleanly", no traceback, nothing left running.

Real `ros2` from ../shared/ros2_python (make venv installs it) or a sourced ROS 2; skipped with
the reason where neither exists. Each launch runs in a DDS domain of its own.
"""

from __future__ import annotations

import ast
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from ros_helpers import WAIT, ROOT, ProcessGroup, is_diagnostic_of, new_domain_id, ros2_cli, ros2_cli_or_skip_reason, run_ros2

pytestmark = [pytest.mark.ros, pytest.mark.skipif(bool(ros2_cli_or_skip_reason()), reason=ros2_cli_or_skip_reason() or "-")]

FRAMES = 30
LAUNCH_FILES = {"dcreg.launch.py": ROOT / "launch" / "dcreg.launch.py",
                "localization.launch.py": ROOT / "launch" / "localization.launch.py"}


def declared(name: str) -> set[str]:
    """Argument names of a launch file's ARGUMENTS table."""
    tree = ast.parse(LAUNCH_FILES[name].read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "ARGUMENTS" for t in node.targets):
            return {row.elts[0].value for row in node.value.elts}
    raise AssertionError(f"{name} has no ARGUMENTS table")


EXERCISED: dict[str, set[str]] = {name: set() for name in LAUNCH_FILES}  # filled by every launch below
LAUNCHES = 6  # the launches of this file (test_every_launch_argument_was_exercised needs them all)
LAUNCHED: list[str] = []


def launch(name: str, arguments: dict[str, str], domain: int, log: Path) -> ProcessGroup:
    """`ros2 launch dcreg_ros NAME arg:=value ...` started as from a terminal."""
    EXERCISED[name] |= set(arguments)
    LAUNCHED.append(name)
    return ProcessGroup([ros2_cli(), "launch", "dcreg_ros", name, *[f"{k}:={v}" for k, v in arguments.items()]], domain, log)


def assert_clean_stop(run: ProcessGroup, code: int, processes: list[str]) -> None:
    """Exit status 0 after Ctrl-C, each process 'finished cleanly', no traceback, none left running."""
    text = run.text()
    assert code == 0, text[-3000:]
    assert "Traceback" not in text and "process has died" not in text and "KeyboardInterrupt" not in text, text[-3000:]
    for process in processes:
        assert re.search(rf"\[INFO\] \[{process}-\d+\]: process has finished cleanly", text), f"{process}:\n{text[-3000:]}"
    assert not run.left_running, "processes of the launch were still running after it exited"


READY_TOPIC = "/robot1/test/probe_ready"  # the replay's probe subscribes here once matched with the node
DISCOVERY = "3"  # s: `ros2 node list` spins this long to discover the graph (its default, 0.5 s, is short on a loaded machine)


def param_command(verb: str, node: str, *args: str) -> list[str]:
    """`ros2 param VERB` without the ros2 daemon (no process outlives the test), waiting up to 30 s
    for the node to be discovered (it returns as soon as it is)."""
    return ["param", verb, "--no-daemon", "--timeout", "30", node, *args]


def stderr_and_stdout(proc) -> str:
    return proc.stdout + proc.stderr


# ------------------------------------------------------------------------------ data
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A stop-and-go pass through the structured scene with the robot's IMU and wheel odometry
    (ROS 2 bag), a second pass for the map, and the map."""
    from dcreg_ros.io.maps import write_map
    from dcreg_ros.sim import build_scene, simulate, write_simulation
    from dcreg_ros.sim.mapping import map_from_simulation

    root = tmp_path_factory.mktemp("ros2_cli")
    scene = build_scene("structured", length=14.0)
    run = simulate(scene, frames=FRAMES, beams=16, seed=7, motion="stop_and_go")
    survey = simulate(scene, frames=60, beams=16, seed=21)
    bag = write_simulation(run, root / "structured", storage="mcap")
    write_map(root / "map.pcd", map_from_simulation(survey, 0.1).points)
    return {"root": root, "bag": bag, "run": run, "map": root / "map.pcd"}


# ------------------------------------------------------------------------------ --show-args
@pytest.mark.parametrize("name", sorted(LAUNCH_FILES))
def test_show_args_lists_every_argument_with_its_description(name):
    proc = run_ros2(["launch", "dcreg_ros", name, "--show-args"], new_domain_id())
    assert proc.returncode == 0, stderr_and_stdout(proc)
    shown = set(re.findall(r"^    '(\w+)':$", proc.stdout, re.MULTILINE))
    assert shown == declared(name)
    # the params file default is the installed one (the ament prefix ros2 launch found)
    config = re.search(r"'config':\n\s+.*\n\s+\(default: '(.+)'\)", proc.stdout).group(1)
    assert Path(config).resolve() == (ROOT / "config" / ("dcreg.yaml" if name == "dcreg.launch.py" else "localization_node.yaml")).resolve()
    if name == "localization.launch.py":  # map is required: no default shown
        assert re.search(r"'map':\n\s+[^\n]+\n\n", proc.stdout), proc.stdout


# ------------------------------------------------------------------------------ dcreg.launch.py with a bag
@pytest.fixture(scope="module")
def replay(data):
    """dcreg.launch.py replaying the bag in sync mode with every argument that shapes the node:
    namespace, frame prefix and frames, topic / bag_topic, a params file of ours, a Fast DDS
    profile of ours, the IMU and wheel odometry, explicit QoS and sim time, RViz (not installed
    here: a note). A probe records the outputs; the launch keeps running for the ros2 CLI tests."""
    from diagnostic_msgs.msg import DiagnosticArray
    from nav_msgs.msg import Odometry as OdometryMsg
    from ros_helpers import RELIABLE, Probe, ros_context, spinning
    from std_msgs.msg import Empty

    root = data["root"] / "replay"
    root.mkdir()
    params = root / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    degeneracy:\n      threshold: 12.0\n    path_max_poses: 77\n")
    profile = root / "profile.xml"
    profile.write_text((ROOT / "config" / "fastdds_large_shm.xml").read_text())
    arguments = {"bagfile": str(data["bag"]), "sync": "true", "namespace": "robot1", "frame_prefix": "robot1/", "odom_frame": "odom_r",
                 "base_frame": "base_r", "topic": "lidar/points", "bag_topic": "/points", "config": str(params),
                 "fastdds_profile": str(profile), "imu_topic": "/imu", "wheel_odom_topic": "/wheel/odom", "input_qos": "reliable",
                 "use_sim_time": "true", "rviz": "true", "wait": str(int(WAIT)), "wait_for": READY_TOPIC}
    domain = new_domain_id()
    with ros_context(domain) as context:
        # the node publishes each odometry once (reliable, volatile): a message sent before the
        # node's publisher has matched the probe is lost. Subscribing before the launch is not
        # enough (a CI run on a loaded machine: the player found the node, the node had not yet
        # found the probe, the first odometry was missed), so the player waits (wait_for) for a
        # subscriber on READY_TOPIC, which the probe creates once it is matched with the node.
        probe = Probe(context)
        probe.listen(OdometryMsg, "/robot1/dcreg/odometry", RELIABLE)
        probe.listen(DiagnosticArray, "/diagnostics", RELIABLE)
        with spinning(context, probe.node):
            run = launch("dcreg.launch.py", arguments, domain, root / "launch.log")
            record: dict = {"domain": domain, "run": run, "root": root}
            try:
                assert probe.wait_until_matched(["/robot1/dcreg/odometry", "/diagnostics"], WAIT), run.text()[-3000:]
                probe.listen(Empty, READY_TOPIC, RELIABLE)
                # the player exits at the end of the bag; the node goes on running
                assert run.wait_for_log("]: process has finished cleanly", WAIT * 2), run.text()[-3000:]
                assert probe.wait_for_count("/robot1/dcreg/odometry", FRAMES, timeout=WAIT), run.text()[-3000:]
                last = max(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in probe.messages("/robot1/dcreg/odometry"))
                assert probe.wait_for_message("/diagnostics", lambda m: is_diagnostic_of(m, last), WAIT)
                record["odometry"] = probe.messages("/robot1/dcreg/odometry")
                record["diagnostics"] = [{kv.key: kv.value for kv in m.status[0].values} for m in probe.messages("/diagnostics")]
                record["diagnostic_stamps"] = [m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec for m in probe.messages("/diagnostics")]
            except BaseException:
                run.kill()
                raise
        probe.node.destroy_node()
    yield record
    run.kill()  # after a failed test; the Ctrl-C test below stops it first


def test_launch_replays_the_bag_into_the_namespaced_node_with_prefixed_frames(replay):
    run = replay["run"]
    text = run.text()
    assert "DCReg odometry on '/robot1/lidar/points' (QoS reliable), robot1/odom_r -> robot1/base_r" in text, text[-3000:]
    assert re.search(rf"dcreg_bag_player: done: {FRAMES} clouds in [\d.]+ s, 0 sync timeout\(s\)", text), text[-3000:]
    assert "/points -> /robot1/lidar/points (sync with dcreg/odometry" in text  # bag_topic played onto topic
    assert "not every subscriber was there" not in text  # wait_for: the player waited for the probe's READY_TOPIC
    assert re.search(r"\[INFO\] \[dcreg_bag_player-\d+\]: process has finished cleanly", text)
    odometry = replay["odometry"]
    assert len(odometry) == FRAMES
    assert {(m.header.frame_id, m.child_frame_id) for m in odometry} == {("robot1/odom_r", "robot1/base_r")}
    # use_sim_time: the node's clock is the bag's /clock (the diagnostics are stamped with it), not wall time
    first, last = (odometry[i].header.stamp.sec + 1e-9 * odometry[i].header.stamp.nanosec for i in (0, -1))
    assert all(first - 1.0 <= t <= last + 1.0 for t in replay["diagnostic_stamps"]), (first, last, replay["diagnostic_stamps"][:3])


def test_launch_gives_the_node_our_params_file_profile_and_motion_inputs(replay):
    frames = [d for d in replay["diagnostics"] if "prior_source" in d]
    assert len(frames) >= FRAMES
    sources = [d["prior_source"] for d in frames[1:]]
    assert sources.count("imu_wheel") >= 0.8 * len(sources), sources  # imu_topic and wheel_odom_topic reached the node
    profile = str(replay["root"] / "profile.xml")
    assert all(profile in d["transport"] for d in frames)  # fastdds_profile: our file, in the node's environment
    assert int(frames[-1]["imu_messages"]) > 100 and int(frames[-1]["wheel_messages"]) > 20  # replayed by the player too


def test_rviz_argument_without_rviz_installed_is_a_note_and_the_config_follows_the_frames(replay):
    from dcreg_ros.nodes.launch_support import rviz_installed

    if rviz_installed():
        pytest.skip("rviz2 is installed: RViz itself was started (not checked here)")
    text = replay["run"].text()
    note = re.search(r"rviz:=true, but rviz2 is not installed here: RViz is not started \(its config: (\S+)\)", text)
    assert note, text[-3000:]
    config = yaml.safe_load(Path(note.group(1)).read_text())["Visualization Manager"]
    assert config["Global Options"]["Fixed Frame"] == "robot1/odom_r"
    topics = [d["Topic"]["Value"] for d in config["Displays"] if "Topic" in d]
    assert topics and all(t.startswith("/robot1/dcreg/") for t in topics)


def dumped_parameters(node: str, domain: int) -> dict:
    """Every parameter of a running node by `ros2 param dump` ({dotted name: value})."""
    proc = run_ros2(param_command("dump", node), domain)
    assert proc.returncode == 0, stderr_and_stdout(proc)
    (values,) = yaml.safe_load(proc.stdout).values()

    def flat(tree: dict, prefix: str = "") -> dict:
        out = {}
        for key, value in tree.items():
            out.update(flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
        return out

    return flat(values["ros__parameters"])


def test_ros2_param_get_dump_describe_and_set_on_the_running_node(replay):
    domain, node = replay["domain"], "/robot1/dcreg_node"
    values = dumped_parameters(node, domain)
    assert values["degeneracy.threshold"] == 12.0 and values["path_max_poses"] == 77  # our params file (config:=)
    assert values["use_sim_time"] is True and values["input_qos"] == "reliable" and values["frame_prefix"] == "robot1/"
    assert values["motion_prior.imu_topic"] == "/imu" and values["motion_prior.wheel_odom_topic"] == "/wheel/odom"
    described = run_ros2(param_command("describe", node, "preprocess.max_range", "input_qos"), domain)
    assert described.returncode == 0, stderr_and_stdout(described)
    assert "local map radius" in described.stdout and "Min value: 0.0" in described.stdout and "Additional constraints: > 0 m" in described.stdout
    assert re.search(r"Parameter name: input_qos\n(.*\n)*?\s+Read only: true", described.stdout), described.stdout
    ok = run_ros2(param_command("set", node, "degeneracy.threshold", "8.0"), domain)
    assert "Set parameter successful" in ok.stdout, stderr_and_stdout(ok)
    for name, value, reason in (("degeneracy.strategy", "magic", "degeneracy.strategy = 'magic': one of none, dcreg"),
                                ("input_qos", "sensor_data", "read-only parameter: input_qos"),
                                ("mapping.max_points_per_voxel", "5000", "out of range. Min: 1, Max: 1000"),
                                ("motion_prior.imu_topic", "/other", "read-only parameter: motion_prior.imu_topic")):
        refused = run_ros2(param_command("set", node, name, value), domain)
        assert "Setting parameter failed" in stderr_and_stdout(refused) and reason in stderr_and_stdout(refused), stderr_and_stdout(refused)
    got = run_ros2(param_command("get", node, "degeneracy.threshold"), domain)
    assert got.stdout.strip() == "Double value is: 8.0", stderr_and_stdout(got)
    assert dumped_parameters(node, domain)["degeneracy.strategy"] == "dcreg_prior"  # the refusals changed nothing


def pose_at(probe, topic: str, stamp: float):
    """The pose message on ``topic`` stamped ``stamp`` (waiting up to WAIT), or None."""
    return probe.wait_for_message(topic, lambda m: abs(m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec - stamp) < 1e-6, WAIT)


def node_list_showing(node: str, domain: int):
    """`ros2 node list` run again until it lists ``node`` or WAIT passed (each run discovers the
    graph anew for DISCOVERY seconds: on a loaded machine one spin can end before the node is
    discovered); the last run."""
    deadline = time.monotonic() + WAIT
    while True:
        nodes = run_ros2(["node", "list", "--no-daemon", "--spin-time", DISCOVERY], domain)
        if node in nodes.stdout.split() or time.monotonic() > deadline:
            return nodes


def test_ros2_node_list_and_pkg_find_the_installed_package(replay):
    nodes = node_list_showing("/robot1/dcreg_node", replay["domain"])
    assert "/robot1/dcreg_node" in nodes.stdout.split(), stderr_and_stdout(nodes)
    executables = run_ros2(["pkg", "executables", "dcreg_ros"], replay["domain"])
    assert set(executables.stdout.split("\n")) >= {f"dcreg_ros {e}" for e in ("dcreg", "dcreg_node", "dcreg_bag_player",
                                                                             "dcreg_localization_node")}, stderr_and_stdout(executables)


def test_ctrl_c_ends_the_launch_cleanly(replay):
    run = replay["run"]
    assert_clean_stop(run, run.ctrl_c(), ["dcreg_node", "dcreg_bag_player"])


# ------------------------------------------------------------------------------ dcreg.launch.py on a live sensor
def test_live_launch_ros2_topic_echo_and_hz_on_the_outputs(tmp_path):
    """dcreg.launch.py without a bag (a sensor publishes), Fast DDS defaults (fastdds_profile:=none),
    sensor_data QoS, wall time: `ros2 topic echo --once` and `ros2 topic hz` on dcreg/odometry."""
    from sensor_msgs.msg import PointCloud2

    from conftest import box_room
    from dcreg_ros.nodes import ros_messages as rm
    from ros_helpers import RELIABLE, Probe, ros_context, spinning

    domain = new_domain_id()
    run = launch("dcreg.launch.py", {"fastdds_profile": "none", "input_qos": "sensor_data", "use_sim_time": "false"}, domain,
                 tmp_path / "launch.log")
    room = box_room(6000, seed=1)
    stop = threading.Event()
    try:
        assert run.wait_for_log("DCReg odometry on '/points' (QoS sensor_data)", WAIT), run.text()[-3000:]
        assert "running without the large shared-memory Fast DDS profile" in run.text()  # fastdds_profile:=none
        with ros_context(domain) as context:
            probe = Probe(context)
            publisher = probe.node.create_publisher(PointCloud2, "points", RELIABLE)

            def sensor() -> None:  # a 10 Hz LiDAR moving 3 cm per scan, until the CLI checks are done
                k = 0
                while not stop.is_set():
                    publisher.publish(rm.pointcloud2_msg(room - np.array([0.03 * k, 0.0, 0.0]), time.time(), "lidar"))
                    k += 1
                    stop.wait(0.1)

            with spinning(context, probe.node):
                thread = threading.Thread(target=sensor, daemon=True)
                thread.start()
                echo = run_ros2(["topic", "echo", "--once", "--no-daemon", "--spin-time", DISCOVERY, "/dcreg/odometry", "nav_msgs/msg/Odometry"],
                                domain, timeout=WAIT)
                hz = ProcessGroup([ros2_cli(), "topic", "hz", "--window", "20", "/dcreg/odometry"], domain, tmp_path / "hz.log")
                try:
                    rates = hz.wait_for_log("average rate:", WAIT) and poll_rates(hz, 3, WAIT)
                finally:
                    hz.ctrl_c()
                stop.set()
                thread.join(timeout=10.0)
            probe.node.destroy_node()
        code = run.ctrl_c()
    finally:
        stop.set()
        run.kill()
    assert echo.returncode == 0 and "frame_id: odom" in echo.stdout and "child_frame_id: base_link" in echo.stdout, stderr_and_stdout(echo)
    assert rates, hz.text()
    # at most the sensor's 10 Hz; less when the node, busy on a loaded machine, drops clouds (one-slot buffer)
    assert 1.0 < np.median(rates) < 15.0, (rates, hz.text())
    assert_clean_stop(run, code, ["dcreg_node"])


def poll_rates(hz: ProcessGroup, count: int, timeout: float) -> list[float]:
    """The first ``count`` 'average rate' values `ros2 topic hz` printed (waiting up to ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rates = [float(v) for v in re.findall(r"average rate: ([\d.]+)", hz.text())]
        if len(rates) >= count:
            return rates[:count]
        time.sleep(0.2)
    return []


# ------------------------------------------------------------------------------ rate, Ctrl-C during a replay
def test_rate_paces_the_player_and_ctrl_c_stops_a_replay_half_way(data, tmp_path):
    """rate:=0.25 (2.5 clouds/s of a 10 Hz bag; 1.0 would send 10/s); a Ctrl-C while the bag is
    playing stops the player, which says how far it got, and the node: both cleanly."""
    run = launch("dcreg.launch.py", {"bagfile": str(data["bag"]), "rate": "0.25", "player": "dcreg"}, new_domain_id(),
                 tmp_path / "launch.log")
    try:
        assert run.wait_for_log("clouds/s", WAIT), run.text()[-3000:]  # the first progress line, 2 s into the replay
        code = run.ctrl_c()
    finally:
        if run is not None:
            run.kill()
    text = run.text()
    assert "(rate x0.25, QoS reliable)" in text
    progress = re.search(r"(\d+)/30 clouds \(\d+%\), bag time ([\d.]+) s, ([\d.]+) clouds/s", text)
    sent, bag_time, rate = int(progress.group(1)), float(progress.group(2)), float(progress.group(3))
    # the first progress line comes 2 s in: at 0.25x the player sent at most 1 + 5 clouds by then
    # (3 clouds/s; it never runs ahead of the bag's pace, a loaded machine only slows it), at 1x 21
    assert bag_time <= 0.1 * sent and rate < 4.0, progress.group(0)
    stopped = re.search(r"dcreg_bag_player: stopped: (\d+)/30 clouds sent", text)
    assert stopped and sent <= int(stopped.group(1)) < 30, text[-3000:]
    assert_clean_stop(run, code, ["dcreg_node", "dcreg_bag_player"])


# ------------------------------------------------------------------------------ player:=ros2bag
def test_ros2bag_player_is_refused_with_what_to_use_where_rosbag2_is_absent(data, tmp_path):
    from dcreg_ros.nodes.launch_support import ros2bag_installed

    if ros2bag_installed():
        pytest.skip("rosbag2 is installed here: player:=ros2bag runs `ros2 bag play` (not checked here)")
    run = launch("dcreg.launch.py", {"bagfile": str(data["bag"]), "player": "ros2bag"}, new_domain_id(), tmp_path / "launch.log")
    code = run.wait(WAIT)
    text = run.text()
    assert code not in (None, 0), text
    assert "player:=ros2bag needs rosbag2 (`ros2 bag play`), which is not installed here: use player:=dcreg" in text
    assert "Traceback" not in text and "process started" not in text  # refused before anything started


# ------------------------------------------------------------------------------ localization.launch.py
def test_localization_launch_localizes_the_replay_with_wheels_and_imu(data, tmp_path):
    """localization.launch.py with a map, an initial pose from our params file, dcreg_node for
    odom -> base, the IMU and wheel odometry, in a namespace with our frames; ros2 param on the
    localization node; Ctrl-C."""
    from dcreg_ros.core.geometry import pose_error, pose_to_xyz_rpy
    from dcreg_ros.nodes import ros_messages as rm
    from ros_helpers import RELIABLE, Probe, ros_context, spinning
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseWithCovarianceStamped
    from std_msgs.msg import Empty

    truth = data["run"].ground_truth.poses
    params = tmp_path / "localization.yaml"
    params.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"initial_pose": [float(v) for v in pose_to_xyz_rpy(truth[0])],
                                                                   "tracking": {"lost_after": 7}}}}))
    arguments = {"map": str(data["map"]), "bagfile": str(data["bag"]), "config": str(params), "initial_pose_source": "parameter",
                 "odometry": "true", "namespace": "robot2", "topic": "lidar/points", "map_frame": "world", "odom_frame": "odom_l",
                 "base_frame": "base_l", "imu_topic": "/imu", "wheel_odom_topic": "/wheel/odom", "use_sim_time": "true",
                 "rviz": "true", "wait": str(int(WAIT)), "wait_for": "test/probe_ready"}  # in the namespace
    domain = new_domain_id()
    node = "/robot2/dcreg_localization_node"
    run = None

    def own(m) -> bool:  # the localization node's statuses: dcreg_node (odometry:=true) reports 'tracking' too
        return m.status[0].name.endswith("dcreg_localization_node: localization")

    try:
        with ros_context(domain) as context:
            probe = Probe(context)  # matched before the player starts (wait_for, as in the replay fixture)
            probe.listen(PoseWithCovarianceStamped, "/robot2/dcreg/localization/pose", RELIABLE)
            probe.listen(DiagnosticArray, "/diagnostics", RELIABLE)
            with spinning(context, probe.node):
                run = launch("localization.launch.py", arguments, domain, tmp_path / "launch.log")
                assert probe.wait_until_matched(["/robot2/dcreg/localization/pose", "/diagnostics"], WAIT), run.text()[-3000:]
                probe.listen(Empty, "/robot2/test/probe_ready", RELIABLE)
                assert run.wait_for_log("dcreg_bag_player: done:", WAIT * 2), run.text()[-3000:]
                stamp = data["run"].scans[-1].stamp
                last = pose_at(probe, "/robot2/dcreg/localization/pose", stamp)
                final = probe.wait_for_message("/diagnostics", lambda m: own(m) and is_diagnostic_of(m, round(stamp * 1e9)), WAIT)
                poses = probe.messages("/robot2/dcreg/localization/pose")
                diagnostics = [{kv.key: kv.value for kv in m.status[0].values} for m in probe.messages("/diagnostics") if own(m)]
                values = dumped_parameters(node, domain)
                refused = [run_ros2(param_command("set", node, name, value), domain)
                           for name, value in (("map_file", "/elsewhere.pcd"), ("tracking.lost_after", "0"))]
                accepted = run_ros2(param_command("set", node, "tracking.min_fitness", "0.25"), domain)
            probe.node.destroy_node()
        code = run.ctrl_c()
    finally:
        if run is not None:
            run.kill()
    text = run.text()
    assert last is not None, text[-3000:]
    assert last.header.frame_id == "world"
    t_err, r_err = pose_error(rm.matrix_from_pose(last.pose.pose), truth[-1])
    assert t_err < 0.1 and r_err < 1.0, (t_err, r_err)
    # the player plays in real time and a busy node drops the older scan (one-slot buffer): every
    # cloud arrived, each was localized or dropped, and each localized one was published once
    counts = {kv.key: int(kv.value) for kv in final.status[0].values if kv.key in ("received", "processed", "dropped_frames")}
    assert counts["received"] == FRAMES and counts["processed"] + counts["dropped_frames"] == FRAMES, counts
    assert len(poses) == counts["processed"] >= 3, (len(poses), counts)
    frames = [d for d in diagnostics if "tracking" in d]
    assert frames and frames[-1]["tracking"] == "OK"
    assert sum(d.get("prior_source") == "imu_wheel" for d in frames) >= 0.5 * len(frames), [d.get("prior_source") for d in frames]
    assert "motion prior from IMU '/imu' and wheel odometry '/wheel/odom'" in text
    assert "odom -> base_l from the nav_msgs/Odometry topic '/robot2/dcreg/odometry'" in text  # odometry:=true feeds it
    assert "localization.rviz" in text and ("rviz2 is not installed here" in text or "[rviz2-" in text)
    assert {k: values[k] for k in ("map_file", "map_frame", "odom_frame", "base_frame", "motion_prior.wheel_odom_topic",
                                   "motion_prior.imu_topic", "use_sim_time", "input_qos", "initial_pose_source", "tracking.lost_after")} == \
        {"map_file": str(data["map"]), "map_frame": "world", "odom_frame": "odom_l", "base_frame": "base_l",
         "motion_prior.wheel_odom_topic": "/wheel/odom", "motion_prior.imu_topic": "/imu", "use_sim_time": True,
         "input_qos": "reliable", "initial_pose_source": "parameter", "tracking.lost_after": 7}
    assert "read-only parameter: map_file" in stderr_and_stdout(refused[0])
    assert "tracking.lost_after out of range. Min: 1" in stderr_and_stdout(refused[1])
    assert "Set parameter successful" in accepted.stdout, stderr_and_stdout(accepted)
    assert_clean_stop(run, code, ["dcreg_localization_node", "dcreg_node", "dcreg_bag_player"])


def test_localization_launch_global_start_without_odometry(data, tmp_path):
    """initial_pose_source:=global and odometry:=false: the first scan is found in the map by
    global registration; map -> base_link without an odometry (odom_source none via the params file)."""
    from dcreg_ros.core.geometry import pose_error
    from dcreg_ros.nodes import ros_messages as rm
    from ros_helpers import RELIABLE, Probe, ros_context, spinning
    from geometry_msgs.msg import PoseWithCovarianceStamped

    params = tmp_path / "localization.yaml"
    params.write_text("/**:\n  ros__parameters:\n    odom_source: none\n")
    domain = new_domain_id()
    truth = data["run"].ground_truth.poses
    run = None
    try:
        with ros_context(domain) as context:
            probe = Probe(context)  # before the launch: a probe that joins late misses the first poses
            probe.listen(PoseWithCovarianceStamped, "dcreg/localization/pose", RELIABLE)
            with spinning(context, probe.node):
                run = launch("localization.launch.py", {"map": str(data["map"]), "bagfile": str(data["bag"]), "config": str(params),
                                                        "initial_pose_source": "global", "odometry": "false"}, domain,
                             tmp_path / "launch.log")
                assert run.wait_for_log("dcreg_bag_player: done:", WAIT * 2), run.text()[-3000:]
                last = pose_at(probe, "dcreg/localization/pose", data["run"].scans[-1].stamp)
            probe.node.destroy_node()
        code = run.ctrl_c()
    finally:
        if run is not None:
            run.kill()
    text = run.text()
    assert last is not None, text[-3000:]
    assert "initial pose from global" in text and "[dcreg_node-" not in text
    assert pose_error(rm.matrix_from_pose(last.pose.pose), truth[-1])[0] < 0.1
    assert_clean_stop(run, code, ["dcreg_localization_node", "dcreg_bag_player"])


def test_every_launch_argument_was_exercised():
    """Runs after the launches above: every argument of both launch files was given to a real launch."""
    if len(LAUNCHED) < LAUNCHES:
        pytest.skip(f"only {len(LAUNCHED)} of the {LAUNCHES} launches of this file ran in this session")
    missing = {name: sorted(declared(name) - EXERCISED[name]) for name in LAUNCH_FILES}
    assert not any(missing.values()), missing


# ------------------------------------------------------------------------------ ros2 run, Ctrl-C
def test_ros2_run_starts_the_node_and_ctrl_c_stops_it(data, tmp_path):
    domain = new_domain_id()
    run = ProcessGroup([ros2_cli(), "run", "dcreg_ros", "dcreg_localization_node", "--ros-args", "-p", f"map_file:={data['map']}"],
                       domain, tmp_path / "run.log")
    try:
        assert run.wait_for_log("localizing '/points'", WAIT), run.text()
        nodes = node_list_showing("/dcreg_localization_node", domain)
        code = run.ctrl_c()
    finally:
        run.kill()
    assert "/dcreg_localization_node" in nodes.stdout.split(), stderr_and_stdout(nodes)
    assert code == 0 and "Traceback" not in run.text(), run.text()
    player = run_ros2(["run", "dcreg_ros", "dcreg_bag_player", "--help"], new_domain_id())
    assert player.returncode == 0 and player.stdout.startswith("usage: dcreg_bag_player"), stderr_and_stdout(player)
