"""open_dataset on bags and on folders of point cloud files."""

from __future__ import annotations

import numpy as np
import pytest

from dcreg_ros.core.pointcloud import InputError
from dcreg_ros.io.bags import BagWriter, write_ros1_bag
from dcreg_ros.io.cloud_files import write_pcd, write_ply
from dcreg_ros.io.datasets import BagDataset, Dataset, FolderDataset, open_dataset
from dcreg_ros.io.scan import Scan
from dcreg_ros.io.trajectory import Trajectory, TrajectoryFileError, write_tum

T0 = 1_700_000_000.0


def make_scans(k: int = 3, n: int = 200) -> list[Scan]:
    rng = np.random.default_rng(7)
    return [Scan(T0 + 0.1 * i, rng.uniform(-20, 20, (n, 3)), np.sort(rng.uniform(0, 0.1, n)), rng.uniform(0, 50, n), "lidar")
            for i in range(k)]


def poses(k: int) -> np.ndarray:
    out = np.tile(np.eye(4), (k, 1, 1))
    out[:, 0, 3] = np.arange(k) * 0.5
    return out


@pytest.mark.parametrize("kind", ["ros2_dir", "ros2_file", "ros1"])
def test_bag_dataset(tmp_path, kind):
    scans = make_scans()
    if kind == "ros1":
        path = tmp_path / "run.bag"
        write_ros1_bag(path, scans, ground_truth=Trajectory([s.stamp for s in scans], poses(3)))
    else:
        path = tmp_path / "run"
        with BagWriter(path, storage="sqlite3") as writer:
            for s, T in zip(scans, poses(3)):
                writer.write_scan("/points", s)
                writer.write_odometry("/ground_truth", s.stamp, T)
        if kind == "ros2_file":
            path = path / "run.db3"
    ds = open_dataset(path)
    assert isinstance(ds, BagDataset) and isinstance(ds, Dataset)
    assert ds.name == "run" and len(ds) == 3
    out = list(ds)
    assert [s.stamp for s in out] == pytest.approx([s.stamp for s in scans], abs=1e-6)
    np.testing.assert_allclose(out[1].points, scans[1].points.astype(np.float32))
    np.testing.assert_allclose(out[2].times, scans[2].times, atol=1e-7)
    assert ds.skips.read == 3 and ds.skips.skipped == 0
    np.testing.assert_allclose(ds.ground_truth.poses, poses(3))
    assert len(list(ds)) == 3  # iterable more than once


def test_bag_dataset_takes_ground_truth_only_from_a_named_topic(tmp_path):
    path = tmp_path / "bag"
    with BagWriter(path) as writer:
        for s in make_scans(2):
            writer.write_scan("/points", s)
            writer.write_odometry("/odom", s.stamp, np.eye(4))
            writer.write_pose("/gt_pose", s.stamp, np.eye(4), "map")
    ds = open_dataset(path)
    assert ds.ground_truth is None and "/gt_pose, /odom" in ds.notes[0] and "--gt-topic" in ds.notes[0]
    chosen = open_dataset(path, ground_truth_topic="/gt_pose")
    assert len(chosen.ground_truth) == 2 and not chosen.notes
    with pytest.raises(InputError, match="no topic '/nope'"):
        open_dataset(path, topic="/nope")


def write_folder(folder, k: int = 11) -> list[np.ndarray]:
    """Files scan_0 .. scan_{k-1} with x = index, so the order is visible; mixed formats."""
    folder.mkdir()
    clouds = []
    for i in range(k):
        pts = np.random.default_rng(i).uniform(-5, 5, (50, 3))
        pts[:, 0] = i
        clouds.append(pts)
        if i % 2:
            write_ply(folder / f"scan_{i}.ply", pts)
        else:
            write_pcd(folder / f"scan_{i}.pcd", pts, {"intensity": np.full(50, float(i)), "t": np.linspace(0, 0.1, 50)})
    return clouds


def test_folder_dataset_natural_order_and_period(tmp_path):
    folder = tmp_path / "seq"
    clouds = write_folder(folder)
    ds = open_dataset(folder, period=0.2)
    assert isinstance(ds, FolderDataset) and ds.name == "seq" and len(ds) == 11
    assert ds.ground_truth is None
    out = list(ds)
    assert [int(s.points[0, 0]) for s in out] == list(range(11))  # scan_2 before scan_10
    np.testing.assert_allclose([s.stamp for s in out], 0.2 * np.arange(11))
    np.testing.assert_allclose(out[3].points, clouds[3].astype(np.float32))
    np.testing.assert_allclose(out[4].times, np.linspace(0, 0.1, 50), atol=1e-7)
    np.testing.assert_array_equal(out[4].intensity, np.full(50, 4.0))
    assert out[3].times is None and out[3].intensity is None  # the PLY files have x, y, z only
    assert ds.skips.read == 11 and ds.skips.skipped == 0 and not ds.skips.examples


