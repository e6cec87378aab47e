"""dcreg_node over the real middleware: in-process (frames, twist, bounded path, bad messages,
stamp outliers and loops, losses, reset, parameters and their descriptors, TF, mounting, the
one-slot buffer, start-up order) and as processes (the shipped params file, two robots in two
namespaces side by side)."""

from __future__ import annotations

import subprocess
import threading
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry as OdometryMsg
from nav_msgs.msg import Path
from rclpy.parameter import Parameter
from sensor_msgs.msg import PointCloud2
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from conftest import box_room
from dcreg_ros.io.pointcloud2 import stamp_to_seconds
from dcreg_ros.nodes import ros_messages as rm
from dcreg_ros.nodes.matching import poll_until
from dcreg_ros.nodes.odometry_node import OdometryNode
from ros_helpers import (WAIT, LATCHED, RELIABLE, ROOT, Probe, ProcessGroup, executable, new_domain_id, ros_context, spinning, stamp_ns,
                         start_process, stop_process, tf2_msgs_available)

pytestmark = pytest.mark.ros

MAX_POINTS = 50_000  # in-process node: small enough to test the "huge cloud" rejection cheaply
PATH_MAX_POSES = 8  # in-process node: a short path bound, reached within the module's tests
ROOM = box_room(6000, seed=1)
STEP = 0.03  # m of sensor motion along x per frame
PERIOD = 0.1  # s between cloud stamps
FAR_FUTURE_SEC = 2147483000  # header.stamp.sec of a driver glitch (January 2038)


class Harness:
    """In-process node + probe in one private domain; stamps and motion advance per frame."""

    def __init__(self, context) -> None:
        overrides = [Parameter("input_qos", value="reliable"), Parameter("max_points", value=MAX_POINTS),
                     Parameter("map_publish_period", value=0.25), Parameter("path_publish_period", value=0.0),
                     Parameter("path_max_poses", value=PATH_MAX_POSES), Parameter("path_history", value="recent")]
        self.node = OdometryNode(context=context, parameter_overrides=overrides)
        self.probe = Probe(context)
        for msg_type, topic, qos in ((OdometryMsg, "dcreg/odometry", RELIABLE), (DiagnosticArray, "/diagnostics", RELIABLE),
                                     (MarkerArray, "dcreg/degeneracy_markers", RELIABLE), (Path, "dcreg/path", LATCHED),
                                     (PointCloud2, "dcreg/cloud_registered", RELIABLE), (PointCloud2, "dcreg/local_map", LATCHED)):
            self.probe.listen(msg_type, topic, qos)
        if tf2_msgs_available():
            from tf2_msgs.msg import TFMessage

            self.probe.listen(TFMessage, "/tf", RELIABLE)
        self.pub = self.probe.node.create_publisher(PointCloud2, "points", RELIABLE)
        self.k = 0
        self.base = 100.0  # s: stamps are base + PERIOD * k (a test that loops moves the base)

    def next_stamp(self) -> float:
        self.k += 1
        return self.base + PERIOD * self.k

    def good_cloud(self, stamp: float | None = None) -> PointCloud2:
        stamp = self.next_stamp() if stamp is None else stamp
        return rm.pointcloud2_msg(ROOM - np.array([STEP * self.k, 0.0, 0.0]), stamp, "lidar")

    def send(self, msg: PointCloud2, topic: str, match, timeout: float = WAIT):
        """Publish and wait for a matching message; publish again once if nothing came (the
        node ignores an exact duplicate of a processed cloud as out of order)."""
        since = self.probe.count(topic)  # only what this message caused
        self.pub.publish(msg)
        got = self.probe.wait_for_message(topic, match, timeout / 2, since)
        if got is None:
            self.pub.publish(msg)
            got = self.probe.wait_for_message(topic, match, timeout / 2, since)
        return got

    def register(self, msg: PointCloud2 | None = None) -> OdometryMsg:
        msg = msg or self.good_cloud()
        ns = stamp_ns(msg.header.stamp)
        odom = self.send(msg, "dcreg/odometry", lambda m: stamp_ns(m.header.stamp) == ns)
        assert odom is not None, "no odometry for a good cloud"
        return odom

    def diagnostic_for(self, needle: str, after: int) -> DiagnosticArray | None:
        msgs = self.probe.messages("/diagnostics")[after:]
        return next((m for m in msgs if needle in m.status[0].message), None)


