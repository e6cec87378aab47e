"""SO(3)/SE(3) helpers: exp/log round trips, Euler conventions, inverses."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dcreg_ros.core.geometry import (
    apply_right_perturbation, euler_to_rotation, invert_pose, is_valid_pose, pose_error,
    pose_from_xyz_rpy, pose_to_xyz_rpy, rotate_by_vector, rotation_to_euler, so3_exp, so3_log,
)

rotvecs = arrays(np.float64, 3, elements=st.floats(-3.0, 3.0))


@settings(max_examples=200, deadline=None)
@given(rotvecs)
def test_so3_log_inverts_exp(w):
    if np.linalg.norm(w) >= np.pi - 1e-6:
        w = w / np.linalg.norm(w) * (np.pi - 1e-3)
    R = so3_exp(w)
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) > 0
    np.testing.assert_allclose(so3_log(R), w, atol=1e-8)


@settings(max_examples=200, deadline=None)
@given(rotvecs, arrays(np.float64, 3, elements=st.floats(-50.0, 50.0)))
def test_rotate_by_vector_equals_the_matrix_exponential(w, p):
    for scale in (1.0, 1e-6, 1e-12, 0.0):  # large, small and (numerically) zero angles
        np.testing.assert_allclose(rotate_by_vector(*(scale * w), *p), so3_exp(scale * w) @ p, atol=1e-9)


def test_so3_log_near_pi_and_zero():
    for axis in (np.array([1.0, 0, 0]), np.array([0, 1.0, 1.0]) / np.sqrt(2)):
        w = axis * (np.pi - 1e-9)
        np.testing.assert_allclose(so3_exp(so3_log(so3_exp(w))), so3_exp(w), atol=1e-7)
    np.testing.assert_allclose(so3_log(np.eye(3)), 0.0, atol=1e-15)


@settings(max_examples=200, deadline=None)
@given(st.floats(-3.1, 3.1), st.floats(-1.5, 1.5), st.floats(-3.1, 3.1))
def test_euler_round_trip_and_zyx_convention(roll, pitch, yaw):
    R = euler_to_rotation(roll, pitch, yaw)
    Rx = so3_exp(np.array([roll, 0.0, 0.0]))
    Ry = so3_exp(np.array([0.0, pitch, 0.0]))
    Rz = so3_exp(np.array([0.0, 0.0, yaw]))
    np.testing.assert_allclose(R, Rz @ Ry @ Rx, atol=1e-12)
    np.testing.assert_allclose(euler_to_rotation(*rotation_to_euler(R)), R, atol=1e-9)


def test_pose_helpers():
    T = pose_from_xyz_rpy(1.0, -2.0, 0.5, 0.1, -0.2, 0.3)
    assert is_valid_pose(T)
    np.testing.assert_allclose(pose_to_xyz_rpy(T), [1.0, -2.0, 0.5, 0.1, -0.2, 0.3], atol=1e-12)
    np.testing.assert_allclose(invert_pose(T) @ T, np.eye(4), atol=1e-12)
    t, r = pose_error(T, T)
    assert t < 1e-12 and r < 1e-5
    bad = T.copy()
    bad[0, 0] = np.nan
    assert not is_valid_pose(bad)
    assert not is_valid_pose(np.eye(3))


def test_right_perturbation_moves_in_body_frame():
    T = pose_from_xyz_rpy(0, 0, 0, 0, 0, np.pi / 2)  # body x points along world y
    T2 = apply_right_perturbation(T, np.array([0, 0, 0, 1.0, 0, 0]))
    np.testing.assert_allclose(T2[:3, 3], [0, 1.0, 0], atol=1e-12)
