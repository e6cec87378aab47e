"""Ctrl-C held to a checkpoint, never raised inside a numba kernel's return (core/interrupts.py).

On Python 3.12 a KeyboardInterrupt raised while a kernel converts its result crashed ``dcreg
compare`` with a segmentation fault (CI, stop 19); on 3.11 it surfaces as a SystemError.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dcreg_ros.core.interrupts import caused_by_ctrl_c, ctrl_c_at_checkpoints, ctrl_c_checkpoint

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
                                reason="SIGINT does not have Python's default handler in this process")


def _ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)  # the handler runs in this (main) thread before kill returns to Python code


def test_a_ctrl_c_waits_for_the_checkpoint():
    with ctrl_c_at_checkpoints():
        _ctrl_c()
        survived = True  # not interrupted here
        with pytest.raises(KeyboardInterrupt):
            ctrl_c_checkpoint()
        ctrl_c_checkpoint()  # raised once only
    assert survived and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_end_of_the_block_raises_a_held_ctrl_c_and_a_second_one_raises_at_once():
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_at_checkpoints():
            _ctrl_c()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with ctrl_c_at_checkpoints():
        _ctrl_c()
        with pytest.raises(KeyboardInterrupt):
            _ctrl_c()
        ctrl_c_checkpoint()  # the second one took the first with it


def test_once_a_checkpoint_acted_on_a_ctrl_c_the_next_one_raises_at_once():
    with ctrl_c_at_checkpoints():
        _ctrl_c()
        with pytest.raises(KeyboardInterrupt):
            ctrl_c_checkpoint()
        with pytest.raises(KeyboardInterrupt):  # e.g. while the plots of a stopped run are drawn
            _ctrl_c()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_ctrl_c_in_the_last_frame_of_a_run_inside_the_command_s_block_stops_the_run():
    """run_frames inside the CLI's block (its own is then inactive): a Ctrl-C during the last
    frame is the run's stop (completed false), not a completed run followed by an interrupt."""
    from dcreg_ros.eval.runner import run_frames
    from dcreg_ros.core.odometry import FrameRecord

    def register(index, scan):
        if index == 2:
            _ctrl_c()
        return FrameRecord.__new__(FrameRecord)

    with ctrl_c_at_checkpoints():
        result = run_frames(iter([None, None, None]), register)
        ctrl_c_checkpoint()  # nothing left held
    assert len(result.records) == 3 and result.stop.interrupted and not result.stop.completed


def test_a_nested_block_leaves_the_ctrl_c_to_the_outer_one():
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_at_checkpoints():
            with ctrl_c_at_checkpoints():
                _ctrl_c()
            survived = True  # the inner block's end did not raise
    assert survived


def test_ctrl_c_outside_a_block_and_in_another_thread_is_python_s():
    ctrl_c_checkpoint()  # nothing held: no effect
    with pytest.raises(KeyboardInterrupt):
        _ctrl_c()
    assert caused_by_ctrl_c(SystemError("x").with_traceback(None)) is False
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise SystemError("returned a result with an exception set") from exc
    except SystemError as wrapped:
        assert caused_by_ctrl_c(wrapped)


SENDER = """
import os, random, signal, sys, time
random.seed(0)
while sys.stdin.buffer.read(1):
    time.sleep(random.uniform(0.0, 0.002))
    os.kill(int(sys.argv[1]), signal.SIGINT)
"""

