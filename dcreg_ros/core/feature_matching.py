"""Nearest neighbours in descriptor space and mutual-nearest feature matches.

Squared distances come from one matrix product per block of queries,
|a - b|^2 = |a|^2 + |b|^2 - 2 a.b, which runs in BLAS and is far faster than a tree in 33
dimensions for the few thousand descriptors of a scan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_BLOCK_ELEMENTS = 4_000_000  # block of queries x references held at once (16 MB of float32)


def nearest_descriptors(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Index (Q,) of the nearest row of ``reference`` (R, D) for each row of ``query`` (Q, D)."""
    query = np.ascontiguousarray(query, dtype=np.float32)
    reference = np.ascontiguousarray(reference, dtype=np.float32)
    ref_sq = np.einsum("ij,ij->i", reference, reference)
    out = np.empty(len(query), dtype=np.int64)
    block = max(1, _BLOCK_ELEMENTS // max(len(reference), 1))
    for s in range(0, len(query), block):
        q = query[s : s + block]
        # |q|^2 is constant along each row, so it does not change the argmin
        d = ref_sq[None, :] - 2.0 * (q @ reference.T)
        out[s : s + block] = np.argmin(d, axis=1)
    return out


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
    forward = nearest_descriptors(source, target)
    if target_to_source is None:
        candidates = np.unique(forward)
        back = np.full(len(target), -1, dtype=np.int64)
        back[candidates] = nearest_descriptors(target[candidates], source)
    else:
        back = target_to_source
    rows = np.arange(len(source))
    keep = back[forward] == rows
    return FeatureMatches(rows[keep], forward[keep])
