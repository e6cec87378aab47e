"""The handheld motion profile (walking, bounce, sweeps, shake) and scan drops, in simulated scenes and bags."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from dcreg_ros.io.bags import list_topics, read_ground_truth
from dcreg_ros.io.datasets import open_dataset
from dcreg_ros.io.proprioception import read_imu, read_static_transforms
from dcreg_ros.sim import SCENE_NAMES, WheelModel, deskew, simulate, write_simulation
from dcreg_ros.sim.kinematics import kinematics
from dcreg_ros.sim.motion_profiles import sensor_motion
from dcreg_ros.sim.proprioception import ImuModel, simulate_imu
from dcreg_ros.sim.scan_drops import ScanDrops
from dcreg_ros.sim.scenes import build_scene
from dcreg_ros.sim.sensors import sensor_preset
from dcreg_ros.sim.simulate import load_simulation_info, simulate_frame
from test_sim_motion import free_space_violations, horizontal_speed, runs

T0 = 1000.0
DT = 0.005  # s, sampling of the true motion here
SMALL = dict(beams=16, columns=128, start_stamp=T0)  # few rays: these tests check stamps and frames, not geometry


def handheld(scene: str, seed: int, duration: float = 60.0):
    return sensor_motion("handheld", build_scene(scene).motion, seed=seed, t0=T0, duration=duration)


def rate_deg(motion, stamps: np.ndarray) -> np.ndarray:
    """|angular velocity| (deg/s) of the sensor at ``stamps``."""
    return np.degrees(np.linalg.norm(kinematics(motion, stamps).angular_velocity, axis=1))


@pytest.mark.parametrize("scene", ["corridor", "structured", "stairwell"])
def test_fast_sweeps_bounded_rates_walking_speed_and_pauses(scene):
    stamps = T0 + np.arange(0.0, 60.0, DT)
    low, high = (0.5, 1.0) if scene == "stairwell" else (0.8, 1.6)  # up the stairs at most 1 m/s
    cruising = []
    for seed in (0, 1, 2):
        motion = handheld(scene, seed)
        rate = rate_deg(motion, stamps)
        assert 150.0 <= rate.max() <= 200.0, (seed, rate.max())
        assert np.median(rate) < 20.0 and 0.05 < np.mean(rate > 100.0) < 0.25  # calm between deliberate sweeps
        assert np.mean(rate > 20.0) > 0.15
        speed = horizontal_speed(motion.poses(stamps[::2]))  # test_sim_motion's DT = 0.01 s
        walking = motion.speed(stamps[::2])[1:]
        assert speed.max() <= high + 0.05
        steady = (walking > 0.0) & (np.abs(np.gradient(walking)) < 1e-9)
        cruising += list(walking[steady])
        pauses = [(a, b) for a, b in runs(walking == 0.0) if a > 0 and (b - a) * 0.01 >= 1.0]
        assert pauses, "a walk pauses within a minute"
        for a, b in pauses:  # at a pause the device stays put (the hand still turns it)
            np.testing.assert_array_equal(np.diff(motion.poses(stamps[::2][a + 1:b + 1])[:, :3, 3], axis=0), 0.0)
    assert low <= min(cruising) and max(cruising) <= high and np.ptp(cruising) > 0.25 * (high - low)


def test_step_bounce_at_the_step_frequency():
    stamps = T0 + np.arange(0.0, 60.0, DT)
    for seed in (3, 4):
        motion = handheld("corridor", seed)  # flat floor: the height is the bounce and the walk's slow bob
        z, speed = motion.poses(stamps)[:, 2, 3], motion.speed(stamps)
        a, b = max(runs(speed > 0.75), key=lambda r: r[1] - r[0])
        assert (b - a) * DT > 4.0
        t = stamps[a:b] - stamps[a]
        height = z[a:b] - np.polyval(np.polyfit(t, z[a:b], 2), t)
        window = np.hanning(len(t))
        spectrum = np.abs(np.fft.rfft(height * window)) * 2.0 / window.sum()
        frequency = np.fft.rfftfreq(len(t), DT)
        assert 1.75 <= frequency[spectrum.argmax()] <= 2.05
        assert 0.012 <= spectrum.max() <= 0.045  # a few cm
        assert np.ptp(height) < 0.15


def test_seeds_differ_and_repeat():
    stamps = T0 + np.arange(0.0, 20.0, 0.05)
    a = handheld("tunnel", 5).poses(stamps)
    np.testing.assert_array_equal(a, handheld("tunnel", 5).poses(stamps))
    for other in (6, 7):
        b = handheld("tunnel", other).poses(stamps)
        rotation_gap = np.degrees(np.arccos(np.clip((np.einsum("nij,nij->n", a[:, :3, :3], b[:, :3, :3]) - 1) / 2, -1, 1)))
        assert rotation_gap.max() > 20.0 and np.abs(a[:, :3, 3] - b[:, :3, 3]).max() > 0.5


@pytest.mark.parametrize("seed", [2, 3])
def test_stays_in_free_space_in_every_scene(seed):
    stamps = T0 + np.arange(0.0, 80.0, 0.01)
    for name in SCENE_NAMES:
        poses = handheld(name, seed, duration=80.0).poses(stamps)
        assert free_space_violations(name, poses) == [], (name, seed)


def test_imu_gyro_is_the_true_angular_rate_at_sweeps():
    motion = handheld("structured", 1)
    model = ImuModel()
    stamps = T0 + np.arange(0.0, 20.0, 1.0 / model.rate)
    truth = simulate_imu(motion, stamps, model, np.random.default_rng(0))
    # the body rate from the Euler angles' rates (R = Rz Ry Rx), independent of the simulator's
    # rotation-matrix differences, turned into the IMU frame
    h = 1e-5
    roll, pitch, _ = motion.xyz_rpy(stamps)[:, 3:].T
    dr, dp, dy = ((motion.xyz_rpy(stamps + h) - motion.xyz_rpy(stamps - h))[:, 3:] / (2 * h)).T
    body = np.column_stack([dr - np.sin(pitch) * dy,
                            np.cos(roll) * dp + np.sin(roll) * np.cos(pitch) * dy,
                            -np.sin(roll) * dp + np.cos(roll) * np.cos(pitch) * dy])
    expected = body @ model.T_lidar_imu[:3, :3] + truth.gyro_bias
    fast = np.degrees(np.linalg.norm(body, axis=1)) > 150.0
    assert fast.sum() > 20
    error = truth.samples.angular_velocity - expected
    assert np.abs(error).max() < 5.0 * model.gyro_noise
    assert abs(error.std() / model.gyro_noise - 1.0) < 0.05


def test_deskewing_is_exact_during_the_fastest_turn():
    motion = handheld("structured", 0, duration=20.0)
    stamps = T0 + np.arange(0.0, 20.0, DT)
    rate = rate_deg(motion, stamps)
    sensor = sensor_preset(16, columns=512, range_noise=0.0)
    stamp = float(stamps[rate.argmax()]) - 0.5 * sensor.period  # the peak mid-scan
    assert rate_deg(motion, stamp + sensor.column_times()).min() > 140.0
    sample = simulate_frame(build_scene("structured").pack(), sensor, motion, stamp, np.random.default_rng(0))
    exact = deskew(sample.scan, motion.poses)
    np.testing.assert_allclose(exact, sample.points_true, atol=1e-9)  # each column cast at its own time
    skew = np.linalg.norm(sample.scan.points - sample.points_true, axis=1)
    assert np.median(skew) > 0.3  # 15+ deg in one revolution: far from a static scan


def test_handheld_has_an_imu_but_no_wheels():
    result = simulate("corridor", frames=2, motion="handheld", seed=1, **SMALL)
    assert result.motion_profile == "handheld" and result.wheel is None and result.imu is not None
    with pytest.raises(ValueError, match="no wheel odometry"):
        simulate("corridor", frames=2, motion="handheld", wheel=WheelModel(), **SMALL)
    assert simulate("corridor", frames=2, motion="stop_and_go", **SMALL).wheel is not None


def test_drops_keep_the_stated_stamps_and_their_ground_truth():
    kwargs = dict(frames=10, seed=4, motion="handheld", **SMALL)
    full = simulate("structured", **kwargs)
    part = simulate("structured", keep_every=2, drop_every=2, **kwargs)
    kept = [0, 4, 8]  # revolutions 0, 2, 4, 6, 8 kept, then every 2nd of those dropped
    np.testing.assert_allclose(part.ground_truth.stamps, T0 + 0.1 * np.array(kept), atol=1e-9)
    assert [s.stamp for s in part.scans] == list(part.ground_truth.stamps)
    np.testing.assert_array_equal(part.ground_truth.poses, full.ground_truth.poses[kept])
    np.testing.assert_array_equal(part.degenerate_mask, full.degenerate_mask[kept])
    np.testing.assert_array_equal(part.truth_std, full.truth_std[kept])
    for k, scan in zip(kept, part.scans):  # the same scans as without drops, noise included
        np.testing.assert_array_equal(scan.points, full.scans[k].points)
    np.testing.assert_allclose(part.dropped_stamps, T0 + 0.1 * np.array([1, 2, 3, 5, 6, 7, 9]), atol=1e-9)
    np.testing.assert_array_equal(part.imu.samples.stamps, full.imu.samples.stamps)  # the IMU runs on
    window = part.frames(1)
    np.testing.assert_allclose(window.dropped_stamps, T0 + 0.1 * np.array([5, 6, 7]), atol=1e-9)


def test_random_drops_are_seeded_and_options_are_checked():
    drops = ScanDrops(drop_probability=0.2)
    kept = drops.kept(2000, seed=1)
    assert abs((~kept).mean() - 0.2) < 0.03
    np.testing.assert_array_equal(kept, drops.kept(2000, seed=1))
    assert not np.array_equal(kept, drops.kept(2000, seed=2))
    both = ScanDrops(keep_every=3, drop_probability=0.2).kept(2000, seed=1)
    assert not both[1::3].any() and not both[2::3].any() and np.array_equal(both[::3], kept[::3])
    assert ScanDrops(drop_every=0).kept(5, 0).all() and not ScanDrops().active
    for bad, message in ((dict(keep_every=0), "keep_every"), (dict(drop_every=1), "drop_every"),
                         (dict(drop_probability=1.0), "drop_probability"), (dict(drop_probability=float("nan")), "drop_probability"),
                         (dict(keep_every=2.5), "keep_every")):
        with pytest.raises(ValueError, match=message):
            ScanDrops(**bad)
    with pytest.raises(ValueError, match="no scan left"):
        simulate("corridor", frames=1, drop_probability=0.99, **SMALL)


def test_bag_round_trip_of_a_handheld_run_with_drops(tmp_path):
    result = simulate("stairwell", frames=9, seed=2, motion="handheld", keep_every=2, drop_probability=0.3, **SMALL)
    kept = result.ground_truth.stamps
    assert 2 <= len(kept) < 5 and len(result.dropped_stamps) == 9 - len(kept)
    bag = write_simulation(result, tmp_path / "bag")
    assert "/wheel/odom" not in list_topics(bag) and {"/points", "/ground_truth", "/imu"} <= set(list_topics(bag))
    scans = list(open_dataset(bag))
    np.testing.assert_allclose([s.stamp for s in scans], kept, atol=1e-9)
    for read, written in zip(scans, result.scans):
        np.testing.assert_allclose(read.points, written.points, atol=1e-6)  # float32 in the message
        np.testing.assert_allclose(read.times, written.times, atol=1e-9)
    gt = read_ground_truth(bag)
    np.testing.assert_allclose(gt.stamps, kept, atol=1e-9)
    np.testing.assert_allclose(gt.poses, result.ground_truth.poses, atol=1e-9)
    np.testing.assert_allclose(read_imu(bag).stamps, result.imu.samples.stamps, atol=1e-9)
    assert set(read_static_transforms(bag)) == {("lidar", "imu")}  # no base_link: nothing carries wheels
    info = load_simulation_info(bag)
    assert info["motion_profile"] == "handheld" and "wheel" not in info and "T_base_lidar" not in info["extrinsics"]
    drops = info["scan_drops"]
    assert drops["keep_every"] == 2 and drops["drop_probability"] == 0.3 and drops["scans"] == len(kept)
    np.testing.assert_allclose(drops["dropped_stamps"], result.dropped_stamps)
    tum = np.loadtxt(bag / "ground_truth_tum.txt")
    np.testing.assert_allclose(tum[:, 0], kept, atol=1e-9)
    assert len(json.loads((bag / "degeneracy_truth.json").read_text())["frames"]) == len(kept)


def test_cli_simulates_handheld_at_a_lower_frame_rate_and_checks_the_drop_options(tmp_path):
    out = tmp_path / "hand"
    proc = run_cli("simulate", "structured", "--out", out, "--frames", 9, "--beams", 16, "--motion", "handheld",
                   "--keep-every", 3, "--seed", 1)
    assert "3 scans of structured" in proc.stdout and "3 of 9 revolutions written (every 3rd scan kept)" in proc.stdout
    assert "wheel none" in proc.stdout and "/wheel/odom" not in list_topics(out)
    info = load_simulation_info(out)
    np.testing.assert_allclose(info["scan_drops"]["dropped_stamps"], T0 + 0.1 * np.array([1, 2, 4, 5, 7, 8]))
    assert_one_line_error(run_cli("simulate", "tunnel", "--out", tmp_path / "x", "--drop-every", 1, ok=False),
                          "--drop-every must be an integer >= 2")
    assert_one_line_error(run_cli("simulate", "tunnel", "--out", tmp_path / "x", "--frames", 4, "--keep-every", 4, ok=False),
                          "only 1 of 4 scans")
