"""Print ``name==version`` for each distribution named on the command line, as this interpreter
sees it (with ROS_DISTRO set: the system's, through --system-site-packages). scripts/setup_venv.sh
passes the result to pip as constraints so that pip never replaces the system numpy and scipy.
Exits 1 with one line naming what is missing."""

import sys
from importlib.metadata import PackageNotFoundError, version

missing = []
for name in sys.argv[1:]:
    try:
        print(f"{name}=={version(name)}")
    except PackageNotFoundError:
        missing.append(name)
if missing:
    print("the system Python lacks " + ", ".join(missing))
    sys.exit(1)
