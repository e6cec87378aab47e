"""``dcreg_bag_player``: replay the point clouds of a ROS 1 or ROS 2 bag (sqlite3 or MCAP) onto
ROS 2 topics without rosbag2, for dcreg_node.

    dcreg_bag_player BAG [--topic T] [--rate R | --sync] [--qos reliable|sensor_data] [--wait-for TOPIC]
                     [--imu-topic /imu] [--wheel-odom-topic /wheel/odom] [--ros-args ...]

Publishes ``points`` (sensor_msgs/PointCloud2, remappable), ``/clock`` (rosgraph_msgs/Clock from
the header stamps, for nodes with use_sim_time) and, when the bag has one, the ground truth as
nav_msgs/Odometry on ``ground_truth``, expressed relative to its pose at the first cloud so that
it starts where the odometry starts. ``--imu-topic`` / ``--wheel-odom-topic`` also replay those
topics (each sample before the cloud whose sweep it belongs to) and the bag's /tf_static. ``--sync`` publishes the next cloud as soon as
``dcreg/odometry`` reports the previous one (or after a timeout), i.e. as fast as the node keeps
up without dropping frames. Exits 0 at the end of the bag, 1 with a one-line error for a bad bag.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

import numpy as np
import rclpy
from nav_msgs.msg import Odometry as OdometryMsg
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.exceptions import InvalidTopicNameException
from rclpy.utilities import remove_ros_args
from rclpy.validate_topic_name import validate_topic_name
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Imu, PointCloud2

from ..core.geometry import invert_pose
from ..io.bags import BagError, count_scans, pointcloud_topic, read_ground_truth, read_scans
from ..io.proprioception import read_imu, read_static_transforms, read_wheel_odometry
from ..io.ros_time import stamp_to_nanoseconds
from ..io.scan import Scan
from ..io.skips import SkipLog
from ..io.trajectory import Trajectory
from . import ros_messages as rm
from .launch_support import PLAYER_WAIT
from .matching import poll_until
from .stop_signals import StopSignals
from .stop_signals import install as install_stop_signals

PROG = "dcreg_bag_player"
FIRST_FRAME_TIMEOUT = 60.0  # s: the first frame may include loading or compiling the numba kernels
POINTS_HISTORY = 100  # clouds kept for reliable subscribers that have not acknowledged them yet
DELIVERY_TIMEOUT = 10.0  # s: at the end, how long to wait for reliable subscribers to acknowledge


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description="Replay a bag's point clouds (and ground truth) for dcreg_node.")
    parser.add_argument("bag", help="ROS 1 .bag file, ROS 2 bag directory, or its .mcap/.db3 file")
    parser.add_argument("--topic", default=None, help="PointCloud2 topic in the bag (default: the only one)")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1.0 = real time)")
    pace.add_argument("--sync", action="store_true", help="wait for dcreg/odometry of each cloud before the next")
    parser.add_argument("--sync-timeout", type=float, default=10.0, metavar="S",
                        help=f"--sync: seconds to wait for each odometry message (first cloud: at least {FIRST_FRAME_TIMEOUT:.0f})")
    parser.add_argument("--qos", choices=("reliable", "sensor_data"), default="reliable",
                        help="QoS of the points publisher (default reliable: matches both subscriber kinds, no loss)")
    parser.add_argument("--wait", type=float, default=float(PLAYER_WAIT), metavar="S",
                        help=f"seconds to wait for a subscriber of 'points' before starting (default {PLAYER_WAIT})")
    parser.add_argument("--subscribers", type=int, default=1, metavar="N",
                        help="wait (within --wait) until 'points' has N subscribers, e.g. every node of a launch that reads "
                             "the clouds (default 1)")
    parser.add_argument("--wait-for", action="append", default=[], metavar="TOPIC",
                        help="also wait (within --wait) for a subscriber on TOPIC, e.g. a recorder on ground_truth "
                             "or /clock; repeatable")
    parser.add_argument("--imu-topic", help="also replay this sensor_msgs/Imu topic of the bag (same name), each sample before "
                                             "the cloud whose sweep it falls in")
    parser.add_argument("--wheel-odom-topic", help="also replay this nav_msgs/Odometry topic of the bag (same name)")
    parser.add_argument("--no-ground-truth", action="store_true", help="do not republish the bag's ground truth")
    parser.add_argument("--gt-frame", default="odom", help="frame_id of the republished ground truth (default odom)")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    args = parser.parse_args(argv)
    if not args.sync and not (args.rate > 0 and np.isfinite(args.rate)):
        parser.error("--rate must be a positive number")
    if args.sync_timeout <= 0:
        parser.error("--sync-timeout must be positive")
    if args.subscribers < 1:
        parser.error("--subscribers must be at least 1")
    for topic in args.wait_for:
        try:
            validate_topic_name(topic if topic.startswith("/") else "/" + topic)
        except InvalidTopicNameException as exc:
            parser.error(f"--wait-for {topic!r} is not a valid topic name ({str(exc).splitlines()[0]})")
    return args


def relative_ground_truth(gt: Trajectory, first_stamp: float) -> Trajectory:
    """Ground truth re-expressed relative to its pose nearest ``first_stamp`` (the first cloud),
    matching the odometry's convention that the odom frame is the first sensor pose."""
    ref = int(np.argmin(np.abs(gt.stamps - first_stamp)))
    T0_inv = invert_pose(gt.poses[ref])
    return Trajectory(gt.stamps, np.einsum("ij,njk->nik", T0_inv, gt.poses))


