"""`dcreg simulate | run | eval | compare`: trajectories, not pairs."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from ..core.odometry import OdometryConfig
from ..core.solvers import STRATEGIES
from .errors import EXIT_INTERRUPTED, CliError


def _config(path: str | None) -> OdometryConfig:
    return OdometryConfig() if path is None else OdometryConfig.from_yaml(path)


def _open(path: str, topic: str | None, gt_topic: str | None = None):
    from ..io.datasets import open_dataset

    return open_dataset(path, topic=topic, ground_truth_topic=gt_topic)


GT_TOPIC_HELP = "ground-truth topic of a bag (nav_msgs/Odometry or PoseStamped; default /ground_truth, never another topic)"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def frame_table(result, summary: dict, verb: str, after_frames: tuple[str, ...] = ()) -> list[str]:
    """The lines of an offline run's table that odometry and localization share: frames (``verb``:
    registered, localized) and skips, ``after_frames``, time, path, degeneracy, warnings."""
    lines = [f"frames           {summary['frames']} {verb}, {summary['skipped']} skipped"
             + (f": {result.skips.describe()}" if result.skips.skipped else ""),
             *after_frames,
             f"time             {_number(summary['ms_per_frame_median'])} ms/frame median, {_number(summary['ms_per_frame_p95'])} p95, "
             f"{_number(summary['wall_hz'])} Hz wall",
             f"path             {summary['path_length_m']:.2f} m",
             f"degenerate       {summary['degenerate_frames']} frames; per axis "
             + ", ".join(f"{a} {n}" for a, n in summary["degenerate_frames_per_axis"].items())]
    notes = result.frame_notes()
    if notes.skipped:
        lines.append(f"warnings         {notes.describe()}")
    return lines


def _check_max_frames(max_frames: int | None) -> None:
    if max_frames is not None and max_frames < 1:
        raise CliError("--max-frames must be at least 1")


# ------------------------------------------------------------------------------------ simulate
def add_simulate(p: argparse.ArgumentParser) -> None:
    from ..sim import MOTION_PROFILES, SCENE_NAMES, ImuModel, WheelModel, WheelSlip

    def span(bounds: tuple[float, float]) -> str:
        return f"{bounds[0]:g}-{bounds[1]:g}"

    consumer, slip, scale = ImuModel.grade("consumer"), WheelSlip(), WheelModel().scale_error

    p.add_argument("scene", choices=SCENE_NAMES, help="scene to simulate")
    p.add_argument("--out", required=True, help="output ROS 2 bag directory (must not exist)")
    p.add_argument("--frames", type=int, default=300,
                   help="number of LiDAR revolutions simulated (default 300); the options below can leave some out")
    p.add_argument("--beams", type=int, default=32, choices=(16, 32, 64, 128), help="LiDAR beams (default 32)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--noise", type=float, default=0.015, help="range noise standard deviation, m (default 0.015)")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="bag storage (default mcap)")
    p.add_argument("--motion", choices=MOTION_PROFILES, default="smooth",
                   help="smooth (near-constant speed), variable (0.5-2 m/s), stop_and_go, or handheld (walking "
                        "0.8-1.6 m/s with step bounce, pauses, hand shake and sweeps up to 180 deg/s; no wheel odometry) "
                        "(default smooth)")
    p.add_argument("--no-imu", action="store_true", help="leave the simulated IMU (/imu) out")
    p.add_argument("--imu-grade", default=None, metavar="GRADE",
                   help=f"IMU noise and biases: default, consumer (MEMS: gyro bias {span(consumer.gyro_bias_deg)} deg/s, "
                        f"accel bias {span(consumer.accel_bias)} m/s², noise {consumer.gyro_noise:g} rad/s and "
                        f"{consumer.accel_noise:g} m/s² per sample), poor (3 x consumer) or industrial (consumer / 10) "
                        "(default: default)")
    p.add_argument("--no-wheel", action="store_true", help="leave the simulated wheel odometry (/wheel/odom) out")
    p.add_argument("--wheel-scale-error", default=None, metavar="E|LO..HI",
                   help="wheel scale error as a fraction: E exactly (e.g. -0.03: the wheels read 3%% short), or a "
                        f"magnitude drawn in LO..HI with a seeded sign (default {scale[0]:g}..{scale[1]:g})")
    p.add_argument("--wheel-slip", type=int, default=0, metavar="N",
                   help=f"N seeded wheel slip episodes of {span(slip.duration)} s (default 0): the wheels spin "
                        f"(speed x {span(slip.spin_factor)}) or skid (heading drift {span(slip.skid_drift)} rad/m); "
                        "their times go to simulation.json")
    p.add_argument("--wheel-slip-kind", default=None, metavar="spin|skid|both",
                   help="which kinds of episode --wheel-slip draws (default both)")
    p.add_argument("--keep-every", type=int, default=1, metavar="K",
                   help="write only every K-th revolution: 1/K of the frame rate (default 1: all)")
    p.add_argument("--drop-every", type=int, default=None, metavar="N",
                   help="drop every N-th scan (of those kept by --keep-every), N >= 2")
    p.add_argument("--drop-probability", type=float, default=0.0, metavar="P",
                   help="drop each scan with probability P in [0, 1), seeded (default 0)")
    p.set_defaults(func=run_simulate)


def _scan_drops(args: argparse.Namespace):
    """The scan drops of the options, checked: at least 2 scans must remain."""
    from ..sim.scan_drops import ScanDrops

    try:
        drops = ScanDrops(args.keep_every, args.drop_every, args.drop_probability)
    except ValueError as exc:  # name the options as the user typed them
        raise CliError(re.sub(r"\b(keep_every|drop_every|drop_probability)\b", lambda m: "--" + m[1].replace("_", "-"),
                              str(exc))) from None
    left = int(drops.kept(args.frames, args.seed).sum())
    if left < 2:
        raise CliError(f"only {left} of {args.frames} scans would be left ({drops.describe()}); need at least 2")
    return drops


def _scale_error(text: str) -> "float | tuple[float, float]":
    """--wheel-scale-error: a signed fraction, or LO..HI magnitudes."""
    try:
        parts = [float(v) for v in text.split("..")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2):
        raise CliError(f"--wheel-scale-error takes a fraction (e.g. 0.02) or a range LO..HI (e.g. 0.01..0.05), got '{text}'")
    return parts[0] if len(parts) == 1 else (parts[0], parts[1])


def _proprioception(args: argparse.Namespace):
    """The IMU and wheel models of the options (None when left out), checked."""
    from ..sim.motion_profiles import WHEELED_PROFILES
    from ..sim.proprioception import IMU_GRADES, ImuModel, WheelModel
    from ..sim.wheel_slip import SLIP_KINDS, WheelSlip

    grade = args.imu_grade or "default"
    if grade not in IMU_GRADES:
        raise CliError(f"unknown --imu-grade '{grade}' (choose one of {', '.join(IMU_GRADES)})")
    if args.no_imu and args.imu_grade is not None:
        raise CliError("--imu-grade with --no-imu: there is no IMU to grade")
    kind = args.wheel_slip_kind or "both"
    kinds = SLIP_KINDS if kind == "both" else (kind,)
    if not set(kinds) <= set(SLIP_KINDS):
        raise CliError(f"unknown --wheel-slip-kind '{kind}' (choose one of {', '.join(SLIP_KINDS)}, both)")
    if args.wheel_slip < 0:
        raise CliError("--wheel-slip must be >= 0")
    if args.wheel_slip_kind is not None and args.wheel_slip == 0:
        raise CliError("--wheel-slip-kind needs --wheel-slip N (the number of episodes)")
    wheel_options = [name for name, given in (("--wheel-scale-error", args.wheel_scale_error is not None),
                                              ("--wheel-slip", args.wheel_slip > 0)) if given]
    if wheel_options and (args.no_wheel or args.motion not in WHEELED_PROFILES):
        why = "--no-wheel" if args.no_wheel else f"--motion {args.motion} (a hand-held sensor has no wheel odometry)"
        raise CliError(f"{' and '.join(wheel_options)} with {why}: there are no wheels to set")
    imu = None if args.no_imu else ImuModel.grade(grade)
    if args.no_wheel or args.motion not in WHEELED_PROFILES:
        return imu, None
    scale = None if args.wheel_scale_error is None else _scale_error(args.wheel_scale_error)
    try:
        slip = WheelSlip(count=args.wheel_slip, kinds=kinds)
        wheel = WheelModel(episodes=slip) if scale is None else WheelModel(scale_error=scale, episodes=slip)
    except ValueError as exc:
        raise CliError(_option_names(exc)) from None
    return imu, wheel


def _option_names(exc: ValueError) -> str:
    """A simulator's message about the wheel models, naming the options as the user typed them."""
    return str(exc).replace("wheel scale error", "--wheel-scale-error").replace("slip episodes", "--wheel-slip episodes")


