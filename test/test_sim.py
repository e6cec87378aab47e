"""LiDAR simulator: exact ray casting, scene degeneracy, sensor model, motion skew, determinism, bags."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dcreg_ros.core.geometry import invert_pose, pose_from_xyz_rpy, so3_exp, so3_log
from dcreg_ros.sim import SCENE_NAMES, SCENES, load_degeneracy_truth, sensor_preset, simulate, write_simulation
from dcreg_ros.sim.raycast import Box, Rectangle, Tube, VerticalCylinder, cast_rays, pack
from dcreg_ros.sim.scenes import AXES, Scene, build_scene

from dcreg_ros.sim import observability
from dcreg_ros.sim.observability import Observability, frame_observability
from dcreg_ros.sim.simulate import deskew, simulate_frame
from dcreg_ros.sim.trajectories import MotionProfile, SensorMotion


class StaticMotion:
    """A sensor that does not move: T_world_sensor = T at every time."""

    def __init__(self, T: np.ndarray) -> None:
        self.T = T

    def poses(self, stamps) -> np.ndarray:
        return np.repeat(self.T[None], len(np.atleast_1d(stamps)), axis=0)

    def pose(self, stamp: float) -> np.ndarray:
        return self.T.copy()


def closed_room(size=(8.0, 6.0, 3.0)) -> Scene:
    """A closed box room (six rectangles, the sensor inside): every ray hits something."""
    lx, ly, lz = size
    prims = [
        Rectangle.from_corner((-lx / 2, -ly / 2, z), (lx, 0, 0), (0, ly, 0)) for z in (0.0, lz)
    ] + [
        Rectangle.from_corner((-lx / 2, y, 0.0), (lx, 0, 0), (0, 0, lz)) for y in (-ly / 2, ly / 2)
    ] + [
        Rectangle.from_corner((x, -ly / 2, 0.0), (0, ly, 0), (0, 0, lz)) for x in (-lx / 2, lx / 2)
    ]
    return Scene("room", tuple(prims), (False,) * 6, MotionProfile(), (-lx / 2, lx / 2), "closed room")


# -- ray casting --------------------------------------------------------------------------------


def test_rays_hit_primitives_at_analytic_distances():
    scene = pack([
        Rectangle.from_corner((10.0, -1.0, 0.0), (0, 2.0, 0), (0, 0, 2.0)),  # 0: x = 10 wall patch
        Box((-6.0, -1.0, -1.0), (-4.0, 1.0, 1.0)),  # 1
        VerticalCylinder(0.0, 7.0, 0.5, -2.0, 3.0),  # 2
        Tube(0.0, 0.0, 20.0, -100.0, 100.0, z_cut=-5.0),  # 3: everything else sits inside it
    ])
    origin = np.array([0.0, 0.0, 0.5])
    cases = [  # direction, expected id, expected distance, expected normal
        ((1, 0, 0), 0, 10.0, (-1, 0, 0)),
        ((-1, 0, 0), 1, 4.0, (1, 0, 0)),
        ((0, 1, 0), 2, 6.5, (0, -1, 0)),
        ((0, 0, 1), 3, 19.5, (0, 0, -1)),  # tube crown, 20 m above its axis
        ((0, -1, 0), 3, math.sqrt(400.0 - 0.25), (0, math.sqrt(400.0 - 0.25) / 20.0, -0.5 / 20.0)),
        ((1, 0, 0.1), 0, math.sqrt(101.0), (-1, 0, 0)),  # lands at z = 1.5 on the 2 m patch
        ((1, 0, 0.2), 3, None, None),  # would land at z = 2.5: above the patch, on to the tube
    ]
    for direction, pid, distance, normal in cases:
        hits = cast_rays(scene, origin, [direction])
        assert hits.ids[0] == pid, direction
        if distance is not None:
            assert abs(hits.t[0] - distance) < 1e-9, (direction, hits.t[0], distance)
            np.testing.assert_allclose(hits.normals[0], normal, atol=1e-12)
    # oblique rays on the cylinder: the hit lies on the surface and matches an independent solve
    rng = np.random.default_rng(1)
    angles = rng.uniform(np.radians(87.0), np.radians(93.0), 50)
    elev = rng.uniform(-0.2, 0.2, 50)
    dirs = np.column_stack([np.cos(angles) * np.cos(elev), np.sin(angles) * np.cos(elev), np.sin(elev)])
    hits = cast_rays(scene, origin, dirs)
    on_cylinder = hits.ids == 2
    assert on_cylinder.sum() > 20
    p = hits.points[on_cylinder]
    np.testing.assert_allclose(np.hypot(p[:, 0], p[:, 1] - 7.0), 0.5, atol=1e-9)
    for d, t in zip(dirs[on_cylinder], hits.t[on_cylinder]):
        a, b, cc = d[0] ** 2 + d[1] ** 2, -7.0 * d[1], 49.0 - 0.25  # |o + t d - c|^2 = r^2 in xy
        expected = (-b - math.sqrt(b * b - a * cc)) / a
        assert abs(t - expected) < 1e-9


def test_cylinder_cap_box_faces_and_tube_floor_cut():
    scene = pack([VerticalCylinder(0.0, 0.0, 1.0, 0.0, 2.0), Box((5.0, 5.0, 0.0), (6.0, 7.0, 1.0)),
                  Tube(0.0, 0.0, 3.0, -10.0, 10.0, z_cut=-1.0)])
    hits = cast_rays(scene, [[0.3, 0.2, 2.5]], [[0.0, 0.0, -1.0]])  # straight down onto the cap
    assert hits.ids[0] == 0 and abs(hits.t[0] - 0.5) < 1e-12
    np.testing.assert_allclose(hits.normals[0], (0, 0, 1))
    hits = cast_rays(scene, [[5.5, 3.0, 0.5]], [[0.0, 1.0, 0.0]])  # box face y = 5
    assert hits.ids[0] == 1 and abs(hits.t[0] - 2.0) < 1e-12
    np.testing.assert_allclose(hits.normals[0], (0, -1, 0))
    # inside the box: boxes are solid and seen from outside only, so the ray passes through
    hits = cast_rays(pack([Box((5.0, 5.0, 0.0), (6.0, 7.0, 1.0))]), [[5.5, 6.0, 0.5]], [[0.0, 1.0, 0.0]])
    assert hits.ids[0] == -1
    # the tube does not exist below its floor cut: a ray down from inside misses it
    hits = cast_rays(pack([Tube(0.0, 0.0, 3.0, -10.0, 10.0, z_cut=-1.0)]), [[0.0, 0.0, 0.0]], [[0.0, 0.0, -1.0]])
    assert hits.ids[0] == -1
    # ... but a ray up hits its crown from inside
    hits = cast_rays(pack([Tube(0.0, 0.0, 3.0, -10.0, 10.0, z_cut=-1.0)]), [[0.0, 0.0, 0.0]], [[0.0, 0.0, 1.0]])
    assert hits.ids[0] == 0 and abs(hits.t[0] - 3.0) < 1e-12


def test_nearest_hit_wins_and_misses_are_reported():
    wall = Rectangle.from_corner((20.0, -5.0, -5.0), (0, 10.0, 0), (0, 0, 10.0))
    box = Box((8.0, -1.0, -1.0), (9.0, 1.0, 1.0))
    pole = VerticalCylinder(4.0, 0.0, 0.2, -3.0, 3.0)
    for prims, first in (([wall, box, pole], 2), ([pole, box, wall], 0)):
        hits = cast_rays(pack(prims), (0.0, 0.0, 0.0), [(1.0, 0.0, 0.0)])
        assert hits.ids[0] == first and abs(hits.t[0] - 3.8) < 1e-12
    hits = cast_rays(pack([wall, box, pole]), (0.0, 0.0, 0.0), [(-1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (1.0, 0.0, 0.0)],
                     t_max=3.0)
    assert np.all(hits.ids == -1) and np.all(np.isinf(hits.t)) and np.all(np.isnan(hits.points))
    assert not hits.hit.any()


def test_normals_are_unit_and_face_the_ray_and_binning_is_exact():
    scene = build_scene("structured", length=40.0)
    rng = np.random.default_rng(3)
    n = 20000
    origins = np.column_stack([rng.uniform(-20, 60, n), rng.uniform(-1.0, 1.0, n), rng.uniform(0.3, 2.5, n)])
    dirs = rng.normal(size=(n, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    binned = cast_rays(scene.pack(), origins, dirs)
    assert binned.hit.mean() > 0.99  # a closed suite of rooms
    np.testing.assert_allclose(np.linalg.norm(binned.normals[binned.hit], axis=1), 1.0, atol=1e-12)
    assert np.all(np.einsum("ij,ij->i", binned.normals[binned.hit], dirs[binned.hit]) < 0.0)
    # the x-bin culling must not change any result: compare with every primitive tested per ray
    brute = cast_rays(pack(list(scene.primitives), max_bins_per_item=-1), origins, dirs)
    assert len(pack(list(scene.primitives), max_bins_per_item=-1).bin_items) == 0
    np.testing.assert_array_equal(binned.ids, brute.ids)
    np.testing.assert_array_equal(binned.t, brute.t)


# -- scenes: degeneracy truth from the exact geometry ----------------------------------------------


def _frame_truth(name: str, beams: int = 16, stamp: float = 3.0) -> Observability:
    scene = build_scene(name, length=20.0)
    motion = SensorMotion(scene.motion, seed=0)
    sample = simulate_frame(scene.pack(), sensor_preset(beams, columns=512, range_noise=0.0), motion, stamp,
                            np.random.default_rng(0))
    return frame_observability(sample.points_true, sample.normals, 0.015)


@pytest.mark.parametrize("name", SCENE_NAMES)
@pytest.mark.parametrize("stamp", [3.0, 20.0])
def test_the_geometry_truth_agrees_with_each_scenes_design(name, stamp):
    """Two independent truths: what the scene was designed to leave weak (hand-written) and the
    Cramer-Rao bound of the frame's exact geometry against fixed physical limits."""
    truth = _frame_truth(name, stamp=stamp)
    np.testing.assert_array_equal(truth.weak, build_scene(name).nominal_mask, err_msg=f"std {truth.std}")


