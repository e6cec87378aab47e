"""End-to-end latency of dcreg_node over the real middleware: cloud published -> odometry received.

For simulated 64- and 128-beam clouds (1024 columns, the 'structured' scene) streamed at 10 Hz
from this process to a dcreg_node process (its defaults: registered cloud, path, map, markers
and diagnostics all published), measures per frame:

- latency: publish() called -> nav_msgs/Odometry of that cloud received here (wall clock);
- pipeline: the core's own per-frame time in the same run (``time_total_ms`` of /diagnostics);
- overhead = latency - pipeline: transport both ways, PointCloud2 conversion, queueing;
- sustained rate, drops (clouds without odometry) and the latency trend over the run.

Each run uses fresh processes, once with Fast DDS as installed and once with the shipped profile
(config/fastdds_large_shm.xml: 16 MB shared-memory segments, set on both ends as the launch
files do; see docs/ROS2.md): the default 512 KB segment makes megabyte clouds slow. Writes the
table between the ROS_LATENCY markers of benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/ros_latency.py [--frames 120] [--beams 64 128] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from nav_msgs.msg import Odometry as OdometryMsg  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import PointCloud2  # noqa: E402

from dcreg_ros.io.ros_time import seconds_to_nanoseconds, stamp_to_nanoseconds  # noqa: E402
from dcreg_ros.nodes import ros_messages as rm  # noqa: E402
from dcreg_ros.nodes.transport import PROFILE_VARIABLES, profile_environment  # noqa: E402
from dcreg_ros.sim import simulate  # noqa: E402
from results_file import write_section  # noqa: E402

RATE_HZ = 10.0
START_SKIP = 15  # simulated frames not streamed (1.5 s start from rest)
WARMUP = 10  # frames excluded from the statistics: map building, first-frame kernel loading
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)


def node_command() -> list[str]:
    script = Path(sys.executable).parent / "dcreg_node"
    return [str(script)] if script.exists() else [sys.executable, "-m", "dcreg_ros.nodes.odometry_node"]


class Recorder:
    """Receives odometry and diagnostics of the node under test, stamped on arrival."""

    def __init__(self, context: rclpy.Context) -> None:
        self.node = Node("latency_probe", context=context)
        self.odometry: dict[int, float] = {}
        self.diagnostics: dict[int, dict[str, str]] = {}
        self.lock = threading.Lock()
        self.node.create_subscription(OdometryMsg, "dcreg/odometry", self._on_odometry, RELIABLE)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, RELIABLE)

    def _on_odometry(self, msg: OdometryMsg) -> None:
        now = time.perf_counter()
        with self.lock:
            self.odometry[stamp_to_nanoseconds(msg.header.stamp)] = now

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        values = {kv.key: kv.value for kv in msg.status[0].values}
        if "cloud_stamp" in values:
            ns = seconds_to_nanoseconds(float(values["cloud_stamp"]))
            with self.lock:
                self.diagnostics[ns] = values


def run(beams: int, frames: int, qos: str, domain: int) -> dict:
    """Stream ``frames`` simulated clouds at 10 Hz to a fresh dcreg_node; per-frame numbers.
    Runs in a process of its own (Fast DDS reads its profile once per process)."""
    # the simulator starts from rest with a swinging heading: stream the steady walk after it
    sim = simulate("structured", frames=frames + START_SKIP, beams=beams, seed=0)
    messages = [rm.pointcloud2_msg(s.points, s.stamp, s.frame_id, s.times, s.intensity) for s in sim.scans[START_SKIP:]]
    size_kb = len(messages[0].data) / 1024
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    node = subprocess.Popen(node_command() + ["--ros-args", "-p", f"input_qos:={qos}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    recorder = Recorder(context)
    publisher = recorder.node.create_publisher(PointCloud2, "points", RELIABLE if qos == "reliable" else qos_profile_sensor_data)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(recorder.node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    sent: dict[int, float] = {}
    try:
        deadline = time.monotonic() + 60.0
        while (publisher.get_subscription_count() == 0 or recorder.node.count_publishers("/dcreg/odometry") == 0) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        start = time.perf_counter()
        for k, msg in enumerate(messages):
            delay = start + k / RATE_HZ - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            ns = stamp_to_nanoseconds(msg.header.stamp)
            sent[ns] = time.perf_counter()
            publisher.publish(msg)
        time.sleep(3.0)  # the last frames and their diagnostics
    finally:
        executor.shutdown(timeout_sec=2.0)
        spinner.join(timeout=5.0)
        recorder.node.destroy_node()
        rclpy.try_shutdown(context=context)
        node.send_signal(signal.SIGINT)
        try:
            node.wait(timeout=30)
        except subprocess.TimeoutExpired:
            node.kill()
    return summarise(beams, qos, size_kb, sent, recorder)


def summarise(beams: int, qos: str, size_kb: float, sent: dict[int, float], recorder: Recorder) -> dict:
    stamps = sorted(sent)
    measured = [ns for ns in stamps[WARMUP:] if ns in recorder.odometry and ns in recorder.diagnostics]
    latency = np.array([(recorder.odometry[ns] - sent[ns]) * 1e3 for ns in measured])
    pipeline = np.array([float(recorder.diagnostics[ns]["time_total_ms"]) for ns in measured])
    node_ms = np.array([float(recorder.diagnostics[ns]["time_node_ms"]) for ns in measured])
    queued = np.array([float(recorder.diagnostics[ns]["time_queued_ms"]) for ns in measured])
    convert = np.array([float(recorder.diagnostics[ns]["time_convert_ms"]) for ns in measured])
    overhead = latency - pipeline
    received = sorted(recorder.odometry[ns] for ns in stamps if ns in recorder.odometry)
    rate = (len(received) - 1) / (received[-1] - received[0]) if len(received) > 1 else 0.0
    last = recorder.diagnostics[max(recorder.diagnostics)] if recorder.diagnostics else {}
    first = recorder.diagnostics[measured[0]] if measured else {}
    after = stamps[WARMUP:]
    odometry_after = sum(ns in recorder.odometry for ns in after)
    t = np.array([sent[ns] - sent[stamps[0]] for ns in measured])
    slope = float(np.polyfit(t, latency, 1)[0]) if len(t) > 2 else float("nan")  # ms per s of streaming
    third = max(len(latency) // 3, 1)
    return {
        "beams": beams, "qos": qos, "size_kb": size_kb, "sent": len(stamps), "odometry": len(received),
        "measured": len(measured), "node_received": int(last.get("received", 0)), "node_dropped": int(last.get("dropped_frames", 0)),
        "sent_after": len(after), "odometry_after": odometry_after,
        "dropped_after": int(last.get("dropped_frames", 0)) - int(first.get("dropped_frames", 0)),
        "latency_median": float(np.median(latency)), "latency_p95": float(np.percentile(latency, 95)),
        "pipeline_median": float(np.median(pipeline)), "pipeline_p95": float(np.percentile(pipeline, 95)),
        "overhead_median": float(np.median(overhead)), "overhead_p95": float(np.percentile(overhead, 95)),
        "node_median": float(np.median(node_ms - pipeline)), "queued_median": float(np.median(queued)),
        "convert_median": float(np.median(convert)),
        "rate": rate, "slope": slope,
        "first_third": float(np.median(latency[:third])), "last_third": float(np.median(latency[-third:])),
    }


def table(results: list[dict], frames: int) -> str:
    """Markdown table (and its explanation) of the runs."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other work (load average at the end: {load}), "
        f"Python {platform.python_version()}, ROS 2 Jazzy rclpy + Fast DDS from PyPI wheels, localhost discovery. "
        f"{frames} simulated clouds per run ('structured' scene, 1024 columns, per-point times) published at "
        f"{RATE_HZ:.0f} Hz from a separate process to `dcreg_node` with its defaults (registered cloud, path, map, "
        f"markers, diagnostics all on). Statistics, counts and drops skip the first {WARMUP} frames.",
        "",
        "latency = `publish()` of the cloud -> its nav_msgs/Odometry received (wall clock, same process); "
        "pipeline = the core's per-frame time in the same run (`time_total_ms` of /diagnostics); "
        "overhead = latency - pipeline: transport both ways, queueing in the node's one-slot buffer (`queue`) and the "
        "node's own work (`node`: PointCloud2 -> numpy `convert`, the core's untimed bookkeeping, covariance and odometry "
        "message); trend = slope of the latency over the run.",
        "",
        "| beams | cloud | QoS | Fast DDS | latency median / p95 ms | pipeline median / p95 ms | overhead median / p95 ms | node (convert) / queue ms "
        "| odometry / sent | node dropped | sustained Hz | trend ms/s (first -> last third) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['beams']} | {r['size_kb'] / 1024:.1f} MB | {r['qos']} | {r['transport']} | {r['latency_median']:.1f} / {r['latency_p95']:.1f} "
            f"| {r['pipeline_median']:.1f} / {r['pipeline_p95']:.1f} | {r['overhead_median']:.1f} / {r['overhead_p95']:.1f} "
            f"| {r['node_median']:.1f} ({r['convert_median']:.1f}) / {r['queued_median']:.1f} | {r['odometry_after']} / {r['sent_after']} | {r['dropped_after']} "
            f"| {r['rate']:.1f} | {r['slope']:+.2f} ({r['first_third']:.0f} -> {r['last_third']:.0f}) |")
    return "\n".join(lines) + "\n"


