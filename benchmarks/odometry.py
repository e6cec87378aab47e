"""Odometry benchmark: every scene x motion profile x motion-prior source, several seeds, in one process.

Methods on the same scans: dcreg_ros with `none`, the default (`dcreg_prior` with the LiDAR-only
constant-velocity prior), the old default (`dcreg_prior` at kappa_target 20), the reference `dcreg`
and the paper's baselines; the default with the simulated IMU, the wheel odometry and both;
KISS-ICP, Open3D frame-to-frame ICP and wheel-odometry dead reckoning. ATE / RPE with evo (SE(3)
aligned), median wall-clock ms per frame around each method's frame call (points in, pose out),
every method at the same thread budget (--threads, default every core; a separate timing pass
at 1 thread). Goals are checked on the medians over seeds. Per-sequence results are cached in
out/benchmarks/odometry/ keyed by a hash of the package's source and of this script, so an
interrupted run resumes and a change to the code measures again. Writes the ODOMETRY section
of benchmarks/RESULTS.md (with the commit it measured) and plots in benchmarks/plots/.

    .venv/bin/python benchmarks/odometry.py [--frames 300] [--seeds 1,2,3] [--scenes ...] [--motions ...] [--threads N]
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dcreg_ros  # noqa: E402
from dcreg_ros.core.geometry import invert_pose, pose_to_xyz_rpy  # noqa: E402
from dcreg_ros.core.motion_prior import interpolate_pose  # noqa: E402
from dcreg_ros.eval.metrics import detection_scores, trajectory_errors  # noqa: E402
from dcreg_ros.eval.peers import PeerUnavailable, kiss_icp_frames, open3d_frames  # noqa: E402
from dcreg_ros.eval.runner import run_odometry  # noqa: E402
from dcreg_ros.eval.provenance import source_hash  # noqa: E402
from dcreg_ros.eval.shared_data import shared_data_dir  # noqa: E402
from dcreg_ros.eval.threads import all_cores, set_thread_budget, thread_budget  # noqa: E402
from dcreg_ros.io.cloud_files import read_cloud  # noqa: E402
from dcreg_ros.io.motion_inputs import MotionInputs  # noqa: E402
from dcreg_ros.io.scan import Scan  # noqa: E402
from dcreg_ros.io.trajectory import Trajectory, read_kitti  # noqa: E402
from dcreg_ros.sim import MOTION_PROFILES, SCENE_NAMES, simulate  # noqa: E402
from results_file import write_section  # noqa: E402

DATA = shared_data_dir()
PLOTS = ROOT / "benchmarks" / "plots"
CACHE = ROOT / "out" / "benchmarks" / "odometry"
DEGENERATE = ("corridor", "corridor_sparse", "tunnel", "open_field")
DEFAULT = "default"
LIDAR_METHODS = {  # name: (strategy, config overrides)
    "none": ("none", {}),
    DEFAULT: ("dcreg_prior", {}),
    "dcreg_prior kappa20 (old default)": ("dcreg_prior", {"motion_prior": {"prior_strength": "kappa_target"}, "degeneracy": {"kappa_target": 20.0}}),
    "dcreg": ("dcreg", {}),
    "solution_remapping": ("solution_remapping", {}),
    "tsvd": ("tsvd", {}),
    "tikhonov": ("tikhonov", {}),
    "fcn_sr": ("fcn_sr", {}),
}
SOURCES = {"default + IMU": "imu", "default + wheel": "wheel", "default + IMU + wheel": "imu_wheel"}
PEERS = ("kiss_icp", "open3d_f2f", "wheel dead reckoning")


def _errors(traj: Trajectory, gt: Trajectory) -> dict:
    e = trajectory_errors(traj, gt)
    # error along the body x axis (the unobservable one of the degenerate scenes) over time
    body = np.array([(invert_pose(R) @ A)[0, 3] for A, R in zip(e.estimate_aligned, e.reference)])
    return {"ate": e.ate_rmse, "rpe": e.rpe_rmse, "x_error": body.tolist(), "stamps": e.stamps.tolist()}


def run_sequence(scene: str, motion: str, seed: int, frames: int, peers: bool) -> dict:
    """Every method on one simulated sequence: {method: {ate, rpe, ms, x_error, stamps, ...}}."""
    sim = simulate(scene, frames=frames, seed=seed, motion=motion)
    gt = sim.ground_truth
    truth = (np.array([s.stamp for s in sim.scans]), sim.degenerate_mask)
    mounting = {"imu_to_lidar": list(pose_to_xyz_rpy(sim.imu.T_lidar_imu)), "lidar_to_base": list(pose_to_xyz_rpy(sim.wheel.T_base_lidar))}
    out = {}
    for name, (strategy, overrides) in LIDAR_METHODS.items():
        config = dcreg_ros.OdometryConfig.from_dict({**overrides, "motion_prior": {**overrides.get("motion_prior", {}), "source": "constant_velocity"}})
        result = run_odometry(sim.scans, config, strategy)
        row = {**_errors(result.trajectory, gt), "ms": float(np.median(result.frame_ms()))}
        if name == DEFAULT:
            sc = detection_scores(truth[0][1:], result.masks[1:], *truth)
            row.update(precision=sc.precision, recall=sc.recall)
        out[name] = row
    for name, source in SOURCES.items():
        config = dcreg_ros.OdometryConfig.from_dict({"motion_prior": {"source": source, **mounting}})
        # the mountings are known (the config above): no static transforms to look them up in
        result = run_odometry(sim.scans, config, motion=MotionInputs(imu=sim.imu.samples, wheel=sim.wheel.samples))
        out[name] = {**_errors(result.trajectory, gt), "ms": float(np.median(result.frame_ms()))}
    w = sim.wheel.samples
    dead = Trajectory(gt.stamps, [interpolate_pose(w.stamps, w.poses, t) @ sim.wheel.T_base_lidar for t in gt.stamps])
    out["wheel dead reckoning"] = {**_errors(dead, gt), "ms": float("nan")}
    if peers:
        for name, frames_of in (("kiss_icp", lambda: kiss_icp_frames(sim.scans, 100.0)), ("open3d_f2f", lambda: open3d_frames(sim.scans))):
            try:
                fr = list(frames_of())
            except PeerUnavailable as exc:
                print(f"skipping {name}: {exc}", flush=True)
                continue
            out[name] = {**_errors(Trajectory([f.stamp for f in fr], [f.pose for f in fr]), gt), "ms": float(np.median([f.ms for f in fr[1:]]))}
    return out


def code_key() -> str:
    """What a cached result depends on besides its arguments: the package's source, this script
    and the thread budget."""
    return hashlib.sha1((source_hash() + Path(__file__).read_text() + str(thread_budget())).encode()).hexdigest()[:12]


def cached_sequence(scene: str, motion: str, seed: int, frames: int, peers: bool) -> dict:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{scene}_{motion}_{seed}_{frames}{'' if peers else '_nopeers'}_{code_key()}.json"
    if path.exists():
        return json.loads(path.read_text())
    t0 = time.perf_counter()
    result = run_sequence(scene, motion, seed, frames, peers)
    path.write_text(json.dumps(result))
    print(f"  {scene} {motion} seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    return result


TIMED = (DEFAULT, "kiss_icp", "open3d_f2f")


def timing_sequences(scenes: list[str], frames: int) -> dict:
    """{scene: {method: median ms per frame}} of the default and the peers at this process's
    thread budget (smooth motion, seed 1)."""
    out = {}
    for scene in scenes:
        sim = simulate(scene, frames=frames, seed=1, motion="smooth")
        config = dcreg_ros.OdometryConfig.from_dict({"motion_prior": {"source": "constant_velocity"}})
        row = {DEFAULT: float(np.median(run_odometry(sim.scans, config, "dcreg_prior").frame_ms()))}
        for name, frames_of in (("kiss_icp", lambda: kiss_icp_frames(sim.scans, 100.0)), ("open3d_f2f", lambda: open3d_frames(sim.scans))):
            try:
                row[name] = float(np.median([f.ms for f in list(frames_of())[1:]]))
            except PeerUnavailable:
                continue
        out[scene] = row
        print(f"  timing {scene} at {thread_budget()} thread(s): " + ", ".join(f"{k} {v:.1f} ms" for k, v in row.items()), flush=True)
    return out


def timing_by_budget(scenes: list[str], frames: int, budgets: list[int]) -> dict[int, dict]:
    """:func:`timing_sequences` once per thread budget, each in its own process (Open3D's OpenMP
    reads its thread count once, when it is loaded)."""
    out = {}
    for budget in budgets:
        with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
            subprocess.run([sys.executable, __file__, "--threads", str(budget), "--frames", str(frames), "--scenes", ",".join(scenes),
                            "--timing-json", tmp.name], check=True)
            out[budget] = json.loads(Path(tmp.name).read_text())
    return out


def timing_table(timing: dict[int, dict]) -> str:
    budgets = sorted(timing)
    lines = ["| scene | threads | " + " | ".join(TIMED) + " | default / kiss_icp |", "|---|---|" + "---|" * len(TIMED) + "---|"]
    for scene in next(iter(timing.values())):
        for b in budgets:
            row = timing[b][scene]
            ratio = row[DEFAULT] / row["kiss_icp"] if "kiss_icp" in row else float("nan")
            lines.append(f"| {scene} | {b} | " + " | ".join(_f(row.get(m), "{:.1f}") for m in TIMED) + f" | {_f(ratio, '{:.2f}x')} |")
    return "\n".join(lines)


def _f(v, fmt="{:.3f}") -> str:
    return fmt.format(v) if isinstance(v, (int, float)) and np.isfinite(v) else "-"


def summary_rows(results: dict) -> dict:
    """{(scene, motion): {method: {"ate": median, "ates": per seed, "ms": median}}}."""
    rows = {}
    for (scene, motion), per_seed in results.items():
        methods = per_seed[0].keys()
        rows[(scene, motion)] = {m: {"ate": float(np.median([r[m]["ate"] for r in per_seed if m in r])),
                                     "ates": [r[m]["ate"] for r in per_seed if m in r],
                                     "ms": float(np.nanmedian([r[m]["ms"] for r in per_seed if m in r]))}
                                 for m in methods}
    return rows


def tables(rows: dict, methods: list[str]) -> str:
    lines = []
    for motion in MOTION_PROFILES:
        keys = [k for k in rows if k[1] == motion]
        if not keys:
            continue
        lines += [f"**{motion}**: median ATE (m) over the seeds", "",
                  "| scene | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
        for key in keys:
            lines.append(f"| {key[0]} | " + " | ".join(_f(rows[key].get(m, {}).get("ate")) for m in methods) + " |")
        lines.append("")
    return "\n".join(lines)


def per_seed_table(rows: dict, methods: list[str]) -> str:
    lines = ["| scene | motion | method | ATE m per seed | ms/frame |", "|---|---|---|---|---|"]
    for (scene, motion), m in rows.items():
        for name in methods:
            if name in m:
                lines.append(f"| {scene} | {motion} | {name} | {' '.join(_f(a) for a in m[name]['ates'])} | {_f(m[name]['ms'], '{:.1f}')} |")
    return "\n".join(lines)


def verdicts(rows: dict) -> list[str]:
    """The goals of issue 7 on the medians; every failure listed."""
    out, fails = [], {"lidar": [], "drift": [], "peers": [], "source": [], "wheel": [], "speed": []}
    for (scene, motion), m in rows.items():
        none, default = m["none"]["ate"], m[DEFAULT]["ate"]
        if default > max(1.1 * none, none + 0.05):
            fails["lidar"].append(f"{scene}/{motion} {default:.3f} vs none {none:.3f}")
        if none > 1.0 and default > 0.5 * none:
            fails["drift"].append(f"{scene}/{motion} {default:.2f} vs none {none:.2f}")
        if scene in DEGENERATE:
            for peer in ("kiss_icp", "open3d_f2f"):
                if peer in m and default >= m[peer]["ate"]:
                    fails["peers"].append(f"{scene}/{motion} {default:.2f} vs {peer} {m[peer]['ate']:.2f}")
        for name in SOURCES:
            ate = m[name]["ate"]
            bound = 0.5 * default if default > 0.5 else 1.1 * default + 0.01
            if ate > bound:
                fails["source"].append(f"{scene}/{motion} {name} {ate:.3f} (bound {bound:.3f})")
            if "wheel" in name and ate > 1.1 * m["wheel dead reckoning"]["ate"] + 0.01:
                fails["wheel"].append(f"{scene}/{motion} {name} {ate:.3f} vs dead reckoning {m['wheel dead reckoning']['ate']:.3f}")
        if "kiss_icp" in m and m[DEFAULT]["ms"] > m["kiss_icp"]["ms"]:
            fails["speed"].append(f"{scene}/{motion} {m[DEFAULT]['ms']:.1f} vs {m['kiss_icp']['ms']:.1f} ms")
    n = len(rows)
    text = {"lidar": "LiDAR only, default never worse than none (<= max(1.1 none, none + 5 cm))",
            "drift": "LiDAR only, where none drifts > 1 m: default <= 0.5 none",
            "peers": "LiDAR only, degenerate scenes: default beats KISS-ICP and Open3D",
            "source": "with IMU / wheel: <= 0.5 x LiDAR-only default where it drifts > 0.5 m, else <= 1.1 x + 1 cm",
            "wheel": "with wheel odometry: <= 1.1 x dead reckoning + 1 cm",
            "speed": "ms/frame of the default at or below KISS-ICP's"}
    for key, label in text.items():
        f = fails[key]
        out.append(f"- {label}: {'met' if not f else 'not met'} ({n - len(f) if key != 'source' else 3 * n - len(f)}"
                   f" of {n if key != 'source' else 3 * n} sequences)" + ("; fails: " + "; ".join(f) if f else ""))
    return out


def plot_errors(results: dict) -> list[Path]:
    """Per scene and motion (first seed): the error along the body x axis over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    PLOTS.mkdir(parents=True, exist_ok=True)
    paths = []
    for scene in dict.fromkeys(k[0] for k in results):
        motions = [k for k in results if k[0] == scene]
        fig, axes = plt.subplots(1, len(motions), figsize=(5 * len(motions), 3.4), squeeze=False)
        for ax, key in zip(axes[0], motions):
            first = results[key][0]
            for name in ("none", DEFAULT, *SOURCES, "kiss_icp", "wheel dead reckoning"):
                if name in first:
                    t = np.array(first[name]["stamps"])
                    ax.plot(t - t[0], first[name]["x_error"], lw=1, label=name)
            ax.set_title(f"{scene}, {key[1]}")
            ax.set_xlabel("time (s)")
            ax.set_ylabel("error along body x (m), SE(3)-aligned")
            ax.set_ylim(-3, 3)
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        path = PLOTS / f"odometry_{scene}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


