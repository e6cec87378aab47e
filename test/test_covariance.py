"""Covariance and twist conversions of dcreg_ros.core.covariance: sensor ->
base frame with the mounting's lever arm, rotation-first -> ROS order (checked against sampling
the core's perturbation and against finite differences of the motion)."""

from __future__ import annotations

import numpy as np
import pytest

from dcreg_ros.core.covariance import body_to_ros_covariance, twist_in_base
from dcreg_ros.core.geometry import apply_right_perturbation, euler_to_rotation, invert_pose, pose_from_xyz_rpy, so3_log
from dcreg_ros.core.motion_prior import delta_to_twist as body_twist


# --------------------------------------------------------------------------- pose covariance
def test_reorders_rotation_first_to_ros_order_at_identity():
    body = np.diag([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])  # roll pitch yaw x y z
    ros = body_to_ros_covariance(body, np.eye(3))
    assert np.allclose(np.diag(ros), [4.0, 5.0, 6.0, 1.0, 2.0, 3.0])  # x y z roll pitch yaw


def test_rotates_both_blocks_with_the_pose():
    body = np.diag([0.0, 0.0, 0.0, 9.0, 1.0, 1.0])  # uncertain along the sensor's x
    body[0, 0] = 4.0  # and about the sensor's roll axis
    R = euler_to_rotation(0.0, 0.0, np.pi / 2)  # sensor x points along odom y
    ros = body_to_ros_covariance(body, R)
    assert ros[1, 1] == pytest.approx(9.0) and ros[0, 0] == pytest.approx(1.0)
    assert ros[4, 4] == pytest.approx(4.0) and ros[3, 3] == pytest.approx(0.0, abs=1e-12)


def test_lever_arm_turns_yaw_uncertainty_into_base_translation():
    body = np.zeros((6, 6))
    body[2, 2] = 0.01  # yaw only
    ros = body_to_ros_covariance(body, np.eye(3), base_in_sensor=np.array([1.0, 0.0, 0.0]))
    # the base 1 m ahead of the sensor swings sideways when the sensor yaws
    assert ros[1, 1] == pytest.approx(0.01)
    assert ros[0, 0] == pytest.approx(0.0, abs=1e-15) and ros[5, 5] == pytest.approx(0.01)
    assert ros[1, 5] == pytest.approx(0.01)


def test_covariance_matches_monte_carlo_of_the_perturbation():
    """Sample the core's right perturbation, push it through odom_T_base = B W B^-1 and compare
    the empirical ROS-order covariance (odom-frame translation, rotation errors) with ours."""
    rng = np.random.default_rng(4)
    A = rng.normal(size=(6, 6)) * 0.01
    body = A @ A.T + np.eye(6) * 1e-5
    W = pose_from_xyz_rpy(3.0, -1.0, 0.5, 0.2, -0.1, 1.1)  # world_T_lidar
    B = pose_from_xyz_rpy(0.3, 0.1, 0.8, 0.05, -0.02, 0.4)  # base_T_lidar
    B_inv = invert_pose(B)
    nominal = B @ W @ B_inv
    samples = rng.multivariate_normal(np.zeros(6), body, size=20000)
    errors = np.empty((len(samples), 6))
    for k, d in enumerate(samples):
        T = B @ apply_right_perturbation(W, d) @ B_inv
        errors[k, :3] = T[:3, 3] - nominal[:3, 3]
        errors[k, 3:] = so3_log(T[:3, :3] @ nominal[:3, :3].T)  # odom-frame rotation error
    empirical = np.cov(errors.T)
    ours = body_to_ros_covariance(body, (B @ W)[:3, :3], B_inv[:3, 3])
    scale = np.sqrt(np.outer(np.diag(ours), np.diag(ours)))
    assert np.max(np.abs(empirical - ours) / scale) < 0.05


def test_non_finite_covariance_becomes_large_finite():
    body = np.full((6, 6), np.inf)
    assert np.all(body_to_ros_covariance(body, np.eye(3)) == 1e6)


# --------------------------------------------------------------------------- twist
MOUNT = pose_from_xyz_rpy(0.4, -0.1, 0.9, 0.05, -0.03, 0.6)  # T_base_lidar: lifted, ahead, turned


def test_twist_of_the_base_is_the_finite_difference_of_its_poses():
    """Move the sensor by a small body motion; the base's motion B delta B^-1 over dt must be
    what twist_in_base predicts from the sensor's twist (linear then angular, base frame)."""
    dt = 1e-3
    twist_sensor = np.array([0.2, -0.1, 0.5, 1.5, 0.3, -0.2])  # rad/s then m/s, sensor frame
    delta = apply_right_perturbation(np.eye(4), twist_sensor * dt)
    assert np.allclose(body_twist(delta, dt), twist_sensor, rtol=1e-3, atol=1e-6)
    base_motion = MOUNT @ delta @ invert_pose(MOUNT)  # T_base(t)_base(t+dt)
    c = invert_pose(MOUNT)[:3, 3]  # base origin in sensor coordinates
    out = twist_in_base(twist_sensor, np.eye(6), MOUNT[:3, :3], c)
    assert np.allclose(out.linear, base_motion[:3, 3] / dt, atol=2e-3)
    assert np.allclose(out.angular, so3_log(base_motion[:3, :3]) / dt, atol=1e-6)
    # the lever arm matters: a yaw rate moves a base that is not at the sensor sideways
    turning = twist_in_base(np.array([0.0, 0.0, 1.0, 0.0, 0.0, 0.0]), np.eye(6), np.eye(3), np.array([1.0, 0.0, 0.0]))
    assert np.allclose(turning.linear, [0.0, 1.0, 0.0]) and np.allclose(turning.angular, [0.0, 0.0, 1.0])


def test_twist_covariance_matches_sampling():
    rng = np.random.default_rng(7)
    A = rng.normal(size=(6, 6)) * 0.05
    cov = A @ A.T + np.eye(6) * 1e-4
    twist = np.array([0.1, 0.0, -0.2, 1.0, 0.1, 0.0])
    c = invert_pose(MOUNT)[:3, 3]
    out = twist_in_base(twist, cov, MOUNT[:3, :3], c)
    samples = rng.multivariate_normal(twist, cov, size=20000)
    mapped = np.array([np.concatenate(twist_in_base(s, cov, MOUNT[:3, :3], c)[:2]) for s in samples])
    assert np.allclose(mapped.mean(axis=0), np.concatenate([out.linear, out.angular]), atol=0.01)
    scale = np.sqrt(np.outer(np.diag(out.covariance), np.diag(out.covariance)))
    assert np.max(np.abs(np.cov(mapped.T) - out.covariance) / scale) < 0.05


def test_non_finite_twist_is_zero_and_uninformative():
    out = twist_in_base(np.full(6, np.nan), np.eye(6), np.eye(3))
    assert np.all(out.linear == 0.0) and np.all(out.angular == 0.0) and np.all(np.diag(out.covariance) == 1e6)
