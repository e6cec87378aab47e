"""The registration loop on synthetic scenes with known truth, every strategy, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import dcreg_ros
from conftest import box_room
from dcreg_ros.core.geometry import pose_error, pose_from_xyz_rpy, transform_points
from dcreg_ros.core.registration import covariance_from_hessian


@pytest.fixture(scope="module")
def room():
    target = box_room(seed=0)
    T_true = pose_from_xyz_rpy(0.3, -0.2, 0.05, 0.01, -0.02, 0.08)
    # source = target scene seen from the moved sensor, resampled with fresh noise
    source = transform_points(np.linalg.inv(T_true), box_room(seed=1))
    return source, target, T_true


@pytest.mark.parametrize("strategy", [s for s in dcreg_ros.STRATEGIES if s != "fcn_sr"])
def test_every_strategy_registers_a_well_constrained_room(room, strategy):
    source, target, T_true = room
    res = dcreg_ros.register(source, target, strategy=strategy)
    t_err, r_err = pose_error(res.T_target_source, T_true)
    assert res.ok and res.converged
    assert t_err < 0.02 and r_err < 0.1
    assert res.degeneracy_first is not None and not res.degeneracy_last.degenerate
    assert res.covariance.shape == (6, 6) and np.all(np.isfinite(res.covariance))
    assert np.all(np.linalg.eigvalsh(res.covariance) > 0)
    assert 0.5 < res.fitness <= 1.0 and res.rmse < 0.06
    assert set(res.timings) == {"preprocess", "correspondence", "hessian", "detection", "solve"}


def test_fcn_sr_is_unit_dependent_where_dcreg_is_not(room):
    """kappa_full mixes rad and m: in a well constrained room it exceeds 10 only because of
    units, so FCN-SR remaps good directions away, while the Schur test flags nothing."""
    source, target, T_true = room
    fcn = dcreg_ros.register(source, target, strategy="fcn_sr")
    dcreg = dcreg_ros.register(source, target, strategy="dcreg")
    assert dcreg.degeneracy_first.kappa_full > 10 and not dcreg.degeneracy_first.degenerate
    assert pose_error(fcn.T_target_source, T_true)[0] > 5 * pose_error(dcreg.T_target_source, T_true)[0]


def test_corridor_flags_the_axis_along_it_and_prior_holds_it():
    rng = np.random.default_rng(5)
    n = 6000
    # walls y = +-1.5, floor z = 0, ceiling z = 2.5, all extending along x: x is unobservable
    x = rng.uniform(-15, 15, n)
    side = rng.integers(0, 4, n)
    y = np.where(side == 0, -1.5, np.where(side == 1, 1.5, rng.uniform(-1.5, 1.5, n)))
    z = np.where(side == 2, 0.0, np.where(side == 3, 2.5, rng.uniform(0, 2.5, n)))
    target = np.column_stack([x, y, z]) + rng.normal(0, 0.005, (n, 3))
    x2 = rng.uniform(-15, 15, n)
    source = np.column_stack([x2, y, z]) + rng.normal(0, 0.005, (n, 3))
    init = pose_from_xyz_rpy(0.5, 0.05, 0.0, 0, 0, 0.01)
    none = dcreg_ros.register(source, target, init, "none")
    assert none.degeneracy_first.mask[3:] == (True, False, False)
    assert "x translation" in none.degeneracy_first.describe()
    # DCReg's reference step equals Gauss-Newton; the prior keeps x at the initial guess
    prior = dcreg_ros.register(source, target, init, "dcreg_prior")
    assert abs(prior.T_target_source[0, 3] - 0.5) < 0.05
    assert abs(prior.T_target_source[1, 3]) < 0.01  # y still corrected
    # the covariance tells an estimator to distrust x
    sd = np.sqrt(np.diag(none.covariance))
    assert sd[3] > np.sqrt(10) * max(sd[4], sd[5])  # flagged means lambda_x < lambda_max / 10


def test_bad_inputs_raise_clear_errors(room):
    source, target, _ = room
    with pytest.raises(dcreg_ros.InputError, match="need at least 10"):
        dcreg_ros.register(source[:5], target)
    with pytest.raises(dcreg_ros.InputError, match="NaN/Inf"):
        dcreg_ros.register(np.full((100, 3), np.nan), target)
    with pytest.raises(dcreg_ros.InputError, match=r"\(N, 3\)"):
        dcreg_ros.register(np.zeros((10, 2)), target)
    with pytest.raises(dcreg_ros.InputError, match="init"):
        dcreg_ros.register(source, target, init=np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="unknown strategy"):
        dcreg_ros.register(source, target, strategy="magic")
    # NaN / Inf rows are dropped, not propagated
    noisy = source.copy()
    noisy[::7] = np.nan
    noisy[1::11] = np.inf
    res = dcreg_ros.register(noisy, target)
    assert res.ok and np.all(np.isfinite(res.T_target_source))


def test_no_overlap_reports_failure_without_nan(room):
    source, target, _ = room
    res = dcreg_ros.register(source + 1000.0, target)
    assert not res.ok and res.status == "too_few_correspondences"
    assert np.all(np.isfinite(res.T_target_source))


def test_covariance_is_finite_for_singular_hessian():
    H = np.diag([1e4, 1e4, 1e4, 1e3, 1e3, 0.0])
    cov = covariance_from_hessian(H, chi2=1.0, count=100)
    assert np.all(np.isfinite(cov)) and cov[5, 5] > 1e3 * cov[4, 4]


def test_crop_range_keeps_the_shell_in_order_and_reports_what_is_left():
    from dcreg_ros.core.pointcloud import InputError, crop_range

    rng = np.random.default_rng(3)
    points = rng.uniform(-20, 20, (5000, 3))
    r = np.linalg.norm(points, axis=1)
    np.testing.assert_array_equal(crop_range(points, 2.0, 15.0), points[(r >= 2.0) & (r <= 15.0)])
    np.testing.assert_array_equal(crop_range(points, 0.0, 15.0), points[r <= 15.0])
    np.testing.assert_array_equal(crop_range(points, 2.0, 0.0), points[r >= 2.0])
    assert crop_range(points, 0.0, 0.0) is points
    with pytest.raises(InputError, match="points left within range"):
        crop_range(points, 40.0, 50.0)
