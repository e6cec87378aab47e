"""The two installs (docs/INSTALL.md) checked against the code: package.xml declares a rosdep key
for every third-party module that dcreg_ros/, launch/ and test/ import (or the module is a pinned
pip-only dependency), the requirements files and the lock agree, the pip-only pins admit Ubuntu
24.04's Python and numpy, and the Makefile's ROS_DISTRO branch (run against stub interpreters)
uses the system python3 and never installs numpy."""

from __future__ import annotations

import ast
import functools
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
REQ = ROOT / "requirements"

# top-level module -> rosdep key; every key was resolved for ubuntu:noble / jazzy with rosdep
# against rosdistro's rosdep/*.yaml and jazzy/distribution.yaml
ROSDEP_KEYS = {
    "rclpy": "rclpy",
    "rcl_interfaces": "rcl_interfaces",
    "builtin_interfaces": "builtin_interfaces",
    "std_msgs": "std_msgs",
    "std_srvs": "std_srvs",
    "sensor_msgs": "sensor_msgs",
    "geometry_msgs": "geometry_msgs",
    "nav_msgs": "nav_msgs",
    "visualization_msgs": "visualization_msgs",
    "diagnostic_msgs": "diagnostic_msgs",
    "rosgraph_msgs": "rosgraph_msgs",
    "tf2_msgs": "tf2_msgs",
    "tf2_ros": "tf2_ros_py",  # the Python tf2_ros lives in tf2_ros_py
    "launch": "launch",
    "launch_ros": "launch_ros",
    "ament_index_python": "ament_index_python",
    "numpy": "python3-numpy",
    "scipy": "python3-scipy",
    "yaml": "python3-yaml",
    "matplotlib": "python3-matplotlib",
    "tqdm": "python3-tqdm",
    "pytest": "python3-pytest",
    "hypothesis": "python3-hypothesis",
}
# top-level module -> distribution pinned in requirements/colcon.txt (no usable rosdep key on
# Ubuntu 24.04; package.xml says why in a comment)
PIP_ONLY = {"numba": "numba", "rosbags": "rosbags", "evo": "evo"}
# peer methods, imported only when asked for (requirements/bench.txt, venv only)
PEERS = {"kiss_icp": "kiss-icp", "open3d": "open3d-cpu", "small_gicp": "small-gicp"}
# declared without a Python import
NOT_IMPORTED = {
    "ros2launch": "`ros2 launch dcreg_ros dcreg.launch.py`",
    "python3-tqdm": "the dcreg CLI's progress display (issue 10 moves it onto tqdm)",
}
# what Ubuntu 24.04 (ROS 2 Jazzy) ships, from packages.ubuntu.com
NOBLE = {"python": "3.12.3", "numpy": "1.26.4", "scipy": "1.11.4", "matplotlib": "3.6.3"}


def package_xml() -> dict[str, list[str]]:
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    deps: dict[str, list[str]] = {}
    for element in root:
        if isinstance(element.tag, str) and element.tag.endswith("depend"):
            deps.setdefault(element.tag, []).append(element.text.strip())
    return deps


