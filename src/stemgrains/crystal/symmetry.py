"""Crystal symmetry and quaternion maths shared by every stage (one home; no stage writes its own copy).

Conventions (docs/conventions.md, orix's): quaternions are scalar-first unit quaternions ``(w, x, y, z)``; an
orientation ``O`` maps sample-frame vectors to crystal-frame vectors (``v_crystal = O * v_sample``); the
Hamilton product ``a ⊗ b`` is the rotation ``b`` followed by ``a``. Angles are radians inside kernels and degrees
at the edge (``*_deg``).

The kernels follow orix's triad (``orix.quaternion._conversions`` style): a numba scalar/one-item helper
(:func:`qmul`, :func:`qconj`, :func:`qmul_components`), a loop over rows (``_qmul_2d``, ``_disorientation_2d``)
and a numpy dispatcher that validates and reshapes (:func:`quaternion_multiply`, :func:`disorientation_angle`).
Each has a slow, obvious numpy reference (``*_reference``) that the tests compare it with on random inputs.

Disorientation angle of orientations ``qa``, ``qb`` under the proper rotations ``G`` of a Laue group::

    min_{S_i, S_j ∈ G} angle(S_i · qb · qa⁻¹ · S_j) = 2 arccos(max_{S ∈ G} |(S · qb · qa⁻¹)_w|)

one loop over the group suffices because conjugation by a symmetry element does not change a rotation angle
(the same reduction as orix's ``Orientation.angle_with``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from .. import config

__all__ = [
    "laue_group",
    "proper_laue_group",
    "laue_rotations",
    "qmul_components",
    "qmul",
    "qconj",
    "quaternion_multiply",
    "quaternion_multiply_reference",
    "quaternion_conjugate",
    "as_quaternions",
    "max_abs_w",
    "symmetry_max_w",
    "disorientation_angle",
    "disorientation_angle_reference",
    "c_axis_sample",
    "c_axis_angles",
    "c_axis_geometry",
]

_IDENTITY = np.array([[1.0, 0.0, 0.0, 0.0]])


# ------------------------------------------------------------------------------------------------
# Laue groups
# ------------------------------------------------------------------------------------------------
def laue_group(symmetry: Any) -> Any:
    """orix ``Symmetry``: the Laue group of an orix ``Phase`` (its point group) or of a point group itself.

    Raises
    ------
    AttributeError
        ``symmetry`` is a ``Phase`` without a point group (callers that accept one check first).
    """
    pg = getattr(symmetry, "point_group", symmetry)
    return pg.laue


def proper_laue_group(symmetry: Any) -> Any:
    """orix ``Symmetry``: the proper rotations (rotation subgroup) of the Laue group of an orix ``Phase`` or point
    group, e.g. ``6/mmm`` → ``622``; the group orientations of one phase are compared under."""
    return laue_group(symmetry).proper_subgroup


def laue_rotations(phase: Any) -> np.ndarray:
    """``(m, 4)`` float64 quaternions of the proper rotations of the Laue group of ``phase`` (an orix ``Phase``
    or point group ``Symmetry``), C-contiguous; the identity ``(1, 4)`` when a phase has no point group.

    These are the rotations under which two orientations of one phase are compared (conventions.md,
    "Symmetry": the Laue group for disorientation and grain growing)."""
    pg = phase if hasattr(phase, "laue") else getattr(phase, "point_group", None)
    if pg is None:
        return _IDENTITY.copy()
    return np.ascontiguousarray(proper_laue_group(pg).data, dtype=np.float64)


# ------------------------------------------------------------------------------------------------
# quaternion product and conjugate
# ------------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def qmul_components(a0, a1, a2, a3, b0, b1, b2, b3):
    """Hamilton product ``a ⊗ b`` of two quaternions given by their components; returns ``(w, x, y, z)``."""
    return (
        a0 * b0 - a1 * b1 - a2 * b2 - a3 * b3,
        a0 * b1 + a1 * b0 + a2 * b3 - a3 * b2,
        a0 * b2 - a1 * b3 + a2 * b0 + a3 * b1,
        a0 * b3 + a1 * b2 - a2 * b1 + a3 * b0,
    )


@njit(cache=True, nogil=True)
def qmul(a, b):
    """Hamilton product ``a ⊗ b`` of two ``(4,)`` quaternions (rotation ``b`` first, then ``a``); new ``(4,)``."""
    out = np.empty(4)
    out[0], out[1], out[2], out[3] = qmul_components(a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3])
    return out


@njit(cache=True, nogil=True)
def qconj(a):
    """Conjugate (the inverse of a unit quaternion) of a ``(4,)`` quaternion; new ``(4,)``."""
    out = np.empty(4)
    out[0] = a[0]
    out[1] = -a[1]
    out[2] = -a[2]
    out[3] = -a[3]
    return out


@njit(cache=True, nogil=True)
def _qmul_2d(a, b):
    n = a.shape[0]
    out = np.empty((n, 4))
    for i in range(n):
        out[i, 0], out[i, 1], out[i, 2], out[i, 3] = qmul_components(
            a[i, 0], a[i, 1], a[i, 2], a[i, 3], b[i, 0], b[i, 1], b[i, 2], b[i, 3]
        )
    return out


def quaternion_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton products ``a ⊗ b`` of broadcastable ``(..., 4)`` arrays (numba loop); float64 ``(..., 4)``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape[-1:] != (4,) or b.shape[-1:] != (4,):
        raise ValueError(f"quaternions must have a last axis of length 4, got {a.shape} and {b.shape}")
    shape = np.broadcast_shapes(a.shape, b.shape)
    a = np.array(np.broadcast_to(a, shape).reshape(-1, 4), order="C")  # writeable contiguous copies
    b = np.array(np.broadcast_to(b, shape).reshape(-1, 4), order="C")
    out = _qmul_2d(a, b)
    return out.reshape(shape)


def quaternion_multiply_reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Slow reference of :func:`quaternion_multiply`: the Hamilton product written with numpy broadcasting."""
    pw, px, py, pz = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    qw, qx, qy, qz = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack(
        [
            pw * qw - px * qx - py * qy - pz * qz,
            pw * qx + px * qw + py * qz - pz * qy,
            pw * qy - px * qz + py * qw + pz * qx,
            pw * qz + px * qy - py * qx + pz * qw,
        ],
        axis=-1,
    )


