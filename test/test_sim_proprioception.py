"""Simulated IMU and wheel odometry: derivatives, frames and signs, lever arm, noise, biases, scale."""

from __future__ import annotations

import numpy as np
import pytest

from dcreg_ros.core.geometry import euler_to_rotation, invert_pose, so3_exp, so3_log
from dcreg_ros.sim import simulate
from dcreg_ros.sim.kinematics import kinematics, transfer
from dcreg_ros.sim.motion_profiles import sensor_motion
from dcreg_ros.sim.proprioception import (GRAVITY, UNKNOWN_VARIANCE, ImuModel, WheelModel, base_motion, sample_stamps,
                                          simulate_imu, simulate_wheel_odometry)
from dcreg_ros.sim.scenes import build_scene

T0 = 1000.0


class Helix:
    """Closed-form motion: a climbing circle, the body yawing with it and rolling back and forth;
    R = Rz(a(t)) Rx(b(t)) with a = w t, b = 0.3 sin(t)."""

    r, w, c = 3.0, 0.7, 0.4

    def poses(self, stamps) -> np.ndarray:
        t = np.atleast_1d(stamps)
        out = np.tile(np.eye(4), (len(t), 1, 1))
        out[:, :3, :3] = np.moveaxis(euler_to_rotation(0.3 * np.sin(t), 0.0 * t, self.w * t), -1, 0)
        out[:, :3, 3] = np.column_stack([self.r * np.cos(self.w * t), self.r * np.sin(self.w * t), self.c * t])
        return out

    def truth(self, t: np.ndarray):
        r, w = self.r, self.w
        velocity = np.column_stack([-r * w * np.sin(w * t), r * w * np.cos(w * t), np.full_like(t, self.c)])
        acceleration = np.column_stack([-r * w * w * np.cos(w * t), -r * w * w * np.sin(w * t), 0.0 * t])
        b, db, ddb = 0.3 * np.sin(t), 0.3 * np.cos(t), -0.3 * np.sin(t)
        # omega_body = Rx(b)^T (0, 0, a') + (b', 0, 0) with a' = w, a'' = 0
        omega = np.column_stack([db, w * np.sin(b), w * np.cos(b)])
        alpha = np.column_stack([ddb, w * db * np.cos(b), -w * db * np.sin(b)])
        return velocity, acceleration, omega, alpha


class Mounted:
    """``motion`` seen at a frame rigidly mounted at T_body_child."""

    def __init__(self, motion, T_body_child: np.ndarray) -> None:
        self.motion, self.T = motion, T_body_child

    def poses(self, stamps) -> np.ndarray:
        return self.motion.poses(stamps) @ self.T


MOUNT = ImuModel().T_lidar_imu


def test_finite_difference_kinematics_match_closed_form_and_the_lever_arm():
    helix = Helix()
    t = np.linspace(0.0, 10.0, 57)
    state = kinematics(helix, t)
    velocity, acceleration, omega, alpha = helix.truth(t)
    np.testing.assert_allclose(state.poses, helix.poses(t))
    np.testing.assert_allclose(state.velocity, velocity, atol=1e-6)
    np.testing.assert_allclose(state.acceleration, acceleration, atol=1e-5)
    np.testing.assert_allclose(state.angular_velocity, omega, atol=1e-6)
    np.testing.assert_allclose(state.angular_acceleration, alpha, atol=1e-5)
    # the lever-arm transfer equals differentiating the mounted frame's own poses
    moved, direct = transfer(state, MOUNT), kinematics(Mounted(helix, MOUNT), t)
    for a, b in zip(moved, direct):
        np.testing.assert_allclose(a, b, atol=2e-5)
    assert np.abs(moved.acceleration - state.acceleration).max() > 0.02  # the lever arm matters here


def test_mounting_is_nontrivial_and_documented():
    T = ImuModel().T_lidar_imu
    assert 0.02 < np.linalg.norm(T[:3, 3]) < 0.1  # a few cm
    np.testing.assert_allclose(T[:3, :3] @ [1, 0, 0], [0, 1, 0], atol=1e-12)  # IMU x = LiDAR left
    np.testing.assert_allclose(T[:3, :3] @ [0, 0, 1], [0, 0, -1], atol=1e-12)  # IMU z = LiDAR down
    np.testing.assert_allclose(WheelModel().T_base_lidar[:3, 3], [0.2, 0.0, 0.4])