def test_folder_dataset_with_timestamps_and_ground_truth(tmp_path):
    folder = tmp_path / "seq"
    write_folder(folder, k=4)
    stamps = T0 + np.array([0.0, 0.11, 0.2, 0.32])
    (folder / "timestamps.txt").write_text("".join(f"{t:.6f}\n" for t in stamps))
    write_tum(folder / "ground_truth_tum.txt", Trajectory(stamps, poses(4)))
    ds = open_dataset(folder)
    assert len(ds) == 4  # neither text file is taken for a cloud
    out = list(ds)
    np.testing.assert_allclose([s.stamp for s in out], stamps, atol=1e-6)
    # float 't' in the files is relative seconds, kept relative to the real stamps
    np.testing.assert_allclose(out[0].times, np.linspace(0, 0.1, 50), atol=1e-7)
    np.testing.assert_allclose(ds.ground_truth.stamps, stamps, atol=1e-6)
    np.testing.assert_allclose(ds.ground_truth.positions[:, 0], [0, 0.5, 1.0, 1.5])


def test_folder_integer_nanosecond_times_and_nan_points(tmp_path):
    folder = tmp_path / "seq"
    folder.mkdir()
    n = 20
    rec = np.zeros(n, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("t", "<u4")])
    rec["x"], rec["y"], rec["z"] = np.arange(n), 1.0, 2.0
    rec["x"][5] = np.nan
    rec["t"] = np.arange(n) * 5_000_000  # ns
    header = ("VERSION 0.7\nFIELDS x y z t\nSIZE 4 4 4 4\nTYPE F F F U\nCOUNT 1 1 1 1\n"
              f"WIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA binary\n")
    (folder / "000.pcd").write_bytes(header.encode() + rec.tobytes())
    (scan,) = list(open_dataset(folder))
    keep = np.arange(n) != 5
    assert len(scan) == n - 1
    np.testing.assert_allclose(scan.times, np.arange(n)[keep] * 0.005)
    np.testing.assert_array_equal(scan.points[:, 0], np.arange(n)[keep])


def test_unreadable_file_is_skipped_and_counted(tmp_path):
    folder = tmp_path / "seq"
    write_folder(folder, k=3)
    (folder / "scan_1.ply").write_bytes(b"ply\nthis is broken")
    ds = open_dataset(folder)
    assert len(ds) == 3
    out = list(ds)
    assert [int(s.points[0, 0]) for s in out] == [0, 2]
    assert ds.skips.skipped == 1 and ds.skips.read == 2 and "scan_1.ply" in ds.skips.examples[0]
    (group,) = ds.skips.groups.values()
    assert group.kind == "unreadable file" and group.first_item == "scan_1.ply" and group.count == 1


def test_dataset_errors(tmp_path):
    cases = []
    cases.append((tmp_path / "missing", {}, "no such file"))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("nothing")
    cases.append((empty, {}, "no point cloud files"))
    only_meta = tmp_path / "only_meta"
    only_meta.mkdir()
    (only_meta / "timestamps.txt").write_text("1.0\n")
    cases.append((only_meta, {}, "no point cloud files"))
    unknown = tmp_path / "cloud.las"
    unknown.write_bytes(b"LASF")
    cases.append((unknown, {}, "unknown input"))
    wrong_count = tmp_path / "wrong_count"
    write_folder(wrong_count, k=3)
    (wrong_count / "timestamps.txt").write_text("1.0\n2.0\n")
    cases.append((wrong_count, {}, "2 stamps for 3"))
    bad_stamp = tmp_path / "bad_stamp"
    write_folder(bad_stamp, k=2)
    (bad_stamp / "timestamps.txt").write_text("1.0\nsoon\n")
    cases.append((bad_stamp, {}, "not a time stamp"))
    cases.append((bad_stamp, {"period": 0.0}, "period"))
    not_bag = tmp_path / "fake.mcap"
    not_bag.write_bytes(b"\x00" * 64)
    cases.append((not_bag, {}, "cannot open bag"))
    for path, kwargs, words in cases:
        with pytest.raises(InputError) as info:
            open_dataset(path, **kwargs)
        text = str(info.value)
        assert words in text and "\n" not in text, (path, text)

    bad_gt = tmp_path / "bad_gt"
    write_folder(bad_gt, k=2)
    (bad_gt / "ground_truth_tum.txt").write_text("1 2 3\n")
    with pytest.raises(TrajectoryFileError):
        open_dataset(bad_gt)