@pytest.mark.parametrize("name", ["corridor", "corridor_sparse", "tunnel"])
def test_corridors_leave_x_far_less_determined_than_y_and_z(name):
    std = _frame_truth(name, stamp=20.0).std
    x, y, z = (AXES.index(a) for a in "xyz")
    assert std[x] > 2.0 * max(std[y], std[z])
    assert std[x] > observability.MAX_STD_TRANSLATION > max(std[y], std[z])


def test_truth_is_a_property_of_the_surfaces_not_of_the_beam_count():
    """Information saturates per patch of surface: 16 and 64 beams see the same weak axes with
    standard deviations within a factor of 2 (more beams reach more patches of floor and ceiling)."""
    for name in ("corridor", "open_field", "structured"):
        a, b = _frame_truth(name, beams=16), _frame_truth(name, beams=64)
        np.testing.assert_array_equal(a.weak, b.weak)
        assert np.all(np.abs(np.log(a.std / b.std)) < np.log(2.0)), (name, a.std, b.std)


def test_a_direction_no_surface_faces_is_weak_and_finite():
    """An exactly null direction (a perfect floor: nothing fixes x, y or yaw) is weak with a large,
    finite standard deviation, and a noisier sensor makes more axes weak, never fewer."""
    rng = np.random.default_rng(3)
    points = np.column_stack([rng.uniform(-20, 20, 2000), rng.uniform(-20, 20, 2000), np.full(2000, -1.0)])
    normals = np.tile([0.0, 0.0, 1.0], (2000, 1))
    truth = frame_observability(points, normals, 0.015)
    assert [a for a, w in zip(AXES, truth.weak) if w] == ["yaw", "x", "y"]
    assert np.all(np.isfinite(truth.std))
    quiet, noisy = _frame_truth("structured"), frame_observability(*_structured_points(), 0.2)
    assert not quiet.weak.any() and noisy.weak.sum() > 0