@functools.lru_cache(maxsize=None)
def third_party_imports(folder: str) -> dict[str, str]:
    """{top-level module: 'file:line' of its first import} for the .py files under ``folder``,
    without the standard library, dcreg_ros itself and the folder's own modules."""
    files = sorted((ROOT / folder).rglob("*.py"))
    local = {p.stem for p in files} | {"dcreg_ros", "__future__"}
    found: dict[str, str] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local:
                    found.setdefault(top, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def launched_packages() -> dict[str, str]:
    """ROS packages the launch files start: Node(package=...) and ['ros2', VERB, ...] commands
    (in launch/ and in the launch actions they build, dcreg_ros/nodes/launch_actions.py)."""
    used = {}
    for path in [*sorted((ROOT / "launch").glob("*.py")), ROOT / "dcreg_ros" / "nodes" / "launch_actions.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    if kw.arg == "package" and isinstance(kw.value, ast.Constant):
                        used[kw.value.value] = f"{path.name}: Node(package={kw.value.value!r})"
            if isinstance(node, ast.List) and len(node.elts) > 1 and all(isinstance(e, ast.Constant) for e in node.elts[:2]):
                if node.elts[0].value == "ros2":
                    verb = node.elts[1].value
                    used[f"ros2{verb}"] = f"{path.name}: runs `ros2 {verb}`"
    used.pop("dcreg_ros", None)
    return used


def unknown(module: str, where: str) -> str:
    return (f"{module} (imported at {where}) has no entry in test_packaging.py: add its rosdep key "
            "(rosdistro rosdep/*.yaml) to ROSDEP_KEYS and package.xml, or pin it in requirements/colcon.txt "
            "and PIP_ONLY when Ubuntu 24.04 has no package for it")


def test_package_xml_declares_every_runtime_import_and_nothing_unused():
    deps = package_xml()
    exec_deps = set(deps.get("exec_depend", [])) | set(deps.get("depend", []))
    assert len(exec_deps) == len(deps.get("exec_depend", []) + deps.get("depend", [])), "a key is declared twice"
    needed = {}
    for folder in ("dcreg_ros", "launch"):
        for module, where in third_party_imports(folder).items():
            if module in PIP_ONLY or module in PEERS:
                continue
            assert module in ROSDEP_KEYS, unknown(module, where)
            needed[ROSDEP_KEYS[module]] = where
    needed.update(launched_packages())
    missing = {key: where for key, where in needed.items() if key not in exec_deps}
    assert not missing, "package.xml lacks <exec_depend> for " + ", ".join(f"{k} (needed by {w})" for k, w in missing.items())
    unused = exec_deps - set(needed) - set(NOT_IMPORTED)
    assert not unused, f"package.xml declares {sorted(unused)}, which nothing imports or launches"


def test_package_xml_declares_the_test_imports():
    deps = package_xml()
    declared = set(deps.get("test_depend", [])) | set(deps.get("exec_depend", []))
    for module, where in third_party_imports("test").items():
        if module in PIP_ONLY or module in PEERS or module == "packaging":  # packaging: pytest's own dependency
            continue
        assert module in ROSDEP_KEYS, unknown(module, where)
        assert ROSDEP_KEYS[module] in declared, f"package.xml lacks <test_depend>{ROSDEP_KEYS[module]}</test_depend> ({where})"
    tested = {ROSDEP_KEYS[m] for m in third_party_imports("test") if m in ROSDEP_KEYS}
    assert set(deps.get("test_depend", [])) <= tested, "a <test_depend> that no test imports"


def requirement_names(path: Path) -> dict[str, str]:
    """{normalised name: pinned version} of a requirements file, following its -r includes."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            pins.update(requirement_names(path.parent / line[3:].strip()))
        elif line and not line.startswith("-"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"{path.name}: {line} is not pinned"
            pins[re.sub(r"[-_.]+", "-", req.name).lower()] = spec.version
    return pins


def test_pip_only_modules_are_pinned_in_colcon_txt_and_not_in_package_xml():
    colcon = requirement_names(REQ / "colcon.txt")
    runtime_imports = third_party_imports("dcreg_ros")
    for module, dist in PIP_ONLY.items():
        assert module in runtime_imports, f"{module} is no longer imported: drop it from PIP_ONLY and colcon.txt"
        assert dist in colcon, f"requirements/colcon.txt lacks {dist}"
        assert module in (ROOT / "package.xml").read_text(), f"package.xml's comment does not say why {module} is pip-only"
    declared = {key for keys in package_xml().values() for key in keys}
    assert not {"python3-numba", "python3-rosbags-pip"} & declared  # no Ubuntu 24.04 package / unpinned system pip
    # a robot keeps its numpy, scipy, matplotlib, yaml, tqdm: colcon.txt never names them
    assert not set(colcon) & {"numpy", "scipy", "matplotlib", "pyyaml", "tqdm"}
    assert set(requirement_names(REQ / "runtime.txt")) >= set(colcon)


def test_pip_only_pins_support_ubuntu_24_04_python_and_numpy():
    """Metadata of the installed numba, llvmlite, rosbags and evo admit Python 3.12 and Noble's
    numpy / scipy / matplotlib (the venv has the same pins; scripts/check_noble_python.sh runs them)."""
    for dist, pinned in requirement_names(REQ / "colcon.txt").items():
        assert metadata.version(dist) == pinned, f"{dist}: installed {metadata.version(dist)}, colcon.txt pins {pinned}"
        requires_python = metadata.metadata(dist).get("Requires-Python")
        if requires_python:
            assert NOBLE["python"] in SpecifierSet(requires_python), f"{dist} {pinned} needs Python {requires_python}"
        for line in metadata.requires(dist) or []:
            req = Requirement(line)
            if req.name in NOBLE and (req.marker is None or req.marker.evaluate({"python_version": "3.12", "extra": ""})):
                assert req.specifier.contains(NOBLE[req.name], prereleases=True), \
                    f"{dist} {pinned} requires {req}: Ubuntu 24.04 has {req.name} {NOBLE[req.name]}"


def lock() -> dict[str, str]:
    names = [line.split("==")[0] for line in (REQ / "lock.txt").read_text().splitlines() if line and not line.startswith("#")]
    assert len(names) == len(set(names)), "lock.txt lists a name twice"
    assert all(n == re.sub(r"[-_.]+", "-", n).lower() for n in names), "lock.txt names are not normalised"
    return requirement_names(REQ / "lock.txt")


def test_lock_has_one_line_per_family_and_agrees_with_every_direct_pin():
    pins = lock()
    for name in pins:
        assert f"ros-{name}" not in pins, f"lock.txt lists {name} and ros-{name}: {name} is metadata inside the ros-{name} wheel"
        assert not name.startswith("ros-jazzy-"), f"{name}: the ros-jazzy-* wrappers are pinned in ros.txt / ros-build.txt"
    for path in sorted(REQ.glob("*.txt")):
        if path.name == "lock.txt":
            continue
        for name, version in requirement_names(path).items():
            locked = name.replace("ros-jazzy-", "ros-", 1)  # the wrapper requires ros-NAME==its version
            assert pins.get(locked) == version, f"{path.name} pins {name}=={version}, lock.txt has {locked}=={pins.get(locked)}"


STUB = r"""#!/usr/bin/env bash
# records each call (argv separated by \x1f) and answers like the interpreter setup_venv.sh expects
printf '%s\x1f' "$0" "$@" >>"$STUB_LOG"; echo >>"$STUB_LOG"
case "$1" in
    -c) case "$2" in
            *version_info*) echo "$STUB_VERSION" ;;
            *"import rclpy"*) exit "${STUB_RCLPY:-0}" ;;
        esac ;;
    -m) if [ "$2" = venv ]; then
            dir="${@: -1}"; mkdir -p "$dir/bin"; ln -sf "$(readlink -f "$0")" "$dir/bin/python"
            system=false; [[ " $* " == *" --system-site-packages "* ]] && system=true
            echo "include-system-site-packages = $system" >"$dir/pyvenv.cfg"
        fi ;;
    scripts/system_pins.py)
       for name in "${@:2}"; do
           case "$name" in
               numpy) [ -n "${STUB_NO_NUMPY:-}" ] && { echo "the system Python lacks numpy"; exit 1; }; echo "numpy==1.26.4" ;;
               scipy) echo "scipy==1.11.4" ;;
               matplotlib) echo "matplotlib==3.6.3" ;; PyYAML) echo "PyYAML==6.0.1" ;; tqdm) echo "tqdm==4.66.2" ;; esac
       done ;;
