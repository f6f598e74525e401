"""Numba kernels of grain segmentation, each with a slow, obvious numpy/python reference.

Quaternions are scalar-first unit quaternions ``(w, x, y, z)`` in orix's convention (an orientation maps
sample → crystal). ``sym`` is an ``(m, 4)`` array of the proper rotations of the phase's Laue group; the
disorientation angle kernels (``2 arccos(max_S |(S · qb · qa⁻¹)_w|)``) live in :mod:`stemgrains.crystal.symmetry`.
Kernels never mutate their inputs; angles are in radians.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..crystal.symmetry import (
    as_quaternions,
    disorientation_angle_reference,
    disorientation_angle_single,
    qmul_components,
    quaternion_multiply_reference,
    symmetry_max_w,
)

__all__ = [
    "edge_angles",
    "edge_angles_reference",
    "union_find_labels",
    "connected_labels_reference",
    "reduce_to_reference",
    "reduce_to_reference_reference",
]


# ------------------------------------------------------------------------------------------------
# edge angles of a map
# ------------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _edge_angles(q, phase_index, valid, sym_table, n_sym, axis):
    """Angles (rad) across the edges of an (ny, nx) map: axis=1 → (ny, nx-1) right neighbours,
    axis=0 → (ny-1, nx) down neighbours. +inf where the two pixels cannot join (invalid or other phase)."""
    ny, nx = valid.shape
    if axis == 1:
        out = np.empty((ny, max(nx - 1, 0)), dtype=np.float64)
    else:
        out = np.empty((max(ny - 1, 0), nx), dtype=np.float64)
    oy, ox = out.shape
    for r in range(oy):
        for c in range(ox):
            r2 = r + 1 - axis
            c2 = c + axis
            if not (valid[r, c] and valid[r2, c2]) or phase_index[r, c] != phase_index[r2, c2]:
                out[r, c] = np.inf
            else:
                p = phase_index[r, c]
                out[r, c] = disorientation_angle_single(q[r, c], q[r2, c2], sym_table[p], n_sym[p])
    return out


def edge_angles(
    q: np.ndarray, phase_index: np.ndarray, valid: np.ndarray, sym_table: np.ndarray, n_sym: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Disorientation angles (rad) to the right and down neighbours, ``(ny, nx-1)`` and ``(ny-1, nx)``.

    ``q`` is ``(ny, nx, 4)``, ``phase_index`` ``(ny, nx)`` an index into ``sym_table`` ``(n_phases, m_max, 4)``
    whose first ``n_sym[p]`` rows are the rotations of phase ``p``. ``+inf`` where pixels cannot join.
    """
    q = np.ascontiguousarray(q, dtype=np.float64)
    phase_index = np.ascontiguousarray(phase_index, dtype=np.int64)
    valid = np.ascontiguousarray(valid, dtype=np.bool_)
    sym_table = np.ascontiguousarray(sym_table, dtype=np.float64)
    n_sym = np.ascontiguousarray(n_sym, dtype=np.int64)
    return (
        _edge_angles(q, phase_index, valid, sym_table, n_sym, 1),
        _edge_angles(q, phase_index, valid, sym_table, n_sym, 0),
    )


