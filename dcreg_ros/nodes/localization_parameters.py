"""ROS parameters of ``dcreg_localization_node``: its own settings plus every
:class:`~dcreg_ros.core.localization.LocalizationConfig` parameter under its dotted name, declared
and validated like dcreg_node's (:mod:`.parameters`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ..core.config_io import param
from ..core.localization import LocalizationConfig
from .parameters import INPUT_QOS_CHOICES, PARAMS_FILE_KEY, ParameterSpec, parameter_specs, ros_params_yaml, settings_from_values, \
    topic_or_empty

LOCALIZATION_NODE_NAME = "dcreg_localization_node"
INITIAL_POSE_SOURCES = ("parameter", "topic", "global")
ODOM_SOURCES = ("auto", "tf", "topic", "none")
# these need a new map or new ROS entities: restart the node to change them
READ_ONLY = frozenset({"input_qos", "map_file", "odom_source", "odom_topic", "initial_pose_source", "motion_prior.imu_topic",
                       "motion_prior.wheel_odom_topic"}
                      | {f"map.{f.name}" for f in dataclasses.fields(LocalizationConfig().map)}
                      | {f"correspondence.{f.name}" for f in dataclasses.fields(LocalizationConfig().correspondence)})


def _pose6(v: Any) -> bool:
    return isinstance(v, tuple) and len(v) == 6 and all(math.isfinite(x) for x in v)


def _finite_non_negative(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x >= 0


def _frame(s: str) -> bool:
    return bool(s.strip())


@dataclass(frozen=True)
class LocalizationNodeSettings:
    """Parameters of the localization node itself (map file, frames, initial pose, odometry source)."""

    map_file: str = param("", "the prior map (binary PCD from dcreg/save_map or `dcreg run --save-map`, or any PCD/PLY/BIN/CSV), in map_frame, m", _frame, "required: the path of the prior map")
    input_qos: str = param("sensor_data", "QoS of the points subscription: sensor_data (best effort) or reliable", lambda q: q in INPUT_QOS_CHOICES, "sensor_data or reliable")
    map_frame: str = param("map", "frame of the map, the pose and the markers (REP-105)", _frame, "a non-empty frame name")
    odom_frame: str = param("odom", "parent of base_frame in the odometry that runs alongside (map -> odom is published)", _frame, "a non-empty frame name")
    base_frame: str = param("base_link", "the robot frame", _frame, "a non-empty frame name")
    lidar_to_base: tuple[float, ...] = param((0.0, 0.0, 0.0, 0.0, 0.0, 0.0), "T_base_lidar as x y z roll pitch yaw (m, rad)", _pose6, "6 finite numbers: x y z roll pitch yaw")
    initial_pose_source: str = param("parameter", "parameter: start at initial_pose; topic: wait for initialpose (RViz 2D Pose Estimate); global: global registration of the first scan", lambda s: s in INITIAL_POSE_SOURCES, "parameter, topic or global")
    initial_pose: tuple[float, ...] = param((0.0, 0.0, 0.0, 0.0, 0.0, 0.0), "T_map_base of the first scan as x y z roll pitch yaw (m, rad); initialpose messages replace it at any time", _pose6, "6 finite numbers: x y z roll pitch yaw")
    odom_source: str = param("auto", "where odom -> base_frame comes from: tf (tf2_ros), topic (nav_msgs/Odometry on odom_topic), none (no odometry: publish map -> base_frame), auto (tf when tf2_ros is installed, else topic)", lambda s: s in ODOM_SOURCES, "auto, tf, topic or none")
    odom_topic: str = param("dcreg/odometry", "nav_msgs/Odometry (odom -> base_frame) for odom_source topic", _frame, "a topic name")
    odom_tolerance: float = param(0.05, "largest time (s) between a scan and the nearest odometry sample outside the interpolation span", _finite_non_negative, ">= 0 s")
    publish_tf: bool = param(True, "broadcast map -> odom (or map -> base_frame with odom_source none)")
    transform_tolerance: float = param(0.1, "the TF is stamped this much after the scan (s), so lookups at the current time succeed between scans", _finite_non_negative, ">= 0 s")
    publish_map: bool = param(True, "publish the map once on dcreg/map (transient local)")
    max_points: int = param(2_000_000, "clouds with more points than this are rejected (ERROR diagnostic)", lambda k: k >= 10, ">= 10")
    # the motion prior's inputs, declared as motion_prior.imu_topic / wheel_odom_topic (as in dcreg_node)
    imu_topic: str = param("", "sensor_msgs/Imu topic for the IMU motion prior (REP-145; empty = off); its mounting from /tf_static or TF (the cloud's frame <- the IMU message's frame), else motion_prior.imu_to_lidar", topic_or_empty, "a topic name or empty")
    wheel_odom_topic: str = param("", "nav_msgs/Odometry topic of the wheel odometry for the motion prior (empty = off): where the map leaves a direction unobservable (a long corridor), the wheels carry the pose along it; the LiDAR mounting from /tf_static or TF (its child_frame_id <- the cloud's frame), else motion_prior.lidar_to_base. May be odom_topic too", topic_or_empty, "a topic name or empty")
    mounting_timeout: float = param(1.0, "seconds to wait for the IMU / wheel mountings on TF at the first scan", _finite_non_negative, ">= 0 s")


def localization_parameter_specs() -> list[ParameterSpec]:
    """Every parameter the localization node declares: its settings, then the core config."""
    return parameter_specs((LocalizationNodeSettings(), LocalizationConfig()), READ_ONLY)


def localization_settings_from_values(values: dict[str, Any]) -> tuple[LocalizationConfig, LocalizationNodeSettings]:
    """Build and validate both configurations from {dotted name: value}; raises ConfigError."""
    return settings_from_values(values, LocalizationNodeSettings, LocalizationConfig)


def localization_params_yaml(header: str = "") -> str:
    """The ROS 2 params file of the localization node (config/localization_node.yaml), keyed
    ``/**`` like dcreg_node's: a renamed or namespaced node gets it too."""
    return ros_params_yaml(PARAMS_FILE_KEY, header, LocalizationNodeSettings(), LocalizationConfig(), READ_ONLY)
