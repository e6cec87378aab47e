"""Global registration benchmark: dcreg_ros `global_register` against Open3D FPFH + RANSAC + ICP.

Cases, all seeded (dcreg_ros/eval/wide_baseline.py builds them):

- real: every reference pair of ../shared/data/pairs.tsv with its source moved by a large known
  offset (4-12 m, 20-180 deg of yaw, +-3 deg roll/pitch), several offsets per pair;
- sim map: relocalization of simulated `structured` scans in the map of one pass (two seeds),
  the scans 4-12 m along the path from the map origin and turned by 20-180 deg; the map is
  prepared once per seed (both methods), the per-call time excludes it;
- sim pair: two frames of a `structured` run 4-12 m apart (the source turned by 20-180 deg);
- no overlap: scans from different places, where the right answer is "no result".

The error is measured in the source's own frame against the reference and must stay within the
reference's consistency + 5 cm / 0.5 deg. Each method runs once per case in this one process
after a warm-up; wall and CPU milliseconds are both reported because the machine is shared.
Writes the tables between the GLOBAL markers of benchmarks/RESULTS.md and prints them.

    make bench-global     # or: .venv/bin/python benchmarks/global_registration.py [--per-pair 5] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dcreg_ros.core.global_registration import GlobalRegistrationConfig, GlobalTarget, global_register, global_register_to  # noqa: E402
from dcreg_ros.eval import peers  # noqa: E402
from dcreg_ros.eval.shared_data import shared_data_dir  # noqa: E402
from dcreg_ros.eval.wide_baseline import WideBaselineCase, non_overlapping_cases, real_cases, sim_map_cases, sim_pair_cases  # noqa: E402
from results_file import write_section  # noqa: E402

DATA = shared_data_dir()
OURS = "dcreg_ros"
MARGIN_CM, MARGIN_DEG = 5.0, 0.5


@dataclass
class Run:
    case: WideBaselineCase
    group: str
    method: str
    T: np.ndarray
    success: bool | None  # None: the method has no success test
    fitness: float
    wall_ms: float
    cpu_ms: float
    ambiguity: float | None = None  # dcreg_ros only

    @property
    def error(self) -> tuple[float, float]:
        return self.case.error(self.T) if self.case.overlapping else (float("nan"), float("nan"))

    @property
    def within(self) -> bool:
        return self.case.overlapping and self.case.within(self.T, MARGIN_CM, MARGIN_DEG)


def timed(fn):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - w0) * 1e3, (time.process_time() - c0) * 1e3


class Methods:
    """Our global registration and the Open3D peers, each usable on a prepared target."""

    def __init__(self, open3d_voxels: list[float]) -> None:
        self.config = GlobalRegistrationConfig()
        self.peers: dict[str, peers.Open3DGlobal] = {}
        for v in open3d_voxels:
            try:
                self.peers[f"open3d_{v:.1f}m"] = peers.Open3DGlobal(voxel=v)
            except peers.PeerUnavailable as exc:
                print(f"skipping Open3D: {exc}")

    def names(self) -> list[str]:
        return [OURS, *self.peers]

    def prepare(self, target: np.ndarray) -> dict:
        """Targets prepared once (a prior map) and the milliseconds each method spent on it."""
        out = {OURS: timed(lambda: GlobalTarget.from_points(target, self.config))}
        for name, peer in self.peers.items():
            out[name] = timed(lambda peer=peer: peer.prepare(target))
        return out

    def run(self, name: str, case: WideBaselineCase, group: str, prepared: dict | None) -> Run:
        if name == OURS:
            if prepared is None:
                result, wall, cpu = timed(lambda: global_register(case.source, case.target, self.config))
            else:
                result, wall, cpu = timed(lambda: global_register_to(case.source, prepared[OURS][0], self.config))
            return Run(case, group, name, result.T_target_source, result.success, result.fitness, wall, cpu, result.ambiguity)
        peer = self.peers[name]
        if prepared is None:
            (T, _, fit), wall, cpu = timed(lambda: peer.register(case.source, peer.prepare(case.target)))
        else:
            (T, _, fit), wall, cpu = timed(lambda: peer.register(case.source, prepared[name][0]))
        return Run(case, group, name, T, None, fit, wall, cpu)


def fmt_error(run: Run) -> str:
    if not run.case.overlapping:
        return "(no overlap)"
    cm, deg = run.error
    return f"{cm:.1f} cm / {deg:.2f} deg" if cm < 100 else f"{cm / 100:.1f} m / {deg:.0f} deg"


def fmt_success(run: Run) -> str:
    return "-" if run.success is None else ("yes" if run.success else "no")


def summary_rows(runs: list[Run], groups: list[str], names: list[str]) -> list[str]:
    rows = []
    for group in groups:
        for name in names:
            rs = [r for r in runs if r.group == group and r.method == name]
            if not rs:
                continue
            overlapping = [r for r in rs if r.case.overlapping]
            ms = np.array([r.wall_ms for r in rs])
            cpu = np.array([r.cpu_ms for r in rs])
            if overlapping:
                err = np.array([r.error for r in overlapping])
                within = sum(r.within for r in overlapping)
                ok = [r.error for r in overlapping if r.within]
                ok_err = f"{np.median([e[0] for e in ok]):.1f} / {np.max([e[0] for e in ok]):.1f} cm, {np.max([e[1] for e in ok]):.2f} deg" if ok else "-"
                flagged = "-" if rs[0].success is None else f"{sum(r.success for r in overlapping)}"
                wrong = "-" if rs[0].success is None else f"{sum(r.success and not r.within for r in overlapping)}"
                rows.append(f"| {group} | {name} | {within}/{len(overlapping)} | {ok_err} | {np.median(err[:, 0]):.1f} cm | "
                            f"{flagged} | {wrong} | {np.median(ms):.0f} / {np.max(ms):.0f} | {np.median(cpu):.0f} |")
            else:
                rejected = "-" if rs[0].success is None else f"{sum(not r.success for r in rs)}/{len(rs)} rejected"
                fits = ", ".join(f"{r.fitness:.2f}" for r in rs)
                rows.append(f"| {group} | {name} | {rejected} | fitness {fits} | - | - | - | {np.median(ms):.0f} / {np.max(ms):.0f} | {np.median(cpu):.0f} |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-pair", type=int, default=5, help="offsets per real pair")
    parser.add_argument("--map-scans", type=int, default=5, help="relocalized scans per simulated map")
    parser.add_argument("--open3d-voxels", default="0.5,1.0", help="voxel sizes of the Open3D peer runs (m)")
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch RESULTS.md")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    methods = Methods([float(v) for v in args.open3d_voxels.split(",") if v])
    names = methods.names()

    groups: list[tuple[str, list[WideBaselineCase], np.ndarray | None]] = [
        ("real", real_cases(DATA, per_pair=args.per_pair, seed=0), None)]
    for seed in (0, 1):
        world, cases = sim_map_cases("structured", count=args.map_scans, seed=seed)
        groups.append((f"sim map (seed {seed})", cases, world))
    groups.append(("sim pair", sim_pair_cases("structured", pairs=4, seed=0), None))
    groups.append(("no overlap", non_overlapping_cases(DATA), None))

    warm = groups[0][1][0]
    for name in names:  # numba caches, Open3D allocations
        methods.run(name, warm, "warm-up", None)

    runs: list[Run] = []
    prep_lines = []
    for group, cases, world in groups:
        prepared = None
        if world is not None:
            prepared = methods.prepare(world)
            prep_lines.append(f"| {group} | {len(world)} | " + " | ".join(f"{prepared[n][1]:.0f}" for n in names) + " |")
        for case in cases:
            for name in names:
                run = methods.run(name, case, group, prepared)
                runs.append(run)
                print(f"{case.name:44s} {name:12s} {fmt_error(run):>22s} within={run.within!s:5} success={fmt_success(run):3s} "
                      f"{run.wall_ms:7.0f} ms wall {run.cpu_ms:7.0f} ms cpu", flush=True)

    load_after = os.getloadavg()[0]
    group_names = [g[0] for g in groups]
    header = (
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs (load average {load_before:.1f} "
        f"at the start, {load_after:.1f} at the end), Python {platform.python_version()}. One run per case and "
        f"method after a warm-up. dcreg_ros: `global_register` with the defaults of config/global_registration.yaml "
        f"(features at {methods.config.features.voxel_size:g} m, DCReg refinement). Open3D 0.20: the tutorial pipeline "
        f"(FPFH, RANSAC with edge-length and distance checkers, 100k iterations / 0.999, point-to-point ICP at 0.25 m) "
        f"at the voxel in its name. Errors in the source's own frame; bound = reference consistency + "
        f"{MARGIN_CM:g} cm / {MARGIN_DEG:g} deg (simulated truth: consistency 0). 'success' is dcreg_ros's plausibility "
        f"test (Open3D has none); 'confident wrong' counts success = yes outside the bound; 'ambiguity' (dcreg_ros) "
        f"compares the result with the best rival pose more than 2 m / 10 deg away (0 = none, 1 = as good).\n"
    )
    text = "\n".join([
        header,
        "| group | method | within bound | error when within (median / max, max rotation) | median error (all) | success = yes | confident wrong | ms wall (median / max) | ms CPU (median) |",
        "|---|---|---|---|---|---|---|---|---|",
        *summary_rows(runs, group_names, names),
        "",
        "Prior maps prepared once per seed (ms; the per-call times above exclude this):",
        "",
        "| map | points | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
        *prep_lines,
        "",
        "Every case:",
        "",
        "| case | method | error | within | success | fitness | ambiguity | ms wall | ms CPU |",
        "|---|---|---|---|---|---|---|---|---|",
        *[f"| {r.case.name} | {r.method} | {fmt_error(r)} | {'yes' if r.within else 'no'} | {fmt_success(r)} | {r.fitness:.2f} | "
          f"{'-' if r.ambiguity is None else f'{r.ambiguity:.2f}'} | {r.wall_ms:.0f} | {r.cpu_ms:.0f} |" for r in runs],
    ])
    print(text)
    if not args.no_write:
        write_section("GLOBAL", text, "## Global registration (`benchmarks/global_registration.py`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