def run_simulate(args: argparse.Namespace) -> int:
    from ..sim import simulate, write_simulation

    if args.frames < 2:
        raise CliError("--frames must be at least 2")
    if not (np.isfinite(args.noise) and args.noise >= 0):
        raise CliError("--noise must be >= 0")
    drops = _scan_drops(args)
    imu_model, wheel_model = _proprioception(args)
    if Path(args.out).exists():
        raise CliError(f"{args.out} already exists; choose a new --out")
    from ..core.degeneracy import flagged_axes
    from ..core.geometry import rotation_to_euler

    from ..sim.wheel_slip import SlipFitError

    try:
        result = simulate(args.scene, frames=args.frames, beams=args.beams, seed=args.seed, noise=args.noise,
                          motion=args.motion, imu=imu_model, wheel=wheel_model, **drops.as_dict())
    except SlipFitError as exc:
        raise CliError(_option_names(exc)) from None
    write_simulation(result, args.out, storage=args.storage)
    points = np.mean([len(s) for s in result.scans])
    weak = flagged_axes(result.nominal_mask)
    print(f"wrote {args.out}: {len(result.scans)} scans of {args.scene} ({args.beams} beams, {points:.0f} points/scan, "
          f"{args.motion} motion), "
          f"{result.ground_truth.path_length():.1f} m path; unobservable: {', '.join(weak) or 'nothing'}")
    if drops.active:
        print(f"scans {len(result.scans)} of {args.frames} revolutions written ({drops.describe()}); "
              f"the dropped stamps are in simulation.json")

    def mounting(T: np.ndarray) -> str:
        rpy = np.degrees(rotation_to_euler(T[:3, :3])) + 0.0
        return f"xyz ({', '.join(f'{v:.3f}' for v in T[:3, 3])}) m, rpy ({', '.join(f'{v:.1f}' for v in rpy)}) deg"

    if result.imu is not None:
        imu = result.imu
        print(f"imu /imu {imu.model.grade_name} grade, {imu.model.rate:.0f} Hz, lidar -> imu {mounting(imu.T_lidar_imu)}; biases gyro "
              f"({', '.join(f'{v:+.4f}' for v in np.degrees(imu.gyro_bias))}) deg/s, accel "
              f"({', '.join(f'{v:+.3f}' for v in imu.accel_bias)}) m/s²")
    if result.wheel is not None:
        wheel = result.wheel
        print(f"wheel /wheel/odom {wheel.model.rate:.0f} Hz, base_link -> lidar {mounting(wheel.T_base_lidar)}; "
              f"scale error {wheel.scale_error:+.2%}, slip {np.degrees(wheel.slip):+.3f} deg/m")
        if wheel.episodes:
            print(f"wheel slip {len(wheel.episodes)} episodes: " + ", ".join(
                f"{e.kind} {e.start - result.scans[0].stamp:.1f}-{e.end - result.scans[0].stamp:.1f} s "
                + (f"x{e.value:.2f}" if e.kind == "spin" else f"{np.degrees(e.value):+.1f} deg/m") for e in wheel.episodes)
                  + " (after the first scan; times in simulation.json)")
    elif not args.no_wheel:  # left out by the motion profile
        print("wheel none: a hand-held sensor has no wheel odometry (no /wheel/odom, no base_link -> lidar)")
    return 0


