"""Nearest neighbours in descriptor space and mutual-nearest feature matches.

Squared distances come from one matrix product per block of queries,
|a - b|^2 = |a|^2 + |b|^2 - 2 a.b, which runs in BLAS and is far faster than a tree in 33
dimensions for the few thousand descriptors of a scan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_BLOCK_ELEMENTS = 4_000_000  # block of queries x references held at once (16 MB of float32)


def nearest_descriptors(query: np.ndarray, reference: np.ndarray, both_ways: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Index (Q,) of the nearest row of ``reference`` (R, D) for each row of ``query`` (Q, D);
    with ``both_ways`` also the nearest query row (R,) of each reference row, from the same
    distance blocks."""
    query = np.ascontiguousarray(query, dtype=np.float32)
    reference = np.ascontiguousarray(reference, dtype=np.float32)
    ref_sq = np.einsum("ij,ij->i", reference, reference)
    query_sq = np.einsum("ij,ij->i", query, query)
    out = np.empty(len(query), dtype=np.int64)
    back_d = np.full(len(reference), np.inf, dtype=np.float32) if both_ways else None
    back = np.zeros(len(reference), dtype=np.int64) if both_ways else None
    block = max(1, _BLOCK_ELEMENTS // max(len(reference), 1))
    for s in range(0, len(query), block):
        d = query[s : s + block] @ reference.T
        d *= -2.0
        d += ref_sq[None, :]  # |q|^2 is constant along a row: the row argmin does not need it
        out[s : s + block] = np.argmin(d, axis=1)
        if both_ways:
            d += query_sq[s : s + block, None]
            rows = np.argmin(d, axis=0)
            best = d[rows, np.arange(d.shape[1])]
            better = best < back_d
            back_d[better] = best[better]
            back[better] = rows[better] + s
    return out, back


@dataclass
class FeatureMatches:
    """Index pairs (source row, target row) of mutually nearest descriptors."""

    source: np.ndarray
    target: np.ndarray

    def __len__(self) -> int:
        return len(self.source)


def mutual_matches(source: np.ndarray, target: np.ndarray, target_to_source: np.ndarray | None = None) -> FeatureMatches:
    """Pairs (i, j) where target row j is the nearest of source row i and i the nearest of j.

    ``target_to_source`` may carry precomputed nearest source rows of every target row; without
    it only the matched target rows are searched back (a few thousand, whatever the target size).
    """
    if len(source) == 0 or len(target) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return FeatureMatches(empty, empty)
    if target_to_source is not None:
        forward, back = nearest_descriptors(source, target)[0], target_to_source
    elif len(target) <= 2 * len(source):  # similar sizes: one pass over the distances gives both
        forward, back = nearest_descriptors(source, target, both_ways=True)
    else:  # a large target (a map): search back only from the few thousand matched rows
        forward = nearest_descriptors(source, target)[0]
        candidates = np.unique(forward)
        back = np.full(len(target), -1, dtype=np.int64)
        back[candidates] = nearest_descriptors(target[candidates], source)[0]
    rows = np.arange(len(source))
    keep = back[forward] == rows
    return FeatureMatches(rows[keep], forward[keep])
