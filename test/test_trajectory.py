"""TUM / KITTI trajectory files and quaternion conversions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from dcreg_ros.core.pointcloud import InputError
from dcreg_ros.io.trajectory import (
    Trajectory,
    TrajectoryFileError,
    quaternion_to_rotation,
    read_kitti,
    read_tum,
    rotation_to_quaternion,
    write_kitti,
    write_tum,
)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def random_trajectory(n: int = 25, seed: int = 0) -> Trajectory:
    rng = np.random.default_rng(seed)
    poses = np.tile(np.eye(4), (n, 1, 1))
    for i in range(n):
        poses[i, :3, :3] = random_rotation(rng)
        poses[i, :3, 3] = rng.uniform(-100, 100, 3)
    # include the quaternion branches with a negative trace (rotations near 180 degrees)
    poses[0, :3, :3] = np.diag([1.0, -1.0, -1.0])
    poses[1, :3, :3] = np.diag([-1.0, 1.0, -1.0])
    poses[2, :3, :3] = np.diag([-1.0, -1.0, 1.0])
    return Trajectory(1_700_000_000.0 + 0.1 * np.arange(n), poses)


def test_tum_round_trip(tmp_path):
    traj = random_trajectory()
    write_tum(tmp_path / "t.txt", traj)
    back = read_tum(tmp_path / "t.txt")
    np.testing.assert_allclose(back.stamps, traj.stamps, atol=1e-6)
    np.testing.assert_allclose(back.poses, traj.poses, atol=1e-7)
    assert back.path_length() == pytest.approx(traj.path_length(), rel=1e-9)


def test_kitti_round_trip_and_stamps(tmp_path):
    traj = random_trajectory(seed=1)
    write_kitti(tmp_path / "k.txt", traj)
    back = read_kitti(tmp_path / "k.txt", period=0.05)
    np.testing.assert_allclose(back.poses, traj.poses, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(back.stamps, 0.05 * np.arange(len(traj)))


def test_tum_skips_comments_and_blank_lines(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("# timestamp tx ty tz qx qy qz qw\n\n1.0 1 2 3 0 0 0 1\n2.0,4,5,6,0,0,0.7071067811865476,0.7071067811865476\n")
    traj = read_tum(path)
    assert len(traj) == 2
    np.testing.assert_allclose(traj.positions, [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_allclose(traj.poses[1, :3, :3], [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)


MALFORMED_TUM = {
    "wrong column count": "1.0 1 2 3 0 0 1\n",
    "not a number": "1.0 1 2 x 0 0 0 1\n",
    "nan": "1.0 1 2 nan 0 0 0 1\n",
    "zero quaternion": "1.0 1 2 3 0 0 0 0\n",
    "empty": "# only a comment\n",
}


@pytest.mark.parametrize("case", sorted(MALFORMED_TUM))
def test_malformed_tum_raises(tmp_path, case):
    path = tmp_path / "bad.txt"
    path.write_text(MALFORMED_TUM[case])
    with pytest.raises(TrajectoryFileError) as info:
        read_tum(path)
    assert isinstance(info.value, InputError)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_malformed_kitti_and_missing_files_raise(tmp_path):
    path = tmp_path / "k.txt"
    path.write_text(" ".join(["1"] * 11) + "\n")
    with pytest.raises(TrajectoryFileError, match="12 numbers"):
        read_kitti(path)
    with pytest.raises(TrajectoryFileError, match="no such file"):
        read_tum(tmp_path / "missing.txt")
    with pytest.raises(TrajectoryFileError, match="no such file"):
        read_kitti(tmp_path / "missing.txt")


def test_trajectory_checks_lengths():
    with pytest.raises(ValueError):
        Trajectory(np.zeros(3), np.tile(np.eye(4), (2, 1, 1)))


unit = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(unit, unit, unit, unit)
def test_quaternion_round_trip(qx, qy, qz, qw):
    q = np.array([qx, qy, qz, qw])
    norm = np.linalg.norm(q)
    if norm < 1e-3:
        with pytest.raises(ValueError):
            quaternion_to_rotation(*(q * 1e-13))
        return
    R = quaternion_to_rotation(*q)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0, abs=1e-12)
    back = rotation_to_quaternion(R)
    assert back[3] >= 0 and np.linalg.norm(back) == pytest.approx(1.0)
    unit_q = q / norm
    # q and -q are the same rotation
    assert min(np.abs(back - unit_q).max(), np.abs(back + unit_q).max()) < 1e-9
    np.testing.assert_allclose(quaternion_to_rotation(*back), R, atol=1e-12)


def test_quaternion_known_values():
    # 90 degrees about z
    R = quaternion_to_rotation(0, 0, np.sqrt(0.5), np.sqrt(0.5))
    np.testing.assert_allclose(R @ [1, 0, 0], [0, 1, 0], atol=1e-15)
    np.testing.assert_allclose(rotation_to_quaternion(np.diag([-1.0, -1.0, 1.0])), [0, 0, 1, 0], atol=1e-15)
    with pytest.raises(ValueError):
        quaternion_to_rotation(np.nan, 0, 0, 1)
