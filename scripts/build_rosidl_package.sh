#!/usr/bin/env bash
# Build a ROS 2 interface package (rosidl: msg/srv files, package.xml, CMakeLists.txt) from its
# source folder into a venv that has ROS 2 Jazzy from the PyPI wheels; used for tf2_msgs
# (scripts/build_tf2_msgs.sh) and composition_interfaces (scripts/install_ros2_python.sh), which
# PyPI does not have. A robot with a full ROS 2 install already has both.
#
# Usage: scripts/build_rosidl_package.sh VENV SOURCE_FOLDER
# - The source folder is copied (never written to) and the copy's CMakeLists.txt gets
#   scripts/cmake/pypi_wheel_includes.cmake included right before rosidl_generate_interfaces().
# - Installs the pinned build wheels of requirements/ros-build.txt (constrained by
#   requirements/lock.txt), builds with cmake and installs into the venv prefix (no environment
#   variables needed at run time).
# - Fails soft: any problem prints one line and exits 1; the caller decides whether that matters.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=$(cd "${1:-}" 2>/dev/null && pwd) || { echo "build_rosidl_package: no venv at '${1:-}'" >&2; exit 1; }
SOURCE=${2:-}
PY="$VENV/bin/python"
name=$(sed -n 's:.*<name>\(.*\)</name>.*:\1:p' "$SOURCE/package.xml" 2>/dev/null | head -1)

fail() { echo "build_rosidl_package: ${name:-$SOURCE}: $*" >&2; exit 1; }

[ -n "$name" ] && [ -f "$SOURCE/CMakeLists.txt" ] || fail "not an interface package folder (package.xml, CMakeLists.txt)"
[ -x "$PY" ] || fail "$PY not found"
"$PY" -c "import rclpy" >/dev/null 2>&1 || fail "the venv has no rclpy (install requirements/ros.txt first)"

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    if [ "$(id -u)" != "0" ]; then SUDO="sudo -n"; fi
    echo "build_rosidl_package: installing the Debian packages ${missing[*]}"
    { $SUDO apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; }; } \
        || fail "cmake and a C++ compiler are needed (apt-get install cmake g++)"
fi

echo "build_rosidl_package: installing the pinned ROS build wheels (requirements/ros-build.txt)"
log=$(mktemp)
if ! "$PY" -m pip --disable-pip-version-check -q install -r requirements/ros-build.txt -c requirements/lock.txt >"$log" 2>&1; then
    grep -v "is ignored: it is neither a file nor a directory" "$log" | tail -5 >&2
    rm -f "$log"
    fail "pip could not install the build wheels"
fi
rm -f "$log"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$SOURCE" "$work/$name"
chmod -R u+w "$work/$name"
lists="$work/$name/CMakeLists.txt"
grep -q "^ *rosidl_generate_interfaces(" "$lists" || fail "CMakeLists.txt has no rosidl_generate_interfaces() call"
awk -v fix="$ROOT/scripts/cmake/pypi_wheel_includes.cmake" \
    '!done && /^ *rosidl_generate_interfaces\(/ { print "include(\"" fix "\")"; done = 1 } { print }' "$lists" >"$lists.new" \
    && mv "$lists.new" "$lists"

echo "build_rosidl_package: building $name into $VENV"
build_log="$work/build.log"
if ! { AMENT_PREFIX_PATH="$VENV" cmake -S "$work/$name" -B "$work/build" -DCMAKE_PREFIX_PATH="$VENV" \
        -DPython3_EXECUTABLE="$PY" -DCMAKE_INSTALL_PREFIX="$VENV" -DBUILD_TESTING=OFF \
        && cmake --build "$work/build" -j2 && cmake --install "$work/build"; } >"$build_log" 2>&1; then
    grep -iE "error|not found" "$build_log" | head -5 >&2
    fail "cmake build failed (see the lines above)"
fi
echo "build_rosidl_package: $name installed into $VENV"
