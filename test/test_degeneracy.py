"""DCReg detection and mitigation against the method file's validation vectors (section 6)
and the Schur-complement facts of section 2 as property tests."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from conftest import minimal_example
from dcreg_ros.core.degeneracy import analyze_hessian, analyze_hessian_arrays, schur_complements
from dcreg_ros.core.config import DegeneracyConfig
from dcreg_ros.core.solvers import direct_solve, no_prior, pcg_solve, solve_step, strategy_code, targeted_preconditioner


def _bases(report):
    return np.stack([report.basis_rotation, report.basis_translation])


def test_minimal_example_matches_reference_numbers():
    H, g = minimal_example()
    rep = analyze_hessian(H, threshold=10.0, kappa_target=10.0)
    assert rep.ok
    assert rep.kappa_full == pytest.approx(1122.345689, abs=1e-5)
    np.testing.assert_allclose(rep.eigenvalues_rotation_raw, [1.001796, 19.881966, 36.152505], atol=1e-5)
    np.testing.assert_allclose(rep.eigenvalues_translation_raw, [0.032394, 12.252030, 24.038714], atol=1e-5)
    assert rep.kappa_rotation == pytest.approx(36.087707, abs=1e-5)
    assert rep.kappa_translation == pytest.approx(742.066396, abs=1e-5)
    assert rep.mask == (False, False, True, False, False, True)
    assert rep.degenerate_axes == ["yaw", "z"]
    np.testing.assert_allclose(rep.eigenvalues_rotation, [36.152505, 19.881966, 1.001796], atol=1e-5)
    np.testing.assert_allclose(rep.eigenvalues_translation, [24.038714, 12.252030, 0.032394], atol=1e-5)
    assert rep.clamped_eigenvalues[2] == pytest.approx(3.615250, abs=1e-5)
    assert rep.clamped_eigenvalues[5] == pytest.approx(2.403871, abs=1e-5)
    # non-degenerate directions keep their eigenvalues
    np.testing.assert_allclose(rep.clamped_eigenvalues[[0, 1, 3, 4]], [36.152505, 19.881966, 24.038714, 12.252030], atol=1e-5)

    P = targeted_preconditioner(_bases(rep), rep.clamped_eigenvalues)
    step, iterations, converged = pcg_solve(H, g, P, 20, 1e-10)
    assert converged
    assert abs(iterations - 6) <= 1
    np.testing.assert_allclose(step, [0.190398, -0.306306, -2.620922, 0.095321, -0.515479, 41.997563], atol=1e-5)
    np.testing.assert_allclose(step, np.linalg.solve(H, g), rtol=1e-9)
    ev = np.linalg.eigvals(P @ H).real
    assert ev.max() / ev.min() == pytest.approx(79.4, abs=0.05)


def test_contributions_columns_sum_to_one_and_angles_are_small_for_aligned_modes():
    H, _ = minimal_example()
    rep = analyze_hessian(H)
    np.testing.assert_allclose(rep.contributions_rotation.sum(axis=0), 1.0, atol=1e-12)
    np.testing.assert_allclose(rep.contributions_translation.sum(axis=0), 1.0, atol=1e-12)
    assert np.all(rep.mode_angles_deg < 5.0)
    # sign convention: the aligned eigenvector has a non-negative component on its own axis
    assert np.all(np.diag(rep.basis_rotation) >= 0) and np.all(np.diag(rep.basis_translation) >= 0)


def test_singular_block_reports_detection_failure_and_falls_back_to_direct_solve():
    H, g = minimal_example()
    H[3:, 3:] = 0.0  # translation block not invertible
    H[:3, 3:] = H[3:, :3] = 0.0
    ok, *_ = analyze_hessian_arrays(H, 10.0, 10.0)
    assert not ok
    rep = analyze_hessian(H)
    assert rep.mask == (True,) * 6 and "failed" in rep.describe()
    arrays = analyze_hessian_arrays(H, 10.0, 10.0)
    step, _, fallback = solve_step(H, g, strategy_code("dcreg"), arrays, DegeneracyConfig().solver_parameters(), no_prior())
    assert fallback and np.all(np.isfinite(step))


def _random_jacobian(seed: int, rows: int, weak: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    J = rng.normal(size=(rows, 6))
    J[:, 5] *= weak  # one weak direction makes the problems interesting
    return J


jacobians = st.builds(_random_jacobian, st.integers(0, 10_000), st.integers(12, 60), st.floats(1e-2, 1.0))


@settings(max_examples=60, deadline=None)
@given(jacobians)
def test_schur_complement_equals_projection_form(J):
    H = J.T @ J
    S_R, S_t, ok = schur_complements(H)
    assert ok
    J_R, J_t = J[:, :3], J[:, 3:]
    P_t = J_t @ np.linalg.pinv(J_t)
    P_R = J_R @ np.linalg.pinv(J_R)
    np.testing.assert_allclose(S_R, J_R.T @ (np.eye(len(J)) - P_t) @ J_R, rtol=1e-6, atol=1e-8 * np.abs(H).max())
    np.testing.assert_allclose(S_t, J_t.T @ (np.eye(len(J)) - P_R) @ J_t, rtol=1e-6, atol=1e-8 * np.abs(H).max())


@settings(max_examples=60, deadline=None)
@given(jacobians, st.floats(1e-3, 1e3))
def test_rotation_schur_complement_is_invariant_to_translation_units(J, scale):
    S_R, _, _ = schur_complements(J.T @ J)
    J2 = J.copy()
    J2[:, 3:] *= scale  # express translation in other units
    S_R2, _, _ = schur_complements(J2.T @ J2)
    np.testing.assert_allclose(S_R2, S_R, rtol=1e-6, atol=1e-9 * np.abs(S_R).max())


@settings(max_examples=60, deadline=None)
@given(jacobians)
def test_schur_complement_is_below_diagonal_block_in_loewner_order(J):
    H = J.T @ J
    S_R, S_t, _ = schur_complements(H)
    tol = 1e-9 * np.abs(H).max()
    assert np.linalg.eigvalsh(H[:3, :3] - S_R).min() >= -tol
    assert np.linalg.eigvalsh(H[3:, 3:] - S_t).min() >= -tol


@settings(max_examples=60, deadline=None)
@given(jacobians, arrays(np.float64, 6, elements=st.floats(-10, 10)))
def test_reduced_rotation_solution_equals_full_solve(J, g):
    H = J.T @ J
    S_R, _, _ = schur_complements(H)
    phi = np.linalg.solve(S_R, g[:3] - H[:3, 3:] @ np.linalg.solve(H[3:, 3:], g[3:]))
    np.testing.assert_allclose(phi, np.linalg.solve(H, g)[:3], rtol=1e-6, atol=1e-8 * (1 + np.abs(phi).max()))


@settings(max_examples=60, deadline=None)
@given(jacobians, arrays(np.float64, 6, elements=st.floats(-10, 10)).filter(lambda g: np.linalg.norm(g) > 0.1), st.floats(10.0, 50.0))
def test_pcg_equals_direct_solve_and_clamping_bounds_the_condition_number(J, g, kappa_target):
    # the guarantee kappa(S~) <= kappa_target holds when kappa_target >= the detection threshold (10)
    H = J.T @ J
    ok, _, _, _, _, aligned, bases, mask, clamped = analyze_hessian_arrays(H, 10.0, kappa_target)
    assert ok
    P = targeted_preconditioner(bases, clamped)
    # tolerance relative to |g|: the reference's absolute 1e-6 * max(1, |g|) is meant for ICP steps
    x, _, converged = pcg_solve(H, g, P, 200, 1e-9 / max(1.0, np.linalg.norm(g)) * np.linalg.norm(g) + 1e-12)
    assert converged
    direct = direct_solve(H, g)
    assert np.linalg.norm(x - direct) <= 1e-6 * np.linalg.norm(direct)
    for s in range(2):
        c = clamped[3 * s: 3 * s + 3]
        assert c.max() / c.min() <= kappa_target * (1 + 1e-9)
        # only degenerate directions are changed
        keep = ~mask[3 * s: 3 * s + 3]
        np.testing.assert_array_equal(c[keep], aligned[3 * s: 3 * s + 3][keep])
