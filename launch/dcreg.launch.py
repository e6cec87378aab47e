"""Launch DCReg LiDAR odometry: dcreg_node, optionally a bag replay and RViz.

    ros2 launch dcreg_ros dcreg.launch.py topic:=/ouster/points
    ros2 launch dcreg_ros dcreg.launch.py bagfile:=/data/corridor rviz:=true

Arguments: topic (PointCloud2 input), config (params file), bagfile (replayed with
dcreg_bag_player when given; use_sim_time then defaults to true), rviz, use_sim_time,
base_frame, odom_frame, input_qos (reliable when replaying a bag, else sensor_data).
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
    topic = LaunchConfiguration("topic")
    config = LaunchConfiguration("config")
    bagfile = LaunchConfiguration("bagfile")
    rviz = LaunchConfiguration("rviz")
    use_sim_time = LaunchConfiguration("use_sim_time")
    base_frame = LaunchConfiguration("base_frame")
    odom_frame = LaunchConfiguration("odom_frame")
    input_qos = LaunchConfiguration("input_qos")
    have_bag = PythonExpression(["'", bagfile, "' != ''"])
    sim_time = ParameterValue(use_sim_time, value_type=bool)

    arguments = [
        DeclareLaunchArgument("topic", default_value="/points", description="sensor_msgs/PointCloud2 input topic"),
        DeclareLaunchArgument("config", default_value=os.path.join(share, "config", "dcreg.yaml"),
                              description="ROS 2 params file of dcreg_node"),
        DeclareLaunchArgument("bagfile", default_value="",
                              description="ROS 1 .bag or ROS 2 bag (sqlite3/MCAP) to replay with dcreg_bag_player"),
        DeclareLaunchArgument("rviz", default_value="false", description="start RViz with config/dcreg.rviz"),
        # replayed bags carry their own time: default to sim time exactly when a bag is given
        DeclareLaunchArgument("use_sim_time", default_value=have_bag, description="use /clock (default: true with bagfile)"),
        DeclareLaunchArgument("base_frame", default_value="base_link", description="child frame of the odometry"),
        DeclareLaunchArgument("odom_frame", default_value="odom", description="odometry frame"),
        # the player publishes reliably: a reliable subscriber then loses no large clouds
        DeclareLaunchArgument("input_qos", default_value=PythonExpression(["'reliable' if ", have_bag, " else 'sensor_data'"]),
                              description="QoS of the points subscription: sensor_data or reliable (overrides the params file)"),
    ]

    odometry = Node(
        package="dcreg_ros",
        executable="dcreg_node",
        name="dcreg_node",
        output="screen",
        parameters=[
            config,
            {
                "use_sim_time": sim_time,
                "base_frame": ParameterValue(base_frame, value_type=str),
                "odom_frame": ParameterValue(odom_frame, value_type=str),
                "input_qos": ParameterValue(input_qos, value_type=str),
            },
        ],
        remappings=[("points", topic)],
    )
    player = Node(
        package="dcreg_ros",
        executable="dcreg_bag_player",
        name="dcreg_bag_player",
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
        arguments=["-d", os.path.join(share, "config", "dcreg.rviz")],
        parameters=[{"use_sim_time": sim_time}],
        condition=IfCondition(rviz),
    )
    return LaunchDescription([*arguments, odometry, player, viewer])
