"""Launch DCReg localization in a prior map: dcreg_localization_node, by default dcreg_node for
odom -> base_link, optionally a bag replay and RViz.

    ros2 launch dcreg_ros localization.launch.py map:=/maps/floor2.pcd topic:=/ouster/points
    ros2 launch dcreg_ros localization.launch.py map:=/maps/floor2.pcd bagfile:=/data/run2 rviz:=true

Arguments: map (the PCD map, required), topic (PointCloud2 input), config (params file of the
localization node), bagfile (replayed with dcreg_bag_player; use_sim_time then defaults to true),
rviz (config/localization.rviz: map, pose, markers, "2D Pose Estimate" on initialpose),
use_sim_time, map_frame, odom_frame, base_frame, namespace (every node and RViz in it),
odometry (start dcreg_node for odom -> base_link; false when wheel odometry or another LIO
publishes it), initial_pose_source (parameter, topic or global).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("dcreg_ros")
    map_file = LaunchConfiguration("map")
    topic = LaunchConfiguration("topic")
    config = LaunchConfiguration("config")
    bagfile = LaunchConfiguration("bagfile")
    rviz = LaunchConfiguration("rviz")
    use_sim_time = LaunchConfiguration("use_sim_time")
    map_frame = LaunchConfiguration("map_frame")
    odom_frame = LaunchConfiguration("odom_frame")
    base_frame = LaunchConfiguration("base_frame")
    namespace = LaunchConfiguration("namespace")
    odometry = LaunchConfiguration("odometry")
    initial_pose_source = LaunchConfiguration("initial_pose_source")
    have_bag = PythonExpression(["'", bagfile, "' != ''"])
    sim_time = ParameterValue(use_sim_time, value_type=bool)
    qos = PythonExpression(["'reliable' if ", have_bag, " else 'sensor_data'"])  # the player publishes reliably

    arguments = [
        DeclareLaunchArgument("map", description="the prior map: binary PCD from dcreg/save_map or `dcreg run --save-map`"),
        DeclareLaunchArgument("topic", default_value="/points", description="sensor_msgs/PointCloud2 input topic"),
        DeclareLaunchArgument("config", default_value=os.path.join(share, "config", "localization_node.yaml"),
                              description="ROS 2 params file of dcreg_localization_node"),
        DeclareLaunchArgument("bagfile", default_value="",
                              description="ROS 1 .bag or ROS 2 bag (sqlite3/MCAP) to replay with dcreg_bag_player"),
        DeclareLaunchArgument("rviz", default_value="false", description="start RViz with config/localization.rviz"),
        DeclareLaunchArgument("use_sim_time", default_value=have_bag, description="use /clock (default: true with bagfile)"),
        DeclareLaunchArgument("map_frame", default_value="map", description="frame of the map (REP-105)"),
        DeclareLaunchArgument("odom_frame", default_value="odom", description="odometry frame (map -> odom is published)"),
        DeclareLaunchArgument("base_frame", default_value="base_link", description="robot frame"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of every node (multi-robot)"),
        DeclareLaunchArgument("odometry", default_value="true",
                              description="also start dcreg_node for odom -> base_link (false with wheel odometry or another LIO)"),
        DeclareLaunchArgument("initial_pose_source", default_value="topic",
                              description="parameter (initial_pose in the params file), topic (RViz 2D Pose Estimate) or global"),
    ]
    frames = {"base_frame": ParameterValue(base_frame, value_type=str), "odom_frame": ParameterValue(odom_frame, value_type=str)}

    localization = Node(
        package="dcreg_ros",
        executable="dcreg_localization_node",
        name="dcreg_localization_node",
        namespace=namespace,
        output="screen",
        parameters=[
            config,
            {
                "map_file": ParameterValue(map_file, value_type=str),
                "use_sim_time": sim_time,
                "map_frame": ParameterValue(map_frame, value_type=str),
                "initial_pose_source": ParameterValue(initial_pose_source, value_type=str),
                "input_qos": ParameterValue(qos, value_type=str),
                **frames,
            },
        ],
        remappings=[("points", topic)],
    )
    odometry_node = Node(
        package="dcreg_ros",
        executable="dcreg_node",
        name="dcreg_node",
        namespace=namespace,
        output="screen",
        parameters=[os.path.join(share, "config", "dcreg.yaml"),
                    {"use_sim_time": sim_time, "input_qos": ParameterValue(qos, value_type=str), **frames}],
        remappings=[("points", topic)],
        condition=IfCondition(odometry),
    )
    player = Node(
        package="dcreg_ros",
        executable="dcreg_bag_player",
        name="dcreg_bag_player",
        namespace=namespace,
        output="screen",
        arguments=[bagfile],
        parameters=[{"use_sim_time": sim_time}],
        remappings=[("points", topic)],
        condition=IfCondition(have_bag),
    )
    viewer = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        namespace=namespace,  # the config's topics are relative: they resolve in this namespace
        arguments=["-d", os.path.join(share, "config", "localization.rviz")],
        parameters=[{"use_sim_time": sim_time}],
        condition=IfCondition(rviz),
    )
    return LaunchDescription([*arguments, localization, odometry_node, player, viewer])
