"""`dcreg simulate | run | eval | compare`: trajectories, not pairs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..core.odometry import OdometryConfig
from ..core.solvers import STRATEGIES
from .errors import CliError


def _config(path: str | None) -> OdometryConfig:
    return OdometryConfig() if path is None else OdometryConfig.from_yaml(path)


def _open(path: str, topic: str | None):
    from ..io.datasets import open_dataset

    return open_dataset(path, topic=topic)


def _truth_for(path: str):
    """Per-frame degeneracy truth stored by the simulator next to a bag, if any."""
    from ..sim import load_degeneracy_truth

    p = Path(path)
    for candidate in (p / "degeneracy_truth.json", p.parent / "degeneracy_truth.json"):
        if candidate.exists():
            return load_degeneracy_truth(candidate)
    return None


# ------------------------------------------------------------------------------------ simulate
def add_simulate(p: argparse.ArgumentParser) -> None:
    from ..sim import SCENE_NAMES

    p.add_argument("scene", choices=SCENE_NAMES, help="scene to simulate")
    p.add_argument("--out", required=True, help="output ROS 2 bag directory (must not exist)")
    p.add_argument("--frames", type=int, default=300, help="number of scans (default 300)")
    p.add_argument("--beams", type=int, default=32, choices=(16, 32, 64, 128), help="LiDAR beams (default 32)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--noise", type=float, default=0.015, help="range noise standard deviation, m (default 0.015)")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="bag storage (default mcap)")
    p.set_defaults(func=run_simulate)


def run_simulate(args: argparse.Namespace) -> int:
    from ..sim import simulate, write_simulation

    if args.frames < 2:
        raise CliError("--frames must be at least 2")
    if not (np.isfinite(args.noise) and args.noise >= 0):
        raise CliError("--noise must be >= 0")
    if Path(args.out).exists():
        raise CliError(f"{args.out} already exists; choose a new --out")
    result = simulate(args.scene, frames=args.frames, beams=args.beams, seed=args.seed, noise=args.noise)
    write_simulation(result, args.out, storage=args.storage)
    points = np.mean([len(s) for s in result.scans])
    weak = [a for a, m in zip(("roll", "pitch", "yaw", "x", "y", "z"), result.nominal_mask) if m]
    print(f"wrote {args.out}: {len(result.scans)} scans of {args.scene} ({args.beams} beams, {points:.0f} points/scan), "
          f"{result.ground_truth.path_length():.1f} m path; unobservable: {', '.join(weak) or 'nothing'}")
    return 0


# ----------------------------------------------------------------------------------------- run
def add_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="ROS 1/2 bag (file or directory) or a folder of PCD/PLY/BIN files")
    p.add_argument("--topic", help="PointCloud2 topic (default: the only one in the bag)")
    p.add_argument("--config", help="odometry config YAML (see config/odometry.yaml)")
    p.add_argument("--strategy", choices=STRATEGIES, help="solve strategy (default from the config)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--no-plots", action="store_true", help="skip trajectory.png and degeneracy.png")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--save-map", metavar="MAP.pcd", help="also write every registered frame as a binary PCD map (world frame)")
    p.add_argument("--map-voxel", type=float, default=0.1, metavar="M", help="one map point per voxel of this edge, m (default 0.1)")
    p.set_defaults(func=run_run)


def run_run(args: argparse.Namespace) -> int:
    from ..eval.runner import Progress, run_odometry, write_run_outputs

    config = _config(args.config)
    global_map = _map_accumulator(args)
    dataset = _open(args.input, args.topic)
    out = Path(args.out)
    progress = Progress(len(dataset), enabled=not args.quiet)
    result = run_odometry(dataset, config, args.strategy, progress, args.max_frames, global_map=global_map)
    if not result.records:
        raise CliError(f"no frame of {args.input} could be registered ({len(result.skipped)} skipped: "
                       f"{result.skipped[0][1] if result.skipped else 'empty input'})")
    summary = write_run_outputs(result, out, plots=not args.no_plots)
    truth = _truth_for(args.input)
    if truth is not None and not args.no_plots:
        from ..eval.plots import plot_degeneracy

        plot_degeneracy(result, out / "degeneracy.png", truth)
    gt = dataset.ground_truth
    lines = [f"frames           {summary['frames']} registered, {summary['skipped']} skipped"
             + (f" (first: {result.skipped[0][1]})" if result.skipped else ""),
             f"time             {summary['ms_per_frame_median']:.1f} ms/frame median, {summary['ms_per_frame_p95']:.1f} p95, {summary['wall_hz']:.1f} Hz wall",
             f"path             {summary['path_length_m']:.2f} m",
             f"degenerate       {summary['degenerate_frames']} frames; per axis "
             + ", ".join(f"{a} {n}" for a, n in summary["degenerate_frames_per_axis"].items())]
    if gt is not None and len(gt) > 1:
        from ..eval.metrics import trajectory_errors

        errors = trajectory_errors(result.trajectory, gt)
        summary.update({"ate_rmse_m": errors.ate_rmse, "rpe_rmse_m": errors.rpe_rmse})
        lines.append(f"accuracy         ATE {errors.ate_rmse:.3f} m, RPE {errors.rpe_rmse:.4f} m/frame (ground truth in the input)")
        (out / "summary.json").write_text(json.dumps({**json.loads((out / "summary.json").read_text()), **summary}, indent=2))
    print(f"dcreg run: {args.input} -> {out} (strategy {result.strategy})")
    print("\n".join(lines))
    print(f"wrote trajectory_tum.txt, trajectory_kitti.txt, diagnostics.csv, summary.json{'' if args.no_plots else ', trajectory.png, degeneracy.png'}")
    if global_map is not None:
        print(_save_map(global_map, args.save_map))
    return 0


def _map_accumulator(args: argparse.Namespace):
    """The map --save-map fills (None without it); the destination is checked before the run."""
    if not args.save_map:
        return None
    from ..core.global_map import GlobalMap
    from ..io.maps import check_map_destination

    if not (np.isfinite(args.map_voxel) and args.map_voxel > 0):
        raise CliError("--map-voxel must be > 0 m")
    check_map_destination(args.save_map)
    return GlobalMap(args.map_voxel)


def _save_map(global_map, path: str) -> str:
    from ..io.maps import write_map

    write_map(path, global_map.points)
    full = f"; memory bound reached, {global_map.dropped} points in new voxels dropped" if global_map.full else ""
    return f"wrote map {path}: {len(global_map)} points, one per {global_map.voxel_size:g} m voxel (world frame){full}"


# ---------------------------------------------------------------------------------------- eval
def _load_trajectory(path: str, what: str):
    from ..io.trajectory import read_tum

    p = Path(path)
    if p.is_dir() and (p / "trajectory_tum.txt").exists():
        return read_tum(p / "trajectory_tum.txt")
    if p.is_dir() and (p / "ground_truth_tum.txt").exists():
        return read_tum(p / "ground_truth_tum.txt")
    if p.is_file() and p.suffix.lower() in (".txt", ".tum"):
        return read_tum(p)
    if p.exists():
        from ..io.bags import read_ground_truth

        traj = read_ground_truth(p)
        if traj is None:
            raise CliError(f"{path}: no nav_msgs/Odometry or PoseStamped topic to use as {what}")
        return traj
    raise CliError(f"{path}: no such file or directory")


def add_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("estimate", help="TUM file or a `dcreg run` output folder")
    p.add_argument("ground_truth", help="TUM file, a bag with nav_msgs/Odometry ground truth, or a simulated bag")
    p.add_argument("--out", help="folder for eval.json and eval.png (default: the estimate's folder)")
    p.add_argument("--rpe-delta", type=int, default=1, help="RPE frame delta (default 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from ..eval.metrics import trajectory_errors
    from ..eval.plots import plot_errors

    est = _load_trajectory(args.estimate, "estimate")
    gt = _load_trajectory(args.ground_truth, "ground truth")
    errors = trajectory_errors(est, gt, rpe_delta=args.rpe_delta)
    out = Path(args.out) if args.out else (Path(args.estimate) if Path(args.estimate).is_dir() else Path(args.estimate).parent)
    out.mkdir(parents=True, exist_ok=True)
    result = {"ate_rmse_m": errors.ate_rmse, "ate_max_m": errors.ate_max, "rpe_rmse_m": errors.rpe_rmse,
              "rpe_delta_frames": errors.rpe_delta, "matched_poses": errors.matched,
              "estimate": str(args.estimate), "ground_truth": str(args.ground_truth)}
    (out / "eval.json").write_text(json.dumps(result, indent=2))
    plot_errors(errors, out / "eval.png")
    if args.json:
        print(json.dumps(result))
    else:
        print(f"ATE  {errors.ate_rmse:.4f} m rmse, {errors.ate_max:.4f} m max (SE(3) aligned, {errors.matched} poses)")
        print(f"RPE  {errors.rpe_rmse:.4f} m rmse over {errors.rpe_delta} frame(s)")
        print(f"wrote {out / 'eval.json'} and {out / 'eval.png'}")
    return 0


# ------------------------------------------------------------------------------------- compare
def add_compare(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="bag or folder (as for `dcreg run`)")
    p.add_argument("--strategies", default="none,dcreg,dcreg_prior", help="comma-separated strategies (default none,dcreg,dcreg_prior)")
    p.add_argument("--peers", default="", help="comma-separated peers: kiss_icp")
    p.add_argument("--topic", help="PointCloud2 topic")
    p.add_argument("--config", help="odometry config YAML")
    p.add_argument("--max-frames", type=int, help="use only the first N frames")
    p.add_argument("--out", help="write compare.json (and per-method trajectories) here")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run_compare)


def compare_methods(input_path: str, strategies: list[str], peers: list[str], config: OdometryConfig,
                    topic: str | None = None, max_frames: int | None = None, quiet: bool = True) -> list[dict]:
    """Run every strategy (and peer) on the same input; one dict of numbers per method."""
    from ..eval.metrics import detection_scores, trajectory_errors
    from ..eval.runner import Progress, run_odometry
    from ..io.trajectory import Trajectory

    gt = _open(input_path, topic).ground_truth
    truth = _truth_for(input_path)
    rows = []
    for strategy in strategies:
        dataset = _open(input_path, topic)
        total = min(len(dataset), max_frames) if max_frames else len(dataset)
        result = run_odometry(dataset, config, strategy, Progress(total, f"{strategy}: ", enabled=not quiet), max_frames)
        row = {"method": f"dcreg_ros/{strategy}", "frames": len(result.records),
               "ms_per_frame": float(np.nanmedian(result.frame_ms())), "trajectory": result.trajectory}
        if gt is not None and len(result.records) > 1:
            e = trajectory_errors(result.trajectory, gt)
            row.update(ate_m=e.ate_rmse, rpe_m=e.rpe_rmse)
        if truth is not None and result.records:
            s = detection_scores([r.stamp for r in result.records[1:]], result.masks[1:], *truth)
            row.update(precision=s.precision, recall=s.recall, false_alarm_rate=s.false_alarm_rate)
        rows.append(row)
    for peer in peers:
        if peer != "kiss_icp":
            raise CliError(f"unknown peer {peer!r}; available: kiss_icp")
        from ..eval.peers import kiss_icp_odometry

        scans = list(_open(input_path, topic))[:max_frames]
        stamps, poses, ms = kiss_icp_odometry(scans, config.preprocess.max_range)
        traj = Trajectory(stamps, poses)
        row = {"method": "kiss_icp", "frames": len(stamps), "ms_per_frame": float(np.median(ms[1:])) if len(ms) > 1 else float("nan"),
               "trajectory": traj}
        if gt is not None and len(stamps) > 1:
            e = trajectory_errors(traj, gt)
            row.update(ate_m=e.ate_rmse, rpe_m=e.rpe_rmse)
        rows.append(row)
    return rows


def format_compare_table(rows: list[dict]) -> str:
    def f(v, fmt):
        return fmt.format(v) if isinstance(v, (int, float)) and np.isfinite(v) else "-"

    lines = [f"{'method':<24} {'frames':>6} {'ATE m':>8} {'RPE m':>8} {'ms/frame':>9} {'precision':>9} {'recall':>7} {'false alarms':>12}"]
    for r in rows:
        lines.append(f"{r['method']:<24} {r['frames']:>6} {f(r.get('ate_m'), '{:.3f}'):>8} {f(r.get('rpe_m'), '{:.4f}'):>8} "
                     f"{f(r.get('ms_per_frame'), '{:.1f}'):>9} {f(r.get('precision'), '{:.2f}'):>9} {f(r.get('recall'), '{:.2f}'):>7} "
                     f"{f(r.get('false_alarm_rate'), '{:.1%}'):>12}")
    return "\n".join(lines)


def run_compare(args: argparse.Namespace) -> int:
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    for s in strategies:
        if s not in STRATEGIES:
            raise CliError(f"unknown strategy {s!r}; choose from {', '.join(STRATEGIES)}")
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    rows = compare_methods(args.input, strategies, peers, _config(args.config), args.topic, args.max_frames, args.quiet)
    print(format_compare_table(rows))
    if args.out:
        from ..io.trajectory import write_tum

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for r in rows:
            write_tum(out / f"{r['method'].replace('/', '_')}_tum.txt", r["trajectory"])
        clean = [{k: v for k, v in r.items() if k != "trajectory"} for r in rows]
        (out / "compare.json").write_text(json.dumps(clean, indent=2))
        print(f"wrote {out / 'compare.json'}", file=sys.stderr)
    return 0


COMMANDS = {
    "simulate": ("simulate a degenerate scene into a ROS 2 bag with ground truth", add_simulate),
    "run": ("run the odometry on a bag or folder and write trajectory, diagnostics, plots", add_run),
    "eval": ("ATE / RPE of a trajectory against ground truth (evo)", add_eval),
    "compare": ("run several strategies (and KISS-ICP) on the same input, one table", add_compare),
}
