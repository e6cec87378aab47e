"""The Localizer on simulated scenes with ground truth: a map from one pass, localization on
another pass (another seed), an initial pose off by 0.5 m / 3 deg, scans from elsewhere (LOST,
never NaN), maps in another frame, relocalization after LOST and on request with the real global
registration (a kidnapped robot), the configuration."""

from __future__ import annotations

import numpy as np
import pytest

import dcreg_ros
from dcreg_ros.core import localization
from dcreg_ros.core.config_io import ConfigError
from dcreg_ros.core.geometry import invert_pose, pose_error, pose_from_xyz_rpy, transform_points
from dcreg_ros.core.localization import LocalizationConfig, Localizer
from dcreg_ros.core.voxel_hash import voxel_downsample
from dcreg_ros.sim import build_scene, simulate
from dcreg_ros.sim.mapping import map_from_simulation

FRAMES = 24
SIM = dict(beams=16, columns=512)


@pytest.fixture(scope="module")
def structured():
    """(map points, the localization pass): the map from seed 11 (a longer pass), the run seed 12."""
    scene = build_scene("structured", length=12.0)
    survey = simulate(scene, frames=40, seed=11, **SIM)
    run = simulate(scene, frames=FRAMES, seed=12, **SIM)
    return map_from_simulation(survey, 0.1).points, run


@pytest.fixture(scope="module")
def corridor_scans():
    return simulate("corridor", frames=8, seed=3, **SIM).frames(0)


def localize_all(loc: Localizer, run, frames: int | None = None):
    return [loc.localize(s.points, s.times, stamp=s.stamp) for s in run.scans[:frames]]


def errors_cm(reports, run) -> np.ndarray:
    return np.array([100 * pose_error(r.pose, gt)[0] for r, gt in zip(reports, run.ground_truth.poses)])


def test_localizes_another_pass_in_the_map_to_centimetres(structured):
    points, run = structured
    loc = dcreg_ros.Localizer(points)
    # every loaded point is kept: a per-voxel cap drops the few points of small features
    assert loc.map_info.num_points == len(loc.map) == len(voxel_downsample(points.astype(np.float64), 0.25)) > 1000
    assert loc.map_info.nbytes > 0
    loc.set_pose(run.ground_truth.poses[0])
    reports = localize_all(loc, run)
    err = errors_cm(reports, run)
    assert all(r.tracking == "OK" for r in reports), [r.message for r in reports]
    assert np.sqrt(np.mean(err**2)) < 3.0, err  # no alignment: the map is in the truth's frame
    rot = [pose_error(r.pose, gt)[1] for r, gt in zip(reports, run.ground_truth.poses)]
    assert max(rot) < 0.5
    r = reports[-1]
    assert r.fitness > 0.8 and r.inlier_share > 0.8 and r.degeneracy is not None and not r.degeneracy.degenerate
    assert r.status in ("converged", "max_iterations") and np.all(np.isfinite(r.covariance))
    assert set(localization.LOCALIZATION_TIMING_KEYS) <= set(r.timings) and r.total_ms > 0
    assert np.linalg.norm(r.twist[3:]) == pytest.approx(1.5, rel=0.3)  # walking speed of the scene


def test_a_start_half_a_metre_and_three_degrees_off_converges(structured):
    points, run = structured
    loc = Localizer(points)
    loc.set_pose(run.ground_truth.poses[0] @ pose_from_xyz_rpy(0.35, -0.35, 0.05, *np.radians([1.0, -1.0, 3.0])))
    reports = localize_all(loc, run, 12)
    err = errors_cm(reports, run)
    assert err[0] < 10.0 and np.all(err[3:] < 3.0), err
    assert all(r.tracking == "OK" for r in reports[1:])