class Player:
    """The ROS side of the player: publishers, the odometry listener of --sync."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.node = Node("dcreg_bag_player")
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
        # a deep writer history: a reliable subscriber that falls behind for a few seconds (a
        # loaded CI machine, a slow first frame) gets every cloud instead of losing overwritten ones
        deep = QoSProfile(depth=POINTS_HISTORY, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
        points_qos = deep if args.qos == "reliable" else qos_profile_sensor_data
        self.points_pub = self.node.create_publisher(PointCloud2, "points", points_qos)
        # reliable /clock also matches the best-effort subscription of rclpy's TimeSource
        self.clock_pub = self.node.create_publisher(Clock, "/clock", reliable)
        self.gt_pub = self.node.create_publisher(OdometryMsg, "ground_truth", deep)
        self.imu_pub = self.node.create_publisher(Imu, args.imu_topic, deep) if args.imu_topic else None
        self.wheel_pub = self.node.create_publisher(OdometryMsg, args.wheel_odom_topic, deep) if args.wheel_odom_topic else None
        self.tf_static_pub = None
        self.sent = 0  # clouds published
        self._cv = threading.Condition()
        self._latest_odom_ns = -1
        self.odom_sub = None
        if args.sync:
            self.odom_sub = self.node.create_subscription(OdometryMsg, "dcreg/odometry", self._on_odometry, reliable)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self._spin, daemon=True)
        self._spinner.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # shutdown while spinning (Ctrl-C): the main thread reports it
            pass

    def _on_odometry(self, msg: OdometryMsg) -> None:
        ns = stamp_to_nanoseconds(msg.header.stamp)
        with self._cv:
            self._latest_odom_ns = max(self._latest_odom_ns, ns)
            self._cv.notify_all()

    def _has_subscriber(self, topic: str) -> bool:
        """A matched subscriber on one of the player's own topics, or any discovered one elsewhere."""
        name = topic if topic.startswith("/") else "/" + topic
        for pub in (self.points_pub, self.clock_pub, self.gt_pub):
            if pub.topic_name == name:
                return pub.get_subscription_count() > 0
        own = 1 if self.odom_sub is not None and self.odom_sub.topic_name == name else 0  # --sync: our own reader
        return self.node.count_subscribers(name) > own

    def wait_for_subscribers(self, timeout: float) -> bool:
        """Wait until 'points' has --subscribers subscribers, every --wait-for topic one (and, with
        --sync, dcreg/odometry a publisher)."""

        def ready() -> bool:
            if self.points_pub.get_subscription_count() < self.args.subscribers or not all(self._has_subscriber(t) for t in self.args.wait_for):
                return False
            return self.odom_sub is None or self.node.count_publishers(self.odom_sub.topic_name) > 0

        if not poll_until(ready, timeout):
            return False
        time.sleep(0.3)  # let the other side finish matching too
        return True

    def wait_until_delivered(self, timeout: float) -> bool:
        """Wait until every reliable subscriber acknowledged every message sent (before exiting)."""
        deadline = time.monotonic() + timeout
        ok = True
        for pub in (self.points_pub, self.gt_pub, self.clock_pub, self.imu_pub, self.wheel_pub):
            if pub is None:
                continue
            remaining = max(deadline - time.monotonic(), 0.0)
            ok = pub.wait_for_all_acked(Duration(seconds=remaining)) and ok
        return ok

    def wait_for_odometry(self, stamp_ns: int, timeout: float) -> bool:
        with self._cv:
            return self._cv.wait_for(lambda: self._latest_odom_ns >= stamp_ns, timeout=timeout)

    def publish_scan(self, scan: Scan) -> int:
        """Publish /clock then the cloud; returns the stamp in nanoseconds as sent."""
        stamp = rm.time_msg(scan.stamp)
        self.clock_pub.publish(Clock(clock=stamp))
        self.points_pub.publish(rm.pointcloud2_msg(scan.points, stamp, scan.frame_id, scan.times, scan.intensity))
        self.sent += 1
        return stamp_to_nanoseconds(stamp)

    def publish_static_transforms(self, transforms: dict) -> bool:
        """The bag's static transforms on /tf_static (transient local, as tf2 latches them);
        False when tf2_msgs is not installed."""
        try:
            from tf2_msgs.msg import TFMessage
        except ImportError:
            return False
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.tf_static_pub = self.node.create_publisher(TFMessage, "/tf_static", latched)
        self.tf_static_pub.publish(TFMessage(transforms=[rm.transform_msg(T, 0.0, parent, child) for (parent, child), T in transforms.items()]))
        return True

    def publish_imu(self, samples, k: int) -> None:
        self.imu_pub.publish(rm.imu_msg(float(samples.stamps[k]), samples.angular_velocity[k], samples.linear_acceleration[k],
                                        samples.frame_id))

    def publish_wheel(self, samples, k: int) -> None:
        twist = rm.BaseTwist(samples.linear_velocity[k], samples.angular_velocity[k], samples.twist_covariance[k])
        self.wheel_pub.publish(rm.odometry_msg(samples.poses[k], samples.pose_covariance[k], float(samples.stamps[k]),
                                               samples.frame_id, samples.child_frame_id, twist))

    def publish_ground_truth(self, stamp: float, T: np.ndarray) -> None:
        msg = rm.odometry_msg(T, np.zeros((6, 6)), stamp, self.args.gt_frame, "ground_truth")
        self.gt_pub.publish(msg)

    def close(self) -> None:
        # stop spinning before the node and the context go away: tearing them down under a
        # waiting executor aborts the process
        self.executor.shutdown(timeout_sec=2.0)
        self._spinner.join(timeout=5.0)
        self.node.destroy_node()


