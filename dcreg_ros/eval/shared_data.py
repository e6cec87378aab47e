"""Where the real scans of ``../shared/data`` are (tests, demo and benchmarks read them there)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    """``$DCREG_SHARED_DATA``, else ``<project>/../shared/data``, else the same folder next to the
    repository this checkout was cloned from (a clone in a temporary folder still finds it)."""
    env = os.environ.get("DCREG_SHARED_DATA")
    if env:
        return Path(env)
    default = ROOT.parent / "shared" / "data"
    if default.exists():
        return default
    try:
        origin = subprocess.run(["git", "-C", str(ROOT), "config", "--get", "remote.origin.url"],
                                capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        origin = ""
    if origin and Path(origin).is_dir():
        candidate = Path(origin).resolve().parent / "shared" / "data"
        if candidate.exists():
            return candidate
    return default
