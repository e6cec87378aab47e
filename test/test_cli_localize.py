"""`dcreg run --save-map` and `dcreg localize` end to end on a small simulated bag (subprocesses),
and their bad inputs: a clear one-line error or a LOST diagnostic, never a traceback or NaN."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from dcreg_ros.core.geometry import invert_pose
from dcreg_ros.core.localization import LocalizationConfig
from dcreg_ros.io.cloud_files import read_cloud, write_pcd
from dcreg_ros.io.trajectory import read_tum

FRAMES = 20


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    """(bag, map saved by `dcreg run --save-map` into the folder its --out creates)."""
    root = tmp_path_factory.mktemp("loc")
    bag = root / "structured"
    run_cli("simulate", "structured", "--out", bag, "--frames", FRAMES, "--beams", 16, "--seed", 5)
    out = root / "run"
    assert not out.exists()  # --out creates it, so a map inside it is accepted before the run
    proc = run_cli("run", bag, "--out", out, "--no-plots", "--quiet", "--save-map", out / "map.pcd", "--map-voxel", 0.1)
    assert "wrote map" in proc.stdout and "points, one per 0.1 m voxel" in proc.stdout
    return bag, out / "map.pcd"


def test_saved_map_holds_every_registered_frame(mapped):
    bag, map_path = mapped
    cloud = read_cloud(map_path)
    assert b"DATA binary" in map_path.read_bytes()[:400]
    assert len(cloud) > 20_000 and np.isfinite(cloud.points).all()
    # the map is in the odometry frame: its points surround the trajectory's start (0, 0, 0)
    assert np.all(cloud.points.min(axis=0)[:2] < 0) and np.all(cloud.points.max(axis=0)[:2] > 0)


def test_localize_in_the_saved_map(mapped, tmp_path):
    bag, map_path = mapped
    out = tmp_path / "loc"
    proc = run_cli("localize", map_path, bag, "--out", out)
    for name in ("trajectory_tum.txt", "trajectory_kitti.txt", "diagnostics.csv", "summary.json", "trajectory.png", "degeneracy.png"):
        assert (out / name).stat().st_size > 0, name
    assert f"frame {FRAMES}/{FRAMES}" in proc.stderr  # progress as `dcreg run`
    assert f"OK {FRAMES}, DEGRADED 0, LOST 0" in proc.stdout and "loaded in" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tracking"] == {"OK": FRAMES, "DEGRADED": 0, "LOST": 0}
    assert summary["ate_rmse_m"] < 0.03 and summary["map_points"] > 1000 and summary["map_load_seconds"] > 0
    header = next(csv.reader(open(out / "diagnostics.csv")))
    assert len(header) == len(set(header)), sorted(h for h in header if header.count(h) > 1)  # every column once
    rows = list(csv.DictReader(open(out / "diagnostics.csv")))
    assert len(rows) == FRAMES and {"tracking", "inlier_share", "kappa_translation", "degenerate_x"} <= set(rows[0])
    traj = read_tum(out / "trajectory_tum.txt")
    assert np.allclose(traj.poses[0], np.eye(4), atol=0.03)  # the map origin is the mapping run's first pose


def test_localize_from_an_offset_initial_pose(mapped, tmp_path):
    bag, map_path = mapped
    out = tmp_path / "loc"
    run_cli("localize", map_path, bag, "--out", out, "--init", "0.3 -0.3 0 0 0 3", "--no-plots", "--quiet")
    traj = read_tum(out / "trajectory_tum.txt")
    assert np.linalg.norm(traj.poses[0][:3, 3]) < 0.1  # the first frame already pulled back to the origin
    assert json.loads((out / "summary.json").read_text())["tracking"]["OK"] == FRAMES


def test_bad_maps_and_initial_poses(mapped, tmp_path):
    bag, map_path = mapped
    out = tmp_path / "o"
    assert_one_line_error(run_cli("localize", tmp_path / "missing.pcd", bag, "--out", out, ok=False), "no such file")
    (tmp_path / "garbage.pcd").write_bytes(b"\x89PNG not a cloud")
    assert_one_line_error(run_cli("localize", tmp_path / "garbage.pcd", bag, "--out", out, ok=False), "garbage.pcd")
    write_pcd(tmp_path / "empty.pcd", np.zeros((0, 3)))
    assert_one_line_error(run_cli("localize", tmp_path / "empty.pcd", bag, "--out", out, ok=False), "no finite points")
    proc = run_cli("localize", map_path, bag, "--out", out, "--init", "900 0 0 0 0 0", ok=False)
    assert_one_line_error(proc, "outside the map")
    assert_one_line_error(run_cli("localize", map_path, bag, "--out", out, "--init", "1 2 3", ok=False), "--init")
    assert_one_line_error(run_cli("localize", map_path, tmp_path / "nothing", "--out", out, ok=False), "nothing")


def test_a_map_in_another_frame_is_lost_then_relocalized_never_nan(mapped, tmp_path):
    """The map lifted 60 m: started at the map origin, the scans find nothing, the track is LOST
    and the pose held; the first relocalization attempt (relocalization.attempt_every frames
    later) finds the scans in the lifted map with the real global registration."""
    bag, map_path = mapped
    shifted = tmp_path / "shifted.pcd"
    offset = np.array([0.0, 0.0, 60.0])
    write_pcd(shifted, read_cloud(map_path).points + offset)  # no overlap with the scans at the map origin
    out = tmp_path / "loc"
    proc = run_cli("localize", shifted, bag, "--out", out, "--no-plots", "--quiet")
    assert "first LOST at frame" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    traj = read_tum(out / "trajectory_tum.txt")
    assert len(traj) == FRAMES and np.isfinite(traj.poses).all()
    with open(out / "diagnostics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    tracking = [r["tracking"] for r in rows]
    first_lost, found = tracking.index("LOST"), [i for i, r in enumerate(rows) if r["relocalized"] == "1"]
    assert first_lost >= 1 and set(tracking[:first_lost]) == {"DEGRADED"}  # the lost-track test fires first
    assert found == [first_lost + LocalizationConfig().relocalization.attempt_every] and summary["relocalizations"] == 1
    k = found[0]
    assert tracking[first_lost:k] == ["LOST"] * (k - first_lost) and tracking[k:] == ["OK"] * (FRAMES - k), tracking
    assert np.allclose(traj.poses[first_lost:k], traj.poses[first_lost - 1])  # held while lost
    # from there on in the lifted map, where the truth is the mapping run's frame (its first pose
    # is the map origin) plus the offset. The relocalized scan has no velocity yet: its pose is the
    # mid-sweep one (compared with halfway to the next truth). Measured: 1.9 cm, then 0.5-1.7 cm.
    gt = read_tum(bag / "ground_truth_tum.txt")
    truth = np.array([(invert_pose(gt.poses[0]) @ T)[:3, 3] for T in gt.poses]) + offset
    assert np.linalg.norm(traj.poses[k][:3, 3] - (truth[k] + truth[k + 1]) / 2) < 0.03
    err = np.linalg.norm(traj.poses[k + 1:, :3, 3] - truth[k + 1:], axis=1)
    assert np.all(err < 0.03), err


def test_save_map_destination_is_checked_before_the_run(mapped, tmp_path):
    bag, _ = mapped
    proc = run_cli("run", bag, "--out", tmp_path / "o", "--save-map", tmp_path / "no" / "map.pcd", ok=False)
    assert_one_line_error(proc, "does not exist")
    assert not (tmp_path / "o").exists()
    assert_one_line_error(run_cli("run", bag, "--out", tmp_path / "o", "--save-map", tmp_path / "m.pcd", "--map-voxel", 0, ok=False),
                          "--map-voxel")


def test_localization_plot_with_degraded_and_lost_frames_draws_without_warnings(tmp_path):
    """The top view marks DEGRADED frames with open circles and LOST frames with crosses; matplotlib
    warns (UserWarning) about an edge colour given to the unfilled cross: none may be raised."""
    import warnings
    from types import SimpleNamespace

    from dcreg_ros.eval.plots import plot_localization
    from dcreg_ros.io.trajectory import Trajectory

    n = 12
    poses = np.stack([np.eye(4)] * n)
    poses[:, 0, 3] = np.arange(n) * 0.5
    run = SimpleNamespace(trajectory=Trajectory(np.arange(n) * 0.1, poses), masks=np.zeros((n, 6), bool), strategy="dcreg_prior",
                          tracking=np.array(["OK"] * 4 + ["DEGRADED"] * 4 + ["LOST"] * 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # what matplotlib raises for the marker (not a dependency's deprecations)
        plot_localization(run, tmp_path / "trajectory.png", map_points=np.random.default_rng(0).uniform(-1, 7, (500, 3)))
    assert (tmp_path / "trajectory.png").stat().st_size > 0
