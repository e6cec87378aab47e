"""launch/localization.launch.py, config/localization.rviz and the localization config files,
checked without ROS 2 launch (launch/launch_ros are only imported when this machine has them)."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys

import pytest
import yaml

from dcreg_ros.core.localization import LocalizationConfig
from dcreg_ros.nodes.launch_support import LaunchArgumentError, LocalizationLaunchSettings
from test_launch_static import ROOT, calls, declared_arguments, entry_points, installed_files, installed_share_or_skip, keyword, \
    started_processes

LAUNCH = ROOT / "launch" / "localization.launch.py"
ARGUMENTS = {"map", "topic", "config", "bagfile", "rviz", "use_sim_time", "map_frame", "odom_frame", "base_frame", "namespace",
             "wait", "wait_for", "odometry", "initial_pose_source", "imu_topic", "wheel_odom_topic"}


def test_launch_file_declares_the_arguments_and_starts_the_nodes():
    tree = ast.parse(LAUNCH.read_text(), filename=str(LAUNCH))
    declared = declared_arguments(tree)
    assert set(declared) == ARGUMENTS
    defaults = LocalizationLaunchSettings()
    assert declared.pop("map") == "REQUIRED" and declared.pop("config") is None  # None: the installed params file
    for name, default in declared.items():
        assert getattr(defaults, name) == default, name
    nodes = started_processes(tree)
    assert set(nodes) == {"dcreg_localization_node", "dcreg_node", "dcreg_bag_player"}
    scripts = entry_points()
    for exe, node in nodes.items():
        assert scripts[exe] == f"dcreg_ros.nodes.entry:{exe}"
        assert ast.unparse(keyword(node, "remappings")) == "points"
        assert ast.unparse(node.args[1]) == "settings.namespace"
    assert "points = [('points', settings.topic)]" in ast.unparse(tree)
    params = ast.unparse(keyword(nodes["dcreg_localization_node"], "parameters"))
    assert params == "[settings.config, settings.localization_parameters()]"
    assert ast.unparse(keyword(nodes["dcreg_bag_player"], "arguments")) == "settings.player_arguments()"
    (rviz,) = calls(tree, "rviz_process")
    assert "localization.rviz" in ast.unparse(rviz) and "settings.namespace" in ast.unparse(rviz)


def test_localization_launch_decisions():
    s = LocalizationLaunchSettings.from_arguments({"map": "/m.pcd", "config": "/c.yaml", "bagfile": "/b", "imu_topic": "/imu",
                                                   "wheel_odom_topic": "/wheel/odom", "map_frame": "world"})
    assert s.sim_time and s.qos == "reliable" and s.start_odometry and not s.show_rviz
    assert s.localization_parameters() == {"map_file": "/m.pcd", "use_sim_time": True, "map_frame": "world",
                                           "initial_pose_source": "topic", "input_qos": "reliable", "base_frame": "base_link",
                                           "odom_frame": "odom", "motion_prior.imu_topic": "/imu",
                                           "motion_prior.wheel_odom_topic": "/wheel/odom"}
    assert s.player_arguments() == ["/b", "--subscribers", "2", "--imu-topic", "/imu", "--wheel-odom-topic", "/wheel/odom"]
    assert s.odometry_parameters() == {"use_sim_time": True, "input_qos": "reliable", "base_frame": "base_link", "odom_frame": "odom"}
    live = LocalizationLaunchSettings.from_arguments({"map": "/m.pcd", "odometry": "false", "use_sim_time": "false"})
    assert not live.sim_time and live.qos == "sensor_data" and not live.start_odometry
    assert "motion_prior.imu_topic" not in live.localization_parameters()  # not given: the params file decides
    assert LocalizationLaunchSettings.from_arguments({"map": "m", "bagfile": "b", "odometry": "false"}).player_arguments() == \
        ["b", "--subscribers", "1"]
    waiting = LocalizationLaunchSettings.from_arguments({"map": "m", "bagfile": "b", "namespace": "r2", "wait": "90",
                                                         "wait_for": "dcreg/localization/pose"})
    assert waiting.player_arguments() == ["b", "--subscribers", "2", "--wait", "90", "--wait-for", "/r2/dcreg/localization/pose"]


@pytest.mark.parametrize("values, word", [({"map": ""}, "map"), ({"map": "m", "odometry": "yes"}, "odometry"),
                                          ({"map": "m", "initial_pose_source": "gps"}, "initial_pose_source"),
                                          ({"map": "m", "wait": "-3"}, "wait"),
                                          ({"map": "m", "rviz": "1"}, "rviz"), ({"map": "m", "use_sim_time": "x"}, "use_sim_time")])
def test_unusable_localization_arguments_are_refused_by_name(values, word):
    with pytest.raises(LaunchArgumentError, match=word):
        LocalizationLaunchSettings.from_arguments(values)


def test_files_are_installed_and_the_configs_match_the_defaults():
    installed = installed_files()
    for relative in ("launch/localization.launch.py", "config/localization_node.yaml", "config/localization.yaml",
                     "config/localization.rviz"):
        assert (ROOT / relative).resolve() in installed, relative
    assert LocalizationConfig.from_yaml(ROOT / "config" / "localization.yaml") == LocalizationConfig()
    # the ROS params file works for `dcreg localize --config` too (node settings are skipped)
    assert LocalizationConfig.from_yaml(ROOT / "config" / "localization_node.yaml") == LocalizationConfig()
    params = yaml.safe_load((ROOT / "config" / "localization_node.yaml").read_text())["/**"]["ros__parameters"]  # any node name
    assert params["map_file"] == "" and params["initial_pose_source"] == "parameter" and params["tracking"]["lost_after"] == 5
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "write_ros_params.py"), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_rviz_config_shows_the_map_the_pose_and_the_markers_and_sets_the_initial_pose():
    manager = yaml.safe_load((ROOT / "config" / "localization.rviz").read_text())["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "map"
    topics = {d["Topic"]["Value"]: d for d in manager["Displays"] if "Topic" in d}
    assert topics["dcreg/map"]["Class"] == "rviz_default_plugins/PointCloud2"
    assert topics["dcreg/map"]["Topic"]["Durability Policy"] == "Transient Local"  # the map is published once
    assert topics["dcreg/localization/pose"]["Class"] == "rviz_default_plugins/PoseWithCovariance"
    assert topics["dcreg/localization/markers"]["Class"] == "rviz_default_plugins/MarkerArray"
    tools = {t["Class"]: t for t in manager["Tools"]}
    assert tools["rviz_default_plugins/SetInitialPose"]["Topic"]["Value"] == "initialpose"


def test_launch_description_builds_when_launch_is_installed():
    installed_share_or_skip()
    spec = importlib.util.spec_from_file_location("localization_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert ARGUMENTS <= {a.name for a in module.generate_launch_description().get_launch_arguments()}
