"""Forward speed over time for the robot-like motion profiles: seeded, smooth, closed form.

A :class:`SpeedProfile` is a chain of segments. Within a segment of duration T the speed moves
from v0 to v1 along a cosine ramp, v(tau) = v0 + (v1 - v0) (1 - cos(pi tau / T)) / 2, whose
acceleration (v1 - v0) pi / (2 T) sin(pi tau / T) starts and ends at zero: speed and acceleration
are continuous everywhere (the jerk is bounded), and the distance is closed form. A hold is a
segment with v0 = v1. The ramp's *peak* acceleration is pi |v1 - v0| / (2 T); the builders below
draw that peak (what an accelerometer would show) and derive T from it.

Times are seconds after the motion's start; before 0 the robot stands at distance 0 with the
first segment's start speed (0 for every builder here), after the last segment it keeps its final
speed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SpeedProfile:
    """Segments i = 0..K-1 from ``boundaries[i]`` to ``boundaries[i + 1]`` (s), speed ``v0[i]`` ->
    ``v1[i]`` (m/s) along a cosine ramp; ``s0[i]`` is the distance (m) at the segment's start."""

    boundaries: np.ndarray
    v0: np.ndarray
    v1: np.ndarray
    s0: np.ndarray

    @classmethod
    def from_segments(cls, segments: list[tuple[float, float, float]]) -> "SpeedProfile":
        """From (duration s, start speed, end speed) triples, in order."""
        durations = np.array([d for d, _, _ in segments], dtype=np.float64)
        if np.any(durations <= 0.0):
            raise ValueError("segment durations must be > 0")
        v0 = np.array([a for _, a, _ in segments], dtype=np.float64)
        v1 = np.array([b for _, _, b in segments], dtype=np.float64)
        boundaries = np.concatenate([[0.0], np.cumsum(durations)])
        lengths = 0.5 * (v0 + v1) * durations  # the cosine ramp's mean speed is the mid speed
        return cls(boundaries, v0, v1, np.concatenate([[0.0], np.cumsum(lengths)[:-1]]))

    @property
    def duration(self) -> float:
        """End of the last segment (s)."""
        return float(self.boundaries[-1])

    def _locate(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Segment index, time into it (clipped to the segment), its duration and v1 - v0."""
        k = np.clip(np.searchsorted(self.boundaries, t, side="right") - 1, 0, len(self.v0) - 1)
        T = self.boundaries[k + 1] - self.boundaries[k]
        tau = np.clip(t - self.boundaries[k], 0.0, T)
        return k, tau, T, self.v1[k] - self.v0[k]

    def distance(self, t) -> np.ndarray:
        """Distance travelled (m) at times ``t`` (s)."""
        t = np.asarray(t, dtype=np.float64)
        k, tau, T, dv = self._locate(t)
        s = self.s0[k] + self.v0[k] * tau + 0.5 * dv * (tau - T / np.pi * np.sin(np.pi * tau / T))
        before, after = t < self.boundaries[0], t > self.boundaries[-1]
        s = np.where(before, self.v0[0] * (t - self.boundaries[0]), s)
        return np.where(after, s + self.v1[-1] * (t - self.boundaries[-1]), s)

    def speed(self, t) -> np.ndarray:
        """Forward speed (m/s) at times ``t`` (s)."""
        t = np.asarray(t, dtype=np.float64)
        k, tau, T, dv = self._locate(t)
        return self.v0[k] + 0.5 * dv * (1.0 - np.cos(np.pi * tau / T))

    def acceleration(self, t) -> np.ndarray:
        """Forward acceleration (m/s²) at times ``t`` (s); zero outside the segments."""
        t = np.asarray(t, dtype=np.float64)
        k, tau, T, dv = self._locate(t)
        inside = (t >= self.boundaries[0]) & (t <= self.boundaries[-1])
        return np.where(inside, 0.5 * dv * np.pi / T * np.sin(np.pi * tau / T), 0.0)


def _ramp(v0: float, v1: float, peak_acceleration: float) -> tuple[float, float, float]:
    """A cosine ramp v0 -> v1 whose peak acceleration is ``peak_acceleration`` (m/s²)."""
    return np.pi * abs(v1 - v0) / (2.0 * peak_acceleration), v0, v1


def variable_speed(rng: np.random.Generator, duration: float, speeds: tuple[float, float] = (0.5, 2.0),
                   hold: tuple[float, float] = (2.0, 6.0), accelerations: tuple[float, float] = (0.3, 1.0),
                   start_rest: float = 0.5, min_change: float = 0.3) -> SpeedProfile:
    """Speed changing between ``speeds`` (m/s): start at rest for ``start_rest`` s, then ramp to a
    target speed, hold it ``hold`` s, ramp to the next target (at least ``min_change`` m/s away)
    and so on, every ramp with a peak acceleration drawn from ``accelerations`` (m/s²); at least
    ``duration`` s long."""
    segments = [(start_rest, 0.0, 0.0)]
    v, elapsed = 0.0, start_rest
    while elapsed < duration:
        target = v
        while abs(target - v) < min_change:
            target = float(rng.uniform(*speeds))
        ramp = _ramp(v, target, float(rng.uniform(*accelerations)))
        held = (float(rng.uniform(*hold)), target, target)
        segments += [ramp, held]
        elapsed += ramp[0] + held[0]
        v = target
    return SpeedProfile.from_segments(segments)


def stop_and_go_speed(rng: np.random.Generator, duration: float, cruise_speeds: tuple[float, float] = (1.0, 2.0),
                      cruise: tuple[float, float] = (3.0, 8.0), accelerations: tuple[float, float] = (0.5, 1.0),
                      decelerations: tuple[float, float] = (0.5, 1.5), wait: tuple[float, float] = (2.0, 5.0),
                      start_rest: float = 1.0) -> SpeedProfile:
    """Stop and go: stand ``start_rest`` s, accelerate (peak drawn from ``accelerations`` m/s²) to a
    cruise speed drawn from ``cruise_speeds`` (m/s), cruise ``cruise`` s, brake (peak from
    ``decelerations``) to a full stop, wait ``wait`` s, and again; at least ``duration`` s long."""
    segments = [(start_rest, 0.0, 0.0)]
    elapsed = start_rest
    while elapsed < duration:
        v = float(rng.uniform(*cruise_speeds))
        cycle = [_ramp(0.0, v, float(rng.uniform(*accelerations))), (float(rng.uniform(*cruise)), v, v),
                 _ramp(v, 0.0, float(rng.uniform(*decelerations))), (float(rng.uniform(*wait)), 0.0, 0.0)]
        segments += cycle
        elapsed += sum(d for d, _, _ in cycle)
    return SpeedProfile.from_segments(segments)
