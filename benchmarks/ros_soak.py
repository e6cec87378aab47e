"""Soak test of dcreg_node over the real middleware: steady rate, overload, back to the steady rate.

Streams simulated 128-beam clouds (768 columns, about 1.9 MB each: one forward pass through the
'structured' scene, a distinct cloud for every one sent, so the node's map grows along the whole
path until it reaches the max_range pruning) from this process to a dcreg_node process (reliable
on both ends) in phases, by default 10 Hz for 30 s, 20 Hz for 15 s (the node cannot keep up: its
one-slot buffer drops clouds) and 10 Hz for 30 s. The clouds are simulated before the first is
sent (about 0.2 s each on 2 cores; 900 clouds take 1.7 GB). Stamps always advance by the
sensor period (0.1 s): the overload is a replay at twice real time. Measured per phase and over
time:

- processed: clouds whose nav_msgs/Odometry came back; latency publish() -> odometry (median,
  p95, max); the node's RSS and CPU;
- the node's own counters at the end (`received`, `processed`, `dropped_frames`,
  `lost_messages` reported by the middleware, `stamp_gaps` estimated from the stamps), and the
  balance sent = processed + dropped + lost, with lost both as this process sees it
  (sent - received) and as the node estimates it.

Each transport set-up runs in fresh processes: the shipped Fast DDS profile
(config/fastdds_large_shm.xml, what the launch files use) and, for comparison, Fast DDS as
installed. Writes the ROS_SOAK section of benchmarks/RESULTS.md. Several minutes per set-up;
not part of `make test`.

    .venv/bin/python benchmarks/ros_soak.py [--phases 10:30 20:15 10:30] [--transports profile default] [--no-write]
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PERIOD = 0.1  # s: the simulated sensor's period; stamps advance by it whatever the send rate
BEAMS = 128
COLUMNS = 768  # 128 x 768 points of 20 bytes: about 1.9 MB, the size of the clouds
START_SKIP = 15  # simulated frames left out (the start from rest)
SAMPLE_PERIOD = 1.0  # s between RSS / CPU samples
WINDOW = 10.0  # s: the time series in RESULTS.md
DRAIN = 5.0  # s after the last cloud for the last odometry and diagnostics
TRANSPORTS = {"profile": "shipped profile (16 MB SHM)", "default": "Fast DDS as installed"}


@dataclass(frozen=True)
class Phase:
    rate_hz: float
    seconds: float

    @staticmethod
    def parse(text: str) -> "Phase":
        rate, seconds = text.split(":")
        return Phase(float(rate), float(seconds))

    @property
    def label(self) -> str:
        return f"{self.rate_hz:g} Hz {self.seconds:g} s"


def node_command() -> list[str]:
    script = Path(sys.executable).parent / "dcreg_node"
    return [str(script)] if script.exists() else [sys.executable, "-m", "dcreg_ros.nodes.odometry_node"]


def transport_env(transport: str) -> dict[str, str]:
    """Environment of every process of one run: the shipped profile, or none at all."""
    from dcreg_ros.nodes.transport import PROFILE_VARIABLES, profile_environment

    env = {k: v for k, v in os.environ.items() if k not in PROFILE_VARIABLES}
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    if transport == "profile":
        env.update(profile_environment())
    return env


def clouds(count: int) -> list:
    """PointCloud2 messages of ``count`` consecutive frames of one forward pass (their stamps
    are set when sent)."""
    from dcreg_ros.nodes import ros_messages as rm
    from dcreg_ros.sim import simulate

    started = time.perf_counter()
    sim = simulate("structured", frames=START_SKIP + count, beams=BEAMS, columns=COLUMNS, seed=0, imu=None, wheel=None)
    print(f"simulated {count} clouds along {sim.ground_truth.path_length():.0f} m in {time.perf_counter() - started:.0f} s",
          file=sys.stderr, flush=True)
    return [rm.pointcloud2_msg(s.points, 0.0, s.frame_id, s.times, s.intensity) for s in sim.scans[START_SKIP:]]


class ProcessMonitor:
    """Samples a process's RSS (MB) and CPU (cores) every SAMPLE_PERIOD seconds."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.process = psutil.Process(pid)
        self.samples: list[tuple[float, float, float]] = []  # (time, rss MB, cpu cores)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        last_t, last_cpu = time.perf_counter(), sum(self.process.cpu_times()[:2])
        while not self._stop.wait(SAMPLE_PERIOD):
            try:
                cpu = sum(self.process.cpu_times()[:2])
                rss = self.process.memory_info().rss / 2**20
            except Exception:  # the process ended
                return
            now = time.perf_counter()
            self.samples.append((now, rss, (cpu - last_cpu) / (now - last_t)))
            last_t, last_cpu = now, cpu

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)


