"""Adaptive correspondence threshold from how much the motion model was wrong so far.

After every frame, the deviation between the constant-velocity prediction and the registered
pose is measured as translation error plus the displacement the rotation error causes at the
sensor's maximum range. Its root mean square over frames that moved is sigma; correspondences
are accepted within 3 sigma and the robust kernel scale is sigma / 3.
"""

from __future__ import annotations

import numpy as np


class AdaptiveThreshold:
    """Running estimate of the motion-model error sigma (m)."""

    def __init__(self, initial: float, min_motion: float, max_range: float) -> None:
        self.initial = float(initial)
        self.min_motion = float(min_motion)
        self.max_range = float(max_range)
        self._sse = 0.0
        self._samples = 0

    @property
    def sigma(self) -> float:
        if self._samples == 0:
            return self.initial
        return float(np.sqrt(self._sse / self._samples))

    def update(self, predicted: np.ndarray, estimated: np.ndarray) -> None:
        """Account for one frame: predicted and estimated poses, 4x4."""
        deviation = np.linalg.inv(predicted) @ estimated
        cos_angle = np.clip(0.5 * (np.trace(deviation[:3, :3]) - 1.0), -1.0, 1.0)
        rotation_part = 2.0 * self.max_range * np.sin(0.5 * np.arccos(cos_angle))
        error = float(np.linalg.norm(deviation[:3, 3]) + rotation_part)
        if error > self.min_motion:
            self._sse += error * error
            self._samples += 1

    def reset(self) -> None:
        self._sse = 0.0
        self._samples = 0
