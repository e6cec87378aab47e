"""ROS parameters <-> :class:`OdometryConfig` and the node's own settings.

Every odometry parameter is a ROS parameter with its dotted name (``preprocess.min_range``,
``degeneracy.strategy``, ...); the node adds a few of its own (:class:`NodeSettings`). Both are
validated by the same typed-config code as the YAML files, so a bad value is rejected with the
parameter's name whether it comes from a params file, ``-p name:=value`` or ``ros2 param set``.

rclpy is imported only by :func:`declare_parameters`, so the mapping (and the script that writes
``config/dcreg.yaml``) works without ROS.
"""

from __future__ import annotations

import array
import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml

from ..core.config_io import ConfigError, flatten, from_dict, param, unflatten
from ..core.odometry import OdometryConfig

NODE_NAME = "dcreg_node"
INPUT_QOS_CHOICES = ("sensor_data", "reliable")
# changing these needs new ROS entities (a subscription with another QoS): restart the node
READ_ONLY = frozenset({"input_qos"})


def _pose6(v: Any) -> bool:
    return isinstance(v, tuple) and len(v) == 6 and all(math.isfinite(x) for x in v)


def _finite_non_negative(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x >= 0


@dataclass(frozen=True)
class NodeSettings:
    """Parameters of the ROS node itself (frames, QoS, what to publish, covariance inflation)."""

    input_qos: str = param("sensor_data", "QoS of the points subscription: sensor_data (best effort, keep last 5; matches any publisher) or reliable (no loss of large clouds, but does not match best-effort publishers)", lambda q: q in INPUT_QOS_CHOICES, "sensor_data or reliable")
    odom_frame: str = param("odom", "frame of the odometry, path, clouds and markers (REP-105)", lambda s: bool(s.strip()), "a non-empty frame name")
    base_frame: str = param("base_link", "child frame of the odometry and of the odom -> base TF", lambda s: bool(s.strip()), "a non-empty frame name")
    lidar_to_base: tuple[float, ...] = param((0.0, 0.0, 0.0, 0.0, 0.0, 0.0), "T_base_lidar as x y z roll pitch yaw (m, rad): where the LiDAR sits on the robot", _pose6, "6 finite numbers: x y z roll pitch yaw")
    publish_tf: bool = param(True, "broadcast the odom -> base TF")
    publish_registered_cloud: bool = param(True, "publish each frame's points in the odom frame on dcreg/cloud_registered (only built while it has subscribers)")
    map_publish_period: float = param(1.0, "seconds of data time between local map messages (only built while dcreg/local_map has subscribers); 0 = never", _finite_non_negative, ">= 0 s")
    path_publish_period: float = param(0.5, "seconds of data time between path messages; 0 = every frame (a long path costs ~4 ms per 1000 poses)", _finite_non_negative, ">= 0 s")
    degenerate_variance_translation: float = param(1.0, "variance added to the odometry covariance along each flagged translation direction (m^2)", _finite_non_negative, ">= 0 m^2")
    degenerate_variance_rotation: float = param(0.1, "variance added to the odometry covariance along each flagged rotation direction (rad^2)", _finite_non_negative, ">= 0 rad^2")
    max_points: int = param(2_000_000, "clouds with more points than this are rejected (ERROR diagnostic) before conversion", lambda k: k >= 10, ">= 10")
    map_save_path: str = param("", "file dcreg/save_map writes (binary PCD in the odom frame, written atomically); empty: the service explains how to set it")
    map_save_voxel: float = param(0.1, "every registered frame is kept for dcreg/save_map at one point per voxel of this edge (m); 0 = keep nothing", _finite_non_negative, ">= 0 m")


@dataclass(frozen=True)
class ParameterSpec:
    """One ROS parameter: dotted name, default value, description."""

    name: str
    default: Any
    description: str
    read_only: bool = False


def plain_value(value: Any) -> Any:
    """A ROS parameter value as plain Python (rclpy gives arrays as array.array or numpy)."""
    if isinstance(value, (array.array, np.ndarray)):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return list(value)
    return value


def _ros_value(value: Any) -> Any:
    # ROS parameters have no tuple type: a double array is a list
    return list(value) if isinstance(value, tuple) else value


def parameter_specs(sources: tuple | None = None, read_only: frozenset = READ_ONLY) -> list[ParameterSpec]:
    """Every parameter a node declares: by default dcreg_node's, its own settings first, then
    the odometry config; ``sources`` are other (settings, config) defaults."""
    specs = []
    for source in sources or (NodeSettings(), OdometryConfig()):
        for name, (value, doc) in flatten(source).items():
            specs.append(ParameterSpec(name, _ros_value(value), doc, name in read_only))
    return specs


def node_parameter_names() -> set[str]:
    return {f.name for f in dataclasses.fields(NodeSettings)}


def settings_from_values(values: dict[str, Any]) -> tuple[OdometryConfig, NodeSettings]:
    """Build and validate both configurations from {dotted name: value}.

    Raises ConfigError naming the first bad or unknown parameter.
    """
    own = node_parameter_names()
    node_values = {k: v for k, v in values.items() if k in own}
    odom_values = {k: v for k, v in values.items() if k not in own}
    settings = from_dict(NodeSettings, node_values)
    config = from_dict(OdometryConfig, unflatten(odom_values))
    return config, settings


def declare_parameters(node: Any, specs: list[ParameterSpec] | None = None) -> dict[str, Any]:
    """Declare every parameter on an rclpy node (default, description, read-only flag) and
    return {name: value} after the params-file and command-line overrides.

    Floating-point parameters (and lidar_to_base) use dynamic typing so that ``max_range: 100``
    in a YAML file or ``-p preprocess.max_range:=100`` is accepted as 100.0 instead of failing
    declaration with a type error; the typed config then validates and converts the value.
    """
    from rcl_interfaces.msg import ParameterDescriptor

    values = {}
    for spec in parameter_specs() if specs is None else specs:
        dynamic = isinstance(spec.default, (float, list))
        descriptor = ParameterDescriptor(description=spec.description, read_only=spec.read_only, dynamic_typing=dynamic)
        values[spec.name] = plain_value(node.declare_parameter(spec.name, spec.default, descriptor).value)
    return values


def ros_params_yaml(node_name: str = NODE_NAME, header: str = "", settings: Any = None, config: Any = None,
                    read_only: frozenset = READ_ONLY) -> str:
    """A ROS 2 params file (``node: ros__parameters: ...``) with every default and its
    description as a comment; nested keys are the dotted parameter names. ``settings`` (node
    settings) and ``config`` (core config) default to dcreg_node's."""
    settings = settings or NodeSettings()
    config = config or OdometryConfig()
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [f"{node_name}:", "  ros__parameters:"]
    own = {f.name for f in dataclasses.fields(settings)}
    current_section = None
    for spec in parameter_specs((settings, config), read_only):
        section, _, leaf = spec.name.rpartition(".")
        if spec.name in own:
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
    "ParameterSpec",
    "declare_parameters",
    "parameter_specs",
    "plain_value",
    "ros_params_yaml",
    "settings_from_values",
]
