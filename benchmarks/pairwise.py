"""Pairwise registration benchmark: dcreg_ros against Open3D, small_gicp and KISS-ICP.

Every method runs in this one process on the same clouds (../shared/data/pairs.tsv), from the
identity, including its own downsampling and normal/covariance estimation, at one thread and at
every core (one process per budget, every method limited to it). Times are the wall-clock median
of 5 warm runs (one untimed warm-up first, so numba caches and peer allocations are hot).
Also times DCReg detection + mitigation per Gauss-Newton iteration. Writes the tables into
benchmarks/RESULTS.md between the PAIRWISE markers and prints them.

    make bench            # or: .venv/bin/python benchmarks/pairwise.py [--runs 5]
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import subprocess
import sys
import tempfile
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
from dcreg_ros.eval.threads import all_cores, set_thread_budget, thread_budget  # noqa: E402
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


KISS_VOXELS = (1.0, 0.5)  # KISS-ICP's default (max_range / 100 at 100 m) and a finer map for these short-range pairs


def methods() -> dict:
    """Every method at the process's thread budget, as its users run it (its own preprocessing)."""
    table = {"dcreg_ros": lambda s, t: dcreg_ros.register(s, t)}
    factories = [("open3d_p2plane", lambda: peers.open3d_point_to_plane(PEER_VOXEL)),
                 ("small_gicp_plane", lambda: peers.small_gicp_align("PLANE_ICP", PEER_VOXEL)),
                 ("small_gicp_gicp", lambda: peers.small_gicp_align("GICP", PEER_VOXEL))]
    factories += [(f"kiss_icp_{v:g}m", lambda v=v: peers.kiss_icp_pair(voxel_size=v)) for v in KISS_VOXELS]
    for name, factory in factories:
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


