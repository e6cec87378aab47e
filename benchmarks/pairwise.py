"""Pairwise registration benchmark: dcreg_ros against Open3D, small_gicp and KISS-ICP.

Every method runs in this one process on the same clouds (../shared/data/pairs.tsv), from the
identity, including its own downsampling and normal/covariance estimation. Times are the median
of 5 warm runs (one untimed warm-up first, so numba caches and peer allocations are hot).
Also times DCReg detection + mitigation per Gauss-Newton iteration. Writes the tables into
benchmarks/RESULTS.md between the PAIRWISE markers and prints them.

    make bench            # or: .venv/bin/python benchmarks/pairwise.py [--runs 5]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dcreg_ros  # noqa: E402
from dcreg_ros.eval.shared_data import shared_data_dir  # noqa: E402
from dcreg_ros.core.degeneracy import analyze_hessian_arrays  # noqa: E402
from dcreg_ros.core.geometry import pose_error  # noqa: E402
from dcreg_ros.core.config import DegeneracyConfig  # noqa: E402
from dcreg_ros.core.solvers import DCREG, no_prior, solve_step  # noqa: E402
from dcreg_ros.eval import peers  # noqa: E402
from dcreg_ros.io.cloud_files import read_cloud  # noqa: E402
from results_file import write_section  # noqa: E402

DATA = shared_data_dir()
PEER_VOXEL = 0.25  # downsampling of the peers (small_gicp's default); ours: see RegistrationConfig


def timed(fn, runs: int):
    fn()  # warm-up
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return out, float(np.median(times))


def methods() -> dict:
    table = {"dcreg_ros": lambda s, t: dcreg_ros.register(s, t)}
    for name, factory in (
        ("open3d_p2plane", lambda: peers.open3d_point_to_plane(PEER_VOXEL)),
        ("small_gicp_plane_1t", lambda: peers.small_gicp_align("PLANE_ICP", PEER_VOXEL)),
        ("small_gicp_gicp_1t", lambda: peers.small_gicp_align("GICP", PEER_VOXEL)),
        ("kiss_icp", lambda: peers.kiss_icp_pair()),
    ):
        try:
            table[name] = factory()
        except peers.PeerUnavailable as exc:
            print(f"skipping {name}: {exc}")
    return table


def detection_cost_us(H: np.ndarray, g: np.ndarray, repeats: int = 2000) -> float:
    """Median microseconds of DCReg detection + targeted-preconditioner PCG on one real system."""
    params = DegeneracyConfig().solver_parameters()
    prior = no_prior()

    def once():
        return solve_step(H, g, DCREG, analyze_hessian_arrays(H, 10.0, 10.0), params, prior)

    once()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e6)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch RESULTS.md")
    args = parser.parse_args()
    with open(DATA / "pairs.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    table = methods()
    lines = []
    summary = []
    detection_rows = []
    for row in rows:
        source = read_cloud(DATA / row["source"]).points
        target = read_cloud(DATA / row["target"]).points
        T_ref = np.array([float(x) for x in row["T_target_source_rowmajor"].split()]).reshape(4, 4)
        has_ref = np.isfinite(T_ref).all()
        results = {}
        for name, fn in table.items():
            out, ms = timed(lambda: fn(source, target), args.runs)
            T = out.T_target_source if name == "dcreg_ros" else out
            results[name] = (T, ms, out)
        ours = results["dcreg_ros"][2]
        per_iter = (ours.timings["detection"] + ours.timings["solve"]) / max(ours.iterations, 1) * 1e3
        H = ours.hessian
        g = np.linalg.eigvalsh(H).max() * 1e-3 * np.ones(6)
        detection_rows.append((row["name"], ours.iterations, per_iter, detection_cost_us(H, g)))
        fastest_peer = min((ms for n, (_, ms, _) in results.items() if n != "dcreg_ros"), default=np.nan)
        for name, (T, ms, _) in results.items():
            if has_ref:
                t_err, r_err = pose_error(T, T_ref)
                acc = f"{t_err * 100:.2f} cm / {r_err:.3f} deg"
            else:
                acc = f"x {T[0, 3]:+.3f} m (no reference)"
            flags = ""
            if name == "dcreg_ros":
                flags = ",".join(ours.degeneracy_first.degenerate_axes) or "none"
            lines.append(f"| {row['name']} | {name} | {ms:.1f} | {acc} | {flags} |")
        ours_ms = results["dcreg_ros"][1]
        if has_ref:
            ours_err = pose_error(results["dcreg_ros"][0], T_ref)
            best_peer_err = min((pose_error(T, T_ref)[0] for n, (T, _, _) in results.items() if n != "dcreg_ros"), default=np.nan)
            acc_note = f"{ours_err[0] * 100:.2f} cm vs best peer {best_peer_err * 100:.2f} cm"
        else:
            acc_note = "no reference"
        summary.append(f"| {row['name']} | {ours_ms:.1f} | {fastest_peer:.1f} | {fastest_peer / ours_ms:.2f}x | {acc_note} |")
        print(f"{row['name']}: " + ", ".join(f"{n} {ms:.1f} ms" for n, (_, ms, _) in results.items()), flush=True)

    header = (
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numba threads {os.environ.get('NUMBA_NUM_THREADS', os.cpu_count())}; small_gicp runs 1 thread, Open3D and "
        f"KISS-ICP their defaults. Peers downsample at {PEER_VOXEL} m; dcreg_ros uses its defaults "
        f"(source {dcreg_ros.RegistrationConfig().preprocess.source_voxel_size} m, target "
        f"{dcreg_ros.RegistrationConfig().preprocess.target_voxel_size} m). Median of {args.runs} warm runs, identity start.\n"
    )
    text = "\n".join([
        header,
        "| pair | method | ms | error vs reference | flagged (first iteration) |",
        "|---|---|---|---|---|",
        *lines,
        "",
        "Speed against the fastest peer in the same run (ratio > 1: dcreg_ros is faster):",
        "",
        "| pair | dcreg_ros ms | fastest peer ms | ratio | accuracy |",
        "|---|---|---|---|---|",
        *summary,
        "",
        "DCReg detection + mitigation per Gauss-Newton iteration (target <= 100 us):",
        "",
        "| pair | iterations | in-loop us/iteration | isolated us (median of 2000) |",
        "|---|---|---|---|",
        *[f"| {n} | {it} | {a:.1f} | {b:.1f} |" for n, it, a, b in detection_rows],
    ])
    print(text)
    if not args.no_write:
        write_section("PAIRWISE", text, "## Pairwise registration (`benchmarks/pairwise.py`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
