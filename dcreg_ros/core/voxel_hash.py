"""Integer voxel keys and an open-addressing hash table, the building blocks of every
voxel structure in the package (downsampling, the voxel map, the simulator's ray grid).

A voxel (ix, iy, iz) is packed into one non-negative int64: each index is offset by 2^20 and
stored in 21 bits, so a key covers +-2^20 voxels per axis (+-52 km at 5 cm voxels). Indices are
clamped to that range: far-away points collapse into border voxels instead of overflowing.
Neighbouring keys differ by +-1, +-2^21 and +-2^42, so neighbour lookups need no unpacking.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

EMPTY = np.int64(-1)
_OFFSET = 1 << 20
_MAX_INDEX = (1 << 20) - 2
_SHIFT_X = np.int64(1 << 42)
_SHIFT_Y = np.int64(1 << 21)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True, inline="always")
def voxel_index(coordinate: float, inv_size: float) -> np.int64:
    """Voxel index along one axis, clamped to the packable range."""
    i = np.floor(coordinate * inv_size)
    if i > _MAX_INDEX:
        i = _MAX_INDEX
    elif i < -_MAX_INDEX:
        i = -_MAX_INDEX
    return np.int64(i)


@njit(cache=True, inline="always")
def pack_key(ix: np.int64, iy: np.int64, iz: np.int64) -> np.int64:
    """Pack three voxel indices into one non-negative int64 key."""
    return (ix + _OFFSET) * _SHIFT_X + (iy + _OFFSET) * _SHIFT_Y + (iz + _OFFSET)


@njit(cache=True, inline="always")
def point_key(x: float, y: float, z: float, inv_size: float) -> np.int64:
    """Key of the voxel that contains (x, y, z)."""
    return pack_key(voxel_index(x, inv_size), voxel_index(y, inv_size), voxel_index(z, inv_size))


@njit(cache=True, inline="always")
def neighbour_key(key: np.int64, dx: int, dy: int, dz: int) -> np.int64:
    """Key of the voxel offset by (dx, dy, dz) from ``key``."""
    return key + dx * _SHIFT_X + dy * _SHIFT_Y + dz


@njit(cache=True, inline="always")
def slot_of(key: np.int64, mask: np.int64) -> np.int64:
    """Home slot of a key in a power-of-two table.

    A full 64-bit mix (the splitmix64 finaliser): keys of neighbouring voxels differ in single
    bit fields (bit 0, 21 or 42), and a plain multiplicative hash leaves the low slot bits almost
    blind to the high fields, which clusters the table and lengthens probe chains.
    """
    h = np.uint64(key)
    h ^= h >> np.uint64(30)
    h *= _MIX1
    h ^= h >> np.uint64(27)
    h *= _MIX2
    h ^= h >> np.uint64(31)
    return np.int64(h & np.uint64(0x7FFFFFFFFFFFFFFF)) & mask


@njit(cache=True, inline="always")
def probe_slot(table_keys: np.ndarray, key: np.int64) -> np.int64:
    """Slot holding ``key``, or the empty slot where it belongs (linear probing). The caller
    keeps the load factor below one half, so the probe always terminates."""
    mask = np.int64(table_keys.shape[0] - 1)
    s = slot_of(key, mask)
    while True:
        k = table_keys[s]
        if k == key or k == EMPTY:
            return s
        s = (s + 1) & mask


@njit(cache=True)
def table_find(table_keys: np.ndarray, table_values: np.ndarray, key: np.int64) -> np.int64:
    """Value stored for ``key`` or -1 when absent."""
    s = probe_slot(table_keys, key)
    return table_values[s] if table_keys[s] == key else np.int64(-1)


@njit(cache=True)
def table_insert(table_keys: np.ndarray, table_values: np.ndarray, key: np.int64, value: np.int64) -> np.int64:
    """Insert ``key`` with ``value`` unless present; return the value now stored for ``key``."""
    s = probe_slot(table_keys, key)
    if table_keys[s] != key:
        table_keys[s] = key
        table_values[s] = value
    return table_values[s]


def table_size_for(num_entries: int) -> int:
    """Power-of-two table size with a load factor of at most 1/2."""
    size = 16
    while size < 2 * max(num_entries, 1):
        size *= 2
    return size


_ORDER = np.array([0, -1, 1], dtype=np.int64)  # offsets per axis: the query's own voxel first


@njit(cache=True, inline="always")
def _box_gap(f: float, d: int, size: float) -> float:
    """Distance along one axis from a point at fraction f of its voxel to the voxel offset by d."""
    if d < 0:
        return f * size
    if d > 0:
        return (1.0 - f) * size
    return 0.0


@njit(cache=True, inline="always")
def neighbourhood_search(qx, qy, qz, k, inv_size, voxel_size, table_keys, table_values, cell_starts, cell_counts, n_per, points,
                         max_d2, out_idx, out_d2):
    """The 27-voxel nearest-neighbour search of every voxel structure (the voxel map, the radius
    grid): the points within sqrt(max_d2) of the query (qx, qy, qz), searched in its voxel of edge
    ``voxel_size`` and the 26 around it (exact for radii up to one edge).

    ``table_keys`` / ``table_values`` map a voxel key to its cell; a cell's ``cell_counts[cell]``
    points are the rows of ``points`` from ``cell_starts[cell]`` (``cell * n_per`` when
    ``cell_starts`` is None) on. The query's voxel comes first, then its neighbours, and a voxel
    whose box is already at least as far as the k-th best match is skipped; of equally near
    points the first found is kept.

    With ``out_idx`` None (k = 1; numba drops the list code when it compiles that case) the best
    match stays in registers: returns (0, its row or -1). Else the best k rows and squared
    distances go into ``out_idx`` / ``out_d2`` (at least k entries), nearest first: returns (how
    many, -1). Inlined into its callers: as a called function of 15 arguments it costs ~7% of a
    nearest-point query."""
    ix = voxel_index(qx, inv_size)
    iy = voxel_index(qy, inv_size)
    iz = voxel_index(qz, inv_size)
    key0 = pack_key(ix, iy, iz)
    fx, fy, fz = qx * inv_size - ix, qy * inv_size - iy, qz * inv_size - iz  # position inside the voxel
    found = 0
    best = -1
    bound = max_d2  # the squared distance a point must beat: max_d2, then the k-th best
    for a in range(3):
        dx = _ORDER[a]
        gx = _box_gap(fx, dx, voxel_size)
        gx2 = gx * gx
        if gx2 >= bound:
            continue
        for b in range(3):
            dy = _ORDER[b]
            gy = _box_gap(fy, dy, voxel_size)
            gxy2 = gx2 + gy * gy
            if gxy2 >= bound:
                continue
            for c in range(3):
                dz = _ORDER[c]
                gz = _box_gap(fz, dz, voxel_size)
                if gxy2 + gz * gz >= bound:
                    continue
                cell = table_find(table_keys, table_values, neighbour_key(key0, dx, dy, dz))
                if cell < 0:
                    continue
                s = cell * n_per if cell_starts is None else cell_starts[cell]
                for j in range(s, s + cell_counts[cell]):
                    ex = points[j, 0] - qx
                    ey = points[j, 1] - qy
                    ez = points[j, 2] - qz
                    d2 = ex * ex + ey * ey + ez * ez
                    if d2 < bound:
                        if out_idx is None:
                            bound = d2
                            best = j
                        else:  # insertion into the sorted list of the best k
                            pos = found if found < k else k - 1
                            while pos > 0 and out_d2[pos - 1] > d2:
                                out_d2[pos] = out_d2[pos - 1]
                                out_idx[pos] = out_idx[pos - 1]
                                pos -= 1
                            out_d2[pos] = d2
                            out_idx[pos] = j
                            if found < k:
                                found += 1
                            if found == k:
                                bound = out_d2[k - 1]
    return found, best


@njit(cache=True, inline="always")
def _insert_key(table: np.ndarray, key: np.int64) -> bool:
    """Insert into a keys-only set; True when the key was new."""
    s = probe_slot(table, key)
    if table[s] == key:
        return False
    table[s] = key
    return True


@njit(cache=True, parallel=True)
def point_keys(points: np.ndarray, inv_size: float) -> np.ndarray:
    """Voxel key of every point (N,) for voxels of edge 1 / ``inv_size``."""
    n = points.shape[0]
    keys = np.empty(n, dtype=np.int64)
    for i in prange(n):
        keys[i] = point_key(points[i, 0], points[i, 1], points[i, 2], inv_size)
    return keys


@njit(cache=True)
def first_of_each_key(keys: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct key, in input order.

    The keys-only set starts small (it stays in cache) and grows fourfold when half full. The
    probe loop is written out here: through a helper function numba compiles it 2x slower.
    """
    n = keys.shape[0]
    size = 1024
    mask = np.int64(size - 1)
    table = np.full(size, EMPTY, dtype=np.int64)
    kept = np.empty(n, dtype=np.int64)
    m = 0
    for i in range(n):
        key = keys[i]
        s = slot_of(key, mask)
        while True:
            k = table[s]
            if k == key:
                break
            if k == EMPTY:
                table[s] = key
                kept[m] = i
                m += 1
                if 2 * m > size:  # grow and rehash the kept keys
                    size *= 4
                    mask = np.int64(size - 1)
                    table = np.full(size, EMPTY, dtype=np.int64)
                    for j in range(m):
                        _insert_key(table, keys[kept[j]])
                break
            s = (s + 1) & mask
    return kept[:m]


