"""The transport check of dcreg_node (nodes/transport.py) and the shipped Fast DDS profile: the
check names the set-up and warns without the profile; Fast DDS really loads the profile (its
16 MB shared-memory segments appear in /dev/shm while a process uses it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dcreg_ros.nodes.transport import (MIN_SEGMENT_BYTES, PROFILE_VARIABLES, WORKING_DIRECTORY_PROFILE, check_transport,
                                       largest_shm_segment, profile_environment, shipped_profile)
from ros_helpers import ROOT, new_domain_id, ros_env

PROFILE = ROOT / "config" / "fastdds_large_shm.xml"


def test_shipped_profile_has_large_shared_memory_segments():
    # the installed copy when dcreg_ros is in an ament prefix (make venv lays it out), else the checkout's
    assert shipped_profile().resolve() == PROFILE.resolve()
    assert largest_shm_segment(PROFILE) == 16 * 2**20 >= MIN_SEGMENT_BYTES
    env = profile_environment()
    assert set(env) == set(PROFILE_VARIABLES) and all(v == str(shipped_profile()) for v in env.values())


def test_without_a_profile_the_check_warns_with_the_fix(tmp_path):
    check = check_transport({}, cwd=tmp_path)
    assert not check.ok and "512 KB" in check.summary
    assert "FASTRTPS_DEFAULT_PROFILES_FILE" in check.advice and str(shipped_profile()) in check.advice


@pytest.mark.parametrize("variable", PROFILE_VARIABLES)
def test_the_shipped_profile_passes_under_either_variable(variable, tmp_path):
    check = check_transport({variable: str(PROFILE)}, cwd=tmp_path)
    assert check.ok and "16 MB" in check.summary and str(PROFILE) in check.summary


def test_a_small_or_broken_profile_is_reported(tmp_path):
    small = tmp_path / "small.xml"
    small.write_text(PROFILE.read_text().replace("16777216", "524288"))
    check = check_transport({PROFILE_VARIABLES[0]: str(small)}, cwd=tmp_path)
    assert not check.ok and "at least 4 MB" in check.advice
    broken = tmp_path / "broken.xml"
    broken.write_text("<profiles><transport_descriptors>")
    check = check_transport({PROFILE_VARIABLES[0]: str(broken)}, cwd=tmp_path)
    assert not check.ok and "cannot read" in check.advice
    missing = check_transport({PROFILE_VARIABLES[0]: str(tmp_path / "nope.xml")}, cwd=tmp_path)
    assert not missing.ok and "nope.xml" in missing.advice


def test_working_directory_profile_and_other_middleware(tmp_path):
    (tmp_path / WORKING_DIRECTORY_PROFILE).write_text(PROFILE.read_text())
    assert check_transport({}, cwd=tmp_path).ok  # Fast DDS 2.x loads it by itself
    other = check_transport({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}, cwd=tmp_path)
    assert other.ok and "not Fast DDS" in other.summary


TALKER = """
import sys, time
import rclpy
from std_msgs.msg import UInt8MultiArray
rclpy.init()
node = rclpy.create_node("profile_probe")
pub = node.create_publisher(UInt8MultiArray, "big", 10)
received = []
node.create_subscription(UInt8MultiArray, "big", lambda m: received.append(len(m.data)), 10)
payload = UInt8MultiArray(data=bytes(2_000_000))
deadline = time.monotonic() + 60
while len(received) < 3 and time.monotonic() < deadline:
    pub.publish(payload)
    rclpy.spin_once(node, timeout_sec=0.1)
print("segments", sys.argv[1], flush=True)
input()  # the test looks at /dev/shm now
print("received", len(received), received[:1], flush=True)
"""


@pytest.mark.ros
def test_fast_dds_loads_the_profile_and_uses_16_mb_segments():
    """A process with the profile exchanges 2 MB messages and owns 16 MB segments in /dev/shm;
    Fast DDS reports no XML error (it would fall back to its defaults silently otherwise)."""
    env = {**ros_env(new_domain_id()), **profile_environment(PROFILE)}
    before = {p.name for p in Path("/dev/shm").glob("fastrtps_*")}
    process = subprocess.Popen([sys.executable, "-c", TALKER, "ready"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().startswith("segments"), process.stderr.read()
        sizes = [p.stat().st_size for p in Path("/dev/shm").glob("fastrtps_*") if p.name not in before and "_el" not in p.name]
        out, err = process.communicate("\n", timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert "received 3 [2000000]" in out, out + err
    assert "XMLPARSER" not in err and "Error" not in err, err
    assert any(size >= 16 * 2**20 for size in sizes), sizes
