"""`make demo`: the package's main job on built-in data.

1. Odometry through a degenerate scene: simulates a featureless corridor into a ROS 2 bag,
   runs the odometry on it with the default strategy and with plain Gauss-Newton (`none`), prints
   the comparison (ATE, RPE, ms/frame, detection precision/recall) and writes the plots under
   out/demo/.
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


def odometry_demo(out: Path, scene: str, frames: int, beams: int) -> None:
    from .core.odometry import OdometryConfig
    from .eval.compare import compare_methods, format_compare_table
    from .eval.offline import run_into_folder, write_run_plots
    from .io.datasets import open_dataset
    from .sim import load_degeneracy_truth, simulate, write_simulation

    bag = out / f"{scene}_bag"
    if bag.exists():
        shutil.rmtree(bag)
    print(f"Odometry through a degenerate scene: simulating '{scene}' ({frames} frames, {beams} beams) -> {bag}")
    t0 = time.perf_counter()
    sim = simulate(scene, frames=frames, beams=beams, seed=7)
    write_simulation(sim, bag, storage="mcap")
    print(f"  simulated and wrote the bag in {time.perf_counter() - t0:.1f} s; ground truth path "
          f"{sim.ground_truth.path_length():.1f} m; truly unobservable: "
          + (", ".join(flagged_axes(sim.nominal_mask)) or "nothing"))
    config = OdometryConfig()
    default = config.degeneracy.strategy
    comparison = compare_methods(str(bag), [default, "none"], ["kiss_icp"], config, quiet=True)
    print(format_compare_table(comparison.rows))
    truth = load_degeneracy_truth(bag / "degeneracy_truth.json")
    for strategy in (default, "none"):
        report = run_into_folder(open_dataset(str(bag)), out / f"run_{strategy}", config, strategy)
        write_run_plots(report.result, report.out_dir, sim.ground_truth, truth)
    print(f"  plots and trajectories: {out}/run_{default}/ and {out}/run_none/ (trajectory.png, degeneracy.png, diagnostics.csv);"
          f" trajectory.png shows each estimate SE(3)-aligned to the ground truth, as the ATE uses it")


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
    odometry_demo(args.out, args.scene, args.frames, args.beams)
    print()
    ros_demo(args.out)
    print()
    pairwise_demo(args.data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
