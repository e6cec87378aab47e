"""Plots of odometry runs: where the scene was degenerate, along which axis, how badly."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..core.degeneracy import AXIS_NAMES

if TYPE_CHECKING:
    from ..io.trajectory import Trajectory
    from .metrics import TrajectoryErrors
    from .runner import RunResult

AXIS_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#d62728", "#ff7f0e", "#1f77b4")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; works without a display
    import matplotlib.pyplot as plt

    return plt


def plot_trajectory(result: "RunResult", path: Path, ground_truth: "Trajectory | None" = None) -> "TrajectoryErrors | None":
    """Top view coloured by which axes were flagged (grey: none).

    With ``ground_truth`` the estimate is drawn in the ground truth's frame, moved by the same
    alignment the ATE uses (SE(3) Umeyama, or the first pose when that is undetermined), and the
    title says so; without it, in its own odom frame. Returns the errors used for the alignment
    (None without ground truth or when the two cannot be associated).
    """
    from ..core.pointcloud import InputError
    from .metrics import trajectory_errors

    plt = _pyplot()
    traj = result.trajectory
    masks = result.masks
    errors, why_not = None, ""
    if ground_truth is not None and len(ground_truth):
        try:
            errors = trajectory_errors(traj, ground_truth)
        except InputError as exc:
            why_not = f"ground truth not drawn: {exc}"
    fig, ax = plt.subplots(figsize=(8, 6))
    poses = traj.poses if errors is None else errors.T_reference_estimate @ traj.poses
    if errors is not None:
        gt = ground_truth.positions
        ax.plot(gt[:, 0], gt[:, 1], color="0.6", lw=1, ls="--", label="ground truth")
    _flagged_path(ax, poses[:, :2, 3], masks, "estimate (odom frame)" if errors is None else f"estimate ({errors.alignment} aligned)")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_aspect("equal", adjustable="datalim")
    head = f"trajectory ({result.strategy}, {len(traj)} frames), coloured by flagged axis"
    if errors is not None:
        frame = f"in the ground-truth frame: estimate aligned as for the ATE ({errors.describe_alignment()}; ATE {errors.ate_rmse:.3f} m)"
    else:
        frame = "estimate in its own odom frame" + (f" ({why_not})" if why_not else "")
    ax.set_title(f"{head}\n{frame}", fontsize=9)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return errors


def _flagged_path(ax, xy: np.ndarray, masks: np.ndarray, label: str | None = None) -> None:
    """A top-view path with its frames coloured by the flagged axes (grey: none)."""
    ax.plot(xy[:, 0], xy[:, 1], color="0.3", lw=0.8, zorder=1, label=label)
    clean = ~masks.any(axis=1)
    ax.scatter(xy[clean, 0], xy[clean, 1], s=6, color="0.5", label="well constrained", zorder=2)
    for i, (name, color) in enumerate(zip(AXIS_NAMES, AXIS_COLORS)):
        sel = masks[:, i]
        if sel.any():
            ax.scatter(xy[sel, 0], xy[sel, 1], s=14 - i, color=color, label=f"{name} degenerate", zorder=3 + i)


MAP_PLOT_POINTS = 300_000  # map points drawn at most (an even subset)


def plot_localization(run, path: Path, map_points: np.ndarray | None = None) -> None:
    """Top view of a localization run over the map (grey density of the map points), frames
    coloured by flagged axis, DEGRADED and LOST frames marked."""
    plt = _pyplot()
    traj = run.trajectory
    fig, ax = plt.subplots(figsize=(9, 6))
    xy = traj.positions[:, :2]
    if map_points is not None and len(map_points):
        sample = np.asarray(map_points[:: max(1, len(map_points) // MAP_PLOT_POINTS)], dtype=np.float64)
        lo = np.minimum(sample[:, :2].min(axis=0), xy.min(axis=0)) - 1.0
        hi = np.maximum(sample[:, :2].max(axis=0), xy.max(axis=0)) + 1.0
        bins = np.clip(((hi - lo) / 0.2).astype(int), 10, 800)
        hist, xe, ye = np.histogram2d(sample[:, 0], sample[:, 1], bins=bins, range=[[lo[0], hi[0]], [lo[1], hi[1]]])
        ax.imshow(np.log1p(hist.T), origin="lower", extent=(xe[0], xe[-1], ye[0], ye[-1]), cmap="Greys", alpha=0.6,
                  aspect="equal", zorder=0)
    _flagged_path(ax, xy, run.masks)
    states = run.tracking
    for state, marker, color in (("DEGRADED", "o", "#ff7f0e"), ("LOST", "x", "k")):
        sel = states == state
        if sel.any():  # an open circle has an edge colour; an "x" has no face and is drawn in its colour
            style = {"facecolors": "none", "edgecolors": color} if marker == "o" else {"color": color}
            ax.scatter(xy[sel, 0], xy[sel, 1], s=30, marker=marker, label=f"{state} ({int(sel.sum())})", zorder=10, **style)
    ax.set_xlabel("x (m, map frame)")
    ax.set_ylabel("y (m, map frame)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(f"localization ({run.strategy}, {len(traj)} frames) over the map, coloured by flagged axis")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_degeneracy(result: "RunResult", path: Path, truth: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """kappa_R / kappa_t over time (log) and a per-axis raster of flagged directions."""
    plt = _pyplot()
    recs = [r for r in result.records if r.degeneracy is not None]
    t0 = result.records[0].stamp if result.records else 0.0
    t = np.array([r.stamp - t0 for r in recs])
    kr = np.array([r.degeneracy.kappa_rotation for r in recs])
    kt = np.array([r.degeneracy.kappa_translation for r in recs])
    masks = np.array([r.degeneracy.mask for r in recs], dtype=bool).reshape(-1, 6)
    rows = 3 if truth is not None else 2
    fig, axes = plt.subplots(rows, 1, figsize=(10, 2.6 * rows), sharex=True)
    ax = axes[0]
    ax.semilogy(t, kr, label="kappa_R (rotation, Schur)")
    ax.semilogy(t, kt, label="kappa_t (translation, Schur)")
    threshold = recs[0].degeneracy.threshold if recs else 10.0
    ax.axhline(threshold, color="k", ls=":", lw=1, label=f"threshold {threshold:g}")
    ax.set_ylabel("condition number")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(f"degeneracy over time ({result.strategy})")
    _raster(axes[1], t, masks, "flagged (estimated)")
    if truth is not None:
        stamps, true_masks = truth
        _raster(axes[2], np.asarray(stamps) - t0, np.asarray(true_masks, dtype=bool), "degenerate (truth)")
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _raster(ax, t: np.ndarray, masks: np.ndarray, title: str) -> None:
    for i, (name, color) in enumerate(zip(AXIS_NAMES, AXIS_COLORS)):
        sel = masks[:, i] if len(masks) else np.zeros(0, bool)
        ax.scatter(t[sel], np.full(sel.sum(), i), marker="|", s=60, color=color)
    ax.set_yticks(range(6))
    ax.set_yticklabels(AXIS_NAMES)
    ax.set_ylim(-0.7, 5.7)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)


def plot_errors(errors: "TrajectoryErrors", path: Path, label: str = "estimate",
                flags: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """Aligned estimate over the reference (top view), the ATE over time and the error per axis.

    The per-axis panel shows the translation error in the reference's body frame (x forward,
    y left, z up), where a degenerate direction shows up as error along one axis; ``flags``
    (stamps, (N, 6) masks of flagged axes, e.g. from diagnostics.csv) marks the frames where that
    axis was flagged.
    """
    plt = _pyplot()
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(17, 4.8))
    ref = errors.reference[:, :3, 3]
    est = errors.estimate_aligned[:, :3, 3]
    a.plot(ref[:, 0], ref[:, 1], "k--", lw=1, label="reference")
    a.plot(est[:, 0], est[:, 1], lw=1.2, label=f"{label} ({errors.alignment} aligned)")
    a.set_aspect("equal", adjustable="datalim")
    a.set_xlabel("x (m)")
    a.set_ylabel("y (m)")
    a.set_title(f"reference frame; {errors.describe_alignment()}", fontsize=8)
    a.legend(fontsize=8)
    t = errors.stamps - errors.stamps[0]
    b.plot(t, errors.ate_series)
    b.set_xlabel("time (s)")
    b.set_ylabel("translation error (m)")
    b.set_title(f"ATE rmse {errors.ate_rmse:.3f} m, RPE rmse {errors.rpe_rmse:.4f} m / {errors.rpe_delta} frame", fontsize=9)
    body = errors.body_errors()
    flagged = _flags_at(errors.stamps, flags)
    for k, name in enumerate(AXIS_NAMES[3:]):
        color = AXIS_COLORS[3 + k]
        c.plot(t, body[:, k], color=color, lw=1, label=f"{name} error")
        if flagged is not None and flagged[:, 3 + k].any():
            sel = flagged[:, 3 + k]
            c.scatter(t[sel], body[sel, k], s=8, color=color, label=f"{name} flagged degenerate")
    c.axhline(0.0, color="k", lw=0.5)
    c.set_xlabel("time (s)")
    c.set_ylabel("error in the reference body frame (m)")
    c.set_title("error per axis (x forward, y left, z up)" + ("; dots: that axis flagged" if flagged is not None else ""), fontsize=9)
    c.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _flags_at(stamps: np.ndarray, flags: tuple[np.ndarray, np.ndarray] | None, max_dt: float = 0.02) -> np.ndarray | None:
    """Masks of ``flags`` at the nearest flag stamp of each of ``stamps`` (False when none within max_dt)."""
    from .metrics import nearest_stamps

    if flags is None or len(flags[0]) == 0:
        return None
    f_stamps, f_masks = np.asarray(flags[0], dtype=np.float64), np.asarray(flags[1], dtype=bool).reshape(-1, 6)
    order = np.argsort(f_stamps)
    j, near = nearest_stamps(f_stamps[order], stamps, max_dt)
    out = f_masks[order][j]
    out[~near] = False
    return out
