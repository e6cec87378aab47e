"""ROS parameters <-> :class:`OdometryConfig` and the node's own settings.

Every odometry parameter is a ROS parameter with its dotted name (``preprocess.min_range``,
``degeneracy.strategy``, ...); the node adds a few of its own (:class:`NodeSettings`). Both are
validated by the same typed-config code as the YAML files, so a bad value is rejected with the
parameter's name whether it comes from a params file, ``-p name:=value`` or ``ros2 param set``.
Each parameter's rule is also in its ParameterDescriptor (a FloatingPointRange / IntegerRange
where the rule is a range, and always as ``additional_constraints`` text), so ``ros2 param
describe`` shows it.

rclpy is imported only by :func:`declare_parameters`, so the mapping (and the script that writes
``config/dcreg.yaml``) works without ROS.
"""

from __future__ import annotations

import array
import dataclasses
import math
import re
import sys
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import yaml

from ..core.bounded_history import HISTORY_MODES
from ..core.config_io import ConfigError, flatten, from_dict, param, unflatten
from ..core.odometry import OdometryConfig

NODE_NAME = "dcreg_node"
# params files are keyed for every node name (a renamed or namespaced node keeps its parameters)
PARAMS_FILE_KEY = "/**"
INPUT_QOS_CHOICES = ("sensor_data", "reliable")

# changing these needs new ROS entities (a subscription with another QoS or topic): restart the node
READ_ONLY = frozenset({"input_qos", "motion_prior.imu_topic", "motion_prior.wheel_odom_topic"})


def _pose6(v: Any) -> bool:
    return isinstance(v, tuple) and len(v) == 6 and all(math.isfinite(x) for x in v)