def play(args: argparse.Namespace, stop: StopSignals) -> int:
    """Replay the bag (rclpy must be initialised). Returns the exit status: 0 at the end of the
    bag and after a stop (SIGINT / SIGTERM: Ctrl-C, ros2 launch ending), which prints how far the
    replay got."""
    total = count_scans(args.bag, args.topic)
    player = Player(args)
    try:
        with stop.interruptible():
            return _replay(args, player, total)
    except BaseException:
        if not stop.requested:
            raise
        print(f"{PROG}: stopped: {player.sent}/{total} clouds sent", flush=True)
        return 0
    finally:
        player.close()


def _replay(args: argparse.Namespace, player: Player, total: int) -> int:
    """The replay of :func:`play`: wait for the subscribers, then every cloud (with the IMU,
    wheel and ground-truth messages up to it) at the bag's pace or in sync with the odometry."""
    topic = pointcloud_topic(args.bag, args.topic)
    gt = None if args.no_ground_truth else read_ground_truth(args.bag)
    skips = SkipLog()
    scans = read_scans(args.bag, topic, skips)
    imu = read_imu(args.bag, args.imu_topic) if args.imu_topic else None
    wheel = read_wheel_odometry(args.bag, args.wheel_odom_topic) if args.wheel_odom_topic else None
    transforms = read_static_transforms(args.bag) if (imu is not None or wheel is not None) else {}
    say = (lambda text: None) if args.quiet else (lambda text: print(f"{PROG}: {text}", flush=True))
    if not player.wait_for_subscribers(args.wait):
        waited = ", ".join([player.points_pub.topic_name, *args.wait_for])
        say(f"not every subscriber was there ({waited}) after {args.wait:.0f} s; playing anyway")
    mode = "sync with dcreg/odometry" if args.sync else f"rate x{args.rate:g}"
    say(f"playing {total} clouds from {args.bag} topic {topic} -> {player.points_pub.topic_name} ({mode}, QoS {args.qos})"
        + (f", ground truth -> {player.gt_pub.topic_name}" if gt is not None else ""))
    if transforms and not player.publish_static_transforms(transforms):
        say("tf2_msgs is not installed: the bag's /tf_static is not replayed")
    motion = [(samples, publish, 0) for samples, publish in ((imu, player.publish_imu), (wheel, player.publish_wheel))
              if samples is not None and len(samples)]
    timeouts = 0
    wall_start, bag_start = time.monotonic(), None
    last_print = wall_start
    gt_rel, gt_index = None, 0
    for scan in scans:
        stamp = scan.stamp
        if bag_start is None:
            bag_start = stamp
            gt_rel = relative_ground_truth(gt, stamp) if gt is not None else None
        if not args.sync:
            delay = wall_start + (stamp - bag_start) / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        # IMU and wheel samples up to the end of this cloud's sweep go out first (a driver
        # publishes the cloud once the sweep is complete)
        sweep_end = scan.sweep_end
        for i, (samples, publish, k) in enumerate(motion):
            while k < len(samples) and samples.stamps[k] <= sweep_end:
                publish(samples, k)
                k += 1
            motion[i] = (samples, publish, k)
        # ground truth up to this cloud's stamp goes out first
        while gt_rel is not None and gt_index < len(gt_rel) and gt_rel.stamps[gt_index] <= stamp:
            player.publish_ground_truth(float(gt_rel.stamps[gt_index]), gt_rel.poses[gt_index])
            gt_index += 1
        stamp_ns = player.publish_scan(scan)
        sent = player.sent
        if args.sync:
            timeout = max(args.sync_timeout, FIRST_FRAME_TIMEOUT) if sent == 1 else args.sync_timeout
            if not player.wait_for_odometry(stamp_ns, timeout):
                timeouts += 1
                say(f"no odometry for the cloud at {stamp:.3f} s within {timeout:.0f} s; going on")
        now = time.monotonic()
        if now - last_print >= 2.0 or sent == total:
            last_print = now
            say(f"{sent}/{total} clouds ({100.0 * sent / max(total, 1):.0f}%), bag time {stamp - bag_start:.1f} s, "
                f"{sent / max(now - wall_start, 1e-9):.1f} clouds/s")
    elapsed = time.monotonic() - wall_start
    summary = f"done: {player.sent} clouds in {elapsed:.1f} s"
    if skips.skipped:
        summary += f", {skips.skipped} unreadable message(s) skipped (first: {skips.examples[0]})"
    if args.sync:
        summary += f", {timeouts} sync timeout(s)"
    print(f"{PROG}: {summary}", flush=True)
    if not player.wait_until_delivered(DELIVERY_TIMEOUT):
        say(f"some reliable subscribers had not acknowledged every message after {DELIVERY_TIMEOUT:.0f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``dcreg_bag_player BAG ... [--ros-args ...]``."""
    argv = sys.argv if argv is None else [PROG, *argv]
    args = parse_args(remove_ros_args(argv)[1:])
    try:
        count_scans(args.bag, args.topic)  # a bad bag fails here, before any ROS set-up
    except BagError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    stop = install_stop_signals()
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    try:
        return play(args, stop)
    except BagError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    finally:
        rclpy.try_shutdown()
        stop.exiting()


if __name__ == "__main__":
    sys.exit(main())
