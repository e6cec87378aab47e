"""Regenerate config/registration.yaml, config/odometry.yaml and config/global_registration.yaml
from the typed defaults."""

from pathlib import Path

from dcreg_ros.core.config import RegistrationConfig
from dcreg_ros.core.config_io import annotated_yaml
from dcreg_ros.core.global_registration import GlobalRegistrationConfig
from dcreg_ros.core.localization import LocalizationConfig
from dcreg_ros.core.odometry import OdometryConfig

ROOT = Path(__file__).resolve().parents[1]

(ROOT / "config" / "registration.yaml").write_text(annotated_yaml(
    RegistrationConfig(), "registration",
    "dcreg_ros pairwise registration parameters (all optional; defaults shown).\nUse: dcreg register SOURCE TARGET --config config/registration.yaml"))
(ROOT / "config" / "odometry.yaml").write_text(annotated_yaml(
    OdometryConfig(), "odometry",
    "dcreg_ros odometry parameters (all optional; defaults shown).\nUse: dcreg run INPUT --out DIR --config config/odometry.yaml"))
(ROOT / "config" / "global_registration.yaml").write_text(annotated_yaml(
    GlobalRegistrationConfig(), GlobalRegistrationConfig.YAML_KEY,
    "dcreg_ros global registration parameters (all optional; defaults shown).\nUse: dcreg register SOURCE TARGET --global --config config/global_registration.yaml"))
(ROOT / "config" / "localization.yaml").write_text(annotated_yaml(
    LocalizationConfig(), "localization",
    "dcreg_ros localization parameters (all optional; defaults shown).\nUse: dcreg localize MAP INPUT --out DIR --config config/localization.yaml"))
print("wrote config/registration.yaml, config/odometry.yaml, config/global_registration.yaml and config/localization.yaml")
