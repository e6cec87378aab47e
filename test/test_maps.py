"""The global map accumulator and map files: voxel deduplication, the memory bound, binary PCD
round trips with and without intensity, atomic writing, streaming loads and bad map files."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from dcreg_ros.core.global_map import GlobalMap
from dcreg_ros.core.voxel_hash import voxel_downsample_indices
from dcreg_ros.io import maps
from dcreg_ros.io.cloud_files import read_cloud, write_pcd, write_ply
from dcreg_ros.io.maps import MapFileError, load_map, write_map


def cloud(n: int, seed: int = 0, extent: float = 20.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-extent, extent, (n, 3))


def test_global_map_keeps_the_first_point_of_each_voxel_with_its_intensity():
    pts = cloud(30_000)
    intensity = np.arange(len(pts), dtype=np.float32)
    gm = GlobalMap(0.5, with_intensity=True)
    for a in range(0, len(pts), 7000):  # several inserts: growth and dedup across calls
        gm.insert(pts[a: a + 7000], intensity[a: a + 7000])
    as_stored = pts.astype(np.float32).astype(np.float64)
    expected = voxel_downsample_indices(as_stored, 0.5)
    assert len(gm) == len(expected)
    np.testing.assert_array_equal(gm.points, as_stored[expected].astype(np.float32))
    np.testing.assert_array_equal(gm.intensity, intensity[expected])
    assert gm.insert(pts[:5000], intensity[:5000]) == 0  # nothing new the second time
    assert gm.nbytes > gm.points.nbytes


def test_global_map_skips_non_finite_points_and_bounds_its_memory():
    pts = cloud(20_000, seed=1)
    pts[::10] = np.nan
    gm = GlobalMap(0.25, max_points=500)
    added = gm.insert(pts)
    assert added == len(gm) == 500 and gm.full
    assert np.isfinite(gm.points).all()
    assert gm.dropped > 10_000  # every later point in a new voxel is counted as dropped
    gm.clear()
    assert len(gm) == 0 and not gm.full and gm.dropped == 0
    with pytest.raises(ValueError, match="voxel_size"):
        GlobalMap(0.0)


@pytest.mark.parametrize("with_intensity", [False, True])
def test_binary_pcd_map_round_trip(tmp_path, with_intensity):
    pts = cloud(5000, seed=2)
    intensity = np.random.default_rng(3).uniform(0, 255, len(pts)) if with_intensity else None
    path = write_map(tmp_path / "map.pcd", pts, intensity)
    data = path.read_bytes()
    assert b"DATA binary\n" in data
    assert (b"FIELDS x y z intensity\n" if with_intensity else b"FIELDS x y z\n") in data
    back = read_cloud(path)
    np.testing.assert_array_equal(back.points, pts.astype(np.float32).astype(np.float64))
    if with_intensity:
        np.testing.assert_array_equal(back.fields["intensity"], intensity.astype(np.float32))
    else:
        assert "intensity" not in back.fields
    loaded = load_map(path, 0.01)  # finer than the spacing: every point survives the voxel filter
    assert loaded.source_points == len(pts) and len(loaded) == len(pts)
    assert (loaded.intensity is not None) == with_intensity
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == ["map.pcd"]  # no temporary file left


def test_load_map_streams_binary_pcd_in_chunks_and_deduplicates(tmp_path, monkeypatch):
    pts = cloud(50_000, seed=4, extent=10.0)
    write_map(tmp_path / "map.pcd", pts, np.ones(len(pts)))
    monkeypatch.setattr(maps, "CHUNK_POINTS", 7_000)  # many chunks
    loaded = load_map(tmp_path / "map.pcd", 0.5)
    expected = voxel_downsample_indices(pts.astype(np.float32).astype(np.float64), 0.5)
    assert len(loaded) == len(expected) and loaded.source_points == len(pts)
    np.testing.assert_array_equal(loaded.points, pts[expected].astype(np.float32))
    assert np.all(loaded.intensity == 1.0)


def test_load_map_reads_the_other_cloud_formats(tmp_path):
    pts = cloud(3000, seed=5)
    write_ply(tmp_path / "map.ply", pts)
    (tmp_path / "map.pcd").write_text("VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 3000\n"
                                      "HEIGHT 1\nPOINTS 3000\nDATA ascii\n" + "\n".join(" ".join(f"{v:.4f}" for v in p) for p in pts))
    for name in ("map.ply", "map.pcd"):
        loaded = load_map(tmp_path / name, 0.01)
        assert len(loaded) == len(pts)
        np.testing.assert_allclose(loaded.points, pts, atol=1e-3)


def test_failed_write_leaves_the_previous_map_and_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "map.pcd"
    write_map(target, cloud(1000))
    before = target.read_bytes()

    def disk_full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(maps.os, "fsync", disk_full)
    with pytest.raises(MapFileError, match="no partial map"):
        write_map(target, cloud(50_000, seed=9))
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["map.pcd"]

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.undo()
    monkeypatch.setattr(maps.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_map(target, cloud(50_000, seed=9))
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["map.pcd"]


def test_write_map_rejects_bad_destinations(tmp_path):
    with pytest.raises(MapFileError, match="does not exist"):
        write_map(tmp_path / "missing" / "map.pcd", cloud(10))
    with pytest.raises(MapFileError, match="use a .pcd"):
        write_map(tmp_path / "map.ply", cloud(10))


def test_bad_map_files_give_one_line_errors(tmp_path):
    write_pcd(tmp_path / "empty.pcd", np.zeros((0, 3)))
    write_pcd(tmp_path / "nan.pcd", np.full((100, 3), np.nan))
    (tmp_path / "garbage.pcd").write_bytes(b"\x00\x01 not a point cloud")
    good = tmp_path / "truncated.pcd"
    write_pcd(good, cloud(1000))
    good.write_bytes(good.read_bytes()[:-100])
    (tmp_path / "folder.pcd").mkdir()
    cases = {"missing.pcd": "no such file", "empty.pcd": "no finite points", "nan.pcd": "no finite points",
             "garbage.pcd": "DATA", "truncated.pcd": "truncated", "folder.pcd": "is a directory", "map.xyzw": "unsupported extension"}
    (tmp_path / "map.xyzw").write_text("1 2 3\n")
    for name, needle in cases.items():
        with pytest.raises(MapFileError) as info:
            load_map(tmp_path / name, 0.25)
        message = str(info.value)
        assert needle in message and "\n" not in message and message.startswith("map "), message