STRESS = textwrap.dedent("""
    import os, signal, subprocess, sys, time
    import numpy as np
    from dcreg_ros.core.config import DegeneracyConfig
    from dcreg_ros.core.degeneracy import analyze_hessian_arrays
    from dcreg_ros.core.interrupts import ctrl_c_at_checkpoints, ctrl_c_checkpoint
    from dcreg_ros.core.solvers import no_prior, solve_step, strategy_code
    from dcreg_ros.core.voxel_hash import point_keys

    rng = np.random.default_rng(0)
    A = rng.normal(size=(50, 6)); H = A.T @ A; g = rng.normal(size=6)
    points = rng.uniform(-5, 5, size=(2000, 3))
    params, code = DegeneracyConfig().solver_parameters(), strategy_code("dcreg")

    def kernels():
        solve_step(H, g, code, analyze_hessian_arrays(H, 10.0, 10.0), params, no_prior())
        point_keys(points, 2.0)

    kernels()  # compiled (or loaded) before the first signal
    wanted, SENDER, interrupts, calls, other = int(sys.argv[1]), sys.argv[2], 0, 0, []
    # another process sends the Ctrl-Cs, as a terminal does: they arrive at any instruction, also
    # inside a kernel (a thread of this process could only send one between two bytecodes); one
    # at a time, the next after this loop took the last, 0-2 ms later
    sender = subprocess.Popen([sys.executable, "-c", SENDER, str(os.getpid())], stdin=subprocess.PIPE)

    def next_ctrl_c():
        sender.stdin.write(b"x")
        sender.stdin.flush()

    deadline = time.monotonic() + 120
    while interrupts < wanted and time.monotonic() < deadline:
        try:
            with ctrl_c_at_checkpoints():  # a block per Ctrl-C: in one, the second would raise at once
                next_ctrl_c()
                while time.monotonic() < deadline:
                    kernels()
                    calls += 1
                    ctrl_c_checkpoint()
        except KeyboardInterrupt:
            interrupts += 1
        except Exception as exc:  # an interrupt that did not arrive as one
            other.append(type(exc).__name__)
            interrupts += 1
    sender.stdin.close()
    sender.wait()
    print(interrupts, calls, ",".join(other) or "-")
""")


def test_kernels_interrupted_hundreds_of_times_neither_crash_nor_raise_anything_but_the_interrupt():
    """A loop of kernels whose results are arrays, tuples and NamedTuples, interrupted 300 times by
    a real SIGINT: the process ends normally and every interrupt arrived as KeyboardInterrupt at
    the checkpoint (without the hold: a segmentation fault within seconds on Python 3.12, and
    SystemErrors on 3.11)."""
    proc = subprocess.run([sys.executable, "-c", STRESS, "300", SENDER], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-3000:])
    interrupts, calls, other = proc.stdout.split()
    assert int(interrupts) == 300 and int(calls) >= 300 and other == "-", proc.stdout


def test_a_node_start_up_holds_the_first_stop_to_its_next_step_and_ends_at_launch_s_sigterm():
    """nodes/stop_signals.py (its handler called as the signal module would, without installing
    it in the test process)."""
    from dcreg_ros.nodes.stop_signals import StopSignals

    stop = StopSignals()
    with stop.starting():
        stop._handle(signal.SIGINT, None)  # held: the map keeps loading
        stop._handle(signal.SIGINT, None)  # the launch's own SIGINT: counted, ignored
        assert stop.requested and stop.signals == 2
        with pytest.raises(KeyboardInterrupt):
            stop.checkpoint()
    escalated = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import signal
        from dcreg_ros.nodes.stop_signals import StopSignals
        stop = StopSignals()
        with stop.starting():
            stop._handle(signal.SIGINT, None)
            print("held")
            stop._handle(signal.SIGTERM, None)  # launch escalates after its timeout: the process ends
            print("not reached")
    """)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                               env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"})  # what was printed is flushed
    assert escalated.returncode == 0 and escalated.stdout.split() == ["held"], escalated
    assert "stopped while starting (SIGTERM)" in escalated.stderr and "Traceback" not in escalated.stderr, escalated.stderr
    stop = StopSignals()
    with stop.starting():
        stop.checkpoint()  # nothing requested: no effect
    stop._handle(signal.SIGINT, None)  # outside the start-up: only requested (the spinning loop polls it)
    with pytest.raises(KeyboardInterrupt):
        with stop.starting():
            pass


def test_ctrl_c_during_make_demo_ends_the_demo_and_says_how_far_the_run_got(tmp_path):
    """The demo's first run interrupted: exit 130, the run's line says where it stopped, and no
    later method starts (before, the interrupted run ended and the next one began)."""
    from conftest import require_data

    data = require_data()
    out = tmp_path / "demo"
    watch = out / "run_default" / "trajectory_tum.txt"
    proc = subprocess.Popen([sys.executable, "-m", "dcreg_ros.demo", "--data", str(data), "--out", str(out), "--frames", "300",
                             "--beams", "16"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None and not (watch.exists() and len(watch.read_text().splitlines()) >= 3):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "demo: interrupted" in stderr and "Traceback" not in stderr, (proc.returncode, stderr)
    assert "default (LiDAR only): interrupted (Ctrl-C) after" in stdout, stdout
    assert not (out / "run_none").exists()
    kept = len(watch.read_text().splitlines())
    assert 3 <= kept < 300 and f"after {kept} frames" in stdout
