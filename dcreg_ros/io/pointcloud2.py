"""sensor_msgs/PointCloud2 <-> :class:`Scan`, without importing ROS.

Messages are duck-typed: anything with the PointCloud2 attributes works, whether it comes from
rclpy (``data`` is an ``array.array``), from rosbags (``data`` is a numpy uint8 array; ROS 1 or
ROS 2 typestore) or from hand-made test objects.
"""

from __future__ import annotations

import array
from typing import Any

import numpy as np

from ..core.pointcloud import InputError, finite_rows
from .ros_time import seconds_to_sec_nanosec, stamp_to_nanoseconds, stamp_to_seconds  # noqa: F401 (also this module's API)
from .scan import Scan


class PointCloud2Error(InputError):
    """A PointCloud2 message that cannot be converted (one-line reason)."""


# sensor_msgs/PointField datatype constants -> numpy type codes (endianness prefixed later)
DATATYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}
FLOAT32 = 7

TIME_FIELDS = ("t", "time", "timestamp", "offset_time")
INTENSITY_FIELDS = ("intensity", "reflectivity")

# Relative per-point times are at most a few scan periods; anything beyond this is an epoch time.
_ABSOLUTE_THRESHOLD_S = 1e6


def relative_times(raw: np.ndarray, stamp_ns: int) -> np.ndarray:
    """Per-point times as float64 seconds relative to the stamp, all >= 0.

    Integer arrays are nanoseconds, float arrays seconds. Absolute times (epoch values, or values
    closer to the stamp than to zero) get the stamp subtracted; if any time is still negative
    (drivers that stamp the end of the sweep) everything is shifted so the earliest point is 0.
    Non-finite times (and times pushed beyond float64 by the shift) become NaN: the odometry
    (core.deskew.scan_fractions) then leaves the frame undeskewed and says why.
    """
    raw = np.asarray(raw).reshape(-1)
    if raw.size == 0:
        return np.zeros(0)
    stamp = stamp_ns * 1e-9
    integer = np.issubdtype(raw.dtype, np.integer)
    if integer:
        ns = raw.astype(np.int64)
        seconds = ns * 1e-9
    else:
        seconds = raw.astype(np.float64)
    finite = np.isfinite(seconds)
    if not finite.any():
        return np.full(len(seconds), np.nan)
    valid = seconds[finite]
    if _looks_absolute(valid, stamp):
        # subtract in integer nanoseconds when possible: float64 epoch seconds only resolve ~0.2 us
        seconds = (ns - stamp_ns) * 1e-9 if integer else seconds - stamp
        valid = seconds[finite]
    low = valid.min()
    if low < 0:
        with np.errstate(over="ignore", invalid="ignore"):  # +-1e308 garbage overflows to inf here
            seconds = seconds - low
    seconds[~np.isfinite(seconds)] = np.nan
    return seconds


