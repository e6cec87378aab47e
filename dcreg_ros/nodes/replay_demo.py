"""The ROS 2 part of `make demo`: replay a bag through `dcreg_node` over the real middleware.

Starts `dcreg_node` (shipped params file, sim time) and `dcreg_bag_player --sync` as processes in
a private ROS domain with the shipped Fast DDS profile (as the launch file does), records what
the node publishes and prints a summary of it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

from ..core.degeneracy import AXIS_NAMES
from .matching import all_matched, poll_until
from .transport import profile_environment

ROOT = Path(__file__).resolve().parents[2]
NODE_START_TIMEOUT = 180.0  # s: the node process loads rclpy and the compiled numba kernels (a minute on a loaded machine)
LAST_DIAGNOSTIC_TIMEOUT = 30.0  # s: after the last odometry, its diagnostic


def _command(module: str) -> list[str]:
    return [sys.executable, "-m", module]


def replay_through_node(bag: Path, params_file: Path, timeout: float = 180.0, domain: int | None = None) -> dict:
    """Replay ``bag`` through a dcreg_node process in ROS domain ``domain`` (default: one derived
    from the pid); returns the player's result and every odometry and diagnostics message."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from nav_msgs.msg import Odometry
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    domain = 150 + os.getpid() % 60 if domain is None else domain
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1",
               **profile_environment())
    log = open(bag.parent / "dcreg_node.log", "w")
    node_proc = subprocess.Popen(_command("dcreg_ros.nodes.odometry_node") + ["--ros-args", "--params-file", str(params_file),
                                 "-p", "use_sim_time:=true"], env=env, stdout=log, stderr=subprocess.STDOUT)
    # the probe runs in this process with its discovery range as the environment has it (a
    # library does not change process-wide settings); it still finds the local node and player
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    received: dict[str, list] = {"odometry": [], "diagnostics": []}
    lock = threading.Lock()
    executor = spinner = None
    try:
        probe = rclpy.create_node("dcreg_demo_probe", context=context)
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)

        def keep(key):
            def callback(msg):
                with lock:
                    received[key].append(msg)
            return callback

        subscriptions = [probe.create_subscription(Odometry, "dcreg/odometry", keep("odometry"), qos),
                         probe.create_subscription(DiagnosticArray, "/diagnostics", keep("diagnostics"), qos)]
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(probe)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        # the probe must be matched with the node before the first cloud goes out, or it misses
        # messages; the player only waits for the node
        # (the node's side of the match follows within milliseconds; its first odometry comes only
        # after the player process has started and sent the first cloud)
        poll_until(lambda: all_matched(subscriptions) or node_proc.poll() is not None, NODE_START_TIMEOUT)
        started = time.monotonic()
        player = subprocess.run(_command("dcreg_ros.nodes.bag_player") + [str(bag), "--sync"], env=env,
                                capture_output=True, text=True, timeout=timeout)
        wall = time.monotonic() - started
        poll_until(lambda: _last_diagnostic_arrived(received, lock), LAST_DIAGNOSTIC_TIMEOUT)  # it follows the last odometry
    finally:
        # stop the spinner before the context goes: an executor left spinning on a shut-down
        # context can hold the GIL in a tight loop and starve this thread (a hang, seen when the
        # player failed)
        if executor is not None:
            executor.shutdown(timeout_sec=5.0)
            spinner.join(timeout=5.0)
        rclpy.try_shutdown(context=context)
        node_proc.terminate()
        try:
            node_proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            node_proc.kill()
        log.close()
    with lock:
        odometry, diagnostics = list(received["odometry"]), list(received["diagnostics"])
    return {"player": player, "wall_seconds": wall, "odometry": odometry, "diagnostics": diagnostics}


def _last_diagnostic_arrived(received: dict[str, list], lock: threading.Lock) -> bool:
    """The diagnostic of the newest odometry received is there too."""
    with lock:
        if not received["odometry"]:
            return True
        stamp = received["odometry"][-1].header.stamp
        wanted = stamp.sec + 1e-9 * stamp.nanosec
        return any(kv.key == "cloud_stamp" and abs(float(kv.value) - wanted) < 1e-6
                   for d in received["diagnostics"] if d.status for kv in d.status[0].values)


def summarize_replay(record: dict, ground_truth=None) -> str:
    """Readable summary of what the node published."""
    odometry, diagnostics = record["odometry"], record["diagnostics"]
    lines = []
    player = record["player"]
    last_player_line = (player.stdout.strip().splitlines() or ["(no output)"])[-1]
    lines.append(f"  player: exit {player.returncode}, {last_player_line}")
    lines.append(f"  received {len(odometry)} nav_msgs/Odometry on dcreg/odometry and {len(diagnostics)} DiagnosticArray "
                 f"in {record['wall_seconds']:.1f} s")
    levels = Counter(int.from_bytes(d.status[0].level, "little") if isinstance(d.status[0].level, bytes) else int(d.status[0].level)
                     for d in diagnostics if d.status)
    lines.append(f"  diagnostic levels: OK {levels.get(0, 0)}, WARN {levels.get(1, 0)}, ERROR {levels.get(2, 0)}")
    flagged = Counter()
    for d in diagnostics:
        values = {kv.key: kv.value for kv in d.status[0].values} if d.status else {}
        for axis in filter(None, (a.strip() for a in values.get("degenerate_axes", "").split(","))):
            flagged[axis] += 1
    if flagged:
        lines.append("  flagged axes (frames): " + ", ".join(f"{a} {flagged[a]}" for a in AXIS_NAMES if flagged[a]))
    if diagnostics and diagnostics[-1].status:
        lines.append(f"  last diagnostic: {diagnostics[-1].status[0].message}")
    if odometry:
        cov = np.asarray(odometry[-1].pose.covariance).reshape(6, 6)
        sd = np.sqrt(np.clip(np.diag(cov), 0, None))
        p = odometry[-1].pose.pose.position
        lines.append(f"  last pose x {p.x:+.2f} y {p.y:+.2f} z {p.z:+.2f} m (odom); 1-sigma x {sd[0]:.4f} y {sd[1]:.4f} z {sd[2]:.4f} m, "
                     f"roll {np.degrees(sd[3]):.3f} deg (x: the motion prior's, along the corridor; y, z, roll: the LiDAR's)")
        if ground_truth is not None and len(ground_truth) == len(odometry):
            gt = ground_truth.poses
            rel = np.linalg.inv(gt[0]) @ gt[-1]
            lines.append(f"  ground truth moved x {rel[0, 3]:+.2f} y {rel[1, 3]:+.2f} z {rel[2, 3]:+.2f} m in the first frame's axes")
    return "\n".join(lines)
