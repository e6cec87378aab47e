"""Prior maps from simulated passes: what a survey (or a mapping run) of a scene would record.

:func:`map_from_simulation` deskews every scan of a simulation with the true motion, puts it in
the world frame at its true pose and keeps one point per voxel: a map with the sensor's range
noise but no drift, in the frame of the simulation's ground truth (so a localization in it can
be compared with the truth without any alignment).
"""

from __future__ import annotations

from ..core.geometry import transform_points
from ..core.global_map import GlobalMap
from .simulate import SimulationResult, deskew


def map_from_simulation(result: SimulationResult, voxel_size: float = 0.1, with_intensity: bool = True) -> GlobalMap:
    """World-frame map (one point per ``voxel_size`` voxel, m) of every scan of ``result``."""
    world_map = GlobalMap(voxel_size, with_intensity=with_intensity)
    for scan, pose in zip(result.scans, result.ground_truth.poses):
        points = transform_points(pose, deskew(scan, result.motion.poses))
        world_map.insert(points, scan.intensity if with_intensity else None)
    return world_map
