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
from test_launch_static import ROOT, calls, entry_points, installed_files, keyword

LAUNCH = ROOT / "launch" / "localization.launch.py"
ARGUMENTS = {"map", "topic", "config", "bagfile", "rviz", "use_sim_time", "map_frame", "odom_frame", "base_frame", "namespace",
             "odometry", "initial_pose_source"}


def test_launch_file_declares_the_arguments_and_starts_the_nodes():
    tree = ast.parse(LAUNCH.read_text(), filename=str(LAUNCH))
    assert ARGUMENTS <= {c.args[0].value for c in calls(tree, "DeclareLaunchArgument")}
    nodes = {keyword(n, "executable").value: n for n in calls(tree, "Node")}
    assert set(nodes) == {"dcreg_localization_node", "dcreg_node", "dcreg_bag_player", "rviz2"}
    scripts = entry_points()
    for exe in ("dcreg_localization_node", "dcreg_node", "dcreg_bag_player"):
        module, function = scripts[exe].split(":")
        assert importlib.util.find_spec(module) is not None and function == "main"
        assert ast.unparse(keyword(nodes[exe], "remappings")) == "[('points', topic)]"
    for node in nodes.values():
        assert ast.unparse(keyword(node, "namespace")) == "namespace"
    params = ast.unparse(keyword(nodes["dcreg_localization_node"], "parameters"))
    assert params.startswith("[config,") and "'map_file'" in params and "use_sim_time" in params
    assert "IfCondition(odometry)" == ast.unparse(keyword(nodes["dcreg_node"], "condition"))
    assert "localization.rviz" in ast.unparse(keyword(nodes["rviz2"], "arguments"))


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
    if importlib.util.find_spec("launch") is None or importlib.util.find_spec("launch_ros") is None:
        pytest.skip("launch/launch_ros not installed here (a full ROS 2 install has them)")
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        get_package_share_directory("dcreg_ros")
    except PackageNotFoundError:
        pytest.skip("dcreg_ros is not installed in an ament prefix (colcon build first)")
    spec = importlib.util.spec_from_file_location("localization_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert ARGUMENTS <= {a.name for a in module.generate_launch_description().get_launch_arguments()}