@pytest.fixture(scope="module")
def harness():
    with ros_context(new_domain_id()) as context:
        h = Harness(context)
        with spinning(context, h.node, h.probe.node):
            poll_until(lambda: h.pub.get_subscription_count() > 0, WAIT)
            yield h
        h.node.destroy_node()
        h.probe.node.destroy_node()


def status_values(diag: DiagnosticArray) -> dict[str, str]:
    return {kv.key: kv.value for kv in diag.status[0].values}


def position(odom: OdometryMsg) -> np.ndarray:
    p = odom.pose.pose.position
    return np.array([p.x, p.y, p.z])


def test_registers_frames_and_publishes_every_output(harness):
    h = harness
    first = h.register()
    odoms = [first] + [h.register() for _ in range(4)]
    x0 = first.pose.pose.position.x
    for j, odom in enumerate(odoms):
        assert odom.header.frame_id == "odom" and odom.child_frame_id == "base_link"
        # the room is well constrained: the odometry follows the simulated motion to ~1 cm
        assert odom.pose.pose.position.x - x0 == pytest.approx(STEP * j, abs=0.01)
        cov = np.asarray(odom.pose.covariance).reshape(6, 6)
        assert np.all(np.isfinite(cov)) and np.allclose(cov, cov.T) and np.all(np.linalg.eigvalsh(cov) > -1e-12)
    last_ns = stamp_ns(odoms[-1].header.stamp)
    cloud = h.probe.wait_for_message("dcreg/cloud_registered", lambda m: stamp_ns(m.header.stamp) == last_ns, WAIT)
    assert cloud is not None
    assert cloud.header.frame_id == "odom" and cloud.width == len(ROOM)
    assert h.probe.wait_for_count("dcreg/path", 2, timeout=WAIT)
    paths = h.probe.messages("dcreg/path")
    assert len(paths[-1].poses) > len(paths[0].poses) >= 1  # the path grows
    assert h.probe.wait_for_count("dcreg/local_map", 1, timeout=WAIT)
    assert h.probe.messages("dcreg/local_map")[-1].width > 1000
    assert h.probe.wait_for_count("/diagnostics", 5, lambda m: "status" in status_values(m), WAIT)
    good = [m for m in h.probe.messages("/diagnostics") if "status" in status_values(m)]
    assert good and good[-1].status[0].level == bytes([rm.OK])
    values = status_values(good[-1])
    for key in ("mask", "degenerate_axes", "kappa_rotation", "kappa_translation", "eigenvalue_x", "iterations",
                "time_total_ms", "dropped_frames", "lost_messages", "stamp_gaps", "stamp_jumps", "sequence_resets",
                "bad_messages", "last_error", "transport", "sensor_period"):
        assert key in values
    assert values["degenerate_axes"] == "none"
    assert int(values["lost_messages"]) == 0 and int(values["stamp_gaps"]) == 0
    # no tf2_ros here: the mounting comes from the parameter, and the diagnostics say why
    assert values["mounting"] == "parameter" and values["mounting_detail"].startswith("lidar_to_base (") and "tf2_ros is not installed" in values["mounting_detail"]
    markers = h.probe.messages("dcreg/degeneracy_markers")
    assert markers and all(len(m.markers) == 1 and m.markers[0].action == m.markers[0].DELETEALL for m in markers)


def test_twist_is_the_velocity_of_the_base_with_a_covariance(harness):
    h = harness
    odoms = [h.register() for _ in range(3)]
    for odom in odoms[1:]:
        v, w = odom.twist.twist.linear, odom.twist.twist.angular
        assert v.x == pytest.approx(STEP / PERIOD, abs=0.05) and abs(v.y) < 0.05 and abs(v.z) < 0.05  # 0.3 m/s along x
        assert max(abs(w.x), abs(w.y), abs(w.z)) < 0.05
        cov = np.asarray(odom.twist.covariance).reshape(6, 6)
        assert np.all(np.isfinite(cov)) and np.allclose(cov, cov.T) and np.all(np.diag(cov) > 0) and cov[0, 0] < 0.01


