"""Message builders and the covariance conversion of dcreg_ros.nodes.ros_messages (no middleware)."""

from __future__ import annotations

import array
import sys

import numpy as np
import pytest

from dcreg_ros.core.degeneracy import analyze_hessian
from dcreg_ros.core.covariance import BaseTwist
from dcreg_ros.core.geometry import pose_from_xyz_rpy
from dcreg_ros.io.pointcloud2 import pointcloud2_to_scan, stamp_to_seconds
from dcreg_ros.io.trajectory import quaternion_to_rotation
from dcreg_ros.nodes import ros_messages as rm
from dcreg_ros.nodes.parameters import NodeSettings, descriptor, parameter_specs, ros_params_yaml, rule_range, settings_from_values
from dcreg_ros.core.config_io import ConfigError

pytestmark = pytest.mark.ros


def corridor_report(weak_axis: int = 3):
    """Report of a Hessian that is weak along one axis (rotation first), well above the threshold."""
    H = np.diag([50.0, 60.0, 70.0, 40.0, 45.0, 55.0])
    H[weak_axis, weak_axis] = 0.05
    return analyze_hessian(H)


# --------------------------------------------------------------------------- messages
def test_pointcloud2_round_trip_through_the_reader():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(500, 3)) * 10
    times = np.linspace(0.0, 0.1, 500)
    msg = rm.pointcloud2_msg(points, 12.5, "lidar", times, np.arange(500.0))
    assert isinstance(msg.data, array.array) and msg.width == 500 and msg.row_step == 500 * msg.point_step
    assert [f.name for f in msg.fields] == ["x", "y", "z", "intensity", "t"]
    scan = pointcloud2_to_scan(msg)
    assert scan.frame_id == "lidar" and scan.stamp == pytest.approx(12.5)
    assert np.allclose(scan.points, points, atol=1e-5 * 30)
    assert np.allclose(scan.times, times, atol=1e-7)


def test_odometry_pose_transform_messages():
    T = pose_from_xyz_rpy(1.0, 2.0, 3.0, 0.1, -0.2, 2.5)
    cov = np.arange(36.0).reshape(6, 6)
    msg = rm.odometry_msg(T, cov, 1700000000.25, "odom", "base_link")
    assert msg.header.frame_id == "odom" and msg.child_frame_id == "base_link"
    assert stamp_to_seconds(msg.header.stamp) == pytest.approx(1700000000.25)
    q = msg.pose.pose.orientation
    assert np.allclose(quaternion_to_rotation(q.x, q.y, q.z, q.w), T[:3, :3])
    assert (msg.pose.pose.position.x, msg.pose.pose.position.y, msg.pose.pose.position.z) == (1.0, 2.0, 3.0)
    assert np.array_equal(np.asarray(msg.pose.covariance), cov.reshape(36))  # row-major 6x6
    unknown = np.asarray(msg.twist.covariance).reshape(6, 6)  # no twist given: zero, uninformative
    assert np.all(np.diag(unknown) >= 1e6) and msg.twist.twist.linear.x == 0.0
    twist = BaseTwist(np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.2, 0.3]), np.diag([1.0, 2, 3, 4, 5, 6]))
    moving = rm.odometry_msg(T, cov, 1.0, "odom", "base_link", twist)
    v, w = moving.twist.twist.linear, moving.twist.twist.angular
    assert (v.x, v.y, v.z, w.x, w.y, w.z) == (1.0, 2.0, 3.0, 0.1, 0.2, 0.3)
    assert np.array_equal(np.asarray(moving.twist.covariance), np.diag([1.0, 2, 3, 4, 5, 6]).reshape(36))
    tf = rm.transform_msg(T, msg.header.stamp, "odom", "base_link")
    assert tf.child_frame_id == "base_link" and tf.transform.translation.z == 3.0
    assert tf.transform.rotation.w == pytest.approx(q.w)
    assert rm.pose_stamped_msg(T, 3.0, "odom").pose.position.y == 2.0


def test_diagnostics_message_levels_and_values():
    report = corridor_report(3)
    values = rm.degeneracy_values(report)
    assert values["degenerate_axes"] == "x" and "x=1" in values["mask"] and "roll=0" in values["mask"]
    assert values["eigenvalue_x"] == pytest.approx(report.eigenvalues_translation[0])
    msg = rm.diagnostics_msg(rm.time_msg(5.0), rm.WARN, "dcreg_node: odometry", report.describe(), "lidar", values)
    status = msg.status[0]
    assert status.level == bytes([rm.WARN]) and status.message.startswith("weakly constrained: x translation")
    kv = {v.key: v.value for v in status.values}
    assert kv["degenerate_axes"] == "x" and float(kv["kappa_translation"]) > 10


