"""Numba kernel: distance between misorientations under a symmetry pair, with its slow reference.

The distance between misorientations ``m`` and ``r`` (both crystal-A → crystal-B rotations of one phase with
proper rotation group ``G``) is the smallest rotation angle of ``S_i · m · S_j · r⁻¹`` over all ``S_i, S_j ∈ G``:
how far ``m`` is from the nearest symmetry-equivalent of ``r`` (used to match boundaries to CSL / special
misorientations). Quaternions scalar-first; angles in radians.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..crystal.symmetry import as_quaternions, max_abs_w, qmul_components, quaternion_conjugate
from ..crystal.symmetry import quaternion_multiply_reference as qmul_np

__all__ = [
    "misorientation_distance",
    "misorientation_distance_reference",
    "min_angle_equivalent",
    "min_angle_equivalent_reference",
]


@njit(cache=True, nogil=True)
def _distance_single(m, r, sym):
    ns = sym.shape[0]
    best = 0.0
    for j in range(ns):
        # p = S_j * r^-1
        p0, p1, p2, p3 = qmul_components(sym[j, 0], sym[j, 1], sym[j, 2], sym[j, 3], r[0], -r[1], -r[2], -r[3])
        # u = m * p
        u0, u1, u2, u3 = qmul_components(m[0], m[1], m[2], m[3], p0, p1, p2, p3)
        w, _ = max_abs_w(sym, ns, u0, u1, u2, u3)
        if w > best:
            best = w
    if best > 1.0:
        best = 1.0
    return 2.0 * np.arccos(best)


@njit(cache=True, nogil=True)
def _distance_2d(m, r, sym):
    out = np.empty((m.shape[0], r.shape[0]), dtype=np.float64)
    for a in range(m.shape[0]):
        for b in range(r.shape[0]):
            out[a, b] = _distance_single(m[a], r[b], sym)
    return out


def misorientation_distance(m: np.ndarray, r: np.ndarray, sym: np.ndarray) -> np.ndarray:
    """``(len(m), len(r))`` distances (rad) between misorientations ``m`` and ``r`` under the rotations ``sym``."""
    m, r, sym = as_quaternions(m, r, sym)
    return _distance_2d(m, r, sym)


def misorientation_distance_reference(m: np.ndarray, r: np.ndarray, sym: np.ndarray) -> np.ndarray:
    """Slow reference: every product S_i · m · S_j · r⁻¹ written out with numpy broadcasting."""
    m, r, sym = as_quaternions(m, r, sym)
    si = sym[None, None, :, None, :]
    sj = sym[None, None, None, :, :]
    prod = qmul_np(qmul_np(qmul_np(si, m[:, None, None, None, :]), sj), quaternion_conjugate(r)[None, :, None, None, :])
    w = np.abs(prod[..., 0]).max(axis=(2, 3))
    return 2.0 * np.arccos(np.clip(w, 0.0, 1.0))


@njit(cache=True, nogil=True)
def _min_angle_equivalent_single(m, sym, out):
    """out = the S_i · m · S_j with the smallest rotation angle (largest |w|), sign chosen so that w ≥ 0."""
    ns = sym.shape[0]
    best = -1.0
    for i in range(ns):
        u0, u1, u2, u3 = qmul_components(sym[i, 0], sym[i, 1], sym[i, 2], sym[i, 3], m[0], m[1], m[2], m[3])
        for j in range(ns):
            p0, p1, p2, p3 = qmul_components(u0, u1, u2, u3, sym[j, 0], sym[j, 1], sym[j, 2], sym[j, 3])
            w = abs(p0)
            if w > best + 1e-12:
                best = w
                s = 1.0 if p0 >= 0.0 else -1.0
                out[0] = s * p0
                out[1] = s * p1
                out[2] = s * p2
                out[3] = s * p3


@njit(cache=True, nogil=True)
def _min_angle_equivalent_2d(m, sym):
    out = np.empty((m.shape[0], 4), dtype=np.float64)
    for a in range(m.shape[0]):
        _min_angle_equivalent_single(m[a], sym, out[a])
    return out


def min_angle_equivalent(m: np.ndarray, sym: np.ndarray) -> np.ndarray:
    """For each misorientation ``m[k]`` the symmetry equivalent ``S_i · m · S_j`` with the smallest angle (the
    disorientation angle), scalar part ≥ 0. ``(n, 4)``."""
    m, sym = as_quaternions(m, sym)
    return _min_angle_equivalent_2d(m, sym)


def min_angle_equivalent_reference(m: np.ndarray, sym: np.ndarray) -> np.ndarray:
    """Slow reference of :func:`min_angle_equivalent` (all products with numpy; first maximum wins)."""
    m, sym = as_quaternions(m, sym)
    prod = qmul_np(qmul_np(sym[None, :, None, :], m[:, None, None, :]), sym[None, None, :, :]).reshape(len(m), -1, 4)
    w = np.abs(prod[..., 0])
    k = np.argmax(w > w.max(axis=1, keepdims=True) - 1e-12, axis=1)
    best = prod[np.arange(len(m)), k]
    return best * np.where(best[:, :1] < 0, -1.0, 1.0)
