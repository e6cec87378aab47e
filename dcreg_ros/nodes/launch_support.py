"""What launch/dcreg.launch.py and launch/localization.launch.py start, decided from their
arguments without the launch library.

Each launch file resolves its arguments to strings and hands them to :class:`LaunchSettings` /
:class:`LocalizationLaunchSettings`, which validate them and derive everything the processes
need: the nodes' parameter overrides, the player's command line (``dcreg_bag_player`` or, on a
full ROS install, ``ros2 bag play --clock``), the per-process environment with the Fast DDS
profile, an RViz config whose fixed frame and topics follow the odom frame, the frame prefix and
the namespace, and what is missing on this machine (rosbag2 for ``player:=ros2bag``, RViz).
Plain Python (no launch, no rclpy), so it is tested here and used unchanged on a robot.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from .transport import profile_environment

PLAYERS = ("dcreg", "ros2bag")
PLAYER_WAIT = "10"  # s: how long dcreg_bag_player waits for its subscribers by default (its --wait default)
WAIT_HELP = "dcreg player: seconds to wait for the nodes (and the wait_for topics) before playing anyway"
WAIT_FOR_HELP = ("dcreg player: topics (comma-separated; relative: in the namespace) that must each have a subscriber "
                 "before the replay starts, e.g. a recorder of the outputs (a message sent before a match is lost)")
BOOLEANS = {"true": True, "false": False}
RVIZ_TOPIC_PREFIX = "/dcreg/"
INITIAL_POSE_SOURCES = ("parameter", "topic", "global")  # of dcreg_localization_node (localization_parameters.py)


class LaunchArgumentError(ValueError):
    """A launch argument with a value the launch file cannot use."""


def ros2bag_installed() -> bool:
    """``ros2 bag`` (rosbag2's ros2cli verb) is importable here."""
    return importlib.util.find_spec("ros2bag") is not None


def rviz_installed() -> bool:
    """rviz2 is in the ament index (where launch_ros looks for its executable)."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    except ImportError:
        return False
    try:
        get_package_prefix("rviz2")
    except (PackageNotFoundError, OSError, ValueError):
        return False
    return True


def motion_topics(imu_topic: str, wheel_odom_topic: str) -> dict[str, str]:
    """{"imu_topic": ..., "wheel_odom_topic": ...} of the IMU / wheel odometry topics given as launch
    arguments (the empty ones left out: the params file decides)."""
    given = {"imu_topic": imu_topic.strip(), "wheel_odom_topic": wheel_odom_topic.strip()}
    return {name: topic for name, topic in given.items() if topic}


def motion_parameters(topics: dict[str, str]) -> dict[str, str]:
    """The nodes' parameter overrides of :func:`motion_topics` (motion_prior.imu_topic, ...)."""
    return {f"motion_prior.{name}": topic for name, topic in topics.items()}


def player_motion_arguments(topics: dict[str, str]) -> list[str]:
    """dcreg_bag_player's --imu-topic / --wheel-odom-topic for :func:`motion_topics`."""
    return [arg for name, topic in topics.items() for arg in ("--" + name.replace("_", "-"), topic)]


def rviz_missing_note(config: str) -> str:
    """The launch log line when rviz:=true but RViz is not installed (the rest still starts)."""
    return f"rviz:=true, but rviz2 is not installed here: RViz is not started (its config: {config})"


def _number(text: str) -> float:
    """The finite number ``text`` holds, else NaN (which fails every comparison)."""
    try:
        value = float(text)
    except ValueError:
        return float("nan")
    return value if math.isfinite(value) else float("nan")


def _flag(name: str, text: str) -> bool:
    try:
        return BOOLEANS[text.strip().lower()]
    except KeyError:
        raise LaunchArgumentError(f"launch argument {name}:={text!r}: expected true or false") from None


class _LaunchArguments:
    """What both launch files' settings share: built from the argument strings and checked, a
    bag (``bagfile``), RViz (``rviz``), sim time (``use_sim_time``, default: with a bag) and the
    IMU / wheel topics (``imu_topic``, ``wheel_odom_topic``), the namespace and how long our
    player waits for its listeners (``wait``, ``wait_for``)."""

    bagfile: str
    rviz: str
    use_sim_time: str
    imu_topic: str
    wheel_odom_topic: str
    namespace: str
    wait: str
    wait_for: str

    @classmethod
    def from_arguments(cls, values: dict[str, str]) -> Any:
        """Settings from {argument: value} (unknown names are ignored); raises
        LaunchArgumentError naming the first unusable argument."""
        names = {f.name for f in fields(cls)}
        settings = cls(**{k: str(v) for k, v in values.items() if k in names})
        settings.check()
        return settings

    def check(self) -> None:
        _flag("rviz", self.rviz)
        if self.use_sim_time:
            _flag("use_sim_time", self.use_sim_time)
        if not _number(self.wait) >= 0:
            raise LaunchArgumentError(f"launch argument wait:={self.wait!r}: expected seconds (a number >= 0)")

    @property
    def has_bag(self) -> bool:
        return bool(self.bagfile.strip())

    @property
    def show_rviz(self) -> bool:
        return _flag("rviz", self.rviz)

    @property
    def sim_time(self) -> bool:
        """use_sim_time: as given, else true exactly when a bag is replayed (it carries its own time)."""
        return _flag("use_sim_time", self.use_sim_time) if self.use_sim_time else self.has_bag

    @property
    def namespace_prefix(self) -> str:
        """'/robot1' for namespace robot1 (or /robot1), '' without a namespace."""
        ns = self.namespace.strip().strip("/")
        return f"/{ns}" if ns else ""

    def waited_topics(self) -> list[str]:
        """wait_for as full topic names (comma- or space-separated; relative names live in the namespace)."""
        names = [t for t in self.wait_for.replace(",", " ").split() if t]
        return [t if t.startswith("/") else f"{self.namespace_prefix}/{t}" for t in names]

    def _player_wait_arguments(self) -> list[str]:
        """dcreg_bag_player's --wait (when not its default) and one --wait-for per wait_for topic."""
        args = [] if self.wait.strip() == PLAYER_WAIT else ["--wait", self.wait.strip()]
        return args + [a for topic in self.waited_topics() for a in ("--wait-for", topic)]

    def _motion_topics(self) -> dict[str, str]:
        return motion_topics(self.imu_topic, self.wheel_odom_topic)


@dataclass(frozen=True)
class LaunchSettings(_LaunchArguments):
    """The arguments of launch/dcreg.launch.py as given (strings; see the launch file for their meaning)."""

    topic: str = "points"
    config: str = ""
    bagfile: str = ""
    bag_topic: str = ""
    player: str = "dcreg"
    sync: str = "false"
    rate: str = "1.0"
    wait: str = PLAYER_WAIT
    wait_for: str = ""
    rviz: str = "false"
    use_sim_time: str = ""
    base_frame: str = "base_link"
    odom_frame: str = "odom"
    frame_prefix: str = ""
    namespace: str = ""
    input_qos: str = ""
    fastdds_profile: str = ""
    imu_topic: str = ""
    wheel_odom_topic: str = ""

    def check(self) -> None:
        if self.player not in PLAYERS:
            raise LaunchArgumentError(f"launch argument player:={self.player!r}: expected one of {', '.join(PLAYERS)}")
        _flag("sync", self.sync)
        super().check()
        if not _number(self.rate) > 0:
            raise LaunchArgumentError(f"launch argument rate:={self.rate!r}: expected a positive number")
        if self.player == "ros2bag" and _flag("sync", self.sync):
            raise LaunchArgumentError("launch argument sync:=true needs player:=dcreg (ros2 bag play has no sync mode)")
        if self.input_qos not in ("", "sensor_data", "reliable"):
            raise LaunchArgumentError(f"launch argument input_qos:={self.input_qos!r}: expected sensor_data or reliable")

    def check_tools(self, ros2bag: bool | None = None) -> None:
        """Refuse player:=ros2bag where rosbag2 is not installed (``ros2bag``: whether it is; default:
        look), saying what to use instead."""
        ros2bag = ros2bag_installed() if ros2bag is None else ros2bag
        if self.has_bag and self.player == "ros2bag" and not ros2bag:
            raise LaunchArgumentError("launch argument player:=ros2bag needs rosbag2 (`ros2 bag play`), which is not installed "
                                      "here: use player:=dcreg (dcreg_bag_player reads ROS 1 and ROS 2 bags without rosbag2) "
                                      "or install ros-jazzy-rosbag2")

    # ------------------------------------------------------------------ derived values
    @property
    def qos(self) -> str:
        """input_qos: as given, else reliable for our player (it publishes reliably, so no cloud
        is lost to dropped fragments) and sensor_data otherwise (matches any publisher,
        including a ros2 bag play that offers the QoS a best-effort driver was recorded with)."""
        if self.input_qos:
            return self.input_qos
        return "reliable" if self.has_bag and self.player == "dcreg" else "sensor_data"

    @property
    def fixed_frame(self) -> str:
        """The odom frame as dcreg_node publishes it (with the frame prefix)."""
        return self.frame_prefix + self.odom_frame

    def resolved_topic(self) -> str:
        """The node's input topic as a full name (a relative topic lives in the namespace)."""
        topic = self.topic.strip()
        return topic if topic.startswith("/") else f"{self.namespace_prefix}/{topic}"

    def node_parameters(self) -> dict[str, Any]:
        """dcreg_node parameter overrides (after the params file)."""
        overrides = {"use_sim_time": self.sim_time, "base_frame": self.base_frame, "odom_frame": self.odom_frame,
                     "frame_prefix": self.frame_prefix, "input_qos": self.qos}
        return {**overrides, **motion_parameters(self._motion_topics())}  # empty topics: as in the params file

    def process_environment(self) -> dict[str, str]:
        """Environment added to every process started (the Fast DDS profile; empty when the
        fastdds_profile argument is 'none')."""
        if self.fastdds_profile.strip().lower() == "none":
            return {}
        return profile_environment(self.fastdds_profile.strip() or None)

    def player_arguments(self) -> list[str]:
        """Command-line arguments of dcreg_bag_player (after the executable)."""
        args = [self.bagfile]
        if self.bag_topic:
            args += ["--topic", self.bag_topic]
        args += ["--sync"] if _flag("sync", self.sync) else ["--rate", self.rate]
        return args + self._player_wait_arguments() + player_motion_arguments(self._motion_topics())

    def bag_play_command(self) -> list[str]:
        """``ros2 bag play`` with /clock for use_sim_time; the bag's cloud topic (bag_topic,
        when given) is played alone and remapped onto the node's input."""
        command = ["ros2", "bag", "play", self.bagfile, "--clock", "--rate", self.rate]
        if self.bag_topic:
            topics = [self.bag_topic, *self._motion_topics().values(), "/tf_static"]
            command += ["--topics", *topics, "--remap", f"{self.bag_topic}:={self.resolved_topic()}"]
        return command


@dataclass(frozen=True)
class LocalizationLaunchSettings(_LaunchArguments):
    """The arguments of launch/localization.launch.py as given (strings; see the launch file)."""

    map: str = ""
    topic: str = "/points"
    config: str = ""
    bagfile: str = ""
    rviz: str = "false"
    use_sim_time: str = ""
    map_frame: str = "map"
    odom_frame: str = "odom"
    base_frame: str = "base_link"
    namespace: str = ""
    wait: str = PLAYER_WAIT
    wait_for: str = ""
    odometry: str = "true"
    initial_pose_source: str = "topic"
    imu_topic: str = ""
    wheel_odom_topic: str = ""

    def check(self) -> None:
        if not self.map.strip():
            raise LaunchArgumentError("launch argument map:= is empty: give the prior map (a PCD from dcreg/save_map or "
                                      "`dcreg run --save-map`)")
        _flag("odometry", self.odometry)
        super().check()
        if self.initial_pose_source not in INITIAL_POSE_SOURCES:
            raise LaunchArgumentError(f"launch argument initial_pose_source:={self.initial_pose_source!r}: expected one of "
                                      f"{', '.join(INITIAL_POSE_SOURCES)}")

    @property
    def start_odometry(self) -> bool:
        return _flag("odometry", self.odometry)

    @property
    def qos(self) -> str:
        """Input QoS of the nodes: reliable with our player (it publishes reliably), else sensor_data."""
        return "reliable" if self.has_bag else "sensor_data"

    def _frames(self) -> dict[str, str]:
        return {"base_frame": self.base_frame, "odom_frame": self.odom_frame}

    def localization_parameters(self) -> dict[str, Any]:
        """dcreg_localization_node's overrides (after the params file)."""
        return {"map_file": self.map, "use_sim_time": self.sim_time, "map_frame": self.map_frame,
                "initial_pose_source": self.initial_pose_source, "input_qos": self.qos, **self._frames(),
                **motion_parameters(self._motion_topics())}

    def odometry_parameters(self) -> dict[str, Any]:
        """dcreg_node's overrides (after its shipped params file): odom -> base_frame for the map -> odom TF."""
        return {"use_sim_time": self.sim_time, "input_qos": self.qos, **self._frames()}

    def player_arguments(self) -> list[str]:
        """dcreg_bag_player's command-line arguments: the bag, the IMU / wheel topics to replay, and
        the number of nodes reading the clouds it waits for (the localization node, dcreg_node)."""
        readers = 2 if self.start_odometry else 1
        return [self.bagfile, "--subscribers", str(readers), *self._player_wait_arguments(),
                *player_motion_arguments(self._motion_topics())]


def rviz_config_text(template: str, fixed_frame: str, namespace_prefix: str = "") -> str:
    """The RViz config ``template`` (YAML) with its fixed frame set to ``fixed_frame`` and the
    dcreg topics moved into the namespace (``/dcreg/odometry`` -> ``/robot1/dcreg/odometry``)."""
    config = yaml.safe_load(template)
    manager = config["Visualization Manager"]
    manager["Global Options"]["Fixed Frame"] = fixed_frame
    for display in manager.get("Displays", []):
        topic = display.get("Topic")
        if isinstance(topic, dict) and str(topic.get("Value", "")).startswith(RVIZ_TOPIC_PREFIX):
            topic["Value"] = namespace_prefix + topic["Value"]
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def write_rviz_config(template: Path, settings: LaunchSettings, directory: Path | None = None) -> Path:
    """Write the RViz config for ``settings`` and return its path: ``dcreg_<content hash>.rviz``
    in ``directory`` (default: the user's ``dcreg_rviz_<uid>`` in the temporary directory), so
    that a launch reuses the file of an earlier one with the same settings instead of leaving a
    new directory behind each time, and concurrent launches never write each other's file."""
    text = rviz_config_text(Path(template).read_text(), settings.fixed_frame, settings.namespace_prefix)
    out_dir = Path(directory) if directory is not None else Path(tempfile.gettempdir()) / f"dcreg_rviz_{os.getuid()}"
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = out_dir / f"dcreg_{hashlib.sha256(text.encode()).hexdigest()[:16]}.rviz"
    if not path.exists() or path.read_text() != text:
        fd, partial = tempfile.mkstemp(dir=out_dir, prefix=".dcreg_", suffix=".rviz")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(partial, path)  # whole or absent, also for a launch reading it meanwhile
    return path