def run_child(beams: int, frames: int, qos: str, transport: str, domain: int) -> dict:
    """One run in a fresh Python process with the chosen Fast DDS transport set-up."""
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_VARIABLES}
    if transport == "large_shm":
        env.update(profile_environment())
    out = subprocess.run([sys.executable, __file__, "--child", str(beams), str(frames), qos, str(domain)], env=env,
                         capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"run {beams} beams {qos} {transport} failed:\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["transport"] = {"default": "default", "large_shm": "shipped profile (16 MB SHM)"}[transport]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--beams", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--transports", nargs="+", choices=("default", "large_shm"), default=["default", "large_shm"])
    parser.add_argument("--best-effort", action="store_true", help="also run the first beam count with sensor_data QoS on both ends")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--child", nargs=4, metavar=("BEAMS", "FRAMES", "QOS", "DOMAIN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        beams, frames, qos, domain = args.child
        print(json.dumps(run(int(beams), int(frames), qos, int(domain))))
        return 0
    domain = 150 + os.getpid() % 60
    runs = [(b, "reliable", t) for b in args.beams for t in args.transports]
    if args.best_effort:
        runs.append((args.beams[0], "sensor_data", args.transports[0]))
    results = []
    for k, (beams, qos, transport) in enumerate(runs):
        print(f"{beams} beams, {qos}, Fast DDS {transport}: streaming {args.frames} clouds at {RATE_HZ:.0f} Hz ...", flush=True)
        results.append(run_child(beams, args.frames, qos, transport, domain + k))
        r = results[-1]
        print(f"  latency median {r['latency_median']:.1f} ms, pipeline {r['pipeline_median']:.1f} ms, "
              f"overhead {r['overhead_median']:.1f} ms (node {r['node_median']:.1f}), {r['odometry']}/{r['sent']} odometry", flush=True)
    text = table(results, args.frames)
    print(text)
    if not args.no_write:
        write_section("ROS_LATENCY", text, "## ROS 2 end-to-end latency (`benchmarks/ros_latency.py`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
