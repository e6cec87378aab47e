"""Stamp sanity (dcreg_ros.core.stamps) and its use in Odometry and the offline runner: one
outlier stamp costs one frame, a loop or a clock step starts a new sequence, gaps are counted."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import box_room
from dcreg_ros.core.odometry import Odometry, OdometryConfig
from dcreg_ros.core.pointcloud import InputError
from dcreg_ros.core.stamps import (ACCEPT, JUMP, NEW_SEQUENCE, OUT_OF_ORDER, SKIP, StampConfig, StampGaps, StampGuard,
                                   jump_limit)
from dcreg_ros.eval.runner import run_odometry
from dcreg_ros.io.scan import Scan

FAR_FUTURE = 2147483000.0  # header.stamp.sec of a driver glitch (January 2038)


def feed(guard: StampGuard, stamps) -> list[str]:
    """Actions for a stream of stamps, committing the accepted ones (what a caller does)."""
    actions = []
    for stamp in stamps:
        verdict = guard.check(stamp)
        if verdict.action == NEW_SEQUENCE:
            guard.reset()
        if not verdict.refused:
            guard.commit(stamp)
        actions.append(verdict.action)
    return actions


def steady(start: float, n: int, period: float = 0.1) -> list[float]:
    return [start + period * k for k in range(n)]


def test_a_single_outlier_costs_exactly_one_frame():
    guard = StampGuard()
    stamps = steady(100.0, 5) + [FAR_FUTURE] + steady(100.5, 5)
    actions = feed(guard, stamps)
    assert actions == [ACCEPT] * 5 + [JUMP] + [ACCEPT] * 5
    assert guard.last == pytest.approx(100.9)
    # the frame after the outlier says what happened to the held one
    guard2 = StampGuard()
    feed(guard2, steady(100.0, 5) + [FAR_FUTURE])
    verdict = guard2.check(100.5)
    assert verdict.action == ACCEPT and verdict.outlier == FAR_FUTURE and "outlier" in verdict.reason


def test_backward_outlier_costs_one_frame_too():
    actions = feed(StampGuard(), steady(100.0, 5) + [3.0] + steady(100.5, 3))
    assert actions == [ACCEPT] * 5 + [JUMP] + [ACCEPT] * 3


@pytest.mark.parametrize("jump_to", [40.0, 200.0])  # a bag that loops (back 60 s); a clock step forward
def test_a_persistent_jump_starts_a_new_sequence(jump_to):
    guard = StampGuard()
    actions = feed(guard, steady(100.0, 5) + steady(jump_to, 4))
    assert actions == [ACCEPT] * 5 + [JUMP, NEW_SEQUENCE, ACCEPT, ACCEPT]
    assert guard.last == pytest.approx(jump_to + 0.3)
    verdict = StampGuard()
    feed(verdict, steady(100.0, 5) + [jump_to])
    text = verdict.check(jump_to + 0.1).reason
    assert "new sequence" in text and "odometry reset" in text


def test_skip_policy_waits_until_the_stamps_continue_the_old_sequence():
    guard = StampGuard(StampConfig(on_jump="skip"))
    actions = feed(guard, steady(100.0, 5) + steady(40.0, 3) + steady(100.5, 2))
    assert actions == [ACCEPT] * 5 + [JUMP, SKIP, SKIP] + [ACCEPT] * 2
    # however long the other sequence lasts, it never becomes the current one
    waiting = StampGuard(StampConfig(on_jump="skip"))
    feed(waiting, steady(100.0, 5))
    verdicts = [waiting.check(s) for s in steady(40.0, 30)]
    assert [v.action for v in verdicts] == [JUMP] + [SKIP] * 29 and waiting.last == pytest.approx(100.4)
    assert "stamps.on_jump = skip" in verdicts[-1].reason and "100.400000 s" in verdicts[-1].reason
    assert waiting.check(100.5).action == ACCEPT


def test_out_of_order_and_duplicates_are_refused_without_losing_the_sequence():
    guard = StampGuard()
    actions = feed(guard, [100.0, 100.1, 100.1, 100.05, 100.2])
    assert actions == [ACCEPT, ACCEPT, OUT_OF_ORDER, OUT_OF_ORDER, ACCEPT]
    g = StampGuard()
    feed(g, [100.0, 100.1])
    assert "out-of-order stamp 100.050000 s is not after the last frame's 100.100000 s" in g.check(100.05).reason


def test_jump_limit_in_periods_uses_the_estimated_period():
    config = StampConfig(max_jump=10.0, max_jump_periods=20)
    guard = StampGuard(config)
    feed(guard, steady(100.0, 10))
    assert guard.periods.period == pytest.approx(0.1)
    assert guard.limit == pytest.approx(2.0) and jump_limit(config, None) == 10.0
    assert guard.check(103.0).action == JUMP  # 2.1 s > 20 periods, below 10 s
    assert StampGuard(StampConfig(max_jump=10.0)).check(103.0).action == ACCEPT  # no sequence yet: any first stamp


def test_gaps_count_missing_frames_against_the_estimated_period():
    gaps = StampGaps()
    stamps = steady(100.0, 10) + steady(101.3, 10)  # 2 frames (101.0, 101.1, 101.2 -> 3) missing
    missed = [gaps.add(s) for s in stamps]
    assert gaps.period == pytest.approx(0.1)
    assert sum(missed) == 3 and gaps.missing == 3 and missed[10] == 3
    # jumps and outliers are not gaps: the jumped frame arrived
    assert gaps.add(FAR_FUTURE) == 0 and gaps.add(102.3) == 0 and gaps.missing == 3
    # lost frames make intervals longer only: the period survives losing every other frame
    lossy = StampGaps()
    for s in steady(0.0, 40, 0.2)[::1] + steady(8.0, 20, 0.1):
        lossy.add(s)
    assert lossy.period == pytest.approx(0.1)


# --------------------------------------------------------------------------- in the odometry
ROOM = box_room(4000, seed=3)


def register(odometry: Odometry, k: int, stamp: float):
    return odometry.register_frame(ROOM - np.array([0.03 * k, 0.0, 0.0]), stamp=stamp)


def test_odometry_outlier_stamp_costs_one_frame_and_keeps_tracking():
    odometry = Odometry()
    for k in range(4):
        register(odometry, k, 100.0 + 0.1 * k)
    with pytest.raises(InputError, match="jumps .* frame held back"):
        register(odometry, 4, FAR_FUTURE)
    record = register(odometry, 5, 100.5)
    assert not record.sequence_reset and any("outlier" in note for note in record.notes)
    assert record.index == 4 and record.pose[0, 3] == pytest.approx(0.15, abs=0.01)  # tracking goes on


def test_odometry_resets_on_a_looping_sequence():
    odometry = Odometry()
    for k in range(4):
        register(odometry, k, 100.0 + 0.1 * k)
    with pytest.raises(InputError, match="held back"):
        register(odometry, 0, 50.0)
    record = register(odometry, 1, 50.1)
    assert record.sequence_reset and record.status == "first_frame" and record.index == 0
    assert any("new sequence" in note for note in record.notes)
    assert np.allclose(record.pose, np.eye(4)) and odometry.stamps == [50.1]


def test_odometry_refuses_out_of_order_and_non_finite_stamps_and_stays_unchanged():
    odometry = Odometry()
    register(odometry, 0, 100.0)
    register(odometry, 1, 100.1)
    with pytest.raises(InputError, match="out-of-order"):
        register(odometry, 2, 100.05)
    with pytest.raises(InputError, match="finite"):
        register(odometry, 2, float("nan"))
    assert len(odometry.poses) == 2
    assert register(odometry, 2, 100.2).index == 2


def test_stamp_config_is_part_of_the_odometry_config():
    config = OdometryConfig.from_dict({"stamps": {"max_jump": 2.0, "on_jump": "skip"}})
    assert config.stamps == StampConfig(max_jump=2.0, on_jump="skip")
    with pytest.raises(Exception, match="stamps.on_jump"):
        OdometryConfig.from_dict({"stamps": {"on_jump": "explode"}})


def test_runner_counts_stamp_skips_with_reasons():
    scans = [Scan(100.0 + 0.1 * k, ROOM - np.array([0.03 * k, 0.0, 0.0])) for k in range(6)]
    scans.insert(3, Scan(FAR_FUTURE, ROOM))
    scans.insert(5, Scan(scans[4].stamp, ROOM))  # a duplicate stamp
    result = run_odometry(scans)
    assert len(result.records) == 6
    examples = result.skips.examples
    assert result.skips.skipped == 2 and len(examples) == 2
    assert examples[0].startswith("frame 3") and "held back" in examples[0]
    assert examples[1].startswith("frame 5") and "out-of-order" in examples[1]
