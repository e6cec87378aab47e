"""Wide-baseline registration cases with known truth (global registration tests and benchmark).

Two kinds, both seeded:

- **real**: a pair of ``../shared/data/pairs.tsv`` whose source is moved by a large known offset
  (4-12 m, 20-180 deg of yaw, a few degrees of roll and pitch), so registration must start
  without a guess. The truth is ``T_ref @ inv(offset)``; errors are measured in the source's own
  sensor frame (``T_est @ offset`` against ``T_ref``), where the reference's consistency applies
  (measured in the moved frame, a 0.2 deg rotation error would read as centimetres of translation
  through the 10 m lever arm of the offset).
- **sim**: two frames of a simulated run (``dcreg_ros.sim``) 4-12 m apart along the path, the
  source additionally rotated about its own origin by a known yaw; the truth is exact
  (consistency 0).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.geometry import invert_pose, pose_error, pose_from_xyz_rpy, transform_points
from ..io.cloud_files import read_cloud

OFFSET_DISTANCE = (4.0, 12.0)  # m
OFFSET_YAW_DEG = (20.0, 180.0)
OFFSET_TILT_DEG = 3.0  # roll and pitch uniform in +-this
OFFSET_HEIGHT = 0.5  # m, z uniform in +-this


@dataclass
class WideBaselineCase:
    """Source and target clouds (N, 3, metres, each in its own frame) and the truth.

    ``T_target_source`` maps the given ``source`` into the target frame. ``offset`` is the
    motion applied to the original source (identity when none), ``T_reference`` the truth for
    the original source; ``consistency_cm`` / ``consistency_deg`` how well the reference itself
    is supported (0 for simulated truth).
    """

    name: str
    source: np.ndarray
    target: np.ndarray
    T_target_source: np.ndarray
    offset: np.ndarray
    T_reference: np.ndarray
    consistency_cm: float
    consistency_deg: float
    overlapping: bool = True

    def error(self, T_est: np.ndarray) -> tuple[float, float]:
        """(cm, deg) error of an estimate of ``T_target_source``, in the original source frame."""
        t, r = pose_error(T_est @ self.offset, self.T_reference)
        return t * 100.0, r

    def within(self, T_est: np.ndarray, margin_cm: float = 5.0, margin_deg: float = 0.5) -> bool:
        """True when the error is within the reference's consistency plus the margins."""
        cm, deg = self.error(T_est)
        return cm <= self.consistency_cm + margin_cm and deg <= self.consistency_deg + margin_deg


def random_offset(rng: np.random.Generator) -> np.ndarray:
    """A large rigid offset: 4-12 m horizontally in any direction, +-0.5 m in z, 20-180 deg of yaw
    either way, +-3 deg roll and pitch."""
    d = rng.uniform(*OFFSET_DISTANCE)
    heading = rng.uniform(0.0, 2.0 * np.pi)
    yaw = np.radians(rng.uniform(*OFFSET_YAW_DEG)) * rng.choice([-1.0, 1.0])
    roll, pitch = np.radians(rng.uniform(-OFFSET_TILT_DEG, OFFSET_TILT_DEG, 2))
    return pose_from_xyz_rpy(d * np.cos(heading), d * np.sin(heading), rng.uniform(-OFFSET_HEIGHT, OFFSET_HEIGHT), roll, pitch, yaw)


