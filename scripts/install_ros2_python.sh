#!/usr/bin/env bash
# Install the ROS 2 Jazzy Python tools of ../shared/ros2_python (`ros2 launch`, the launch
# library, launch_ros, the `ros2` command with its run, topic, param, node, service, pkg and
# interface verbs, rosidl_runtime_py) and the interface package composition_interfaces into a
# venv that has ROS 2 from the PyPI wheels: what a full ROS 2 install provides and PyPI does not.
# scripts/setup_venv.sh calls this only when no ROS 2 is sourced.
#
# Usage: scripts/install_ros2_python.sh [VENV]   (default .venv; dcreg_ros must be installed in it)
# - The sources are found by `python -m dcreg_ros.eval.shared_data ros2_python`
#   ($DCREG_SHARED_ROS2_PYTHON, ../shared/ros2_python, or the same folder next to the repository
#   this checkout was cloned from). Without them: one line saying so, exit 0 (the tests that run
#   `ros2 launch` and the ros2 CLI then skip with that reason).
# - Each package is copied to a temporary folder first (the shared sources are never written to)
#   and installed with `pip install --no-deps --no-build-isolation`; their third-party
#   dependencies are pinned in requirements/ros-tools.txt (constrained by requirements/lock.txt).
# - Idempotent: does nothing when every package is installed at its source's version.
# - Fails soft: a problem prints what failed and exits 1; setup_venv.sh only warns.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/pip_quiet.sh
VENV=$(cd "${1:-.venv}" 2>/dev/null && pwd) || { echo "install_ros2_python: no venv at ${1:-.venv}" >&2; exit 1; }
PY="$VENV/bin/python"
# dependency order does not matter to pip --no-deps; this is the order of the README table
PACKAGES=(launch launch_xml launch_yaml launch_ros ros2launch ros2cli ros2topic ros2param ros2node ros2service ros2pkg ros2run
          ros2interface rosidl_runtime_py)

fail() { echo "install_ros2_python: $*" >&2; exit 1; }

src=$(cd /tmp && "$PY" -m dcreg_ros.eval.shared_data ros2_python) || fail "dcreg_ros is not installed in $VENV"
if [ ! -d "$src" ]; then
    echo "install_ros2_python: $src not found: ros2 launch and the ros2 CLI are not installed (their tests skip)"
    exit 0
fi

# installed already at the versions of the sources?
if (cd /tmp && "$PY" - "$src" "${PACKAGES[@]}") <<'PY' >/dev/null 2>&1
import re
import sys
from importlib.metadata import version
from pathlib import Path

src = Path(sys.argv[1])
for name in sys.argv[2:]:
    wanted = re.search(r"<version>(.*?)</version>", (src / name / "package.xml").read_text()).group(1)
    assert version(name) == wanted, name
import composition_interfaces.srv  # noqa: E402,F401
PY
then
    echo "install_ros2_python: the ROS 2 Python tools of $src are installed"
    exit 0
fi

echo "install_ros2_python: installing ${PACKAGES[*]} and composition_interfaces from $src"
pip_quiet "$PY" install -r requirements/ros-tools.txt -c requirements/lock.txt || fail "pip could not install requirements/ros-tools.txt"
if ! (cd /tmp && "$PY" -c "import composition_interfaces.srv") >/dev/null 2>&1; then
    scripts/build_rosidl_package.sh "$VENV" "$src/composition_interfaces" >/dev/null || fail "composition_interfaces could not be built"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
paths=()
for name in "${PACKAGES[@]}"; do
    [ -f "$src/$name/setup.py" ] || fail "$src/$name/setup.py not found"
    cp -r "$src/$name" "$work/$name" && chmod -R u+w "$work/$name" || fail "cannot copy $src/$name"
    paths+=("$work/$name")
done
# from the temporary folder: a folder named like a package in the current directory would shadow it
(cd "$work" && pip_quiet "$PY" install --no-deps --no-build-isolation "${paths[@]}") || fail "pip could not install the packages"
(cd /tmp && "$PY" -c "import launch, launch_ros, ros2launch, ros2cli, ros2topic, ros2param, rosidl_runtime_py") \
    || fail "installed, but the packages do not import"
[ -x "$VENV/bin/ros2" ] || fail "installed, but $VENV/bin/ros2 is missing"
echo "install_ros2_python: ros2 launch and the ros2 CLI installed into $VENV"
