"""A history of at most N items (a published path: hours at 10 Hz must not grow without bound).

Two ways to stay bounded: ``recent`` keeps the last N items; ``decimated`` keeps the whole span
at a coarser spacing: when full, every other item is dropped and from then on only every
2nd (4th, 8th, ...) new item is kept, with the newest always at the end.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")
HISTORY_MODES = ("decimated", "recent")


class BoundedHistory(Generic[T]):
    """At most ``max_items`` (>= 2) items in insertion order; ``mode`` decimated or recent."""

    def __init__(self, max_items: int, mode: str = "decimated") -> None:
        if max_items < 2:
            raise ValueError(f"max_items must be >= 2, got {max_items}")
        if mode not in HISTORY_MODES:
            raise ValueError(f"mode must be one of {', '.join(HISTORY_MODES)}, got {mode!r}")
        self.max_items = max_items
        self.mode = mode
        self.clear()

    def clear(self) -> None:
        self._kept: deque[T] | list[T] = deque(maxlen=self.max_items) if self.mode == "recent" else []
        self._newest: T | None = None  # decimated: the newest item when it is off the stride
        self._count = 0  # items added since clear()
        self.stride = 1  # decimated: every stride-th item is kept

    def append(self, item: T) -> None:
        self._count += 1
        if self.mode == "recent":
            self._kept.append(item)
            return
        if (self._count - 1) % self.stride:
            self._newest = item
            return
        self._newest = None
        self._kept.append(item)
        if len(self._kept) > self.max_items - 1:  # keep one slot for the newest item
            dropped_newest = len(self._kept) % 2 == 0  # at an odd position: thinned away
            self._kept = self._kept[::2]
            self.stride *= 2
            if dropped_newest:
                self._newest = item

    def items(self) -> list[T]:
        """The kept items, oldest first; the newest item added is always the last."""
        out = list(self._kept)
        if self._newest is not None:
            out.append(self._newest)
        return out

    def __len__(self) -> int:
        return len(self._kept) + (self._newest is not None)