def _looks_absolute(seconds: np.ndarray, stamp: float) -> bool:
    if np.abs(seconds).max() > _ABSOLUTE_THRESHOLD_S:
        return True
    # Near t = 0 (simulated clocks) relative and absolute times cannot be told apart; treat them as
    # relative there. Otherwise absolute times cluster around the stamp, relative ones around 0.
    if abs(stamp) <= 1.0:
        return False
    sample = seconds[:: max(1, len(seconds) // 1024)]  # a thousand evenly spread points decide it
    return float(np.median(np.abs(sample - stamp))) < float(np.median(np.abs(sample)))


def _as_bytes_array(data: Any) -> np.ndarray:
    """The message payload as a 1-D uint8 array (zero-copy where the type allows)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return np.frombuffer(data, dtype=np.uint8)
    if isinstance(data, array.array) and data.typecode in ("B", "b"):
        return np.frombuffer(data, dtype=np.uint8)
    if isinstance(data, np.ndarray) and data.dtype.itemsize == 1:
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    try:
        values = np.asarray(data).reshape(-1)
    except (TypeError, ValueError):
        values = None
    if values is None or values.dtype.kind not in "biuf":
        raise PointCloud2Error(f"data of type {type(data).__name__} is not a byte sequence")
    if values.dtype.kind == "f" and values.size and not (np.isfinite(values).all() and (values == np.round(values)).all()):
        raise PointCloud2Error("data contains values that are not whole numbers 0..255")
    if values.size and (values.min() < 0 or values.max() > 255):
        raise PointCloud2Error("data contains values outside 0..255")
    return values.astype(np.uint8)


def _field_map(msg: Any) -> dict[str, Any]:
    # the first occurrence wins if a driver repeats a name
    out: dict[str, Any] = {}
    for f in msg.fields:
        out.setdefault(str(f.name), f)
    return out


def _field_format(field: Any, point_step: int, endian: str) -> tuple[str, int]:
    code = DATATYPES.get(int(field.datatype))
    if code is None:
        raise PointCloud2Error(f"field '{field.name}' has unsupported datatype {field.datatype} (supported: 1..8)")
    size = int(code[1])
    offset = int(field.offset)
    count = max(int(field.count), 1)
    if offset < 0 or offset + size * count > point_step:
        raise PointCloud2Error(
            f"field '{field.name}' (offset {offset}, {count} x {size} bytes) extends beyond point_step {point_step}")
    return endian + code, offset


def pointcloud2_to_scan(msg: Any) -> Scan:
    """Convert a PointCloud2-shaped message to a :class:`Scan` in the message's frame.

    Points with non-finite x, y or z are dropped (with their times and intensities). Per-point
    times come from the first of ``t``, ``time``, ``timestamp``, ``offset_time`` (see
    :func:`relative_times`); intensity from ``intensity`` or ``reflectivity``.
    Raises :class:`PointCloud2Error` for malformed messages.
    """
    stamp_ns = stamp_to_nanoseconds(msg.header.stamp)
    stamp = stamp_ns * 1e-9
    frame_id = str(msg.header.frame_id)
    height, width = int(msg.height), int(msg.width)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    fields = _field_map(msg)
    time_name = next((n for n in TIME_FIELDS if n in fields), None)
    intensity_name = next((n for n in INTENSITY_FIELDS if n in fields), None)

    if height < 0 or width < 0:
        raise PointCloud2Error(f"negative size {height} x {width}")
    n = height * width
    if n == 0:
        return Scan(stamp, np.zeros((0, 3)), np.zeros(0) if time_name else None,
                    np.zeros(0) if intensity_name else None, frame_id)
    if point_step <= 0:
        raise PointCloud2Error(f"point_step is {point_step} but the cloud has {n} points")
    missing = [c for c in "xyz" if c not in fields]
    if missing:
        raise PointCloud2Error(f"missing field(s) {', '.join(missing)} (found: {', '.join(fields) or 'none'})")
    if row_step < width * point_step:
        raise PointCloud2Error(f"row_step {row_step} is smaller than width {width} x point_step {point_step}")
    buf = _as_bytes_array(msg.data)
    if len(buf) < row_step * height:
        raise PointCloud2Error(f"data has {len(buf)} bytes, expected row_step {row_step} x height {height} = {row_step * height}")

    endian = ">" if msg.is_bigendian else "<"
    wanted = {"x": "x", "y": "y", "z": "z"}
    if time_name:
        wanted["t"] = time_name
    if intensity_name:
        wanted["i"] = intensity_name
    names, formats, offsets = [], [], []
    for key, name in wanted.items():
        fmt, offset = _field_format(fields[name], point_step, endian)
        names.append(key)
        formats.append(fmt)
        offsets.append(offset)
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": point_step})
    # strides skip the padding at the end of each row of organised clouds without copying; each
    # field is copied out once by ravel()
    records = np.ndarray((height, width), dtype=dtype, buffer=buf, strides=(row_step, point_step))

    points = np.empty((n, 3))
    for column, axis in enumerate("xyz"):
        points[:, column] = records[axis].ravel()
    keep = finite_rows(points)
    all_kept = bool(keep.all())
    if not all_kept:
        points = points[keep]
    times = None
    if time_name:
        raw = records["t"].ravel()
        times = relative_times(raw if all_kept else raw[keep], stamp_ns)
    intensity = None
    if intensity_name:
        raw = records["i"].ravel()
        intensity = (raw if all_kept else raw[keep]).astype(np.float64)
    return Scan(stamp, np.ascontiguousarray(points), times, intensity, frame_id)


def scan_to_pointcloud2_parts(scan: Scan) -> tuple[list[tuple[str, int, int, int]], int, bytes]:
    """Layout of a little-endian, height-1 PointCloud2 for ``scan``.

    Returns ``(fields, point_step, data)`` with ``fields`` as ``(name, offset, datatype, count)``
    for float32 x, y, z (m), intensity (0 when absent) and t (s relative to the stamp, 0 when
    absent). ``row_step`` is ``point_step * len(scan)``.
    """
    names = ("x", "y", "z", "intensity", "t")
    fields = [(name, 4 * i, FLOAT32, 1) for i, name in enumerate(names)]
    n = len(scan.points)
    rec = np.zeros(n, dtype=[(name, "<f4") for name in names])
    points = np.asarray(scan.points, dtype=np.float64).reshape(-1, 3)
    # values beyond float32 become +-inf, which every reader drops as non-finite (points) or
    # rejects (per-point times); numpy's overflow warning would only repeat that
    with np.errstate(over="ignore", invalid="ignore"):
        rec["x"], rec["y"], rec["z"] = points[:, 0], points[:, 1], points[:, 2]
        if scan.intensity is not None:
            rec["intensity"] = np.asarray(scan.intensity).reshape(-1)
        if scan.times is not None:
            rec["t"] = np.asarray(scan.times).reshape(-1)
    return fields, rec.dtype.itemsize, rec.tobytes()
