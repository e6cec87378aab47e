"""dcreg_ros: degeneracy-aware LiDAR registration and odometry (DCReg) for ROS 2 and Python.

Quick start::

    import dcreg_ros
    result = dcreg_ros.register(source_xyz, target_xyz)          # (N, 3) arrays in metres
    print(result.T_target_source, result.degeneracy_first.describe())
"""

from ._version import __version__
from .core.config import RegistrationConfig
from .core.config_io import ConfigError
from .core.degeneracy import AXIS_NAMES, DegeneracyReport, analyze_hessian
from .core.global_map import GlobalMap
from .core.global_registration import (
    GlobalRegistrationConfig,
    GlobalRegistrationResult,
    GlobalTarget,
    global_register,
    global_register_to,
)
from .core.localization import LocalizationConfig, LocalizationReport, Localizer
from .core.odometry import FrameRecord, Odometry, OdometryConfig
from .core.pointcloud import InputError
from .core.registration import RegistrationResult, register
from .core.solvers import STRATEGIES

__all__ = [
    "AXIS_NAMES",
    "ConfigError",
    "DegeneracyReport",
    "FrameRecord",
    "GlobalMap",
    "GlobalRegistrationConfig",
    "GlobalRegistrationResult",
    "GlobalTarget",
    "InputError",
    "LocalizationConfig",
    "LocalizationReport",
    "Localizer",
    "Odometry",
    "OdometryConfig",
    "RegistrationConfig",
    "RegistrationResult",
    "STRATEGIES",
    "__version__",
    "analyze_hessian",
    "global_register",
    "global_register_to",
    "register",
]
