"""Console entry points of the ROS executables (setup.py): the stop-signal handling first
(standard library only), then the node's module with numpy, numba and rclpy, so that a Ctrl-C
even during those imports ends the process with status 0 and no traceback (nodes/stop_signals.py).
"""

from __future__ import annotations

from importlib import import_module

from .stop_signals import install


def _run(module: str) -> int:
    stop = install()
    try:
        with stop.interruptible():
            main = import_module(module).main
    except BaseException:
        if not stop.requested:
            raise
        stop.exiting()  # stopped while importing (the interrupt may surface as another error)
        return 0
    try:
        return main()
    finally:
        stop.exiting()


def dcreg_node() -> int:
    """``dcreg_node``: dcreg_ros.nodes.odometry_node.main."""
    return _run("dcreg_ros.nodes.odometry_node")


def dcreg_localization_node() -> int:
    """``dcreg_localization_node``: dcreg_ros.nodes.localization_node.main."""
    return _run("dcreg_ros.nodes.localization_node")


def dcreg_bag_player() -> int:
    """``dcreg_bag_player``: dcreg_ros.nodes.bag_player.main."""
    return _run("dcreg_ros.nodes.bag_player")
