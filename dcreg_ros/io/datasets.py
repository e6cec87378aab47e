"""A sequence of scans from a bag or from a folder of point cloud files, behind one interface."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..core.pointcloud import InputError
from .bag_reader import STORAGE_SUFFIXES, storage_file_hint
from .bags import GROUND_TRUTH_TOPICS, POSE_TYPES, BagError, list_topics, read_ground_truth, read_scans, scan_topic
from .cloud_files import read_cloud
from .pointcloud2 import INTENSITY_FIELDS, TIME_FIELDS, relative_times
from .ros_time import seconds_to_nanoseconds
from .scan import Scan
from .skips import SkipLog
from .trajectory import Trajectory, read_tum

CLOUD_SUFFIXES = (".pcd", ".ply", ".bin", ".csv", ".txt")
BAG_FILE_SUFFIXES = (".bag", ".mcap", ".db3")
TIMESTAMPS_FILE = "timestamps.txt"
GROUND_TRUTH_FILE = "ground_truth_tum.txt"
_RESERVED = {TIMESTAMPS_FILE, GROUND_TRUTH_FILE}


class Dataset(ABC):
    """Scans in time order plus optional ground truth.

    ``skips`` is filled while iterating (scans read, unreadable files or messages with their
    reasons); each iteration starts a fresh log.
    """

    name: str
    ground_truth: Trajectory | None
    skips: SkipLog
    notes: list[str]  # non-fatal remarks for the user, e.g. why there is no ground truth

    @abstractmethod
    def __len__(self) -> int:
        """Number of scans (including any that will turn out unreadable)."""

    @abstractmethod
    def __iter__(self) -> Iterator[Scan]:
        """Scans in order; unreadable ones are skipped and counted in ``skips``."""


class BagDataset(Dataset):
    """PointCloud2 messages of one topic of a ROS 1 or ROS 2 bag; ground truth from
    ``ground_truth_topic`` or else ``/ground_truth`` (never guessed from another pose topic)."""

    def __init__(self, path: str | Path, topic: str | None = None, ground_truth_topic: str | None = None) -> None:
        self.path = Path(path)
        self.name = self.path.stem if self.path.is_file() else self.path.name
        self.topic, self._count, unreadable = scan_topic(self.path, topic)
        self.skips = SkipLog()
        self.notes: list[str] = []
        if unreadable:
            self.notes.append(f"{len(unreadable)} connection(s) left out, their messages cannot be decoded: "
                              + "; ".join(u.describe() for u in unreadable[:3]))
        try:
            self.ground_truth = read_ground_truth(self.path, ground_truth_topic)
        except BagError as exc:
            if ground_truth_topic is not None:
                raise
            # an unusable /ground_truth: running without ground truth beats refusing to run
            self.ground_truth = None
            self.notes.append(f"no ground truth: {exc}")
        else:
            if self.ground_truth is None:
                others = sorted(t for t, m in list_topics(self.path).items() if m in POSE_TYPES)
                if others:
                    self.notes.append(f"no ground truth: no {GROUND_TRUTH_TOPICS[0]} topic; pose topics {', '.join(others)} "
                                      "are not taken as ground truth unless named (--gt-topic)")

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Scan]:
        self.skips = SkipLog()
        return read_scans(self.path, self.topic, self.skips)


def _natural_key(path: Path) -> list:
    # 'scan_2' before 'scan_10'
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _read_stamps(path: Path, expected: int) -> np.ndarray:
    stamps = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            stamps.append(float(line.split()[0].rstrip(",")))
        except ValueError:
            raise InputError(f"{path}:{number}: not a time stamp: '{line[:40]}'") from None
    if len(stamps) != expected:
        raise InputError(f"{path}: {len(stamps)} stamps for {expected} point cloud files")
    out = np.array(stamps)
    if not np.all(np.isfinite(out)):
        raise InputError(f"{path}: contains NaN or Inf")
    return out


class FolderDataset(Dataset):
    """Point cloud files of a folder in natural name order.

    Stamps come from ``timestamps.txt`` (one per line, seconds) or are ``index * period``.
    Per-point times come from a ``t``/``time``/``timestamp``/``offset_time`` field (integers are
    nanoseconds, floats seconds, normalised like PointCloud2); ground truth from
    ``ground_truth_tum.txt``.
    """

    def __init__(self, path: str | Path, period: float = 0.1) -> None:
        self.path = Path(path)
        self.name = self.path.name
        if not period > 0:
            raise InputError(f"{path}: period must be > 0 s, got {period}")
        self.files = sorted(
            (p for p in self.path.iterdir()
             if p.is_file() and p.suffix.lower() in CLOUD_SUFFIXES and p.name not in _RESERVED and not p.name.startswith(".")),
            key=_natural_key)
        if not self.files:
            raise InputError(f"{path}: no point cloud files ({', '.join(CLOUD_SUFFIXES)}) in this folder"
                             + (f" and no metadata.yaml of a ROS 2 bag{storage_file_hint(self.path)}"
                                if any(p.suffix.lower() in STORAGE_SUFFIXES for p in self.path.iterdir()) else ""))
        stamps_file = self.path / TIMESTAMPS_FILE
        if stamps_file.is_file():
            self.stamps = _read_stamps(stamps_file, len(self.files))
        else:
            self.stamps = np.arange(len(self.files)) * float(period)
        gt_file = self.path / GROUND_TRUTH_FILE
        self.ground_truth = read_tum(gt_file) if gt_file.is_file() else None
        self.skips = SkipLog()
        self.notes = []

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[Scan]:
        self.skips = skips = SkipLog()
        for path, stamp in zip(self.files, self.stamps):
            try:
                scan = _file_scan(path, float(stamp))
            except InputError as exc:  # one unreadable file must not end a long run
                reason = str(exc).removeprefix(f"{path}: ")
                skips.skip("unreadable file", path.name, reason)
                continue
            skips.read += 1
            yield scan


def _file_scan(path: Path, stamp: float) -> Scan:
    cloud = read_cloud(path)
    points = np.asarray(cloud.points, dtype=np.float64)
    keep = np.isfinite(points).all(axis=1)
    points = points[keep]
    time_name = next((n for n in TIME_FIELDS if n in cloud.fields), None)
    intensity_name = next((n for n in INTENSITY_FIELDS if n in cloud.fields), None)
    times = None
    if time_name:
        times = relative_times(np.asarray(cloud.fields[time_name]).reshape(len(keep), -1)[:, 0][keep], seconds_to_nanoseconds(stamp))
    intensity = None
    if intensity_name:
        intensity = np.asarray(cloud.fields[intensity_name], dtype=np.float64).reshape(len(keep), -1)[:, 0][keep]
    return Scan(stamp, np.ascontiguousarray(points), times, intensity, frame_id="lidar")


def open_dataset(path: str | Path, topic: str | None = None, period: float = 0.1,
                 ground_truth_topic: str | None = None) -> Dataset:
    """Open a bag (ROS 1 ``.bag``, ROS 2 directory or its ``.mcap``/``.db3``) or a cloud folder.

    ``topic`` selects the PointCloud2 topic of a bag (auto-detected when None); ``period`` (s) is
    the scan spacing of folders without ``timestamps.txt``; ``ground_truth_topic`` names a bag's
    ground-truth topic (default ``/ground_truth``). Raises :class:`InputError`.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or directory")
    if p.is_file():
        if p.suffix.lower() in BAG_FILE_SUFFIXES:
            return BagDataset(p, topic, ground_truth_topic)
        raise InputError(f"{p}: unknown input (expected a .bag file, a ROS 2 bag directory or its .mcap/.db3 file, "
                         f"or a folder of {'/'.join(CLOUD_SUFFIXES)} files)")
    if not p.is_dir():  # a device, a socket, ...
        raise InputError(f"{p}: not a regular file or directory")
    if (p / "metadata.yaml").is_file():
        return BagDataset(p, topic, ground_truth_topic)
    return FolderDataset(p, period)
