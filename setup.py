"""ament_python package setup: installs the Python package, the ament index marker,
package.xml, launch files and every file of config/ into share/dcreg_ros, and the console entry
points (into lib/dcreg_ros, see setup.cfg). Dependencies: package.xml (rosdep) and requirements/."""

import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "dcreg_ros"

version = {}
exec(open(f"{PACKAGE}/_version.py").read(), version)

setup(
    name=PACKAGE,
    version=version["__version__"],
    packages=find_packages(exclude=["test", "test.*", "benchmarks"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", [p for p in sorted(glob("config/*")) if os.path.isfile(p)]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="dcreg_ros maintainers",
    maintainer_email="maintainers@users.noreply.r-seed-3ed1291e.example",
    description="Degeneracy-aware LiDAR registration and odometry (DCReg) for ROS 2",
    license="MIT",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "dcreg = dcreg_ros.cli.main:main",
            "dcreg_node = dcreg_ros.nodes.entry:dcreg_node",
            "dcreg_localization_node = dcreg_ros.nodes.entry:dcreg_localization_node",
            "dcreg_bag_player = dcreg_ros.nodes.entry:dcreg_bag_player",
        ],
    },
)
