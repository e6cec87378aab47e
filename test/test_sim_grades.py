"""Sensor quality of the simulator: IMU grades, an explicit wheel scale error, wheel slip episodes
(the benchmark's variation of issue 14), through simulate(), the bag and `dcreg simulate`."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from dcreg_ros.core.proprioception import GRAVITY
from dcreg_ros.io.proprioception import read_wheel_odometry
from dcreg_ros.sim import (IMU_GRADES, ImuModel, WheelModel, WheelSlip, load_simulation_info, load_slip_episodes, simulate,
                           slipping, write_simulation)
from dcreg_ros.sim.motion_profiles import sensor_motion
from dcreg_ros.sim.proprioception import base_motion, sample_stamps, simulate_imu, simulate_wheel_odometry
from dcreg_ros.sim.scenes import build_scene
from dcreg_ros.sim.wheel_slip import SlipFitError

T0 = 1000.0
ISSUE_CONSUMER = {"rate": 200.0, "gyro_noise": 0.005, "accel_noise": 0.04, "gyro_bias_deg": (0.06, 0.15),
                  "accel_bias": (0.01, 0.02)}  # issue 14's consumer MEMS, written out independently of the code
FACTORS = {"consumer": 1.0, "poor": 3.0, "industrial": 0.1}
ERROR_FIELDS = ("gyro_noise", "accel_noise", "gyro_bias_deg", "accel_bias")


class Standing:
    """A sensor at rest at the origin, level."""

    def poses(self, stamps) -> np.ndarray:
        return np.tile(np.eye(4), (len(np.atleast_1d(stamps)), 1, 1))


def moving(profile: str = "variable", scene: str = "open_field", seed: int = 5):
    return sensor_motion(profile, build_scene(scene).motion, seed=seed, t0=T0)


def errors(truth, ideal) -> tuple[np.ndarray, np.ndarray]:
    """What a grade adds to the ideal samples (bias + noise), gyro and accel."""
    return (truth.samples.angular_velocity - ideal.samples.angular_velocity,
            truth.samples.linear_acceleration - ideal.samples.linear_acceleration)


IDEAL = ImuModel(gyro_noise=0.0, accel_noise=0.0, gyro_bias_deg=(0.0, 0.0), accel_bias=(0.0, 0.0))


# ------------------------------------------------------------------------------------- IMU grades
def test_grades_are_the_issue_numbers_and_the_default_is_kept():
    assert list(IMU_GRADES) == ["default", "consumer", "poor", "industrial"]
    for name, factor in FACTORS.items():
        model = ImuModel.grade(name)
        assert model.rate == 200.0 and model.grade_name == name
        for field in ERROR_FIELDS:
            np.testing.assert_allclose(getattr(model, field), np.multiply(ISSUE_CONSUMER[field], factor), rtol=1e-12,
                                       err_msg=f"{name} {field}")
    assert ImuModel.grade("default") == ImuModel() and ImuModel().grade_name == "default"
    assert (ImuModel().gyro_noise, ImuModel().gyro_bias_deg) == (3e-3, (0.01, 0.05))  # unchanged
    # the mounting is not part of a grade; the errors are
    assert dataclasses.replace(ImuModel.grade("poor"), mount_xyz=(0.0, 0.0, 0.0)).grade_name == "poor"
    assert dataclasses.replace(ImuModel.grade("poor"), gyro_noise=0.01).grade_name == "custom"
    with pytest.raises(ValueError, match=r"unknown IMU grade 'tactical' \(choose one of default, consumer, poor, industrial\)"):
        ImuModel.grade("tactical")


@pytest.mark.parametrize("grade", ["consumer", "poor", "industrial"])
def test_grade_noise_at_rest_and_drawn_biases_are_within_the_stated_ranges(grade):
    model = ImuModel.grade(grade)
    stamps = T0 + np.arange(4000) / model.rate  # 20 s at rest
    truth = simulate_imu(Standing(), stamps, model, np.random.default_rng(4))
    gyro, accel = errors(truth, simulate_imu(Standing(), stamps, IDEAL, np.random.default_rng(4)))
    g_ref = ISSUE_CONSUMER["gyro_noise"] * FACTORS[grade]
    a_ref = ISSUE_CONSUMER["accel_noise"] * FACTORS[grade]
    # sample standard deviation: 4000 samples give it to ~1.1 %
    np.testing.assert_allclose(gyro.std(axis=0), g_ref, rtol=0.05)
    np.testing.assert_allclose(accel.std(axis=0), a_ref, rtol=0.05)
    # the mean at rest is the drawn bias
    np.testing.assert_allclose(gyro.mean(axis=0), truth.gyro_bias, atol=4.0 * g_ref / np.sqrt(len(stamps)))
    np.testing.assert_allclose(accel.mean(axis=0), truth.accel_bias, atol=4.0 * a_ref / np.sqrt(len(stamps)))
    # at rest a level IMU mounted upside down reads the gravity reaction along its -z
    np.testing.assert_allclose(truth.samples.linear_acceleration.mean(axis=0), [0.0, 0.0, -GRAVITY] + truth.accel_bias,
                               atol=4.0 * a_ref / np.sqrt(len(stamps)))
    # the drawn biases over 100 seeds: magnitudes fill the stated range, both signs occur
    draws = [simulate_imu(Standing(), stamps[:4], model, np.random.default_rng(s)) for s in range(100)]
    for drawn, (lo, hi) in ((np.degrees([d.gyro_bias for d in draws]), np.multiply(ISSUE_CONSUMER["gyro_bias_deg"], FACTORS[grade])),
                            (np.array([d.accel_bias for d in draws]), np.multiply(ISSUE_CONSUMER["accel_bias"], FACTORS[grade]))):
        magnitude = np.abs(drawn)
        assert magnitude.min() >= lo * (1 - 1e-9) and magnitude.max() <= hi * (1 + 1e-9)
        assert magnitude.min() < lo + 0.05 * (hi - lo) and magnitude.max() > hi - 0.05 * (hi - lo)
        assert 0.3 < np.mean(drawn > 0) < 0.7


def test_poor_is_three_times_consumer_and_industrial_a_tenth_sample_by_sample():
    motion = moving("stop_and_go", "structured", seed=2)
    stamps = sample_stamps(T0, T0 + 3.0, 200.0)
    ideal = simulate_imu(motion, stamps, IDEAL, np.random.default_rng(9))
    consumer = simulate_imu(motion, stamps, ImuModel.grade("consumer"), np.random.default_rng(9))
    gyro, accel = errors(consumer, ideal)
    assert np.abs(gyro).max() > 0.005 and np.abs(accel).max() > 0.04  # the errors are there
    for grade in ("poor", "industrial"):
        truth = simulate_imu(motion, stamps, ImuModel.grade(grade), np.random.default_rng(9))
        g, a = errors(truth, ideal)
        f = FACTORS[grade]
        np.testing.assert_allclose(g, f * gyro, atol=1e-9)
        np.testing.assert_allclose(a, f * accel, atol=1e-9)
        np.testing.assert_allclose(truth.gyro_bias, f * consumer.gyro_bias, rtol=1e-9)
        np.testing.assert_allclose(truth.accel_bias, f * consumer.accel_bias, rtol=1e-9)


# ------------------------------------------------------------------------------- wheel scale error
def planar_distance(poses: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(poses[:, :2, 3], axis=0), axis=1).sum())


def test_an_explicit_scale_error_changes_the_wheel_distance_by_that_fraction():
    motion = moving()
    stamps = sample_stamps(T0, T0 + 20.0, 50.0)
    true_speed, _, base = base_motion(motion, stamps, WheelModel())
    runs = {s: simulate_wheel_odometry(motion, stamps, WheelModel(scale_error=s), np.random.default_rng(1))
            for s in (0.0, 0.03, -0.05)}
    base_distance = planar_distance(runs[0.0].samples.poses)
    assert base_distance > 15.0
    assert abs(base_distance / planar_distance(base.poses) - 1.0) < 0.005  # no scale error: the true distance
    for s, truth in runs.items():
        assert truth.scale_error == s
        assert abs(planar_distance(truth.samples.poses) / base_distance - (1.0 + s)) < 1e-3
        # the same noise whatever the scale error: the speeds differ by exactly s x the true speed
        np.testing.assert_allclose(truth.samples.linear_velocity[:, 0] - runs[0.0].samples.linear_velocity[:, 0],
                                   s * true_speed, atol=1e-12)
    # a range: magnitudes drawn within it, with both signs, the covariance sized by its upper end
    drawn = [simulate_wheel_odometry(motion, stamps[:5], WheelModel(scale_error=(0.02, 0.05)), np.random.default_rng(k))
             for k in range(40)]
    scales = np.array([d.scale_error for d in drawn])
    assert np.all((np.abs(scales) >= 0.02) & (np.abs(scales) <= 0.05)) and 0.2 < np.mean(scales > 0) < 0.8
    assert WheelModel(scale_error=(0.02, 0.05)).max_scale_error == 0.05 == WheelModel(scale_error=-0.05).max_scale_error


@pytest.mark.parametrize("kwargs,message", [
    ({"scale_error": (0.05, 0.01)}, "bounds must be magnitudes 0 <= low <= high < 1"),
    ({"scale_error": (-0.01, 0.02)}, "bounds must be magnitudes"),
    ({"scale_error": 1.5}, r"must be a fraction in \(-1, 1\)"),
    ({"scale_error": float("nan")}, "must be a fraction"),
])
def test_wheel_model_refuses_bad_scale_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WheelModel(**kwargs)


@pytest.mark.parametrize("kwargs,message", [
    ({"count": -1}, "integer >= 0"), ({"count": 1.5}, "integer >= 0"), ({"kinds": ("slide",)}, "some of spin, skid"),
    ({"kinds": ()}, "got none"), ({"duration": (0.0, 1.0)}, "must be > 0 s"), ({"duration": (2.0, 1.0)}, "low <= high"),
    ({"spin_factor": (0.5, 2.0)}, "1 <= low"), ({"skid_drift": (0.1, float("inf"))}, "finite"),
])
def test_wheel_slip_refuses_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WheelSlip(**kwargs)


# -------------------------------------------------------------------------------- slip episodes
def test_slip_episodes_change_the_reported_motion_inside_and_nothing_outside():
    motion = moving()
    stamps = sample_stamps(T0, T0 + 20.0, 50.0)
    true_speed, true_rate, _ = base_motion(motion, stamps, WheelModel())
    model = WheelModel(episodes=WheelSlip(count=6))
    clean = simulate_wheel_odometry(motion, stamps, WheelModel(), np.random.default_rng(3))
    truth = simulate_wheel_odometry(motion, stamps, model, np.random.default_rng(3), window=(T0, T0 + 20.0))
    episodes = truth.episodes
    assert len(episodes) == 6 and {e.kind for e in episodes} == {"spin", "skid"}
    assert episodes[0].start >= T0 and episodes[-1].end <= T0 + 20.0
    for a, b in zip(episodes, episodes[1:]):
        assert a.end <= b.start  # in time order, no overlap
    for e in episodes:
        assert 0.5 <= e.end - e.start <= 2.0
        assert 1.5 <= e.value <= 3.0 if e.kind == "spin" else 0.05 <= abs(e.value) <= 0.2
    inside = slipping(episodes, stamps)
    assert inside.sum() > 50 and (~inside).sum() > 500
    got, ref = truth.samples, clean.samples
    # outside every episode: exactly the odometry without episodes (same scale error, slip, noise)
    np.testing.assert_array_equal(got.linear_velocity[~inside], ref.linear_velocity[~inside])
    np.testing.assert_array_equal(got.angular_velocity[~inside], ref.angular_velocity[~inside])
    assert truth.scale_error == clean.scale_error and truth.slip == clean.slip
    np.testing.assert_array_equal(got.twist_covariance[~inside], ref.twist_covariance[~inside])
    driving = np.abs(true_speed)
    for e in episodes:
        k = slipping((e,), stamps) & (driving > 0.1)
        assert k.sum() >= 20, e  # the episode happens while driving
        if e.kind == "spin":  # the reported speed is the factor times what it would be
            np.testing.assert_allclose(got.linear_velocity[k, 0] - ref.linear_velocity[k, 0],
                                       (e.value - 1.0) * (1.0 + clean.scale_error) * true_speed[k], atol=1e-12)
            np.testing.assert_array_equal(got.angular_velocity[k], ref.angular_velocity[k])
            # against the truth: the factor x (1 + scale error), up to the speed noise (1 % per sample)
            ratio = got.linear_velocity[k, 0] / true_speed[k]
            assert abs(ratio.mean() - e.value * (1.0 + clean.scale_error)) < 4.0 * model.speed_noise / np.sqrt(k.sum())
        else:  # the heading drifts by the episode's rad per metre driven
            np.testing.assert_allclose(got.angular_velocity[k, 2] - ref.angular_velocity[k, 2], e.value * driving[k], atol=1e-12)
            np.testing.assert_array_equal(got.linear_velocity[k], ref.linear_velocity[k])
            # against the truth: the drift plus the constant slip per metre, up to the yaw-rate noise
            per_metre = (got.angular_velocity[k, 2] - true_rate[k]) / driving[k]
            assert abs(per_metre.mean() - (e.value + clean.slip)) < 4.0 * model.yaw_rate_noise / np.sqrt(k.sum())
    # and the dead reckoning ends elsewhere than without the episodes
    assert np.linalg.norm(got.poses[-1, :2, 3] - ref.poses[-1, :2, 3]) > 0.5
    # one kind only: the same windows, all of that kind
    spins = simulate_wheel_odometry(motion, stamps, WheelModel(episodes=WheelSlip(count=6, kinds=("spin",))),
                                    np.random.default_rng(3), window=(T0, T0 + 20.0)).episodes
    assert [(e.start, e.end) for e in spins] == [(e.start, e.end) for e in episodes] and {e.kind for e in spins} == {"spin"}


def test_slip_episodes_must_fit():
    with pytest.raises(SlipFitError, match="3 slip episodes of up to 2 s do not fit in the 5.0 s simulated"):
        WheelSlip(count=3).check_fits(5.0)
    WheelSlip(count=3, duration=(0.5, 1.0)).check_fits(5.0)
    with pytest.raises(SlipFitError, match="do not fit in the 1.0 s"):
        simulate("tunnel", frames=10, beams=16, columns=128, wheel=WheelModel(episodes=WheelSlip(count=1)))


SMALL = dict(frames=40, beams=16, columns=128, motion="variable", start_stamp=T0,
             imu=ImuModel.grade("industrial"), wheel=WheelModel(scale_error=0.02, episodes=WheelSlip(count=2)))


@pytest.fixture(scope="module")
def sim():
    return simulate("structured", seed=6, **SMALL)


def test_simulate_is_reproducible_per_seed_and_the_bag_keeps_grade_and_episodes(sim, tmp_path):
    again = simulate("structured", seed=6, **SMALL)
    assert again.wheel.episodes == sim.wheel.episodes and len(sim.wheel.episodes) == 2
    np.testing.assert_array_equal(again.wheel.samples.linear_velocity, sim.wheel.samples.linear_velocity)
    np.testing.assert_array_equal(again.imu.samples.angular_velocity, sim.imu.samples.angular_velocity)
    other = simulate("structured", seed=7, **SMALL)
    assert other.wheel.episodes != sim.wheel.episodes
    assert not np.array_equal(other.imu.gyro_bias, sim.imu.gyro_bias)
    end = T0 + 40 * sim.sensor.period
    assert all(T0 <= e.start < e.end <= end for e in sim.wheel.episodes)  # within the scans
    bag = write_simulation(sim, tmp_path / "bag")
    info = load_simulation_info(bag)
    assert info["imu"]["grade"] == "industrial"
    np.testing.assert_allclose(info["imu"]["gyro_bias_range_deg_s"], [0.006, 0.015])
    np.testing.assert_allclose(info["imu"]["gyro_bias_rad_s"], sim.imu.gyro_bias)
    np.testing.assert_allclose(info["imu"]["accel_bias_m_s2"], sim.imu.accel_bias)
    assert info["wheel"]["scale_error"] == 0.02 and info["wheel"]["scale_error_model"] == 0.02
    assert info["wheel"]["slip_episode_model"]["count"] == 2
    episodes = load_slip_episodes(bag)
    assert episodes == sim.wheel.episodes
    stamps = sim.ground_truth.stamps
    np.testing.assert_array_equal(slipping(episodes, stamps), slipping(sim.wheel.episodes, stamps))
    assert 0 < slipping(episodes, stamps).sum() < len(stamps)  # frames inside slip and outside
    wheel = read_wheel_odometry(bag, "/wheel/odom")
    np.testing.assert_array_equal(wheel.linear_velocity, sim.wheel.samples.linear_velocity)  # the slip is in the bag
    # a window keeps the episodes it overlaps
    late, early = sim.frames(30), sim.frames(0, 10)
    assert late.wheel.episodes == tuple(e for e in sim.wheel.episodes if e.end > late.wheel.samples.stamps[0])
    assert early.wheel.episodes == tuple(e for e in sim.wheel.episodes if e.start < early.wheel.samples.stamps[-1])
    assert len(late.wheel.episodes) + len(early.wheel.episodes) == len(sim.wheel.episodes)  # measured: 1 + 1
    bare = write_simulation(sim, tmp_path / "bare", wheel_topic=None)
    assert load_slip_episodes(bare) == ()


def test_cli_simulates_grades_scale_error_and_slip_and_refuses_bad_options(tmp_path):
    out = tmp_path / "bag"
    proc = run_cli("simulate", "tunnel", "--out", out, "--frames", 25, "--beams", 16, "--seed", 2, "--motion", "variable",
                   "--imu-grade", "poor", "--wheel-scale-error", "0.02..0.05", "--wheel-slip", 1, "--wheel-slip-kind", "skid")
    assert "imu /imu poor grade" in proc.stdout and "wheel slip 1 episodes: skid" in proc.stdout, proc.stdout
    info = load_simulation_info(out)
    assert info["imu"]["grade"] == "poor" and info["imu"]["gyro_noise_rad_s"] == 0.015
    assert 0.02 <= abs(info["wheel"]["scale_error"]) <= 0.05 and info["wheel"]["scale_error_model"] == [0.02, 0.05]
    (episode,) = load_slip_episodes(out)
    assert episode.kind == "skid" and T0 <= episode.start < episode.end <= T0 + 2.5
    for args, needle in [(("--imu-grade", "tactical"), "unknown --imu-grade 'tactical' (choose one of default, consumer"),
                         (("--no-imu", "--imu-grade", "poor"), "--imu-grade with --no-imu"),
                         (("--wheel-scale-error", "2%"), "--wheel-scale-error takes a fraction"),
                         (("--wheel-scale-error", "0.05..0.01"), "--wheel-scale-error bounds must be magnitudes"),
                         (("--wheel-slip", 2), "2 --wheel-slip episodes of up to 2 s do not fit in the 2.0 s"),
                         (("--wheel-slip", 1, "--motion", "handheld"), "--wheel-slip with --motion handheld"),
                         (("--wheel-slip-kind", "spin"), "--wheel-slip-kind needs --wheel-slip N"),
                         (("--wheel-slip", 1, "--wheel-slip-kind", "slide"), "unknown --wheel-slip-kind 'slide'")]:
        proc = run_cli("simulate", "tunnel", "--out", tmp_path / "x", "--frames", 20, *args, ok=False)
        assert_one_line_error(proc, needle)
    assert not (tmp_path / "x").exists()
