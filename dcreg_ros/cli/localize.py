"""``dcreg localize MAP INPUT --out DIR``: localize a bag or folder of scans in a prior map."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..core.localization import LocalizationConfig, Localizer, RelocalizationUnavailable
from ..core.solvers import STRATEGIES
from .errors import CliError
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
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--no-plots", action="store_true", help="skip trajectory.png and degeneracy.png")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def _config(args: argparse.Namespace) -> LocalizationConfig:
    from ..core.config_io import replace

    config = LocalizationConfig() if args.config is None else LocalizationConfig.from_yaml(args.config)
    if args.global_start:
        config = replace(config, relocalization=replace(config.relocalization, on_start=True))
    return config


def run(args: argparse.Namespace) -> int:
    from ..eval.localization_run import run_localization, tracking_line, write_localization_outputs
    from ..eval.runner import Progress
    from ..io.datasets import open_dataset
    from ..io.maps import load_map

    if args.max_frames is not None and args.max_frames < 1:
        raise CliError("--max-frames must be at least 1")
    init = parse_init(args.init) if args.init else None
    config = _config(args)
    dataset = open_dataset(args.input, topic=args.topic)  # input errors before the (longer) map load
    map_cloud = load_map(args.map, config.map.load_voxel_size, config.map.max_points)
    localizer = Localizer(map_cloud.points, config, args.strategy, downsample=False)
    if not args.global_start:
        localizer.set_pose(np.eye(4) if init is None else init)
    info = localizer.map_info
    progress = Progress(min(len(dataset), args.max_frames or len(dataset)), enabled=not args.quiet)
    try:
        run_result = run_localization(dataset, localizer, progress, args.max_frames)
    except RelocalizationUnavailable as exc:
        raise CliError(f"--global: {exc}") from None
    if not run_result.records:
        raise CliError(f"no scan of {args.input} could be localized ({len(run_result.skipped)} skipped: "
                       f"{run_result.skipped[0][1] if run_result.skipped else 'empty input'})")
    out = Path(args.out)
    map_numbers = {"map": str(args.map), "map_file_points": map_cloud.source_points, "map_points": info.num_points,
                   "map_load_voxel_m": map_cloud.voxel_size, "map_load_seconds": map_cloud.seconds,
                   "map_build_seconds": info.build_seconds, "map_memory_mb": info.nbytes / 1e6,
                   "initial_pose": "global" if args.global_start else ("map origin" if init is None else args.init)}
    summary = write_localization_outputs(run_result, out, map_cloud.points, plots=not args.no_plots, extra=map_numbers)
    lines = [f"map              {map_cloud.source_points} points in the file, {info.num_points} in the map "
             f"(voxel {map_cloud.voxel_size:g} m), loaded in {map_cloud.seconds + info.build_seconds:.2f} s, {info.nbytes / 1e6:.0f} MB",
             f"frames           {summary['frames']} localized, {summary['skipped']} skipped"
             + (f" (first: {run_result.skipped[0][1]})" if run_result.skipped else ""),
             f"tracking         {tracking_line(summary)}",
             f"time             {summary['ms_per_frame_median']:.1f} ms/frame median, {summary['ms_per_frame_p95']:.1f} p95, "
             f"{summary['wall_hz']:.1f} Hz wall",
             f"path             {summary['path_length_m']:.2f} m",
             f"degenerate       {summary['degenerate_frames']} frames; per axis "
             + ", ".join(f"{a} {n}" for a, n in summary["degenerate_frames_per_axis"].items())]
    gt = dataset.ground_truth
    if gt is not None and len(gt) > 1 and len(run_result.records) > 1:
        from ..core.pointcloud import InputError
        from ..eval.metrics import trajectory_errors

        try:
            in_map = trajectory_errors(run_result.trajectory, gt, align=False)
        except InputError as exc:
            lines.append(f"accuracy         not computed: {exc}")
        else:
            summary.update(ate_map_frame_rmse_m=in_map.ate_rmse)
            text = f"{in_map.ate_rmse:.3f} m in the map frame (meaningful when the map and the ground truth share a frame)"
            try:
                aligned = trajectory_errors(run_result.trajectory, gt)
            except InputError as exc:
                lines.append(f"accuracy         ATE {text}; no SE(3)-aligned ATE: {exc}")
            else:
                summary.update(ate_rmse_m=aligned.ate_rmse, rpe_rmse_m=aligned.rpe_rmse)
                lines.append(f"accuracy         ATE {aligned.ate_rmse:.3f} m SE(3) aligned, {text}; RPE {aligned.rpe_rmse:.4f} m/frame")
            (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"dcreg localize: {args.input} in {args.map} -> {out} (strategy {run_result.strategy})")
    print("\n".join(lines))
    print(f"wrote trajectory_tum.txt, trajectory_kitti.txt, diagnostics.csv, summary.json{'' if args.no_plots else ', trajectory.png, degeneracy.png'}")
    return 0
