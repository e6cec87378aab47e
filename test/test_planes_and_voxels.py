"""Plane fitting, voxel hashing, downsampling and the voxel map's neighbour queries against
brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree

from dcreg_ros.core.planes import PlaneParameters, least_squares_plane, pca_plane, symmetric_eigenvalues_3x3
from dcreg_ros.core.voxel_hash import voxel_downsample, voxel_downsample_indices, voxel_downsample_within
from dcreg_ros.core.voxel_map import PLANAR, VoxelMap, knn_points, nearest_point


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 100_000))
def test_closed_form_eigenvalues_match_numpy(seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(3, 3)) * rng.uniform(1e-3, 1e3)
    S = A @ A.T
    np.testing.assert_allclose(symmetric_eigenvalues_3x3(S), np.linalg.eigvalsh(S), rtol=1e-7, atol=1e-9 * np.abs(S).max())


def test_pca_plane_recovers_normal_and_rejects_lines():
    rng = np.random.default_rng(1)
    n_true = np.array([0.3, -0.2, 0.93])
    n_true /= np.linalg.norm(n_true)
    u = np.cross(n_true, [1, 0, 0])
    u /= np.linalg.norm(u)
    v = np.cross(n_true, u)
    pts = rng.uniform(-1, 1, (30, 1)) * u + rng.uniform(-1, 1, (30, 1)) * v + 5.0 + rng.normal(0, 1e-3, (30, 1)) * n_true
    n, ok = pca_plane(pts, 0.2, 0.05)
    assert ok and abs(n @ n_true) > 0.9999
    line = np.outer(np.linspace(0, 1, 20), u) + rng.normal(0, 1e-4, (20, 3))
    assert not pca_plane(line, 0.2, 0.05)[1]
    thick = pts + rng.normal(0, 0.3, (30, 1)) * n_true
    assert not pca_plane(thick, 0.2, 0.0)[1]


def test_pca_plane_rejects_corners_whose_normal_is_arbitrary():
    """Neighbours from a wall and the floor meeting at an edge (a 'blob' to PCA): within the
    thickness limit and planar by the l1 - l0 test, but their smallest-spread direction is no
    surface normal, so the plane is rejected; the same points from one face are accepted."""
    rng = np.random.default_rng(3)
    wall = np.column_stack([rng.uniform(0, 0.5, 6), np.zeros(6), rng.uniform(0, 0.15, 6)])  # y = 0
    floor = np.column_stack([rng.uniform(0, 0.5, 6), rng.uniform(0, 0.15, 6), np.zeros(6)])  # z = 0
    corner = np.vstack([wall, floor])
    _, ok_loose = pca_plane(corner, 0.2, 0.03, 1.0)
    assert ok_loose  # what the planarity and thickness tests alone accept
    assert not pca_plane(corner, 0.2, 0.03)[1]
    n, ok = pca_plane(np.vstack([wall, wall + [0.05, 0.0, 0.2]]), 0.2, 0.03)
    assert ok and abs(n[1]) > 0.99


def test_cached_planes_are_re_estimated_when_their_voxel_receives_points():
    """A plane fitted while the map held a few sparse points is refreshed once the surface fills in."""
    rng = np.random.default_rng(5)
    vmap = VoxelMap(1.0, max_points_per_voxel=20, plane=PlaneParameters(neighbors=8, radius=1.0))
    p0 = np.array([0.5, 0.5, 0.5])
    u, v = np.array([1.0, 0.0, -1.0]) / np.sqrt(2.0), np.array([0.0, 1.0, 0.0])  # an oblique plane x + z = 1
    sparse = p0 + np.array([[0, 0], [0.3, 0.1], [-0.3, 0.2], [0.1, -0.35], [-0.2, -0.3], [0.35, -0.25], [-0.1, 0.38], [0.25, 0.3]]) @ np.vstack([u, v])
    slots = vmap.insert(sparse)
    vmap.ensure_normals(slots[:1])
    assert vmap.plane_state[slots[0]] == PLANAR and abs(vmap.normals[slots[0]] @ (np.array([1.0, 0.0, 1.0]) / np.sqrt(2.0))) > 0.99
    wall = p0 + np.column_stack([rng.uniform(-0.12, 0.12, 10), np.zeros(10), rng.uniform(-0.12, 0.12, 10)])  # y = 0.5
    vmap.insert(wall)
    assert vmap.ensure_normals(slots[:1]) == 1  # invalidated by the new points, estimated again
    assert vmap.plane_state[slots[0]] == PLANAR and abs(vmap.normals[slots[0], 1]) > 0.99


def test_reference_least_squares_plane_and_rank_deficient_case():
    pts = np.array([[1.0, 0, 2], [0, 1, 2], [1, 1, 2], [2, 0.5, 2], [0.3, 0.7, 2]])  # z = 2
    n, d, ok = least_squares_plane(pts, 0.2)
    assert ok
    np.testing.assert_allclose(np.abs(n), [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(pts @ n + d, 0.0, atol=1e-12)
    # plane through the origin: x c = -1 has no exact solution; the basic LS solution (c_z = 0)
    # is a vertical plane, as in the reference implementation
    floor = np.array([[1.0, 0.1, 0], [1.2, 0.3, 0], [1.4, 0.5, 0], [1.6, 0.7, 0], [1.8, 0.9, 0]])
    n, d, ok = least_squares_plane(floor, 0.2)
    assert ok and abs(n[2]) < 1e-12


def test_downsample_keeps_one_point_per_voxel_in_input_order():
    rng = np.random.default_rng(2)
    pts = rng.uniform(-10, 10, (5000, 3))
    idx = voxel_downsample_indices(pts, 1.0)
    keys = np.floor(pts / 1.0).astype(int)
    assert len(idx) == len({tuple(k) for k in keys})
    assert np.all(np.diff(idx) > 0)
    assert len({tuple(k) for k in keys[idx]}) == len(idx)
    first: dict = {}
    for i, k in enumerate(map(tuple, keys)):
        first.setdefault(k, i)
    assert sorted(first.values()) == idx.tolist()  # the first point of each voxel is the one kept
    assert voxel_downsample(pts, 0.0) is pts


@pytest.mark.parametrize("voxel", [0.5, 1.0, 2.0])
def test_nearest_and_knn_match_brute_force(voxel):
    rng = np.random.default_rng(3)
    pts = rng.uniform(-5, 5, (4000, 3))
    vmap = VoxelMap.from_points(pts, voxel, 0)  # exact: keep every point
    assert len(vmap) == len(pts)
    stored = vmap.points
    tree = cKDTree(pts)
    queries = rng.uniform(-6, 6, (300, 3))
    idx = np.empty(5, dtype=np.int64)
    d2 = np.empty(5)
    for q in queries:
        d, j = tree.query(q, distance_upper_bound=voxel)
        got = nearest_point(q[0], q[1], q[2], vmap.inv_size, vmap.voxel_size, vmap.table_keys, vmap.table_values,
                            vmap.cell_counts, stored, vmap.max_points_per_voxel, voxel * voxel)
        if np.isfinite(d):
            assert got >= 0 and np.linalg.norm(stored[got] - q) == pytest.approx(d, abs=1e-12)
        else:
            assert got == -1
        dk, _ = tree.query(q, 5, distance_upper_bound=voxel)
        found = knn_points(q[0], q[1], q[2], 5, vmap.inv_size, vmap.voxel_size, vmap.table_keys, vmap.table_values,
                           vmap.cell_counts, stored, vmap.max_points_per_voxel, voxel * voxel, idx, d2)
        expected = dk[np.isfinite(dk)]
        assert found == len(expected)
        np.testing.assert_allclose(np.sqrt(d2[:found]), expected, atol=1e-12)


def test_map_growth_cap_removal_and_lazy_normals():
    rng = np.random.default_rng(4)
    vmap = VoxelMap(1.0, max_points_per_voxel=5, initial_cells=16, plane=PlaneParameters(neighbors=10, radius=1.0))
    floor = np.column_stack([rng.uniform(-20, 20, 20000), rng.uniform(-20, 20, 20000), rng.normal(0, 0.002, 20000)])
    slots = vmap.insert(floor)
    assert vmap.num_cells > 16 and len(vmap) == len(slots) <= 5 * vmap.num_cells
    assert np.all(vmap.cell_counts[: vmap.num_cells] <= 5)
    computed = vmap.ensure_normals(slots[:100])
    assert computed == 100 and vmap.ensure_normals(slots[:100]) == 0  # cached
    planar = vmap.plane_state[slots[:100]] == PLANAR
    assert planar.mean() > 0.9
    assert np.all(np.abs(vmap.normals[slots[:100]][planar, 2]) > 0.99)
    vmap.remove_far(np.zeros(3), 5.0)
    kept = vmap.point_cloud()
    assert len(kept) > 0 and np.all(np.linalg.norm(kept, axis=1) < 5.0 + 2.0 * np.sqrt(3))
    # the rebuilt table still finds every kept point
    for p in kept[::50]:
        j = nearest_point(p[0], p[1], p[2], vmap.inv_size, vmap.voxel_size, vmap.table_keys, vmap.table_values,
                          vmap.cell_counts, vmap.points, vmap.max_points_per_voxel, 1e-6)
        assert j >= 0
    with pytest.raises(ValueError):
        VoxelMap(0.0)


def test_downsample_within_a_budget_thins_a_dense_cloud_evenly_and_leaves_a_sparse_one():
    rng = np.random.default_rng(4)
    # a dense floor and two walls (a 128-beam scan's surfaces)
    floor = np.c_[rng.uniform(-20, 20, (60000, 2)), np.zeros(60000)]
    walls = np.c_[rng.uniform(-20, 20, 30000), np.repeat([-20.0, 20.0], 15000), rng.uniform(0, 3, 30000)]
    pts = np.r_[floor, walls]
    fine = voxel_downsample_indices(pts, 0.25)
    assert len(fine) > 12000
    idx = voxel_downsample_within(pts, 0.25, 12000)
    assert 6000 < len(idx) <= 12000  # under the budget, not far under it
    assert len(np.unique(idx)) == len(idx)
    # evenly in space: every 4 m square of the floor keeps points, in proportion to its area
    kept = pts[idx]
    on_floor = kept[kept[:, 2] == 0.0]
    counts = np.histogram2d(on_floor[:, 0], on_floor[:, 1], bins=10, range=[[-20, 20], [-20, 20]])[0]
    assert counts.min() > 0.5 * counts.mean()
    # within the budget already: the plain voxel downsampling, unchanged
    assert np.array_equal(voxel_downsample_within(pts, 0.25, len(fine)), fine)
    assert np.array_equal(voxel_downsample_within(pts, 0.25, 0), fine)
    # points already downsampled at that edge: every index, or a thinned subset of them
    assert np.array_equal(voxel_downsample_within(pts[fine], 0.25, 0, downsampled=True), np.arange(len(fine)))
    assert len(voxel_downsample_within(pts[fine], 0.25, 12000, downsampled=True)) <= 12000
    # a line thins slower than a surface as the edge grows: an even stride meets the budget at last
    line = np.c_[np.arange(10000) * 0.01, np.zeros((10000, 2))]
    idx = voxel_downsample_within(line, 0.01, 10)
    assert 5 <= len(idx) <= 10 and np.all(np.diff(idx) > 0)
    assert len(voxel_downsample_within(np.zeros((500, 3)), 0.25, 10)) == 1  # one spot: one voxel
