"""ROS time stamps (builtin_interfaces/Time: ``sec`` + ``nanosec``) <-> seconds and nanoseconds.

Duck-typed like the message converters: anything with ``.sec`` and ``.nanosec`` works (rclpy,
rosbags ROS 1 and ROS 2 messages). Bags index messages by integer nanoseconds.
"""

from __future__ import annotations

from typing import Any

NANOSECONDS_PER_SECOND = 1_000_000_000


def stamp_to_seconds(stamp: Any) -> float:
    """Seconds of a ``.sec/.nanosec`` stamp (builtin_interfaces/Time or the ROS 1 equivalent)."""
    return int(stamp.sec) + int(stamp.nanosec) * 1e-9


def stamp_to_nanoseconds(stamp: Any) -> int:
    """Integer nanoseconds of a ``.sec/.nanosec`` stamp (exact, for comparing stamps)."""
    return int(stamp.sec) * NANOSECONDS_PER_SECOND + int(stamp.nanosec)


def seconds_to_sec_nanosec(t: float) -> tuple[int, int]:
    """Split seconds into (sec, nanosec) with 0 <= nanosec < 1e9 (rounded to the nanosecond)."""
    sec, nanosec = divmod(seconds_to_nanoseconds(t), NANOSECONDS_PER_SECOND)
    return int(sec), int(nanosec)


def seconds_to_nanoseconds(t: float) -> int:
    """Seconds rounded to integer nanoseconds (a bag's record time)."""
    return int(round(float(t) * 1e9))