def test_markers_point_along_the_degenerate_axis_in_odom():
    report = corridor_report(3)
    T = pose_from_xyz_rpy(5.0, 1.0, 0.0, 0.0, 0.0, np.pi / 2)  # sensor x along odom y
    markers = rm.degeneracy_markers(report, T, 1.0, "odom").markers
    assert markers[0].action == markers[0].DELETEALL
    arrows = [m for m in markers if m.type == m.ARROW and m.action == m.ADD]
    assert len(arrows) == 2
    for m in arrows:
        start, end = m.points
        d = np.array([end.x - start.x, end.y - start.y, end.z - start.z])
        assert (start.x, start.y) == (5.0, 1.0)
        assert abs(d[1]) / np.linalg.norm(d) > 0.99  # along odom y
    text = [m for m in markers if m.type == m.TEXT_VIEW_FACING]
    assert text and "x" in text[0].text
    assert all(m.header.frame_id == "odom" for m in markers)


def test_markers_ring_for_rotation_and_clear_when_constrained():
    ring = [m for m in rm.degeneracy_markers(corridor_report(2), np.eye(4), 1.0, "odom").markers if m.type == 4]
    assert len(ring) == 1 and len(ring[0].points) > 10  # LINE_STRIP around yaw
    well = analyze_hessian(np.diag([50.0, 60.0, 70.0, 40.0, 45.0, 55.0]))
    only = rm.degeneracy_markers(well, np.eye(4), 1.0, "odom").markers
    assert len(only) == 1 and only[0].action == only[0].DELETEALL


# --------------------------------------------------------------------------- parameters
def test_every_config_parameter_is_declared_with_a_description():
    specs = {s.name: s for s in parameter_specs()}
    assert specs["preprocess.min_range"].default == 1.0 and specs["degeneracy.strategy"].default == "dcreg_prior"
    assert specs["lidar_to_base"].default == [0.0] * 6 and specs["input_qos"].read_only
    assert all(s.description for s in specs.values())


def test_settings_validation_names_the_parameter():
    values = {s.name: s.default for s in parameter_specs()}
    config, settings = settings_from_values(values)
    assert settings == NodeSettings() and config.degeneracy.strategy == "dcreg_prior"
    for name, bad, word in (("degeneracy.strategy", "magic", "degeneracy.strategy"), ("input_qos", "fast", "input_qos"),
                            ("lidar_to_base", [0.0, 1.0], "lidar_to_base"), ("preprocess.max_range", 0.5, "max_range"),
                            ("max_points", 3, "max_points")):
        with pytest.raises(ConfigError, match=word):
            settings_from_values({**values, name: bad})
    # integers are accepted for floating-point parameters
    config, settings = settings_from_values({**values, "preprocess.max_range": 50, "lidar_to_base": [0, 0, 1, 0, 0, 0]})
    assert config.preprocess.max_range == 50.0 and settings.lidar_to_base == (0.0, 0.0, 1.0, 0.0, 0.0, 0.0)


def test_shipped_params_file_is_generated_from_the_defaults():
    import yaml
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    text = (root / "config" / "dcreg.yaml").read_text()
    assert text.split("/**:", 1)[1] == ros_params_yaml().split("/**:", 1)[1], \
        "config/dcreg.yaml is stale: run python scripts/write_ros_params.py"
    params = yaml.safe_load(text)["/**"]["ros__parameters"]  # any node name: renamed or namespaced nodes too
    assert params["degeneracy"]["strategy"] == "dcreg_prior" and params["input_qos"] == "sensor_data"
    assert params["stamps"]["max_jump"] == 10.0 and params["path_max_poses"] == 2000


@pytest.mark.parametrize("rule, integer, expected", [
    (">= 0 m", False, (0.0, float("inf"))), ("> 0 m", False, (0.0, float("inf"))), (">= 10", True, (10, sys.maxsize)),
    ("> 1", True, (2, sys.maxsize)), ("between 1 and 1000", True, (1, 1000)), ("in [0, 1]", False, (0.0, 1.0)),
    ("in [0, 1)", False, (0.0, 1.0)), ("one of none, dcreg", False, None), ("6 finite numbers: x y z roll pitch yaw", False, None)])
def test_rules_become_ranges_where_they_are_ranges(rule, integer, expected):
    assert rule_range(rule, integer) == expected


def test_descriptors_carry_rule_range_and_description():
    specs = {s.name: s for s in parameter_specs()}
    d = descriptor(specs["preprocess.max_range"])
    assert d.additional_constraints == "> 0 m" and d.dynamic_typing and not d.integer_range
    assert (d.floating_point_range[0].from_value, d.floating_point_range[0].to_value) == (0.0, float("inf"))
    d = descriptor(specs["max_points"])
    assert d.integer_range[0].from_value == 10 and d.integer_range[0].to_value == sys.maxsize and not d.dynamic_typing
    d = descriptor(specs["input_qos"])
    assert d.read_only and d.additional_constraints == "sensor_data or reliable" and not d.floating_point_range
    assert descriptor(specs["publish_tf"]).additional_constraints == ""
    # every rule that states a range gets one; every parameter with a rule shows it
    for spec in specs.values():
        d = descriptor(spec)
        assert d.additional_constraints == spec.rule and d.description == spec.description
        numeric = isinstance(spec.default, (int, float)) and not isinstance(spec.default, bool)
        if numeric and rule_range(spec.rule, isinstance(spec.default, int)) is not None:
            assert d.integer_range or d.floating_point_range, spec.name
