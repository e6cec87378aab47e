"""Spinning multi-beam LiDAR models: beam geometry, firing times, range noise, dropout, intensity.

Sensor frame (REP-103): x forward, y left, z up. The head spins counter-clockwise seen from
above, starting behind the sensor (azimuth -180 deg), so the seam of a revolution is at the back.
All beams of a column fire together; column c fires at ``c * period / columns`` seconds after the
scan start, so point times are non-decreasing in azimuth and lie in [0, period).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class LidarModel:
    """A spinning LiDAR. Angles in degrees, ranges in metres, ``range_noise`` is the Gaussian
    standard deviation (m) along the beam, ``dropout`` the probability that a return is lost,
    ``period`` the revolution time (s)."""

    name: str
    beams: int
    elevation_min_deg: float
    elevation_max_deg: float
    columns: int = 1024
    min_range: float = 0.5
    max_range: float = 100.0
    range_noise: float = 0.015
    dropout: float = 0.0
    period: float = 0.1

    def __post_init__(self) -> None:
        if self.beams < 1 or self.columns < 1:
            raise ValueError("a LiDAR needs at least one beam and one column")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.range_noise < 0.0 or self.period <= 0.0 or not 0.0 <= self.min_range < self.max_range:
            raise ValueError("need range_noise >= 0, period > 0 and 0 <= min_range < max_range")

    @property
    def rays_per_scan(self) -> int:
        return self.beams * self.columns

    def elevations(self) -> np.ndarray:
        """(beams,) elevation angles (rad), bottom beam first, evenly spaced."""
        return np.radians(np.linspace(self.elevation_min_deg, self.elevation_max_deg, self.beams))

    def azimuths(self) -> np.ndarray:
        """(columns,) azimuth (rad) of each column in firing order, increasing from -pi."""
        return -np.pi + 2.0 * np.pi * np.arange(self.columns) / self.columns

    def column_times(self) -> np.ndarray:
        """(columns,) firing time (s) of each column relative to the scan start, in [0, period)."""
        return np.arange(self.columns) * (self.period / self.columns)

    def beam_directions(self) -> np.ndarray:
        """(columns, beams, 3) unit ray directions in the sensor frame, firing order."""
        el = self.elevations()[None, :]
        az = self.azimuths()[:, None]
        shape = (self.columns, self.beams)
        return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.broadcast_to(np.sin(el), shape)], axis=-1)

    def measure(self, true_ranges: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Noisy ranges (m) and the mask of returns kept: the true range within
        [min_range, max_range], not dropped out, and the noisy range still positive."""
        kept = np.isfinite(true_ranges) & (true_ranges >= self.min_range) & (true_ranges <= self.max_range)
        if self.dropout > 0.0:
            kept &= rng.random(true_ranges.shape) >= self.dropout
        ranges = true_ranges + (rng.normal(0.0, self.range_noise, true_ranges.shape) if self.range_noise > 0.0 else 0.0)
        kept &= ranges > 0.0
        return ranges, kept

    @staticmethod
    def intensity(reflectivity: np.ndarray, cos_incidence: np.ndarray, ranges: np.ndarray) -> np.ndarray:
        """Plausible return intensity (0..255 float): Lambertian in the incidence angle, brighter
        for reflective surfaces, mildly weaker with range (receivers compensate most of 1/r^2)."""
        lambert = 0.25 + 0.75 * np.abs(cos_incidence)
        falloff = 1.0 / (1.0 + (ranges / 80.0) ** 2)
        return (255.0 * np.clip(reflectivity * lambert * falloff, 0.0, 1.0)).astype(np.float64)


_PRESETS = {
    # beams: (name, elevation min, max (deg), max range (m)); loosely VLP-16, VLP-32C-like, OS1-64/128
    16: ("lidar16", -15.0, 15.0, 100.0),
    32: ("lidar32", -16.0, 15.0, 120.0),
    64: ("lidar64", -22.5, 22.5, 120.0),
    128: ("lidar128", -22.5, 22.5, 120.0),
}


def sensor_preset(beams: int = 32, **overrides) -> LidarModel:
    """A typical spinning LiDAR with 16, 32, 64 or 128 beams, 1024 columns, 10 Hz, 1.5 cm noise.

    Keyword ``overrides`` replace any :class:`LidarModel` field (e.g. ``columns=2048``).
    """
    if beams not in _PRESETS:
        raise ValueError(f"no preset for {beams} beams (choose one of {sorted(_PRESETS)})")
    name, lo, hi, max_range = _PRESETS[beams]
    model = LidarModel(name=name, beams=beams, elevation_min_deg=lo, elevation_max_deg=hi, max_range=max_range)
    return replace(model, **overrides)