# ----------------------------------------------------------------------------------------- run
def add_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="ROS 1/2 bag (file or directory) or a folder of PCD/PLY/BIN files")
    p.add_argument("--topic", help="PointCloud2 topic (default: the only one in the bag)")
    p.add_argument("--gt-topic", help=GT_TOPIC_HELP)
    p.add_argument("--config", help="odometry config YAML (see config/odometry.yaml)")
    p.add_argument("--strategy", choices=STRATEGIES, help="solve strategy (default from the config)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--no-plots", action="store_true", help="skip trajectory.png and degeneracy.png")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    add_motion_arguments(p)
    p.add_argument("--save-map", metavar="MAP.pcd", help="also write every registered frame as a binary PCD map (world frame)")
    p.add_argument("--map-voxel", type=float, default=0.1, metavar="M", help="one map point per voxel of this edge, m (default 0.1)")
    p.set_defaults(func=run_run)


def add_motion_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--imu-topic", help="sensor_msgs/Imu topic of the bag for the IMU motion prior (mounting from /tf_static, "
                                        "else motion_prior.imu_to_lidar)")
    p.add_argument("--wheel-odom-topic", help="nav_msgs/Odometry topic of the bag (wheel odometry) for the motion prior "
                                              "(mounting from /tf_static, else motion_prior.lidar_to_base)")


