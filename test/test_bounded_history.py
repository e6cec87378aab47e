"""BoundedHistory (the node's dcreg/path): never more than N items, the newest always last;
decimated keeps the whole span at an even, coarser spacing, recent keeps the last N."""

from __future__ import annotations

import numpy as np
import pytest

from dcreg_ros.core.bounded_history import BoundedHistory


@pytest.mark.parametrize("n_items", [1, 7, 99, 100, 101, 1000, 12345])
def test_decimated_history_spans_the_run_evenly_within_the_bound(n_items):
    history = BoundedHistory(100, "decimated")
    for k in range(n_items):
        history.append(k)
        assert len(history) <= 100
    items = history.items()
    assert len(items) == len(history) and items[0] == 0 and items[-1] == n_items - 1
    body = np.diff(items[:-1]) if len(items) > 2 else np.array([1])
    assert np.all(body == history.stride)  # evenly spaced, oldest first
    assert items[-1] - items[-2] <= history.stride if len(items) > 1 else True
    if n_items > 100:
        assert len(items) >= 50  # never thinner than half the bound


def test_recent_history_keeps_the_last_items():
    history = BoundedHistory(5, "recent")
    for k in range(12):
        history.append(k)
    assert history.items() == [7, 8, 9, 10, 11]
    history.clear()
    assert history.items() == [] and len(history) == 0


def test_invalid_bounds_and_modes_are_refused():
    with pytest.raises(ValueError, match="max_items"):
        BoundedHistory(1)
    with pytest.raises(ValueError, match="mode"):
        BoundedHistory(10, "all")
