"""Grain-level decision among near-tied hypotheses (numba kernels; slow references in :mod:`._reference`).

A pattern that cannot tell two orientations apart — the beam twin O ∘ Rz(180°) of a thin, nearly centrosymmetric
pattern; the obverse/reverse 60° turn about c of an R lattice; any other pair whose spot patterns nearly coincide —
gets either of them, pixel by pixel, at reliability ≈ 0: a grain comes out split into patches of the alternatives.
Its pixels share one orientation, so the grain decides: neighbouring pixels one of which holds the other's solution
among its near-tied hypotheses are linked into a group, and where one solution holds a clear majority of the group's
pixels (``config.GRAIN_VOTE_MAJORITY``), every pixel below the reliability cut that holds it among its own near-tied hypotheses takes it.
Pixels at or above the cut, and pixels whose own pattern does not rank the majority's solution near its best, keep
theirs. The same prior as EBSD pseudo-symmetry clean-ups, which re-assign the variant of the surrounding grain (e.g.
EDAX OIM Analysis "pseudo-symmetry", MTEX ``calcGrains`` on pseudo-symmetric phases; Nowell & Wright, J. Microsc.
213 (2004) 296): here restricted to alternatives the pixel's own pattern scores within ``tie`` of its best.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from ._cpu import sym_distance

#: most distinct solutions counted per group; further ones count in the group's size but cannot be chosen
MAX_CLUSTERS = 32


@nb.njit(cache=True, nogil=True)
def tied_hypothesis(o, hyp_q, hyp_s, sym, tol, tie):
    """Index of the hypothesis (rows of ``hyp_q`` (h, 4), scores ``hyp_s`` (h,), best first; all-zero rows unused)
    nearest ``o`` within ``tol`` rad (over the symmetry ``sym``) whose score is at least ``tie`` × the best's, or −1."""
    best_d = tol
    best_j = -1
    top = hyp_s[0]
    for j in range(hyp_q.shape[0]):
        h = hyp_q[j]
        if h[0] == 0.0 and h[1] == 0.0 and h[2] == 0.0 and h[3] == 0.0:
            continue
        if hyp_s[j] < tie * top:
            continue
        d = sym_distance(o, h, sym)
        if d < best_d:
            best_d = d
            best_j = j
    return best_j


@nb.njit(cache=True, nogil=True)
def linked(q, hyp_q, hyp_s, i, j, sym, tol, tie):
    """Pixels i and j belong to one group: their solutions agree within ``tol``, or one's solution is among the
    other's near-tied hypotheses (:func:`tied_hypothesis`: that pixel's pattern cannot tell the two apart; the pixel
    whose pattern can need not list the other's)."""
    if sym_distance(q[i], q[j], sym) < tol:
        return True
    return (tied_hypothesis(q[j], hyp_q[i], hyp_s[i], sym, tol, tie) >= 0
            or tied_hypothesis(q[i], hyp_q[j], hyp_s[j], sym, tol, tie) >= 0)


@nb.njit(cache=True, nogil=True)
def vote_groups(q, mask, hyp_q, hyp_s, ny, nx, sym, tol, tie):
    """Groups of 4-connected pixels of ``mask`` (n = ny·nx, row-major) joined by :func:`linked`, by breadth-first
    search from the first unvisited pixel in raster order. Returns (labels (n,) int64, −1 outside ``mask``;
    order (m,) the pixels of ``mask`` group by group, each group in visiting order; starts (g + 1,) its offsets)."""
    n = ny * nx
    labels = -np.ones(n, np.int64)
    order = np.empty(n, np.int64)
    starts = np.zeros(n + 1, np.int64)
    m = 0
    g = 0
    for s in range(n):
        if not mask[s] or labels[s] >= 0:
            continue
        starts[g] = m
        labels[s] = g
        order[m] = s
        head = m
        m += 1
        while head < m:
            i = order[head]
            head += 1
            r = i // nx
            c = i - r * nx
            for k in range(4):
                rr = r + (k == 1) - (k == 0)
                cc = c + (k == 3) - (k == 2)
                if rr < 0 or rr >= ny or cc < 0 or cc >= nx:
                    continue
                j = rr * nx + cc
                if not mask[j] or labels[j] >= 0:
                    continue
                if linked(q, hyp_q, hyp_s, i, j, sym, tol, tie):
                    labels[j] = g
                    order[m] = j
                    m += 1
        g += 1
    starts[g] = m
    return labels, order[:m], starts[:g + 1]