def _motion_inputs(args: argparse.Namespace):
    """The IMU / wheel odometry the flags name (bags only)."""
    imu, wheel = getattr(args, "imu_topic", None), getattr(args, "wheel_odom_topic", None)
    if imu is None and wheel is None:
        return None
    from ..io.datasets import BAG_FILE_SUFFIXES
    from ..io.motion_inputs import load_motion_inputs

    path = Path(args.input)
    if not (path.is_dir() and (path / "metadata.yaml").exists()) and path.suffix.lower() not in BAG_FILE_SUFFIXES:
        raise CliError("--imu-topic and --wheel-odom-topic need a bag as input")
    inputs = load_motion_inputs(path, imu, wheel)
    for note in inputs.notes:
        print(f"dcreg: note: {note}", file=sys.stderr)
    return inputs


def _run_table(report) -> list[str]:
    """The end-of-run table: frames and skips, time, path, degeneracy, warnings, accuracy."""
    lines = frame_table(report.result, report.summary, "registered")
    if report.errors is not None:
        e = report.errors
        lines.append(f"accuracy         ATE {e.ate_rmse:.3f} m, RPE {e.rpe_rmse:.4f} m/frame (ground truth in the input, {e.describe_alignment()})")
    elif report.accuracy_note:
        lines.append(f"accuracy         not computed: {report.accuracy_note}")
    return lines


