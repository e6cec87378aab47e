"""``dcreg register SOURCE TARGET``: pairwise registration from the command line."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from ..core.config import RegistrationConfig
from ..core.config_io import ConfigError
from ..core.global_registration import GlobalRegistrationConfig, GlobalRegistrationResult, global_register
from ..core.geometry import pose_from_xyz_rpy
from ..core.registration import register
from ..core.solvers import STRATEGIES
from ..io.cloud_files import SUPPORTED, read_cloud
from .errors import CliError
from .report import format_global_result, format_result


def parse_init(text: str | None) -> np.ndarray:
    """'x y z roll pitch yaw' (metres, degrees; R = Rz Ry Rx) -> 4x4 pose."""
    if text is None:
        return np.eye(4)
    parts = text.replace(",", " ").split()
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise CliError(f"--init must be six numbers 'x y z roll pitch yaw' (m, deg), got {text!r}") from None
    if len(values) != 6 or not np.all(np.isfinite(values)):
        raise CliError(f"--init must be six finite numbers 'x y z roll pitch yaw' (m, deg), got {text!r}")
    x, y, z, roll, pitch, yaw = values
    return pose_from_xyz_rpy(x, y, z, *np.radians([roll, pitch, yaw]))


def load_config(path: str | None) -> RegistrationConfig:
    return RegistrationConfig() if path is None else RegistrationConfig.from_yaml(path)


def load_global_config(path: str | None) -> GlobalRegistrationConfig:
    """A global registration config file, or a pairwise one (``registration:``) as its refinement."""
    if path is None:
        return GlobalRegistrationConfig()
    try:
        return GlobalRegistrationConfig.from_yaml(path)
    except ConfigError as exc:
        try:
            return GlobalRegistrationConfig.from_dict({"refinement": RegistrationConfig.from_yaml(path).to_dict()})
        except ConfigError:
            raise exc from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help=f"source cloud ({', '.join(SUPPORTED)}), metres")
    p.add_argument("target", help="target cloud, metres")
    p.add_argument("--init", metavar='"x y z roll pitch yaw"', help="initial guess of T_target_source (m, deg; R = Rz Ry Rx)")
    p.add_argument("--strategy", choices=STRATEGIES, help="solve strategy (default from the config: dcreg)")
    p.add_argument("--global", dest="global_", action="store_true",
                   help="no initial guess: FPFH features + consensus, then the DCReg refinement (see config/global_registration.yaml)")
    p.add_argument("--config", metavar="FILE", help="registration config YAML (see config/registration.yaml; with --global config/global_registration.yaml)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.global_:
        return run_global(args)
    init = parse_init(args.init)
    config = load_config(args.config)
    source = read_cloud(args.source)
    target = read_cloud(args.target)
    result = register(source.points, target.points, init, args.strategy, config)
    emit(args, result.to_dict(), lambda title: format_result(result, title), len(source), len(target))
    if not result.ok:
        print(f"dcreg: registration failed: {result.status.replace('_', ' ')}", file=sys.stderr)
        return 1
    return 0


def emit(args: argparse.Namespace, out: dict, report, source_points: int, target_points: int) -> None:
    """Print the result as one JSON object (--json) or as the report ``report(title)``."""
    if args.json:
        out["source"] = {"path": args.source, "points": source_points}
        out["target"] = {"path": args.target, "points": target_points}
        print(json.dumps(out))
    else:
        command = "dcreg register --global" if args.global_ else "dcreg register"
        print(report(f"{command}: {args.source} ({source_points} points) -> {args.target} ({target_points} points)"))


def run_global(args: argparse.Namespace) -> int:
    """``register --global``: coarse alignment without a guess, then the DCReg refinement."""
    if args.init is not None:
        raise CliError("--init and --global exclude each other (--global needs no initial guess)")
    config = load_global_config(args.config)
    source = read_cloud(args.source)
    target = read_cloud(args.target)
    result = global_register(source.points, target.points, config, args.strategy)
    emit(args, result.to_dict(), lambda title: format_global_result(result, config, title), len(source), len(target))
    if not result.success:
        print(f"dcreg: global registration failed: {global_failure_reason(result, config)}", file=sys.stderr)
        return 1
    return 0


def global_failure_reason(result: GlobalRegistrationResult, config: GlobalRegistrationConfig) -> str:
    """Why the plausibility test failed, in words."""
    vc = config.verification
    reasons = []
    if result.num_inliers < vc.min_inliers:
        reasons.append(f"{result.num_inliers} consistent feature matches (need {vc.min_inliers})")
    if not result.refinement.ok:
        reasons.append(f"refinement {result.refinement.status.replace('_', ' ')}")
    if result.fitness < vc.min_fitness:
        reasons.append(f"fitness {result.fitness:.2f} (need {vc.min_fitness:g}): the clouds do not seem to overlap")
    if vc.max_ambiguity < 1.0 and result.ambiguity > vc.max_ambiguity:
        reasons.append(f"ambiguity {result.ambiguity:.2f} (at most {vc.max_ambiguity:g}): another pose fits almost as well (repetitive scene)")
    return "; ".join(reasons) or "implausible result"
