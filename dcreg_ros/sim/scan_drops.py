"""Scans that never reach the output: a lower frame rate and dropped scans.

The sensor spins on regardless: revolution k starts at ``start + k * period``. Of those,
``keep_every`` K keeps revolutions 0, K, 2K, ... (a driver publishing at 1/K of the rate, as
when every K-th scan of a recording is used; a slower spinning sensor is ``period`` instead);
of these, ``drop_every`` N drops the N-th, 2N-th, ... (a transport losing a scan regularly);
of the rest each is lost with ``drop_probability`` P (overload), drawn from the seed's own
stream. The scans that remain keep their stamps, so the gaps show in the stamps as in a real
recording.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ScanDrops:
    """Which revolutions reach the output (see the module); the defaults keep every one.
    ``drop_every`` None or 0 drops none."""

    keep_every: int = 1
    drop_every: int | None = None
    drop_probability: float = 0.0

    def __post_init__(self) -> None:
        if not _is_int(self.keep_every) or self.keep_every < 1:
            raise ValueError(f"keep_every must be an integer >= 1 (1 keeps every scan), got {self.keep_every!r}")
        if self.drop_every is not None and (not _is_int(self.drop_every) or self.drop_every == 1 or self.drop_every < 0):
            raise ValueError(f"drop_every must be an integer >= 2 (or 0 for none; 1 would drop every scan), got {self.drop_every!r}")
        p = self.drop_probability
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not (math.isfinite(p) and 0.0 <= p < 1.0):
            raise ValueError(f"drop_probability must be a number in [0, 1), got {p!r}")

    @property
    def active(self) -> bool:
        """Whether any revolution is left out."""
        return self.keep_every > 1 or bool(self.drop_every) or self.drop_probability > 0.0

    def kept(self, revolutions: int, seed: int) -> np.ndarray:
        """(revolutions,) bool: which revolutions become scans, for a simulation with ``seed``."""
        keep = np.zeros(revolutions, dtype=bool)
        keep[::self.keep_every] = True
        if self.drop_every:
            published = np.flatnonzero(keep)
            keep[published[self.drop_every - 1::self.drop_every]] = False
        if self.drop_probability > 0.0:
            # drawn for every revolution, so a revolution's fate does not depend on the options before it
            lost = np.random.default_rng([int(seed), 37]).random(revolutions) < self.drop_probability
            keep &= ~lost
        return keep

    def describe(self) -> str:
        """A short phrase for messages: 'every 3rd scan kept, every 4th of those dropped, 10% lost'."""
        parts = []
        if self.keep_every > 1:
            parts.append(f"every {_ordinal(self.keep_every)} scan kept")
        if self.drop_every:
            parts.append(f"every {_ordinal(self.drop_every)}{' of those' if parts else ' scan'} dropped")
        if self.drop_probability > 0.0:
            parts.append(f"{100.0 * self.drop_probability:g}% lost at random")
        return ", ".join(parts) or "no scan dropped"

    def as_dict(self) -> dict:
        return {"keep_every": self.keep_every, "drop_every": self.drop_every or None,
                "drop_probability": float(self.drop_probability)}


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