def _structured_points():
    scene = build_scene("structured", length=20.0)
    sample = simulate_frame(scene.pack(), sensor_preset(16, columns=512, range_noise=0.0), SensorMotion(scene.motion, seed=0),
                            3.0, np.random.default_rng(0))
    return sample.points_true, sample.normals


def test_every_scene_is_long_enough_and_the_stairwell_climbs():
    assert SCENE_NAMES == ("corridor", "corridor_sparse", "tunnel", "open_field", "stairwell", "structured")
    for builder in SCENES:
        scene = builder(0.0)
        assert scene.x_range[1] - scene.x_range[0] >= 300.0 and len(scene.nominal_mask) == 6
    stairs = build_scene("stairwell", length=30.0)
    xyz = SensorMotion(stairs.motion, seed=0).xyz_rpy(np.linspace(0.0, 20.0, 201))
    assert xyz[-1, 2] - xyz[0, 2] > 5.0  # about 0.3 m of height per metre along x
    assert np.all(np.diff(xyz[:, 0]) > 0.0)


# -- sensors --------------------------------------------------------------------------------------


def test_sensor_point_count_times_and_azimuth_order():
    sensor = sensor_preset(16, columns=512, range_noise=0.0)
    room = closed_room().pack()
    T = pose_from_xyz_rpy(0.5, 0.3, 1.2, 0.0, 0.0, 0.4)
    sample = simulate_frame(room, sensor, StaticMotion(T), 50.0, np.random.default_rng(0))
    scan = sample.scan
    assert len(scan) == 16 * 512  # closed room, all within range
    assert np.all(np.diff(scan.times) >= 0.0) and scan.times[0] == 0.0 and scan.times[-1] < sensor.period
    np.testing.assert_allclose(np.unique(scan.times), np.arange(512) * sensor.period / 512)
    azimuth = np.arctan2(scan.points[:, 1], scan.points[:, 0])
    assert np.all(np.diff(azimuth) >= -1e-9)  # increasing from -pi: time order = azimuth order
    assert azimuth[0] < -np.pi + 1e-6
    elevation = np.degrees(np.arcsin(scan.points[:, 2] / np.linalg.norm(scan.points, axis=1)))
    assert abs(elevation.min() + 15.0) < 1e-6 and abs(elevation.max() - 15.0) < 1e-6
    assert np.all(np.isfinite(scan.intensity)) and scan.intensity.min() >= 0.0 and scan.intensity.max() <= 255.0
    # out of range returns are dropped: a 3 m limit keeps only parts of the closest walls
    near = simulate_frame(room, sensor_preset(16, columns=512, range_noise=0.0, max_range=3.0), StaticMotion(T), 50.0,
                          np.random.default_rng(0)).scan
    assert 0 < len(near) < len(scan) and np.linalg.norm(near.points, axis=1).max() <= 3.0


