"""Motion profiles of the simulator: speeds, stops, accelerations, turns, free space, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from dcreg_ros.sim import MOTION_PROFILES, SCENE_NAMES, simulate
from dcreg_ros.sim.motion_profiles import RobotMotion, sensor_motion
from dcreg_ros.sim.raycast import cast_rays
from dcreg_ros.sim.scenes import ROOM_LENGTH, build_scene
from dcreg_ros.sim.simulate import MAX_SPEED
from dcreg_ros.sim.speed_profiles import SpeedProfile, stop_and_go_speed
from dcreg_ros.sim.trajectories import SensorMotion

DT = 0.01  # s, sampling of the ground truth in these tests
T0 = 1000.0


def sampled(motion, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """Stamps and poses every DT seconds over ``duration`` s from T0."""
    stamps = T0 + np.arange(0.0, duration, DT)
    return stamps, motion.poses(stamps)


def horizontal_speed(poses: np.ndarray) -> np.ndarray:
    """Speed (m/s) between consecutive samples, from the positions alone."""
    return np.linalg.norm(np.diff(poses[:, :2, 3], axis=0), axis=1) / DT


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index ranges where ``flags`` is True."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def test_profiles_and_api():
    assert MOTION_PROFILES == ("smooth", "variable", "stop_and_go", "handheld")
    with pytest.raises(ValueError, match="unknown motion profile 'jump'"):
        simulate("corridor", frames=1, motion="jump")
    # the smooth default is today's SensorMotion, pose for pose (benchmark numbers rely on it)
    kwargs = dict(frames=3, beams=16, columns=128, seed=5, start_stamp=T0)
    default, smooth = simulate("structured", **kwargs), simulate("structured", motion="smooth", **kwargs)
    reference = SensorMotion(build_scene("structured").motion, seed=5, x_start=0.0, t0=T0)
    np.testing.assert_array_equal(default.ground_truth.poses, reference.poses(default.ground_truth.stamps))
    np.testing.assert_array_equal(smooth.ground_truth.poses, default.ground_truth.poses)
    assert default.motion_profile == "smooth" and isinstance(default.motion, SensorMotion)
    robot = simulate("structured", motion="stop_and_go", **kwargs)
    assert robot.motion_profile == "stop_and_go" and isinstance(robot.motion, RobotMotion)
    np.testing.assert_array_equal(robot.ground_truth.poses, robot.motion.poses(robot.ground_truth.stamps))


def test_speed_profile_is_continuous_with_closed_form_distance():
    profile = stop_and_go_speed(np.random.default_rng(1), 60.0)
    t = np.arange(-1.0, profile.duration + 2.0, 1e-3)
    v, a, s = profile.speed(t), profile.acceleration(t), profile.distance(t)
    assert profile.duration >= 60.0 and v[0] == 0.0 and s[0] == 0.0
    # distance is the integral of speed and speed the integral of acceleration (trapezoid, 1 ms)
    np.testing.assert_allclose(s[1:] - s[:-1], 0.5e-3 * (v[1:] + v[:-1]), atol=1e-9)
    np.testing.assert_allclose(v[1:] - v[:-1], 0.5e-3 * (a[1:] + a[:-1]), atol=1e-6)  # jerk jumps at the ends
    assert np.abs(np.diff(a)).max() < 1e-3 * 5.0  # continuous acceleration: jerk 2 a_peak^2 / dv <= 4.5 m/s^3
    with pytest.raises(ValueError):
        SpeedProfile.from_segments([(0.0, 0.0, 1.0)])


@pytest.mark.parametrize("scene", ["corridor", "open_field"])
def test_stop_and_go_stops_fully_and_brakes_realistically(scene):
    motion = sensor_motion("stop_and_go", build_scene(scene).motion, seed=2, t0=T0, duration=60.0)
    stamps, poses = sampled(motion, 60.0)
    speed = horizontal_speed(poses)
    assert speed.max() <= 2.1 and speed.max() > 1.0
    still = np.all(poses[1:] == poses[:-1], axis=(1, 2))  # bit-identical poses: truly at rest
    assert np.all(still[:int(0.9 / DT)])  # about a second of standstill at the start
    stops = [(a, b) for a, b in runs(still) if (b - a) * DT >= 2.0]
    assert len(stops) >= 3 and stops[0][0] > 0  # the start's standstill is shorter
    assert np.all(speed[still] == 0.0)
    # decelerations from the positions: each braking before a stop peaks within [0.4, 1.6] m/s^2
    accel = np.diff(speed) / DT
    assert np.abs(accel).max() < 1.6
    for start, _ in stops:
        braking = accel[max(start - int(6.0 / DT), 0):start]
        assert 0.4 <= -braking.min() <= 1.6
    # the motion profile's own speed agrees with the positions (the path is its arc length)
    np.testing.assert_allclose(speed, 0.5 * (motion.speed(stamps[1:]) + motion.speed(stamps[:-1])), atol=2e-3)


def test_variable_speed_changes_between_half_and_two_metres_per_second():
    motion = sensor_motion("variable", build_scene("tunnel").motion, seed=4, t0=T0, duration=60.0)
    _, poses = sampled(motion, 60.0)
    speed = horizontal_speed(poses)
    moving = np.argmax(speed > 0.5)  # after the start from rest
    assert moving * DT < 6.0
    cruising = speed[moving:]
    assert cruising.min() >= 0.4 and cruising.max() <= 2.1 and cruising.max() - cruising.min() > 0.6
    accel = np.diff(speed) / DT
    assert np.abs(accel).max() <= 1.05 and np.abs(accel).max() > 0.3
    changes = runs(np.abs(accel) > 0.05)
    assert len(changes) >= 6  # several speed changes in a minute (holds of 2-6 s)


def free_space_violations(scene_name: str, poses: np.ndarray, clearance: float = 0.3) -> list[str]:
    """Where the sensor path crosses a surface or comes closer than ``clearance`` (m) to one."""
    prims = build_scene(scene_name).pack()
    p = poses[:, :3, 3]
    step = np.diff(p, axis=0)
    length = np.linalg.norm(step, axis=1)
    moving = length > 1e-9
    crossing = cast_rays(prims, p[:-1][moving], step[moving], t_max=float(length.max()) + 1.0)
    out = [f"crosses a surface at {q}" for q in p[:-1][moving][crossing.t <= length[moving]]]
    angles = np.linspace(0.0, 2.0 * np.pi, 16, endpoint=False)
    dirs = np.vstack([np.column_stack([np.cos(angles), np.sin(angles), np.zeros(16)]), [[0, 0, 1.0], [0, 0, -1.0]]])
    near = cast_rays(prims, np.repeat(p[::10], len(dirs), axis=0), np.tile(dirs, (len(p[::10]), 1)), t_max=clearance)
    out += [f"within {clearance} m of primitive {i}" for i in np.unique(near.ids[near.ids >= 0])]
    return out


@pytest.mark.parametrize("profile", MOTION_PROFILES)
def test_paths_stay_in_free_space(profile):
    for name in SCENE_NAMES:
        scene = build_scene(name)
        motion = sensor_motion(profile, scene.motion, seed=1, t0=T0, duration=80.0)
        _, poses = sampled(motion, 80.0)
        assert free_space_violations(name, poses) == [], (name, profile)
        # simulate() sizes the scene for MAX_SPEED: the path never outruns it
        assert horizontal_speed(poses).max() < MAX_SPEED and poses[-1, 0, 3] < MAX_SPEED * 80.0


def heading_deg(poses: np.ndarray) -> np.ndarray:
    return np.degrees(np.arctan2(poses[:, 1, 0], poses[:, 0, 0]))


@pytest.mark.parametrize("profile", ["variable", "stop_and_go"])
def test_turns_where_the_scene_allows_them(profile):
    # open field: real S-curves
    _, field = sampled(sensor_motion(profile, build_scene("open_field").motion, seed=3, t0=T0, duration=120.0), 120.0)
    assert np.ptp(heading_deg(field)) > 40.0 and np.ptp(field[:, 1, 3]) > 5.0
    # structured rooms: weave, but through every doorway (|y| < 0.6 m at each cross wall)
    _, rooms = sampled(sensor_motion(profile, build_scene("structured").motion, seed=3, t0=T0, duration=80.0), 80.0)
    x, y = rooms[:, 0, 3], rooms[:, 1, 3]
    walls = np.arange(ROOM_LENGTH, x.max(), ROOM_LENGTH)
    assert len(walls) >= 4 and np.ptp(heading_deg(rooms)) > 20.0 and np.abs(y).max() > 0.6
    x_unique, first = np.unique(x, return_index=True)
    assert np.abs(np.interp(walls, x_unique, y[first])).max() < 0.6
    # corridors keep today's small sway
    _, corridor = sampled(sensor_motion(profile, build_scene("corridor").motion, seed=3, t0=T0, duration=60.0), 60.0)
    assert np.abs(corridor[:, 1, 3]).max() <= 0.2 + 1e-9 and np.abs(heading_deg(corridor)).max() < 15.0


def test_robot_motion_is_deterministic_per_seed():
    profile = build_scene("stairwell").motion
    stamps = T0 + np.linspace(0.0, 30.0, 301)
    a = sensor_motion("variable", profile, seed=8, t0=T0).poses(stamps)
    np.testing.assert_array_equal(a, sensor_motion("variable", profile, seed=8, t0=T0).poses(stamps))
    assert not np.array_equal(a, sensor_motion("variable", profile, seed=9, t0=T0).poses(stamps))
    assert a[-1, 2, 3] - a[0, 2, 3] > 3.0  # still climbs the stairs
    assert horizontal_speed(sampled(sensor_motion("variable", profile, seed=8, t0=T0), 60.0)[1]).max() <= 1.05  # at up to 1 m/s
