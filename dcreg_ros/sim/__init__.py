"""LiDAR simulation of degenerate scenes with ground truth (poses and per-frame degeneracy).

Where real degenerate data with ground truth is scarce, odometry can be evaluated here: exact ray
casting (:mod:`.raycast`) against analytic scenes (:mod:`.scenes`) by a spinning LiDAR model
(:mod:`.sensors`) moving along a seeded path (:mod:`.trajectories` for the smooth profile,
:mod:`.motion_profiles` for the robot-like ones, :mod:`.handheld` for a person walking with it);
:func:`simulate` ties them together, with a simulated IMU and wheel odometry
(:mod:`.proprioception`: IMU grades, wheel errors, :mod:`.wheel_slip` episodes) and scan drops
(:mod:`.scan_drops`: a lower frame rate, lost scans), and :func:`write_simulation` stores a ROS 2
bag with the truth beside it.
"""

from .motion_profiles import MOTION_PROFILES
from .proprioception import IMU_GRADES, ImuModel, WheelModel
from .scan_drops import ScanDrops
from .scenes import SCENE_NAMES, SCENES, Scene, build_scene
from .sensors import LidarModel, sensor_preset
from .simulate import (SimulationResult, deskew, load_degeneracy_truth, load_simulation_info, load_slip_episodes, simulate,
                       write_simulation)
from .wheel_slip import SLIP_KINDS, SlipEpisode, WheelSlip, slipping

__all__ = [
    "IMU_GRADES",
    "MOTION_PROFILES",
    "ImuModel",
    "SCENES",
    "SCENE_NAMES",
    "LidarModel",
    "ScanDrops",
    "Scene",
    "SLIP_KINDS",
    "SlipEpisode",
    "WheelModel",
    "WheelSlip",
    "SimulationResult",
    "build_scene",
    "deskew",
    "load_degeneracy_truth",
    "load_simulation_info",
    "load_slip_episodes",
    "slipping",
    "sensor_preset",
    "simulate",
    "write_simulation",
]
