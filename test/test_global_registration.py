"""Global registration (no initial guess): its parts on synthetic data with known answers, the
whole pipeline on wide-baseline cases from the real scans and the simulator, and the CLI."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from conftest import ROOT, assert_one_line_error, require_data, run_cli
from dcreg_ros import InputError
from dcreg_ros.core.config_io import ConfigError
from dcreg_ros.core.consensus import consensus_hypotheses, kabsch
from dcreg_ros.core.fpfh import estimate_normals, fpfh_features
from dcreg_ros.core.geometry import pose_error, pose_from_xyz_rpy, transform_points
from dcreg_ros.core.global_registration import (
    GlobalRegistrationConfig,
    GlobalTarget,
    compute_features,
    global_register,
    global_register_to,
    thin_keypoints,
)
from dcreg_ros.core.radius_search import RadiusGrid
from dcreg_ros.eval.wide_baseline import non_overlapping_cases, real_cases, reference_pairs, sim_map_cases, sim_pair_cases


# -- parts -------------------------------------------------------------------------------------

def test_radius_search_equals_brute_force():
    rng = np.random.default_rng(0)
    pts = rng.uniform(-5, 5, (3000, 3))
    queries = rng.uniform(-5, 5, (200, 3))
    nb = RadiusGrid.build(pts, 1.0).neighbours(queries, radius=0.8, max_neighbours=12)
    d2 = ((queries[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
    for i in range(len(queries)):
        inside = np.flatnonzero(d2[i] <= 0.64)
        expected = inside[np.argsort(d2[i, inside], kind="stable")][:12]
        assert nb.count[i] == len(expected)
        np.testing.assert_allclose(nb.dist2[i, : nb.count[i]], d2[i, expected])


def _described_cloud(seed: int = 3):
    """Points on a few boxes and a floor, their normals and feature neighbourhoods."""
    rng = np.random.default_rng(seed)
    floor = np.column_stack([rng.uniform(-4, 4, 1500), rng.uniform(-4, 4, 1500), np.zeros(1500)])
    boxes = []
    for cx, cy, s in ((1.0, 1.0, 1.2), (-2.0, 0.5, 0.8), (0.5, -2.5, 1.5)):
        p = rng.uniform(-s / 2, s / 2, (900, 3))
        axis = rng.integers(0, 3, 900)
        p[np.arange(900), axis] = np.sign(rng.uniform(-1, 1, 900)) * s / 2
        boxes.append(p + [cx, cy, s / 2])
    pts = np.vstack([floor, *boxes])
    normals_nb = RadiusGrid.build(pts, 0.4).neighbours(pts, max_neighbours=30)
    normals, ok = estimate_normals(pts, normals_nb)
    feature_nb = RadiusGrid.build(pts, 1.0).neighbours(pts, max_neighbours=60)
    return pts, normals, ok, feature_nb


def test_fpfh_is_invariant_to_normal_signs_and_rigid_motion():
    pts, normals, ok, nb = _described_cloud()
    reference, usable = fpfh_features(pts, normals, ok, nb)
    assert usable.sum() > 0.9 * len(pts)
    np.testing.assert_allclose(reference[usable].reshape(-1, 3, 11).sum(-1), 1.0, atol=1e-5)  # each block sums to 1
    flips = np.where(np.random.default_rng(1).uniform(size=len(pts)) < 0.5, -1.0, 1.0)
    flipped, _ = fpfh_features(pts, normals * flips[:, None], ok, nb)
    np.testing.assert_allclose(flipped, reference, atol=1e-5)
    T = pose_from_xyz_rpy(7.0, -3.0, 1.0, 0.3, -0.2, 2.5)
    moved, _ = fpfh_features(transform_points(T, pts), normals @ T[:3, :3].T, ok, nb)
    np.testing.assert_allclose(moved, reference, atol=1e-4)
    # and it describes shape: floor points differ from box corners
    floor, corner = reference[10], reference[np.argmax(np.linalg.norm(reference - reference[10], axis=1))]
    assert np.linalg.norm(floor - corner) > 0.3


def test_consensus_recovers_a_transform_from_mostly_wrong_matches():
    rng = np.random.default_rng(5)
    T = pose_from_xyz_rpy(9.0, -4.0, 0.4, 0.05, -0.03, 2.2)
    src = rng.uniform(-20, 20, (600, 3))
    tgt = transform_points(T, src) + rng.normal(0, 0.05, (600, 3))
    wrong = rng.uniform(size=600) < 0.9  # 90% outliers
    tgt[wrong] = rng.uniform(-25, 25, (wrong.sum(), 3))
    hypotheses = consensus_hypotheses(src, tgt, edge_tolerance=0.5, inlier_distance=0.3)
    best = hypotheses[0]
    t_err, r_err = pose_error(best.T_target_source, T)
    assert t_err < 0.05 and r_err < 0.2
    assert best.num_inliers >= 0.9 * (~wrong).sum() and not best.inliers[wrong].any()
    assert all(h.num_inliers < best.num_inliers for h in hypotheses[1:])
    # no consistent triple in pure noise: no hypothesis with many inliers
    noise = consensus_hypotheses(src, rng.uniform(-25, 25, (600, 3)), 0.5, 0.3)
    assert all(h.num_inliers < 10 for h in noise)
    np.testing.assert_allclose(kabsch(src, transform_points(T, src), np.arange(600)), T, atol=1e-9)


def test_thinning_keeps_an_even_subset():
    pts = np.random.default_rng(2).uniform(0, 50, (20000, 3)) * [1, 1, 0.02]
    keep = thin_keypoints(pts, 0.5, 3000)
    assert 1000 < len(keep) <= 3000 and len(np.unique(keep)) == len(keep)
    assert len(thin_keypoints(pts, 0.5, 0)) == len(pts)
    # evenly spread: every 10 m x 10 m tile keeps some points
    tiles = np.unique((pts[keep, :2] // 10).astype(int), axis=0)
    assert len(tiles) == 25


# -- wide-baseline cases -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data():
    return require_data()


@pytest.mark.parametrize("name", ["fast_gicp", "lpm_car_400_401", "os1_128_lb_n3_0_1"])
def test_real_pair_moved_far_away_registers_within_reference_consistency(data, name):
    (case,) = real_cases(data, per_pair=1, seed=7, names=[name])
    moved, yaw = np.linalg.norm(case.offset[:3, 3]), np.degrees(np.arccos((np.trace(case.offset[:3, :3]) - 1) / 2))
    assert 4.0 <= moved <= 12.6 and yaw >= 19.0  # the case really starts far from the identity
    started = time.perf_counter()
    result = global_register(case.source, case.target)
    wall_ms = (time.perf_counter() - started) * 1e3
    cm, deg = case.error(result.T_target_source)
    assert result.success, (cm, deg, result.fitness, result.num_inliers)
    assert case.within(result.T_target_source), (cm, deg)
    assert result.refinement.ok and result.num_inliers >= 8 and result.fitness > 0.5
    assert case.error(result.coarse)[0] < 100.0  # the coarse pose is already within the refinement's reach
    # every stage timed, and the stages account for the total, which is no more than the wall time
    stages = {k: v for k, v in result.timings.items() if k != "total"}
    assert set(stages) == set(GLOBAL_STAGES) and all(v > 0.0 for v in stages.values()), result.timings
    assert 0.95 * result.timings["total"] <= sum(stages.values()) <= result.timings["total"] <= wall_ms, (result.timings, wall_ms)


GLOBAL_STAGES = ("target_features", "target_map", "source_features", "matching", "consensus", "probing", "refinement", "verification")


def test_relocalization_in_a_simulated_map_reuses_the_target(data):
    world, cases = sim_map_cases("structured", count=2, seed=0)
    target = GlobalTarget.from_points(world)
    described = target.features.descriptors
    for case in cases:
        result = global_register_to(case.source, target)
        assert result.ambiguity < 0.5  # the neighbouring rooms fit too, but the furniture tells them apart
        assert result.success and case.within(result.T_target_source), case.error(result.T_target_source)
        assert "target_features" not in result.timings  # prepared once, not per call
    assert target.features.descriptors is described


def test_aliased_frames_of_identical_rooms_are_reported_ambiguous():
    # two frames 10 m apart in the simulated suite of identical rooms: laying one room onto the
    # other fits better than the truth (they see each other only through a doorway)
    case = sim_pair_cases("structured", pairs=2, seed=0)[1]
    result = global_register(case.source, case.target)
    assert not case.within(result.T_target_source)
    assert result.ambiguity > GlobalRegistrationConfig().verification.max_ambiguity and not result.success
    lenient = GlobalRegistrationConfig.from_dict({"verification": {"max_ambiguity": 1.0}})
    assert global_register(case.source, case.target, lenient).success  # what the test above prevents


def test_clouds_without_overlap_are_not_a_confident_answer(data):
    case = non_overlapping_cases(data)[0]
    result = global_register(case.source, case.target)
    assert not result.success
    assert result.fitness < GlobalRegistrationConfig().verification.min_fitness
    assert np.isfinite(result.T_target_source).all()


# -- configuration and bad input ----------------------------------------------------------------

def test_config_validation_and_shipped_file():
    assert GlobalRegistrationConfig.from_yaml(ROOT / "config" / "global_registration.yaml") == GlobalRegistrationConfig()
    with pytest.raises(ConfigError, match="features.voxel_size"):
        GlobalRegistrationConfig.from_dict({"features": {"voxel_size": -1.0}})
    with pytest.raises(ConfigError, match="verification.distance"):
        GlobalRegistrationConfig.from_dict({"verification": {"distance": 2.0}})
    with pytest.raises(ConfigError, match="unknown parameter"):
        GlobalRegistrationConfig.from_dict({"consensus": {"seeds": 3}})


def test_bad_inputs_raise_one_line_errors():
    pts = np.random.default_rng(0).uniform(-5, 5, (500, 3))
    with pytest.raises(InputError, match="source"):
        global_register(np.full((100, 3), np.nan), pts)
    with pytest.raises(InputError, match="target"):
        global_register(pts, np.zeros((3, 3)))
    target = GlobalTarget.from_points(pts)
    other = GlobalRegistrationConfig.from_dict({"features": {"voxel_size": 0.3}})
    with pytest.raises(ConfigError, match="features"):
        global_register_to(pts, target, other)
    # points too sparse to describe (5 m apart) give no answer, not a crash
    sparse = np.stack(np.meshgrid(np.arange(5.0) * 5, np.arange(5.0) * 5, [0.0]), -1).reshape(-1, 3)
    assert len(compute_features(sparse, GlobalRegistrationConfig().features)) == 0
    result = global_register(sparse, pts)
    assert not result.success and result.num_inliers == 0 and np.isfinite(result.T_target_source).all()


# -- command line -------------------------------------------------------------------------------

def test_cli_global_json_and_errors(data, tmp_path):
    rows = {r["name"]: r for r in reference_pairs(data)}
    row = rows["lpm_car_400_401"]
    out = json.loads(run_cli("register", data / row["source"], data / row["target"], "--global", "--json").stdout)
    for key in ("T_target_source", "coarse", "success", "fitness", "inlier_rmse", "num_feature_matches",
                "num_inliers", "timings_ms", "refinement"):
        assert key in out
    assert out["success"] and out["refinement"]["status"] == "converged"
    t_err, r_err = pose_error(np.array(out["T_target_source"]), row["T"])
    assert t_err < 0.075 and r_err < 0.6
    assert {"source_features", "matching", "consensus", "refinement", "total"} <= set(out["timings_ms"])

    other = rows["fast_gicp"]
    proc = run_cli("register", data / other["source"], data / row["target"], "--global", ok=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "global        FAILED" in proc.stdout and "coarse" in proc.stdout and "time" in proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dcreg: global registration failed:") and "overlap" in lines[0]

    assert_one_line_error(run_cli("register", data / row["source"], data / row["target"], "--global", "--init", "0 0 0 0 0 0", ok=False), "--init")
    assert_one_line_error(run_cli("register", tmp_path / "missing.pcd", data / row["target"], "--global", ok=False), "missing.pcd")
    bad = tmp_path / "bad.yaml"
    bad.write_text("global_registration:\n  features:\n    voxel_size: 0\n")
    assert_one_line_error(run_cli("register", data / row["source"], data / row["target"], "--global", "--config", bad, ok=False), "voxel_size")
