"""The odometry's motion inputs from a bag: IMU and wheel odometry topics and their mountings.

``dcreg run --imu-topic /imu --wheel-odom-topic /wheel/odom`` reads both topics in full (a few
hundred kB per minute) before the run, and the mountings from the bag's ``/tf_static`` (the
LiDAR's frame is the clouds' ``frame_id``); where a bag has no static transform joining the
frames, the config's ``motion_prior.imu_to_lidar`` / ``lidar_to_base`` are used, and the notes
say which.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..core.geometry import pose_to_xyz_rpy
from ..core.odometry import OdometryConfig
from ..core.proprioception import GRAVITY, ImuSamples, WheelOdometrySamples
from .proprioception import TransformError, accelerometer_in_g, lookup_transform, read_imu, read_static_transforms, read_wheel_odometry


@dataclass
class MotionInputs:
    """IMU and wheel measurements for :meth:`dcreg_ros.Odometry.add_imu` / ``add_wheel_odometry``
    and the static transforms of the bag ({(parent, child): T_parent_child})."""

    imu: ImuSamples | None = None
    wheel: WheelOdometrySamples | None = None
    transforms: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    skipped: int = 0  # undecodable messages

    @property
    def empty(self) -> bool:
        return self.imu is None and self.wheel is None

    def feed(self, target: Any) -> None:
        """Hand the measurements to a :class:`dcreg_ros.Odometry` or :class:`dcreg_ros.Localizer`
        (anything with ``expect_motion_inputs``, ``add_imu`` and ``add_wheel_odometry``)."""
        target.expect_motion_inputs(self.imu is not None, self.wheel is not None)
        if self.imu is not None:
            target.add_imu(self.imu)
        if self.wheel is not None:
            target.add_wheel_odometry(self.wheel)

    def configure(self, config: OdometryConfig, lidar_frame: str) -> tuple[OdometryConfig, list[str]]:
        """``config`` (an odometry or localization config) with the mountings the bag's static transforms give for ``lidar_frame``
        (notes say where each came from)."""
        mp, notes = config.motion_prior, []
        if self.imu is not None:
            try:
                T = lookup_transform(self.transforms, lidar_frame, self.imu.frame_id)
                mp = replace(mp, imu_to_lidar=tuple(float(v) for v in pose_to_xyz_rpy(T)))
                notes.append(f"IMU mounting {lidar_frame} -> {self.imu.frame_id} from /tf_static")
            except TransformError:
                notes.append(f"IMU mounting from motion_prior.imu_to_lidar (no static transform {lidar_frame} -> {self.imu.frame_id})")
        if self.wheel is not None:
            try:
                T = lookup_transform(self.transforms, self.wheel.child_frame_id, lidar_frame)
                mp = replace(mp, lidar_to_base=tuple(float(v) for v in pose_to_xyz_rpy(T)))
                notes.append(f"LiDAR mounting {self.wheel.child_frame_id} -> {lidar_frame} from /tf_static")
            except TransformError:
                notes.append(f"LiDAR mounting from motion_prior.lidar_to_base (no static transform {self.wheel.child_frame_id} -> {lidar_frame})")
        return replace(config, motion_prior=mp), notes


def load_motion_inputs(path: str | Path, imu_topic: str | None, wheel_topic: str | None) -> MotionInputs:
    """Read the named topics (either may be None) and the static transforms of a bag. Raises a
    one-line BagError for a missing topic or one of another type."""
    out = MotionInputs()
    if imu_topic is None and wheel_topic is None:
        return out
    out.transforms = read_static_transforms(path)
    if imu_topic is not None:
        stats: dict = {}
        imu = read_imu(path, imu_topic, stats)
        out.skipped += stats.get("skipped", 0)
        if len(imu) == 0:
            out.notes.append(f"{imu_topic}: no usable IMU message; constant-velocity prediction")
        else:
            if accelerometer_in_g(imu):
                imu = imu.scaled_accelerometer(GRAVITY)
                out.notes.append(f"{imu_topic}: the accelerometer reports in g (|a| about 1 at rest); scaled to m/s²")
            out.imu = imu
    if wheel_topic is not None:
        stats = {}
        wheel = read_wheel_odometry(path, wheel_topic, stats)
        out.skipped += stats.get("skipped", 0)
        if len(wheel) == 0:
            out.notes.append(f"{wheel_topic}: no usable odometry message; constant-velocity prediction")
        else:
            out.wheel = wheel
    return out
