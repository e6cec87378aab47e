"""PointCloud2 <-> Scan on real rclpy messages, rosbags-(de)serialised messages and hand-built ones."""

from __future__ import annotations

import array
from types import SimpleNamespace as NS

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from rosbags.typesys import Stores, get_typestore

from dcreg_ros.core.pointcloud import InputError
from dcreg_ros.io.pointcloud2 import (
    PointCloud2Error,
    pointcloud2_to_scan,
    relative_times,
    scan_to_pointcloud2_parts,
    seconds_to_sec_nanosec,
    stamp_to_seconds,
)
from dcreg_ros.io.scan import Scan

# numpy code of each sensor_msgs/PointField datatype, keyed by the message's own constants
PointField = get_typestore(Stores.ROS2_JAZZY).types["sensor_msgs/msg/PointField"]
CODES = {PointField.INT8: "i1", PointField.UINT8: "u1", PointField.INT16: "i2", PointField.UINT16: "u2",
         PointField.INT32: "i4", PointField.UINT32: "u4", PointField.FLOAT32: "f4", PointField.FLOAT64: "f8"}
DATATYPE_OF = {v: k for k, v in CODES.items()}

STAMP_SEC, STAMP_NSEC = 1_700_000_000, 500_000_000
STAMP = STAMP_SEC + STAMP_NSEC * 1e-9


def make_msg(records: np.ndarray, *, sec: int = STAMP_SEC, nanosec: int = STAMP_NSEC, row_pad: int = 0,
             pad_byte: int = 0xFF, frame_id: str = "os_sensor") -> NS:
    """A duck-typed PointCloud2 whose layout follows the structured dtype of ``records``.

    ``records`` is (W,) or (H, W); ``row_pad`` garbage bytes end each row (organised clouds).
    """
    records = np.atleast_2d(records)
    height, width = records.shape
    dtype = records.dtype
    fields, big = [], False
    for name in dtype.names:
        sub, offset = dtype.fields[name][:2]
        fields.append(NS(name=name, offset=offset, datatype=DATATYPE_OF[sub.base.str[1:]], count=1))
        big |= sub.byteorder == ">"
    row = width * dtype.itemsize
    data = b"".join(records[r].tobytes() + bytes([pad_byte]) * row_pad for r in range(height))
    return NS(header=NS(stamp=NS(sec=sec, nanosec=nanosec), frame_id=frame_id), height=height, width=width,
              fields=fields, is_bigendian=big, point_step=dtype.itemsize, row_step=row + row_pad, data=data,
              is_dense=False)


def xyz_records(points: np.ndarray, code: str = "<f4", extra: dict | None = None) -> np.ndarray:
    extra = extra or {}
    names = ["x", "y", "z", *extra]
    formats = [code] * 3 + [np.asarray(v).dtype.str for v in extra.values()]
    rec = np.zeros(len(points), dtype=list(zip(names, formats)))
    for i, c in enumerate("xyz"):
        rec[c] = points[:, i]
    for k, v in extra.items():
        rec[k] = v
    return rec


@pytest.fixture
def scan() -> Scan:
    rng = np.random.default_rng(1)
    n = 500
    return Scan(STAMP, rng.uniform(-40, 40, (n, 3)), np.sort(rng.uniform(0, 0.1, n)), rng.uniform(0, 255, n), "os_sensor")


def assert_scan_close(out: Scan, ref: Scan) -> None:
    assert out.stamp == pytest.approx(ref.stamp, abs=1e-6)
    assert out.frame_id == ref.frame_id
    assert out.points.dtype == np.float64 and out.points.shape == ref.points.shape
    np.testing.assert_allclose(out.points, ref.points.astype(np.float32), rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.times, ref.times, atol=1e-7)
    np.testing.assert_allclose(out.intensity, ref.intensity.astype(np.float32), atol=1e-12)


@pytest.mark.ros
def test_round_trip_through_rclpy_message(scan):
    from sensor_msgs.msg import PointCloud2, PointField  # the real rclpy message classes

    fields, point_step, data = scan_to_pointcloud2_parts(scan)
    msg = PointCloud2()
    msg.header.stamp.sec, msg.header.stamp.nanosec = seconds_to_sec_nanosec(scan.stamp)
    msg.header.frame_id = scan.frame_id
    msg.height, msg.width = 1, len(scan)
    msg.fields = [PointField(name=n, offset=o, datatype=d, count=c) for n, o, d, c in fields]
    msg.is_bigendian = False
    msg.point_step, msg.row_step = point_step, point_step * len(scan)
    msg.data = data
    assert isinstance(msg.data, array.array)  # what rclpy hands to subscribers
    assert_scan_close(pointcloud2_to_scan(msg), scan)


