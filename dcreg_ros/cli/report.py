"""Readable text for registration results and degeneracy reports (CLI and demo output)."""

from __future__ import annotations

import numpy as np

from ..core.degeneracy import AXIS_NAMES, DegeneracyReport
from ..core.geometry import pose_to_xyz_rpy
from ..core.global_registration import GlobalRegistrationConfig, GlobalRegistrationResult
from ..core.registration import RegistrationResult


def format_pose(T: np.ndarray) -> str:
    x, y, z, roll, pitch, yaw = pose_to_xyz_rpy(T)
    return (
        f"x {x:+.4f}  y {y:+.4f}  z {z:+.4f} m   "
        f"roll {np.degrees(roll):+.4f}  pitch {np.degrees(pitch):+.4f}  yaw {np.degrees(yaw):+.4f} deg"
    )


def format_matrix(M: np.ndarray, indent: str = "  ", fmt: str = "{:+.6f}") -> str:
    return "\n".join(indent + "  ".join(fmt.format(v) for v in row) for row in M)


def degeneracy_table(report: DegeneracyReport) -> str:
    """Per-axis table: aligned eigenvalue, ratio to the subspace maximum, angle to axis, flag."""
    if not report.ok:
        return "  " + report.describe()
    eig, ratios = report.eigenvalues, report.eigenvalue_ratios
    lines = ["  axis    eigenvalue   ratio   off-axis  flagged"]
    for a, name in enumerate(AXIS_NAMES):
        lines.append(
            f"  {name:<6} {eig[a]:>11.4g} {ratios[a]:>7.1f} {report.mode_angles_deg[a]:>8.1f}d  {'DEGENERATE' if report.mask[a] else '-'}"
        )
    lines.append(
        f"  kappa_R {report.kappa_rotation:.2f}   kappa_t {report.kappa_translation:.2f}   kappa_full {report.kappa_full:.1f}"
        f"   (threshold {report.threshold:g})"
    )
    return "\n".join(lines)


def standard_deviations(covariance: np.ndarray) -> str:
    sd = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    rot = ", ".join(f"{n} {np.degrees(s):.3g} deg" for n, s in zip(AXIS_NAMES[:3], sd[:3]))
    trans = ", ".join(f"{n} {s:.3g} m" for n, s in zip(AXIS_NAMES[3:], sd[3:]))
    return f"{rot}; {trans}"


def format_result(result: RegistrationResult, title: str = "") -> str:
    t = result.timings
    total = sum(t.values())
    timing = ", ".join(f"{k} {v:.1f}" for k, v in t.items())
    lines = []
    if title:
        lines.append(title)
    lines += [
        f"status        {result.status} after {result.iterations} iterations, strategy {result.strategy}",
        f"time          {total:.1f} ms ({timing})",
        f"pose          {format_pose(result.T_target_source)}",
        "T_target_source",
        format_matrix(result.T_target_source),
        f"fit           rmse {result.rmse:.4f} m, fitness {result.fitness:.3f}, {result.num_correspondences} correspondences",
        f"1-sigma       {standard_deviations(result.covariance)}",
    ]
    for label, rep in (("first", result.degeneracy_first), ("last", result.degeneracy_last)):
        if rep is None:
            continue
        lines.append(f"degeneracy ({label} iteration): {rep.describe()}")
        lines.append(degeneracy_table(rep))
    return "\n".join(lines)


def format_global_result(result: GlobalRegistrationResult, config: GlobalRegistrationConfig, title: str = "") -> str:
    """Report of ``register --global``: the success test, coarse and refined poses, time per stage,
    then the refinement's own report (degeneracy per axis)."""
    t = result.timings
    stages = ", ".join(f"{k} {v:.1f}" for k, v in t.items() if k != "total")
    verdict = "success" if result.success else "FAILED"
    lines = [title] if title else []
    lines += [
        f"global        {verdict}: fitness {result.fitness:.3f} (share of source points within {config.verification.distance:g} m), "
        f"inlier rmse {result.inlier_rmse:.3f} m",
        f"features      {result.num_feature_matches} mutual matches, {result.num_inliers} consistent with the result, "
        f"{result.num_hypotheses} hypotheses (voxel {config.features.voxel_size:g} m), ambiguity {result.ambiguity:.2f}",
        f"coarse        {format_pose(result.coarse)}",
        f"refined       {format_pose(result.T_target_source)}",
        f"time          {t.get('total', 0.0):.1f} ms ({stages})",
        "",
        format_result(result.refinement, "DCReg refinement from the coarse pose:"),
    ]
    return "\n".join(lines)
