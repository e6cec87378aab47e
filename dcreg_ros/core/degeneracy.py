"""DCReg degeneracy detection and characterisation (method sections 2 and 3).

The 6x6 Hessian H (rotation first) is split by Schur complements into a rotation subspace with
translation eliminated, S_R, and a translation subspace with rotation eliminated, S_t. Each is
eigen-decomposed; its eigenvectors are matched greedily to the physical axes (roll/pitch/yaw,
x/y/z) and a direction is degenerate when lambda_max(subspace) / lambda(direction) exceeds the
threshold. All numeric work is numba-compiled so detection costs microseconds per iteration;
:class:`DegeneracyReport` is the readable Python view built only when a caller wants it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import njit

from .planes import symmetric_eigenvalues_3x3

AXIS_NAMES = ("roll", "pitch", "yaw", "x", "y", "z")  # the order of every per-axis array and mask
AXIS_WORDS = ("roll", "pitch", "yaw", "x translation", "y translation", "z translation")
_TINY = 1e-12


def flagged_axes(mask: tuple[bool, ...] | np.ndarray) -> list[str]:
    """Names (AXIS_NAMES) of the axes whose entry of a 6-mask (roll..z) is True."""
    return [name for name, m in zip(AXIS_NAMES, mask) if m]


@njit(cache=True)
def _inverse_3x3(A: np.ndarray) -> np.ndarray:
    c00 = A[1, 1] * A[2, 2] - A[1, 2] * A[2, 1]
    c01 = A[1, 2] * A[2, 0] - A[1, 0] * A[2, 2]
    c02 = A[1, 0] * A[2, 1] - A[1, 1] * A[2, 0]
    det = A[0, 0] * c00 + A[0, 1] * c01 + A[0, 2] * c02
    inv = np.empty((3, 3))
    inv[0, 0] = c00 / det
    inv[1, 0] = c01 / det
    inv[2, 0] = c02 / det
    inv[0, 1] = (A[0, 2] * A[2, 1] - A[0, 1] * A[2, 2]) / det
    inv[1, 1] = (A[0, 0] * A[2, 2] - A[0, 2] * A[2, 0]) / det
    inv[2, 1] = (A[0, 1] * A[2, 0] - A[0, 0] * A[2, 1]) / det
    inv[0, 2] = (A[0, 1] * A[1, 2] - A[0, 2] * A[1, 1]) / det
    inv[1, 2] = (A[0, 2] * A[1, 0] - A[0, 0] * A[1, 2]) / det
    inv[2, 2] = (A[0, 0] * A[1, 1] - A[0, 1] * A[1, 0]) / det
    return inv


@njit(cache=True)
def _block_invertible(A: np.ndarray) -> bool:
    if not np.all(np.isfinite(A)):
        return False
    lo, _, hi = symmetric_eigenvalues_3x3(A)
    return hi > 0.0 and lo > hi * 1e-13


@njit(cache=True)
def schur_complements(H: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """(S_R, S_t, ok): S_R = H_RR - H_Rt H_tt^-1 H_tR, S_t = H_tt - H_tR H_RR^-1 H_Rt.

    ``ok`` is False when a diagonal block is not invertible (detection failure).
    """
    H_RR = np.ascontiguousarray(H[:3, :3])
    H_Rt = np.ascontiguousarray(H[:3, 3:])
    H_tR = np.ascontiguousarray(H[3:, :3])
    H_tt = np.ascontiguousarray(H[3:, 3:])
    if not (_block_invertible(H_RR) and _block_invertible(H_tt)):
        return np.zeros((3, 3)), np.zeros((3, 3)), False
    S_R = H_RR - H_Rt @ _inverse_3x3(H_tt) @ H_tR
    S_t = H_tt - H_tR @ _inverse_3x3(H_RR) @ H_Rt
    # symmetrise: the products above are symmetric only up to rounding
    S_R = 0.5 * (S_R + S_R.T)
    S_t = 0.5 * (S_t + S_t.T)
    return S_R, S_t, True


@njit(cache=True)
def align_eigenvectors_to_axes(eigenvalues: np.ndarray, eigenvectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedy eigenvector -> axis matching with sign convention (method section 3).

    For axis a = 0, 1, 2 pick the unused eigenvector column v maximising |e_a^T v| and flip it
    so e_a^T v >= 0. Returns (aligned eigenvalues, aligned basis whose column a belongs to axis a).
    """
    used = np.zeros(3, dtype=np.bool_)
    values = np.empty(3)
    basis = np.empty((3, 3))
    for axis in range(3):
        best = -1
        best_score = -1.0
        for col in range(3):
            if used[col]:
                continue
            score = abs(eigenvectors[axis, col])
            if score > best_score:
                best_score = score
                best = col
        used[best] = True
        sign = 1.0 if eigenvectors[axis, best] >= 0.0 else -1.0
        for r in range(3):
            basis[r, axis] = sign * eigenvectors[r, best]
        values[axis] = eigenvalues[best]
    return values, basis