REAL_REPEATS = 5


def real_sequences() -> str:
    lines = ["| sequence | method | ATE m | ms/frame | flagged (share of frames) |", "|---|---|---|---|---|"]
    cases = []
    files = sorted(glob.glob(str(DATA / "degenerate" / "ouster_os0_8" / "*.pcd")))
    cases.append(("real os0-8 (10 frames, no reference)", [Scan(0.1 * i, read_cloud(f).points) for i, f in enumerate(files)], None))
    base = DATA / "pairs" / "ouster_os1_128"
    files = sorted(glob.glob(str(base / "*.pcd")))
    gt = read_kitti(next(base.glob("*poses_kitti.txt")))
    cases.append(("real os1-128 (3 frames)", [Scan(0.1 * i, read_cloud(f).points) for i, f in enumerate(files)],
                  Trajectory(np.arange(len(gt)) * 0.1, gt.poses)))
    for name, scans, gt in cases:
        # a few frames per sequence: the time is the median over REAL_REPEATS runs of each method,
        # the methods taking turns so a change in the machine's load hits all of them
        ms: dict[str, list[float]] = {}
        rows: dict[str, str] = {}
        for _ in range(REAL_REPEATS):
            for method in ("none", DEFAULT):
                strategy, overrides = LIDAR_METHODS[method]
                result = run_odometry(scans, dcreg_ros.OdometryConfig.from_dict(overrides), strategy)
                ms.setdefault(method, []).extend(result.frame_ms()[1:])
                ate = trajectory_errors(result.trajectory, gt).ate_rmse if gt is not None else float("nan")
                flags = result.masks[1:].mean(axis=0)
                flagged = ", ".join(f"{a} {v:.0%}" for a, v in zip(dcreg_ros.AXIS_NAMES, flags) if v > 0) or "none"
                rows[method] = f"| {name} | {method} | {_f(ate)} | {{ms}} | {flagged} |"
            fr = list(kiss_icp_frames(scans, 100.0))
            ms.setdefault("kiss_icp", []).extend(f.ms for f in fr[1:])
            ate = trajectory_errors(Trajectory([f.stamp for f in fr], [f.pose for f in fr]), gt).ate_rmse if gt is not None else float("nan")
            rows["kiss_icp"] = f"| {name} | kiss_icp | {_f(ate)} | {{ms}} | |"
        for method, row in rows.items():
            lines.append(row.format(ms=_f(float(np.nanmedian(ms[method])), "{:.1f}")))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--scenes", default=",".join(SCENE_NAMES))
    parser.add_argument("--motions", default=",".join(MOTION_PROFILES))
    parser.add_argument("--no-peers", action="store_true", help="leave KISS-ICP and Open3D out")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="thread budget of every method (default 0: every core)")
    parser.add_argument("--no-timing", action="store_true", help="leave out the timing pass at 1 thread and every core")
    parser.add_argument("--timing-json", help=argparse.SUPPRESS)  # internal: one timing pass into this file
    args = parser.parse_args()
    set_thread_budget(args.threads)
    if args.timing_json:
        Path(args.timing_json).write_text(json.dumps(timing_sequences(args.scenes.split(","), args.frames)))
        return 0
    seeds = [int(s) for s in args.seeds.split(",")]
    t_start = time.perf_counter()
    results = {}
    for motion in args.motions.split(","):
        for scene in args.scenes.split(","):
            results[(scene, motion)] = [cached_sequence(scene, motion, seed, args.frames, not args.no_peers) for seed in seeds]
    rows = summary_rows(results)
    lidar = ["none", DEFAULT, "dcreg_prior kappa20 (old default)", "dcreg", "tikhonov", "solution_remapping", "fcn_sr", "kiss_icp", "open3d_f2f"]
    with_sources = ["none", DEFAULT, *SOURCES, "wheel dead reckoning", "kiss_icp"]
    plots = [] if args.no_write else plot_errors(results)
    timing = None if args.no_timing else timing_by_budget(args.scenes.split(","), args.frames, sorted({1, all_cores()}))
    text = "\n".join([
        f"Simulated scenes: {args.frames} frames (30 s), 32 beams, range noise 1.5 cm, seeds {args.seeds}, motion profiles "
        f"{', '.join(args.motions.split(','))}; the simulated IMU (200 Hz, MEMS noise and constant biases) and wheel odometry "
        f"(50 Hz, 1-4 % scale error, slip) of the same runs; all methods in one process on the same scans, every one at "
        f"{thread_budget()} thread(s) (numba, KISS-ICP, Open3D's OpenMP). ATE after an SE(3) alignment; 'default' is "
        f"dcreg_prior with the LiDAR-only constant-velocity prior (the package default); the tsvd baseline equals "
        f"solution_remapping (docs/ALGORITHM.md) and is in the per-seed table only. ms per frame: wall clock around each "
        f"method's frame call (points in, pose out). Sequences come from a cache keyed by the code ({code_key()}): "
        f"{time.perf_counter() - t_start:.0f} s for this report.", "",
        "### LiDAR only", "", tables(rows, lidar), "",
        *(["### Time per frame by thread budget (smooth, seed 1; wall clock, median)", "", timing_table(timing), ""] if timing else []),
        "### With the robot's IMU and wheel odometry", "", tables(rows, with_sources), "",
        "### Goals (issue 7, on the medians)", "", *verdicts(rows), "",
        "### Real sequences (no IMU)", "", real_sequences(), "",
        "### Every seed", "", per_seed_table(rows, [*lidar, "tsvd", *SOURCES, "wheel dead reckoning"]), "",
        "Error along the body x axis (the one the degenerate scenes leave unobservable) over time, first seed:", "",
        *[f"![{p.stem}](plots/{p.name})" for p in plots],
    ])
    print(text)
    if not args.no_write:
        write_section("ODOMETRY", text, "## Odometry (`benchmarks/odometry.py`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
