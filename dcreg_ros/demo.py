"""`make demo`: the package's main job on built-in data.

Registers every real pair of ../shared/data (and the DCReg paper's cylinder with the reference
settings) and prints, per pair, the time, the error against the reference and the degeneracy
report in words.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import RegistrationConfig, register
from .core.geometry import pose_error, pose_from_xyz_rpy
from .io.cloud_files import read_cloud

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DCREG_SHARED_DATA", ROOT.parent / "shared" / "data"))


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dcreg_ros.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder with pairs.tsv (default ../shared/data)")
    args = parser.parse_args(argv)
    if not (args.data / "pairs.tsv").exists():
        print(f"demo: {args.data}/pairs.tsv not found (set --data or DCREG_SHARED_DATA)", file=sys.stderr)
        return 1
    pairwise_demo(args.data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
