"""The odometry pipeline on real sequences and synthetic checks (simulated scenes: test_odometry_sim.py)."""

from __future__ import annotations

import glob

import numpy as np
import pytest

import dcreg_ros
from conftest import box_room, require_data
from dcreg_ros.core.deskew import DEFAULT_MAX_TIME_SPAN_S, deskew, max_time_span, normalize_times, scan_fractions
from dcreg_ros.core.geometry import invert_pose, pose_error, pose_from_xyz_rpy, so3_exp, transform_points
from dcreg_ros.io.cloud_files import read_cloud
from dcreg_ros.io.trajectory import read_kitti


def test_ouster_os1_128_three_frames_follow_vendor_poses():
    base = require_data() / "pairs" / "ouster_os1_128"
    files = sorted(glob.glob(str(base / "*.pcd")))
    gt = read_kitti(next(base.glob("*poses_kitti.txt")))
    odom = dcreg_ros.Odometry()
    records = [odom.register_frame(read_cloud(f).points, stamp=0.1 * i) for i, f in enumerate(files)]
    assert [r.status for r in records] == ["first_frame", "converged", "converged"]
    for i in range(3):
        est = invert_pose(odom.poses[0]) @ odom.poses[i]
        ref = invert_pose(gt.poses[0]) @ gt.poses[i]
        t_err, r_err = pose_error(est, ref)
        assert t_err < 0.05 and r_err < 0.2
    assert all(not r.degeneracy.degenerate for r in records[1:])
    # 35,000 points at the 0.25 m source voxel: thinned to the registration's point budget
    budget = dcreg_ros.OdometryConfig().preprocess.max_source_points
    assert all(0.5 * budget < r.num_points <= budget for r in records[1:]), [r.num_points for r in records]
    assert set(records[1].timings) == {"preprocess", "correspondence", "hessian", "detection", "solve", "map_update"}


def test_ouster_os0_8_ten_frames_run_and_flag_x():
    files = sorted(glob.glob(str(require_data() / "degenerate" / "ouster_os0_8" / "*.pcd")))
    assert len(files) == 10
    odom = dcreg_ros.Odometry()
    records = [odom.register_frame(read_cloud(f).points, stamp=0.1 * i) for i, f in enumerate(files)]
    assert all(np.all(np.isfinite(r.pose)) for r in records)
    flagged_x = [r.degeneracy.mask[3] for r in records[1:]]
    assert all(flagged_x), [r.degeneracy.describe() for r in records[1:]]
    assert not any(r.degeneracy.mask[5] for r in records[1:])  # z never (y sits near the threshold here)
    # the covariance reports x as the least certain translation
    for r in records[1:]:
        sd = np.sqrt(np.diag(r.covariance))
        assert sd[3] > sd[5]


def test_deskew_recovers_a_scan_taken_while_rotating():
    rng = np.random.default_rng(0)
    room = box_room(n=4000, seed=3, noise=0.0)
    # the sensor turns 0.2 rad and moves 0.3 m during the scan; point i is taken at fraction s_i
    omega = np.array([0.0, 0.0, 0.2])
    v = np.array([0.3, 0.0, 0.0])
    s = np.sort(rng.uniform(0, 1, len(room)))
    measured = np.empty_like(room)
    for i, (p, si) in enumerate(zip(room, s)):
        R = so3_exp(omega * si)
        measured[i] = R.T @ (p - v * si)  # the point as seen from the pose at time s_i
    delta = np.eye(4)
    delta[:3, :3] = so3_exp(omega)
    delta[:3, 3] = v
    corrected = deskew(measured, s, delta, reference=0.0)
    assert np.abs(corrected - room).max() < 0.02
    assert np.abs(measured - room).max() > 0.5  # the skew was real
    np.testing.assert_allclose(normalize_times(np.array([5e8, 6e8, 7e8])), [0.0, 0.5, 1.0])  # ns work too
    assert normalize_times(np.zeros(5)) is None


def test_odometry_on_a_static_room_with_motion():
    """Known motion through a well constrained synthetic room: poses follow to a few cm."""
    world = box_room(n=12000, seed=4, noise=0.003)
    odom = dcreg_ros.Odometry()
    truth = [pose_from_xyz_rpy(0.15 * k, 0.02 * k, 0.0, 0.0, 0.0, 0.01 * k) for k in range(12)]
    rng = np.random.default_rng(7)
    for k, T in enumerate(truth):
        scan = transform_points(invert_pose(T), world + rng.normal(0, 0.003, world.shape))
        odom.register_frame(scan, stamp=0.1 * k)
    for est, ref in zip(odom.poses, truth):
        t_err, r_err = pose_error(est, ref)
        assert t_err < 0.03 and r_err < 0.2