class HessianAnalysis(NamedTuple):
    """Numba-friendly result of the detection on one 6x6 Hessian (axis order roll pitch yaw x y z).

    ``raw``: eigenvalues of S_R ascending then S_t ascending; ``aligned``: the eigenvalue matched
    to each axis; ``bases[0]`` / ``bases[1]``: the aligned eigenvectors of S_R / S_t as columns;
    ``clamped``: lambda_max / kappa_target on degenerate directions, else the aligned value.
    ``ok`` is False when a diagonal block is singular (then every direction is flagged).
    """

    ok: bool
    kappa_rotation: float
    kappa_translation: float
    kappa_full: float
    raw: np.ndarray
    aligned: np.ndarray
    bases: np.ndarray
    mask: np.ndarray
    clamped: np.ndarray


@njit(cache=True)
def analyze_hessian_arrays(H: np.ndarray, threshold: float, kappa_target: float) -> HessianAnalysis:
    """Numba core of the detection (method sections 2-4): Schur complements, eigenvector -> axis
    alignment, the per-direction ratio test and the clamped eigenvalues."""
    full = np.abs(np.linalg.eigvalsh(0.5 * (H + H.T)))
    kappa_full = full.max() / max(full.min(), _TINY)
    raw = np.full(6, np.nan)
    aligned = np.full(6, np.nan)
    bases = np.zeros((2, 3, 3))
    for s in range(2):
        for a in range(3):
            bases[s, a, a] = 1.0
    mask = np.ones(6, dtype=np.bool_)
    clamped = np.full(6, np.nan)
    S_R, S_t, ok = schur_complements(H)
    if not ok:
        return HessianAnalysis(False, np.inf, np.inf, kappa_full, raw, aligned, bases, mask, clamped)
    kappas = np.empty(2)
    for s in range(2):
        S = S_R if s == 0 else S_t
        vals, vecs = np.linalg.eigh(S)
        if not (np.all(np.isfinite(vals)) and np.all(np.isfinite(vecs))):
            return HessianAnalysis(False, np.inf, np.inf, kappa_full, raw, aligned, bases, mask, clamped)
        raw[3 * s: 3 * s + 3] = vals
        kappas[s] = vals.max() / max(vals.min(), _TINY)
        av, ab = align_eigenvectors_to_axes(vals, vecs)
        bases[s] = ab
        lmax = av.max()
        floor = max(lmax / kappa_target, 1e-9)
        for a in range(3):
            aligned[3 * s + a] = av[a]
            degenerate = lmax / max(av[a], _TINY) > threshold
            mask[3 * s + a] = degenerate
            clamped[3 * s + a] = floor if degenerate else av[a]
    return HessianAnalysis(True, kappas[0], kappas[1], kappa_full, raw, aligned, bases, mask, clamped)


