"""``dcreg localize MAP INPUT --out DIR``: localize a bag or folder of scans in a prior map."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ..core.localization import LocalizationConfig, Localizer
from ..core.solvers import STRATEGIES
from .errors import EXIT_INTERRUPTED, CliError
from .odometry_commands import GT_TOPIC_HELP, add_motion_arguments
from .register import parse_init


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("map", help="map point cloud (binary PCD from `dcreg run --save-map`, or any PCD/PLY/BIN/CSV), map frame, m")
    p.add_argument("input", help="ROS 1/2 bag (file or directory) or a folder of PCD/PLY/BIN files")
    p.add_argument("--out", required=True, help="output folder")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--init", metavar='"x y z roll pitch yaw"',
                       help="pose of the first scan in the map frame (m, deg; R = Rz Ry Rx); default: the map origin")
    start.add_argument("--global", dest="global_start", action="store_true",
                       help="no initial pose: find it by global registration of the first scan")
    p.add_argument("--strategy", choices=STRATEGIES, help="solve strategy (default from the config: dcreg_prior)")
    p.add_argument("--config", metavar="FILE", help="localization config YAML (see config/localization.yaml)")
    p.add_argument("--topic", help="PointCloud2 topic (default: the only one in the bag)")
    p.add_argument("--gt-topic", help=GT_TOPIC_HELP)
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--no-plots", action="store_true", help="skip trajectory.png and degeneracy.png")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    add_motion_arguments(p)
    p.set_defaults(func=run)


def _config(args: argparse.Namespace) -> LocalizationConfig:
    from ..core.config_io import replace

    config = LocalizationConfig() if args.config is None else LocalizationConfig.from_yaml(args.config)
    if args.global_start:
        config = replace(config, relocalization=replace(config.relocalization, on_start=True))
    return config


def run(args: argparse.Namespace) -> int:
    from ..eval.localization_run import localize_into_folder, tracking_line, write_localization_plots
    from ..eval.run_outputs import prepare_output_dir, stop_line, write_json
    from ..io.maps import load_map
    from .odometry_commands import _check_max_frames, _motion_inputs, _open, frame_table

    _check_max_frames(args.max_frames)
    init = parse_init(args.init) if args.init else None
    config = _config(args)
    dataset = _open(args.input, args.topic, args.gt_topic)  # input errors before the (longer) map load
    for note in dataset.notes:
        print(f"dcreg localize: note: {note}", file=sys.stderr)
    motion = _motion_inputs(args)
    prepare_output_dir(args.out)  # an unwritable folder fails now, not after the map load and the run
    map_cloud = load_map(args.map, config.map.load_voxel_size, config.map.max_points)
    localizer = Localizer(map_cloud.points, config, args.strategy, downsample=False)
    if not args.global_start:
        localizer.set_pose(np.eye(4) if init is None else init)
    info = localizer.map_info
    header = {"input": str(args.input), "map": str(args.map), "map_file_points": map_cloud.source_points,
              "map_points": info.num_points, "map_load_voxel_m": map_cloud.voxel_size, "map_load_seconds": map_cloud.seconds,
              "map_build_seconds": info.build_seconds, "map_memory_mb": info.nbytes / 1e6,
              "initial_pose": "global" if args.global_start else ("map origin" if init is None else args.init)}
    run_result, summary, out = localize_into_folder(dataset, localizer, args.out, len(dataset), args.max_frames, args.quiet,
                                                    header, motion)
    total = min(len(dataset), args.max_frames) if args.max_frames else len(dataset)
    if not run_result.records and not run_result.stop.interrupted:
        why = run_result.skips.describe() if run_result.skips.skipped else "empty input"
        raise CliError(f"no scan of {args.input} could be localized (0 localized, {run_result.skips.skipped} skipped: {why}); "
                       f"summary in {out / 'summary.json'}")
    lines = [f"map              {map_cloud.source_points} points in the file, {info.num_points} in the map "
             f"(voxel {map_cloud.voxel_size:g} m), loaded in {map_cloud.seconds + info.build_seconds:.2f} s, {info.nbytes / 1e6:.0f} MB",
             *frame_table(run_result, summary, "localized", (f"tracking         {tracking_line(summary)}",))]
    accuracy = _accuracy(run_result, dataset.ground_truth, summary)
    if accuracy:
        lines.append(accuracy)
        write_json(out / "summary.json", {**header, **summary})
    plots = [] if args.no_plots else write_localization_plots(run_result, out, map_cloud.points)
    print(f"dcreg localize: {args.input} in {args.map} -> {out} (strategy {run_result.strategy})")
    print("\n".join(lines))
    print("wrote " + ", ".join(["trajectory_tum.txt", "trajectory_kitti.txt", "diagnostics.csv", "summary.json", *plots]))
    if run_result.stop.interrupted:
        print(f"dcreg: interrupted: {stop_line(run_result.stop, len(run_result.records), total, out)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not run_result.stop.completed:
        raise CliError(stop_line(run_result.stop, len(run_result.records), total, out))
    return 0


def _accuracy(run_result, gt, summary: dict) -> str:
    """The accuracy line (map frame and SE(3) aligned) when the input has ground truth; the
    numbers go into ``summary``."""
    if gt is None or len(gt) < 2 or len(run_result.records) < 2:
        return ""
    from ..core.pointcloud import InputError
    from ..eval.metrics import trajectory_errors

    try:
        in_map = trajectory_errors(run_result.trajectory, gt, align=False)
    except InputError as exc:
        return f"accuracy         not computed: {exc}"
    summary.update(ate_map_frame_rmse_m=in_map.ate_rmse)
    text = f"{in_map.ate_rmse:.3f} m in the map frame (meaningful when the map and the ground truth share a frame)"
    try:
        aligned = trajectory_errors(run_result.trajectory, gt)
    except InputError as exc:
        return f"accuracy         ATE {text}; no SE(3)-aligned ATE: {exc}"
    summary.update(ate_rmse_m=aligned.ate_rmse, rpe_rmse_m=aligned.rpe_rmse, alignment=aligned.describe_alignment())
    return (f"accuracy         ATE {aligned.ate_rmse:.3f} m ({aligned.describe_alignment()}), {text}; "
            f"RPE {aligned.rpe_rmse:.4f} m/frame")
