"""Where the folders of ``../shared`` are: the real scans (``data``, read by tests, demo and
benchmarks; its consecutive real scans as sequences: :func:`real_sequences`) and the ROS 2 Python
tools (``ros2_python``, installed into the venv by scripts/install_ros2_python.sh).

    python -m dcreg_ros.eval.shared_data ros2_python    # prints the folder (used by the scripts)
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..io.cloud_files import read_cloud
from ..io.scan import Scan
from ..io.trajectory import Trajectory, read_kitti

ROOT = Path(__file__).resolve().parents[2]
# folder name -> the environment variable that overrides where it is
SHARED_FOLDERS = {"data": "DCREG_SHARED_DATA", "ros2_python": "DCREG_SHARED_ROS2_PYTHON"}


def shared_folder(name: str) -> Path:
    """``$<variable of SHARED_FOLDERS[name]>``, else ``<project>/../shared/<name>``, else the same
    folder next to the repository this checkout was cloned from (a clone in a temporary folder
    still finds it). The path returned may not exist: callers say what is missing."""
    env = os.environ.get(SHARED_FOLDERS[name])
    if env:
        return Path(env)
    default = ROOT.parent / "shared" / name
    if default.exists():
        return default
    try:
        origin = subprocess.run(["git", "-C", str(ROOT), "config", "--get", "remote.origin.url"],
                                capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        origin = ""
    if origin and Path(origin).is_dir():
        candidate = Path(origin).resolve().parent / "shared" / name
        if candidate.exists():
            return candidate
    return default


def shared_data_dir() -> Path:
    """The real scans: ``shared_folder("data")``."""
    return shared_folder("data")


OUSTER_PERIOD = 0.1  # s: both Ouster recordings run at 10 Hz


@dataclass(frozen=True)
class RealSequence:
    """Consecutive real scans of ``../shared/data``: frame i stamped i * OUSTER_PERIOD (s);
    ``reference`` T_world_sensor at the same stamps, or None where the data has none."""

    name: str
    scans: list[Scan]
    reference: Trajectory | None


def real_sequences(data: Path | None = None) -> list[RealSequence]:
    """The two real sequences: the 10 os0-8 frames (no reference; degenerate along x) and the 3
    os1-128 frames with the vendor SLAM poses (data/README.md)."""
    data = data or shared_data_dir()

    def scans(folder: Path) -> list[Scan]:
        files = sorted(folder.glob("*.pcd"))
        return [Scan(OUSTER_PERIOD * i, read_cloud(f).points) for i, f in enumerate(files)]

    os1 = data / "pairs" / "ouster_os1_128"
    kitti = read_kitti(next(os1.glob("*poses_kitti.txt")), period=OUSTER_PERIOD)
    return [RealSequence("os0-8", scans(data / "degenerate" / "ouster_os0_8"), None),
            RealSequence("os1-128", scans(os1), kitti)]


if __name__ == "__main__":
    print(shared_folder(sys.argv[1] if len(sys.argv) > 1 else "data"))