esac
exit 0
"""


def make_venv(tmp_path: Path, ros_distro: str | None, **stub_env: str) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    """`make venv` into tmp_path/venv with python3, python3.11, apt-get and sudo stubbed; returns
    make's result and the recorded interpreter calls (argv lists, argv[0] first)."""
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name in ("python3", "python3.11", "apt-get", "sudo"):
        (stubs / name).write_text(STUB if name.startswith("python") else "#!/bin/sh\nexit 1\n")
        (stubs / name).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("ROS_DISTRO", "PYTHON", "VENV", "VIRTUAL_ENV", "MAKEFLAGS")}
    env.update(PATH=f"{stubs}:{env['PATH']}", STUB_LOG=str(tmp_path / "calls"), STUB_VERSION="3.12", **stub_env)
    if ros_distro:
        env["ROS_DISTRO"] = ros_distro
    proc = subprocess.run(["make", "-C", str(ROOT), "venv", f"VENV={tmp_path / 'venv'}"],
                          env=env, capture_output=True, text=True, timeout=120)
    log = (tmp_path / "calls").read_text() if (tmp_path / "calls").exists() else ""
    return proc, [line.rstrip("\x1f").split("\x1f") for line in log.splitlines() if line]


def pip_installs(calls: list[list[str]], venv: Path) -> list[list[str]]:
    """Arguments of every `VENV/bin/python -m pip install ...` call."""
    installs = []
    for argv in calls:
        if argv[1:3] == ["-m", "pip"] and "install" in argv:
            assert argv[0] == str(venv / "bin" / "python"), f"pip run by {argv[0]}, not the venv"
            installs.append(argv[argv.index("install") + 1:])
    return installs


