"""Odometry benchmark: every strategy of dcreg_ros and KISS-ICP on simulated degenerate scenes
(with ground truth and per-frame degeneracy truth) and on the real sequences of ../shared/data.

All methods run in this one process on the same scans. Reports ATE / RPE (evo, SE(3) aligned),
median ms per frame, and detection precision / recall / false-alarm rate against the simulator's
truth; writes the tables into benchmarks/RESULTS.md (ODOMETRY section) and one trajectory plot per
scene into benchmarks/plots/.

    .venv/bin/python benchmarks/odometry.py [--frames 300] [--scenes corridor,tunnel] [--strategies ...]
"""

from __future__ import annotations

import argparse
import glob
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dcreg_ros  # noqa: E402
from dcreg_ros.eval.shared_data import shared_data_dir  # noqa: E402
from dcreg_ros.eval.metrics import detection_scores, trajectory_errors  # noqa: E402
from dcreg_ros.eval.peers import PeerUnavailable, kiss_icp_odometry  # noqa: E402
from dcreg_ros.eval.runner import run_odometry  # noqa: E402
from dcreg_ros.io.cloud_files import read_cloud  # noqa: E402
from dcreg_ros.io.scan import Scan  # noqa: E402
from dcreg_ros.io.trajectory import Trajectory, read_kitti  # noqa: E402
from dcreg_ros.sim import SCENE_NAMES, simulate  # noqa: E402
from results_file import write_section  # noqa: E402

DATA = shared_data_dir()
PLOTS = ROOT / "benchmarks" / "plots"


def run_methods(scans: list[Scan], strategies: list[str], with_kiss: bool, max_range: float):
    """{method: (Trajectory, ms per frame array, masks or None, stamps)}"""
    out = {}
    for strategy in strategies:
        result = run_odometry(scans, dcreg_ros.OdometryConfig(), strategy)
        out[f"dcreg_ros/{strategy}"] = (result.trajectory, result.frame_ms(), result.masks, np.array([r.stamp for r in result.records]))
    if with_kiss:
        try:
            stamps, poses, ms = kiss_icp_odometry(scans, max_range)
            out["kiss_icp"] = (Trajectory(stamps, poses), ms[1:], None, stamps)
        except PeerUnavailable as exc:
            print(f"skipping KISS-ICP: {exc}")
    return out


def scene_rows(name: str, runs: list[tuple[dict, Trajectory | None, tuple | None]]) -> list[dict]:
    """One row per method, pooled over the runs (seeds) of a scene: median ATE and RPE with the
    per-seed ATEs, median ms/frame, detection scores summed over the runs."""
    rows = []
    for method in runs[0][0]:
        ates, rpes, ms = [], [], []
        tp = fp = fn = frames = alarms = 0
        flag_rates = []
        for results, gt, truth in runs:
            traj, frame_ms, masks, stamps = results[method]
            ms.append(float(np.nanmedian(frame_ms)))
            if gt is not None and len(traj) > 1:
                e = trajectory_errors(traj, gt)
                ates.append(e.ate_rmse)
                rpes.append(e.rpe_rmse)
            if truth is not None and masks is not None:
                sc = detection_scores(stamps[1:], masks[1:], *truth)
                tp, fp, fn = tp + sc.true_positive, fp + sc.false_positive, fn + sc.false_negative
                frames, alarms = frames + sc.frames, alarms + sc.false_alarm_frames
            elif masks is not None and len(masks) > 1:
                flag_rates.append(masks[1:].mean(axis=0))
        row = {"scene": name, "method": method, "runs": len(runs), "frames": len(runs[0][0][method][0]), "ms": float(np.median(ms))}
        if ates:
            row.update(ate=float(np.median(ates)), ate_runs=ates, rpe=float(np.median(rpes)))
        if frames:
            row.update(precision=tp / (tp + fp) if tp + fp else float("nan"), recall=tp / (tp + fn) if tp + fn else float("nan"),
                       false_alarms=alarms / frames)
        if flag_rates:
            row.update(flag_rate={a: float(v) for a, v in zip(dcreg_ros.AXIS_NAMES, np.mean(flag_rates, axis=0))})
        rows.append(row)
    return rows


