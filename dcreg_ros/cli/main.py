"""The ``dcreg`` command line: one entry point, one sub-command per job.

Every sub-command turns expected failures (missing files, bad formats, invalid parameters) into
a one-line ``dcreg: error: ...`` message and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from .._version import __version__
from ..core.config_io import ConfigError
from ..core.interrupts import caused_by_ctrl_c, ctrl_c_at_checkpoints
from ..core.pointcloud import InputError

from ..eval.run_outputs import OutputError
from .errors import EXIT_ERROR, EXIT_INTERRUPTED, CliError


def _commands() -> dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]]:
    from . import analyze, localize, odometry_commands, register

    return {
        "register": ("register two point clouds and report degeneracy per axis", register.add_arguments),
        "analyze-hessian": ("degeneracy analysis and mitigated step of a 6x6 Hessian", analyze.add_arguments),
        **odometry_commands.COMMANDS,
        "localize": ("localize a bag or folder of scans in a prior map (trajectory in the map frame, LOST detection)", localize.add_arguments),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dcreg",
        description="Degeneracy-aware LiDAR registration (DCReg). State order everywhere: roll, pitch, yaw, x, y, z.",
    )
    parser.add_argument("--version", action="version", version=f"dcreg_ros {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (help_text, add) in _commands().items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with ctrl_c_at_checkpoints():  # Ctrl-C between two frames, never inside a kernel (core/interrupts.py)
            return int(args.func(args) or 0)
    except (CliError, InputError, ConfigError, OutputError) as exc:
        print(f"dcreg: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("dcreg: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemError as exc:  # a second Ctrl-C inside a numba kernel can arrive like this
        if not caused_by_ctrl_c(exc):
            raise
        print("dcreg: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `dcreg ... | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
