"""Launch DCReg LiDAR odometry: dcreg_node, optionally a bag replay and RViz.

    ros2 launch dcreg_ros dcreg.launch.py topic:=/ouster/points
    ros2 launch dcreg_ros dcreg.launch.py bagfile:=/data/corridor sync:=true rviz:=true
    ros2 launch dcreg_ros dcreg.launch.py bagfile:=/data/run player:=ros2bag bag_topic:=/ouster/points
    ros2 launch dcreg_ros dcreg.launch.py namespace:=robot1 frame_prefix:=robot1/ topic:=lidar/points

Arguments (see the DeclareLaunchArgument descriptions below, or `ros2 launch dcreg_ros
dcreg.launch.py --show-args`): topic, config, bagfile, bag_topic, player (dcreg | ros2bag),
sync, rate, wait, wait_for, rviz, use_sim_time, base_frame, odom_frame, frame_prefix, namespace, input_qos,
fastdds_profile, imu_topic, wheel_odom_topic. Every process started here gets the Fast DDS profile for megabyte clouds
(config/fastdds_large_shm.xml) in its own environment. The decisions are made by
dcreg_ros.nodes.launch_support (plain Python, tested without launch).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.substitutions import LaunchConfiguration

from dcreg_ros.nodes.launch_actions import dcreg_process, rviz_process
from dcreg_ros.nodes.launch_support import PLAYER_WAIT, WAIT_FOR_HELP, WAIT_HELP, LaunchSettings, write_rviz_config

ARGUMENTS = [
    ("topic", "points", "sensor_msgs/PointCloud2 input of dcreg_node (relative names live in the namespace)"),
    ("config", None, "ROS 2 params file of dcreg_node (default: the installed config/dcreg.yaml)"),
    ("bagfile", "", "ROS 1 .bag or ROS 2 bag (sqlite3/MCAP) to replay; empty: live sensor"),
    ("bag_topic", "", "PointCloud2 topic in the bag (default: the only one; with player:=ros2bag it is remapped onto topic)"),
    ("player", "dcreg", "bag player: dcreg (dcreg_bag_player, any bag, no rosbag2 needed) or ros2bag (ros2 bag play --clock)"),
    ("sync", "false", "dcreg player only: send each cloud once the odometry of the previous one came back (no drops)"),
    ("rate", "1.0", "playback speed factor of the player"),
    ("wait", PLAYER_WAIT, WAIT_HELP),
    ("wait_for", "", WAIT_FOR_HELP),
    ("rviz", "false", "start RViz with config/dcreg.rviz, fixed frame and topics following odom_frame, frame_prefix, namespace"),
    ("use_sim_time", "", "use /clock (default: true exactly when bagfile is given)"),
    ("base_frame", "base_link", "child frame of the odometry (REP-105)"),
    ("odom_frame", "odom", "odometry frame (REP-105)"),
    ("frame_prefix", "", "prefix of odom_frame and base_frame, e.g. robot1/ for several robots on one TF tree"),
    ("namespace", "", "namespace of every node started (several robots on one machine)"),
    ("input_qos", "", "points subscription QoS: sensor_data or reliable (default: reliable with the dcreg player, else sensor_data)"),
    ("fastdds_profile", None, "Fast DDS profile set for every process started (default: the installed "
                              "config/fastdds_large_shm.xml); none: Fast DDS defaults"),
    ("imu_topic", "", "sensor_msgs/Imu topic of the motion prior (default: motion_prior.imu_topic of the params file); "
                      "replayed from the bag too"),
    ("wheel_odom_topic", "", "nav_msgs/Odometry wheel odometry topic of the motion prior (default: "
                             "motion_prior.wheel_odom_topic of the params file); replayed from the bag too"),
]


def _setup(context, share: str) -> list:
    values = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    settings = LaunchSettings.from_arguments(values)
    settings.check_tools()  # player:=ros2bag without rosbag2: refused with what to use instead
    env = settings.process_environment()
    actions = [dcreg_process("dcreg_node", settings.namespace,
                             parameters=[settings.config, settings.node_parameters()],  # params file first, overrides after
                             remappings=[("points", settings.topic)], additional_env=env)]
    if settings.has_bag and settings.player == "dcreg":
        actions.append(dcreg_process("dcreg_bag_player", settings.namespace, arguments=settings.player_arguments(),
                                     parameters=[{"use_sim_time": settings.sim_time}], remappings=[("points", settings.topic)],
                                     additional_env=env))
    elif settings.has_bag:
        actions.append(ExecuteProcess(cmd=settings.bag_play_command(), output="screen", additional_env=env))
    if settings.show_rviz:
        rviz_config = write_rviz_config(os.path.join(share, "config", "dcreg.rviz"), settings)
        actions.append(rviz_process(str(rviz_config), settings.namespace, settings.sim_time, additional_env=env))
    return actions


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("dcreg_ros")
    defaults = {"config": os.path.join(share, "config", "dcreg.yaml"),
                "fastdds_profile": os.path.join(share, "config", "fastdds_large_shm.xml")}
    arguments = [DeclareLaunchArgument(name, default_value=defaults[name] if default is None else default, description=description)
                 for name, default, description in ARGUMENTS]
    return LaunchDescription([*arguments, OpaqueFunction(function=_setup, args=[share])])
