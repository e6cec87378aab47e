#!/usr/bin/env bash
# Build the tf2_msgs interface package (TFMessage only) into a venv that has ROS 2 Jazzy from the
# PyPI wheels, so dcreg_node can publish /tf without tf2_ros. A robot with a full ROS 2 install
# already has tf2_msgs: scripts/setup_venv.sh calls this only when no ROS 2 is sourced.
#
# Usage: scripts/build_tf2_msgs.sh [VENV]   (default .venv)
# - Idempotent: does nothing when `from tf2_msgs.msg import TFMessage` already works.
# - Writes the package (msg/TFMessage.msg, package.xml, CMakeLists.txt) into a temporary folder
#   and builds it with scripts/build_rosidl_package.sh (< 1 MB installed).
# - Fails soft: any problem prints one line and exits 1 without touching what already works;
#   the caller decides whether that matters (setup_venv.sh only warns).
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=$(cd "${1:-.venv}" 2>/dev/null && pwd) || { echo "build_tf2_msgs: no venv at ${1:-.venv}" >&2; exit 1; }
PY="$VENV/bin/python"

fail() { echo "build_tf2_msgs: $*; TF broadcasting stays off" >&2; exit 1; }

[ -x "$PY" ] || fail "$PY not found"
if "$PY" -c "from tf2_msgs.msg import TFMessage" >/dev/null 2>&1; then
    echo "build_tf2_msgs: tf2_msgs already importable, nothing to do"
    exit 0
fi
"$PY" -c "import rclpy, geometry_msgs.msg" >/dev/null 2>&1 || fail "the venv has no rclpy/geometry_msgs (install requirements/ros.txt first)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pkg="$work/tf2_msgs"
mkdir -p "$pkg/msg"
echo "geometry_msgs/TransformStamped[] transforms" >"$pkg/msg/TFMessage.msg"
cat >"$pkg/package.xml" <<'XML'
<?xml version="1.0"?>
<package format="3">
  <name>tf2_msgs</name>
  <version>0.36.0</version>
  <description>tf2_msgs/TFMessage only, built locally by dcreg_ros (same definition as ROS 2 Jazzy).</description>
  <maintainer email="maintainers@users.noreply.r-seed-3ed1291e.example">dcreg_ros maintainers</maintainer>
  <license>BSD-3-Clause</license>
  <buildtool_depend>ament_cmake</buildtool_depend>
  <buildtool_depend>rosidl_default_generators</buildtool_depend>
  <depend>geometry_msgs</depend>
  <exec_depend>rosidl_default_runtime</exec_depend>
  <member_of_group>rosidl_interface_packages</member_of_group>
  <export><build_type>ament_cmake</build_type></export>
</package>
XML
cat >"$pkg/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(tf2_msgs)
find_package(ament_cmake REQUIRED)
find_package(rosidl_default_generators REQUIRED)
find_package(geometry_msgs REQUIRED)
rosidl_generate_interfaces(${PROJECT_NAME} "msg/TFMessage.msg" DEPENDENCIES geometry_msgs)
ament_export_dependencies(rosidl_default_runtime)
ament_package()
CMAKE

scripts/build_rosidl_package.sh "$VENV" "$pkg" || fail "the build failed"
"$PY" -c "from tf2_msgs.msg import TFMessage; TFMessage()" >/dev/null 2>&1 || fail "built, but 'from tf2_msgs.msg import TFMessage' still fails"
echo "build_tf2_msgs: tf2_msgs installed into $VENV"
