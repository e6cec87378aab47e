"""Robust rigid transform from putative point correspondences with mostly wrong matches.

A rigid motion preserves distances, so two correct correspondences (s_i, t_i), (s_j, t_j) satisfy
| |s_i - s_j| - |t_i - t_j| | < eps, while wrong ones rarely agree with many others. The
estimator therefore works on this pairwise compatibility graph instead of random samples:

1. the compatibility of every pair and the degree of every correspondence;
2. from each of the best-connected correspondences (seeds), grow a clique greedily, adding the
   members most compatible with the seed's neighbourhood first and only those compatible with
   every member already in the clique;
3. a least-squares (Kabsch) transform per clique, refined twice on all correspondences within
   ``inlier_distance`` of it;
4. hypotheses sorted by their number of inliers, near-duplicates removed (the caller verifies
   the best few against the dense clouds: repetitive scenes give several strong hypotheses).

Deterministic (no random sampling), and the cost is O(K^2) for K correspondences plus a small
amount per seed, a few milliseconds for a few thousand matches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

MIN_POINTS = 3


@njit(cache=True, parallel=True)
def compatibility_graph(src: np.ndarray, tgt: np.ndarray, eps: float) -> np.ndarray:
    """(K, K) uint8: 1 where correspondences i and j preserve their distance within ``eps`` (m)."""
    k = src.shape[0]
    graph = np.zeros((k, k), dtype=np.uint8)
    for i in prange(k):
        for j in range(k):
            if j == i:
                continue
            ds = np.sqrt((src[i, 0] - src[j, 0]) ** 2 + (src[i, 1] - src[j, 1]) ** 2 + (src[i, 2] - src[j, 2]) ** 2)
            dt = np.sqrt((tgt[i, 0] - tgt[j, 0]) ** 2 + (tgt[i, 1] - tgt[j, 1]) ** 2 + (tgt[i, 2] - tgt[j, 2]) ** 2)
            if abs(ds - dt) < eps:
                graph[i, j] = 1
    return graph


@njit(cache=True)
def kabsch(src: np.ndarray, tgt: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Least-squares rigid transform (4x4) mapping ``src[members]`` onto ``tgt[members]``."""
    m = members.shape[0]
    cs = np.zeros(3)
    ct = np.zeros(3)
    for a in range(m):
        cs += src[members[a]]
        ct += tgt[members[a]]
    cs /= m
    ct /= m
    C = np.zeros((3, 3))
    for a in range(m):
        p = src[members[a]] - cs
        q = tgt[members[a]] - ct
        for r in range(3):
            for c in range(3):
                C[r, c] += q[r] * p[c]
    U, _, Vt = np.linalg.svd(C)
    D = np.eye(3)
    if np.linalg.det(U @ Vt) < 0.0:
        D[2, 2] = -1.0
    R = U @ D @ Vt
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = ct - R @ cs
    return T


@njit(cache=True)
def _inliers(src, tgt, T, tau2):
    k = src.shape[0]
    mask = np.zeros(k, dtype=np.bool_)
    r2sum = 0.0
    count = 0
    for i in range(k):
        x = T[0, 0] * src[i, 0] + T[0, 1] * src[i, 1] + T[0, 2] * src[i, 2] + T[0, 3] - tgt[i, 0]
        y = T[1, 0] * src[i, 0] + T[1, 1] * src[i, 1] + T[1, 2] * src[i, 2] + T[1, 3] - tgt[i, 1]
        z = T[2, 0] * src[i, 0] + T[2, 1] * src[i, 1] + T[2, 2] * src[i, 2] + T[2, 3] - tgt[i, 2]
        r2 = x * x + y * y + z * z
        if r2 < tau2:
            mask[i] = True
            r2sum += r2
            count += 1
    return mask, count, r2sum


@njit(cache=True)
def _grow_clique(graph, degree, seed, max_size, max_candidates):
    """Members of a clique containing ``seed``: candidates = the seed's neighbours, ordered by how
    many of them they are compatible with; each joins if compatible with all members so far."""
    k = graph.shape[0]
    cand = np.empty(k, dtype=np.int64)
    m = 0
    for j in range(k):
        if graph[seed, j]:
            cand[m] = j
            m += 1
    cand = cand[:m]
    if m > max_candidates:  # keep the best-connected candidates: the in-set scoring is O(m^2)
        keep = np.argsort(-degree[cand], kind="mergesort")[:max_candidates]
        cand = cand[np.sort(keep)]
        m = max_candidates
    score = np.zeros(m, dtype=np.int64)
    for a in range(m):
        s = 0
        for b in range(m):
            s += graph[cand[a], cand[b]]
        score[a] = s
    order = np.argsort(-score, kind="mergesort")
    clique = np.empty(min(m + 1, max_size), dtype=np.int64)
    clique[0] = seed
    c = 1
    for a in range(m):
        if c >= max_size:
            break
        j = cand[order[a]]
        ok = True
        for b in range(c):
            if not graph[j, clique[b]]:
                ok = False
                break
        if ok:
            clique[c] = j
            c += 1
    return clique[:c]