def test_scans_from_elsewhere_make_the_track_lost_not_a_nan_pose(structured, corridor_scans):
    points, run = structured
    config = LocalizationConfig.from_dict({"tracking": {"lost_after": 3}, "relocalization": {"when_lost": False}})
    loc = Localizer(points, config)
    loc.set_pose(run.ground_truth.poses[0])
    localize_all(loc, run, 3)
    reports = [loc.localize(s.points, s.times, stamp=100.0 + 0.1 * k) for k, s in enumerate(corridor_scans.scans[:5])]
    states = [r.tracking for r in reports]
    assert states[:2] == ["DEGRADED", "DEGRADED"] and states[2:] == ["LOST"] * 3, [(r.tracking, r.message) for r in reports]
    assert all(r.message for r in reports) and loc.lost
    for r in reports:
        assert np.all(np.isfinite(r.pose)) and np.all(np.isfinite(r.covariance))
    assert np.all(np.diag(reports[-1].covariance) >= localization.LOST_VARIANCE)
    # a lost track holds its pose instead of extrapolating a velocity
    assert np.linalg.norm(reports[-1].pose[:3, 3] - reports[-2].pose[:3, 3]) < 0.05


def test_maps_in_another_frame(structured):
    points, run = structured
    far = Localizer(points + np.array([5000.0, 0.0, 0.0]))
    with pytest.raises(dcreg_ros.InputError, match="outside the map"):
        far.set_pose(run.ground_truth.poses[0])
    # overlapping bounding boxes, no overlapping surfaces: LOST after lost_after frames, finite
    rotated = (points - points.mean(axis=0)) @ pose_from_xyz_rpy(0, 0, 0, 0.0, 0.0, np.radians(90))[:3, :3].T + points.mean(axis=0)
    other = Localizer(rotated + np.array([0.0, 0.0, 7.0]))
    other.set_pose(run.ground_truth.poses[0])
    reports = localize_all(other, run, 6)
    assert reports[-1].tracking == "LOST" and all(r.tracking != "OK" for r in reports)
    assert all(np.all(np.isfinite(r.pose)) for r in reports)


def test_without_an_initial_pose_every_scan_is_lost(structured):
    points, run = structured
    loc = Localizer(points)
    report = loc.localize(run.scans[0].points, run.scans[0].times, stamp=run.scans[0].stamp)
    assert report.tracking == "LOST" and "no initial pose" in report.message and not loc.initialized


def test_bad_maps_and_scans_raise_input_errors(structured):
    points, _ = structured
    with pytest.raises(dcreg_ros.InputError, match="map"):
        Localizer(np.zeros((0, 3)))
    with pytest.raises(dcreg_ros.InputError, match="map"):
        Localizer(np.full((50, 3), np.nan))
    loc = Localizer(points[:20000])
    with pytest.raises(dcreg_ros.InputError, match="rigid"):
        loc.set_pose(np.full((4, 4), np.nan))
    loc.set_pose(np.eye(4))
    with pytest.raises(dcreg_ros.InputError, match="scan"):
        loc.localize(np.full((5, 3), 1.0))


TURN = pose_from_xyz_rpy(0.0, 0.0, 0.0, 0.0, 0.0, np.radians(90.0))  # T_sensor_turned


def kidnapped(run, i: int):
    """Scan i of the run as the robot would see it turned 90 deg to the left (points in the
    turned sensor frame, same per-point times), its true pose at the stamp and at mid-sweep."""
    scan = run.scans[i]
    points = transform_points(invert_pose(TURN), scan.points)
    mid = run.motion.poses(np.array([scan.stamp + 0.05]))[0]
    return points, scan.times, scan.stamp, run.ground_truth.poses[i] @ TURN, mid @ TURN


def lose_track(loc: Localizer, run, elsewhere) -> list:
    """Track the first two scans of the run, then lose the track on three scans from another
    scene; their reports."""
    loc.set_pose(run.ground_truth.poses[0])
    assert all(r.tracking == "OK" for r in localize_all(loc, run, 2))
    reports = [loc.localize(s.points, s.times, stamp=run.scans[1].stamp + 0.01 * (k + 1)) for k, s in enumerate(elsewhere.scans[:3])]
    assert not any(r.relocalized for r in reports)  # global registration finds no pose for a scan from elsewhere
    assert loc.lost and reports[-1].tracking == "LOST"
    return reports


