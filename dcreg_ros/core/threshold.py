"""Adaptive correspondence threshold from how much the motion model was wrong so far.

After every frame, the deviation between the predicted and the registered pose is measured as
translation error plus the displacement the rotation error causes at the sensor's maximum range.
Its root mean square over the frames where it exceeded ``min_motion`` is sigma (KISS-ICP's rule:
a robot standing still, or a frame the prediction got right to within ``min_motion``, does not
shrink it); correspondences are accepted within 3 sigma and the robust kernel scale is sigma / 3.

A prediction that is always that good (an IMU's or the wheels' from the first frames) leaves no
such error, and KISS-ICP's rule keeps the initial sigma (2 m: a robust kernel of 0.67 m, i.e.
none) for the whole run: measured in a tunnel with the IMU, the x estimate then drifted by 9 cm
(0.5 cm with this fallback). After QUIET_FRAMES frames that moved by more than ``min_motion``
with a prediction within it, and no larger error yet, sigma is ``min_motion``: the odometry
passes the previous pose to :meth:`AdaptiveThreshold.update` for that; the localizer does not
(against a fixed map the wide initial threshold is what lets a few features pull back a drift
along a weak axis: the sparse corridor with the IMU, seed 3, 2.6 cm -> 6.7 m with the fallback).
"""

from __future__ import annotations

import numpy as np

QUIET_FRAMES = 10  # moving frames predicted to within min_motion before sigma falls back to it


def motion_size(delta: np.ndarray, max_range: float) -> float:
    """Size of a pose change (4x4) in metres: its translation plus the displacement its rotation
    causes at ``max_range``."""
    cos_angle = np.clip(0.5 * (np.trace(delta[:3, :3]) - 1.0), -1.0, 1.0)
    return float(np.linalg.norm(delta[:3, 3]) + 2.0 * max_range * np.sin(0.5 * np.arccos(cos_angle)))


class AdaptiveThreshold:
    """Running estimate of the motion-model error sigma (m)."""

    def __init__(self, initial: float, min_motion: float, max_range: float) -> None:
        self.initial = float(initial)
        self.min_motion = float(min_motion)
        self.max_range = float(max_range)
        self.reset()

    @property
    def sigma(self) -> float:
        if self._samples == 0:
            return self.min_motion if self._quiet >= QUIET_FRAMES else self.initial
        return float(np.sqrt(self._sse / self._samples))

    def update(self, predicted: np.ndarray, estimated: np.ndarray, previous: np.ndarray | None = None) -> None:
        """Account for one frame: predicted and estimated poses, 4x4, and the previous frame's
        pose (None: the frame's motion is not counted for the fallback)."""
        error = motion_size(np.linalg.inv(predicted) @ estimated, self.max_range)
        if error > self.min_motion:
            self._sse += error * error
            self._samples += 1
        elif previous is not None and motion_size(np.linalg.inv(previous) @ estimated, self.max_range) > self.min_motion:
            self._quiet += 1

    def reset(self) -> None:
        self._sse = 0.0
        self._samples = 0
        self._quiet = 0
