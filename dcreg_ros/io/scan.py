"""One LiDAR scan as the package passes it around, independent of its source (bag, file, ROS)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Scan:
    """A LiDAR scan in the sensor frame.

    ``stamp``: header stamp (s). ``points``: (N, 3) float64 metres. ``times``: (N,) float64
    seconds of each point relative to ``stamp`` (>= 0, e.g. 0 .. 0.1 for a 10 Hz spinning LiDAR;
    NaN where the source's time was not a number) or None when the source has no per-point time.
    ``intensity``: (N,) or None.
    """

    stamp: float
    points: np.ndarray
    times: np.ndarray | None = None
    intensity: np.ndarray | None = None
    frame_id: str = "lidar"

    def __len__(self) -> int:
        return len(self.points)

    @property
    def sweep_end(self) -> float:
        """When the sweep ended (s): the stamp plus the latest per-point time (the stamp itself
        without per-point times). A driver publishes the cloud after this instant."""
        return self.stamp + (float(np.nanmax(self.times)) if self.times is not None and len(self.times) else 0.0)
