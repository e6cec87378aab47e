"""Where the LiDAR sits on the robot: T_base_lidar from TF, or from the ``lidar_to_base`` parameter.

Robots publish the mounting on /tf_static (robot_state_publisher from the URDF), so the node
looks up ``base_frame`` <- the cloud's ``header.frame_id`` with tf2_ros when it is installed. The
mounting is resolved at the first cloud of each sequence and kept until the next reset: the odom
frame is defined through it, so changing it within a sequence would make the trajectory jump.
tf2_ros is imported only here and only when TF mounting is enabled; without it (this project's
venv: it is not on PyPI) the parameter is used and the diagnostics say why.
"""

from __future__ import annotations

import threading
import time
from typing import Any, NamedTuple

import numpy as np

from ..io.proprioception import TransformError, lookup_transform, transforms_from_message
from ..io.trajectory import matrix_from_message

TF = "tf"
PARAMETER = "parameter"
IDENTITY = "identity"


class Mounting(NamedTuple):
    """T_base_lidar (4x4, m) with where it came from: ``source`` TF, PARAMETER or IDENTITY
    (the cloud is already in the base frame), and a one-line ``detail`` for the diagnostics."""

    T_base_lidar: np.ndarray
    source: str
    detail: str


class StaticTransforms:
    """The transforms received on /tf_static (transient local, as tf2 latches them), for a
    node without tf2_ros: chains are composed with :func:`dcreg_ros.io.proprioception.lookup_transform`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.transforms: dict[tuple[str, str], np.ndarray] = {}

    @classmethod
    def subscribe(cls, node: Any) -> "StaticTransforms | None":
        try:
            from tf2_msgs.msg import TFMessage
        except ImportError:
            return None
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

        out = cls()
        latched = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        out.subscription = node.create_subscription(TFMessage, "/tf_static", out._on_message, latched)
        return out

    def _on_message(self, msg: Any) -> None:
        with self._lock:
            for t in transforms_from_message(msg):
                self.transforms[(t.parent, t.child)] = t.T_parent_child

    def lookup(self, parent: str, child: str, timeout: float) -> np.ndarray | None:
        """T_parent_child, waiting up to ``timeout`` seconds for the chain to be known."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                known = dict(self.transforms)
            try:
                return lookup_transform(known, parent, child)
            except TransformError:
                if time.monotonic() >= deadline:
                    return None
            time.sleep(0.05)


class MountingLookup:
    """Resolves the mounting for a node: a tf2_ros buffer and listener on ``node`` when TF
    mounting is wanted and tf2_ros is installed, else the parameter only."""

    def __init__(self, node: Any, use_tf: bool) -> None:
        self._buffer: Any = None
        self._listener: Any = None
        self._static: StaticTransforms | None = None
        if not use_tf:
            self.tf_unavailable = "use_tf_mounting is false"
            return
        try:
            import tf2_ros
        except ImportError:
            # without tf2_ros, the static transforms (where mountings live) still arrive on /tf_static
            self._static = StaticTransforms.subscribe(node)
            self.tf_unavailable = "tf2_ros is not installed" + ("" if self._static else " (nor tf2_msgs)")
            return
        self.tf_unavailable = ""
        self._tf2_ros = tf2_ros
        self._buffer = tf2_ros.Buffer()
        # the listener's subscriptions (/tf, /tf_static) are served by the node's executor; the
        # lookup below waits in the caller's thread (the node's worker), not in the executor
        self._listener = tf2_ros.TransformListener(self._buffer, node)

    def resolve(self, base_frame: str, lidar_frame: str, fallback: np.ndarray, timeout: float,
                parameter: str = "lidar_to_base") -> Mounting:
        """The mounting of ``lidar_frame`` on ``base_frame`` (T_base_lidar, or any T_parent_child):
        from TF (waiting up to ``timeout`` seconds for it), else ``fallback``, the value of the
        parameter named ``parameter``."""
        if lidar_frame == base_frame:
            return Mounting(np.eye(4), IDENTITY, f"{lidar_frame} is {base_frame} already")
        if not lidar_frame:
            return Mounting(fallback, PARAMETER, f"{parameter} (no frame_id)")
        if self._static is not None:
            T = self._static.lookup(base_frame, lidar_frame, timeout)
            if T is not None:
                return Mounting(T, TF, f"/tf_static {base_frame} <- {lidar_frame}")
            return Mounting(fallback, PARAMETER, f"{parameter} (no /tf_static chain {base_frame} <- {lidar_frame} "
                                                 f"within {timeout:g} s; tf2_ros is not installed)")
        if self._buffer is None:
            return Mounting(fallback, PARAMETER, f"{parameter} ({self.tf_unavailable})")
        from rclpy.duration import Duration
        from rclpy.time import Time

        try:
            stamped = self._buffer.lookup_transform(base_frame, lidar_frame, Time(), timeout=Duration(seconds=timeout))
        except self._tf2_ros.TransformException as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return Mounting(fallback, PARAMETER, f"{parameter} (no TF {base_frame} <- {lidar_frame} within {timeout:g} s: {reason})")
        transform = stamped.transform
        return Mounting(matrix_from_message(transform.translation, transform.rotation), TF, f"TF {base_frame} <- {lidar_frame}")
