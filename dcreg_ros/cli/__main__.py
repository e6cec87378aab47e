"""`python -m dcreg_ros.cli` runs the `dcreg` command line."""

import sys

from .main import main

sys.exit(main())
