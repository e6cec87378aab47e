"""Sensor quality of the simulator: IMU grades (the benchmark's variation of issue 14)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dcreg_ros.core.proprioception import GRAVITY
from dcreg_ros.sim import IMU_GRADES, ImuModel, load_simulation_info, simulate, write_simulation
from dcreg_ros.sim.motion_profiles import sensor_motion
from dcreg_ros.sim.proprioception import sample_stamps, simulate_imu
from dcreg_ros.sim.scenes import build_scene

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


def test_simulation_json_records_the_grade_and_the_drawn_biases(tmp_path):
    sim = simulate("structured", frames=3, beams=16, columns=128, seed=6, start_stamp=T0, imu=ImuModel.grade("industrial"))
    info = load_simulation_info(write_simulation(sim, tmp_path / "bag"))
    assert info["imu"]["grade"] == "industrial"
    np.testing.assert_allclose(info["imu"]["gyro_bias_range_deg_s"], [0.006, 0.015])
    np.testing.assert_allclose(info["imu"]["gyro_bias_rad_s"], sim.imu.gyro_bias)
    np.testing.assert_allclose(info["imu"]["accel_bias_m_s2"], sim.imu.accel_bias)
