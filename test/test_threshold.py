"""The adaptive correspondence threshold (core/threshold.py)."""

from __future__ import annotations

import numpy as np

from dcreg_ros.core.geometry import pose_from_xyz_rpy
from dcreg_ros.core.threshold import QUIET_FRAMES, AdaptiveThreshold, motion_size


def _drive(threshold: AdaptiveThreshold, frames: int, step: float, prediction_error: float) -> None:
    """``frames`` frames moving ``step`` m along x, each predicted ``prediction_error`` m short."""
    pose = np.eye(4)
    for _ in range(frames):
        new = pose @ pose_from_xyz_rpy(step, 0.0, 0.0, 0.0, 0.0, 0.0)
        predicted = pose @ pose_from_xyz_rpy(step - prediction_error, 0.0, 0.0, 0.0, 0.0, 0.0)
        threshold.update(predicted, new, pose)
        pose = new


def test_motion_size_counts_rotation_at_the_maximum_range():
    assert motion_size(pose_from_xyz_rpy(0.3, 0.4, 0.0, 0.0, 0.0, 0.0), 100.0) == np.float64(0.5)
    turn = motion_size(pose_from_xyz_rpy(0.0, 0.0, 0.0, 0.0, 0.0, np.radians(0.1)), 100.0)
    assert abs(turn - 2.0 * 100.0 * np.sin(np.radians(0.05))) < 1e-12


def test_sigma_is_the_rms_of_the_errors_beyond_min_motion():
    t = AdaptiveThreshold(2.0, 0.1, 100.0)
    assert t.sigma == 2.0
    _drive(t, 5, 1.0, 0.3)
    _drive(t, 50, 1.0, 0.05)  # well predicted frames do not shrink it (KISS-ICP's rule)
    assert abs(t.sigma - 0.3) < 1e-9


def test_a_prediction_always_within_min_motion_falls_back_to_min_motion():
    t = AdaptiveThreshold(2.0, 0.1, 100.0)
    _drive(t, QUIET_FRAMES - 1, 0.5, 0.02)
    assert t.sigma == 2.0  # not yet: the first frames
    _drive(t, 1, 0.5, 0.02)
    assert t.sigma == 0.1  # an IMU or the wheels predicted every moving frame this well
    _drive(t, 3, 0.5, 0.4)
    assert abs(t.sigma - 0.4) < 1e-9  # a real error takes over
    t.reset()
    assert t.sigma == 2.0


def test_standing_still_is_not_a_good_prediction():
    t = AdaptiveThreshold(2.0, 0.1, 100.0)
    _drive(t, 5 * QUIET_FRAMES, 0.01, 0.0)  # a robot that does not move teaches nothing
    assert t.sigma == 2.0
    t.update(np.eye(4), np.eye(4))  # no previous pose: not counted either
    assert t.sigma == 2.0


def test_an_imu_predicted_odometry_does_not_keep_the_initial_threshold():
    """A simulated tunnel with the IMU: its prediction is within min_motion from the first
    frames, and the threshold comes down to min_motion instead of staying at the initial 2 m
    (a robust kernel of 0.67 m: none)."""
    import dcreg_ros
    from dcreg_ros.core.geometry import pose_to_xyz_rpy
    from dcreg_ros.eval.runner import run_odometry
    from dcreg_ros.io.motion_inputs import MotionInputs
    from dcreg_ros.sim import simulate

    sim = simulate("tunnel", frames=40, beams=16, columns=512, seed=2, motion="variable")
    config = dcreg_ros.OdometryConfig.from_dict({"motion_prior": {"source": "imu", "imu_to_lidar": list(pose_to_xyz_rpy(sim.imu.T_lidar_imu))}})
    run = run_odometry(sim.scans, config, motion=MotionInputs(imu=sim.imu.samples))
    thresholds = [r.threshold for r in run.records]
    initial = config.adaptive_threshold.initial_threshold
    assert thresholds[-1] < 0.5 * initial, thresholds
    assert all(t <= initial for t in thresholds)