def test_path_is_bounded(harness):
    h = harness
    odoms = [h.register() for _ in range(PATH_MAX_POSES + 3)]
    last_ns = stamp_ns(odoms[-1].header.stamp)
    path = h.probe.wait_for_message("dcreg/path", lambda m: stamp_ns(m.header.stamp) == last_ns, WAIT)
    assert path is not None and len(path.poses) == PATH_MAX_POSES  # path_history recent: the last poses
    assert stamp_ns(path.poses[-1].header.stamp) == last_ns
    assert [stamp_ns(p.header.stamp) for p in path.poses] == [stamp_ns(o.header.stamp) for o in odoms[-PATH_MAX_POSES:]]


@pytest.mark.skipif(not tf2_msgs_available(), reason="tf2_msgs not built (scripts/build_tf2_msgs.sh)")
def test_tf_carries_odom_to_base_link(harness):
    h = harness
    odom = h.register()
    ns = stamp_ns(odom.header.stamp)
    tf = h.probe.wait_for_message("/tf", lambda m: any(stamp_ns(t.header.stamp) == ns for t in m.transforms), WAIT)
    assert tf is not None
    t = tf.transforms[0]
    assert (t.header.frame_id, t.child_frame_id) == ("odom", "base_link")
    assert t.transform.translation.x == pytest.approx(odom.pose.pose.position.x)


