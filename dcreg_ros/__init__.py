"""dcreg_ros: degeneracy-aware LiDAR registration and odometry (DCReg) for ROS 2 and Python.

Quick start::

    import dcreg_ros
    result = dcreg_ros.register(source_xyz, target_xyz)          # (N, 3) arrays in metres
    print(result.T_target_source, result.degeneracy_first.describe())

The names below are imported on first use (PEP 562): importing a submodule such as
``dcreg_ros.nodes.entry`` costs nothing until it needs numpy and numba, so the ROS executables set
up their Ctrl-C handling before the heavy imports (nodes/stop_signals.py).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ._version import __version__

# public name -> module that defines it
_EXPORTS = {
    "RegistrationConfig": ".core.config",
    "ConfigError": ".core.config_io",
    "AXIS_NAMES": ".core.degeneracy",
    "DegeneracyReport": ".core.degeneracy",
    "analyze_hessian": ".core.degeneracy",
    "GlobalMap": ".core.global_map",
    "GlobalRegistrationConfig": ".core.global_registration",
    "GlobalRegistrationResult": ".core.global_registration",
    "GlobalTarget": ".core.global_registration",
    "global_register": ".core.global_registration",
    "global_register_to": ".core.global_registration",
    "LocalizationConfig": ".core.localization",
    "LocalizationReport": ".core.localization",
    "Localizer": ".core.localization",
    "FrameRecord": ".core.odometry",
    "Odometry": ".core.odometry",
    "OdometryConfig": ".core.odometry",
    "InputError": ".core.pointcloud",
    "RegistrationResult": ".core.registration",
    "register": ".core.registration",
    "STRATEGIES": ".core.solvers",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'dcreg_ros' has no attribute {name!r}") from None
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