def test_bad_frames_raise_and_leave_the_state_unchanged():
    odom = dcreg_ros.Odometry()
    good = box_room(n=4000, seed=5)
    odom.register_frame(good, stamp=0.0)
    for bad in (np.empty((0, 3)), np.full((50, 3), np.nan), np.zeros((5, 3)), np.zeros((10, 2))):
        with pytest.raises(dcreg_ros.InputError):
            odom.register_frame(bad, stamp=0.1)
    with pytest.raises(dcreg_ros.InputError, match="timestamps"):
        odom.register_frame(good, np.zeros(3), stamp=0.1)
    assert len(odom.poses) == 1
    rec = odom.register_frame(good, stamp=0.2)
    assert rec.status == "converged" and np.all(np.isfinite(rec.pose))
    far = good + np.array([40.0, 0.0, 0.0])  # nothing overlaps: the prediction is kept, no NaN
    rec = odom.register_frame(far, stamp=0.3)
    assert rec.status == "too_few_correspondences" and np.all(np.isfinite(rec.pose))


def test_config_and_strategy_selection(tmp_path):
    path = tmp_path / "odo.yaml"
    path.write_text("odometry:\n  degeneracy:\n    strategy: none\n  mapping:\n    voxel_size: 0.8\n")
    cfg = dcreg_ros.OdometryConfig.from_yaml(path)
    assert cfg.degeneracy.strategy == "none" and cfg.registration_config().correspondence.max_distance == 0.8
    assert dcreg_ros.Odometry(cfg, strategy="dcreg").config.degeneracy.strategy == "dcreg"
    with pytest.raises(ValueError):
        dcreg_ros.Odometry(strategy="nope")
    with pytest.raises(dcreg_ros.ConfigError, match="max_range"):
        dcreg_ros.OdometryConfig.from_dict({"preprocess": {"min_range": 10.0, "max_range": 5.0}})


def test_per_point_times_are_validated_before_deskewing():
    good = np.linspace(0.0, 0.1, 100)
    np.testing.assert_allclose(scan_fractions(good, max_time_span(0.1)).fractions, np.linspace(0, 1, 100))
    assert max_time_span(0.1) == pytest.approx(0.2) and max_time_span(None) == DEFAULT_MAX_TIME_SPAN_S
    assert max_time_span(-0.1) == DEFAULT_MAX_TIME_SPAN_S and max_time_span(float("nan")) == DEFAULT_MAX_TIME_SPAN_S
    for bad, words in ((np.where(np.arange(100) == 7, 1e308, good), "span 1e+308 s"),
                       (np.where(np.arange(100) == 7, -1e308, good), "span 1e+308 s"),
                       (np.where(np.arange(100) % 2 == 0, 1e308, -1e308), "span inf s"),
                       (np.where(np.arange(100) == 3, np.nan, good), "1 of 100 per-point times are NaN or Inf"),
                       (good * 1e9, "more than the plausible 0.2 s")):  # nanoseconds where seconds belong
        checked = scan_fractions(bad, 0.2)
        assert checked.fractions is None and words in checked.note, (words, checked.note)
    no_spread = scan_fractions(np.zeros(10), 0.2)  # no spread: nothing to deskew, nothing wrong
    assert no_spread.fractions is None and no_spread.note is None


def test_implausible_point_times_turn_deskewing_off_for_that_frame_only():
    """A sensor sweeping the room at 3 m/s; frame 5 carries +-1e308 in its time field. It is
    registered without deskewing, says why in its notes, and the trajectory stays within a few cm
    of the clean run's."""
    world = box_room(n=8000, seed=6, noise=0.0)
    rng = np.random.default_rng(3)

    def pose_at(t: float) -> np.ndarray:  # 3 m/s forward, 0.2 rad/s yaw
        return pose_from_xyz_rpy(3.0 * t, 0.0, 0.0, 0.0, 0.0, 0.2 * t)

    def sweep(k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scan k as a spinning LiDAR takes it: 20 azimuth sectors, each seen at its own time."""
        sector = rng.integers(0, 20, len(world))
        times = sector * 0.005
        scan = np.empty_like(world)
        for j in range(20):
            sel = sector == j
            scan[sel] = transform_points(invert_pose(pose_at(0.1 * k + 0.005 * j)), world[sel])
        return scan, times

    scans = [sweep(k) for k in range(9)]

    def run(corrupt: bool):
        odom = dcreg_ros.Odometry()
        records = []
        for k, (scan, times) in enumerate(scans):
            times = times.copy()
            if corrupt and k == 5:
                times[::100], times[50::100] = 1e308, -1e308
            records.append((odom.register_frame(scan, times, stamp=0.1 * k), pose_at(0.1 * k)))
        return records

    clean, spoiled = run(False), run(True)
    # 3 m/s from a standing start: the first registered speed beyond min_plausible_speed (3 m/s)
    # is held for one prediction, with a note; nothing else
    assert all(all("beyond the plausible" in n for n in r.notes) for r, _ in clean)
    assert [any("deskewing off" in n for n in r.notes) for r, _ in spoiled] == [k == 5 for k in range(9)]
    assert "deskewing off" in spoiled[5][0].notes[-1]
    # the next frame's prediction came from that unskewed scan: at most a consistency note, nothing else
    assert all("prediction off along" in n for n in spoiled[6][0].notes)
    for (a, _), (b, _) in zip(clean, spoiled):
        assert np.all(np.isfinite(b.pose))
        assert pose_error(b.pose, a.pose)[0] < 0.02  # 7 cm when these times were used for deskewing