def test_imu_at_rest_reads_gravity_reaction_plus_bias():
    motion = sensor_motion("stop_and_go", build_scene("corridor").motion, seed=3, t0=T0)
    model = ImuModel()
    stamps = sample_stamps(T0, T0 + 30.0, model.rate)
    truth = simulate_imu(motion, stamps, model, np.random.default_rng(0))
    imu = truth.samples
    assert imu.frame_id == "imu" and len(imu) == len(stamps) and np.all(np.diff(imu.stamps) > 0)
    assert np.all(np.abs(np.degrees(truth.gyro_bias)) >= 0.01) and np.all(np.abs(np.degrees(truth.gyro_bias)) <= 0.05)
    assert np.all(np.abs(truth.accel_bias) >= 0.01) and np.all(np.abs(truth.accel_bias) <= 0.05)
    rest = motion.speed(stamps) == 0.0
    rest &= np.concatenate([[False], rest[:-1]]) & np.concatenate([rest[1:], [False]])  # not at a start or stop
    assert rest.sum() > 400
    R_world_imu = motion.poses(stamps[rest])[:, :3, :3] @ MOUNT[:3, :3]
    expected = np.einsum("nji,j->ni", R_world_imu, [0.0, 0.0, GRAVITY]) + truth.accel_bias
    error = imu.linear_acceleration[rest] - expected
    n = rest.sum()
    assert np.all(np.abs(error.mean(axis=0)) < 4.0 * model.accel_noise / np.sqrt(n))
    assert np.all(np.abs(error.std(axis=0) / model.accel_noise - 1.0) < 0.1)
    assert np.all(np.abs(imu.angular_velocity[rest].mean(axis=0) - truth.gyro_bias) < 4.0 * model.gyro_noise / np.sqrt(n))
    assert np.all(imu.linear_acceleration[rest][:, 2] < -9.0)  # IMU z down: upside-down mounting


def integrate_imu(gyro: np.ndarray, accel: np.ndarray, dt: float, T0_world_imu: np.ndarray, v0: np.ndarray) -> np.ndarray:
    """Strapdown integration of IMU samples (rad/s, specific force m/s², IMU frame) from a known
    pose and world velocity: the test's own integrator, independent of the simulator."""
    g = np.array([0.0, 0.0, -GRAVITY])
    R, p, v = T0_world_imu[:3, :3].copy(), T0_world_imu[:3, 3].copy(), v0.copy()
    for k in range(len(gyro) - 1):
        R1 = R @ so3_exp(0.5 * (gyro[k] + gyro[k + 1]) * dt)
        a0, a1 = R @ accel[k] + g, R1 @ accel[k + 1] + g
        p = p + v * dt + (2.0 * a0 + a1) * dt * dt / 6.0
        v = v + 0.5 * (a0 + a1) * dt
        R = R1
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, p
    return T


@pytest.mark.parametrize("scene,profile,start", [("open_field", "variable", 6.0), ("structured", "stop_and_go", 3.0),
                                                 ("stairwell", "smooth", 5.0), ("structured", "handheld", 6.0)])
def test_integrating_ideal_imu_reproduces_the_ground_truth(scene, profile, start):
    model = ImuModel(gyro_noise=0.0, accel_noise=0.0, gyro_bias_deg=(0.0, 0.0), accel_bias=(0.0, 0.0))
    motion = sensor_motion(profile, build_scene(scene).motion, seed=2, t0=T0)
    stamps = T0 + start + np.arange(0, 401) / model.rate  # 2 s
    imu = simulate_imu(motion, stamps, model, np.random.default_rng(0)).samples
    imu_poses = motion.poses(stamps) @ MOUNT
    h = 1e-4
    v0 = ((motion.poses([stamps[0] + h]) @ MOUNT)[0, :3, 3] - (motion.poses([stamps[0] - h]) @ MOUNT)[0, :3, 3]) / (2 * h)
    end = integrate_imu(imu.angular_velocity, imu.linear_acceleration, 1.0 / model.rate, imu_poses[0], v0)
    moved = np.linalg.norm(imu_poses[-1, :3, 3] - imu_poses[0, :3, 3])
    turned = np.degrees(np.linalg.norm(so3_log(imu_poses[0, :3, :3].T @ imu_poses[-1, :3, :3])))
    assert moved > 0.5 and turned > 1.0  # a real motion, not a standstill
    error = invert_pose(imu_poses[-1]) @ end
    assert np.linalg.norm(error[:3, 3]) < 1e-3, np.linalg.norm(error[:3, 3])  # measured 0.01-0.5 mm
    assert np.degrees(np.linalg.norm(so3_log(error[:3, :3]))) < 0.01
    # without the lever-arm terms (the LiDAR's own acceleration) the same integration is off
    lidar = kinematics(motion, stamps)
    R_wi = imu_poses[:, :3, :3]
    no_lever = np.einsum("nji,nj->ni", R_wi, lidar.acceleration - [0.0, 0.0, -GRAVITY])
    wrong = invert_pose(imu_poses[-1]) @ integrate_imu(imu.angular_velocity, no_lever, 1.0 / model.rate, imu_poses[0], v0)
    assert np.linalg.norm(wrong[:3, 3]) > 3.0 * np.linalg.norm(error[:3, 3]) + 1e-3


