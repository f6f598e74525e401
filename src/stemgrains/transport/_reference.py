"""Slow, obvious reference implementations used by the tests (never by library code)."""

from __future__ import annotations

import numpy as np

__all__ = ["node_copies_reference", "element_matrix_reference"]


def node_copies_reference(group: np.ndarray, kind: np.ndarray, periodic_y: bool = False, periodic_x: bool = False):
    """Pure-python version of :func:`stemgrains.transport._fem.node_copies` (same numbering)."""
    ny, nx = group.shape
    nny = ny if periodic_y else ny + 1
    nnx = nx if periodic_x else nx + 1
    corner = -np.ones((ny, nx, 4), dtype=np.int64)
    node_of = []
    local = {0: 2, 1: 3, 2: 0, 3: 1}  # TL, TR, BR, BL → the pixel's own corner index
    for i in range(nny):
        for j in range(nnx):
            pix = {}
            for p, (dr, dc) in enumerate(((-1, -1), (-1, 0), (0, 0), (0, -1))):
                r, c = i + dr, j + dc
                if periodic_y:
                    r %= ny
                if periodic_x:
                    c %= nx
                if 0 <= r < ny and 0 <= c < nx and kind[r, c] != 0:
                    pix[p] = (r, c)
            comps = [{p} for p in pix]  # list of sets of positions

            def comp_of(p):
                return next(s for s in comps if p in s)

            def grains(s):
                return {int(group[pix[q]]) for q in s if kind[pix[q]] == 1}

            edges = [(e, (e + 1) % 4) for e in range(4)]
            for p, q in edges:
                if p in pix and q in pix and group[pix[p]] == group[pix[q]]:
                    a, b = comp_of(p), comp_of(q)
                    if a is not b:
                        comps.remove(b)
                        a |= b
            for p, q in edges:
                if p not in pix or q not in pix or group[pix[p]] == group[pix[q]]:
                    continue
                if kind[pix[p]] == 1 and kind[pix[q]] == 1:
                    continue
                a, b = comp_of(p), comp_of(q)
                if a is b or len(grains(a) | grains(b)) > 1:
                    continue
                comps.remove(b)
                a |= b
            ids = {}
            for p in range(4):
                if p in pix:
                    key = id(comp_of(p))
                    if key not in ids:
                        ids[key] = len(node_of)
                        node_of.append(i * nnx + j)
                    corner[pix[p][0], pix[p][1], local[p]] = ids[key]
    return corner, np.array(node_of, dtype=np.int64), (nny, nnx)


def element_matrix_reference(sxx: float, sxy: float, syy: float) -> np.ndarray:
    """``∫ ∇Nᵀ Σ ∇N`` of a unit square bilinear element by 2×2 Gauss quadrature (exact for this integrand)."""
    g = np.array([0.5 - 0.5 / np.sqrt(3.0), 0.5 + 0.5 / np.sqrt(3.0)])
    sig = np.array([[sxx, sxy], [sxy, syy]])
    k = np.zeros((4, 4))
    for x in g:
        for y in g:
            # N0 = (1-x)(1-y), N1 = x(1-y), N2 = xy, N3 = (1-x)y ; gradients (d/dx, d/dy)
            grads = np.array([[-(1 - y), -(1 - x)], [1 - y, -x], [y, x], [-y, 1 - x]])
            k += 0.25 * grads @ sig @ grads.T
    return k
