"""Point cloud maps on disk: atomic binary PCD writing and fast, memory-bounded loading.

``write_map(path, points, intensity)`` writes a binary PCD (float32 x y z, plus intensity when
given) into a temporary file in the target's folder and renames it over the target
(``os.replace``), so a crash or a full disk never leaves half a map under the final name.

``load_map(path, voxel_size)`` reads any cloud format of :mod:`.cloud_files` and keeps one point
per voxel. Binary PCD maps are memory-mapped and deduplicated chunk by chunk, so a map of tens of
millions of points never needs more than one chunk in float64 at a time.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.global_map import DEFAULT_MAX_POINTS, GlobalMap
from ..core.interrupts import ctrl_c_checkpoint
from .cloud_files import SUPPORTED, CloudFileError, pcd_binary_parts, pcd_layout, read_cloud
from .pointcloud2 import INTENSITY_FIELDS

CHUNK_POINTS = 2_000_000
_HEADER_BYTES = 1 << 16


class MapFileError(CloudFileError):
    """A map file is missing, unreadable, malformed or holds no usable point."""


@dataclass
class MapCloud:
    """A loaded map: ``points`` (M, 3) float32 in the map frame (m), ``intensity`` (M,) or None,
    ``source_points`` the number of points in the file, ``seconds`` the time spent loading."""

    points: np.ndarray
    intensity: np.ndarray | None
    source_points: int
    voxel_size: float
    seconds: float
    dropped: int = 0

    def __len__(self) -> int:
        return len(self.points)


def write_map(path: str | Path, points: np.ndarray, intensity: np.ndarray | None = None) -> Path:
    """Write an (N, 3) map (m) as binary PCD atomically; returns the path written.

    Raises MapFileError (one line) when the folder does not exist or is not writable.
    """
    path = check_map_destination(path)
    folder = path.parent
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise MapFileError(f"{path}: expected (N, 3) points, got shape {points.shape}")
    fields = {} if intensity is None else {"intensity": np.asarray(intensity, dtype=np.float32).reshape(-1)}
    header, records = pcd_binary_parts(points, fields)
    try:
        handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise MapFileError(f"{path}: cannot write in {folder} ({exc.strerror or exc})") from None
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(header)
            records.tofile(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; a map is data to share
        os.replace(tmp_name, path)
    except OSError as exc:
        _remove_quietly(tmp_name)
        raise MapFileError(f"{path}: write failed ({exc.strerror or exc}); no partial map was left") from None
    except BaseException:
        _remove_quietly(tmp_name)
        raise
    return path


def check_map_destination(path: str | Path, created: str | Path | None = None) -> Path:
    """The path a map can be written to (a .pcd name in an existing folder, or in ``created``, a
    folder the caller creates before writing, e.g. the run's --out), else MapFileError; callers
    check before a long run rather than after it."""
    path = Path(path)
    if path.suffix.lower() != ".pcd":
        raise MapFileError(f"{path}: maps are written as PCD; use a .pcd file name")
    if path.is_dir():
        raise MapFileError(f"{path}: is a directory")
    will_exist = created is not None and path.parent.resolve() == Path(created).resolve()
    if not path.parent.is_dir() and not will_exist:
        raise MapFileError(f"{path}: folder {path.parent} does not exist")
    return path


def _remove_quietly(name: str) -> None:
    try:
        os.unlink(name)
    except OSError:
        pass


def load_map(path: str | Path, voxel_size: float, max_points: int = DEFAULT_MAX_POINTS) -> MapCloud:
    """Read a map file and keep the first point of each voxel of edge ``voxel_size`` (m).

    Raises MapFileError with a one-line reason for a missing, unreadable, malformed or empty map.
    """
    path = Path(path)
    started = time.perf_counter()
    if not path.exists():
        raise MapFileError(f"map {path}: no such file")
    if path.is_dir():
        raise MapFileError(f"map {path}: is a directory, expected a point cloud file ({', '.join(SUPPORTED)})")
    accumulator = None
    if path.suffix.lower() == ".pcd":
        accumulator, total = _load_binary_pcd(path, voxel_size, max_points)
    if accumulator is None:  # other formats and PCD ascii / binary_compressed: read whole
        try:
            cloud = read_cloud(path)
        except CloudFileError as exc:
            raise MapFileError(f"map {exc}") from None
        name = next((n for n in INTENSITY_FIELDS if n in cloud.fields), None)
        intensity = None if name is None else np.asarray(cloud.fields[name]).reshape(len(cloud), -1)[:, 0]
        accumulator = GlobalMap(voxel_size, max_points, with_intensity=intensity is not None)
        for a in range(0, len(cloud), CHUNK_POINTS):
            ctrl_c_checkpoint()
            accumulator.insert(cloud.points[a: a + CHUNK_POINTS], None if intensity is None else intensity[a: a + CHUNK_POINTS])
        total = len(cloud)
    if len(accumulator) == 0:
        raise MapFileError(f"map {path}: no finite points ({total} in the file)")
    points = accumulator.points.copy()
    intensity = None if accumulator.intensity is None else accumulator.intensity.copy()
    return MapCloud(points, intensity, total, float(voxel_size), time.perf_counter() - started, accumulator.dropped)


def _load_binary_pcd(path: Path, voxel_size: float, max_points: int) -> tuple[GlobalMap | None, int]:
    """Stream a binary PCD through the accumulator; (None, 0) for the other PCD modes."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(_HEADER_BYTES)
            try:
                layout = pcd_layout(head)
            except CloudFileError as exc:
                raise MapFileError(f"map {path}: {exc}") from None
            except (ValueError, IndexError, KeyError) as exc:
                raise MapFileError(f"map {path}: malformed PCD header ({exc})") from None
            if layout.mode != "binary":
                return None, 0
            missing = [c for c in "xyz" if c not in layout.dtype.names]
            if missing:
                raise MapFileError(f"map {path}: missing field(s) {', '.join(missing)}")
            need = layout.offset + layout.points * layout.dtype.itemsize
            if size < need:
                raise MapFileError(f"map {path}: PCD binary data truncated ({size - layout.offset} of {need - layout.offset} bytes)")
            name = next((n for n in INTENSITY_FIELDS if n in layout.dtype.names), None)
            accumulator = GlobalMap(voxel_size, max_points, with_intensity=name is not None)
            if layout.points == 0:
                return accumulator, 0
        # np.memmap: the pages are read as the chunks are copied; nothing else stays resident
        records = np.memmap(path, dtype=layout.dtype, mode="r", offset=layout.offset, shape=(layout.points,))
        xyz = np.empty((min(CHUNK_POINTS, layout.points), 3), dtype=np.float32)
        for a in range(0, layout.points, CHUNK_POINTS):
            ctrl_c_checkpoint()  # a stop between two chunks (core/interrupts.py)
            chunk = records[a: a + CHUNK_POINTS]
            block = xyz[: len(chunk)]
            for j, c in enumerate("xyz"):
                block[:, j] = chunk[c]
            inten = None if name is None else np.array(chunk[name], dtype=np.float32).reshape(len(chunk), -1)[:, 0]
            accumulator.insert(block, inten)
    except OSError as exc:
        raise MapFileError(f"map {path}: cannot read ({exc.strerror or exc})") from None
    return accumulator, layout.points