def run_run(args: argparse.Namespace) -> int:
    from ..eval.compare import find_degeneracy_truth
    from ..eval.offline import run_into_folder, write_run_plots
    from ..eval.run_outputs import stop_line

    _check_max_frames(args.max_frames)
    config = _config(args.config)
    dataset = _open(args.input, args.topic, args.gt_topic)
    for note in dataset.notes:
        print(f"dcreg run: note: {note}", file=sys.stderr)
    motion = _motion_inputs(args)
    global_map = _map_accumulator(args)
    report = run_into_folder(dataset, args.out, config, args.strategy, args.max_frames, args.quiet, motion=motion,
                             global_map=global_map)
    result, out = report.result, report.out_dir
    if not result.records and not result.stop.interrupted:
        why = result.skips.describe() if result.skips.skipped else "empty input"
        stopped = "" if result.stop.completed else f"; stopped: {result.stop.reason}"
        raise CliError(f"no frame of {args.input} could be registered (0 registered, {result.skips.skipped} skipped: "
                       f"{why}{stopped}); summary in {out / 'summary.json'}")
    plots = [] if args.no_plots else write_run_plots(result, out, dataset.ground_truth, find_degeneracy_truth(args.input))
    print(f"dcreg run: {args.input} -> {out} (strategy {result.strategy})")
    print("\n".join(_run_table(report)))
    print("wrote " + ", ".join(["trajectory_tum.txt", "trajectory_kitti.txt", "diagnostics.csv", "summary.json", *plots]))
    if global_map is not None and len(global_map):  # what was registered, also after a stop
        print(_save_map(global_map, args.save_map))
    if result.stop.interrupted:
        print(f"dcreg: interrupted: {stop_line(result.stop, len(result.records), report.total, out)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not result.stop.completed:
        raise CliError(stop_line(result.stop, len(result.records), report.total, out))
    return 0


def _map_accumulator(args: argparse.Namespace):
    """The map --save-map fills (None without it); the destination is checked before the run."""
    if not args.save_map:
        return None
    from ..core.global_map import GlobalMap
    from ..io.maps import check_map_destination

    if not (np.isfinite(args.map_voxel) and args.map_voxel > 0):
        raise CliError("--map-voxel must be > 0 m")
    check_map_destination(args.save_map, created=args.out)  # --out DIR/map.pcd: the run creates DIR
    return GlobalMap(args.map_voxel)


def _save_map(global_map, path: str) -> str:
    from ..io.maps import write_map

    write_map(path, global_map.points)
    full = f"; memory bound reached, {global_map.dropped} points in new voxels dropped" if global_map.full else ""
    return f"wrote map {path}: {len(global_map)} points, one per {global_map.voxel_size:g} m voxel (world frame){full}"


# ---------------------------------------------------------------------------------------- eval
def _load_trajectory(path: str, what: str, gt_topic: str | None = None):
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

        traj = read_ground_truth(p, gt_topic)
        if traj is None:
            raise CliError(f"{path}: no /ground_truth topic to use as {what} (name another with --gt-topic)")
        return traj
    raise CliError(f"{path}: no such file or directory")


def add_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("estimate", help="TUM file or a `dcreg run` output folder")
    p.add_argument("ground_truth", help="TUM file, a bag with ground truth on /ground_truth (or --gt-topic), or a simulated bag")
    p.add_argument("--gt-topic", help=GT_TOPIC_HELP)
    p.add_argument("--out", help="folder for eval.json and eval.png (default: the estimate's folder)")
    p.add_argument("--rpe-delta", type=int, default=1, help="RPE frame delta (default 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from ..eval.metrics import trajectory_errors
    from ..eval.plots import plot_errors
    from ..eval.run_outputs import prepare_output_dir, read_flags, write_json

    out = Path(args.out) if args.out else (Path(args.estimate) if Path(args.estimate).is_dir() else Path(args.estimate).parent)
    est = _load_trajectory(args.estimate, "estimate")
    gt = _load_trajectory(args.ground_truth, "ground truth", args.gt_topic)
    prepare_output_dir(out)
    errors = trajectory_errors(est, gt, rpe_delta=args.rpe_delta)
    result = {"ate_rmse_m": errors.ate_rmse, "ate_max_m": errors.ate_max, "rpe_rmse_m": errors.rpe_rmse,
              "rpe_delta_frames": errors.rpe_delta, "matched_poses": errors.matched,
              "alignment": errors.alignment, "alignment_note": errors.alignment_note,
              "estimate": str(args.estimate), "ground_truth": str(args.ground_truth)}
    write_json(out / "eval.json", result)
    plot_errors(errors, out / "eval.png", flags=read_flags(args.estimate))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"ATE  {errors.ate_rmse:.4f} m rmse, {errors.ate_max:.4f} m max ({errors.describe_alignment()}, {errors.matched} poses)")
        print(f"RPE  {errors.rpe_rmse:.4f} m rmse over {errors.rpe_delta} frame(s)")
        print(f"wrote {out / 'eval.json'} and {out / 'eval.png'}")
    return 0


# ------------------------------------------------------------------------------------- compare
def add_compare(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="bag or folder (as for `dcreg run`)")
    p.add_argument("--strategies", default="none,dcreg,dcreg_prior", help="comma-separated strategies (default none,dcreg,dcreg_prior)")
    p.add_argument("--peers", default="", help="comma-separated peers: kiss_icp")
    p.add_argument("--topic", help="PointCloud2 topic")
    p.add_argument("--gt-topic", help=GT_TOPIC_HELP)
    p.add_argument("--config", help="odometry config YAML")
    p.add_argument("--max-frames", type=int, help="use only the first N frames")
    p.add_argument("--out", help="write compare.json (and per-method trajectories) here")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    from ..eval.compare import PEERS, compare_methods, format_compare_table

    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    for s in strategies:
        if s not in STRATEGIES:
            raise CliError(f"unknown strategy {s!r}; choose from {', '.join(STRATEGIES)}")
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    for p in peers:
        if p not in PEERS:
            raise CliError(f"unknown peer {p!r}; available: {', '.join(PEERS)}")
    _check_max_frames(args.max_frames)
    comparison = compare_methods(args.input, strategies, peers, _config(args.config), args.topic, args.max_frames,
                                 args.quiet, args.out, args.gt_topic)
    print(format_compare_table(comparison.rows))
    if args.out:
        print(f"wrote {Path(args.out) / 'compare.json'} and one folder per method", file=sys.stderr)
    if comparison.interrupted:
        print(f"dcreg: interrupted after {len(comparison.rows)} method(s); the rows so far are above"
              + (f" and in {Path(args.out) / 'compare.json'}" if args.out else ""), file=sys.stderr)
        return EXIT_INTERRUPTED
    broken = [r for r in comparison.rows if not r.stop.completed]
    if broken:
        raise CliError(f"{len(broken)} of {len(comparison.rows)} method(s) stopped early ({broken[0].method}: {broken[0].stop.reason})")
    return 0


COMMANDS = {
    "simulate": ("simulate a degenerate scene into a ROS 2 bag with ground truth", add_simulate),
    "run": ("run the odometry on a bag or folder and write trajectory, diagnostics, plots", add_run),
    "eval": ("ATE / RPE of a trajectory against ground truth (evo)", add_eval),
    "compare": ("run several strategies (and KISS-ICP) on the same input, one table", add_compare),
}
