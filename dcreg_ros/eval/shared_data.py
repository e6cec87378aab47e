"""Where the folders of ``../shared`` are: the real scans (``data``, read by tests, demo and
benchmarks) and the ROS 2 Python tools (``ros2_python``, installed into the venv by
scripts/install_ros2_python.sh).

    python -m dcreg_ros.eval.shared_data ros2_python    # prints the folder (used by the scripts)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


if __name__ == "__main__":
    print(shared_folder(sys.argv[1] if len(sys.argv) > 1 else "data"))