def quaternion_conjugate(q: np.ndarray) -> np.ndarray:
    """Conjugates of ``(..., 4)`` quaternions (numpy)."""
    return np.asarray(q, dtype=np.float64) * np.array([1.0, -1.0, -1.0, -1.0])


def as_quaternions(*arrays: Any) -> tuple[np.ndarray, ...]:
    """Each argument as a C-contiguous float64 ``(n, 4)`` array of quaternions (the dispatchers' input)."""
    return tuple(np.ascontiguousarray(a, dtype=np.float64).reshape(-1, 4) for a in arrays)


# ------------------------------------------------------------------------------------------------
# disorientation angle
# ------------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def max_abs_w(sym, n_sym, w, x, y, z):
    """``max_S |(S · m)_w|`` over the first ``n_sym`` rows of ``sym`` for the quaternion ``m = (w, x, y, z)``, and
    the index of the (first) maximising ``S``; −1.0 and 0 when ``n_sym`` is 0."""
    best = -1.0
    ibest = 0
    for k in range(n_sym):
        v = sym[k, 0] * w - sym[k, 1] * x - sym[k, 2] * y - sym[k, 3] * z
        if v < 0.0:
            v = -v
        if v > best:
            best = v
            ibest = k
    return best, ibest


@njit(cache=True, nogil=True)
def symmetry_max_w(qa, qb, sym, n_sym):
    """``max_S |(S · qb · qa⁻¹)_w|`` over the first ``n_sym`` rows of ``sym`` (clipped to 1) and the index of the
    maximising ``S``: the cosine of half the disorientation angle."""
    mw, mx, my, mz = qmul_components(qb[0], qb[1], qb[2], qb[3], qa[0], -qa[1], -qa[2], -qa[3])
    best, ibest = max_abs_w(sym, n_sym, mw, mx, my, mz)
    if best > 1.0:
        best = 1.0
    return best, ibest


@njit(cache=True, nogil=True)
def disorientation_angle_single(qa, qb, sym, n_sym):
    """Disorientation angle (rad) of two ``(4,)`` orientations under the first ``n_sym`` rotations of ``sym``."""
    w, _ = symmetry_max_w(qa, qb, sym, n_sym)
    return 2.0 * np.arccos(w)


