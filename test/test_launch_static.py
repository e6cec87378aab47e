"""launch/dcreg.launch.py, config/dcreg.rviz and their installation, checked without running
ROS 2 launch (launch/launch_ros are only imported when this machine has them)."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch" / "dcreg.launch.py"
ARGUMENTS = {"topic", "config", "bagfile", "rviz", "use_sim_time", "base_frame", "odom_frame"}


def launch_tree() -> ast.Module:
    return ast.parse(LAUNCH.read_text(), filename=str(LAUNCH))


def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    def called(node: ast.Call) -> str:
        f = node.func
        return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""

    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and called(n) == name]


def keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def entry_points() -> dict[str, str]:
    """console_scripts of setup.py: {name: 'module:function'}."""
    text = (ROOT / "setup.py").read_text()
    return dict(re.findall(r'"([\w-]+)\s*=\s*([\w.]+:\w+)"', text))


def test_launch_file_declares_the_arguments_and_uses_the_ros2_launch_api():
    tree = launch_tree()
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert "generate_launch_description" in functions
    imported = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    for needed in [("launch", "LaunchDescription"), ("launch.actions", "DeclareLaunchArgument"),
                   ("launch.conditions", "IfCondition"), ("launch.substitutions", "LaunchConfiguration"),
                   ("launch_ros.actions", "Node"), ("ament_index_python.packages", "get_package_share_directory")]:
        assert needed in imported, needed
    declared = {c.args[0].value for c in calls(tree, "DeclareLaunchArgument")}
    assert ARGUMENTS <= declared


def test_launch_nodes_are_installed_entry_points_with_conditions_and_remaps():
    nodes = calls(launch_tree(), "Node")
    by_exe = {keyword(n, "executable").value: n for n in nodes}
    assert set(by_exe) == {"dcreg_node", "dcreg_bag_player", "rviz2"}
    scripts = entry_points()
    for exe in ("dcreg_node", "dcreg_bag_player"):
        assert keyword(by_exe[exe], "package").value == "dcreg_ros"
        module, function = scripts[exe].split(":")
        assert importlib.util.find_spec(module) is not None, module
        assert function == "main"
        remap = keyword(by_exe[exe], "remappings")
        assert remap is not None and ast.unparse(remap) == "[('points', topic)]"
    assert keyword(by_exe["dcreg_node"], "condition") is None
    assert "IfCondition(have_bag)" == ast.unparse(keyword(by_exe["dcreg_bag_player"], "condition"))
    assert "IfCondition(rviz)" == ast.unparse(keyword(by_exe["rviz2"], "condition"))
    assert "dcreg.rviz" in ast.unparse(keyword(by_exe["rviz2"], "arguments"))
    params = ast.unparse(keyword(by_exe["dcreg_node"], "parameters"))
    assert params.startswith("[config,") and "use_sim_time" in params  # params file first, overrides after


def test_entry_points_have_callable_mains():
    from dcreg_ros.nodes import bag_player, odometry_node

    assert callable(odometry_node.main) and callable(bag_player.main)
    assert entry_points()["dcreg_node"] == "dcreg_ros.nodes.odometry_node:main"
    assert entry_points()["dcreg_bag_player"] == "dcreg_ros.nodes.bag_player:main"


def installed_files() -> set[Path]:
    """Files matched by the glob(...) patterns of setup.py's data_files (share/dcreg_ros)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    patterns = [c.args[0].value for c in calls(tree, "glob") if c.args and isinstance(c.args[0], ast.Constant)]
    return {p.resolve() for pattern in patterns for p in ROOT.glob(pattern)}


def test_config_and_rviz_files_exist_and_are_installed_by_setup_py():
    installed = installed_files()
    for relative in ("launch/dcreg.launch.py", "config/dcreg.yaml", "config/dcreg.rviz"):
        assert (ROOT / relative).is_file(), relative
        assert (ROOT / relative).resolve() in installed, f"{relative} is not installed by setup.py"
    text = LAUNCH.read_text()
    assert 'os.path.join(share, "config", "dcreg.yaml")' in text and 'os.path.join(share, "config", "dcreg.rviz")' in text
    params = yaml.safe_load((ROOT / "config" / "dcreg.yaml").read_text())
    assert "ros__parameters" in params["dcreg_node"]


def test_rviz_config_shows_every_output_in_the_odom_frame():
    rviz = yaml.safe_load((ROOT / "config" / "dcreg.rviz").read_text())
    manager = rviz["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "odom"
    topics = {d["Class"]: [] for d in manager["Displays"]}
    for d in manager["Displays"]:
        if "Topic" in d:
            topics[d["Class"]].append(d["Topic"]["Value"])
    assert topics["rviz_default_plugins/Odometry"] == ["/dcreg/odometry"]
    assert topics["rviz_default_plugins/Path"] == ["/dcreg/path"]
    assert set(topics["rviz_default_plugins/PointCloud2"]) == {"/dcreg/cloud_registered", "/dcreg/local_map"}
    assert topics["rviz_default_plugins/MarkerArray"] == ["/dcreg/degeneracy_markers"]


def test_launch_description_builds_when_launch_is_installed():
    if importlib.util.find_spec("launch") is None or importlib.util.find_spec("launch_ros") is None:
        pytest.skip("launch/launch_ros not installed here (a full ROS 2 install has them)")
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        get_package_share_directory("dcreg_ros")
    except PackageNotFoundError:
        pytest.skip("dcreg_ros is not installed in an ament prefix (colcon build first)")
    spec = importlib.util.spec_from_file_location("dcreg_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    names = {a.name for a in description.get_launch_arguments()}
    assert ARGUMENTS <= names
