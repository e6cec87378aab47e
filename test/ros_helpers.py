"""Helpers of the ROS tests: an isolated DDS domain per test, a recording probe node, node and
player processes. Real rclpy and Fast DDS; nothing is mocked."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from dcreg_ros.nodes.matching import all_matched, poll_until

ROOT = Path(__file__).resolve().parents[1]
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
_domains = itertools.count()
# s: how long a test waits for what it means (a process to start, a message, a log line). Generous:
# on a shared machine under heavy load (load 10 on 2 cores measured) a node's start-up alone took
# over a minute; a wait returns as soon as its condition holds, so this costs nothing otherwise.
WAIT = 180.0


def new_domain_id() -> int:
    """A ROS_DOMAIN_ID for one test: distinct within this run and, through the pid, unlikely to
    meet another developer's test run on the same machine (Fast DDS allows 0..232)."""
    return 120 + (os.getpid() * 7 + next(_domains) * 11) % 100


def ros_env(domain_id: int) -> dict[str, str]:
    """Environment of a node process in ``domain_id``, discovering only on this machine."""
    return dict(os.environ, ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1")


@contextmanager
def ros_context(domain_id: int) -> Iterator[rclpy.Context]:
    """An rclpy context of its own (so tests never share a graph) in ``domain_id``."""
    previous = os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE")
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    try:
        yield context
    finally:
        rclpy.try_shutdown(context=context)
        if previous is None:
            os.environ.pop("ROS_AUTOMATIC_DISCOVERY_RANGE", None)
        else:
            os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = previous


class Probe:
    """A node that records every message of the topics it listens to."""

    def __init__(self, context: rclpy.Context, name: str = "probe") -> None:
        self.node = Node(name, context=context)
        self._cv = threading.Condition()
        self._received: dict[str, list] = defaultdict(list)
        self._subscriptions: dict[str, Any] = {}

    def listen(self, msg_type: Any, topic: str, qos: QoSProfile = RELIABLE) -> None:
        def callback(msg: Any) -> None:
            with self._cv:
                self._received[topic].append(msg)
                self._cv.notify_all()

        self._subscriptions[topic] = self.node.create_subscription(msg_type, topic, callback, qos)

    def wait_until_matched(self, topics: list[str], timeout: float) -> bool:
        """Wait until each of ``topics`` has a matched publisher: messages published before the
        match are not delivered, so a test must not start the traffic earlier."""
        return poll_until(lambda: all_matched(self._subscriptions[t] for t in topics), timeout)

    def messages(self, topic: str) -> list:
        with self._cv:
            return list(self._received[topic])

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` (evaluated under the probe's lock) holds."""
        with self._cv:
            return self._cv.wait_for(predicate, timeout=timeout)

    def wait_for_count(self, topic: str, count: int, match: Callable[[Any], bool] | None = None, timeout: float = 60.0) -> bool:
        """Wait until ``count`` messages (matching ``match`` if given) arrived on ``topic``."""
        return self.wait_for(lambda: sum(1 for m in self._received[topic] if match is None or match(m)) >= count, timeout)

    def count(self, topic: str) -> int:
        """Messages received so far on ``topic`` (a ``since`` for :meth:`wait_for_message`)."""
        with self._cv:
            return len(self._received[topic])

    def wait_for_message(self, topic: str, match: Callable[[Any], bool], timeout: float, since: int = 0) -> Any | None:
        """The last message on ``topic`` matching ``match`` among those received after the
        first ``since`` (waiting up to ``timeout`` s for one), or None."""
        found: list = []

        def check() -> bool:
            found[:] = [m for m in self._received[topic][since:] if match(m)]
            return bool(found)

        return found[-1] if self.wait_for(check, timeout) else None

    def call(self, srv_type: Any, name: str, request: Any, timeout: float = 30.0) -> Any:
        """Call a service (the executor spinning this probe must run in another thread)."""
        client = self.node.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                raise TimeoutError(f"service {name} not available after {timeout} s")
            future = client.call_async(request)
            deadline = time.monotonic() + timeout
            while not future.done():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"service {name} did not answer within {timeout} s")
                time.sleep(0.02)
            return future.result()
        finally:
            self.node.destroy_client(client)

    def get_parameters(self, node: str, names: list[str], timeout: float = 30.0) -> dict[str, Any]:
        from rcl_interfaces.srv import GetParameters

        result = self.call(GetParameters, f"{node}/get_parameters", GetParameters.Request(names=names), timeout)
        return {n: Parameter.from_parameter_msg(_named(n, v)).value for n, v in zip(names, result.values)}

    def set_parameters(self, node: str, values: dict[str, Any], timeout: float = 30.0) -> list:
        from rcl_interfaces.srv import SetParameters

        request = SetParameters.Request(parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()])
        return list(self.call(SetParameters, f"{node}/set_parameters", request, timeout).results)


def _named(name: str, value: Any) -> Any:
    from rcl_interfaces.msg import Parameter as ParameterMsg

    return ParameterMsg(name=name, value=value)


@contextmanager
def spinning(context: rclpy.Context, *nodes: Node) -> Iterator[SingleThreadedExecutor]:
    """Spin ``nodes`` in a background thread for the duration of the block."""
    executor = SingleThreadedExecutor(context=context)
    for node in nodes:
        executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        yield executor
    finally:
        executor.shutdown(timeout_sec=5.0)
        thread.join(timeout=10.0)


def executable(name: str) -> list[str]:
    """Command of a console entry point of this venv (falls back to ``python -m``)."""
    script = Path(sys.executable).parent / name
    if script.exists():
        return [str(script)]
    module = {"dcreg_node": "dcreg_ros.nodes.odometry_node", "dcreg_bag_player": "dcreg_ros.nodes.bag_player",
              "dcreg_localization_node": "dcreg_ros.nodes.localization_node"}[name]
    return [sys.executable, "-m", module]


def default_sigint() -> None:
    """preexec_fn of the processes a test starts: SIGINT as in a terminal (a test run in a
    shell's background job inherits it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_process(command: list[str], domain_id: int, log: Path, **popen: Any) -> subprocess.Popen:
    """Start a ROS process in ``domain_id`` with stdout and stderr going to ``log``."""
    handle = open(log, "w")
    try:
        return subprocess.Popen(command, env=ros_env(domain_id), cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
                                preexec_fn=default_sigint, **popen)
    finally:
        handle.close()


def wait_for_log(log: Path, text: str, timeout: float, process: subprocess.Popen | None = None) -> bool:
    """Wait until ``text`` appears in the log file of a process (False after ``timeout`` s, or at
    once when ``process`` has exited without writing it)."""
    def written() -> bool:
        return log.exists() and text in log.read_text(errors="replace")

    def done() -> bool:
        return written() or (process is not None and process.poll() is not None)

    return poll_until(done, timeout, period=0.05) and written()


def stop_process(process: subprocess.Popen, timeout: float = WAIT) -> int:
    """SIGINT (what Ctrl-C sends) and wait; kill only if it does not exit in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10.0)
    return process.returncode


def ros2_cli() -> str | None:
    """The `ros2` command of this venv (installed from ../shared/ros2_python) or of a sourced ROS 2."""
    venv = Path(sys.executable).parent / "ros2"
    return str(venv) if venv.exists() else shutil.which("ros2")


def ros2_cli_or_skip_reason() -> str:
    """Why `ros2 launch` / the ros2 CLI tests cannot run here ('' when they can)."""
    import importlib.util

    from dcreg_ros.eval.shared_data import shared_folder

    if ros2_cli() is None or importlib.util.find_spec("launch_ros") is None or importlib.util.find_spec("ros2launch") is None:
        return (f"ros2 launch and the ros2 CLI are not installed: no ROS 2 sourced and {shared_folder('ros2_python')} "
                "not found (make venv installs them from there)")
    try:
        from ament_index_python.packages import get_package_share_directory

        get_package_share_directory("dcreg_ros")
    except Exception as exc:  # noqa: BLE001 - PackageNotFoundError, or OSError without AMENT_PREFIX_PATH
        return f"dcreg_ros is not in an ament prefix ({exc}): make venv lays it out (scripts/ament_layout.py)"
    return ""


def run_ros2(args: list[str], domain_id: int, timeout: float = WAIT) -> subprocess.CompletedProcess:
    """`ros2 ARGS...` in ``domain_id`` (stdout and stderr as text)."""
    return subprocess.run([ros2_cli(), *args], env=ros_env(domain_id), cwd=ROOT, capture_output=True, text=True, timeout=timeout)


class ProcessGroup:
    """A command started in its own session, as from a terminal: :meth:`ctrl_c` sends SIGINT to
    its whole process group, which is what Ctrl-C in a terminal does (``ros2 launch`` and every
    process it started get it, and launch forwards its own SIGINT as well)."""

    def __init__(self, command: list[str], domain_id: int, log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        with open(log, "w") as out:
            self.process = subprocess.Popen(command, env=env or ros_env(domain_id), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                            preexec_fn=default_sigint, start_new_session=True)
        self.returncode: int | None = None
        self.left_running = False  # processes of the group still alive when the command itself had exited

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float) -> bool:
        return wait_for_log(self.log, text, timeout, self.process)

    def wait(self, timeout: float) -> int | None:
        """The exit status once the command exits by itself within ``timeout`` s, else None."""
        try:
            self.returncode = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def ctrl_c(self, timeout: float = WAIT, repeat_every: float | None = None) -> int:
        """SIGINT to the group (again every ``repeat_every`` s until it exits, when given); the exit
        status. Whatever still runs after ``timeout`` s is killed and the status is None's -9."""
        if self.process.poll() is None:
            deadline = time.monotonic() + timeout
            while self.process.poll() is None and time.monotonic() < deadline:
                try:
                    os.killpg(self.process.pid, signal.SIGINT)
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(timeout=repeat_every if repeat_every else timeout)
                except subprocess.TimeoutExpired:
                    continue
        if self.process.poll() is not None:
            self.left_running = self._group_alive()
        self.kill()
        self.returncode = self.process.returncode
        return self.returncode

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL whatever of the group still runs (the clean-up of a failed test)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=10.0)
        except subprocess.TimeoutExpired:
            pass


def tf2_msgs_available() -> bool:
    try:
        from tf2_msgs.msg import TFMessage  # noqa: F401
    except ImportError:
        return False
    return True


def is_diagnostic_of(diag: Any, stamp: int) -> bool:
    """A DiagnosticArray of the frame stamped ``stamp`` (ns): its ``cloud_stamp`` value (s, 9
    decimals) within a microsecond (no string comparison of floats)."""
    for kv in diag.status[0].values if diag.status else ():
        if kv.key == "cloud_stamp":
            return abs(float(kv.value) * 1e9 - stamp) < 1e3
    return False


def stamp_ns(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)
