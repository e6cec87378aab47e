#!/usr/bin/env bash
# Build the tf2_msgs interface package (TFMessage only) into a venv that has ROS 2 Jazzy from the
# PyPI wheels, so dcreg_node can publish /tf without tf2_ros. A robot with a full ROS 2 install
# already has tf2_msgs: scripts/setup_venv.sh calls this only when no ROS 2 is sourced.
#
# Usage: scripts/build_tf2_msgs.sh [VENV]   (default .venv)
# - Idempotent: does nothing when `from tf2_msgs.msg import TFMessage` already works.
# - Installs the pinned build wheels of requirements/ros-build.txt (constrained by
#   requirements/lock.txt), generates the package in a temporary folder, builds it with cmake and
#   installs it into the venv prefix (no environment variables needed at run time; < 1 MB).
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

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    if [ "$(id -u)" != "0" ]; then SUDO="sudo -n"; fi
    echo "build_tf2_msgs: installing the Debian packages ${missing[*]}"
    { $SUDO apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; }; } \
        || fail "cmake and a C++ compiler are needed (apt-get install cmake g++)"
fi

echo "build_tf2_msgs: installing the pinned ROS build wheels (requirements/ros-build.txt)"
log=$(mktemp)
if ! "$PY" -m pip --disable-pip-version-check -q install -r requirements/ros-build.txt -c requirements/lock.txt >"$log" 2>&1; then
    grep -v "is ignored: it is neither a file nor a directory" "$log" | tail -5 >&2
    rm -f "$log"
    fail "pip could not install the build wheels"
fi
rm -f "$log"

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
find_package(Python3 REQUIRED COMPONENTS Interpreter Development.Module NumPy)
# The PyPI wheels' imported *__rosidl_generator_py targets keep the include folders of the machine
# that built them (/opt/python/...): swap those for this interpreter's Python and NumPy headers.
get_property(_imported DIRECTORY PROPERTY IMPORTED_TARGETS)
foreach(_target IN LISTS _imported)
  get_target_property(_includes ${_target} INTERFACE_INCLUDE_DIRECTORIES)
  if(_includes AND "${_includes}" MATCHES "/opt/python/")
    list(FILTER _includes EXCLUDE REGEX "^/opt/python/")
    list(APPEND _includes ${Python3_INCLUDE_DIRS} ${Python3_NumPy_INCLUDE_DIRS})
    set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_includes}")
  endif()
endforeach()
rosidl_generate_interfaces(${PROJECT_NAME} "msg/TFMessage.msg" DEPENDENCIES geometry_msgs)
ament_export_dependencies(rosidl_default_runtime)
ament_package()
CMAKE

echo "build_tf2_msgs: building tf2_msgs into $VENV"
build_log="$work/build.log"
if ! { AMENT_PREFIX_PATH="$VENV" cmake -S "$pkg" -B "$work/build" -DCMAKE_PREFIX_PATH="$VENV" \
        -DPython3_EXECUTABLE="$PY" -DCMAKE_INSTALL_PREFIX="$VENV" -DBUILD_TESTING=OFF \
        && cmake --build "$work/build" -j2 && cmake --install "$work/build"; } >"$build_log" 2>&1; then
    grep -iE "error|not found" "$build_log" | head -5 >&2
    fail "cmake build failed (see the lines above)"
fi
"$PY" -c "from tf2_msgs.msg import TFMessage; TFMessage()" >/dev/null 2>&1 || fail "built, but 'from tf2_msgs.msg import TFMessage' still fails"
echo "build_tf2_msgs: tf2_msgs installed into $VENV"