@pytest.mark.parametrize("store", [Stores.ROS2_JAZZY, Stores.ROS1_NOETIC])
def test_round_trip_through_rosbags_serialisation(scan, store):
    ts = get_typestore(store)
    T = ts.types
    fields, point_step, data = scan_to_pointcloud2_parts(scan)
    sec, nanosec = seconds_to_sec_nanosec(scan.stamp)
    header_args = {"seq": 7} if store == Stores.ROS1_NOETIC else {}
    msg = T["sensor_msgs/msg/PointCloud2"](
        header=T["std_msgs/msg/Header"](**header_args, stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=scan.frame_id),
        height=1, width=len(scan),
        fields=[T["sensor_msgs/msg/PointField"](name=n, offset=o, datatype=d, count=c) for n, o, d, c in fields],
        is_bigendian=False, point_step=point_step, row_step=point_step * len(scan),
        data=np.frombuffer(data, np.uint8), is_dense=True)
    if store == Stores.ROS1_NOETIC:
        back = ts.deserialize_ros1(ts.serialize_ros1(msg, msg.__msgtype__), msg.__msgtype__)
    else:
        back = ts.deserialize_cdr(ts.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)
    assert_scan_close(pointcloud2_to_scan(back), scan)


def test_parts_layout_and_missing_optional_fields():
    pts = np.arange(12, dtype=float).reshape(4, 3)
    fields, point_step, data = scan_to_pointcloud2_parts(Scan(3.0, pts))
    assert [f[0] for f in fields] == ["x", "y", "z", "intensity", "t"]
    assert all(f[2] == PointField.FLOAT32 and f[3] == 1 for f in fields)
    assert point_step == 20 and len(data) == 4 * 20
    rec = np.frombuffer(data, dtype=[(n, "<f4") for n, *_ in fields])
    np.testing.assert_array_equal(rec["y"], pts[:, 1])
    assert not rec["intensity"].any() and not rec["t"].any()


@pytest.mark.parametrize("code", sorted(DATATYPE_OF))
def test_every_datatype(code):
    lo = -100 if code[0] in "if" else 0
    pts = np.random.default_rng(2).integers(lo, 120, (50, 3)).astype(np.float64)
    out = pointcloud2_to_scan(make_msg(xyz_records(pts, "<" + code)))
    np.testing.assert_array_equal(out.points, pts)
    assert out.times is None and out.intensity is None


def test_big_endian_matches_little_endian():
    pts = np.random.default_rng(3).uniform(-10, 10, (64, 3))
    extra_le = {"intensity": np.arange(64, dtype="<u2"), "t": np.linspace(0, 0.1, 64).astype("<f8")}
    extra_be = {k: v.astype(v.dtype.newbyteorder(">")) for k, v in extra_le.items()}
    le = pointcloud2_to_scan(make_msg(xyz_records(pts, "<f4", extra_le)))
    be_msg = make_msg(xyz_records(pts, ">f4", extra_be))
    assert be_msg.is_bigendian and be_msg.data != make_msg(xyz_records(pts, "<f4", extra_le)).data
    be = pointcloud2_to_scan(be_msg)
    np.testing.assert_array_equal(be.points, le.points)
    np.testing.assert_array_equal(be.intensity, np.arange(64))
    np.testing.assert_allclose(be.times, np.linspace(0, 0.1, 64), atol=1e-12)


def test_organised_cloud_with_row_padding():
    h, w = 3, 5
    pts = np.arange(h * w * 3, dtype=float).reshape(h * w, 3)
    rec = xyz_records(pts, "<f4", {"intensity": np.arange(h * w, dtype="<f4")}).reshape(h, w)
    msg = make_msg(rec, row_pad=7)
    assert msg.row_step == w * msg.point_step + 7
    out = pointcloud2_to_scan(msg)
    np.testing.assert_array_equal(out.points, pts)  # row-major, padding skipped
    np.testing.assert_array_equal(out.intensity, np.arange(h * w))


def test_point_padding_and_unused_fields_are_ignored():
    # PCL-style layout: x y z, 4 pad bytes, intensity at 16, point_step 32
    dtype = np.dtype({"names": ["x", "y", "z", "intensity", "ring"], "formats": ["<f4", "<f4", "<f4", "<f4", "<u2"],
                      "offsets": [0, 4, 8, 16, 20], "itemsize": 32})
    rec = np.zeros(10, dtype)
    pts = np.random.default_rng(4).normal(size=(10, 3)).astype(np.float32)
    rec["x"], rec["y"], rec["z"], rec["intensity"] = pts[:, 0], pts[:, 1], pts[:, 2], 5.0
    out = pointcloud2_to_scan(make_msg(rec))
    np.testing.assert_array_equal(out.points, pts)
    np.testing.assert_array_equal(out.intensity, np.full(10, 5.0))