def _finite_non_negative(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x >= 0


def topic_or_empty(s: str) -> bool:
    """A topic parameter: empty (off) or a name without spaces."""
    return isinstance(s, str) and not any(c.isspace() for c in s)


def _frame_prefix(s: str) -> bool:
    return not any(c.isspace() for c in s) and not s.startswith("/")


@dataclass(frozen=True)
class NodeSettings:
    """Parameters of the ROS node itself (frames, QoS, inputs, what to publish)."""

    input_qos: str = param("sensor_data", "QoS of the points subscription: sensor_data (best effort, keep last 5; matches any publisher, loses fragments of large clouds) or reliable (repairs lost fragments, but does not match best-effort publishers; a transport that cannot keep up still loses clouds: lost_messages, stamp_gaps)", lambda q: q in INPUT_QOS_CHOICES, "sensor_data or reliable")
    odom_frame: str = param("odom", "frame of the odometry, path, clouds and markers (REP-105)", lambda s: bool(s.strip()), "a non-empty frame name")
    base_frame: str = param("base_link", "child frame of the odometry and of the odom -> base TF", lambda s: bool(s.strip()), "a non-empty frame name")
    frame_prefix: str = param("", "prepended to odom_frame and base_frame (e.g. robot1/) so several robots share one TF tree", _frame_prefix, "no spaces, no leading /")
    use_tf_mounting: bool = param(True, "take T_base_lidar from TF (base_frame <- the cloud's header.frame_id, e.g. /tf_static of robot_state_publisher) when tf2_ros is installed; lidar_to_base is the fallback")
    mounting_timeout: float = param(1.0, "seconds to wait for the mounting on TF at the first cloud of a sequence", _finite_non_negative, ">= 0 s")
    lidar_to_base: tuple[float, ...] = param((0.0, 0.0, 0.0, 0.0, 0.0, 0.0), "T_base_lidar as x y z roll pitch yaw (m, rad): where the LiDAR sits on the robot; used when TF has no mounting", _pose6, "6 finite numbers: x y z roll pitch yaw")
    publish_tf: bool = param(True, "broadcast the odom -> base TF")
    publish_registered_cloud: bool = param(True, "publish each frame's points in the odom frame on dcreg/cloud_registered (only built while it has subscribers)")
    map_publish_period: float = param(1.0, "seconds of data time between local map messages (only built while dcreg/local_map has subscribers); 0 = never", _finite_non_negative, ">= 0 s")
    path_publish_period: float = param(0.5, "seconds of data time between path messages; 0 = every frame (a long path costs ~4 ms per 1000 poses)", _finite_non_negative, ">= 0 s")
    path_max_poses: int = param(2000, "poses kept in dcreg/path", lambda k: 2 <= k <= 1_000_000, "between 2 and 1000000")
    path_history: str = param("decimated", "when path_max_poses is reached: decimated (thin the older poses by 2, the path still spans the whole run) or recent (keep the last poses only)", lambda h: h in HISTORY_MODES, "decimated or recent")
    imu_topic: str = param("", "sensor_msgs/Imu topic for the IMU motion prior (REP-145; empty = off); its mounting from TF (the cloud's frame <- the IMU message's frame), else motion_prior.imu_to_lidar", topic_or_empty, "a topic name or empty")
    wheel_odom_topic: str = param("", "nav_msgs/Odometry topic of the wheel odometry for the motion prior (empty = off); the LiDAR mounting from TF (its child_frame_id <- the cloud's frame), else motion_prior.lidar_to_base. When it names the same odom_frame -> base_frame pair as ours (its driver broadcasts that TF), our TF is withheld with a WARN (REP-105: one parent per frame) and dcreg/odometry is still published, e.g. for robot_localization; publish_tf false silences the WARN", topic_or_empty, "a topic name or empty")
    max_points: int = param(2_000_000, "clouds with more points than this are rejected (ERROR diagnostic) before conversion", lambda k: k >= 10, ">= 10")
    map_save_path: str = param("", "file dcreg/save_map writes (binary PCD in the odom frame, written atomically); empty: the service explains how to set it")
    map_save_voxel: float = param(0.1, "every registered frame is kept for dcreg/save_map at one point per voxel of this edge (m); 0 = keep nothing", _finite_non_negative, ">= 0 m")

    @property
    def odom_frame_id(self) -> str:
        """odom_frame with the frame prefix."""
        return self.frame_prefix + self.odom_frame

    @property
    def base_frame_id(self) -> str:
        """base_frame with the frame prefix."""
        return self.frame_prefix + self.base_frame


@dataclass(frozen=True)
class ParameterSpec:
    """One ROS parameter: dotted name, default value, description, validation rule."""

    name: str
    default: Any
    description: str
    read_only: bool = False
    rule: str = ""


class ValueRange(NamedTuple):
    """Inclusive bounds of a numeric parameter (what ROS descriptors can express)."""

    low: float | int
    high: float | int


_NUMBER = r"(-?\d+(?:\.\d+)?(?:e-?\d+)?)"
_AT_LEAST = re.compile(rf"^(>=|>)\s*{_NUMBER}")
_BETWEEN = re.compile(rf"^(?:between\s+{_NUMBER}\s+and\s+{_NUMBER}|in\s*\[{_NUMBER},\s*{_NUMBER}[\])])")


def rule_range(rule: str, integer: bool) -> ValueRange | None:
    """The range a rule text states (">= 0 m", "> 0", "between 1 and 1000", "in [0, 1)"), or
    None when the rule is not a range. ROS ranges are inclusive: a strict bound ("> x", "[0, 1)")
    stays x (the typed config still rejects x itself) or, for "> x" on integers, becomes x + 1."""
    top = sys.maxsize if integer else math.inf
    m = _AT_LEAST.match(rule)
    if m:
        low = float(m[2]) + (1 if integer and m[1] == ">" else 0)
        return ValueRange(low, top)
    m = _BETWEEN.match(rule)
    if m:
        a, b = (float(x) for x in m.groups() if x is not None)
        return ValueRange(a, b)
    return None


def plain_value(value: Any) -> Any:
    """A ROS parameter value as plain Python (rclpy gives arrays as array.array or numpy)."""
    if isinstance(value, (array.array, np.ndarray)):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return list(value)
    return value


def own_changes(params: list, specs: Any) -> dict[str, Any]:
    """{name: plain value} of the parameters in a set-parameters request that ``specs`` (a node's
    ParameterSpec list) declares; the others (use_sim_time, qos overrides) are not the node's."""
    own = {spec.name for spec in specs}
    return {p.name: plain_value(p.value) for p in params if p.name in own}


def _ros_value(value: Any) -> Any:
    # ROS parameters have no tuple type: a double array is a list
    return list(value) if isinstance(value, tuple) else value


def _rules(cfg: Any, prefix: str = "") -> dict[str, str]:
    """{dotted name: validation rule text} of every leaf of a config tree."""
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out.update(_rules(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = f.metadata.get("rule", "")
    return out


# node settings published under a section of the core config's names, next to what they feed
# (dcreg_node and dcreg_localization_node both have them)
NODE_SECTION_NAMES = {"imu_topic": "motion_prior.imu_topic", "wheel_odom_topic": "motion_prior.wheel_odom_topic"}


def _section_names(settings: Any) -> dict[str, str]:
    """{field: ROS name} of the fields of a node settings object that live in a config section."""
    fields = {f.name for f in dataclasses.fields(settings)}
    return {name: ros for name, ros in NODE_SECTION_NAMES.items() if name in fields}


def parameter_specs(sources: tuple | None = None, read_only: frozenset = READ_ONLY) -> list[ParameterSpec]:
    """Every parameter a node declares: by default dcreg_node's, its own settings first, then the
    odometry config (the node's input topics of the motion prior among the motion_prior section);
    ``sources`` are another node's (settings, config) defaults."""
    settings, config = sources or (NodeSettings(), OdometryConfig())
    section_names = _section_names(settings)
    specs, sectioned = [], []
    rules = _rules(settings)
    for name, (value, doc) in flatten(settings).items():
        ros_name = section_names.get(name, name)
        spec = ParameterSpec(ros_name, _ros_value(value), doc, ros_name in read_only, rules[name])
        (sectioned if name in section_names else specs).append(spec)
    rules = _rules(config)
    for name, (value, doc) in flatten(config).items():
        specs.append(ParameterSpec(name, _ros_value(value), doc, name in read_only, rules[name]))
    if not sectioned:
        return specs
    last = max(i for i, spec in enumerate(specs) if spec.name.startswith("motion_prior."))
    return specs[: last + 1] + sectioned + specs[last + 1:]


def node_parameter_names(settings_type: type = NodeSettings) -> set[str]:
    """The ROS names of a node's own parameters (default dcreg_node's)."""
    return {NODE_SECTION_NAMES.get(f.name, f.name) for f in dataclasses.fields(settings_type)}


def settings_from_values(values: dict[str, Any], settings_type: type = NodeSettings,
                         config_type: type = OdometryConfig) -> tuple[Any, Any]:
    """Build and validate both configurations from {dotted name: value}: by default dcreg_node's
    (OdometryConfig, NodeSettings), else (``config_type``, ``settings_type``) of another node.

    Raises ConfigError naming the first bad or unknown parameter.
    """
    own = node_parameter_names(settings_type)
    field_of = {ros: name for name, ros in NODE_SECTION_NAMES.items()}
    node_values = {field_of.get(k, k): v for k, v in values.items() if k in own}
    config_values = {k: v for k, v in values.items() if k not in own}
    settings = from_dict(settings_type, node_values)
    config = from_dict(config_type, unflatten(config_values))
    return config, settings


def descriptor(spec: ParameterSpec) -> Any:
    """rcl_interfaces/ParameterDescriptor of a parameter: description, read-only flag, the rule
    as additional_constraints and, for numeric ranges, a FloatingPointRange / IntegerRange.

    Floating-point parameters (and lidar_to_base) use dynamic typing so that ``max_range: 100``
    in a YAML file or ``-p preprocess.max_range:=100`` is accepted as 100.0 instead of failing
    declaration with a type error; the typed config then validates and converts the value
    (rclpy applies a floating-point range only to double values).
    """
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    dynamic = isinstance(spec.default, (float, list))
    out = ParameterDescriptor(description=spec.description, read_only=spec.read_only, dynamic_typing=dynamic,
                              additional_constraints=spec.rule)
    integer = isinstance(spec.default, int) and not isinstance(spec.default, bool)
    bounds = rule_range(spec.rule, integer) if integer or isinstance(spec.default, float) else None
    if bounds is not None and integer:
        out.integer_range = [IntegerRange(from_value=int(bounds.low), to_value=int(bounds.high), step=0)]
    elif bounds is not None:
        out.floating_point_range = [FloatingPointRange(from_value=bounds.low, to_value=bounds.high, step=0.0)]
    return out


def declare_parameters(node: Any, specs: list[ParameterSpec] | None = None) -> dict[str, Any]:
    """Declare every parameter (``specs``, default dcreg_node's) on an rclpy node (default and
    :func:`descriptor`) and return {name: value} after the params-file and command-line overrides."""
    values = {}
    for spec in parameter_specs() if specs is None else specs:
        values[spec.name] = plain_value(node.declare_parameter(spec.name, spec.default, descriptor(spec)).value)
    return values


def ros_params_yaml(node_name: str = PARAMS_FILE_KEY, header: str = "", settings: Any = None, config: Any = None,
                    read_only: frozenset = READ_ONLY) -> str:
    """A ROS 2 params file (``/**: ros__parameters: ...``, i.e. for any node name) with every
    default and its description as a comment; nested keys are the dotted parameter names.
    ``settings`` (node settings) and ``config`` (core config) default to dcreg_node's."""
    settings = settings or NodeSettings()
    config = config or OdometryConfig()
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [f"{node_name}:", "  ros__parameters:"]
    section_names = _section_names(settings)
    own = {section_names.get(f.name, f.name) for f in dataclasses.fields(settings)}
    current_section = None
    for spec in parameter_specs((settings, config), read_only):
        section, _, leaf = spec.name.rpartition(".")
        if spec.name in own and not section:
            indent = "    "
        else:
            if section != current_section:
                doc = _section_doc(config, section)
                lines.append(f"    {section}:  # {doc}" if doc else f"    {section}:")
                current_section = section
            indent = "      "
        text = yaml.safe_dump(spec.default, default_flow_style=True).strip().removesuffix("...").strip()
        lines.append(f"{indent}{leaf}: {text}  # {spec.description}")
    return "\n".join(lines) + "\n"


def _section_doc(config: Any, section: str) -> str:
    for f in dataclasses.fields(config):
        if f.name == section:
            return f.metadata.get("doc", "")
    return ""


__all__ = [
    "ConfigError",
    "NODE_NAME",
    "NodeSettings",
    "PARAMS_FILE_KEY",
    "ParameterSpec",
    "declare_parameters",
    "descriptor",
    "own_changes",
    "parameter_specs",
    "plain_value",
    "ros_params_yaml",
    "rule_range",
    "settings_from_values",
]