def edge_angles_reference(q, phase_index, valid, sym_table, n_sym):
    """Slow reference of :func:`edge_angles` built on :func:`~stemgrains.crystal.symmetry.disorientation_angle_reference`."""
    out = []
    for a, b in (((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                 ((slice(None, -1), slice(None)), (slice(1, None), slice(None)))):  # fmt: skip
        ang = np.full(valid[a].shape, np.inf)
        ok = valid[a] & valid[b] & (phase_index[a] == phase_index[b])
        for p in np.unique(phase_index[a][ok]):
            sel = ok & (phase_index[a] == p)
            ang[sel] = disorientation_angle_reference(q[a][sel], q[b][sel], sym_table[p, : n_sym[p]])
        out.append(ang)
    return out[0], out[1]


# ------------------------------------------------------------------------------------------------
# union-find connected components
# ------------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _find(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@njit(cache=True, nogil=True)
def _union_find_labels(join_right, join_down, valid):
    ny, nx = valid.shape
    n = ny * nx
    parent = np.arange(n, dtype=np.int64)
    for r in range(ny):
        for c in range(nx):
            i = r * nx + c
            if c + 1 < nx and join_right[r, c]:
                a = _find(parent, i)
                b = _find(parent, i + 1)
                if a != b:
                    if a < b:
                        parent[b] = a
                    else:
                        parent[a] = b
            if r + 1 < ny and join_down[r, c]:
                a = _find(parent, i)
                b = _find(parent, i + nx)
                if a != b:
                    if a < b:
                        parent[b] = a
                    else:
                        parent[a] = b
    labels = np.zeros((ny, nx), dtype=np.int32)
    root_label = np.zeros(n, dtype=np.int32)
    nxt = 0
    for r in range(ny):
        for c in range(nx):
            if not valid[r, c]:
                continue
            root = _find(parent, r * nx + c)
            if root_label[root] == 0:
                nxt += 1
                root_label[root] = nxt
            labels[r, c] = root_label[root]
    return labels


def union_find_labels(join_right: np.ndarray, join_down: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Connected components of the valid pixels over the joined edges; labels 1..n in raster order of first
    appearance, 0 for invalid pixels. ``join_right`` ``(ny, nx-1)``, ``join_down`` ``(ny-1, nx)`` booleans."""
    valid = np.ascontiguousarray(valid, dtype=np.bool_)
    ny, nx = valid.shape
    jr = np.zeros((ny, nx), dtype=np.bool_)
    jd = np.zeros((ny, nx), dtype=np.bool_)
    jr[:, : nx - 1] = join_right
    jd[: ny - 1, :] = join_down
    return _union_find_labels(jr, jd, valid)


def relabel_raster(labels: np.ndarray) -> np.ndarray:
    """Renumber the positive labels 1..n in raster order of first appearance (0 stays 0)."""
    flat = labels.ravel()
    uniq, first = np.unique(flat, return_index=True)
    keep = uniq > 0
    uniq, first = uniq[keep], first[keep]
    order = np.argsort(first, kind="stable")
    lut = np.zeros(int(flat.max(initial=0)) + 1, dtype=np.int32)
    lut[uniq[order]] = np.arange(1, len(uniq) + 1, dtype=np.int32)
    return lut[labels].astype(np.int32)


def connected_labels_reference(join_right: np.ndarray, join_down: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Slow reference of :func:`union_find_labels`: scipy's sparse-graph connected components."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    ny, nx = valid.shape
    idx = np.arange(ny * nx).reshape(ny, nx)
    a = np.concatenate([idx[:, :-1][join_right], idx[:-1, :][join_down]])
    b = np.concatenate([idx[:, 1:][join_right], idx[1:, :][join_down]])
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(ny * nx, ny * nx))
    _, comp = connected_components(graph, directed=False)
    lab = np.where(valid.ravel(), comp + 1, 0).reshape(ny, nx)
    return relabel_raster(lab)


# ------------------------------------------------------------------------------------------------
# symmetry reduction of pixels to a reference orientation (for symmetry-aware means)
# ------------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _reduce_to_reference(q, ref, sym):
    n = q.shape[0]
    m = sym.shape[0]
    out = np.empty((n, 4), dtype=np.float64)
    for i in range(n):
        _, k = symmetry_max_w(ref[i], q[i], sym, m)
        # S_k * q
        w, x, y, z = qmul_components(sym[k, 0], sym[k, 1], sym[k, 2], sym[k, 3], q[i, 0], q[i, 1], q[i, 2], q[i, 3])
        if w * ref[i, 0] + x * ref[i, 1] + y * ref[i, 2] + z * ref[i, 3] < 0.0:
            w, x, y, z = -w, -x, -y, -z
        out[i, 0] = w
        out[i, 1] = x
        out[i, 2] = y
        out[i, 3] = z
    return out


def reduce_to_reference(q: np.ndarray, ref: np.ndarray, sym: np.ndarray) -> np.ndarray:
    """The symmetry equivalent ``S·q[i]`` closest to ``ref[i]``, sign chosen so that its dot with ``ref[i]`` ≥ 0."""
    q, ref, sym = as_quaternions(q, ref, sym)
    return _reduce_to_reference(q, ref, sym)


def reduce_to_reference_reference(q: np.ndarray, ref: np.ndarray, sym: np.ndarray) -> np.ndarray:
    """Slow reference of :func:`reduce_to_reference`: all equivalents, pick the largest |dot| with ref."""
    q, ref = as_quaternions(q, ref)
    eq = quaternion_multiply_reference(np.asarray(sym, dtype=np.float64)[None, :, :], q[:, None, :])  # (n, m, 4)
    dots = np.einsum("nmk,nk->nm", eq, ref)
    k = np.argmax(np.abs(dots), axis=1)
    best = eq[np.arange(len(q)), k]
    return best * np.where(dots[np.arange(len(q)), k] < 0, -1.0, 1.0)[:, None]
