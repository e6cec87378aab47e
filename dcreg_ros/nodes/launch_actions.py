"""The launch actions both launch files build (launch and launch_ros imported here, so only the
launch files import this module; what they start is decided in :mod:`.launch_support`)."""

from __future__ import annotations

from typing import Any

from launch.actions import LogInfo
from launch_ros.actions import Node

from .launch_support import rviz_installed, rviz_missing_note


def dcreg_process(executable: str, namespace: str, **node: Any) -> Node:
    """One of our executables as a launch_ros Node named like the executable, its output on
    the screen; ``node``: parameters, remappings, arguments, additional_env."""
    return Node(package="dcreg_ros", executable=executable, name=executable, namespace=namespace, output="screen", **node)


def rviz_process(config: str, namespace: str, sim_time: bool, **node: Any) -> Any:
    """RViz with ``config`` in ``namespace`` (the config's relative topics resolve there), or, where
    rviz2 is not installed, a launch log line saying so (the rest of the launch goes on)."""
    if not rviz_installed():
        return LogInfo(msg=rviz_missing_note(config))
    return Node(package="rviz2", executable="rviz2", name="rviz2", namespace=namespace, arguments=["-d", config],
                parameters=[{"use_sim_time": sim_time}], **node)
