"""launch/dcreg.launch.py, its decisions (dcreg_ros.nodes.launch_support), config/dcreg.rviz and
their installation, checked without running ROS 2 launch (launch/launch_ros are only imported
when this machine has them)."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from dcreg_ros.nodes.launch_support import LaunchArgumentError, LaunchSettings, rviz_config_text, write_rviz_config
from dcreg_ros.nodes.transport import PROFILE_VARIABLES

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch" / "dcreg.launch.py"
RVIZ = ROOT / "config" / "dcreg.rviz"
ARGUMENTS = {"topic", "config", "bagfile", "bag_topic", "player", "sync", "rate", "rviz", "use_sim_time", "base_frame",
             "odom_frame", "frame_prefix", "namespace", "input_qos", "fastdds_profile",
             "imu_topic", "wheel_odom_topic"}


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


def declared_arguments(tree: ast.Module) -> dict[str, str | None]:
    """{name: default} of the ARGUMENTS table of the launch file."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "ARGUMENTS" for t in node.targets):
            return {row.elts[0].value: row.elts[1].value for row in node.value.elts}
    raise AssertionError("no ARGUMENTS table in the launch file")


def entry_points() -> dict[str, str]:
    """console_scripts of setup.py: {name: 'module:function'}."""
    text = (ROOT / "setup.py").read_text()
    return dict(re.findall(r'"([\w-]+)\s*=\s*([\w.]+:\w+)"', text))


# --------------------------------------------------------------------------- the launch file
def test_launch_file_declares_the_arguments_and_uses_the_ros2_launch_api():
    tree = launch_tree()
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert "generate_launch_description" in functions
    imported = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    for needed in [("launch", "LaunchDescription"), ("launch.actions", "DeclareLaunchArgument"),
                   ("launch.actions", "ExecuteProcess"), ("launch.actions", "OpaqueFunction"),
                   ("launch.substitutions", "LaunchConfiguration"), ("launch_ros.actions", "Node"),
                   ("ament_index_python.packages", "get_package_share_directory"),
                   ("dcreg_ros.nodes.launch_support", "LaunchSettings")]:
        assert needed in imported, needed
    declared = declared_arguments(tree)
    assert set(declared) == ARGUMENTS
    # every argument's default is LaunchSettings' default (None: an installed path filled in at launch)
    defaults = LaunchSettings()
    for name, default in declared.items():
        if default is not None:
            assert getattr(defaults, name) == default, name
    assert {n for n, d in declared.items() if d is None} == {"config", "fastdds_profile"}
    assert calls(tree, "DeclareLaunchArgument") and calls(tree, "OpaqueFunction")


def test_launch_nodes_are_installed_entry_points_with_namespace_remap_and_the_profile():
    tree = launch_tree()
    nodes = calls(tree, "Node")
    by_exe = {keyword(n, "executable").value: n for n in nodes}
    assert set(by_exe) == {"dcreg_node", "dcreg_bag_player", "rviz2"}
    scripts = entry_points()
    for exe in ("dcreg_node", "dcreg_bag_player"):
        assert keyword(by_exe[exe], "package").value == "dcreg_ros"
        module, function = scripts[exe].split(":")
        assert importlib.util.find_spec(module) is not None, module
        assert function == "main"
        assert ast.unparse(keyword(by_exe[exe], "remappings")) == "[('points', settings.topic)]"
    for exe, node in by_exe.items():
        assert ast.unparse(keyword(node, "namespace")) == "settings.namespace", exe
        assert ast.unparse(keyword(node, "additional_env")) == "env", exe  # the Fast DDS profile, per process
    params = ast.unparse(keyword(by_exe["dcreg_node"], "parameters"))
    assert params == "[settings.config, settings.node_parameters()]"  # params file first, overrides after
    assert ast.unparse(keyword(by_exe["dcreg_bag_player"], "arguments")) == "settings.player_arguments()"
    assert "rviz_config" in ast.unparse(keyword(by_exe["rviz2"], "arguments"))
    (bag_play,) = calls(tree, "ExecuteProcess")
    assert ast.unparse(keyword(bag_play, "cmd")) == "settings.bag_play_command()"
    assert ast.unparse(keyword(bag_play, "additional_env")) == "env"
    text = LAUNCH.read_text()
    assert 'os.path.join(share, "config", "dcreg.yaml")' in text and 'os.path.join(share, "config", "fastdds_large_shm.xml")' in text
    assert 'os.path.join(share, "config", "dcreg.rviz")' in text
    assert "os.environ" not in text  # environment per process, never for the launch process


@pytest.mark.ros  # imports the nodes (rclpy)
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


def test_config_rviz_and_profile_files_exist_and_are_installed_by_setup_py():
    installed = installed_files()
    for relative in ("launch/dcreg.launch.py", "config/dcreg.yaml", "config/dcreg.rviz", "config/fastdds_large_shm.xml"):
        assert (ROOT / relative).is_file(), relative
        assert (ROOT / relative).resolve() in installed, f"{relative} is not installed by setup.py"
    params = yaml.safe_load((ROOT / "config" / "dcreg.yaml").read_text())
    assert "ros__parameters" in params["/**"]