def test_non_finite_points_are_dropped_with_their_attributes():
    pts = np.arange(30, dtype=float).reshape(10, 3)
    pts[2, 0], pts[5, 2], pts[7, 1] = np.nan, np.inf, -np.inf
    t = np.arange(10, dtype="<u4") * 1000
    inten = np.arange(10, dtype="<f4") * 2
    out = pointcloud2_to_scan(make_msg(xyz_records(pts, "<f4", {"t": t, "intensity": inten})))
    keep = [0, 1, 3, 4, 6, 8, 9]
    np.testing.assert_array_equal(out.points, pts[keep])
    np.testing.assert_allclose(out.times, t[keep] * 1e-9)
    np.testing.assert_array_equal(out.intensity, inten[keep])


def test_reflectivity_is_the_intensity_fallback():
    pts = np.ones((3, 3))
    out = pointcloud2_to_scan(make_msg(xyz_records(pts, "<f4", {"reflectivity": np.array([1, 2, 3], "<u2")})))
    np.testing.assert_array_equal(out.intensity, [1, 2, 3])


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "numpy", "list", "array"])
def test_data_container_types(kind):
    pts = np.random.default_rng(5).normal(size=(20, 3))
    msg = make_msg(xyz_records(pts, "<f8"))
    raw = msg.data
    msg.data = {"bytes": raw, "bytearray": bytearray(raw), "memoryview": memoryview(raw),
                "numpy": np.frombuffer(raw, np.uint8), "list": list(raw), "array": array.array("B", raw)}[kind]
    np.testing.assert_array_equal(pointcloud2_to_scan(msg).points, pts)


def test_empty_cloud_is_not_an_error():
    msg = make_msg(xyz_records(np.zeros((0, 3))))
    out = pointcloud2_to_scan(msg)
    assert len(out) == 0 and out.points.shape == (0, 3)
    bare = NS(header=NS(stamp=NS(sec=1, nanosec=0), frame_id="a"), height=0, width=0, fields=[], is_bigendian=False,
              point_step=0, row_step=0, data=b"")
    assert len(pointcloud2_to_scan(bare)) == 0


def _good() -> NS:
    return make_msg(xyz_records(np.ones((4, 3)), "<f4", {"t": np.zeros(4, "<f4")}))


def _set(msg, **kw):
    for k, v in kw.items():
        setattr(msg, k, v)
    return msg


def _field(msg, name, **kw):
    for f in msg.fields:
        if f.name == name:
            for k, v in kw.items():
                setattr(f, k, v)
    return msg


