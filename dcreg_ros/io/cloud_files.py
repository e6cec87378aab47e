"""Point cloud files: PCD (ascii, binary, binary_compressed), PLY (ascii, binary), KITTI .bin
and CSV / whitespace text.

``read_cloud(path)`` returns a :class:`Cloud` with x, y, z in metres (float64, shape (N, 3)) and
the other per-point fields by name (intensity, t, ...). Every failure raises
:class:`CloudFileError` with a one-line reason that names the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numba import njit

from ..core.pointcloud import InputError

SUPPORTED = (".pcd", ".ply", ".bin", ".csv", ".txt", ".xyz")


class CloudFileError(InputError):
    """A point cloud file is missing, unreadable or malformed."""


@dataclass
class Cloud:
    """Points (N, 3) in metres plus optional per-point fields such as ``intensity`` or ``t``."""

    points: np.ndarray
    fields: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.points)


def read_cloud(path: str | Path) -> Cloud:
    """Read a point cloud file; the format follows the extension."""
    path = Path(path)
    if not path.exists():
        raise CloudFileError(f"{path}: no such file")
    if path.is_dir():
        raise CloudFileError(f"{path}: is a directory, expected a point cloud file")
    suffix = path.suffix.lower()
    readers = {".pcd": _read_pcd, ".ply": _read_ply, ".bin": _read_kitti_bin, ".csv": _read_text, ".txt": _read_text, ".xyz": _read_text}
    if suffix not in readers:
        raise CloudFileError(f"{path}: unsupported extension '{suffix}' (supported: {', '.join(SUPPORTED)})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CloudFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        cloud = readers[suffix](data)
    except CloudFileError as exc:
        raise CloudFileError(f"{path}: {exc}") from None
    except (ValueError, IndexError, KeyError, UnicodeDecodeError) as exc:
        raise CloudFileError(f"{path}: malformed {suffix[1:].upper()} file ({exc})") from None
    return cloud


def _cloud_from_columns(columns: dict[str, np.ndarray]) -> Cloud:
    missing = [c for c in "xyz" if c not in columns]
    if missing:
        raise CloudFileError(f"missing field(s) {', '.join(missing)} (found: {', '.join(columns) or 'none'})")
    points = np.column_stack([columns["x"], columns["y"], columns["z"]]).astype(np.float64)
    fields = {k: np.asarray(v) for k, v in columns.items() if k not in "xyz"}
    return Cloud(points, fields)


# ---------------------------------------------------------------------------------------- PCD
_PCD_TYPES = {("F", 4): "f4", ("F", 8): "f8", ("I", 1): "i1", ("I", 2): "i2", ("I", 4): "i4", ("I", 8): "i8",
              ("U", 1): "u1", ("U", 2): "u2", ("U", 4): "u4", ("U", 8): "u8"}


def _pcd_header(data: bytes) -> tuple[dict[str, list[str]], int]:
    header: dict[str, list[str]] = {}
    pos = 0
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            raise CloudFileError("PCD header has no DATA line")
        line = data[pos:end].decode("ascii", errors="replace").strip()
        pos = end + 1
        if not line or line.startswith("#"):
            continue
        key, *values = line.split()
        header[key.upper()] = values
        if key.upper() == "DATA":
            return header, pos


@dataclass(frozen=True)
class PcdLayout:
    """What a PCD header says: field names and counts, the record dtype of the binary modes,
    the number of points, the DATA mode and where the data starts (byte offset)."""

    names: list[str]
    counts: list[int]
    dtype: np.dtype
    points: int
    mode: str
    offset: int


def pcd_layout(data: bytes) -> PcdLayout:
    """Parse the header of a PCD file given its first bytes (the whole header must be inside)."""
    header, offset = _pcd_header(data)
    names = header.get("FIELDS") or header.get("COLUMNS")
    if not names:
        raise CloudFileError("PCD header has no FIELDS line")
    n_fields = len(names)
    sizes = [int(s) for s in header.get("SIZE", ["4"] * n_fields)]
    types = header.get("TYPE", ["F"] * n_fields)
    counts = [int(c) for c in header.get("COUNT", ["1"] * n_fields)]
    if not (len(sizes) == len(types) == len(counts) == n_fields):
        raise CloudFileError("PCD header FIELDS/SIZE/TYPE/COUNT lengths differ")
    width = int(header.get("WIDTH", ["0"])[0])
    height = int(header.get("HEIGHT", ["1"])[0])
    n = int(header.get("POINTS", [str(width * height)])[0])
    dtype_fields = []
    for i, (name, size, typ, count) in enumerate(zip(names, sizes, types, counts)):
        code = _PCD_TYPES.get((typ.upper(), size))
        if code is None:
            raise CloudFileError(f"unsupported PCD field type {typ}{size}")
        fname = name if name != "_" else f"_pad{i}"
        dtype_fields.append((fname, "<" + code, (count,)) if count > 1 else (fname, "<" + code))
    return PcdLayout(names, counts, np.dtype(dtype_fields), n, header["DATA"][0].lower(), offset)


def _read_pcd(data: bytes) -> Cloud:
    layout = pcd_layout(data)
    names, counts, dtype, n, mode, offset = layout.names, layout.counts, layout.dtype, layout.points, layout.mode, layout.offset
    if mode == "ascii":
        text = data[offset:].decode("ascii", errors="replace")
        values = np.array(text.split(), dtype=np.float64)
        per_point = sum(counts)
        if values.size < n * per_point:
            raise CloudFileError(f"PCD ascii data has {values.size // max(per_point, 1)} of {n} points")
        values = values[: n * per_point].reshape(n, per_point)
        cols, col = {}, 0
        for name, count in zip(names, counts):
            cols[name] = values[:, col] if count == 1 else values[:, col: col + count]
            col += count
        return _cloud_from_columns({k: v for k, v in cols.items() if k != "_"})
    if mode == "binary":
        need = n * dtype.itemsize
        if len(data) - offset < need:
            raise CloudFileError(f"PCD binary data truncated ({len(data) - offset} of {need} bytes)")
        rec = np.frombuffer(data, dtype=dtype, count=n, offset=offset)
    elif mode == "binary_compressed":
        if len(data) - offset < 8:
            raise CloudFileError("PCD binary_compressed data truncated")
        compressed, raw = np.frombuffer(data, dtype="<u4", count=2, offset=offset)
        payload = np.frombuffer(data, dtype=np.uint8, count=int(compressed), offset=offset + 8)
        out = np.empty(int(raw), dtype=np.uint8)
        if _lzf_decompress(payload, out) != raw:
            raise CloudFileError("PCD binary_compressed payload is corrupt")
        # the decompressed buffer stores each field as a contiguous column
        rec = np.empty(n, dtype=dtype)
        pos = 0
        for name in dtype.names:
            sub = dtype.fields[name][0]
            nbytes = sub.itemsize * n
            rec[name] = np.frombuffer(out[pos: pos + nbytes].tobytes(), dtype=sub).reshape(rec[name].shape)
            pos += nbytes
    else:
        raise CloudFileError(f"unsupported PCD DATA mode '{mode}'")
    return _cloud_from_columns({name: rec[name] for name in dtype.names if not name.startswith("_pad")})


@njit(cache=True)
def _lzf_decompress(src: np.ndarray, dst: np.ndarray) -> int:
    """LZF decompression (the PCD binary_compressed codec); returns bytes written or -1."""
    i = 0
    o = 0
    n_in = src.shape[0]
    n_out = dst.shape[0]
    while i < n_in:
        ctrl = int(src[i])
        i += 1
        if ctrl < 32:  # literal run of ctrl + 1 bytes
            length = ctrl + 1
            if i + length > n_in or o + length > n_out:
                return -1
            for k in range(length):
                dst[o + k] = src[i + k]
            i += length
            o += length
        else:  # back reference
            length = ctrl >> 5
            ref = o - ((ctrl & 0x1F) << 8) - 1
            if length == 7:
                if i >= n_in:
                    return -1
                length += int(src[i])
                i += 1
            if i >= n_in:
                return -1
            ref -= int(src[i])
            i += 1
            length += 2
            if ref < 0 or o + length > n_out:
                return -1
            for k in range(length):
                dst[o + k] = dst[ref + k]
            o += length
    return o


def pcd_binary_parts(points: np.ndarray, fields: dict[str, np.ndarray] | None = None) -> tuple[bytes, np.ndarray]:
    """(header, records) of a binary PCD with float32 x, y, z and any extra float32 fields."""
    fields = fields or {}
    cols = {"x": points[:, 0], "y": points[:, 1], "z": points[:, 2], **fields}
    n = len(points)
    rec = np.empty(n, dtype=[(k, "<f4") for k in cols])
    for k, v in cols.items():
        rec[k] = v
    header = (
        "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\n"
        f"FIELDS {' '.join(cols)}\nSIZE {' '.join('4' for _ in cols)}\nTYPE {' '.join('F' for _ in cols)}\n"
        f"COUNT {' '.join('1' for _ in cols)}\nWIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA binary\n"
    )
    return header.encode("ascii"), rec


def write_pcd(path: str | Path, points: np.ndarray, fields: dict[str, np.ndarray] | None = None) -> None:
    """Write a binary PCD with float32 x, y, z and any extra float fields."""
    header, rec = pcd_binary_parts(points, fields)
    Path(path).write_bytes(header + rec.tobytes())


# ---------------------------------------------------------------------------------------- PLY
_PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
              "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
              "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}


def _read_ply(data: bytes) -> Cloud:
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise CloudFileError("not a PLY file (missing 'ply' magic or 'end_header')")
    body = data.index(b"\n", end) + 1
    lines = data[:end].decode("ascii", errors="replace").splitlines()
    fmt = None
    elements: list[tuple[str, int, list[tuple[str, str]]]] = []
    for line in lines[1:]:
        parts = line.split()
        if not parts or parts[0] in ("comment", "obj_info"):
            continue
        if parts[0] == "format":
            fmt = parts[1]
        elif parts[0] == "element":
            elements.append((parts[1], int(parts[2]), []))
        elif parts[0] == "property":
            if parts[1] == "list":
                elements[-1][2].append((parts[-1], "list"))
            else:
                code = _PLY_TYPES.get(parts[1])
                if code is None:
                    raise CloudFileError(f"unsupported PLY property type '{parts[1]}'")
                elements[-1][2].append((parts[2], code))
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise CloudFileError(f"unsupported PLY format '{fmt}'")
    if not elements or elements[0][0] != "vertex":
        raise CloudFileError("PLY files must start with the 'vertex' element")
    _, n, props = elements[0]
    if any(code == "list" for _, code in props):
        raise CloudFileError("list properties in the vertex element are not supported")
    if fmt == "ascii":
        text = data[body:].decode("ascii", errors="replace").split("\n")
        rows = [r.split() for r in text[:n]]
        if len(rows) < n or any(len(r) < len(props) for r in rows):
            raise CloudFileError(f"PLY ascii vertex data truncated (expected {n} rows)")
        values = np.array([r[: len(props)] for r in rows], dtype=np.float64)
        return _cloud_from_columns({name: values[:, i] for i, (name, _) in enumerate(props)})
    endian = "<" if fmt == "binary_little_endian" else ">"
    dtype = np.dtype([(name, endian + code) for name, code in props])
    if len(data) - body < n * dtype.itemsize:
        raise CloudFileError(f"PLY binary vertex data truncated ({len(data) - body} of {n * dtype.itemsize} bytes)")
    rec = np.frombuffer(data, dtype=dtype, count=n, offset=body)
    return _cloud_from_columns({name: rec[name].astype(rec[name].dtype.newbyteorder("=")) for name in dtype.names})


def write_ply(path: str | Path, points: np.ndarray) -> None:
    """Write a binary little-endian PLY with float32 x, y, z."""
    pts = np.ascontiguousarray(points, dtype="<f4")
    header = f"ply\nformat binary_little_endian 1.0\nelement vertex {len(pts)}\nproperty float x\nproperty float y\nproperty float z\nend_header\n"
    Path(path).write_bytes(header.encode("ascii") + pts.tobytes())


# ---------------------------------------------------------------------------------- KITTI .bin
def _read_kitti_bin(data: bytes) -> Cloud:
    if len(data) % 16 != 0:
        raise CloudFileError(f"KITTI .bin size {len(data)} is not a multiple of 16 bytes (x, y, z, intensity as float32)")
    values = np.frombuffer(data, dtype="<f4").reshape(-1, 4)
    return Cloud(values[:, :3].astype(np.float64), {"intensity": values[:, 3].copy()})


# ---------------------------------------------------------------------------------------- text
def _read_text(data: bytes) -> Cloud:
    text = data.decode("utf-8", errors="replace").replace(",", " ").replace(";", " ")
    lines = text.splitlines()
    start = 0
    while start < len(lines) and (not lines[start].strip() or lines[start].lstrip().startswith("#")):
        start += 1
    if start >= len(lines):
        raise CloudFileError("empty text file")
    first = lines[start].split()
    names: list[str] | None = None
    try:
        [float(v) for v in first]
    except ValueError:
        names = [v.strip().lower() for v in first]
        start += 1
    body = "\n".join(line for line in lines[start:] if line.strip() and not line.lstrip().startswith("#"))
    values = np.array(body.split(), dtype=np.float64)
    ncol = len(names) if names else len(lines[start].split()) if start < len(lines) else 0
    if ncol < 3:
        raise CloudFileError(f"expected at least 3 columns (x y z), found {ncol}")
    if values.size % ncol:
        raise CloudFileError(f"rows have different numbers of columns (expected {ncol})")
    values = values.reshape(-1, ncol)
    if names is None:
        names = ["x", "y", "z"] + [f"c{i}" for i in range(3, ncol)]
    return _cloud_from_columns({name: values[:, i] for i, name in enumerate(names)})