def planar(T: np.ndarray) -> np.ndarray:
    """(N, 3) x, y, yaw of poses (N, 4, 4)."""
    return np.column_stack([T[:, 0, 3], T[:, 1, 3], np.arctan2(T[:, 1, 0], T[:, 0, 0])])


@pytest.mark.parametrize("scene,profile", [("structured", "stop_and_go"), ("open_field", "variable")])
def test_wheel_odometry_scale_stops_and_honest_covariance(scene, profile):
    model = WheelModel()
    motion = sensor_motion(profile, build_scene(scene).motion, seed=5, t0=T0)
    stamps = sample_stamps(T0, T0 + 40.0, model.rate)
    truth = simulate_wheel_odometry(motion, stamps, model, np.random.default_rng(1))
    odom = truth.samples
    assert 0.01 <= abs(truth.scale_error) <= 0.04 and abs(truth.slip) <= 0.005
    assert (odom.frame_id, odom.child_frame_id) == ("odom", "base_link")
    np.testing.assert_allclose(odom.poses[0], np.eye(4))
    true_speed, _, base = base_motion(motion, stamps, model)
    true_distance = np.linalg.norm(np.diff(base.poses[:, :2, 3], axis=0), axis=1).sum()
    odom_distance = np.linalg.norm(np.diff(odom.poses[:, :2, 3], axis=0), axis=1).sum()
    assert true_distance > 20.0
    assert abs(odom_distance / true_distance - (1.0 + truth.scale_error)) < 0.004
    # twist in the child frame: forward speed only; planar poses
    np.testing.assert_allclose(odom.linear_velocity[:, 1:], 0.0)
    np.testing.assert_allclose(odom.angular_velocity[:, :2], 0.0)
    speed_error = odom.linear_velocity[:, 0] - true_speed * (1 + truth.scale_error)
    assert np.all(np.abs(speed_error) <= 5.0 * model.speed_noise * np.abs(true_speed))
    assert np.all(odom.poses[:, 2, 3] == 0.0)
    if profile == "stop_and_go":  # wheels at rest read exactly zero: the odometry stands still
        stopped = true_speed == 0.0
        assert stopped.sum() > 100 and np.all(odom.linear_velocity[stopped, 0] == 0.0)
        still = stopped[1:] & stopped[:-1]
        np.testing.assert_array_equal(odom.poses[1:][still], odom.poses[:-1][still])
    # covariances: z, roll, pitch unknown (large, not zero), x, y, yaw positive; the real error
    # of the dead reckoning lies within 3 sigma of what it reports
    for cov in (odom.pose_covariance, odom.twist_covariance):
        assert np.all(cov[:, [2, 3, 4], [2, 3, 4]] == UNKNOWN_VARIANCE)
        assert np.all(np.linalg.eigvalsh(cov) > 0.0)
    T_odom_world = invert_pose(base.poses[0])
    error = planar(odom.poses) - planar(T_odom_world @ base.poses)
    error[:, 2] = np.angle(np.exp(1j * error[:, 2]))
    sigma = np.sqrt(odom.pose_covariance[:, [0, 1, 5], [0, 1, 5]])
    assert np.all(np.abs(error) <= 3.0 * sigma + [0.01, 0.01, np.radians(0.2)])  # (+ the start's tilt)
    assert np.abs(error[-1, :2]).max() > 0.05  # and it does drift


def test_simulate_carries_proprioception_and_its_streams_are_separate():
    kwargs = dict(frames=4, beams=16, columns=128, seed=3, motion="variable", start_stamp=T0)
    full = simulate("corridor", **kwargs)
    bare = simulate("corridor", imu=None, wheel=None, **kwargs)
    assert bare.imu is None and bare.wheel is None
    for a, b in zip(full.scans, bare.scans):
        np.testing.assert_array_equal(a.points, b.points)  # the LiDAR noise is unaffected
    imu, wheel = full.imu.samples, full.wheel.samples
    end = full.scans[-1].stamp + full.sensor.period
    assert imu.stamps[0] <= T0 - 0.5 + 1e-9 and imu.stamps[-1] >= end + 0.5 - 1e-9
    assert wheel.stamps[0] <= T0 - 0.5 + 1e-9 and wheel.stamps[-1] >= end + 0.5 - 1e-9
    np.testing.assert_allclose(np.diff(imu.stamps), 1 / 200.0)
    np.testing.assert_allclose(np.diff(wheel.stamps), 1 / 50.0)
    part = full.frames(2)
    assert part.imu.samples.stamps[0] >= full.scans[2].stamp - 0.5 - 1e-9
    assert part.wheel.samples.stamps[0] >= full.scans[2].stamp - 0.5 - 1e-9 and len(part.wheel.samples) < len(wheel)
