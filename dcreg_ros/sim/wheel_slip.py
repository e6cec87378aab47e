"""Slip episodes of simulated wheel odometry: seeded time windows in which the wheels lie.

Two kinds, as wheels really fail:

- ``spin``: the wheels spin (loose ground, a wheel off the floor): the reported forward speed is
  the true one times a factor drawn per episode (e.g. 1.5-3); the heading is unaffected.
- ``skid``: the base skids sideways (a turn on a slippery floor): the reported yaw rate is off by
  a drift per metre driven drawn per episode (rad/m, random sign), so the heading drifts.

Both act through the motion, so a standing robot's wheels still read exactly zero. The published
covariances do not know about an episode (a wheel driver cannot tell it slips): telling a lying
source apart is the estimator's job. Episodes never overlap; an evaluation tells the frames
inside slip from those outside by :func:`slipping`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SLIP_KINDS = ("spin", "skid")
VALUE_KEYS = {"spin": "speed_factor", "skid": "yaw_drift_rad_per_m"}  # an episode's value in simulation.json


def _check_range(name: str, bounds: tuple[float, float], low: float, unit: str) -> None:
    if len(bounds) != 2 or not all(np.isfinite(b) for b in bounds) or not low <= bounds[0] <= bounds[1]:
        raise ValueError(f"{name} must be two finite numbers {low:g} <= low <= high{unit}, got {tuple(bounds)}")


class SlipFitError(ValueError):
    """The slip episodes asked for do not fit in the simulated time."""


@dataclass(frozen=True)
class WheelSlip:
    """How many slip episodes to draw and what they do: ``count`` non-overlapping windows of
    ``duration`` (s, uniform in the bounds), each of a kind drawn from ``kinds``; a ``spin``
    multiplies the reported speed by ``spin_factor`` (uniform in the bounds), a ``skid`` adds a
    yaw-rate error of ``skid_drift`` (rad per metre driven, magnitude uniform in the bounds,
    random sign)."""

    count: int = 0
    kinds: tuple[str, ...] = SLIP_KINDS
    duration: tuple[float, float] = (0.5, 2.0)
    spin_factor: tuple[float, float] = (1.5, 3.0)
    skid_drift: tuple[float, float] = (0.05, 0.2)

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, (int, np.integer)) or self.count < 0:
            raise ValueError(f"the number of slip episodes must be an integer >= 0, got {self.count!r}")
        object.__setattr__(self, "kinds", tuple(self.kinds))
        unknown = [k for k in self.kinds if k not in SLIP_KINDS]
        if unknown or not self.kinds:
            raise ValueError(f"slip kinds must be some of {', '.join(SLIP_KINDS)}, got {', '.join(map(str, self.kinds)) or 'none'}")
        _check_range("slip duration", self.duration, 0.0, " s")
        if self.duration[0] <= 0.0:
            raise ValueError(f"slip duration must be > 0 s, got {tuple(self.duration)}")
        _check_range("spin factor", self.spin_factor, 1.0, " (reported / true speed)")
        _check_range("skid drift", self.skid_drift, 0.0, " rad/m")

    def check_fits(self, span: float) -> None:
        """SlipFitError unless ``count`` episodes of the longest duration fit in ``span`` seconds."""
        if self.count * self.duration[1] > span:
            raise SlipFitError(f"{self.count} slip episodes of up to {self.duration[1]:g} s do not fit in the "
                             f"{span:.1f} s simulated; ask for fewer or shorter ones, or more frames")

    def as_dict(self) -> dict:
        return {"count": int(self.count), "kinds": list(self.kinds), "duration_s": list(self.duration),
                "spin_speed_factor": list(self.spin_factor), "skid_yaw_drift_rad_per_m": list(self.skid_drift)}


@dataclass(frozen=True)
class SlipEpisode:
    """One drawn episode, active for ``start`` <= t < ``end`` (s). ``value`` is the speed factor
    of a ``spin`` (reported / true) or the yaw drift of a ``skid`` (rad per metre driven)."""

    start: float
    end: float
    kind: str
    value: float

    def as_dict(self) -> dict:
        return {"start_s": self.start, "end_s": self.end, "kind": self.kind, VALUE_KEYS[self.kind]: self.value}

    @classmethod
    def from_dict(cls, d: dict) -> "SlipEpisode":
        return cls(float(d["start_s"]), float(d["end_s"]), str(d["kind"]), float(d[VALUE_KEYS[d["kind"]]]))


def draw_episodes(config: WheelSlip, start: float, end: float, rng: np.random.Generator) -> tuple[SlipEpisode, ...]:
    """``config.count`` episodes placed uniformly, without overlap, in [``start``, ``end``] (s).

    Every draw happens whatever the kinds, so the windows depend on the seed, the count and the
    durations only (the same windows for spin-only and skid-only runs)."""
    n = config.count
    if n == 0:
        return ()
    config.check_fits(end - start)
    durations = rng.uniform(*config.duration, n)
    gaps = np.sort(rng.uniform(0.0, end - start - durations.sum(), n))  # free time before each episode
    starts = start + gaps + np.concatenate([[0.0], np.cumsum(durations)[:-1]])
    kinds = rng.integers(0, len(config.kinds), n)
    factors = rng.uniform(*config.spin_factor, n)
    drifts = rng.uniform(*config.skid_drift, n) * rng.choice((-1.0, 1.0), n)
    out = []
    for k in range(n):
        kind = config.kinds[kinds[k]]
        out.append(SlipEpisode(float(starts[k]), float(starts[k] + durations[k]), kind,
                               float(factors[k] if kind == "spin" else drifts[k])))
    return tuple(out)


def slipping(episodes: tuple[SlipEpisode, ...], stamps: np.ndarray, kind: str | None = None) -> np.ndarray:
    """(N,) bool: which ``stamps`` (s) lie inside an episode (of ``kind``, or any)."""
    stamps = np.asarray(stamps, dtype=float)
    inside = np.zeros(stamps.shape, dtype=bool)
    for e in episodes:
        if kind is None or e.kind == kind:
            inside |= (stamps >= e.start) & (stamps < e.end)
    return inside


def episode_values(episodes: tuple[SlipEpisode, ...], stamps: np.ndarray, kind: str, outside: float) -> np.ndarray:
    """(N,) at each of ``stamps`` (s) the value of the ``kind`` episode it lies in, ``outside``
    elsewhere: the speed factor of a spin (outside 1) or the yaw drift of a skid (outside 0)."""
    out = np.full(len(stamps), float(outside))
    for e in episodes:
        if e.kind == kind:
            out[slipping((e,), stamps)] = e.value
    return out
