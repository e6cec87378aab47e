"""Pieces the dcreg nodes share: the one-slot worker that always processes the newest message,
the size checks and conversion of an incoming cloud, and the choice of TF transport (tf2_ros
when installed, else a /tf publisher of TFMessage)."""

from __future__ import annotations

import threading
import time
import traceback
from typing import Any, Callable

from ..core.pointcloud import InputError
from ..io.pointcloud2 import pointcloud2_to_scan
from ..io.scan import Scan
from .stop_signals import install as install_stop_signals

STOP_POLL_SECONDS = 0.1  # the spinning loop looks for a stop request this often


def scan_from_cloud(msg: Any, max_points: int) -> Scan:
    """The Scan of a PointCloud2 message (its frame, seconds); raises InputError for a cloud
    with more than ``max_points`` points, an empty one or a malformed one."""
    n = int(msg.width) * int(msg.height)
    if n > max_points:
        raise InputError(f"cloud has {n} points, more than max_points = {max_points}")
    if n == 0:
        raise InputError("empty cloud (0 points)")
    return pointcloud2_to_scan(msg)


class LatestOnlyWorker:
    """A worker thread fed through a one-slot buffer: ``offer`` parks a message (replacing an
    unprocessed one, which counts as dropped) and the thread calls ``process(msg, received_at)``
    with the newest. A slow frame therefore never queues stale clouds.

    ``on_error(msg, exc, trace)`` is called for an exception escaping ``process``; the worker
    goes on with the next message.
    """

    def __init__(self, process: Callable[[Any, float], None], on_error: Callable[[Any, Exception, str], None],
                 name: str = "dcreg_worker") -> None:
        self._process, self._on_error = process, on_error
        self._cv = threading.Condition()
        self._slot: tuple[Any, float] | None = None
        self._stopping = False
        self.received = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def lock(self) -> threading.Condition:
        """The buffer's lock, for counters shared with the subscription callback."""
        return self._cv

    @property
    def busy_slot(self) -> bool:
        with self._cv:
            return self._slot is not None

    def offer(self, msg: Any) -> None:
        with self._cv:
            self.received += 1
            if self._slot is not None:
                self.dropped += 1
            self._slot = (msg, time.perf_counter())
            self._cv.notify()

    def _run(self) -> None:
        while True:
            with self._cv:
                while self._slot is None and not self._stopping:
                    self._cv.wait()
                if self._stopping:
                    return
                msg, received_at = self._slot
                self._slot = None
            try:
                self._process(msg, received_at)
            except Exception as exc:  # never let one frame kill the worker: report and go on
                self._on_error(msg, exc, traceback.format_exc())

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (idempotent)."""
        with self._cv:
            self._stopping = True
            self._cv.notify()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=timeout)


def tf_sender(node: Any, qos: Any) -> Callable[[Any], None] | None:
    """A function that broadcasts one geometry_msgs/TransformStamped: tf2_ros's broadcaster if
    installed, else a /tf publisher of tf2_msgs/TFMessage (what a broadcaster is); None when
    neither is available (the caller logs that TF is off)."""
    try:
        from tf2_ros import TransformBroadcaster

        return TransformBroadcaster(node).sendTransform
    except ImportError:
        pass
    try:
        from tf2_msgs.msg import TFMessage
    except ImportError:
        return None
    publisher = node.create_publisher(TFMessage, "/tf", qos)
    return lambda transform: publisher.publish(TFMessage(transforms=[transform]))


def spin_node(make_node: Callable[[], Any], logger_name: str, start_errors: tuple[type[BaseException], ...],
              args: list[str] | None = None, error_prefix: str = "cannot start") -> int:
    """Run a node until SIGINT / SIGTERM (Ctrl-C, ``ros2 launch`` stopping it) or an rclpy
    shutdown: 0 on a stop, also when it comes while the node is still starting or is already
    being destroyed (nodes/stop_signals.py); 1 with one ERROR line when ``make_node`` raises one
    of ``start_errors`` (invalid parameters, an unusable map)."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    stop = install_stop_signals()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        try:
            with stop.starting():
                node = make_node()
                stop.checkpoint()
        except BaseException as exc:
            if stop.requested:  # whatever the interrupt broke (numba turns it into a SystemError)
                return 0
            if not isinstance(exc, start_errors):
                raise
            rclpy.logging.get_logger(logger_name).error(f"{error_prefix}: {exc}")
            return 1
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        try:
            while not stop.requested and rclpy.ok():
                executor.spin_once(timeout_sec=STOP_POLL_SECONDS)
        except ExternalShutdownException:
            pass
        finally:
            executor.shutdown()
        return 0
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        stop.exiting()
