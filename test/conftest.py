"""Shared fixtures: paths to the real scans in ../shared/data and small synthetic scenes."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dcreg_ros.eval.shared_data import shared_data_dir
from hypothesis import settings

# the same examples on every machine: CI reproduces what a developer saw
settings.register_profile("deterministic", derandomize=True, deadline=None)
settings.load_profile("deterministic")

ROOT = Path(__file__).resolve().parents[1]
DATA = shared_data_dir()


def require_data() -> Path:
    if not DATA.exists():
        pytest.fail(f"real scans not found at {DATA} (set DCREG_SHARED_DATA)")
    return DATA


def pairs() -> list[dict]:
    """Rows of ../shared/data/pairs.tsv with the reference transform as a 4x4 array."""
    with open(require_data() / "pairs.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for r in rows:
        r["T"] = np.array([float(x) for x in r["T_target_source_rowmajor"].split()]).reshape(4, 4)
    return rows


def minimal_example() -> tuple[np.ndarray, np.ndarray]:
    """H and g of the method file's minimal synthetic example (section 6)."""
    B = np.eye(6)
    B[0, 2], B[1, 5], B[2, 5], B[3, 2], B[4, 5] = 0.35, 0.15, 0.45, 0.20, 0.25
    J = B @ np.diag([6.0, 4.5, 1.1, 5.0, 3.5, 0.18])
    return J.T @ J, np.array([0.8, -1.1, 0.6, -0.5, 0.3, 1.4])


def box_room(n: int = 6000, size=(12.0, 8.0, 3.0), seed: int = 0, noise: float = 0.005) -> np.ndarray:
    """Points on the six faces of an axis-aligned room plus two boxes: well constrained in 6 DoF."""
    rng = np.random.default_rng(seed)
    lx, ly, lz = size
    faces = []
    per = n // 8
    for axis, value in ((0, -lx / 2), (0, lx / 2), (1, -ly / 2), (1, ly / 2), (2, 0.0), (2, lz)):
        p = np.column_stack([rng.uniform(-lx / 2, lx / 2, per), rng.uniform(-ly / 2, ly / 2, per), rng.uniform(0, lz, per)])
        p[:, axis] = value
        faces.append(p)
    for cx, cy, w in ((2.0, 1.5, 1.0), (-3.0, -2.0, 1.5)):
        p = np.column_stack([rng.uniform(cx - w / 2, cx + w / 2, per), rng.uniform(cy - w / 2, cy + w / 2, per), rng.uniform(0, w, per)])
        side = rng.integers(0, 3, per)
        for k in range(per):
            a = side[k]
            if a == 0:
                p[k, 0] = cx + w / 2 * rng.choice([-1, 1])
            elif a == 1:
                p[k, 1] = cy + w / 2 * rng.choice([-1, 1])
            else:
                p[k, 2] = w
        faces.append(p)
    pts = np.vstack(faces)
    return pts + rng.normal(0, noise, pts.shape)


def run_cli(*args, ok: bool = True) -> subprocess.CompletedProcess:
    """Run `dcreg ARGS...` as a subprocess (python -m dcreg_ros.cli); assert success unless ok=False."""
    proc = subprocess.run([sys.executable, "-m", "dcreg_ros.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def assert_one_line_error(proc: subprocess.CompletedProcess, needle: str) -> None:
    """Exit status 1, no traceback, exactly one `dcreg: error:` line containing ``needle``."""
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dcreg: error:") and needle in lines[0], proc.stderr
