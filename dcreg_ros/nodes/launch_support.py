"""What launch/dcreg.launch.py starts, decided from its arguments without the launch library.

The launch file resolves its arguments to strings and hands them to :class:`LaunchSettings`,
which validates them and derives everything the processes need: dcreg_node's parameter
overrides, the player's command line (``dcreg_bag_player`` or, on a full ROS install, ``ros2
bag play --clock``), the per-process environment with the Fast DDS profile, and an RViz config
whose fixed frame and topics follow the odom frame, the frame prefix and the namespace. Plain
Python (no launch, no rclpy), so it is tested here and used unchanged on a robot.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from .transport import profile_environment

PLAYERS = ("dcreg", "ros2bag")
BOOLEANS = {"true": True, "false": False}
RVIZ_TOPIC_PREFIX = "/dcreg/"


class LaunchArgumentError(ValueError):
    """A launch argument with a value the launch file cannot use."""


def _flag(name: str, text: str) -> bool:
    try:
        return BOOLEANS[text.strip().lower()]
    except KeyError:
        raise LaunchArgumentError(f"launch argument {name}:={text!r}: expected true or false") from None


@dataclass(frozen=True)
class LaunchSettings:
    """The launch arguments as given (strings; see launch/dcreg.launch.py for their meaning)."""

    topic: str = "points"
    config: str = ""
    bagfile: str = ""
    bag_topic: str = ""
    player: str = "dcreg"
    sync: str = "false"
    rate: str = "1.0"
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

    @classmethod
    def from_arguments(cls, values: dict[str, str]) -> "LaunchSettings":
        """Settings from {argument: value} (unknown names are ignored); raises
        LaunchArgumentError naming the first unusable argument."""
        names = {f.name for f in fields(cls)}
        settings = cls(**{k: str(v) for k, v in values.items() if k in names})
        settings.check()
        return settings

    def check(self) -> None:
        if self.player not in PLAYERS:
            raise LaunchArgumentError(f"launch argument player:={self.player!r}: expected one of {', '.join(PLAYERS)}")
        _flag("sync", self.sync)
        _flag("rviz", self.rviz)
        if self.use_sim_time:
            _flag("use_sim_time", self.use_sim_time)
        try:
            rate = float(self.rate)
        except ValueError:
            rate = float("nan")
        if not (rate > 0 and math.isfinite(rate)):
            raise LaunchArgumentError(f"launch argument rate:={self.rate!r}: expected a positive number")
        if self.player == "ros2bag" and _flag("sync", self.sync):
            raise LaunchArgumentError("launch argument sync:=true needs player:=dcreg (ros2 bag play has no sync mode)")
        if self.input_qos not in ("", "sensor_data", "reliable"):
            raise LaunchArgumentError(f"launch argument input_qos:={self.input_qos!r}: expected sensor_data or reliable")

    # ------------------------------------------------------------------ derived values
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

    @property
    def namespace_prefix(self) -> str:
        """'/robot1' for namespace robot1 (or /robot1), '' without a namespace."""
        ns = self.namespace.strip().strip("/")
        return f"/{ns}" if ns else ""

    def resolved_topic(self) -> str:
        """The node's input topic as a full name (a relative topic lives in the namespace)."""
        topic = self.topic.strip()
        return topic if topic.startswith("/") else f"{self.namespace_prefix}/{topic}"

    def node_parameters(self) -> dict[str, Any]:
        """dcreg_node parameter overrides (after the params file)."""
        overrides = {"use_sim_time": self.sim_time, "base_frame": self.base_frame, "odom_frame": self.odom_frame,
                     "frame_prefix": self.frame_prefix, "input_qos": self.qos}
        for name, topic in self._motion_topics().items():
            overrides[f"motion_prior.{name}"] = topic  # empty: as in the params file
        return overrides

    def _motion_topics(self) -> dict[str, str]:
        """The IMU / wheel odometry topics given as launch arguments (others left out)."""
        given = {"imu_topic": self.imu_topic.strip(), "wheel_odom_topic": self.wheel_odom_topic.strip()}
        return {name: topic for name, topic in given.items() if topic}

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
        for name, topic in self._motion_topics().items():
            args += ["--" + name.replace("_", "-"), topic]
        return args

    def bag_play_command(self) -> list[str]:
        """``ros2 bag play`` with /clock for use_sim_time; the bag's cloud topic (bag_topic,
        when given) is played alone and remapped onto the node's input."""
        command = ["ros2", "bag", "play", self.bagfile, "--clock", "--rate", self.rate]
        if self.bag_topic:
            topics = [self.bag_topic, *self._motion_topics().values(), "/tf_static"]
            command += ["--topics", *topics, "--remap", f"{self.bag_topic}:={self.resolved_topic()}"]
        return command


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
    """Write the RViz config for ``settings`` next to nothing shared (a fresh temporary
    directory unless ``directory`` is given) and return its path."""
    out_dir = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="dcreg_rviz_"))
    path = out_dir / "dcreg.rviz"
    path.write_text(rviz_config_text(Path(template).read_text(), settings.fixed_frame, settings.namespace_prefix))
    return path