def measure(runs: int) -> dict:
    """Every pair with every method at this process's thread budget: {pair: {method: {...}}, ...}."""
    with open(DATA / "pairs.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    table = methods()
    out: dict = {"pairs": {}, "detection": []}
    for row in rows:
        source = read_cloud(DATA / row["source"]).points
        target = read_cloud(DATA / row["target"]).points
        results = {}
        for name, fn in table.items():
            res, ms = timed(lambda: fn(source, target), runs)
            T = res.T_target_source if name == "dcreg_ros" else res
            results[name] = {"T": np.asarray(T).tolist(), "ms": ms}
            if name == "dcreg_ros":
                results[name]["flags"] = ",".join(res.degeneracy_first.degenerate_axes) or "none"
                per_iter = (res.timings["detection"] + res.timings["solve"]) / max(res.iterations, 1) * 1e3
                g = np.linalg.eigvalsh(res.hessian).max() * 1e-3 * np.ones(6)
                out["detection"].append([row["name"], res.iterations, per_iter, detection_cost_us(res.hessian, g)])
        out["pairs"][row["name"]] = {"reference": row["T_target_source_rowmajor"], "methods": results}
        print(f"{row['name']} ({thread_budget()} threads): " + ", ".join(f"{n} {r['ms']:.1f} ms" for n, r in results.items()), flush=True)
    return out


def measure_each_budget(runs: int, budgets: list[int]) -> dict[int, dict]:
    """One process per thread budget (Open3D's OpenMP reads its thread count once, at import)."""
    out = {}
    for budget in budgets:
        with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
            subprocess.run([sys.executable, __file__, "--threads", str(budget), "--runs", str(runs), "--json", tmp.name], check=True)
            out[budget] = json.loads(Path(tmp.name).read_text())
    return out


def accuracy(T: np.ndarray, reference: np.ndarray) -> tuple[str, float]:
    if np.isfinite(reference).all():
        t_err, r_err = pose_error(T, reference)
        return f"{t_err * 100:.2f} cm / {r_err:.3f} deg", t_err
    return f"x {T[0, 3]:+.3f} m (no reference)", float("nan")


def report(per_budget: dict[int, dict], runs: int) -> str:
    budgets = sorted(per_budget)
    main_budget = budgets[-1]
    pairs = per_budget[main_budget]["pairs"]
    ms_head = " | ".join(f"ms {b} thread{'s' if b > 1 else ''}" for b in budgets)
    lines = [f"| pair | method | {ms_head} | error vs reference | flagged (first iteration) |", "|---|---|" + "---|" * len(budgets) + "---|---|"]
    summary = [f"| pair | threads | dcreg_ros ms | fastest peer | its ms | ratio | accuracy |", "|---|---|---|---|---|---|---|"]
    for pair, entry in pairs.items():
        reference = np.array([float(x) for x in entry["reference"].split()]).reshape(4, 4)
        errors = {}
        for name, r in entry["methods"].items():
            text, errors[name] = accuracy(np.array(r["T"]), reference)
            ms = " | ".join(f"{per_budget[b]['pairs'][pair]['methods'][name]['ms']:.1f}" for b in budgets)
            lines.append(f"| {pair} | {name} | {ms} | {text} | {r.get('flags', '')} |")
        best_peer = min((e for n, e in errors.items() if n != "dcreg_ros"), default=float("nan"))
        acc_note = f"{errors['dcreg_ros'] * 100:.2f} cm vs best peer {best_peer * 100:.2f} cm" if np.isfinite(errors["dcreg_ros"]) else "no reference"
        for b in budgets:
            m = per_budget[b]["pairs"][pair]["methods"]
            peer, peer_ms = min(((n, r["ms"]) for n, r in m.items() if n != "dcreg_ros"), key=lambda x: x[1])
            ours = m["dcreg_ros"]["ms"]
            summary.append(f"| {pair} | {b} | {ours:.1f} | {peer} | {peer_ms:.1f} | {peer_ms / ours:.2f}x | {acc_note} |")
    detection = per_budget[main_budget]["detection"]
    header = (
        f"Machine: {platform.machine()}, {all_cores()} cores, Python {platform.python_version()}. Every method runs in one "
        f"process per thread budget ({', '.join(map(str, budgets))}: numba, small_gicp, KISS-ICP and Open3D's OpenMP all "
        f"limited to it), timed wall-clock around the same call (clouds in, pose out, its own preprocessing included), "
        f"median of {runs} warm runs, identity start. Peers downsample at {PEER_VOXEL} m (KISS-ICP: its voxel map at "
        f"{' and '.join(f'{v:g}' for v in KISS_VOXELS)} m, its default and a finer one); dcreg_ros uses its defaults "
        f"(source {dcreg_ros.RegistrationConfig().preprocess.source_voxel_size} m, target "
        f"{dcreg_ros.RegistrationConfig().preprocess.target_voxel_size} m). Errors are from the {main_budget}-thread run.\n"
    )
    return "\n".join([
        header, *lines, "",
        "Speed against the fastest peer at the same thread budget (ratio > 1: dcreg_ros is faster):", "", *summary, "",
        f"DCReg detection + mitigation per Gauss-Newton iteration (target <= 100 us; {main_budget} threads):", "",
        "| pair | iterations | in-loop us/iteration | isolated us (median of 2000) |", "|---|---|---|---|",
        *[f"| {n} | {it} | {a:.1f} | {b:.1f} |" for n, it, a, b in detection],
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, help="measure at this one budget in this process (default: 1 and all cores, one process each)")
    parser.add_argument("--json", help="with --threads: write the measurements here instead of a report")
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch RESULTS.md")
    args = parser.parse_args()
    if args.threads is not None:
        set_thread_budget(args.threads)
        result = measure(args.runs)
        if args.json:
            Path(args.json).write_text(json.dumps(result))
            return 0
        per_budget = {args.threads: result}
    else:
        per_budget = measure_each_budget(args.runs, sorted({1, all_cores()}))
    text = report(per_budget, args.runs)
    print(text)
    if not args.no_write:
        write_section("PAIRWISE", text, "## Pairwise registration (`benchmarks/pairwise.py`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