# --------------------------------------------------------------------------- its decisions
def test_live_sensor_defaults():
    s = LaunchSettings.from_arguments({"config": "/share/dcreg.yaml"})
    assert not s.has_bag and not s.sim_time and s.qos == "sensor_data" and not s.show_rviz
    assert s.node_parameters() == {"use_sim_time": False, "base_frame": "base_link", "odom_frame": "odom", "frame_prefix": "",
                                   "input_qos": "sensor_data"}
    assert s.resolved_topic() == "/points" and s.fixed_frame == "odom"
    env = s.process_environment()
    assert set(env) == set(PROFILE_VARIABLES) and env[PROFILE_VARIABLES[0]].endswith("fastdds_large_shm.xml")
    assert LaunchSettings.from_arguments({"fastdds_profile": "none"}).process_environment() == {}
    assert LaunchSettings.from_arguments({"fastdds_profile": "/etc/p.xml"}).process_environment() == dict.fromkeys(PROFILE_VARIABLES, "/etc/p.xml")


def test_our_player_gets_topic_sync_and_rate_and_a_reliable_node():
    s = LaunchSettings.from_arguments({"bagfile": "/data/run", "bag_topic": "/os/points", "sync": "true"})
    assert s.sim_time and s.qos == "reliable"
    assert s.player_arguments() == ["/data/run", "--topic", "/os/points", "--sync"]
    s = LaunchSettings.from_arguments({"bagfile": "/data/run", "rate": "2", "use_sim_time": "false", "input_qos": "sensor_data"})
    assert s.player_arguments() == ["/data/run", "--rate", "2"] and not s.sim_time and s.qos == "sensor_data"


def test_ros2_bag_play_with_clock_remapped_into_the_namespace():
    s = LaunchSettings.from_arguments({"bagfile": "/data/run", "player": "ros2bag", "bag_topic": "/ouster/points",
                                       "namespace": "robot1", "topic": "lidar/points", "rate": "0.5"})
    assert s.bag_play_command() == ["ros2", "bag", "play", "/data/run", "--clock", "--rate", "0.5", "--topics", "/ouster/points",
                                    "/tf_static", "--remap", "/ouster/points:=/robot1/lidar/points"]
    assert s.sim_time and s.qos == "sensor_data"  # ros2 bag play offers the recorded QoS: match anything
    assert LaunchSettings.from_arguments({"bagfile": "b", "player": "ros2bag"}).bag_play_command() == \
        ["ros2", "bag", "play", "b", "--clock", "--rate", "1.0"]


def test_imu_and_wheel_topics_reach_the_node_and_both_players():
    values = {"bagfile": "/data/run", "bag_topic": "/os/points", "imu_topic": "/imu", "wheel_odom_topic": "/wheel/odom"}
    s = LaunchSettings.from_arguments(values)
    params = s.node_parameters()
    assert params["motion_prior.imu_topic"] == "/imu" and params["motion_prior.wheel_odom_topic"] == "/wheel/odom"
    assert s.player_arguments()[-4:] == ["--imu-topic", "/imu", "--wheel-odom-topic", "/wheel/odom"]
    command = LaunchSettings.from_arguments({**values, "player": "ros2bag"}).bag_play_command()
    topics = command[command.index("--topics") + 1:command.index("--remap")]
    assert topics == ["/os/points", "/imu", "/wheel/odom", "/tf_static"]  # mountings come from the bag too
    only_imu = LaunchSettings.from_arguments({"imu_topic": "/imu"}).node_parameters()
    assert "motion_prior.wheel_odom_topic" not in only_imu  # not given: the params file decides


@pytest.mark.parametrize("values, word", [({"player": "rosbag"}, "player"), ({"sync": "yes"}, "sync"), ({"rate": "0"}, "rate"),
                                          ({"rate": "fast"}, "rate"), ({"rviz": "1"}, "rviz"),
                                          ({"player": "ros2bag", "sync": "true"}, "sync"), ({"input_qos": "best"}, "input_qos"),
                                          ({"use_sim_time": "maybe"}, "use_sim_time")])
def test_unusable_arguments_are_refused_by_name(values, word):
    with pytest.raises(LaunchArgumentError, match=word):
        LaunchSettings.from_arguments(values)


# --------------------------------------------------------------------------- RViz
def test_shipped_rviz_config_shows_every_output_in_the_odom_frame():
    rviz = yaml.safe_load(RVIZ.read_text())
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


def test_generated_rviz_config_follows_odom_frame_prefix_and_namespace(tmp_path):
    s = LaunchSettings.from_arguments({"odom_frame": "world_odom", "frame_prefix": "robot2/", "namespace": "/robot2"})
    path = write_rviz_config(RVIZ, s, tmp_path)
    generated = yaml.safe_load(path.read_text())
    original = yaml.safe_load(RVIZ.read_text())
    manager = generated["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "robot2/world_odom"
    topics = [d["Topic"]["Value"] for d in manager["Displays"] if "Topic" in d]
    assert topics and all(t.startswith("/robot2/dcreg/") for t in topics)
    # nothing else changed
    assert [d["Class"] for d in manager["Displays"]] == [d["Class"] for d in original["Visualization Manager"]["Displays"]]
    assert generated["Panels"] == original["Panels"]
    plain = yaml.safe_load(rviz_config_text(RVIZ.read_text(), "odom"))
    assert plain == original


# --------------------------------------------------------------------------- with launch installed
def test_launch_description_builds_when_launch_is_installed():
    if importlib.util.find_spec("launch") is None or importlib.util.find_spec("launch_ros") is None:
        pytest.skip("launch/launch_ros not installed here (a full ROS 2 install has them)")
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        get_package_share_directory("dcreg_ros")
    except (PackageNotFoundError, OSError):
        pytest.skip("dcreg_ros is not installed in an ament prefix (colcon build first)")
    spec = importlib.util.spec_from_file_location("dcreg_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    names = {a.name for a in description.get_launch_arguments()}
    assert ARGUMENTS <= names