def test_range_noise_statistics_and_dropout_fraction():
    room = closed_room().pack()
    T = pose_from_xyz_rpy(0.0, 0.0, 1.5, 0.0, 0.0, 0.0)
    sensor = sensor_preset(32, range_noise=0.05, dropout=0.3)
    sample = simulate_frame(room, sensor, StaticMotion(T), 0.0, np.random.default_rng(5))
    n_rays = sensor.rays_per_scan
    kept = len(sample.scan) / n_rays
    assert abs(kept - 0.7) < 4 * math.sqrt(0.21 / n_rays)
    error = np.linalg.norm(sample.scan.points, axis=1) - sample.ranges_true
    assert abs(error.mean()) < 4 * 0.05 / math.sqrt(len(error))
    assert abs(error.std() / 0.05 - 1.0) < 0.03
    # noise is along the beam: the measured point and the true point share a direction
    direction = sample.scan.points / np.linalg.norm(sample.scan.points, axis=1, keepdims=True)
    np.testing.assert_allclose(direction, sample.points_true / sample.ranges_true[:, None], atol=1e-9)


# -- motion skew --------------------------------------------------------------------------------


def _interpolate(T0: np.ndarray, T1: np.ndarray, s: float) -> np.ndarray:
    """Pose a fraction s of the way from T0 to T1 (geodesic rotation, linear translation)."""
    T = np.eye(4)
    T[:3, :3] = T0[:3, :3] @ so3_exp(s * so3_log(T0[:3, :3].T @ T1[:3, :3]))
    T[:3, 3] = (1.0 - s) * T0[:3, 3] + s * T1[:3, 3]
    return T


def test_motion_skew_is_real_and_deskewing_recovers_the_static_scan():
    from scipy.spatial import cKDTree

    scene = build_scene("structured", length=20.0)
    prims = scene.pack()
    sensor = sensor_preset(16, columns=1024, range_noise=0.0)
    motion = SensorMotion(MotionProfile(speed=2.0, height=1.0, sway=0.3, yaw_deg=8.0, start_ramp=0.0), seed=4, t0=10.0)
    sample = simulate_frame(prims, sensor, motion, 10.0, np.random.default_rng(0))
    scan = sample.scan
    # a static sensor at the scan-start pose: its exact surface points and normals are the reference
    static = simulate_frame(prims, sensor_preset(64, columns=2048, range_noise=0.0), StaticMotion(motion.pose(10.0)), 10.0,
                            np.random.default_rng(0))
    tree = cKDTree(static.points_true)

    def misalignment(points: np.ndarray) -> float:
        """75th percentile of the point-to-plane distance to the static scan (m); a percentile
        because a few points see surfaces the static sensor does not."""
        _, idx = tree.query(points)
        return float(np.percentile(np.abs(np.einsum("ij,ij->i", points - static.points_true[idx], static.normals[idx])), 75))

    raw = misalignment(scan.points)
    exact = deskew(scan, motion.poses)
    np.testing.assert_allclose(exact, sample.points_true, atol=1e-9)  # deskewing is exact
    assert raw > 0.02 and misalignment(exact) < 1e-6
    # the same with only the discrete ground truth (poses at this and the next stamp, interpolated)
    T0, T1 = motion.pose(10.0), motion.pose(10.0 + sensor.period)

    def poses_from_ground_truth(stamps):
        return np.array([_interpolate(T0, T1, (s - 10.0) / sensor.period) for s in np.atleast_1d(stamps)])

    interpolated = deskew(scan, poses_from_ground_truth)
    assert misalignment(interpolated) < min(0.005, raw / 10)
    # the opposite sign (relative motion applied inverted) makes the skew worse, not better
    def inverted(stamps):
        return np.array([T0 @ invert_pose(T) @ T0 for T in motion.poses(stamps)])

    assert misalignment(deskew(scan, inverted)) > raw


