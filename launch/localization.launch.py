"""Launch DCReg localization in a prior map: dcreg_localization_node, by default dcreg_node for
odom -> base_link, optionally a bag replay and RViz.

    ros2 launch dcreg_ros localization.launch.py map:=/maps/floor2.pcd topic:=/ouster/points
    ros2 launch dcreg_ros localization.launch.py map:=/maps/floor2.pcd bagfile:=/data/run2 rviz:=true
    ros2 launch dcreg_ros localization.launch.py map:=/maps/corridor.pcd wheel_odom_topic:=/wheel/odom odometry:=false

Arguments (see the DeclareLaunchArgument descriptions below, or `ros2 launch dcreg_ros
localization.launch.py --show-args`): map (the PCD map, required), topic, config, bagfile,
rviz, use_sim_time, map_frame, odom_frame, base_frame, namespace, wait, wait_for, odometry, initial_pose_source,
imu_topic, wheel_odom_topic. The decisions are made by
dcreg_ros.nodes.launch_support.LocalizationLaunchSettings (plain Python, tested without launch).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration

from dcreg_ros.nodes.launch_actions import dcreg_process, rviz_process
from dcreg_ros.nodes.launch_support import PLAYER_WAIT, WAIT_FOR_HELP, WAIT_HELP, LocalizationLaunchSettings

REQUIRED = ...  # an argument without a default: ros2 launch refuses to start without it

ARGUMENTS = [
    ("map", REQUIRED, "the prior map: binary PCD from dcreg/save_map or `dcreg run --save-map` (required)"),
    ("topic", "/points", "sensor_msgs/PointCloud2 input topic (relative names live in the namespace)"),
    ("config", None, "ROS 2 params file of dcreg_localization_node (default: the installed config/localization_node.yaml)"),
    ("bagfile", "", "ROS 1 .bag or ROS 2 bag (sqlite3/MCAP) to replay with dcreg_bag_player; empty: live sensor"),
    ("rviz", "false", "start RViz with config/localization.rviz (map, pose, markers, 2D Pose Estimate on initialpose)"),
    ("use_sim_time", "", "use /clock (default: true exactly when bagfile is given)"),
    ("map_frame", "map", "frame of the map (REP-105)"),
    ("odom_frame", "odom", "odometry frame (map -> odom is published)"),
    ("base_frame", "base_link", "robot frame"),
    ("namespace", "", "namespace of every node (multi-robot)"),
    ("wait", PLAYER_WAIT, WAIT_HELP),
    ("wait_for", "", WAIT_FOR_HELP),
    ("odometry", "true", "also start dcreg_node for odom -> base_link (false with wheel odometry or another LIO publishing it)"),
    ("initial_pose_source", "topic", "parameter (initial_pose in the params file), topic (RViz 2D Pose Estimate) or global "
                                     "(global registration of the first scan)"),
    ("imu_topic", "", "sensor_msgs/Imu topic of the localization's motion prior (default: motion_prior.imu_topic of the "
                      "params file); replayed from the bag too"),
    ("wheel_odom_topic", "", "nav_msgs/Odometry wheel odometry topic of the localization's motion prior (default: "
                             "motion_prior.wheel_odom_topic of the params file): carries the pose where the map leaves a "
                             "direction unobservable; replayed from the bag too"),
]


def _setup(context, share: str) -> list:
    values = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    settings = LocalizationLaunchSettings.from_arguments(values)
    points = [("points", settings.topic)]
    actions = [dcreg_process("dcreg_localization_node", settings.namespace, remappings=points,
                             parameters=[settings.config, settings.localization_parameters()])]  # params file first, overrides after
    if settings.start_odometry:
        actions.append(dcreg_process("dcreg_node", settings.namespace, remappings=points,
                                     parameters=[os.path.join(share, "config", "dcreg.yaml"), settings.odometry_parameters()]))
    if settings.has_bag:
        actions.append(dcreg_process("dcreg_bag_player", settings.namespace, remappings=points, arguments=settings.player_arguments(),
                                     parameters=[{"use_sim_time": settings.sim_time}]))
    if settings.show_rviz:
        actions.append(rviz_process(os.path.join(share, "config", "localization.rviz"), settings.namespace, settings.sim_time))
    return actions


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("dcreg_ros")
    defaults = {"config": os.path.join(share, "config", "localization_node.yaml")}
    arguments = [DeclareLaunchArgument(name, description=description) if default is REQUIRED else
                 DeclareLaunchArgument(name, default_value=defaults[name] if default is None else default, description=description)
                 for name, default, description in ARGUMENTS]
    return LaunchDescription([*arguments, OpaqueFunction(function=_setup, args=[share])])
