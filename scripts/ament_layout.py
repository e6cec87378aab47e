"""Lay out dcreg_ros in a venv's prefix as `colcon build --symlink-install` would, so that
``ros2 launch dcreg_ros ...`` and ``ros2 run dcreg_ros ...`` find it (scripts/setup_venv.sh and
every make target run this; it takes milliseconds and is idempotent).

    python scripts/ament_layout.py [VENV]     (default .venv)

- ``share/...``: every file of setup.py's ``data_files`` (the ament index marker, package.xml, the
  launch files, config/) as a symlink to the checkout's file inside real folders (ros2launch
  walks the share folder without following symlinked folders); files that setup.py no longer
  installs are removed from ``share/dcreg_ros``.
- ``lib/dcreg_ros/``: the console scripts, put there by the editable install (setup.cfg).
- ``dcreg_ament_prefix.pth`` in site-packages: every Python of the venv appends the venv to
  ``AMENT_PREFIX_PATH`` (what sourcing a colcon install's setup.bash does), so ``.venv/bin/ros2``
  works without activating anything and the nodes it starts inherit it.
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "dcreg_ros"
PTH_NAME = "dcreg_ament_prefix.pth"
# one line of Python that site.py runs at start-up (a .pth line starting with "import")
PTH_LINE = ("import os, sys; _p = os.environ.get('AMENT_PREFIX_PATH', ''); "
            "sys.prefix in _p.split(os.pathsep) or os.environ.__setitem__('AMENT_PREFIX_PATH', "
            "os.pathsep.join([x for x in (_p, sys.prefix) if x]))\n")


def data_files() -> list[tuple[str, list[str]]]:
    """setup.py's data_files (run with setuptools.setup captured, from the checkout)."""
    import setuptools

    captured: dict = {}
    original = setuptools.setup
    setuptools.setup = lambda **kwargs: captured.update(kwargs)
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)
        runpy.run_path(str(ROOT / "setup.py"), run_name="__main__")
    finally:
        os.chdir(cwd)
        setuptools.setup = original
    return captured["data_files"]


def site_packages(venv: Path) -> Path:
    """The venv's purelib folder (the interpreter that runs this script may be another one)."""
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if not found:
        raise SystemExit(f"ament_layout: no site-packages in {venv}")
    return found[-1]


def lay_out(venv: Path) -> list[Path]:
    """Create or refresh the layout; returns the files linked."""
    linked = []
    for folder, files in data_files():
        target = venv / folder
        if target.is_symlink():
            target.unlink()
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            source = (ROOT / name).resolve()
            link = target / Path(name).name
            if link.is_symlink() and Path(os.readlink(link)) == source:
                linked.append(link)
                continue
            if link.is_symlink() or link.is_file():
                link.unlink()
            link.symlink_to(source)
            linked.append(link)
    share = venv / "share" / PACKAGE
    for path in sorted(share.rglob("*"), reverse=True):  # files before their folders
        if path.is_symlink() or path.is_file():
            if path not in linked:
                path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    pth = site_packages(venv) / PTH_NAME
    if not pth.exists() or pth.read_text() != PTH_LINE:
        pth.write_text(PTH_LINE)
    return linked


def main() -> int:
    venv = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / ".venv").resolve()
    if not (venv / "bin" / "python").exists():
        print(f"ament_layout: no venv at {venv}", file=sys.stderr)
        return 1
    lay_out(venv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