def run(phases: list[Phase], domain: int, depth: int, viewer: bool) -> dict:
    """One soak run in this process (its Fast DDS set-up comes from the environment)."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from nav_msgs.msg import Odometry as OdometryMsg
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import PointCloud2

    from dcreg_ros.io.ros_time import stamp_to_nanoseconds
    from dcreg_ros.nodes import ros_messages as rm

    messages = clouds(sum(int(round(ph.rate_hz * ph.seconds)) for ph in phases))
    size_mb = len(messages[0].data) / 2**20
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain))
    node = subprocess.Popen(node_command() + ["--ros-args", "-p", "input_qos:=reliable"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    monitor = ProcessMonitor(node.pid)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    probe = rclpy.create_node("soak_probe", context=context)
    lock = threading.Lock()
    odometry: dict[int, float] = {}
    last_diagnostic: dict[str, str] = {}
    reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)

    def on_odometry(msg: OdometryMsg) -> None:
        now = time.perf_counter()
        with lock:
            odometry[stamp_to_nanoseconds(msg.header.stamp)] = now

    def on_diagnostics(msg: DiagnosticArray) -> None:
        values = {kv.key: kv.value for kv in msg.status[0].values}
        if "received" in values:
            with lock:
                last_diagnostic.clear()
                last_diagnostic.update(values)

    probe.create_subscription(OdometryMsg, "dcreg/odometry", on_odometry, reliable)
    probe.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, reliable)
    if viewer:  # what RViz does with the default config: the registered cloud and the map
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        probe.create_subscription(PointCloud2, "dcreg/cloud_registered", lambda msg: None,
                                  QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST))
        probe.create_subscription(PointCloud2, "dcreg/local_map", lambda msg: None, latched)
    publisher = probe.create_publisher(PointCloud2, "points", QoSProfile(
        depth=depth, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST))
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(probe)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    sent: list[tuple[int, float, int]] = []  # (stamp ns, publish time, phase index)
    try:
        deadline = time.monotonic() + 120.0
        while (publisher.get_subscription_count() == 0 or probe.count_publishers("/dcreg/odometry") == 0) \
                and time.monotonic() < deadline and node.poll() is None:
            time.sleep(0.05)
        time.sleep(1.0)
        monitor.start()
        start = time.perf_counter()
        k = 0
        phase_start = start
        for p, phase in enumerate(phases):
            count = int(round(phase.rate_hz * phase.seconds))
            for j in range(count):
                delay = phase_start + j / phase.rate_hz - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                msg = messages[k]
                msg.header.stamp = rm.time_msg(1000.0 + PERIOD * k)
                ns = stamp_to_nanoseconds(msg.header.stamp)
                sent.append((ns, time.perf_counter(), p))
                publisher.publish(msg)
                k += 1
            phase_start += phase.seconds
        time.sleep(DRAIN)
    finally:
        monitor.stop()
        executor.shutdown(timeout_sec=2.0)
        spinner.join(timeout=5.0)
        probe.destroy_node()
        rclpy.try_shutdown(context=context)
        node.send_signal(signal.SIGINT)
        try:
            _, stderr = node.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            node.kill()
            _, stderr = node.communicate()
    with lock:
        got = dict(odometry)
        counters = dict(last_diagnostic)
    return summarise(phases, sent, got, counters, monitor.samples, start, size_mb, stderr)


def _latency_stats(values: list[float]) -> dict:
    if not values:
        return {"median": float("nan"), "p95": float("nan"), "max": float("nan")}
    a = np.array(values)
    return {"median": float(np.median(a)), "p95": float(np.percentile(a, 95)), "max": float(a.max())}


def summarise(phases: list[Phase], sent: list, got: dict, counters: dict, samples: list, start: float, size_mb: float,
              stderr: str) -> dict:
    out_phases = []
    bounds = np.cumsum([0.0] + [ph.seconds for ph in phases])
    for p, phase in enumerate(phases):
        mine = [(ns, t) for ns, t, q in sent if q == p]
        latency = [(got[ns] - t) * 1e3 for ns, t in mine if ns in got]
        in_phase = [(rss, cpu) for t, rss, cpu in samples if bounds[p] <= t - start < bounds[p + 1]]
        out_phases.append({
            "label": phase.label, "sent": len(mine), "processed": len(latency), **_latency_stats(latency),
            "rss_max": max((r for r, _ in in_phase), default=float("nan")),
            "cpu_mean": float(np.mean([c for _, c in in_phase])) if in_phase else float("nan"),
        })
    # the last part of the last phase: has the node recovered?
    tail_start = bounds[-2] + 0.5 * phases[-1].seconds
    tail = [(got[ns] - t) * 1e3 for ns, t, _ in sent if t - start >= tail_start and ns in got]
    timeline = [(round(t - start, 1), round(rss, 1), round(cpu, 2)) for t, rss, cpu in samples]
    windows = []
    for w in range(int(np.ceil(bounds[-1] / WINDOW))):
        mine = [(ns, t) for ns, t, _ in sent if w * WINDOW <= t - start < (w + 1) * WINDOW]
        lat = [(got[ns] - t) * 1e3 for ns, t in mine if ns in got]
        rss = [r for t, r, _ in samples if w * WINDOW <= t - start < (w + 1) * WINDOW]
        windows.append({"start": w * WINDOW, "sent": len(mine), "processed": len(lat), **_latency_stats(lat),
                        "rss": max(rss, default=float("nan"))})

    def count(key: str) -> int | None:
        return int(counters[key]) if key in counters else None

    return {"size_mb": size_mb, "phases": out_phases, "sent": len(sent), "odometry": sum(ns in got for ns, _, _ in sent),
            "tail": {"sent": sum(1 for _, t, _ in sent if t - start >= tail_start), "processed": len(tail), **_latency_stats(tail)},
            "node": {k: count(k) for k in ("received", "processed", "dropped_frames", "lost_messages", "stamp_gaps",
                                           "bad_messages", "out_of_order")},
            "timeline": timeline, "windows": windows, "node_stderr_tail": stderr[-1500:]}


def run_child(transport: str, phases: list[Phase], domain: int, depth: int, viewer: bool) -> dict:
    """One soak run in a fresh Python process (Fast DDS reads its profile once per process)."""
    args = [sys.executable, __file__, "--child", transport, str(domain), str(depth), str(int(viewer)), "--phases", *[f"{p.rate_hz:g}:{p.seconds:g}" for p in phases]]
    total = sum(p.seconds for p in phases)
    out = subprocess.run(args, env=transport_env(transport), capture_output=True, text=True, timeout=total + 1800)
    if out.returncode != 0:
        raise RuntimeError(f"soak run ({transport}) failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["transport"] = transport
    result["load"] = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return result


def balance(r: dict) -> str:
    """sent = processed + dropped + lost, with lost as seen here and as the node estimates it."""
    n = r["node"]
    if n["received"] is None:
        return "node counters missing"
    seen_lost = r["sent"] - n["received"]
    estimated = n["stamp_gaps"]
    text = f"{r['sent']} = {n['processed']} + {n['dropped_frames']} + {seen_lost}"
    ok = r["sent"] == n["processed"] + n["dropped_frames"] + seen_lost
    text += " (balanced)" if ok else " (NOT balanced)"
    if estimated is not None:
        text += f"; node's estimate of lost: {estimated} from stamp gaps, {n['lost_messages']} reported by the middleware"
    return text


def report(results: list[dict], phases: list[Phase], depth: int) -> str:
    load = "; ".join(f"{r['load']}" for r in results if "load" in r) or ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other work (load average at the end of each run: {load}), "
        f"Python {platform.python_version()}, ROS 2 Jazzy rclpy + Fast DDS from PyPI wheels, localhost discovery. "
        f"{BEAMS}-beam clouds of {results[0]['size_mb']:.1f} MB ('structured' scene, per-point times) published from a "
        f"separate process (reliable, keep last {depth}) to `dcreg_node` (`input_qos: reliable`, its other defaults); "
        f"phases: {', '.join(p.label for p in phases)}; stamps advance by {PERIOD} s per cloud whatever the rate "
        "(the overload is a replay at twice real time). latency = `publish()` -> its nav_msgs/Odometry received, ms.",
        "",
        "| Fast DDS | phase | processed / sent | latency median / p95 / max ms | node RSS max MB | node CPU cores |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        for ph in r["phases"]:
            lines.append(f"| {TRANSPORTS[r['transport']]} | {ph['label']} | {ph['processed']} / {ph['sent']} "
                         f"| {ph['median']:.0f} / {ph['p95']:.0f} / {ph['max']:.0f} | {ph['rss_max']:.0f} | {ph['cpu_mean']:.2f} |")
        t = r["tail"]
        lines.append(f"| {TRANSPORTS[r['transport']]} | last half of the last phase | {t['processed']} / {t['sent']} "
                     f"| {t['median']:.0f} / {t['p95']:.0f} / {t['max']:.0f} | | |")
    lines += ["", "Counters at the end (node diagnostics; sent = processed + dropped + lost):", ""]
    for r in results:
        lines.append(f"- {TRANSPORTS[r['transport']]}: {balance(r)}.")
    lines += ["", f"Over time, per {WINDOW:.0f} s of sending: processed / sent, latency median / p95 ms, node RSS MB:", ""]
    for r in results:
        lines += [f"{TRANSPORTS[r['transport']]}:", "", "| from s | processed / sent | latency median / p95 ms | RSS MB |", "|---|---|---|---|"]
        for w in r["windows"]:
            lines.append(f"| {w['start']:.0f} | {w['processed']} / {w['sent']} | {w['median']:.0f} / {w['p95']:.0f} | {w['rss']:.0f} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phases", nargs="+", default=["10:30", "20:15", "10:30"], metavar="HZ:SECONDS")
    parser.add_argument("--transports", nargs="+", choices=tuple(TRANSPORTS), default=["profile", "default"])
    parser.add_argument("--depth", type=int, default=10, help="history depth of the reliable cloud publisher (default 10)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--json", type=Path, help="also write the raw results (per phase, timeline, node log tail) to this file")
    parser.add_argument("--from-json", type=Path, help="do not run: report the results saved by an earlier --json (same --phases, --depth)")
    parser.add_argument("--no-viewer", action="store_true", help="do not subscribe to the registered cloud and the map (as RViz does)")
    parser.add_argument("--child", nargs=4, metavar=("TRANSPORT", "DOMAIN", "DEPTH", "VIEWER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    phases = [Phase.parse(p) for p in args.phases]
    if args.child:
        transport, domain, depth, viewer = args.child
        print(json.dumps(run(phases, int(domain), int(depth), viewer == "1")))
        return 0
    domain = 150 + os.getpid() % 60
    results = json.loads(args.from_json.read_text()) if args.from_json else []
    for k, transport in enumerate([] if args.from_json else args.transports):
        print(f"soak, {TRANSPORTS[transport]}: {', '.join(p.label for p in phases)} ...", flush=True)
        results.append(run_child(transport, phases, domain + k, args.depth, not args.no_viewer))
        r = results[-1]
        for ph in r["phases"]:
            print(f"  {ph['label']}: {ph['processed']}/{ph['sent']} processed, latency {ph['median']:.0f}/{ph['p95']:.0f}/{ph['max']:.0f} ms, "
                  f"RSS max {ph['rss_max']:.0f} MB", flush=True)
        print(f"  {balance(r)}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    text = report(results, phases, args.depth)
    print(text)
    if not args.no_write:
        from results_file import write_section

        write_section("ROS_SOAK", text, "## ROS 2 soak: overload and recovery (`benchmarks/ros_soak.py`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
