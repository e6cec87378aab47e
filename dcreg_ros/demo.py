"""`make demo`: the package's main job on built-in data.

1. Odometry through a degenerate scene: simulates a featureless corridor (with the robot's IMU
   and wheel odometry) into a ROS 2 bag, runs the odometry LiDAR only (default, plain
   Gauss-Newton `none`, KISS-ICP) and with the wheels and the IMU, prints ATE, the error along the
   corridor, the uncertainty published for it and how honest it is, and writes plots under out/demo/.
2. Pairwise registration: every real pair of ../shared/data and the DCReg paper's cylinder, with
   time, error against the reference and the degeneracy report in words.
"""

from __future__ import annotations

import argparse
import importlib.util
import csv
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from . import RegistrationConfig, register
from .core.degeneracy import flagged_axes
from .core.geometry import pose_error, pose_from_xyz_rpy
from .core.interrupts import ctrl_c_at_checkpoints, ctrl_c_checkpoint
from .io.cloud_files import read_cloud
from .eval.shared_data import shared_data_dir

ROOT = Path(__file__).resolve().parents[1]
DATA = shared_data_dir()


def _row(name: str, ms: float, error: str, words: str) -> str:
    return f"{name:<20} {ms:>8.1f}  {error:<26} {words}"


def pairwise_demo(data: Path) -> None:
    print("Pairwise registration (identity start, default settings, strategy dcreg)")
    print(_row("pair", 0, "error vs reference", "degeneracy (first iteration)").replace("     0.0", "      ms"))
    with open(data / "pairs.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for row in rows:
        ctrl_c_checkpoint()
        source = read_cloud(data / row["source"]).points
        target = read_cloud(data / row["target"]).points
        register(source, target)  # warm-up: numba caches and allocations
        t0 = time.perf_counter()
        res = register(source, target)
        ms = (time.perf_counter() - t0) * 1e3
        T_ref = np.array([float(x) for x in row["T_target_source_rowmajor"].split()]).reshape(4, 4)
        if np.isfinite(T_ref).all():
            t_err, r_err = pose_error(res.T_target_source, T_ref)
            error = f"{t_err * 100:.2f} cm / {r_err:.3f} deg"
        else:
            error = f"no reference (x {res.T_target_source[0, 3]:+.3f} m)"
        print(_row(row["name"], ms, error, res.degeneracy_first.describe()))
    cloud = read_cloud(data / "dcreg_cylinder" / "target_clouds.pcd").points
    init = pose_from_xyz_rpy(0.2, 0.8, 0.5, *np.radians([0.1, 0.1, 2.0]))
    config = RegistrationConfig.reference(1.0)
    register(cloud, cloud, init, "dcreg", config)
    t0 = time.perf_counter()
    res = register(cloud, cloud, init, "dcreg", config)
    ms = (time.perf_counter() - t0) * 1e3
    t_err, r_err = pose_error(res.T_target_source, np.eye(4))
    print(_row("cylinder (reference)", ms, f"{t_err * 100:.2f} cm / {r_err:.3f} deg", res.degeneracy_first.describe()))
    print("  (reference code: 2.71 cm / 0.051 deg, z translation degenerate)")


DEMO_SEED = 1  # the odometry benchmark's first seed (its medians over seeds 1-3 are in benchmarks/RESULTS.md)


def odometry_demo(out: Path, scene: str, frames: int, beams: int, seed: int = DEMO_SEED) -> None:
    """The degenerate scene LiDAR only (default, `none`, KISS-ICP) and with the wheel odometry
    and the IMU the simulator recorded, through the same code as `dcreg run` and the benchmark:
    ATE, how far off x (the corridor's axis) ends, the uncertainty published for it, and whether
    that uncertainty is honest (x's NEES of the per-frame motion, 1 = honest)."""
    from .core.odometry import OdometryConfig
    from .eval.compare import PEERS, run_kiss_icp
    from .eval.metrics import motion_consistency, trajectory_errors
    from .eval.offline import run_into_folder, write_run_plots
    from .io.datasets import open_dataset
    from .io.motion_inputs import load_motion_inputs
    from .sim import load_degeneracy_truth, simulate, write_simulation

    bag = out / f"{scene}_bag"
    if bag.exists():
        shutil.rmtree(bag)
    print(f"Odometry through a degenerate scene: simulating '{scene}' ({frames} frames, {beams} beams, seed {seed}: the "
          f"benchmark's first; its medians over seeds 1-3 are in benchmarks/RESULTS.md) -> {bag}")
    t0 = time.perf_counter()
    sim = simulate(scene, frames=frames, beams=beams, seed=seed)
    write_simulation(sim, bag, storage="mcap")
    print(f"  simulated and wrote the bag (scans, ground truth, /imu, /wheel/odom, /tf_static) in {time.perf_counter() - t0:.1f} s; "
          f"path {sim.ground_truth.path_length():.1f} m; left weak by the scene's design: "
          + (", ".join(flagged_axes(sim.nominal_mask)) or "nothing"))
    truth = load_degeneracy_truth(bag / "degeneracy_truth.json")
    gt = sim.ground_truth
    runs = [("default (LiDAR only)", "dcreg_prior", None), ("none (LiDAR only)", "none", None),
            ("default + wheel odometry", "dcreg_prior", (None, "/wheel/odom")), ("default + IMU", "dcreg_prior", ("/imu", None)),
            ("default + IMU + wheel", "dcreg_prior", ("/imu", "/wheel/odom"))]
    rows, plotted = [], {}
    for label, strategy, topics in runs:
        motion = load_motion_inputs(bag, *topics) if topics else None
        name = label.split(" (")[0].replace(" + ", "_").replace(" ", "_")
        report = run_into_folder(open_dataset(str(bag)), out / f"run_{name}", OdometryConfig(), strategy, motion=motion)
        if report.result.stop.interrupted:  # Ctrl-C: the run kept its frames in its folder; the demo ends
            print(f"  {label}: {report.result.stop.reason} after {len(report.result.records)} frames ({report.out_dir})")
            raise KeyboardInterrupt
        records = report.result.records
        if strategy == "dcreg_prior" and topics is None:
            write_run_plots(report.result, report.out_dir, gt, truth)
        x_error = report.errors.body_errors()[-1, 0] if report.errors is not None else float("nan")
        nees = motion_consistency([r.stamp for r in records], [r.pose for r in records], [r.covariance for r in records], gt)
        rows.append((label, report.errors.ate_rmse if report.errors else float("nan"), x_error, records[-1].pose_std[3],
                     nees.nees[3], np.mean([r.degenerate_mask[3] for r in records[1:]]), float(np.median(report.result.frame_ms()))))
        plotted[label] = records
    kiss = run_kiss_icp(str(bag), None, OdometryConfig(), None, None) if "kiss_icp" in PEERS else None
    if kiss is not None and kiss.stop.interrupted:
        raise KeyboardInterrupt
    if kiss is not None and kiss.stop.completed:
        e = trajectory_errors(kiss.trajectory, gt)
        rows.append(("KISS-ICP", e.ate_rmse, e.body_errors()[-1, 0], float("nan"), float("nan"), float("nan"), kiss.ms_per_frame or float("nan")))
    print(f"  {'method':<26} {'ATE m':>7} {'x error at end m':>17} {'published std x m':>18} {'x NEES':>7} {'x weak':>7} {'ms/frame':>9}")
    for label, ate, x_err, std_x, nees_x, weak, ms in rows:
        print(f"  {label:<26} {ate:>7.3f} {x_err:>+17.3f} {std_x:>18.3f} {nees_x:>7.2f} {weak:>7.0%} {ms:>9.1f}")
    print("  x NEES: mean of err^2 / variance of each frame's motion along x (1 = the published uncertainty is honest, "
          ">1 too confident, <1 too cautious); x weak: share of frames x was found weak (relative or absolute test)")
    path = _plot_corridor_axis(plotted, gt, out / "corridor_x.png")
    print(f"  {path}: the error along x and the published +-2 sigma around it; per run: {out}/run_*/ "
          "(trajectory.png, degeneracy.png, errors.png, diagnostics.csv with std_* and pose_std_*)")


def _plot_corridor_axis(runs: dict, gt, path: Path) -> Path:
    """Error along the body x axis over time with the published +-2 sigma of the accumulated pose."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .core.geometry import invert_pose

    fig, ax = plt.subplots(figsize=(8, 4))
    ref = {round(float(t), 6): T for t, T in zip(gt.stamps, gt.poses)}
    for label, records in runs.items():
        T0, G0 = records[0].pose, ref[round(records[0].stamp, 6)]
        t = np.array([r.stamp - records[0].stamp for r in records])
        err = np.array([(invert_pose(invert_pose(G0) @ ref[round(r.stamp, 6)]) @ (invert_pose(T0) @ r.pose))[0, 3] for r in records])
        std = np.array([r.pose_std[3] for r in records])
        line, = ax.plot(t, err, lw=1.2, label=label)
        ax.fill_between(t, err - 2 * std, err + 2 * std, color=line.get_color(), alpha=0.12)
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("error along x (m); band: +-2 published std")
    ax.set_title("Along the corridor: the error and the uncertainty each run publishes")
    ax.set_ylim(-2, 2)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def ros_demo(out: Path) -> None:
    """A short simulated corridor replayed through dcreg_node over the real middleware."""
    if importlib.util.find_spec("rclpy") is None:
        print("ROS 2 replay: rclpy is not importable here; skipped (make demo installs it in .venv)")
        return
    from .nodes.replay_demo import replay_through_node, summarize_replay
    from .sim import simulate, write_simulation

    bag = out / "ros_replay_bag"
    if bag.exists():
        shutil.rmtree(bag)
    # the featureless part only (12 s in, past the entrance), 40 frames
    short = simulate("corridor", frames=160, beams=16, seed=3).frames(120)
    write_simulation(short, bag, storage="mcap")
    print(f"ROS 2 replay: dcreg_node (config/dcreg.yaml, sim time) + dcreg_bag_player --sync on {len(short.scans)} corridor clouds")
    record = replay_through_node(bag, ROOT / "config" / "dcreg.yaml")
    print(summarize_replay(record, short.ground_truth))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dcreg_ros.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder with pairs.tsv (default ../shared/data)")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "demo", help="output folder (default out/demo)")
    parser.add_argument("--scene", default="corridor", help="simulated scene for the odometry part")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--beams", type=int, default=32)
    args = parser.parse_args(argv)
    if not (args.data / "pairs.tsv").exists():
        print(f"demo: {args.data}/pairs.tsv not found (set --data or DCREG_SHARED_DATA)", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        with ctrl_c_at_checkpoints():  # between two frames, never inside a kernel (core/interrupts.py)
            odometry_demo(args.out, args.scene, args.frames, args.beams)
            print()
            ros_demo(args.out)
            print()
            pairwise_demo(args.data)
    except KeyboardInterrupt:
        print("demo: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