@njit(cache=True, parallel=True)
def _hypotheses(src, tgt, graph, degree, seeds, tau2, max_clique, max_candidates, refinements):
    n = seeds.shape[0]
    poses = np.zeros((n, 4, 4))
    counts = np.zeros(n, dtype=np.int64)
    r2sums = np.full(n, np.inf)
    cliques = np.zeros(n, dtype=np.int64)
    for h in prange(n):
        clique = _grow_clique(graph, degree, seeds[h], max_clique, max_candidates)
        cliques[h] = clique.shape[0]
        if clique.shape[0] < MIN_POINTS:
            continue
        T = kabsch(src, tgt, clique)
        mask, count, r2sum = _inliers(src, tgt, T, tau2)
        for _ in range(refinements):
            if count < MIN_POINTS:
                break
            T_new = kabsch(src, tgt, np.flatnonzero(mask))
            mask_new, count_new, r2_new = _inliers(src, tgt, T_new, tau2)
            if count_new < count:
                break
            T, mask, count, r2sum = T_new, mask_new, count_new, r2_new
        poses[h] = T
        counts[h] = count
        r2sums[h] = r2sum
    return poses, counts, r2sums, cliques


@dataclass
class Hypothesis:
    """One rigid-transform hypothesis: ``T_target_source`` (4x4), its inliers among the
    correspondences (mask), their RMSE (m), and the size of the clique it was seeded from."""

    T_target_source: np.ndarray
    inliers: np.ndarray
    inlier_rmse: float
    clique_size: int

    @property
    def num_inliers(self) -> int:
        return int(self.inliers.sum())


def _same_pose(A: np.ndarray, B: np.ndarray, centre: np.ndarray, distance: float, angle_deg: float) -> bool:
    """True when A and B move ``centre`` (3,) to within ``distance`` (m) and differ by less than
    ``angle_deg`` in rotation."""
    moved = np.linalg.norm((A[:3, :3] - B[:3, :3]) @ centre + A[:3, 3] - B[:3, 3])
    cos_angle = 0.5 * (np.trace(A[:3, :3].T @ B[:3, :3]) - 1.0)
    return bool(moved < distance and np.degrees(np.arccos(np.clip(cos_angle, -1.0, 1.0))) < angle_deg)


def consensus_hypotheses(src: np.ndarray, tgt: np.ndarray, edge_tolerance: float, inlier_distance: float,
                         max_hypotheses: int = 4, max_seeds: int = 1000, max_clique: int = 64, max_candidates: int = 256, refinements: int = 2,
                         distinct_distance: float | None = None, distinct_angle_deg: float = 10.0) -> list[Hypothesis]:
    """Distinct rigid transforms T (p_tgt = T p_src) for correspondences ``src[i] <-> tgt[i]`` (K, 3),
    most inliers first, at most ``max_hypotheses``.

    ``edge_tolerance`` (m) is the allowed change of a distance between two correct matches,
    ``inlier_distance`` (m) the residual |T s - t| of an inlier. Every correspondence (the
    ``max_seeds`` best connected when there are more) seeds a clique. Two hypotheses are the same
    when they place the correspondences' centroid within ``distinct_distance`` (m, default
    3 inlier distances) and differ by less than ``distinct_angle_deg``. Empty when no consistent
    triple exists.
    """
    src = np.ascontiguousarray(src, dtype=np.float64)
    tgt = np.ascontiguousarray(tgt, dtype=np.float64)
    k = len(src)
    if k < MIN_POINTS:
        return []
    graph = compatibility_graph(src, tgt, float(edge_tolerance))
    degree = graph.sum(axis=1, dtype=np.int64)
    seeds = np.argsort(-degree, kind="stable")[: min(max_seeds, k)]
    seeds = seeds[degree[seeds] >= MIN_POINTS - 1]
    if len(seeds) == 0:
        return []
    tau2 = float(inlier_distance) ** 2
    poses, counts, r2sums, cliques = _hypotheses(src, tgt, graph, degree, seeds, tau2, int(max_clique), int(max_candidates), int(refinements))
    centre = src.mean(axis=0)
    distinct = 3.0 * inlier_distance if distinct_distance is None else float(distinct_distance)
    out: list[Hypothesis] = []
    # most inliers first, then the smaller residual
    for h in np.lexsort((r2sums, -counts)):
        if counts[h] < MIN_POINTS or len(out) >= max_hypotheses:
            break
        T = poses[h]
        if any(_same_pose(T, o.T_target_source, centre, distinct, distinct_angle_deg) for o in out):
            continue
        mask, count, r2sum = _inliers(src, tgt, T, tau2)
        out.append(Hypothesis(T, mask, float(np.sqrt(r2sum / max(count, 1))), int(cliques[h])))
    return out
