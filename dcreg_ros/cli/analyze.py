"""``dcreg analyze-hessian H_FILE``: DCReg analysis of a 6x6 Hessian from any source."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..core.degeneracy import analyze_hessian_arrays, DegeneracyReport
from ..core.config import DegeneracyConfig
from ..core.solvers import STRATEGIES, no_prior, solve_step, strategy_code
from .errors import CliError
from .report import degeneracy_table, format_matrix


def read_numbers(path: str, count: int, what: str) -> np.ndarray:
    """Whitespace/comma separated numbers from a text file; exactly ``count`` of them."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    tokens = [t for line in text.splitlines() if not line.lstrip().startswith("#") for t in line.replace(",", " ").split()]
    try:
        values = np.array([float(t) for t in tokens])
    except ValueError:
        raise CliError(f"{path}: {what} must contain only numbers") from None
    if values.size != count:
        raise CliError(f"{path}: {what} needs {count} numbers, found {values.size}")
    if not np.all(np.isfinite(values)):
        raise CliError(f"{path}: {what} contains NaN or Inf")
    return values


# The analysis forms products of entries (Schur complements, eigen-decompositions): beyond this
# magnitude they overflow float64. The ratios it reports do not depend on the scale of H.
MAX_ABS_ENTRY = 1e150


def load_hessian(path: str) -> np.ndarray:
    H = read_numbers(path, 36, "the Hessian").reshape(6, 6)
    largest = np.abs(H).max()
    if largest > MAX_ABS_ENTRY:
        raise CliError(f"{path}: the Hessian's largest entry is {largest:.3g}; the analysis needs entries within "
                       f"+-{MAX_ABS_ENTRY:.0e} (it multiplies them): divide H by a constant, the degeneracy ratios do not change")
    scale = max(largest, 1e-300)
    asym = np.abs(H - H.T).max() / scale
    if asym > 1e-6:
        raise CliError(f"{path}: the Hessian is not symmetric (max |H - H^T| / max |H| = {asym:.2g})")
    return 0.5 * (H + H.T)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("hessian", metavar="H_FILE", help="6x6 Hessian as 36 whitespace-separated numbers, state order roll pitch yaw x y z (rotation first)")
    p.add_argument("--gradient", metavar="G_FILE", help="right-hand side g of H delta = g (6 numbers); enables the mitigated step")
    p.add_argument("--strategy", choices=STRATEGIES, default="dcreg", help="solve strategy for the step (default dcreg)")
    p.add_argument("--threshold", type=float, default=10.0, help="degeneracy threshold on lambda_max / lambda (default 10)")
    p.add_argument("--kappa-target", type=float, default=10.0, help="target condition number of the preconditioner (default 10)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not (np.isfinite(args.threshold) and args.threshold > 1.0):
        raise CliError("--threshold must be a number > 1")
    if not (np.isfinite(args.kappa_target) and args.kappa_target >= 1.0):
        raise CliError("--kappa-target must be a number >= 1")
    H = load_hessian(args.hessian)
    try:
        arrays = analyze_hessian_arrays(H, float(args.threshold), float(args.kappa_target))
    except (np.linalg.LinAlgError, ValueError, ZeroDivisionError) as exc:
        nonzero = np.abs(H[H != 0])
        span = f"; its entries reach {nonzero.min():.3g} .. {nonzero.max():.3g}" if nonzero.size else ""
        raise CliError(f"{args.hessian}: the Hessian cannot be analysed in float64 ({exc}){span}: "
                       "scale H by a constant, the degeneracy ratios do not change") from None
    report = DegeneracyReport.from_analysis(arrays, args.threshold)
    step = pcg_iterations = None
    fallback = False
    if args.gradient:
        g = read_numbers(args.gradient, 6, "the gradient")
        solved = solve_step(H, g, strategy_code(args.strategy), arrays, DegeneracyConfig().solver_parameters(), no_prior())
        step, pcg_iterations, fallback = solved.delta, solved.pcg_iterations, solved.fell_back
    if args.json:
        out = report.to_dict()
        out["step"] = None if step is None else [float(v) for v in step]
        out["strategy"] = args.strategy
        out["pcg_iterations"] = pcg_iterations
        out["direct_solve_fallback"] = bool(fallback)
        print(json.dumps(out))
        return 0
    print(f"dcreg analyze-hessian: {args.hessian} (state order roll pitch yaw x y z)")
    print(report.describe())
    print(degeneracy_table(report))
    print("contributions (rows roll pitch yaw / x y z, columns aligned modes)")
    print(format_matrix(report.contributions_rotation, fmt="{:.3f}"))
    print(format_matrix(report.contributions_translation, fmt="{:.3f}"))
    if step is not None:
        print(f"step ({args.strategy}, {pcg_iterations} PCG iterations{', direct fallback' if fallback else ''}):")
        print("  " + "  ".join(f"{v:+.6f}" for v in step))
    return 0
