"""The odometry node's IMU and wheel odometry inputs: messages buffered as they arrive, fed to the
motion prior before each cloud is registered.

The subscription callbacks only convert and append (they run in the executor thread); the
worker drains the buffers into :meth:`dcreg_ros.Odometry.add_imu` / ``add_wheel_odometry`` under
the odometry's lock. Messages that cannot be converted are counted, never fatal; stamps out of
order are dropped and counted by the motion prior itself.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import numpy as np
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from ..core.geometry import pose_from_xyz_rpy, pose_to_xyz_rpy
from ..core.proprioception import GRAVITY
from ..io.proprioception import imu_from_message, imu_samples, magnitudes_in_g, wheel_sample_from_message, wheel_samples

MOTION_INPUT_DEPTH = 400  # two seconds of a 200 Hz IMU: rides out a slow executor


def motion_input_qos(input_qos: str) -> QoSProfile:
    """QoS of the IMU and wheel subscriptions, following the node's ``input_qos``: best effort
    (``sensor_data``) matches every driver; ``reliable`` loses nothing from a reliable publisher
    (the bag player) but does not match a best-effort one."""
    reliability = ReliabilityPolicy.RELIABLE if input_qos == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(depth=MOTION_INPUT_DEPTH, reliability=reliability, history=HistoryPolicy.KEEP_LAST)
G_UNIT_CHECK_SAMPLES = 50  # IMU messages averaged before deciding whether the accelerometer reports in g


class MotionInputBuffer:
    """Thread-safe buffer of IMU and wheel odometry readings between two clouds."""

    def __init__(self, imu: bool = False, wheel: bool = False) -> None:
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.expect_imu, self.expect_wheel = imu, wheel
        self._imu: list = []
        self._wheel: list = []
        self.imu_frame = ""
        self.wheel_child_frame = ""
        self.wheel_frame = ""
        self.imu_received = 0
        self.wheel_received = 0
        self.bad_messages = 0
        self.last_imu_stamp: float | None = None
        self.last_wheel_stamp: float | None = None
        self._accel_scale: float | None = None  # 1, or GRAVITY for a driver that reports in g
        self._norms: list[float] = []

    def add_imu(self, msg: Any) -> None:
        try:
            reading = imu_from_message(msg)
        except Exception:  # noqa: BLE001 - a malformed message is counted, never fatal
            with self._lock:
                self.bad_messages += 1
            return
        with self._lock:
            self.imu_received += 1
            self.imu_frame = self.imu_frame or reading.frame_id
            self.last_imu_stamp = reading.stamp
            self._imu.append(reading)
            self._arrived.notify_all()

    def add_wheel(self, msg: Any) -> None:
        try:
            reading = wheel_sample_from_message(msg)
        except Exception:  # noqa: BLE001
            with self._lock:
                self.bad_messages += 1
            return
        with self._lock:
            self.wheel_received += 1
            self.wheel_child_frame = self.wheel_child_frame or reading.child_frame_id
            self.wheel_frame = self.wheel_frame or reading.frame_id
            self.last_wheel_stamp = reading.stamp
            self._wheel.append(reading)
            self._arrived.notify_all()

    def _unit_scale(self, readings: list) -> float | None:
        """GRAVITY when the first readings look like g (|a| about 1), 1 for m/s², None until known."""
        if self._accel_scale is None:
            self._norms += [float(np.linalg.norm(r.linear_acceleration)) for r in readings]
            if len(self._norms) >= G_UNIT_CHECK_SAMPLES:
                self._accel_scale = GRAVITY if magnitudes_in_g(self._norms) else 1.0
        return self._accel_scale

    def wait_until_covered(self, stamp: float, timeout: float) -> bool:
        """Wait (at most ``timeout`` s of wall time) until every expected input has a message
        at or after ``stamp`` (s): a cloud arrives once its sweep is complete, the IMU and wheel
        messages of its last milliseconds may still be on their way."""

        def covered() -> bool:
            imu_ok = not self.expect_imu or (self.last_imu_stamp is not None and self.last_imu_stamp >= stamp)
            wheel_ok = not self.expect_wheel or (self.last_wheel_stamp is not None and self.last_wheel_stamp >= stamp)
            return imu_ok and wheel_ok

        with self._arrived:
            return self._arrived.wait_for(covered, timeout=timeout)

    def feed(self, odometry: Any) -> None:
        """Hand everything buffered so far to the odometry's motion prior."""
        with self._lock:
            imu, self._imu = self._imu, []
            wheel, self._wheel = self._wheel, []
        if imu:
            scale = self._unit_scale(imu)
            if scale is None:  # keep them until the unit is known (a quarter of a second at 200 Hz)
                with self._lock:
                    self._imu = imu + self._imu
            else:
                odometry.add_imu(imu_samples(imu).scaled_accelerometer(scale))
        if wheel:
            odometry.add_wheel_odometry(wheel_samples(wheel))

    def values(self) -> dict[str, Any]:
        """Diagnostic key-values (only for the inputs that received anything)."""
        out: dict[str, Any] = {}
        with self._lock:
            if self.imu_received:
                out.update(imu_messages=self.imu_received, imu_last_stamp=f"{self.last_imu_stamp:.6f}",
                           imu_accel_unit="g (scaled)" if self._accel_scale == GRAVITY else "m/s^2")
            if self.wheel_received:
                out.update(wheel_messages=self.wheel_received, wheel_last_stamp=f"{self.last_wheel_stamp:.6f}")
            if self.bad_messages:
                out["motion_input_bad_messages"] = self.bad_messages
        return out


def resolve_motion_mountings(lookup: Any, inputs: MotionInputBuffer, lidar_frame: str, motion_prior: Any,
                             timeout: float) -> tuple[Any, list[str]]:
    """The motion prior config with ``imu_to_lidar`` and ``lidar_to_base`` from TF (``lookup``, a
    nodes.mounting.MountingLookup: the cloud's frame <- the IMU message's frame, the wheel
    odometry's child frame <- the cloud's frame), else as configured; and one line per input
    saying where its mounting came from. Inputs that sent nothing yet keep the configured one."""
    details = []
    if inputs.expect_imu and inputs.imu_frame:
        m = lookup.resolve(lidar_frame, inputs.imu_frame, pose_from_xyz_rpy(*motion_prior.imu_to_lidar), timeout,
                           "motion_prior.imu_to_lidar")
        motion_prior = replace(motion_prior, imu_to_lidar=tuple(float(v) for v in pose_to_xyz_rpy(m.T_base_lidar)))
        details.append(f"IMU: {m.detail}")
    if inputs.expect_wheel and inputs.wheel_child_frame:
        m = lookup.resolve(inputs.wheel_child_frame, lidar_frame, pose_from_xyz_rpy(*motion_prior.lidar_to_base), timeout,
                           "motion_prior.lidar_to_base")
        motion_prior = replace(motion_prior, lidar_to_base=tuple(float(v) for v in pose_to_xyz_rpy(m.T_base_lidar)))
        details.append(f"wheel odometry: {m.detail}")
    return motion_prior, details