ERRORS = {
    "missing z": (lambda m: _set(m, fields=[f for f in m.fields if f.name != "z"]), "missing field"),
    "unsupported datatype": (lambda m: _field(m, "x", datatype=9), "unsupported datatype"),
    "zero datatype of time": (lambda m: _field(m, "t", datatype=0), "unsupported datatype"),
    "field beyond point_step": (lambda m: _field(m, "z", offset=14), "beyond point_step"),
    "data too short": (lambda m: _set(m, data=m.data[:-1]), "bytes"),
    "row_step too small": (lambda m: _set(m, row_step=m.row_step - 1), "row_step"),
    "point_step zero": (lambda m: _set(m, point_step=0), "point_step"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_malformed_messages_raise_one_line_errors(case):
    pointcloud2_to_scan(_good())  # the unmodified message is fine
    mutate, words = ERRORS[case]
    with pytest.raises(PointCloud2Error) as info:
        pointcloud2_to_scan(mutate(_good()))
    assert isinstance(info.value, InputError)
    text = str(info.value)
    assert words in text and "\n" not in text


def test_time_fields_normalise_to_the_same_relative_seconds():
    n = 200
    pts = np.random.default_rng(6).normal(size=(n, 3))
    rel = np.linspace(0.0, 0.1, n)
    ns = np.round(rel * 1e9)
    variants = {
        "t": ns.astype("<u4"),  # Ouster: uint32 ns
        "time": rel.astype("<f4"),  # Velodyne: float32 s
        "timestamp": STAMP + rel,  # Hesai: float64 absolute s
        "offset_time": ns.astype("<u4"),  # Livox: uint32 ns
    }
    for name, values in variants.items():
        out = pointcloud2_to_scan(make_msg(xyz_records(pts, "<f4", {name: values})))
        assert out.times.dtype == np.float64
        np.testing.assert_allclose(out.times, rel, atol=1e-6, err_msg=name)


def test_absolute_integer_and_end_stamped_times():
    n = 50
    pts = np.ones((n, 3))
    rel = np.linspace(0.0, 0.1, n)
    # PointField has no 64-bit integers, but PCD files (folder datasets) can hold epoch nanoseconds
    stamp_ns = STAMP_SEC * 10**9 + STAMP_NSEC
    absolute_ns = (np.round(rel * 1e9).astype(np.int64) + stamp_ns).astype("<u8")
    np.testing.assert_allclose(relative_times(absolute_ns, stamp_ns), rel, atol=1e-9)
    # a driver that stamps the end of the sweep: times run from -0.1 to 0
    out = pointcloud2_to_scan(make_msg(xyz_records(pts, "<f4", {"time": (rel - 0.1).astype("<f4")})))
    assert out.times.min() == 0.0
    np.testing.assert_allclose(out.times, rel, atol=1e-6)
    # a float timestamp near a small simulated-clock stamp is relative, not absolute
    out = pointcloud2_to_scan(make_msg(xyz_records(pts, "<f4", {"t": rel.astype("<f4")}), sec=0, nanosec=50_000_000))
    np.testing.assert_allclose(out.times, rel, atol=1e-7)


def test_first_listed_time_field_wins():
    pts = np.ones((3, 3))
    msg = make_msg(xyz_records(pts, "<f4", {"timestamp": np.full(3, STAMP + 0.05), "t": np.array([0, 1000, 2000], "<u4")}))
    np.testing.assert_allclose(pointcloud2_to_scan(msg).times, [0, 1e-6, 2e-6])


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=4_000_000_000), st.integers(min_value=0, max_value=999_999_999))
def test_stamp_helpers_round_trip(sec, nanosec):
    t = stamp_to_seconds(NS(sec=sec, nanosec=nanosec))
    s2, n2 = seconds_to_sec_nanosec(t)
    assert 0 <= n2 < 1_000_000_000
    # float64 seconds resolve ~0.5 us near 4e9 s
    assert abs((s2 * 10**9 + n2) - (sec * 10**9 + nanosec)) <= 1000


def test_seconds_to_sec_nanosec_examples():
    assert seconds_to_sec_nanosec(1.5) == (1, 500_000_000)
    assert seconds_to_sec_nanosec(2.9999999999) == (3, 0)
    assert seconds_to_sec_nanosec(-0.25) == (-1, 750_000_000)


HOSTILE = (np.nan, np.inf, -np.inf, 1e308, -1e308, 3e38, -3e38, 1e-320)


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_convert_without_numpy_warnings(value):
    """float64 x and t fields with garbage: no RuntimeWarning (overflow, invalid cast) escapes, bad
    points are dropped, bad times are NaN (the odometry then says why it does not deskew)."""
    import warnings

    n = 300
    pts = np.random.default_rng(2).uniform(-20, 20, (n, 3))
    rel = np.linspace(0.0, 0.1, n)
    rec = xyz_records(pts, "<f8", {"t": STAMP + rel, "intensity": np.full(n, 7.0)})
    rec["x"][::50] = value
    rec["t"][::37] = value
    rec["t"][5] = -value
    rec["intensity"][::41] = value
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = pointcloud2_to_scan(make_msg(rec))
        fields, step, data = scan_to_pointcloud2_parts(out)  # and back to float32, as the node publishes it
    assert np.isfinite(out.points).all() and len(out) == n - (0 if np.isfinite(value) else len(range(0, n, 50)))
    bad_times = ~np.isfinite(out.times) | (np.abs(out.times) > 1.0)
    kept = np.isfinite(rec["x"])
    spoiled = np.zeros(n, bool)
    spoiled[::37] = spoiled[5] = True
    if abs(value) > 1.0 or not np.isfinite(value):
        assert bad_times.any()  # the garbage is visible, not silently turned into 0
    np.testing.assert_allclose(out.times[~spoiled[kept] & ~bad_times], rel[kept][~spoiled[kept] & ~bad_times], atol=2e-6)
    back = np.frombuffer(data, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4"), ("t", "<f4")])
    assert len(back) == len(out) and step == 20


def test_float_payloads_that_are_not_bytes_are_refused():
    good = make_msg(xyz_records(np.ones((3, 3))))
    for data, words in ((array.array("d", [1.0, float("nan")] * 18), "whole numbers"), (np.full(36, 1.5), "whole numbers"),
                        ([300] * 36, "outside 0..255"), ("x" * 36, "not a byte sequence")):
        good.data = data
        with pytest.raises(PointCloud2Error, match=words):
            pointcloud2_to_scan(good)