def _bad_clouds(h: Harness) -> list[tuple[str, PointCloud2]]:
    def cloud(points: np.ndarray) -> PointCloud2:
        return rm.pointcloud2_msg(points, h.next_stamp(), "lidar")

    empty = cloud(np.zeros((0, 3)))
    missing = cloud(ROOM)
    missing.fields = [f for f in missing.fields if f.name != "z"]
    short = cloud(ROOM)
    short.data = short.data[: len(short.data) // 2]
    nan = cloud(np.full((500, 3), np.nan))
    huge = cloud(np.random.default_rng(0).normal(size=(MAX_POINTS + 1, 3)) * 10)
    return [("empty", empty), ("missing field(s) z", missing), ("data has", short),
            ("no finite points", nan), ("max_points", huge)]


def test_malformed_clouds_give_error_diagnostics_and_the_node_goes_on(harness):
    h = harness
    h.register()
    for needle, msg in _bad_clouds(h):
        before = len(h.probe.messages("/diagnostics"))
        diag = h.send(msg, "/diagnostics", lambda m, n=needle: n in m.status[0].message)
        assert diag is not None, f"no diagnostic for the '{needle}' cloud"
        status = diag.status[0]
        assert status.level == bytes([rm.ERROR]) and status.message.startswith("bad PointCloud2 skipped")
        assert int(status_values(diag)["bad_messages"]) >= 1 and needle in status_values(diag)["last_error"]
        assert h.diagnostic_for(needle, before) is not None
    assert h.node._worker.is_alive()
    odom = h.register()  # the next good frame registers normally
    assert odom.pose.pose.position.x > 0.0
    assert h.node.counters.bad_messages >= 5


def test_out_of_order_stamp_is_skipped_with_a_diagnostic(harness):
    h = harness
    last = stamp_to_seconds(h.register().header.stamp)
    stale = h.good_cloud(stamp=last - 0.05)
    diag = h.send(stale, "/diagnostics", lambda m: "out-of-order" in m.status[0].message)
    assert diag is not None and diag.status[0].level == bytes([rm.ERROR])
    # the node's odometry is one ordered, reliable stream processed one cloud after the other: an
    # odometry of the stale cloud would arrive before the next cloud's
    h.register()
    assert not any(stamp_to_seconds(m.header.stamp) == last - 0.05 for m in h.probe.messages("dcreg/odometry"))


def test_far_future_stamp_costs_one_frame_not_the_run(harness):
    h = harness
    before = position(h.register())
    jumps = h.node.counters.stamp_jumps
    glitch = h.good_cloud()
    glitch.header.stamp.sec = FAR_FUTURE_SEC
    diag = h.send(glitch, "/diagnostics", lambda m: "held back" in m.status[0].message)
    assert diag is not None and diag.status[0].level == bytes([rm.WARN]) and int(status_values(diag)["stamp_jumps"]) >= jumps + 1
    after = [h.register() for _ in range(3)]  # real clouds go on being registered
    assert not any(m.header.stamp.sec == FAR_FUTURE_SEC for m in h.probe.messages("dcreg/odometry"))
    # tracking continued (no reset): the sensor moved on by about two steps per registered frame
    assert position(after[-1])[0] - before[0] == pytest.approx(STEP * 4, abs=0.02)
    note = h.probe.wait_for_message("/diagnostics", lambda m: "outlier" in status_values(m).get("notes", ""), WAIT)
    assert note is not None and h.node.counters.sequence_resets == 0


def test_looping_stamps_reset_the_odometry_with_a_warning(harness):
    h = harness
    h.register()
    resets = h.node.counters.sequence_resets
    h.base -= 60.0  # the bag starts over: stamps go back by a minute
    held = h.send(h.good_cloud(), "/diagnostics", lambda m: "held back" in m.status[0].message)
    assert held is not None and held.status[0].level == bytes([rm.WARN])
    odom = h.register()
    stamp = stamp_to_seconds(odom.header.stamp)  # the diagnostic of this frame, not of the held one
    diag = h.probe.wait_for_message("/diagnostics", lambda m: abs(float(status_values(m).get("cloud_stamp", "nan")) - stamp) < 1e-6,
                                    WAIT)
    assert diag is not None and diag.status[0].level == bytes([rm.WARN]) and "new sequence" in diag.status[0].message
    assert "odometry reset" in diag.status[0].message
    assert np.allclose(position(odom), 0.0)  # the new sequence defines a new odom frame
    assert h.node.counters.sequence_resets == resets + 1
    second = h.register()
    assert position(second)[0] == pytest.approx(STEP, abs=0.01)


def test_gaps_in_the_stamps_count_the_missing_clouds(harness):
    h = harness
    for _ in range(6):
        h.register()
    gaps = h.node.counters.stamp_gaps
    h.k += 3  # three clouds the sensor sent never arrive
    odom = h.register()
    stamp = stamp_to_seconds(odom.header.stamp)
    diag = h.probe.wait_for_message("/diagnostics", lambda m: abs(float(status_values(m).get("cloud_stamp", "nan")) - stamp) < 1e-6, WAIT)
    assert diag is not None
    assert int(status_values(diag)["stamp_gaps"]) == gaps + 3 and float(status_values(diag)["sensor_period"]) == pytest.approx(PERIOD)


def test_one_slot_buffer_keeps_only_the_newest_cloud(harness):
    """While the worker is busy, newer clouds replace the unprocessed one and count as drops."""
    h = harness
    h.register()
    dropped = h.node.counters.dropped
    clouds = [h.good_cloud() for _ in range(3)]
    with h.node._state_lock:  # the worker blocks inside the first frame, as if registering slowly
        h.node._on_cloud(clouds[0])
        deadline = time.monotonic() + WAIT
        while h.node._worker.busy_slot and time.monotonic() < deadline:
            time.sleep(0.01)  # the worker has taken the first cloud
        h.node._on_cloud(clouds[1])
        h.node._on_cloud(clouds[2])  # replaces the second, unprocessed
    last_ns = stamp_ns(clouds[2].header.stamp)
    assert h.probe.wait_for_message("dcreg/odometry", lambda m: stamp_ns(m.header.stamp) == last_ns, WAIT) is not None
    stamps = {stamp_ns(m.header.stamp) for m in h.probe.messages("dcreg/odometry")}
    assert stamp_ns(clouds[0].header.stamp) in stamps and stamp_ns(clouds[1].header.stamp) not in stamps
    assert h.node.counters.dropped == dropped + 1


def test_reset_service_restarts_map_and_trajectory(harness):
    h = harness
    h.register()
    response = h.probe.call(Trigger, "dcreg/reset", Trigger.Request())
    assert response.success and "cleared" in response.message
    odom = h.register()
    p = odom.pose.pose.position
    assert (p.x, p.y, p.z) == (0.0, 0.0, 0.0)  # a new first frame defines the odom origin
    ns = stamp_ns(odom.header.stamp)
    path = h.probe.wait_for_message("dcreg/path", lambda m: stamp_ns(m.header.stamp) == ns, WAIT)
    assert path is not None and len(path.poses) == 1


def test_runtime_parameter_changes_are_validated(harness):
    h = harness
    name = h.node.get_name()
    bad = h.probe.set_parameters(name, {"degeneracy.strategy": "magic"})
    assert not bad[0].successful and "degeneracy.strategy" in bad[0].reason
    bad = h.probe.set_parameters(name, {"preprocess.max_range": 0.5})
    assert not bad[0].successful and "max_range" in bad[0].reason
    bad = h.probe.set_parameters(name, {"lidar_to_base": [0.0, 1.0]})
    assert not bad[0].successful and "lidar_to_base" in bad[0].reason
    read_only = h.probe.set_parameters(name, {"input_qos": "sensor_data"})
    assert not read_only[0].successful
    assert h.probe.get_parameters(name, ["degeneracy.strategy", "input_qos"]) == {"degeneracy.strategy": "dcreg_prior", "input_qos": "reliable"}

    ok = h.probe.set_parameters(name, {"degeneracy.threshold": 8, "map_publish_period": 4.0})
    assert all(r.successful for r in ok)
    assert h.probe.get_parameters(name, ["degeneracy.threshold"])["degeneracy.threshold"] == 8
    assert h.node.odometry.config.degeneracy.threshold == 8.0 and h.node.settings.map_publish_period == 4.0

    h.register()
    assert h.node.odometry.poses, "frames were registered before the map-changing parameter"
    ok = h.probe.set_parameters(name, {"mapping.voxel_size": 1.2})
    assert ok[0].successful and h.node.odometry.config.mapping.voxel_size == 1.2
    assert not h.node.odometry.poses  # a new voxel size needs a new map: odometry reset
    odom = h.register()
    assert odom.pose.pose.position.x == 0.0


def test_parameter_descriptors_carry_the_validation_rules(harness):
    """What `ros2 param describe` shows, through a real parameter client."""
    from rclpy.parameter_client import AsyncParameterClient

    h = harness
    client = AsyncParameterClient(h.probe.node, h.node.get_fully_qualified_name())
    assert client.wait_for_services(timeout_sec=WAIT)
    names = ["preprocess.max_range", "max_points", "mapping.max_points_per_voxel", "degeneracy.strategy", "path_max_poses"]
    future = client.describe_parameters(names)
    assert poll_until(future.done, WAIT)
    described = {d.name: d for d in future.result().descriptors}
    max_range = described["preprocess.max_range"]
    assert max_range.additional_constraints == "> 0 m" and "local map radius" in max_range.description
    assert max_range.floating_point_range[0].from_value == 0.0 and max_range.floating_point_range[0].to_value == float("inf")
    assert described["max_points"].integer_range[0].from_value == 10
    voxel = described["mapping.max_points_per_voxel"].integer_range[0]
    assert (voxel.from_value, voxel.to_value) == (1, 1000)
    assert described["degeneracy.strategy"].additional_constraints.startswith("one of none, dcreg, dcreg_prior")
    assert not described["degeneracy.strategy"].floating_point_range and not described["degeneracy.strategy"].integer_range
    assert (described["path_max_poses"].integer_range[0].from_value, described["path_max_poses"].integer_range[0].to_value) == (2, 1_000_000)
    # the range is enforced too: an out-of-range value is refused with the bounds
    refused = h.probe.set_parameters(h.node.get_name(), {"mapping.max_points_per_voxel": 5000})
    assert not refused[0].successful and "1000" in refused[0].reason


def test_points_subscription_exists_only_after_the_warm_up():
    """A player that waits for a subscriber must not start into a node still compiling: the
    first moment the node's points subscription is seen, the warm-up is already over."""
    with ros_context(new_domain_id()) as context:
        probe = Probe(context)
        pub = probe.node.create_publisher(PointCloud2, "points", RELIABLE)
        built: dict = {}
        thread = threading.Thread(target=lambda: built.setdefault("node", OdometryNode(context=context)))
        thread.start()
        assert poll_until(lambda: pub.get_subscription_count() > 0, WAIT, period=0.005)
        matched_at = time.monotonic()
        thread.join(timeout=WAIT)
        node = built["node"]
        try:
            assert node.warmed_up_at <= matched_at
        finally:
            node.destroy_node()
            probe.node.destroy_node()


# --------------------------------------------------------------------------- as a process
def test_process_starts_with_the_params_file_and_stops_cleanly(tmp_path):
    override = tmp_path / "override.yaml"
    override.write_text("dcreg_node:\n  ros__parameters:\n    max_points: 123456\n    degeneracy:\n      threshold: 12\n")
    domain = new_domain_id()
    log = tmp_path / "node.log"
    process = start_process(executable("dcreg_node") + ["--ros-args", "--params-file", str(ROOT / "config" / "dcreg.yaml"),
                                                         "--params-file", str(override)], domain, log)
    try:
        with ros_context(domain) as context:
            probe = Probe(context)
            with spinning(context, probe.node):
                values = probe.get_parameters("/dcreg_node", ["max_points", "degeneracy.threshold", "degeneracy.strategy", "input_qos"], timeout=WAIT)
            probe.node.destroy_node()
        assert values == {"max_points": 123456, "degeneracy.threshold": 12, "degeneracy.strategy": "dcreg_prior", "input_qos": "sensor_data"}
    finally:
        code = stop_process(process)
    assert code == 0, log.read_text()
    assert "DCReg odometry on '/points'" in log.read_text()


def test_a_burst_of_sigint_while_stopping_still_exits_0_without_a_traceback(tmp_path):
    """Ctrl-C under ros2 launch reaches a node twice (the terminal's SIGINT to the process group
    and launch's own) and a user may press it again: SIGINT every 10 ms until the node has exited,
    so that signals land during the executor shutdown, destroy_node and the interpreter's exit."""
    domain = new_domain_id()
    run = ProcessGroup(executable("dcreg_node"), domain, tmp_path / "node.log")
    try:
        assert run.wait_for_log("DCReg odometry on '/points'", WAIT), run.text()
        code = run.ctrl_c(repeat_every=0.01)
    finally:
        run.kill()
    text = run.text()
    assert code == 0 and "Traceback" not in text and "Exception ignored" not in text, (code, text)


# "-p" overrides for most; a wrongly typed bool in a node-keyed params file (rcl drops a "-p"
# override whose type differs from a bool or integer the /** params file already gives)
@pytest.mark.parametrize("override, word", [("degeneracy.strategy:=magic", "degeneracy.strategy"),
                                            ("lidar_to_base:=[1.0,2.0]", "lidar_to_base"),
                                            ("preprocess.max_range:=0.5", "max_range"),
                                            ("dcreg_node: {ros__parameters: {publish_tf: 5}}", "publish_tf")])
def test_invalid_startup_parameters_exit_nonzero_with_a_clear_error(tmp_path, override, word):
    log = tmp_path / "node.log"
    if override.startswith("dcreg_node:"):
        (tmp_path / "bad.yaml").write_text(override + "\n")
        extra = ["--params-file", str(tmp_path / "bad.yaml")]
    else:
        extra = ["-p", override]
    process = start_process(executable("dcreg_node") + ["--ros-args", "--params-file", str(ROOT / "config" / "dcreg.yaml"), *extra],
                            new_domain_id(), log)
    try:
        code = process.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        stop_process(process)
        pytest.fail(f"node kept running with {override}")
    text = log.read_text()
    assert code == 1 and "invalid parameter" in text and word in text, text
    assert "Traceback" not in text


def test_refused_scans_a_lost_track_and_its_recovery_reach_the_diagnostics():
    """A node of its own (the module's harness keeps tracking): a cloud of another room is refused
    (WARN, DEGRADED), clouds of noise make the track LOST (ERROR) after ``tracking.lost_after``
    refusals, and the room seen again resumes tracking (OK, with a WARN saying so); the odometry published
    meanwhile comes from the motion model and stays finite."""
    other_room = box_room(6000, size=(20.0, 5.0, 4.0), seed=3)
    noise = np.random.default_rng(0).uniform(-6.0, 6.0, (6000, 3))
    with ros_context(new_domain_id()) as context:
        h = Harness(context)
        try:
            with spinning(context, h.node, h.probe.node):
                assert poll_until(lambda: h.pub.get_subscription_count() > 0, WAIT)
                for _ in range(10):
                    h.register()

                def diagnostic(msg: PointCloud2) -> tuple[int, str, dict[str, str]]:
                    stamp = stamp_to_seconds(msg.header.stamp)
                    diag = h.send(msg, "/diagnostics", lambda m: abs(float(status_values(m).get("cloud_stamp", "nan")) - stamp) < 1e-6)
                    assert diag is not None, f"no diagnostic for the cloud stamped {stamp}"
                    return diag.status[0].level[0], diag.status[0].message, status_values(diag)

                level, text, values = diagnostic(rm.pointcloud2_msg(other_room, h.next_stamp(), "lidar"))
                assert (level, values["tracking"]) == (rm.WARN, "DEGRADED") and text.startswith("scan refused (DEGRADED): inlier share")
                lost_after = h.node.odometry.config.tracking.lost_after
                noisy = [diagnostic(rm.pointcloud2_msg(noise, h.next_stamp(), "lidar")) for _ in range(lost_after + 1)]
                assert [v["tracking"] for _, _, v in noisy] == ["DEGRADED"] * (lost_after - 2) + ["LOST"] * 3
                assert all(level == rm.ERROR and text.startswith("track LOST") for level, text, v in noisy if v["tracking"] == "LOST")
                level, text, values = diagnostic(h.good_cloud())
                assert (level, values["tracking"]) == (rm.WARN, "OK") and text.startswith(f"track resumed after {lost_after + 2} refused scans"), text
                odometry = h.probe.messages("dcreg/odometry")
                assert len(odometry) >= 10 + lost_after + 3 and np.isfinite([position(m) for m in odometry]).all()
        finally:
            h.node.destroy_node()
            h.probe.node.destroy_node()


def test_frame_diagnostic_levels():
    from dcreg_ros.core.degeneracy import analyze_hessian
    from dcreg_ros.core.odometry import FrameRecord
    from dcreg_ros.nodes.odometry_node import frame_diagnostic
    from dcreg_ros.nodes.outputs import FrameTimes

    times = FrameTimes(received=0.0, started=0.001, converted=0.003, odometry=0.020)
    weak_x = analyze_hessian(np.diag([50.0, 60.0, 70.0, 0.05, 45.0, 55.0]))
    well = analyze_hessian(np.diag([50.0, 60.0, 70.0, 40.0, 45.0, 55.0]))
    failed = FrameRecord(3, 1.0, np.eye(4), "too_few_correspondences", degeneracy=well)
    level, text, values = frame_diagnostic(failed, 1.0, times)
    assert level == rm.ERROR and "registration failed (too_few_correspondences)" in text
    level, text, values = frame_diagnostic(FrameRecord(4, 1.1, np.eye(4), "converged", degeneracy=weak_x), 1.1, times)
    assert level == rm.WARN and text.startswith("weakly constrained: x translation") and values["degenerate_axes"] == "x"
    assert values["time_node_ms"] == pytest.approx(19.0) and values["time_queued_ms"] == pytest.approx(1.0)
    level, _, _ = frame_diagnostic(FrameRecord(5, 1.2, np.eye(4), "max_iterations", degeneracy=well), 1.2, times)
    assert level == rm.OK
    level, text, _ = frame_diagnostic(FrameRecord(0, 0.0, np.eye(4), "first_frame"), 0.0, times)
    assert level == rm.OK and "first frame" in text
    restart = FrameRecord(0, 5.0, np.eye(4), "first_frame", sequence_reset=True, notes=("stamps jumped ...: new sequence, odometry reset",))
    level, text, values = frame_diagnostic(restart, 5.0, times)
    assert level == rm.WARN and "new sequence" in text and "new sequence" in values["notes"]
    refused = FrameRecord(6, 1.3, np.eye(4), "converged", degeneracy=well, tracking="DEGRADED", tracking_message="inlier share 0.2")
    level, text, values = frame_diagnostic(refused, 1.3, times)
    assert level == rm.WARN and text.startswith("scan refused (DEGRADED): inlier share 0.2") and values["tracking"] == "DEGRADED"
    lost = FrameRecord(7, 1.4, np.eye(4), "converged", degeneracy=well, tracking="LOST", tracking_message="lost for 5 scans")
    level, text, values = frame_diagnostic(lost, 1.4, times)
    assert level == rm.ERROR and text == "track LOST: lost for 5 scans" and values["tracking"] == "LOST"
    failing = FrameRecord(8, 1.45, np.eye(4), "too_few_correspondences", degeneracy=well, tracking="LOST", tracking_message="lost for 6 scans")
    level, text, _ = frame_diagnostic(failing, 1.45, times)
    assert level == rm.ERROR and text == "track LOST: lost for 6 scans"
    resumed = FrameRecord(8, 1.5, np.eye(4), "converged", degeneracy=weak_x, tracking_message="track resumed after 6 refused scans")
    level, text, _ = frame_diagnostic(resumed, 1.5, times)
    assert level == rm.WARN and text.startswith("track resumed after 6 refused scans; weakly constrained: x")
