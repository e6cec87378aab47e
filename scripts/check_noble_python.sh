#!/usr/bin/env bash
# The colcon install's Python side as far as it can be checked without Ubuntu 24.04: a venv on
# Python 3.12 with Noble's numpy 1.26.4, scipy 1.11.4 and EmPy 3.3.4 (plus pyyaml, matplotlib,
# tqdm, setuptools, wheel and colcon, pinned in scripts/noble_colcon.txt, standing in for the
# Debian packages), then
#  1. exactly the pip step of the install (requirements/colcon.txt and test.txt, constrained by
#     scripts/system_pins.py) and a check that numpy and scipy were not replaced;
#  2. `python -m colcon build --symlink-install` of a workspace holding a copy of this checkout,
#     a check that the installed executables run with the venv's interpreter, and the installed
#     `dcreg` CLI (simulate, run, eval) from a clean environment that only sources install/setup.bash;
#  3. every test that needs no ROS 2 (pytest -m 'not ros', without the files importing rclpy);
#  4. where PyPI has ROS 2 Jazzy wheels for this Python (it has them for 3.12): those wheels
#     (requirements/ros.txt, with numpy still 1.26.4), tf2_msgs, ros2 launch and the ros2 CLI
#     from ../shared/ros2_python, and every ROS test (pytest -m ros), the launch files through
#     real `ros2 launch` included. Without such wheels: one line saying so.
# .ci/run runs it after make test (6-12 minutes on 2 cores, a 1.5 GB venv). docs/INSTALL.md says what it shows.
#
# Usage: scripts/check_noble_python.sh [PYTHON3.12] [VENV] [-- PYTEST ARGS...]
#   defaults: python3.12 (else pyenv's newest 3.12), .venv-noble (kept, so a re-run only runs the tests)
set -euo pipefail
PYTHON=${1:-}
VENV=${2:-.venv-noble}
shift $(( $# < 2 ? $# : 2 ))
[ "${1:-}" = "--" ] && shift
cd "$(dirname "$0")/.."
source scripts/pip_quiet.sh
unset PYTHONPATH ROS_DISTRO

# Ubuntu 24.04's versions; matplotlib 3.6.3 (Noble's) has no Python 3.12 wheel: 3.8.0 is the oldest
# that has. EmPy (colcon-core needs it) has no wheel at all: built from its source, the one exception
# to --only-binary.
NOBLE_SYSTEM=(numpy==1.26.4 scipy==1.11.4 pyyaml==6.0.1 matplotlib==3.8.0 pyparsing==3.1.1 tqdm==4.66.2 setuptools==68.1.2
              wheel==0.42.0 empy==3.3.4)

if [ -z "$PYTHON" ]; then  # python3.12 on PATH, else pyenv's newest 3.12 (its shim fails unless 3.12 is selected)
    PYTHON=python3.12
    if ! python3.12 -c "" >/dev/null 2>&1 && command -v pyenv >/dev/null 2>&1; then
        v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.[0-9]+)?$' | sort -V | tail -1 || true)
        [ -n "$v" ] && PYTHON="$(pyenv root)/versions/$v/bin/python3.12"
    fi
fi
"$PYTHON" -c "" >/dev/null 2>&1 || { echo "check_noble: $PYTHON not found (give a Python 3.12: scripts/check_noble_python.sh /path/to/python3.12)" >&2; exit 1; }
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PY="$(cd "$VENV" && pwd)/bin/python"
touch "$VENV/COLCON_IGNORE"
echo "check_noble: $("$PY" --version) with the Ubuntu 24.04 stand-ins: ${NOBLE_SYSTEM[*]} and colcon (scripts/noble_colcon.txt)"
pip_quiet "$PY" install --only-binary=:all: --no-binary=empy "${NOBLE_SYSTEM[@]}" -r scripts/noble_colcon.txt
pins="$VENV/system-pins.txt"
"$PY" scripts/system_pins.py numpy scipy matplotlib PyYAML tqdm >"$pins"
echo "check_noble: pip step of the ROS_DISTRO install (colcon.txt, test.txt) constrained by $(paste -sd ' ' "$pins")"
pip_quiet "$PY" install --only-binary=:all: -r requirements/colcon.txt -r requirements/test.txt -c "$pins"
pip_quiet "$PY" install --no-deps --no-build-isolation -e .
still_noble() {  # numpy, scipy, ... are still the system's (Noble's) versions
    "$PY" - "$pins" <<'PY'
import sys
from importlib.metadata import version

for line in open(sys.argv[1]):
    name, pinned = line.strip().split("==")
    assert version(name) == pinned, f"pip replaced {name} {pinned} by {version(name)}"
import numba, numpy, scipy  # noqa: E401

print(f"check_noble: still numpy {numpy.__version__}, scipy {scipy.__version__}; numba {numba.__version__}")
PY
}
still_noble

ws=$(mktemp -d)
trap 'rm -rf "$ws"' EXIT
mkdir -p "$ws/src/dcreg_ros"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$ws/src/dcreg_ros"
echo "check_noble: python -m colcon build --symlink-install in $ws"
(cd "$ws" && "$PY" -m colcon build --symlink-install >"$ws/build.log" 2>&1) || { tail -20 "$ws/build.log" >&2; exit 1; }
exe="$ws/install/dcreg_ros/lib/dcreg_ros/dcreg"
shebang=$(head -1 "$exe")
[ "$shebang" = "#!$PY" ] || { echo "check_noble: $exe starts with $shebang, not the venv's python" >&2; exit 1; }
if ! env -i HOME="$HOME" PATH=/usr/bin:/bin bash -c "source '$ws/install/setup.bash' \
        && '$exe' simulate tunnel --out '$ws/tunnel' --frames 12 --beams 16 --seed 1 >/dev/null \
        && '$exe' run '$ws/tunnel' --out '$ws/run' --quiet >/dev/null && '$exe' eval '$ws/run' '$ws/tunnel'" \
        | sed 's/^/check_noble: installed dcreg: /'; then
    echo "check_noble: the installed dcreg CLI failed" >&2
    exit 1
fi

# test files that import ROS 2 at module level (rclpy, or test/ros_helpers.py which does) or are
# marked ros as a whole cannot even be collected here
ignores=() ros_files=()
for f in test/test_*.py; do
    if grep -Eq '^(pytestmark = .*pytest\.mark\.ros|import rclpy|from rclpy|from ros_helpers import)' "$f"; then
        ignores+=("--ignore=$f") ros_files+=("$f")
    fi
done
echo "check_noble: pytest -m 'not ros' ${ignores[*]} $*"
"$PY" -m pytest -m "not ros" -p no:cacheprovider "${ignores[@]}" "$@"

# 4. the ROS tests with ROS 2 Jazzy from PyPI for this Python, where the wheels exist
version=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
keep="$VENV/keep-constraints.txt"  # the lock without what the system (the stand-ins above) provides
"$PY" - requirements/lock.txt >"$keep" <<'PY'
import re
import sys
from importlib.metadata import distributions

installed = {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower() for d in distributions()}
for line in open(sys.argv[1]):
    name = re.sub(r"[-_.]+", "-", line.split("==")[0]).lower()
    if line.strip() and not line.startswith("#") and name not in installed:
        print(line.strip())
PY
echo "check_noble: ROS 2 Jazzy wheels for Python $version (requirements/ros.txt, ros-build.txt, ros-tools.txt), system pins kept"
if ! pip_quiet "$PY" install --only-binary=:all: -r requirements/ros.txt -r requirements/ros-build.txt -r requirements/ros-tools.txt \
        -c "$pins" -c "$keep" >"$VENV/ros-wheels.log" 2>&1; then
    echo "check_noble: PyPI has no ROS 2 Jazzy wheels for Python $version ($(tail -1 "$VENV/ros-wheels.log")): the ROS tests are not run here"
    exit 0
fi
still_noble
scripts/build_tf2_msgs.sh "$VENV"
scripts/install_ros2_python.sh "$VENV"
"$PY" scripts/ament_layout.py "$VENV"
echo "check_noble: pytest -m ros $*, then the other tests of ${ros_files[*]}"
"$PY" -m pytest -m ros -p no:cacheprovider "$@"
"$PY" -m pytest -m "not ros" -p no:cacheprovider "${ros_files[@]}" "$@" || [ $? -eq 5 ]  # 5: none of them there
