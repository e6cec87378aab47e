"""Is this process's Fast DDS set up for megabyte point clouds?

Fast DDS (ROS 2 Jazzy's default middleware) moves large messages through 512 KB shared-memory
segments unless a profile says otherwise; with them, 2 MB clouds are fragmented (about 11 ms
more per cloud), and when the node falls behind clouds go missing before the callback and the
latency grows to seconds (benchmarks/RESULTS.md, ROS_LATENCY and ROS_SOAK). The shipped profile
``config/fastdds_large_shm.xml`` gives 16 MB segments. The node checks at start which set-up it
runs with, warns without the profile and reports it in the diagnostics (``transport``).

Pure Python (environment and XML); no ROS import.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

PROFILE_NAME = "fastdds_large_shm.xml"
# Fast DDS 2.x (Jazzy) reads the first, Fast DDS 3.x the second; set both
PROFILE_VARIABLES = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")
# what Fast DDS 2.x loads from the working directory when no variable is set
WORKING_DIRECTORY_PROFILE = "DEFAULT_FASTRTPS_PROFILES.xml"
FAST_DDS_RMWS = ("rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp")
MIN_SEGMENT_BYTES = 4 * 2**20  # a segment must hold a few megabyte clouds


class TransportCheck(NamedTuple):
    """``ok``: the set-up suits megabyte clouds (or is not Fast DDS, which is not checked);
    ``summary``: one line for the diagnostics; ``advice``: what to do when not ok."""

    ok: bool
    summary: str
    advice: str = ""


def shipped_profile() -> Path:
    """Path of config/fastdds_large_shm.xml: the installed share directory when the package is
    installed in an ament prefix, else the source tree's."""
    try:
        from ament_index_python.packages import get_package_share_directory

        installed = Path(get_package_share_directory("dcreg_ros")) / "config" / PROFILE_NAME
        if installed.is_file():
            return installed
    except (ImportError, LookupError, OSError):  # not installed in an ament prefix (PackageNotFoundError, no AMENT_PREFIX_PATH)
        pass
    return Path(__file__).resolve().parents[2] / "config" / PROFILE_NAME


def profile_environment(profile: Path | str | None = None) -> dict[str, str]:
    """The environment variables that make a process use ``profile`` (default: the shipped one),
    for a child process's environment or a launch file's ``additional_env``."""
    path = str(profile or shipped_profile())
    return {name: path for name in PROFILE_VARIABLES}


def largest_shm_segment(path: Path) -> int:
    """Largest shared-memory segment_size (bytes) a Fast DDS profile XML declares; 0 if none.
    Raises OSError / ElementTree.ParseError for unreadable files."""
    root = ElementTree.parse(path).getroot()
    largest = 0
    for descriptor in root.iter():
        if not descriptor.tag.endswith("transport_descriptor"):
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "").strip() for child in descriptor}
        if fields.get("type") == "SHM":
            try:
                largest = max(largest, int(fields.get("segment_size", "0")))
            except ValueError:
                pass
    return largest


def check_transport(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> TransportCheck:
    """Which transport set-up a process with ``environ`` (default: this process's) runs."""
    environ = os.environ if environ is None else environ
    rmw = environ.get("RMW_IMPLEMENTATION", "") or FAST_DDS_RMWS[0]
    if rmw not in FAST_DDS_RMWS:
        return TransportCheck(True, f"{rmw} (not Fast DDS: its large-message set-up is not checked)")
    advice = (f"set {PROFILE_VARIABLES[0]} (Fast DDS 2.x, Jazzy) and {PROFILE_VARIABLES[1]} to {shipped_profile()} "
              "for every process on the cloud topic (the launch files do), see docs/ROS2.md")
    path_text = next((environ[name] for name in PROFILE_VARIABLES if environ.get(name)), "")
    if not path_text:
        candidate = (cwd or Path.cwd()) / WORKING_DIRECTORY_PROFILE
        if not candidate.is_file():
            return TransportCheck(False, "Fast DDS defaults (512 KB shared-memory segments)",
                                  "running without the large shared-memory Fast DDS profile: megabyte clouds are fragmented, "
                                  "slower, and lost when the node falls behind; " + advice)
        path_text = str(candidate)
    try:
        segment = largest_shm_segment(Path(path_text))
    except (OSError, ElementTree.ParseError) as exc:
        return TransportCheck(False, f"Fast DDS profile {path_text} unreadable", f"cannot read the Fast DDS profile {path_text} "
                              f"({exc}); Fast DDS falls back to its defaults; " + advice)
    if segment < MIN_SEGMENT_BYTES:
        return TransportCheck(False, f"Fast DDS profile {path_text} without large shared-memory segments",
                              f"the Fast DDS profile {path_text} declares no shared-memory transport with segments of at least "
                              f"{MIN_SEGMENT_BYTES // 2**20} MB; " + advice)
    return TransportCheck(True, f"Fast DDS profile {path_text} (shared-memory segments {segment / 2**20:g} MB)")
