"""Waiting for the ROS graph: a message published before its subscriber is matched never reaches
it, so whoever starts traffic (the bag player, the demo, the tests) first polls for the match."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

POLL_PERIOD = 0.05  # s


def poll_until(condition: Callable[[], bool], timeout: float, period: float = POLL_PERIOD) -> bool:
    """Call ``condition`` every ``period`` seconds until it holds (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(period)


def all_matched(subscriptions: Iterable[Any]) -> bool:
    """True when every rclpy subscription has at least one matched publisher."""
    return all(sub.get_publisher_count() > 0 for sub in subscriptions)