# The first pose after a relocalization is that of an un-deskewed scan (no velocity is known
# yet): the sensor's pose at mid-sweep, up to half a sweep of motion (6 cm at 1.2 m/s) from the
# pose at the stamp. Measured: 0.6 cm from the mid-sweep truth, then 0.2-0.9 cm at the stamps.
RELOCALIZED_CM, TRACKED_CM = 2.0, 2.0


def test_relocalization_after_lost_finds_a_kidnapped_robot_with_the_real_global_registration(structured, corridor_scans):
    """LOST on scans from another scene, then the robot is back 1.2 m further on and turned 90
    deg: the localizer's global registration (no stand-in) finds it, tracking goes on from there.
    Without relocalization the same scans never get the pose back."""
    points, run = structured
    config = LocalizationConfig.from_dict({"tracking": {"lost_after": 2}, "relocalization": {"attempt_every": 1}})
    loc = Localizer(points, config)
    elsewhere = lose_track(loc, run, corridor_scans)
    # lost from the second scan from elsewhere on: the third is an attempt that finds nothing;
    # it costs time, reported, and no frame index
    assert [r.timings["relocalization"] > 0 for r in elsewhere] == [False, False, True]
    reports, truths, mids = [], [], []
    for i in range(20, 24):
        pts, times, stamp, truth, mid = kidnapped(run, i)
        reports.append(loc.localize(pts, times, stamp=stamp))
        truths.append(truth)
        mids.append(mid)
    first = reports[0]
    assert [r.index for r in elsewhere + reports] == list(range(2, 9))
    assert first.relocalized and first.tracking == "OK", first.message
    assert 100 * pose_error(first.pose, mids[0])[0] < RELOCALIZED_CM and first.timings["relocalization"] > 0
    assert all(r.tracking == "OK" and not r.relocalized for r in reports[1:])
    err = np.array([100 * pose_error(r.pose, T)[0] for r, T in zip(reports[1:], truths[1:])])
    assert np.all(err < TRACKED_CM), err
    assert max(pose_error(r.pose, T)[1] for r, T in zip(reports, truths)) < 0.5  # deg
    # the control: the same scans without relocalization stay far from the truth
    blind = Localizer(points, LocalizationConfig.from_dict({"tracking": {"lost_after": 2}, "relocalization": {"when_lost": False}}))
    lose_track(blind, run, corridor_scans)
    for i in range(20, 24):
        pts, times, stamp, truth, _ = kidnapped(run, i)
        assert pose_error(blind.localize(pts, times, stamp=stamp).pose, truth)[0] > 1.0


def test_relocalize_on_request_with_the_real_global_registration(structured, corridor_scans):
    """`relocalize` on a scan from elsewhere keeps the (lost) state; on a scan of the map it
    restarts tracking at the scan's pose."""
    points, run = structured
    loc = Localizer(points, LocalizationConfig.from_dict({"tracking": {"lost_after": 2}, "relocalization": {"when_lost": False}}))
    lose_track(loc, run, corridor_scans)
    held = loc.localize(corridor_scans.scans[3].points, stamp=run.scans[1].stamp + 0.05).pose
    s = corridor_scans.scans[4]
    refused = loc.relocalize(s.points, s.times, stamp=run.scans[1].stamp + 0.06)
    assert refused.tracking == "LOST" and not refused.relocalized and loc.lost, refused.message
    assert refused.message == "relocalization failed: global registration found no plausible pose"
    assert np.allclose(refused.pose, held)
    pts, times, stamp, truth, mid = kidnapped(run, 12)
    found = loc.relocalize(pts, times, stamp=stamp)
    assert found.relocalized and found.tracking == "OK" and not loc.lost, found.message
    assert 100 * pose_error(found.pose, mid)[0] < RELOCALIZED_CM
    reports = [loc.localize(*kidnapped(run, i)[:2], stamp=run.scans[i].stamp) for i in range(13, 16)]
    err = np.array([100 * pose_error(r.pose, kidnapped(run, i)[3])[0] for r, i in zip(reports, range(13, 16))])
    assert all(r.tracking == "OK" for r in reports) and np.all(err < TRACKED_CM), err