def reference_pairs(data: Path) -> list[dict]:
    """Rows of ``pairs.tsv`` that have a reference transform (``T`` as a 4x4 array)."""
    with open(Path(data) / "pairs.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    out = []
    for r in rows:
        T = np.array([float(x) for x in r["T_target_source_rowmajor"].split()]).reshape(4, 4)
        if np.isfinite(T).all():
            out.append({**r, "T": T})
    return out


def _finite(points: np.ndarray) -> np.ndarray:
    return points[np.isfinite(points).all(axis=1)]


def real_cases(data: Path, per_pair: int = 3, seed: int = 0, names: list[str] | None = None) -> list[WideBaselineCase]:
    """``per_pair`` offsets of the source for every reference pair (or the ``names`` given)."""
    cases = []
    for row in reference_pairs(data):
        if names is not None and row["name"] not in names:
            continue
        source = _finite(read_cloud(Path(data) / row["source"]).points)
        target = _finite(read_cloud(Path(data) / row["target"]).points)
        rng = np.random.default_rng([seed, len(cases)])
        for k in range(per_pair):
            off = random_offset(rng)
            cases.append(WideBaselineCase(
                name=f"{row['name']}#{k}", source=transform_points(off, source), target=target,
                T_target_source=row["T"] @ invert_pose(off), offset=off, T_reference=row["T"],
                consistency_cm=float(row["reference_consistency_cm"]), consistency_deg=float(row["reference_consistency_deg"]),
            ))
    return cases


NON_OVERLAPPING = (("fast_gicp", "lpm_car_400_401"), ("lpm_car_400_401", "os1_128_lb_n3_0_1"), ("os1_128_lb_n3_0_1", "fast_gicp"))


def non_overlapping_cases(data: Path, combinations: tuple[tuple[str, str], ...] = NON_OVERLAPPING) -> list[WideBaselineCase]:
    """Source scans of one pair against the target scan of another, recorded in different places:
    no transform is right, so a global registration must report failure."""
    rows = {r["name"]: r for r in reference_pairs(data)}
    nan = np.full((4, 4), np.nan)
    cases = []
    for src_name, tgt_name in combinations:
        source = _finite(read_cloud(Path(data) / rows[src_name]["source"]).points)
        target = _finite(read_cloud(Path(data) / rows[tgt_name]["target"]).points)
        cases.append(WideBaselineCase(f"{src_name}->{tgt_name} (no overlap)", source, target, nan, np.eye(4), nan,
                                      float("nan"), float("nan"), overlapping=False))
    return cases


class _SimRun:
    """One seeded simulated run: deskewed, noisy frames at any time (only the needed ones are cast)."""

    def __init__(self, scene: str, length: float, seed: int, beams: int) -> None:
        from ..sim.scenes import build_scene
        from ..sim.sensors import sensor_preset
        from ..sim.trajectories import SensorMotion

        self.sensor = sensor_preset(beams)
        self.scene = build_scene(scene, length=length)
        self.primitives = self.scene.pack()
        self.motion = SensorMotion(self.scene.motion, seed=seed, x_start=0.0, t0=0.0)
        self.noise = np.random.default_rng([seed, 11])
        self.speed = self.scene.motion.speed

    def frame(self, stamp: float) -> np.ndarray:
        """Points (N, 3) in the sensor frame at ``stamp``: the noise-free deskewed returns plus the
        sensor's range noise along each ray."""
        from ..sim.simulate import simulate_frame

        p = simulate_frame(self.primitives, self.sensor, self.motion, stamp, self.noise).points_true
        r = np.linalg.norm(p, axis=1, keepdims=True)
        return p + p / np.maximum(r, 1e-9) * self.noise.normal(0.0, self.sensor.range_noise, (len(p), 1))


def _yaw_offset(rng: np.random.Generator) -> np.ndarray:
    yaw = np.radians(rng.uniform(*OFFSET_YAW_DEG)) * rng.choice([-1.0, 1.0])
    return pose_from_xyz_rpy(0.0, 0.0, 0.0, 0.0, 0.0, yaw)


START_TIME = 2.0  # s: past the start ramp of the simulated motion


def sim_pair_cases(scene: str = "structured", pairs: int = 4, seed: int = 0, beams: int = 32) -> list[WideBaselineCase]:
    """``pairs`` frame pairs of one simulated run, 4-12 m apart along the path, the source rotated
    by a random yaw (20-180 deg either way) about its own origin."""
    run = _SimRun(scene, 14.0 * pairs + 20.0, seed, beams)
    rng = np.random.default_rng([seed, 99])
    cases = []
    t = START_TIME
    for k in range(pairs):
        t_target, t_source = t, t + rng.uniform(*OFFSET_DISTANCE) / run.speed
        t = t_source + 1.0
        target, source = run.frame(t_target), run.frame(t_source)
        T_ref = invert_pose(run.motion.pose(t_target)) @ run.motion.pose(t_source)
        off = _yaw_offset(rng)
        cases.append(WideBaselineCase(
            name=f"sim_{scene}_pair#{k}", source=transform_points(off, source), target=target,
            T_target_source=T_ref @ invert_pose(off), offset=off, T_reference=T_ref, consistency_cm=0.0, consistency_deg=0.0,
        ))
    return cases


def sim_map(run: "_SimRun", length: float, step: float = 2.0, voxel: float = 0.1) -> np.ndarray:
    """A prior map (M, 3, world frame) of one pass: frames every ``step`` metres over the first
    ``length`` metres of the path, placed with the ground truth and voxel-downsampled."""
    from ..core.voxel_hash import voxel_downsample

    stamps = START_TIME + np.arange(0.0, length + 1e-9, step) / run.speed
    clouds = [transform_points(run.motion.pose(s), run.frame(float(s))) for s in stamps]
    return voxel_downsample(np.vstack(clouds), voxel)


def sim_map_cases(scene: str = "structured", count: int = 4, seed: int = 0, beams: int = 32,
                  map_length: float = 30.0) -> tuple[np.ndarray, list[WideBaselineCase]]:
    """Relocalization in a prior map: the map of one pass (see :func:`sim_map`) and ``count``
    scans taken between its frames, 4-12 m along the path from the map origin and rotated by a
    random yaw about their own origin, so the identity is 4-12 m and 20-180 deg from the truth.
    Returns (map points, cases); every case's target is the map."""
    run = _SimRun(scene, map_length + 20.0, seed, beams)
    world = sim_map(run, map_length)
    rng = np.random.default_rng([seed, 98])
    cases = []
    for k in range(count):
        # a stamp at which the sensor is 4-12 m along x (the speed varies by a few per cent)
        t = START_TIME + rng.uniform(*OFFSET_DISTANCE) / run.speed
        T_ref = run.motion.pose(t)
        off = _yaw_offset(rng)
        cases.append(WideBaselineCase(
            name=f"sim_{scene}_map#{k}", source=transform_points(off, run.frame(t)), target=world,
            T_target_source=T_ref @ invert_pose(off), offset=off, T_reference=T_ref, consistency_cm=0.0, consistency_deg=0.0,
        ))
    return world, cases