def option_values(args: list[str], option: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == option]


def test_make_with_ros_distro_uses_the_system_python3_and_never_installs_numpy(tmp_path):
    proc, calls = make_venv(tmp_path, "jazzy")
    assert proc.returncode == 0, proc.stderr
    venv = tmp_path / "venv"
    assert not [c for c in calls if c[0].endswith("python3.11")], "python3.11 was called with ROS_DISTRO set"
    created = [c for c in calls if c[1:3] == ["-m", "venv"]]
    assert len(created) == 1 and created[0][0] == str(tmp_path / "stubs" / "python3")
    assert "--system-site-packages" in created[0] and created[0][-1] == str(venv)
    installs = pip_installs(calls, venv)
    files = [f for args in installs for f in option_values(args, "-r")]
    assert files == ["requirements/colcon.txt", "requirements/test.txt"]
    installed = {n for f in files for n in requirement_names(ROOT / f)} | {a for args in installs for a in args if not a.startswith("-")}
    assert not installed & {"numpy", "scipy", "matplotlib", "pyyaml", "tqdm"}, "pip was asked to install a system package"
    assert not [n for n in installed if n.startswith("ros-")], "PyPI ROS wheels installed next to a system ROS 2"
    assert {"numba", "rosbags", "evo", "pytest", "hypothesis"} <= installed
    (constraints,) = {c for args in installs[:1] for c in option_values(args, "-c")}
    assert "numpy==1.26.4" in Path(constraints).read_text().split()  # pip must keep the system's numpy
    assert ["--no-deps", "--no-build-isolation", "-e", "."] in installs  # the package itself, nothing else
    assert not [c for c in calls if any("tf2_msgs" in a for a in c)], "tf2_msgs is built only without a system ROS 2"
    assert not [c for c in calls if "ros2_python" in c], "the system's ros2 CLI and launch are used, not ../shared/ros2_python"
    assert [str(venv / "bin" / "python"), "scripts/ament_layout.py", str(venv)] in calls  # dcreg_ros in the ament index
    assert len(list(venv.glob(".installed-*-system-ros"))) == 1 and (venv / "COLCON_IGNORE").exists()


def test_make_without_ros_distro_makes_the_isolated_pinned_venv(tmp_path):
    proc, calls = make_venv(tmp_path, None)
    assert proc.returncode == 0, proc.stderr
    created = [c for c in calls if c[1:3] == ["-m", "venv"]]
    assert len(created) == 1 and created[0][0].endswith("python3.11") and "--system-site-packages" not in created[0]
    venv = tmp_path / "venv"
    (first, *_) = pip_installs(calls, venv)
    assert option_values(first, "-r") == ["requirements/runtime.txt", "requirements/test.txt", "requirements/ros.txt"]
    assert option_values(first, "-c") == ["requirements/lock.txt"]
    python = str(venv / "bin" / "python")
    assert [python, "-m", "dcreg_ros.eval.shared_data", "ros2_python"] in calls  # where install_ros2_python.sh looks
    assert [python, "scripts/ament_layout.py", str(venv)] in calls


def test_make_with_ros_distro_explains_an_interpreter_without_rclpy(tmp_path):
    proc, calls = make_venv(tmp_path, "jazzy", STUB_RCLPY="1")
    assert proc.returncode != 0
    assert "cannot import the rclpy of ROS 2 'jazzy'" in proc.stderr and "PYTHON=/usr/bin/python3" in proc.stderr
    assert not [c for c in calls if c[1:3] == ["-m", "venv"]]


def test_make_with_ros_distro_asks_for_rosdep_when_the_system_lacks_numpy(tmp_path):
    proc, calls = make_venv(tmp_path, "jazzy", STUB_NO_NUMPY="1")
    assert proc.returncode != 0
    assert "the system Python lacks numpy" in proc.stderr and "rosdep install --from-paths" in proc.stderr
    assert not pip_installs(calls, tmp_path / "venv")
