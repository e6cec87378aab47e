"""Exact ray casting against analytic primitives (numba, parallel over rays).

Primitives (world frame, metres):

- :class:`Rectangle`: a bounded (or, with infinite half sizes, unbounded) plane patch, two-sided.
- :class:`Box`: a solid axis-aligned box; rays starting outside hit its outer faces.
- :class:`VerticalCylinder`: a solid finite cylinder with a vertical axis (poles, pillars), caps
  included; seen from outside.
- :class:`Tube`: the inner surface of a horizontal circular tube along x (a tunnel), only where
  z >= ``z_cut`` so that a flat floor chord (a separate rectangle) closes it.

Every primitive packs into one row of 14 floats plus a kind code; :func:`pack` also builds a 1-D
grid of bins along x, because every scene is long along x and a ray only needs the primitives of
the bins it crosses, front to back. The nearest hit wins; normals are unit and face the ray.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit, prange

PLANE, BOX, CYLINDER, TUBE = 0, 1, 2, 3
N_PARAMS = 14
_PARALLEL_EPS = 1e-15  # |n . d| below this: the ray runs parallel to a plane or slab


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


@dataclass(frozen=True)
class Rectangle:
    """Plane patch through ``center`` spanned by unit axes ``u`` and ``v`` (orthogonal);
    ``half_u`` / ``half_v`` are half sizes in metres (``inf`` = unbounded along that axis)."""

    center: tuple
    u: tuple
    v: tuple
    half_u: float
    half_v: float
    reflectivity: float = 0.5
    label: str = "plane"
    kind: int = field(default=PLANE, init=False)

    @classmethod
    def from_corner(cls, corner, edge_u, edge_v, reflectivity: float = 0.5, label: str = "plane") -> "Rectangle":
        """Rectangle with one corner and two orthogonal edge vectors (m)."""
        corner, eu, ev = (np.asarray(a, dtype=np.float64) for a in (corner, edge_u, edge_v))
        if abs(eu @ ev) > 1e-9 * np.linalg.norm(eu) * np.linalg.norm(ev):
            raise ValueError("rectangle edges must be orthogonal")
        center = corner + 0.5 * (eu + ev)
        return cls(tuple(center), tuple(_unit(eu)), tuple(_unit(ev)), 0.5 * float(np.linalg.norm(eu)),
                   0.5 * float(np.linalg.norm(ev)), reflectivity, label)

    @classmethod
    def infinite(cls, point, normal, reflectivity: float = 0.5, label: str = "plane") -> "Rectangle":
        """Unbounded plane through ``point`` with ``normal``."""
        n = _unit(normal)
        helper = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        u = _unit(np.cross(n, helper))
        v = np.cross(n, u)
        return cls(tuple(np.asarray(point, dtype=np.float64)), tuple(u), tuple(v), math.inf, math.inf, reflectivity, label)

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.u, self.v)

    def params(self) -> np.ndarray:
        out = np.zeros(N_PARAMS)
        out[0:3], out[3:6], out[6:9], out[9:12] = self.center, self.normal, self.u, self.v
        out[12], out[13] = self.half_u, self.half_v
        return out

    def x_range(self) -> tuple[float, float]:
        # an axis with no x component adds no x reach, even when unbounded (avoid 0 * inf)
        reach = sum(abs(axis[0]) * half for axis, half in ((self.u, self.half_u), (self.v, self.half_v)) if axis[0] != 0.0)
        return self.center[0] - reach, self.center[0] + reach


@dataclass(frozen=True)
class Box:
    """Solid axis-aligned box from ``lo`` to ``hi`` (m)."""

    lo: tuple
    hi: tuple
    reflectivity: float = 0.6
    label: str = "box"
    kind: int = field(default=BOX, init=False)

    def params(self) -> np.ndarray:
        out = np.zeros(N_PARAMS)
        out[0:3], out[3:6] = self.lo, self.hi
        return out

    def x_range(self) -> tuple[float, float]:
        return self.lo[0], self.hi[0]


@dataclass(frozen=True)
class VerticalCylinder:
    """Solid cylinder with a vertical axis through (x, y), from z_min to z_max (m), caps included."""

    x: float
    y: float
    radius: float
    z_min: float
    z_max: float
    reflectivity: float = 0.7
    label: str = "cylinder"
    kind: int = field(default=CYLINDER, init=False)

    def params(self) -> np.ndarray:
        out = np.zeros(N_PARAMS)
        out[0:5] = self.x, self.y, self.radius, self.z_min, self.z_max
        return out

    def x_range(self) -> tuple[float, float]:
        return self.x - self.radius, self.x + self.radius


@dataclass(frozen=True)
class Tube:
    """Inner surface of a circular tube along x: axis at (y, z), ``radius``, from x_min to x_max,
    existing only where z >= z_cut (m). Rays hit it from inside (the far intersection)."""

    y: float
    z: float
    radius: float
    x_min: float
    x_max: float
    z_cut: float = -math.inf
    reflectivity: float = 0.4
    label: str = "tube"
    kind: int = field(default=TUBE, init=False)

    def params(self) -> np.ndarray:
        out = np.zeros(N_PARAMS)
        out[0:6] = self.y, self.z, self.radius, self.x_min, self.x_max, self.z_cut
        return out

    def x_range(self) -> tuple[float, float]:
        return self.x_min, self.x_max


Primitive = Rectangle | Box | VerticalCylinder | Tube


@dataclass(frozen=True)
class PackedPrimitives:
    """Numba-ready arrays of a primitive list plus the x-bin index used to cull them per ray.

    ``bin_start``/``bin_items`` is a CSR list of primitive indices per bin of width ``bin_size``
    starting at ``x0``; primitives too long (or unbounded) in x sit in ``global_items`` instead.
    """

    kinds: np.ndarray
    params: np.ndarray
    reflectivity: np.ndarray
    labels: tuple[str, ...]
    x0: float
    bin_size: float
    bin_start: np.ndarray
    bin_items: np.ndarray
    global_items: np.ndarray

    def __len__(self) -> int:
        return len(self.kinds)


def pack(primitives: list, bin_size: float = 4.0, max_bins_per_item: int = 24) -> PackedPrimitives:
    """Pack primitives for :func:`cast_rays`; ``bin_size`` in metres along world x."""
    if not primitives:
        raise ValueError("a scene needs at least one primitive")
    kinds = np.array([p.kind for p in primitives], dtype=np.int64)
    params = np.vstack([p.params() for p in primitives])
    ranges = np.array([p.x_range() for p in primitives], dtype=np.float64)
    finite = np.isfinite(ranges).all(axis=1)
    short = finite & ((ranges[:, 1] - ranges[:, 0]) <= max_bins_per_item * bin_size)
    global_items = np.flatnonzero(~short).astype(np.int64)
    if short.any():
        x0 = float(ranges[short, 0].min()) - 1e-6
        n_bins = int(np.floor((ranges[short, 1].max() - x0) / bin_size)) + 1
    else:
        x0, n_bins = 0.0, 0
    per_bin: list[list[int]] = [[] for _ in range(n_bins)]
    for i in np.flatnonzero(short):
        first = int(np.floor((ranges[i, 0] - x0) / bin_size))
        last = min(int(np.floor((ranges[i, 1] - x0) / bin_size)), n_bins - 1)
        for b in range(max(first, 0), last + 1):
            per_bin[b].append(int(i))
    bin_start = np.zeros(n_bins + 1, dtype=np.int64)
    bin_start[1:] = np.cumsum([len(b) for b in per_bin], dtype=np.int64)
    bin_items = np.array([i for b in per_bin for i in b], dtype=np.int64)
    return PackedPrimitives(
        kinds=kinds, params=np.ascontiguousarray(params), reflectivity=np.array([p.reflectivity for p in primitives]),
        labels=tuple(p.label for p in primitives), x0=x0, bin_size=float(bin_size), bin_start=bin_start,
        bin_items=bin_items, global_items=global_items,
    )


# ---------------------------------------------------------------------------------------------
# numba kernels. Each _hit_* returns (t, nx, ny, nz) with t = inf for no hit in (t_min, t_best).


@njit(cache=True)
def _stable_roots(a: float, b: float, c: float) -> tuple[float, float]:
    """Sorted roots of a t^2 + 2 b t + c = 0 (a > 0), avoiding cancellation; NaN when none."""
    disc = b * b - a * c
    if disc < 0.0:
        return np.nan, np.nan
    s = math.sqrt(disc)
    q = -(b + s) if b >= 0.0 else -b + s
    if q == 0.0:
        return 0.0, 0.0
    r1 = q / a
    r2 = c / q
    return (r1, r2) if r1 <= r2 else (r2, r1)


@njit(cache=True)
def _hit_rectangle(p, ox, oy, oz, dx, dy, dz, t_min, t_best):
    nx, ny, nz = p[3], p[4], p[5]
    den = nx * dx + ny * dy + nz * dz
    if abs(den) < _PARALLEL_EPS:
        return np.inf, 0.0, 0.0, 0.0
    t = (nx * (p[0] - ox) + ny * (p[1] - oy) + nz * (p[2] - oz)) / den
    if t <= t_min or t >= t_best:
        return np.inf, 0.0, 0.0, 0.0
    qx = ox + t * dx - p[0]
    qy = oy + t * dy - p[1]
    qz = oz + t * dz - p[2]
    if abs(qx * p[6] + qy * p[7] + qz * p[8]) > p[12] or abs(qx * p[9] + qy * p[10] + qz * p[11]) > p[13]:
        return np.inf, 0.0, 0.0, 0.0
    s = -1.0 if den > 0.0 else 1.0  # two-sided: report the face the ray sees
    return t, s * nx, s * ny, s * nz


@njit(cache=True)
def _slab(o: float, d: float, lo: float, hi: float) -> tuple[float, float]:
    """Parameter interval of the ray inside lo <= x <= hi along one axis (empty: t_in > t_out)."""
    if abs(d) < _PARALLEL_EPS:
        if o < lo or o > hi:
            return np.inf, -np.inf
        return -np.inf, np.inf
    t1 = (lo - o) / d
    t2 = (hi - o) / d
    return (t1, t2) if t1 <= t2 else (t2, t1)


@njit(cache=True)
def _hit_box(p, ox, oy, oz, dx, dy, dz, t_min, t_best):
    in_x, out_x = _slab(ox, dx, p[0], p[3])
    in_y, out_y = _slab(oy, dy, p[1], p[4])
    in_z, out_z = _slab(oz, dz, p[2], p[5])
    t_in = max(in_x, in_y, in_z)
    t_out = min(out_x, out_y, out_z)
    # t_in <= t_min also rejects rays starting inside: boxes are seen from outside only
    if t_in > t_out or t_in <= t_min or t_in >= t_best:
        return np.inf, 0.0, 0.0, 0.0
    if t_in == in_x:
        return t_in, -1.0 if dx > 0.0 else 1.0, 0.0, 0.0
    if t_in == in_y:
        return t_in, 0.0, -1.0 if dy > 0.0 else 1.0, 0.0
    return t_in, 0.0, 0.0, -1.0 if dz > 0.0 else 1.0


@njit(cache=True)
def _hit_cylinder(p, ox, oy, oz, dx, dy, dz, t_min, t_best):
    cx, cy, r, z0, z1 = p[0], p[1], p[2], p[3], p[4]
    fx = ox - cx
    fy = oy - cy
    a = dx * dx + dy * dy
    c = fx * fx + fy * fy - r * r
    if a < _PARALLEL_EPS:  # vertical ray: inside the disc or not at all
        if c > 0.0:
            return np.inf, 0.0, 0.0, 0.0
        side_in, side_out = -np.inf, np.inf
    else:
        side_in, side_out = _stable_roots(a, fx * dx + fy * dy, c)
        if np.isnan(side_in):
            return np.inf, 0.0, 0.0, 0.0
    cap_in, cap_out = _slab(oz, dz, z0, z1)
    t_in = max(side_in, cap_in)
    t_out = min(side_out, cap_out)
    if t_in > t_out or t_in <= t_min or t_in >= t_best:
        return np.inf, 0.0, 0.0, 0.0
    if side_in >= cap_in:
        return t_in, (fx + t_in * dx) / r, (fy + t_in * dy) / r, 0.0
    return t_in, 0.0, 0.0, -1.0 if dz > 0.0 else 1.0


@njit(cache=True)
def _hit_tube(p, ox, oy, oz, dx, dy, dz, t_min, t_best):
    y0, z0, r, x0, x1, z_cut = p[0], p[1], p[2], p[3], p[4], p[5]
    fy = oy - y0
    fz = oz - z0
    a = dy * dy + dz * dz
    if a < _PARALLEL_EPS:
        return np.inf, 0.0, 0.0, 0.0
    _, t = _stable_roots(a, fy * dy + fz * dz, fy * fy + fz * fz - r * r)
    if np.isnan(t) or t <= t_min or t >= t_best:
        return np.inf, 0.0, 0.0, 0.0
    hx = ox + t * dx
    hz = oz + t * dz
    if hx < x0 or hx > x1 or hz < z_cut:
        return np.inf, 0.0, 0.0, 0.0
    return t, 0.0, -(fy + t * dy) / r, -(fz + t * dz) / r  # inward, towards the axis


@njit(cache=True)
def _hit(kind, p, ox, oy, oz, dx, dy, dz, t_min, t_best):
    if kind == PLANE:
        return _hit_rectangle(p, ox, oy, oz, dx, dy, dz, t_min, t_best)
    if kind == BOX:
        return _hit_box(p, ox, oy, oz, dx, dy, dz, t_min, t_best)
    if kind == CYLINDER:
        return _hit_cylinder(p, ox, oy, oz, dx, dy, dz, t_min, t_best)
    return _hit_tube(p, ox, oy, oz, dx, dy, dz, t_min, t_best)


@njit(cache=True)
def _cast_one(ox, oy, oz, dx, dy, dz, kinds, params, x0, bin_size, bin_start, bin_items, global_items, t_min, t_max):
    best_t = t_max
    best_id = -1
    bnx = 0.0
    bny = 0.0
    bnz = 0.0
    for g in global_items:
        t, nx, ny, nz = _hit(kinds[g], params[g], ox, oy, oz, dx, dy, dz, t_min, best_t)
        if t < best_t:
            best_t, best_id, bnx, bny, bnz = t, g, nx, ny, nz
    n_bins = len(bin_start) - 1
    if n_bins > 0:
        k = int(math.floor((ox - x0) / bin_size))
        step = 1 if dx > 0.0 else -1
        if abs(dx) < _PARALLEL_EPS:
            step = 0
        if k < 0:
            k = 0 if step > 0 else n_bins  # n_bins: outside, nothing to visit
        elif k >= n_bins:
            k = n_bins - 1 if step < 0 else n_bins
        while 0 <= k < n_bins:
            for j in range(bin_start[k], bin_start[k + 1]):
                i = bin_items[j]
                t, nx, ny, nz = _hit(kinds[i], params[i], ox, oy, oz, dx, dy, dz, t_min, best_t)
                if t < best_t:
                    best_t, best_id, bnx, bny, bnz = t, i, nx, ny, nz
            if step == 0:
                break
            # bins are visited front to back: once the best hit lies before this bin's far
            # boundary, nothing in a later bin can be nearer
            boundary = x0 + (k + 1) * bin_size if step > 0 else x0 + k * bin_size
            if best_t <= (boundary - ox) / dx:
                break
            k += step
    if best_id < 0:
        return np.inf, -1, 0.0, 0.0, 0.0
    return best_t, best_id, bnx, bny, bnz


@njit(parallel=True, cache=True)
def cast_rays_kernel(origins, directions, kinds, params, x0, bin_size, bin_start, bin_items, global_items, t_min, t_max):
    """Nearest hit of each ray (unit ``directions``): (t (N,), normals (N, 3), ids (N,), -1 = miss)."""
    n = directions.shape[0]
    t_out = np.empty(n)
    normals = np.zeros((n, 3))
    ids = np.empty(n, dtype=np.int64)
    for i in prange(n):
        t, pid, nx, ny, nz = _cast_one(
            origins[i, 0], origins[i, 1], origins[i, 2], directions[i, 0], directions[i, 1], directions[i, 2],
            kinds, params, x0, bin_size, bin_start, bin_items, global_items, t_min, t_max,
        )
        t_out[i] = t
        ids[i] = pid
        normals[i, 0] = nx
        normals[i, 1] = ny
        normals[i, 2] = nz
    return t_out, normals, ids


@dataclass(frozen=True)
class RayHits:
    """Result of :func:`cast_rays` (world frame): ``t`` range in m (inf = miss), ``points``
    (N, 3, NaN on a miss), unit ``normals`` facing the ray, primitive ``ids`` (-1 = miss)."""

    t: np.ndarray
    points: np.ndarray
    normals: np.ndarray
    ids: np.ndarray

    @property
    def hit(self) -> np.ndarray:
        return self.ids >= 0


def cast_rays(scene: PackedPrimitives, origins: np.ndarray, directions: np.ndarray,
              t_min: float = 0.0, t_max: float = math.inf) -> RayHits:
    """Cast rays (origins (N, 3) or (3,), directions (N, 3), normalised here) into packed primitives.

    Hits closer than ``t_min`` or farther than ``t_max`` (m) are ignored.
    """
    directions = np.atleast_2d(np.asarray(directions, dtype=np.float64))
    directions = np.ascontiguousarray(directions / np.linalg.norm(directions, axis=1, keepdims=True))
    origins = np.ascontiguousarray(np.broadcast_to(np.asarray(origins, dtype=np.float64), directions.shape))
    t, normals, ids = cast_rays_kernel(
        origins, directions, scene.kinds, scene.params, scene.x0, scene.bin_size, scene.bin_start,
        scene.bin_items, scene.global_items, float(t_min), float(t_max),
    )
    points = origins + np.where(ids[:, None] >= 0, t[:, None], np.nan) * directions
    return RayHits(t=t, points=points, normals=normals, ids=ids)
