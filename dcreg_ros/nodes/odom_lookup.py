"""Where the localization node gets ``odom -> base_link`` at a scan's stamp (REP-105).

The map -> odom transform a localizer publishes is T_map_odom = T_map_base * inv(T_odom_base),
both at the scan stamp, so it composes with whatever publishes odom -> base_link (our odometry
node, wheel odometry, a LIO package). Two sources behind one method, ``at(stamp)``:

- :class:`TfLookup`: the TF tree through tf2_ros (a full ROS 2 install), waiting briefly for the
  transform at the stamp;
- :class:`OdometryHistory`: the poses of a nav_msgs/Odometry topic, interpolated at the stamp
  (rotation and translation along the relative motion, as the deskewing does), for machines
  without tf2_ros.

``OdometryHistory`` is plain numpy so it is tested without ROS.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from typing import Any

import numpy as np

from ..core.deskew import interpolate_motion
from ..core.geometry import invert_pose
from ..io.ros_time import seconds_to_nanoseconds

HISTORY = 400  # odometry samples kept (40 s at 10 Hz, 4 s at 100 Hz)


class OdometryHistory:
    """Stamped T_odom_base poses (4x4) from an odometry topic, interpolated at any stamp within
    their span; a stamp up to ``tolerance`` seconds outside it gets the nearest pose."""

    def __init__(self, tolerance: float = 0.05, size: int = HISTORY) -> None:
        self.tolerance = float(tolerance)
        self._stamps: deque[float] = deque(maxlen=size)
        self._poses: deque[np.ndarray] = deque(maxlen=size)
        self._lock = threading.Lock()  # filled by a subscription, read by the worker thread

    def add(self, stamp: float, T_odom_base: np.ndarray) -> None:
        """Append a sample; one older than the newest (a replayed or restarted source) clears the
        history first, so interpolation never mixes two time lines."""
        with self._lock:
            if self._stamps and stamp <= self._stamps[-1]:
                if stamp == self._stamps[-1]:
                    return
                self._stamps.clear()
                self._poses.clear()
            self._stamps.append(float(stamp))
            self._poses.append(np.asarray(T_odom_base, dtype=np.float64))

    def __len__(self) -> int:
        return len(self._stamps)

    def at(self, stamp: float) -> np.ndarray | None:
        """T_odom_base at ``stamp`` (s), or None when the history does not cover it."""
        with self._lock:
            if not self._stamps:
                return None
            stamps = list(self._stamps)
            k = bisect.bisect_left(stamps, stamp)
            if k < len(stamps) and stamps[k] == stamp:
                return self._poses[k].copy()
            if k == 0 or k == len(stamps):
                nearest = 0 if k == 0 else len(stamps) - 1
                return self._poses[nearest].copy() if abs(stamps[nearest] - stamp) <= self.tolerance else None
            t0, t1 = stamps[k - 1], stamps[k]
            T0, T1 = self._poses[k - 1], self._poses[k]
        return T0 @ interpolate_motion(invert_pose(T0) @ T1, (stamp - t0) / (t1 - t0))


class TfLookup:
    """T_odom_base from the TF tree through tf2_ros (raises ImportError without it)."""

    def __init__(self, node: Any, odom_frame: str, base_frame: str, timeout: float = 0.05) -> None:
        from tf2_ros import Buffer, TransformListener

        self.odom_frame, self.base_frame, self.timeout = odom_frame, base_frame, timeout
        self._buffer = Buffer()
        self._listener = TransformListener(self._buffer, node)

    def at(self, stamp: float) -> np.ndarray | None:
        from rclpy.duration import Duration
        from rclpy.time import Time

        try:
            msg = self._buffer.lookup_transform(self.odom_frame, self.base_frame, Time(nanoseconds=seconds_to_nanoseconds(stamp)),
                                                timeout=Duration(nanoseconds=int(self.timeout * 1e9)))
        except Exception:  # noqa: BLE001 - tf2 raises LookupException, ExtrapolationException, ...
            return None
        from .ros_messages import matrix_from_pose

        return matrix_from_pose(msg.transform)