def voxel_downsample_indices(points: np.ndarray, voxel_size: float) -> np.ndarray:
    """Indices of the first point falling in each voxel of edge ``voxel_size`` (m), in input order.

    Keeping a real measurement (not a centroid) preserves per-point attributes such as the
    timestamp and intensity of the kept point. Keys are computed in parallel, the set is filled
    serially.
    """
    return first_of_each_key(point_keys(np.ascontiguousarray(points, dtype=np.float64), 1.0 / voxel_size))


BUDGET_TRIES = 6  # coarser voxel edges tried before a budget is met by an even stride instead


def voxel_downsample_within(points: np.ndarray, voxel_size: float, max_points: int, downsampled: bool = False) -> np.ndarray:
    """Indices as :func:`voxel_downsample_indices`, at most ``max_points`` of them (0: no
    budget): while too many remain the voxel edge grows by sqrt(count / max_points) (points on
    surfaces: the count falls about with the edge's square, slower where scan lines are sparser
    than the voxels), so a dense scan is thinned evenly in space; after BUDGET_TRIES an even
    stride over what is left. ``downsampled``: ``points`` already hold one point per voxel of
    ``voxel_size`` (every index is kept unless over the budget)."""
    idx = np.arange(len(points)) if downsampled else voxel_downsample_indices(points, voxel_size)
    edge = voxel_size
    for _ in range(BUDGET_TRIES):
        if max_points <= 0 or len(idx) <= max_points:
            return idx
        edge *= 1.05 * np.sqrt(len(idx) / max_points)
        idx = voxel_downsample_indices(points, edge)
    return idx if len(idx) <= max_points else idx[np.linspace(0, len(idx) - 1, max_points).astype(np.int64)]


@njit(cache=True)
def voxel_occupancy(points: np.ndarray, voxel_size: float) -> tuple[int, int]:
    """(number of occupied voxels, largest number of points in one voxel)."""
    n = points.shape[0]
    size = 16
    while size < 2 * max(n, 1):
        size *= 2
    table_keys = np.full(size, EMPTY, dtype=np.int64)
    table_values = np.empty(size, dtype=np.int64)
    counts = np.zeros(n, dtype=np.int64)
    m = 0
    inv = 1.0 / voxel_size
    best = 0
    for i in range(n):
        key = point_key(points[i, 0], points[i, 1], points[i, 2], inv)
        v = table_insert(table_keys, table_values, key, np.int64(m))
        if v == m:
            m += 1
        counts[v] += 1
        best = max(best, counts[v])
    return m, best


def voxel_downsample(points: np.ndarray, voxel_size: float) -> np.ndarray:
    """One point per voxel of edge ``voxel_size`` (m); ``voxel_size <= 0`` returns the input."""
    if voxel_size <= 0.0 or len(points) == 0:
        return points
    return points[voxel_downsample_indices(points, float(voxel_size))]
