"""Kernels of boundary extraction: chains of pixel edges and their split into straight segments.

A boundary between grains A and B is a set of pixel edges (one per 4-connected A–B pixel pair). Edges meet at
pixel corners; within one boundary a corner touched by exactly two of its edges links them, any other corner
(one edge: a triple junction or the map border; four edges: a checkerboard crossing) ends a chain. Chains
without ends are closed loops (a grain enclosed by another).

Each kernel has a slow python reference below it; the tests compare them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "link_edges",
    "trace_chains",
    "trace_chains_reference",
    "split_chains",
    "split_chains_reference",
]


def link_edges(boundary: np.ndarray, corner0: np.ndarray, corner1: np.ndarray, n_corners: int) -> np.ndarray:
    """``(n_edges, 2)`` partner edge through each end corner (−1 where the corner ends the chain)."""
    n = len(boundary)
    e = np.arange(n, dtype=np.int64)
    key = np.concatenate([boundary * np.int64(n_corners) + corner0, boundary * np.int64(n_corners) + corner1])
    edge = np.concatenate([e, e])
    side = np.concatenate([np.zeros(n, np.int64), np.ones(n, np.int64)])
    order = np.argsort(key, kind="stable")
    key, edge, side = key[order], edge[order], side[order]
    start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    count = np.diff(np.r_[start, len(key)])
    partner = np.full((n, 2), -1, dtype=np.int64)
    two = start[count == 2]
    partner[edge[two], side[two]] = edge[two + 1]
    partner[edge[two + 1], side[two + 1]] = edge[two]
    return partner


@njit(cache=True, nogil=True)
def _trace_chains(partner, corner0, corner1, boundary_start):
    n = partner.shape[0]
    order = np.empty(n, dtype=np.int64)
    chain = np.empty(n, dtype=np.int64)
    closed = np.zeros(n, dtype=np.bool_)  # per chain
    visited = np.zeros(n, dtype=np.bool_)
    pos = 0
    nch = 0
    nb = boundary_start.shape[0] - 1
    for b in range(nb):
        for sweep in range(2):  # open chains first, then loops
            for e0 in range(boundary_start[b], boundary_start[b + 1]):
                if visited[e0]:
                    continue
                if sweep == 0:
                    if partner[e0, 0] == -1:
                        out_side = 1
                    elif partner[e0, 1] == -1:
                        out_side = 0
                    else:
                        continue
                else:
                    out_side = 1
                    closed[nch] = True
                cur = e0
                while True:
                    visited[cur] = True
                    order[pos] = cur
                    chain[pos] = nch
                    pos += 1
                    nxt = partner[cur, out_side]
                    if nxt == -1 or visited[nxt]:
                        break
                    shared = corner0[cur] if out_side == 0 else corner1[cur]
                    out_side = 1 if corner0[nxt] == shared else 0
                    cur = nxt
                nch += 1
    return order, chain, closed[:nch]


def trace_chains(partner: np.ndarray, corner0: np.ndarray, corner1: np.ndarray, boundary_start: np.ndarray):
    """Order the edges (sorted by boundary; boundary ``b`` owns ``boundary_start[b]:boundary_start[b+1]``) along
    their chains. Returns ``order`` (edge indices, chain after chain, each chain in walking order), ``chain``
    (chain id at each position of ``order``) and ``closed`` (per chain: a closed loop)."""
    return _trace_chains(
        np.ascontiguousarray(partner, dtype=np.int64),
        np.ascontiguousarray(corner0, dtype=np.int64),
        np.ascontiguousarray(corner1, dtype=np.int64),
        np.ascontiguousarray(boundary_start, dtype=np.int64),
    )


def trace_chains_reference(boundary, corner0, corner1):
    """Slow reference: chains as lists of edges, found with a dict graph per boundary (set of frozen chains,
    each as the tuple of its edges in walking order, canonical direction/rotation)."""
    chains = set()
    for b in np.unique(boundary):
        edges = [int(e) for e in np.flatnonzero(boundary == b)]
        at: dict[int, list[int]] = {}
        for e in edges:
            at.setdefault(int(corner0[e]), []).append(e)
            at.setdefault(int(corner1[e]), []).append(e)
        nbrs = {e: [] for e in edges}
        for es in at.values():
            if len(es) == 2:
                nbrs[es[0]].append(es[1])
                nbrs[es[1]].append(es[0])
        seen: set[int] = set()
        for e in edges:
            if e in seen:
                continue
            comp, stack = [], [e]
            while stack:  # connected component of the linked edges
                x = stack.pop()
                if x in seen:
                    continue
                seen.add(x)
                comp.append(x)
                stack.extend(nbrs[x])
            ends = [x for x in comp if len(nbrs[x]) < 2]
            start = min(ends) if ends else min(comp)
            path, prev, cur = [start], None, start
            while True:
                nxt = [y for y in nbrs[cur] if y != prev and y not in path]
                if not nxt:
                    break
                prev, cur = cur, nxt[0]
                path.append(cur)
            assert sorted(path) == sorted(comp)
            chains.add(_canonical(path, closed=not ends))
    return chains


def _canonical(path, closed):
    path = list(path)
    if closed:
        k = path.index(min(path))
        fw = path[k:] + path[:k]
        bw = [fw[0]] + fw[1:][::-1]
        return ("loop",) + tuple(min(fw, bw))
    return ("open",) + tuple(min(path, path[::-1]))


# ------------------------------------------------------------------------------------------------
# Douglas–Peucker split of chains into straight segments
# ------------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _farthest(x, y, lo, hi, min_n):
    """Index in [lo+min_n-1, hi-min_n] farthest from the chord p[lo]→p[hi] and its distance (−1 if none)."""
    dx = x[hi] - x[lo]
    dy = y[hi] - y[lo]
    norm = np.sqrt(dx * dx + dy * dy)
    best = -1.0
    ib = -1
    for i in range(lo + min_n - 1, hi - min_n + 1):
        if norm > 1e-12:
            d = abs(dx * (y[i] - y[lo]) - dy * (x[i] - x[lo])) / norm
        else:
            d = np.sqrt((x[i] - x[lo]) ** 2 + (y[i] - y[lo]) ** 2)
        if d > best:
            best = d
            ib = i
    return ib, best


@njit(cache=True, nogil=True)
def _split_chains(x, y, chain_start, tolerance, min_n):
    n = x.shape[0]
    cut = np.zeros(n, dtype=np.bool_)  # cut[i]: a new segment starts at position i
    stack = np.empty((n + 1, 2), dtype=np.int64)
    for c in range(chain_start.shape[0] - 1):
        s0, s1 = chain_start[c], chain_start[c + 1]
        cut[s0] = True
        top = 0
        stack[0, 0] = s0
        stack[0, 1] = s1 - 1
        top = 1
        while top > 0:
            top -= 1
            lo = stack[top, 0]
            hi = stack[top, 1]
            if hi - lo + 1 < 2 * min_n:
                continue
            i, d = _farthest(x, y, lo, hi, min_n)
            if i < 0 or d <= tolerance:
                continue
            cut[i + 1] = True
            stack[top, 0] = lo
            stack[top, 1] = i
            stack[top + 1, 0] = i + 1
            stack[top + 1, 1] = hi
            top += 2
    return np.cumsum(cut) - 1


def split_chains(x: np.ndarray, y: np.ndarray, chain_start: np.ndarray, tolerance: float, min_n: int) -> np.ndarray:
    """Segment id at each position of chain-ordered points ``(x, y)`` (chain ``c`` owns positions
    ``chain_start[c]:chain_start[c+1]``): recursive split at the point farthest from the chord while that distance
    exceeds ``tolerance`` (Douglas–Peucker) and both parts keep ≥ ``min_n`` points. Points before and including
    the split point go to the first part."""
    return _split_chains(
        np.ascontiguousarray(x, dtype=np.float64),
        np.ascontiguousarray(y, dtype=np.float64),
        np.ascontiguousarray(chain_start, dtype=np.int64),
        float(tolerance),
        max(int(min_n), 1),
    )


def split_chains_reference(x, y, chain_start, tolerance, min_n):
    """Slow reference of :func:`split_chains` (plain recursion over python lists)."""
    min_n = max(int(min_n), 1)
    seg = np.empty(len(x), dtype=np.int64)
    pieces = []

    def rec(lo, hi):
        if hi - lo + 1 >= 2 * min_n:
            p0, p1 = np.array([x[lo], y[lo]]), np.array([x[hi], y[hi]])
            chord = p1 - p0
            best, ib = -1.0, -1
            for i in range(lo + min_n - 1, hi - min_n + 1):
                v = np.array([x[i], y[i]]) - p0
                d = abs(chord[0] * v[1] - chord[1] * v[0]) / np.linalg.norm(chord) if np.linalg.norm(chord) > 1e-12 \
                    else np.linalg.norm(v)
                if d > best:
                    best, ib = d, i
            if ib >= 0 and best > tolerance:
                rec(lo, ib)
                rec(ib + 1, hi)
                return
        pieces.append((lo, hi))

    for c in range(len(chain_start) - 1):
        rec(int(chain_start[c]), int(chain_start[c + 1]) - 1)
    for k, (lo, hi) in enumerate(sorted(pieces)):
        seg[lo : hi + 1] = k
    return seg
