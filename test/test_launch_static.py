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

from dcreg_ros.nodes import launch_support
from dcreg_ros.nodes.launch_support import LaunchArgumentError, LaunchSettings, rviz_config_text, write_rviz_config
from dcreg_ros.nodes.transport import PROFILE_VARIABLES

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch" / "dcreg.launch.py"
RVIZ = ROOT / "config" / "dcreg.rviz"
ARGUMENTS = {"topic", "config", "bagfile", "bag_topic", "player", "sync", "rate", "wait", "wait_for", "rviz", "use_sim_time", "base_frame",
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
    """{name: default} of the ARGUMENTS table of a launch file (a constant of launch_support, e.g.
    PLAYER_WAIT, as its value; another default that is not a constant, e.g. REQUIRED, as its source text)."""
    def default(value: ast.expr) -> str | None:
        if isinstance(value, ast.Constant):
            return value.value
        return getattr(launch_support, value.id) if isinstance(value, ast.Name) and hasattr(launch_support, value.id) \
            else ast.unparse(value)

    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "ARGUMENTS" for t in node.targets):
            return {row.elts[0].value: default(row.elts[1]) for row in node.value.elts}
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
                   ("launch.substitutions", "LaunchConfiguration"), ("dcreg_ros.nodes.launch_actions", "dcreg_process"),
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


def started_processes(tree: ast.Module) -> dict[str, ast.Call]:
    """{executable: call} of the dcreg_process(...) calls of a launch file (nodes/launch_actions.py)."""
    return {c.args[0].value: c for c in calls(tree, "dcreg_process")}


def test_launch_nodes_are_installed_entry_points_with_namespace_remap_and_the_profile():
    tree = launch_tree()
    by_exe = started_processes(tree)
    assert set(by_exe) == {"dcreg_node", "dcreg_bag_player"}
    scripts = entry_points()
    for exe, node in by_exe.items():
        assert scripts[exe] == f"dcreg_ros.nodes.entry:{exe}"  # runs the node's main after the stop-signal set-up
        assert ast.unparse(keyword(node, "remappings")) == "[('points', settings.topic)]"
        assert ast.unparse(node.args[1]) == "settings.namespace", exe
        assert ast.unparse(keyword(node, "additional_env")) == "env", exe  # the Fast DDS profile, per process
    params = ast.unparse(keyword(by_exe["dcreg_node"], "parameters"))
    assert params == "[settings.config, settings.node_parameters()]"  # params file first, overrides after
    assert ast.unparse(keyword(by_exe["dcreg_bag_player"], "arguments")) == "settings.player_arguments()"
    (rviz,) = calls(tree, "rviz_process")
    assert ast.unparse(rviz) == "rviz_process(str(rviz_config), settings.namespace, settings.sim_time, additional_env=env)"
    (bag_play,) = calls(tree, "ExecuteProcess")
    assert ast.unparse(keyword(bag_play, "cmd")) == "settings.bag_play_command()"
    assert ast.unparse(keyword(bag_play, "additional_env")) == "env"
    text = LAUNCH.read_text()
    assert 'os.path.join(share, "config", "dcreg.yaml")' in text and 'os.path.join(share, "config", "fastdds_large_shm.xml")' in text
    assert 'os.path.join(share, "config", "dcreg.rviz")' in text
    assert "os.environ" not in text  # environment per process, never for the launch process


def test_entry_points_name_the_entry_functions_of_each_node_module():
    """Each ROS executable of setup.py is a function of nodes/entry.py that runs its node
    module's main (the installed executables themselves run in test_ros2_cli.py)."""
    from dcreg_ros.nodes import entry

    scripts = entry_points()
    modules = {"dcreg_node": "odometry_node", "dcreg_localization_node": "localization_node", "dcreg_bag_player": "bag_player"}
    tree = ast.parse(Path(entry.__file__).read_text())
    for exe, module in modules.items():
        assert scripts[exe] == f"dcreg_ros.nodes.entry:{exe}"
        (function,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == exe]
        assert ast.unparse(function.body[-1]) == f"return _run('dcreg_ros.nodes.{module}')"
        spec = importlib.util.find_spec(f"dcreg_ros.nodes.{module}")
        main = [n for n in ast.parse(Path(spec.origin).read_text()).body if isinstance(n, ast.FunctionDef) and n.name == "main"]
        assert main, f"dcreg_ros.nodes.{module} has no main()"


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


def test_our_player_waits_as_long_and_for_the_topics_asked():
    s = LaunchSettings.from_arguments({"bagfile": "/b", "sync": "true", "namespace": "robot1", "wait": "60",
                                       "wait_for": "dcreg/odometry, /rec/ready"})
    assert s.player_arguments() == ["/b", "--sync", "--wait", "60", "--wait-for", "/robot1/dcreg/odometry", "--wait-for", "/rec/ready"]
    for bad in ("-1", "soon", "inf"):
        with pytest.raises(LaunchArgumentError, match="wait:="):
            LaunchSettings.from_arguments({"bagfile": "/b", "wait": bad})


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


def test_the_rviz_config_of_a_launch_is_reused_not_left_behind_in_a_new_directory(tmp_path):
    s = LaunchSettings.from_arguments({"namespace": "/robot2"})
    first = write_rviz_config(RVIZ, s, tmp_path)
    again = write_rviz_config(RVIZ, LaunchSettings.from_arguments({"namespace": "/robot2"}), tmp_path)
    other = write_rviz_config(RVIZ, LaunchSettings.from_arguments({"namespace": "/robot3"}), tmp_path)
    assert first == again != other and sorted(p.name for p in tmp_path.iterdir()) == sorted({first.name, other.name})
    first.write_text("truncated")  # e.g. a launch killed while writing it, with an older version
    assert write_rviz_config(RVIZ, s, tmp_path) == first and yaml.safe_load(first.read_text())["Visualization Manager"]


# --------------------------------------------------------------------------- with launch installed
def installed_share_or_skip() -> Path:
    """share/dcreg_ros of the ament prefix that `ros2 launch` would use; skips the test when
    launch / launch_ros are not installed or dcreg_ros is in no ament prefix (AMENT_PREFIX_PATH
    unset raises OSError)."""
    if importlib.util.find_spec("launch") is None or importlib.util.find_spec("launch_ros") is None:
        pytest.skip("launch/launch_ros not installed here (make venv installs them from ../shared/ros2_python; "
                    "a full ROS 2 install has them)")
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        return Path(get_package_share_directory("dcreg_ros"))
    except (PackageNotFoundError, OSError) as exc:
        pytest.skip(f"dcreg_ros is not installed in an ament prefix ({exc}): make venv lays it out, or colcon build")


def test_launch_description_builds_when_launch_is_installed():
    installed_share_or_skip()
    spec = importlib.util.spec_from_file_location("dcreg_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    names = {a.name for a in description.get_launch_arguments()}
    assert ARGUMENTS <= names
