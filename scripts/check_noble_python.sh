#!/usr/bin/env bash
# The colcon install's Python side as far as it can be checked without Ubuntu 24.04: a venv on
# Python 3.12 with Noble's numpy 1.26.4 and scipy 1.11.4 (plus pyyaml, matplotlib, tqdm,
# setuptools, wheel and colcon standing in for the Debian packages), then
#  1. exactly the pip step of the install (requirements/colcon.txt and test.txt, constrained by
#     scripts/system_pins.py) and a check that numpy and scipy were not replaced;
#  2. `python -m colcon build --symlink-install` of a workspace holding a copy of this checkout,
#     a check that the installed executables run with the venv's interpreter, and the installed
#     `dcreg` CLI (simulate, run, eval) from a clean environment that only sources install/setup.bash;
#  3. every test that needs no ROS 2 (pytest -m 'not ros', without the files importing rclpy).
# Not part of make test (4-15 minutes on 2 cores, a 1 GB venv). docs/INSTALL.md says what it shows.
#
# Usage: scripts/check_noble_python.sh [PYTHON3.12] [VENV] [-- PYTEST ARGS...]
#   defaults: python3.12, .venv-noble (kept, so a re-run only runs the tests)
set -euo pipefail
PYTHON=${1:-python3.12}
VENV=${2:-.venv-noble}
shift $(( $# < 2 ? $# : 2 ))
[ "${1:-}" = "--" ] && shift
cd "$(dirname "$0")/.."
source scripts/pip_quiet.sh
unset PYTHONPATH ROS_DISTRO

# Ubuntu 24.04's versions; matplotlib 3.6.3 (Noble's) has no Python 3.12 wheel: 3.8.0 is the oldest that has
NOBLE_SYSTEM=(numpy==1.26.4 scipy==1.11.4 pyyaml==6.0.1 matplotlib==3.8.0 tqdm==4.66.2 setuptools==68.1.2 wheel==0.42.0
              colcon-common-extensions==0.3.0)

command -v "$PYTHON" >/dev/null 2>&1 || { echo "check_noble: $PYTHON not found" >&2; exit 1; }
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PY="$(cd "$VENV" && pwd)/bin/python"
touch "$VENV/COLCON_IGNORE"
echo "check_noble: $("$PY" --version) with the Ubuntu 24.04 stand-ins: ${NOBLE_SYSTEM[*]}"
pip_quiet "$PY" install --only-binary=:all: "${NOBLE_SYSTEM[@]}"
pins="$VENV/system-pins.txt"
"$PY" scripts/system_pins.py numpy scipy matplotlib PyYAML tqdm >"$pins"
echo "check_noble: pip step of the ROS_DISTRO install (colcon.txt, test.txt) constrained by $(paste -sd ' ' "$pins")"
pip_quiet "$PY" install --only-binary=:all: -r requirements/colcon.txt -r requirements/test.txt -c "$pins"
pip_quiet "$PY" install --no-deps --no-build-isolation -e .
"$PY" - "$pins" <<'PY'
import sys
from importlib.metadata import version

for line in open(sys.argv[1]):
    name, pinned = line.strip().split("==")
    assert version(name) == pinned, f"pip replaced {name} {pinned} by {version(name)}"
import numba, numpy, scipy  # noqa: E401

print(f"check_noble: still numpy {numpy.__version__}, scipy {scipy.__version__}; numba {numba.__version__}")
PY

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

# test files that import ROS 2 at module level cannot even be collected here
ignores=()
for f in test/test_*.py; do
    grep -q '^pytestmark = pytest.mark.ros' "$f" && ignores+=("--ignore=$f")
done
echo "check_noble: pytest -m 'not ros' ${ignores[*]} $*"
"$PY" -m pytest -m "not ros" -p no:cacheprovider "${ignores[@]}" "$@"
