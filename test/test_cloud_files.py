"""Point cloud file readers on files written by other tools (open3d) and by hand."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import require_data
from dcreg_ros.io.cloud_files import CloudFileError, read_cloud, write_pcd, write_ply


@pytest.fixture
def points():
    return np.random.default_rng(0).uniform(-50, 50, (1000, 3)).astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("ext,kwargs", [(".pcd", {"write_ascii": True}), (".pcd", {"write_ascii": False}),
                                        (".pcd", {"write_ascii": False, "compressed": True}),
                                        (".ply", {"write_ascii": True}), (".ply", {"write_ascii": False})])
def test_reads_files_written_by_open3d(tmp_path, points, ext, kwargs):
    o3d = pytest.importorskip("open3d")  # installed by make test; importorskip only guards odd setups
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    path = tmp_path / f"cloud{ext}"
    assert o3d.io.write_point_cloud(str(path), pc, **kwargs)
    cloud = read_cloud(path)
    np.testing.assert_allclose(cloud.points, points, atol=1e-4)


def test_own_writers_round_trip(tmp_path, points):
    write_pcd(tmp_path / "a.pcd", points, {"intensity": np.arange(len(points), dtype=float)})
    c = read_cloud(tmp_path / "a.pcd")
    np.testing.assert_allclose(c.points, points, atol=1e-4)
    np.testing.assert_array_equal(c.fields["intensity"], np.arange(len(points)))
    write_ply(tmp_path / "a.ply", points)
    np.testing.assert_allclose(read_cloud(tmp_path / "a.ply").points, points, atol=1e-4)


def test_kitti_bin_and_text_formats(tmp_path, points):
    raw = np.column_stack([points, np.ones(len(points))]).astype(np.float32)
    raw.tofile(tmp_path / "scan.bin")
    np.testing.assert_allclose(read_cloud(tmp_path / "scan.bin").points, points, atol=1e-4)
    np.savetxt(tmp_path / "h.csv", points, delimiter=",", header="x,y,z", comments="")
    np.testing.assert_allclose(read_cloud(tmp_path / "h.csv").points, points, atol=1e-6)
    np.savetxt(tmp_path / "plain.txt", points)
    np.testing.assert_allclose(read_cloud(tmp_path / "plain.txt").points, points, atol=1e-6)


def test_real_files_of_every_shipped_kind():
    base = require_data()
    assert len(read_cloud(base / "pairs/libpointmatcher/car_cloud400.csv")) == 24989  # header x,y,z,nx,ny,nz
    # no header: every one of the 25193 lines is a point (pairs.tsv counts 25192, i.e. one line
    # short, as a reader that skips a first "header" line would)
    assert len(read_cloud(base / "pairs/libpointmatcher/car_cloud401.csv")) == 25193
    c = read_cloud(base / "pairs/fast_gicp/251370668.pcd")
    assert len(c) == 69088 and "intensity" in c.fields


@pytest.mark.parametrize("content,message", [
    (b"", "no DATA line"),
    (b"VERSION 0.7\nFIELDS x y\nSIZE 4 4\nTYPE F F\nCOUNT 1 1\nWIDTH 1\nHEIGHT 1\nPOINTS 1\nDATA ascii\n1 2\n", "missing field"),
    (b"VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 100\nHEIGHT 1\nPOINTS 100\nDATA binary\n\x00\x00", "truncated"),
    (b"VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 1\nHEIGHT 1\nPOINTS 1\nDATA weird\n", "unsupported PCD DATA"),
])
def test_malformed_pcd_gives_one_line_error(tmp_path, content, message):
    path = tmp_path / "bad.pcd"
    path.write_bytes(content)
    with pytest.raises(CloudFileError, match=message) as info:
        read_cloud(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_unknown_and_odd_files(tmp_path):
    with pytest.raises(CloudFileError, match="no such file"):
        read_cloud(tmp_path / "nope.pcd")
    (tmp_path / "x.las").write_bytes(b"x")
    with pytest.raises(CloudFileError, match="unsupported extension"):
        read_cloud(tmp_path / "x.las")
    (tmp_path / "odd.bin").write_bytes(b"\x00" * 10)
    with pytest.raises(CloudFileError, match="multiple of 16"):
        read_cloud(tmp_path / "odd.bin")
    (tmp_path / "two.csv").write_text("1,2\n3,4\n")
    with pytest.raises(CloudFileError, match="at least 3 columns"):
        read_cloud(tmp_path / "two.csv")
    with pytest.raises(CloudFileError, match="directory"):
        read_cloud(tmp_path)
