#!/usr/bin/env bash
# Create or update the project virtual environment with every dependency pinned.
# Usage: scripts/setup_venv.sh PYTHON VENV
# - With a sourced ROS 2 installation (ROS_DISTRO set) the venv sees the system packages
#   (--system-site-packages) and the ROS 2 wheels from PyPI are skipped.
# - Installs the Debian package libusb-1.0-0 (needed by open3d) when it is missing and we can.
set -euo pipefail
PYTHON=${1:-python3.11}
VENV=${2:-.venv}
cd "$(dirname "$0")/.."

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "setup: $PYTHON not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11 ...'" >&2
    exit 1
fi
version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$version" != "3.11" ]; then
    echo "setup: warning: $PYTHON is Python $version; dcreg_ros is pinned and tested on 3.11" >&2
fi

if [ ! -x "$VENV/bin/python" ]; then
    if [ -n "${ROS_DISTRO:-}" ]; then
        echo "setup: ROS 2 '$ROS_DISTRO' is sourced: creating $VENV with --system-site-packages"
        "$PYTHON" -m venv --system-site-packages "$VENV"
    else
        echo "setup: creating $VENV"
        "$PYTHON" -m venv "$VENV"
    fi
fi

# open3d (a benchmark peer) needs libusb-1.0 at import time
if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then
    SUDO=""
    if [ "$(id -u)" != "0" ]; then SUDO="sudo -n"; fi
    echo "setup: installing the Debian package libusb-1.0-0 (needed by open3d)"
    if ! { $SUDO apt-get install -y -q libusb-1.0-0 >/dev/null 2>&1 || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q libusb-1.0-0 >/dev/null 2>&1; }; }; then
        echo "setup: warning: could not install libusb-1.0-0; open3d peers will be skipped" >&2
    fi
fi

pip_quiet() {
    # some machines' pip config lists local wheel folders that do not exist: hide that noise
    local log status=0
    log=$(mktemp)
    "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" >"$log" 2>&1 || status=$?
    grep -v "is ignored: it is neither a file nor a directory" "$log" || true
    rm -f "$log"
    return $status
}
reqs=(-r requirements/base.txt)
if [ -z "${ROS_DISTRO:-}" ]; then
    reqs+=(-r requirements/ros.txt)
fi
echo "setup: installing pinned dependencies (first run: about a minute)"
pip_quiet install "${reqs[@]}" -c requirements/lock.txt
pip_quiet install --no-deps --no-build-isolation -e .
# setup.cfg puts the executables in lib/dcreg_ros (where `ros2 run` looks); expose them on PATH too
for exe in "$VENV"/lib/dcreg_ros/*; do
    [ -f "$exe" ] && ln -sf "../lib/dcreg_ros/$(basename "$exe")" "$VENV/bin/$(basename "$exe")"
done

if [ -z "${ROS_DISTRO:-}" ] && [ -x scripts/build_tf2_msgs.sh ]; then
    scripts/build_tf2_msgs.sh "$VENV" || echo "setup: warning: tf2_msgs could not be built; /tf broadcasting is off" >&2
fi
echo "setup: $VENV ready"