@nb.njit(cache=True, nogil=True)
def grain_vote(q, mask, hyp_q, hyp_s, reliability, ny, nx, sym, tol, tie, r_cut, min_size, majority, n_summed, z):
    """The grain-level decision (module docstring) over one phase's pixels ``mask``.

    q (n, 4) solutions, hyp_q (n, h, 4) / hyp_s (n, h) each pixel's hypotheses and scores (best first),
    reliability (n,). In each group of at least ``min_size`` pixels (:func:`vote_groups`) the solutions are
    clustered (a pixel joins the first cluster, in visiting order, whose first solution lies within ``tol`` rad of
    its own; at most ``MAX_CLUSTERS``); where the largest cluster (the first of equal ones) holds more than
    ``majority`` of the group, each other pixel with reliability < ``r_cut`` takes its :func:`tied_hypothesis` of
    that cluster's first solution, where it has one.

    The decision's strength (:func:`decision_strength`): with b the largest cluster's pixels and a = size − b the
    others', a group that decides (b > ``majority`` × size; also where all its pixels agree) *significantly* —
    b − a > ``z`` √(n̄ (a + b)), the sign test with the pixels' count divided by n̄, the mean of ``n_summed`` (n,)
    over the group (patterns summed into each pixel's: neighbouring pixels share them, so they are not independent)
    — gives each of its pixels whose solution (after the vote) lies within ``tol`` of the cluster's
    100 (b − a)/(a + b); every other pixel gets 0.

    Returns (new q (n, 4), switched (n,) bool, labels (n,) int64, strength (n,) float64)."""
    labels, order, starts = vote_groups(q, mask, hyp_q, hyp_s, ny, nx, sym, tol, tie)
    out = q.copy()
    switched = np.zeros(q.shape[0], np.bool_)
    strength = np.zeros(q.shape[0])
    centre = np.empty(MAX_CLUSTERS, np.int64)
    count = np.zeros(MAX_CLUSTERS, np.int64)
    member_of = np.empty(order.shape[0], np.int64)
    for g in range(starts.shape[0] - 1):
        a = starts[g]
        b = starts[g + 1]
        size = b - a
        if size < min_size:
            continue
        k_used = 0
        for t in range(a, b):
            i = order[t]
            member_of[t] = -1
            for k in range(k_used):
                if sym_distance(q[i], q[centre[k]], sym) < tol:
                    member_of[t] = k
                    count[k] += 1
                    break
            if member_of[t] < 0 and k_used < MAX_CLUSTERS:
                centre[k_used] = i
                count[k_used] = 1
                member_of[t] = k_used
                k_used += 1
        best = 0
        for k in range(1, k_used):
            if count[k] > count[best]:
                best = k
        if k_used > 1 and count[best] > majority * size:
            o = q[centre[best]]
            for t in range(a, b):
                i = order[t]
                if member_of[t] == best or reliability[i] >= r_cut:
                    continue
                j = tied_hypothesis(o, hyp_q[i], hyp_s[i], sym, tol, tie)
                if j >= 0:
                    out[i] = hyp_q[i, j]
                    switched[i] = True
        if k_used > 0:
            mean_summed = 0.0
            for t in range(a, b):
                mean_summed += n_summed[order[t]]
            s = decision_strength(count[best], size, mean_summed / size, majority, z)
            if s > 0.0:
                o = q[centre[best]]
                for t in range(a, b):
                    i = order[t]
                    if sym_distance(out[i], o, sym) < tol:
                        strength[i] = s
        for k in range(k_used):
            count[k] = 0
    return out, switched, labels, strength


@nb.njit(cache=True, nogil=True)
def decision_strength(b, size, mean_summed, majority, z):
    """100 (b − a)/(a + b), a = ``size`` − b, where b pixels of a group of ``size`` hold its majority solution,
    if that majority decides (b > ``majority`` × size) and is significant by the sign test (Dixon & Mood,
    *J. Am. Stat. Assoc.* 41 (1946) 557) on the pixels' count divided by ``mean_summed`` (each pixel's pattern is
    a sum of that many neighbouring patterns on average, so about size/mean_summed of them are independent):
    b − a > ``z`` √(mean_summed · size); else 0."""
    a = size - b
    if size <= 0 or b <= majority * size:
        return 0.0
    if b - a <= z * math.sqrt(max(mean_summed, 1.0) * size):
        return 0.0
    return 100.0 * (b - a) / size