# -- simulate, determinism, bag output -------------------------------------------------------------


def test_simulate_is_deterministic_and_consistent():
    kwargs = dict(frames=3, beams=16, columns=256, noise=0.02, dropout=0.1, start_stamp=1000.0)
    a = simulate("tunnel", seed=7, **kwargs)
    b = simulate("tunnel", seed=7, **kwargs)
    c = simulate("tunnel", seed=8, **kwargs)
    for sa, sb in zip(a.scans, b.scans):
        np.testing.assert_array_equal(sa.points, sb.points)
        np.testing.assert_array_equal(sa.intensity, sb.intensity)
    np.testing.assert_array_equal(a.ground_truth.poses, b.ground_truth.poses)
    assert not np.array_equal(a.ground_truth.poses, c.ground_truth.poses)
    assert not np.array_equal(a.scans[0].points[:100], c.scans[0].points[:100])
    np.testing.assert_allclose(a.ground_truth.stamps, [1000.0, 1000.1, 1000.2])
    assert [s.stamp for s in a.scans] == list(a.ground_truth.stamps) and a.scans[0].frame_id == "lidar"
    assert a.degenerate_mask.shape == (3, 6) and a.degenerate_mask.dtype == bool
    np.testing.assert_array_equal(a.nominal_mask, [False, False, False, True, False, False])
    speed = np.linalg.norm(np.diff(a.ground_truth.positions, axis=0), axis=1) / 0.1
    assert np.all(np.diff(speed) > 0) and speed[0] < 0.3  # starting from rest


def test_start_from_rest_reaches_walking_speed_with_a_smooth_heading():
    a = simulate("corridor", frames=60, beams=16, columns=128)
    pos = a.ground_truth.positions
    speed = np.linalg.norm(np.diff(pos, axis=0), axis=1) / 0.1
    assert speed[0] < 0.3 and np.all((speed[40:] > 1.0) & (speed[40:] < 2.2))
    yaw = np.degrees([np.arctan2(T[1, 0], T[0, 0]) for T in a.ground_truth.poses])
    assert np.abs(yaw).max() < 10.0 and np.abs(np.diff(yaw)).max() < 2.0


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_write_simulation_bag_with_truth_files(tmp_path, storage):
    from dcreg_ros.io.bags import count_scans, read_ground_truth
    from dcreg_ros.io.trajectory import read_tum

    result = simulate("corridor_sparse", frames=4, beams=16, columns=256, seed=1)
    out = write_simulation(result, tmp_path / "bag", storage=storage)
    assert (out / "metadata.yaml").is_file()
    tum = read_tum(out / "ground_truth_tum.txt")
    assert len(tum) == 4
    np.testing.assert_allclose(tum.poses, result.ground_truth.poses, atol=1e-8)
    truth = json.loads((out / "degeneracy_truth.json").read_text())
    assert truth["scene"] == "corridor_sparse" and truth["axes"] == list(AXES) and len(truth["frames"]) == 4
    assert truth["nominal_mask"] == [bool(m) for m in result.nominal_mask]
    for path in (out, out / "degeneracy_truth.json"):
        stamps, masks = load_degeneracy_truth(path)
        np.testing.assert_allclose(stamps, result.ground_truth.stamps)
        np.testing.assert_array_equal(masks, result.degenerate_mask)
    assert count_scans(out, "/points") == 4
    gt = read_ground_truth(out, "/ground_truth")
    np.testing.assert_allclose(gt.poses, result.ground_truth.poses, atol=1e-6)