def test_a_relocalization_candidate_that_does_not_hold_is_rejected(structured, monkeypatch):
    points, run = structured
    loc = Localizer(points)
    monkeypatch.setattr(loc, "_global_candidate", lambda source: pose_from_xyz_rpy(0.0, 40.0, 9.0, 0.0, 0.0, 1.0))
    report = loc.relocalize(run.scans[0].points, run.scans[0].times, stamp=run.scans[0].stamp)
    assert report.tracking == "LOST" and "relocalization rejected" in report.message and not loc.initialized


def test_global_start_localizes_the_structured_run(structured):
    points, run = structured
    loc = Localizer(points, LocalizationConfig.from_dict({"relocalization": {"on_start": True}}))
    reports = localize_all(loc, run, 8)
    assert reports[0].relocalized and reports[0].tracking == "OK", reports[0].message
    assert np.all(errors_cm(reports, run)[1:] < 5.0)


def test_configuration_is_typed_validated_and_yaml_loadable(tmp_path):
    config = LocalizationConfig()
    odometry = dcreg_ros.OdometryConfig().degeneracy  # the odometry's DCReg handling, with a weaker prior
    assert config.degeneracy.strategy == odometry.strategy == "dcreg_prior" and config.degeneracy.threshold == odometry.threshold
    assert config.degeneracy.kappa_target == localization.LOCALIZATION_KAPPA_TARGET > odometry.kappa_target
    assert config.registration_config().correspondence.max_distance == config.map.voxel_size
    assert config.with_strategy("none").degeneracy.strategy == "none"
    path = tmp_path / "loc.yaml"
    path.write_text("localization:\n  tracking:\n    lost_after: 7\n  map:\n    load_voxel_size: 0.2\n")
    loaded = LocalizationConfig.from_yaml(path)
    assert loaded.tracking.lost_after == 7 and loaded.map.load_voxel_size == 0.2
    with pytest.raises(ConfigError, match="tracking.lost_after"):
        LocalizationConfig.from_dict({"tracking": {"lost_after": 0}})
    with pytest.raises(ConfigError, match="unknown parameter 'tracking.lost'"):
        LocalizationConfig.from_dict({"tracking": {"lost": 3}})
    with pytest.raises(ConfigError, match="max_range"):
        LocalizationConfig.from_dict({"preprocess": {"min_range": 5.0, "max_range": 2.0}})
    with pytest.raises(ValueError):
        config.with_strategy("bogus")


def test_the_robots_imu_and_wheel_odometry_predict_the_scans(structured):
    """The odometry's motion priors in the localizer: with the simulated IMU and wheel odometry
    fed, they predict every frame after the first; an expected IMU that never comes is a
    constant-velocity fallback with a note, never a failure."""
    from dcreg_ros.core.geometry import pose_to_xyz_rpy

    points, run = structured
    mounting = {"imu_to_lidar": list(pose_to_xyz_rpy(run.imu.T_lidar_imu)), "lidar_to_base": list(pose_to_xyz_rpy(run.wheel.T_base_lidar))}
    loc = Localizer(points, LocalizationConfig.from_dict({"motion_prior": mounting}))
    loc.expect_motion_inputs(True, True)
    loc.add_imu(run.imu.samples)
    loc.add_wheel_odometry(run.wheel.samples)
    loc.set_pose(run.ground_truth.poses[0])
    reports = localize_all(loc, run)
    # the pass starts moving: the IMU filter first gathers 3 s of LiDAR motion (more than this
    # short pass), and the wheels predict meanwhile, saying why
    assert {r.prior_source for r in reports[1:]} <= {"wheel", "imu_wheel"}, [r.prior_source for r in reports]
    assert all(any("starting while moving" in n for n in r.notes) for r in reports[1:] if r.prior_source == "wheel")
    assert all(r.tracking == "OK" for r in reports) and np.sqrt(np.mean(errors_cm(reports, run) ** 2)) < 3.0
    blind = Localizer(points)
    blind.expect_motion_inputs(True, False)
    blind.set_pose(run.ground_truth.poses[0])
    reports = localize_all(blind, run, 6)
    assert all(r.prior_source == "constant_velocity" and any("IMU" in n for n in r.notes) for r in reports[1:])
    assert all(r.tracking == "OK" for r in reports)