def plot_scene(name: str, results: dict, gt: Trajectory | None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    PLOTS.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(9, 4))
    if gt is not None:
        ax.plot(gt.positions[:, 0], gt.positions[:, 1], "k--", lw=1.5, label="ground truth")
    for method, (traj, *_rest) in results.items():
        if gt is not None and len(traj) > 1:
            e = trajectory_errors(traj, gt)
            xy = e.estimate_aligned[:, :2, 3]
        else:
            xy = traj.positions[:, :2]
        ax.plot(xy[:, 0], xy[:, 1], lw=1, label=method.replace("dcreg_ros/", ""))
    ax.set_title(f"{name}: trajectories (SE(3)-aligned to the ground truth)")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    path = PLOTS / f"odometry_{name}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _f(v, fmt):
    return fmt.format(v) if isinstance(v, (int, float)) and np.isfinite(v) else "-"


def table(rows: list[dict]) -> str:
    lines = ["| scene | method | ATE m (median) | ATE per seed | RPE m/frame | ms/frame | precision | recall | false alarms |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        seeds = " ".join(f"{a:.2f}" for a in r.get("ate_runs", []))
        lines.append(f"| {r['scene']} | {r['method']} | {_f(r.get('ate'), '{:.3f}')} | {seeds} | {_f(r.get('rpe'), '{:.4f}')} | {_f(r['ms'], '{:.1f}')} | "
                     f"{_f(r.get('precision'), '{:.2f}')} | {_f(r.get('recall'), '{:.2f}')} | {_f(r.get('false_alarms'), '{:.1%}')} |")
    return "\n".join(lines)


DCREG_STRATEGIES = ("dcreg_ros/dcreg", "dcreg_ros/dcreg_prior")


def verdicts(rows: list[dict]) -> list[str]:
    """The benchmark goals of the odometry issue, checked on the numbers above."""
    out = []
    by = {}
    for r in rows:
        by.setdefault(r["scene"], {})[r["method"]] = r
    for scene in ("corridor", "tunnel", "corridor_sparse"):
        if scene not in by:
            continue
        m = by[scene]
        none = m.get("dcreg_ros/none", {}).get("ate")
        best_name, best = min(((k, m[k]["ate"]) for k in DCREG_STRATEGIES if k in m and "ate" in m[k]),
                              key=lambda kv: kv[1], default=(None, np.nan))
        kiss = m.get("kiss_icp", {}).get("ate", np.nan)
        baseline = min(((k, v["ate"]) for k, v in m.items() if k not in DCREG_STRATEGIES and k.startswith("dcreg_ros/") and "ate" in v),
                       key=lambda kv: kv[1], default=(None, np.nan))
        if none:
            out.append(f"- {scene}: best DCReg strategy {best_name} median ATE {best:.3f} m vs none {none:.3f} m "
                       f"({(1 - best / none) * 100:.0f}% lower, goal >= 30%); KISS-ICP {kiss:.3f} m "
                       f"({'beaten' if best < kiss else 'not beaten'}); best baseline {baseline[0]} {baseline[1]:.3f} m")
    if "structured" in by:
        m = by["structured"]
        none = m.get("dcreg_ros/none", {}).get("ate")
        if none:
            costs = ", ".join(f"{k.replace('dcreg_ros/', '')} {(v['ate'] / none - 1) * 100:+.1f}%" for k, v in m.items()
                              if k.startswith("dcreg_ros/") and k != "dcreg_ros/none" and "ate" in v)
            fa = ", ".join(f"{k.replace('dcreg_ros/', '')} {v.get('false_alarms', np.nan):.1%}" for k, v in m.items() if k in DCREG_STRATEGIES)
            out.append(f"- structured: ATE against none (goal <= +5%): {costs}; false alarms of the DCReg detection "
                       f"(goal < 5% of frames): {fa}")
    speed = []
    for scene, m in by.items():
        if "kiss_icp" in m:
            ours = m.get("dcreg_ros/dcreg_prior", {}).get("ms", np.nan)
            speed.append(f"{scene} {ours:.1f} vs {m['kiss_icp']['ms']:.1f}")
    if speed:
        out.append("- ms/frame, dcreg_prior (the default) vs KISS-ICP: " + "; ".join(speed))
    return out


def real_sequences(strategies: list[str]) -> list[dict]:
    rows = []
    files = sorted(glob.glob(str(DATA / "degenerate" / "ouster_os0_8" / "*.pcd")))
    scans = [Scan(0.1 * i, read_cloud(f).points) for i, f in enumerate(files)]
    rows += scene_rows("real os0-8 (10 frames)", [(run_methods(scans, strategies, True, 100.0), None, None)])
    base = DATA / "pairs" / "ouster_os1_128"
    files = sorted(glob.glob(str(base / "*.pcd")))
    scans = [Scan(0.1 * i, read_cloud(f).points) for i, f in enumerate(files)]
    gt = read_kitti(next(base.glob("*poses_kitti.txt")))
    gt = Trajectory(np.arange(len(gt)) * 0.1, gt.poses)
    rows += scene_rows("real lb_n3 (3 frames)", [(run_methods(scans, strategies, True, 100.0), gt, None)])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--seeds", default="1,2,3", help="simulation seeds per scene (results are reported as medians)")
    parser.add_argument("--beams", type=int, default=32)
    parser.add_argument("--noise", type=float, default=0.015)
    parser.add_argument("--scenes", default=",".join(SCENE_NAMES))
    parser.add_argument("--strategies", default=",".join(dcreg_ros.STRATEGIES))
    parser.add_argument("--no-kiss", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    strategies = args.strategies.split(",")
    rows, plots = [], []
    t_start = time.perf_counter()
    seeds = [int(s) for s in args.seeds.split(",")]
    for scene in args.scenes.split(","):
        t0 = time.perf_counter()
        runs = []
        for seed in seeds:
            sim = simulate(scene, frames=args.frames, beams=args.beams, seed=seed, noise=args.noise)
            truth = (np.array([s.stamp for s in sim.scans]), sim.degenerate_mask)
            runs.append((run_methods(sim.scans, strategies, not args.no_kiss, 100.0), sim.ground_truth, truth))
            if seed == seeds[0]:
                plots.append(plot_scene(f"{scene}", runs[0][0], sim.ground_truth))
        scene_r = scene_rows(scene, runs)
        rows += scene_r
        print(f"{scene}: {time.perf_counter() - t0:.0f} s", flush=True)
        print(table(scene_r), flush=True)
    rows += real_sequences(strategies)
    flag_lines = [f"- {r['scene']} {r['method']}: flagged " + ", ".join(f"{a} {v:.0%}" for a, v in r["flag_rate"].items() if v > 0)
                  for r in rows if "flag_rate" in r]
    text = "\n".join([
        f"Simulated scenes: {args.frames} frames, {args.beams} beams, range noise {args.noise} m, seeds {args.seeds} "
        f"(ATE is the median over seeds, per-seed values listed; plots show the first seed); all methods "
        f"in one process on the same scans; default OdometryConfig; KISS-ICP with its defaults (max range 100 m). "
        f"Total run {time.perf_counter() - t_start:.0f} s.",
        "",
        table(rows),
        "",
        "Goals:",
        *verdicts(rows),
        "",
        "Flag rates on sequences without degeneracy truth:",
        *flag_lines,
        "",
        *[f"![{p.stem}](plots/{p.name})" for p in plots],
    ])
    print(text)
    if not args.no_write:
        write_section("ODOMETRY", text, "## Odometry (`benchmarks/odometry.py`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