@dataclass(frozen=True)
class DegeneracyReport:
    """Per-axis degeneracy of one Gauss-Newton system. Axis order: roll, pitch, yaw, x, y, z.

    Eigenvalues are those of the Schur complements S_R (rad^-2 units of H) and S_t (m^-2);
    ``basis_rotation[:, a]`` is the eigenvector matched to axis a.
    """

    ok: bool
    mask: tuple[bool, ...]
    kappa_rotation: float
    kappa_translation: float
    kappa_full: float
    eigenvalues_rotation_raw: np.ndarray
    eigenvalues_translation_raw: np.ndarray
    eigenvalues_rotation: np.ndarray
    eigenvalues_translation: np.ndarray
    basis_rotation: np.ndarray
    basis_translation: np.ndarray
    clamped_eigenvalues: np.ndarray
    threshold: float

    @classmethod
    def from_analysis(cls, a: HessianAnalysis, threshold: float) -> "DegeneracyReport":
        return cls(
            ok=bool(a.ok), mask=tuple(bool(m) for m in a.mask), kappa_rotation=float(a.kappa_rotation),
            kappa_translation=float(a.kappa_translation), kappa_full=float(a.kappa_full),
            eigenvalues_rotation_raw=a.raw[:3].copy(), eigenvalues_translation_raw=a.raw[3:].copy(),
            eigenvalues_rotation=a.aligned[:3].copy(), eigenvalues_translation=a.aligned[3:].copy(),
            basis_rotation=a.bases[0].copy(), basis_translation=a.bases[1].copy(),
            clamped_eigenvalues=a.clamped.copy(), threshold=float(threshold),
        )

    @property
    def degenerate(self) -> bool:
        return any(self.mask)

    @property
    def degenerate_axes(self) -> list[str]:
        return flagged_axes(self.mask)

    @property
    def eigenvalues(self) -> np.ndarray:
        """(6,) the eigenvalue aligned to each axis, roll..z (S_R then S_t)."""
        return np.concatenate([self.eigenvalues_rotation, self.eigenvalues_translation])

    @property
    def eigenvalue_ratios(self) -> np.ndarray:
        """(6,) lambda_max of the axis's subspace / the axis's eigenvalue, roll..z: the ratio the
        detection compares with ``threshold`` (NaN where detection failed)."""
        eig = self.eigenvalues
        ratios = np.empty(6)
        for a in range(6):
            sub = eig[:3] if a < 3 else eig[3:]
            ratios[a] = np.nanmax(sub) / max(eig[a], _TINY)
        return ratios

    @property
    def contributions_rotation(self) -> np.ndarray:
        """3x3: rows = physical axes, columns = modes; each column sums to 1."""
        return self.basis_rotation**2

    @property
    def contributions_translation(self) -> np.ndarray:
        return self.basis_translation**2

    @property
    def mode_angles_deg(self) -> np.ndarray:
        """Angle (deg) between each aligned mode and its axis, roll..z."""
        diag = np.concatenate([np.diag(self.basis_rotation), np.diag(self.basis_translation)])
        return np.degrees(np.arccos(np.clip(np.abs(diag), 0.0, 1.0)))

    def describe(self) -> str:
        """One line in words, e.g. 'x translation weakly constrained (kappa_t = 38)'."""
        if not self.ok:
            return "detection failed (a Hessian block is singular): all directions treated as degenerate"
        if not self.degenerate:
            return f"well constrained (kappa_R = {self.kappa_rotation:.1f}, kappa_t = {self.kappa_translation:.1f})"
        parts = []
        ratios = self.eigenvalue_ratios
        for a, name in enumerate(AXIS_WORDS):
            if self.mask[a]:
                parts.append(f"{name} (ratio {ratios[a]:.0f}, {self.mode_angles_deg[a]:.1f} deg off axis)")
        return (
            "weakly constrained: " + ", ".join(parts)
            + f"; kappa_R = {self.kappa_rotation:.1f}, kappa_t = {self.kappa_translation:.1f}"
        )

    def to_dict(self) -> dict:
        """JSON-friendly dictionary (the CLI's ``degeneracy_*`` objects)."""
        return {
            "ok": self.ok,
            "mask": list(self.mask),
            "degenerate_axes": self.degenerate_axes,
            "kappa_rotation": _finite_or_none(self.kappa_rotation),
            "kappa_translation": _finite_or_none(self.kappa_translation),
            "kappa_full": _finite_or_none(self.kappa_full),
            "eigenvalues_rotation": _list(self.eigenvalues_rotation),
            "eigenvalues_translation": _list(self.eigenvalues_translation),
            "eigenvalues_rotation_ascending": _list(self.eigenvalues_rotation_raw),
            "eigenvalues_translation_ascending": _list(self.eigenvalues_translation_raw),
            "clamped_eigenvalues": _list(self.clamped_eigenvalues),
            "contributions": {
                "rotation": _list(self.contributions_rotation),
                "translation": _list(self.contributions_translation),
            },
            "mode_angles_deg": _list(self.mode_angles_deg),
            "threshold": self.threshold,
        }


def _finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _list(a: np.ndarray) -> list:
    return [_list(row) for row in a] if np.ndim(a) > 1 else [_finite_or_none(v) for v in a]


def analyze_hessian(H: np.ndarray, threshold: float = 10.0, kappa_target: float = 10.0) -> DegeneracyReport:
    """Degeneracy report of a 6x6 Hessian (rotation first)."""
    H = np.ascontiguousarray(H, dtype=np.float64)
    return DegeneracyReport.from_analysis(analyze_hessian_arrays(H, float(threshold), float(kappa_target)), threshold)