@njit(cache=True, nogil=True)
def _disorientation_2d(qa, qb, sym):
    n = qa.shape[0]
    out = np.empty(n, dtype=np.float64)
    m = sym.shape[0]
    for i in range(n):
        out[i] = disorientation_angle_single(qa[i], qb[i], sym, m)
    return out


def disorientation_angle(qa: np.ndarray, qb: np.ndarray, sym: np.ndarray) -> np.ndarray:
    """Disorientation angles (rad), ``(n,)``, between orientations ``qa[i]`` and ``qb[i]`` (``(n, 4)`` each) under
    the rotations ``sym`` ``(m, 4)`` (e.g. :func:`laue_rotations`)."""
    qa, qb, sym = as_quaternions(qa, qb, sym)
    return _disorientation_2d(qa, qb, sym)


def disorientation_angle_reference(qa: np.ndarray, qb: np.ndarray, sym: np.ndarray) -> np.ndarray:
    """Slow reference: all double-coset products S_i · qb · qa⁻¹ · S_j, smallest angle (rad)."""
    qa, qb, sym = as_quaternions(qa, qb, sym)
    mul = quaternion_multiply_reference
    m = mul(qb, quaternion_conjugate(qa))  # (n, 4)
    full = mul(mul(sym[None, :, None, :], m[:, None, None, :]), sym[None, None, :, :])  # (n, s, s, 4)
    w = np.abs(full[..., 0]).reshape(len(m), -1).max(axis=1)
    return 2.0 * np.arccos(np.clip(w, 0.0, 1.0))


# ------------------------------------------------------------------------------------------------
# c-axis geometry (docs/classification.md §1)
# ------------------------------------------------------------------------------------------------
def c_axis_sample(quaternions: np.ndarray) -> np.ndarray:
    """Unit c-axes in the sample frame, ``(n, 3)``: ``c = O⁻¹·(0, 0, 1)`` of orientations ``(n, 4)`` (orix
    convention), not sign-normalised."""
    q = np.asarray(quaternions, dtype=np.float64).reshape(-1, 4)
    w, x, y, z = q.T
    c = np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=1)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    return c


def c_axis_angles(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inclination and trace direction of unit c-axes ``(n, 3)`` in the sample frame.

    Returns ``alpha = arccos|c_z|`` (deg, 0–90: the conduction plane's inclination to the lamella surface) and
    the angle of the trace ``d = (−c_y, c_x)`` from +x toward +y (deg, in (−180, 180], not folded; a trace is a
    line, so callers fold it or use only ``|sin|``, ``|cos|``)."""
    alpha = np.degrees(np.arccos(np.clip(np.abs(c[:, 2]), 0.0, 1.0)))
    trace = np.degrees(np.arctan2(c[:, 0], -c[:, 1]))  # angle of d = (-c_y, c_x)
    return alpha, trace


def c_axis_geometry(
    quaternions: np.ndarray, hexagonal: np.ndarray, flat_tolerance_deg: float = config.FLAT_TOLERANCE_DEG
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """c-axis in the sample frame, alpha and trace angle (docs/classification.md §1).

    ``c = O⁻¹·(0,0,1)`` with ``c_z ≥ 0``, ``alpha = arccos|c_z|`` (deg), trace ``d = normalize(−c_y, c_x)`` as an
    angle from +x toward +y in (−90, 90] (deg; NaN when ``alpha < flat_tolerance_deg``). Rows where ``hexagonal``
    is False are NaN. Shapes: quaternions ``(n, 4)``, hexagonal ``(n,)`` → ``(n, 3)``, ``(n,)``, ``(n,)``.
    """
    c = c_axis_sample(quaternions)
    flip = (c[:, 2] < 0) | ((c[:, 2] == 0) & ((c[:, 1] < 0) | ((c[:, 1] == 0) & (c[:, 0] < 0))))
    c[flip] *= -1
    alpha, trace = c_axis_angles(c)
    trace = np.where(trace > 90.0, trace - 180.0, trace)
    trace = np.where(trace <= -90.0, trace + 180.0, trace)
    trace = np.where(alpha < flat_tolerance_deg, np.nan, trace)
    hexagonal = np.asarray(hexagonal, dtype=bool)
    c[~hexagonal] = np.nan
    alpha[~hexagonal] = np.nan
    trace[~hexagonal] = np.nan
    return c, alpha, trace
