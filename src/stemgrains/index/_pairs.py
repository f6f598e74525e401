"""Orientation hypotheses from the geometry of detected spot pairs (intensity-free).

The template search ranks orientations by kinematic intensities; where dynamical scattering redistributes the
intensities (multislice patterns of 20–40 nm lamellae, real data), the right orientation can fail to reach its
candidates although the detected spots sit exactly where its reciprocal lattice puts them. This module proposes
orientations from spot *positions* alone, as in the spot-pair indexing of single-crystal diffraction
(Busing & Levy 1967; the pair-angle matching of Kikuchi and spot patterns, e.g. Zaefferer 2000): two detected
spots p_i, p_j (sample frame, placed on the Ewald sphere) are matched to two reflections g_a, g_b with
|g_a| ≈ |p_i|, |g_b| ≈ |p_j| and ∠(g_a, g_b) ≈ ∠(p_i, p_j); the rotation taking (g_a, g_b) onto (p_i, p_j) follows
from the two vector pairs (TRIAD, Black 1964). Each such orientation is scored by the number of detected spots it
explains (:func:`._cpu.explained_count`); the best distinct ones are returned.

g_a runs over one reflection per symmetry-equivalent family only (the others give symmetry-equivalent
orientations); g_b over all reflections.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from ..crystal.spots import rotation_matrices
from ..crystal.symmetry import qmul
from ._cpu import explained_count, predicted_spots_index, qmatrix, sym_distance


def pair_tables(g_c: np.ndarray, intensity: np.ndarray, sym: np.ndarray, min_relative_intensity: float):
    """Reflections used to propose orientations: those with intensity ≥ ``min_relative_intensity`` × the
    strongest, sorted by length. Returns (g (m, 3) crystal frame 1/Å, |g| (m,) ascending, representative (m,) bool:
    one reflection per family of reflections equivalent under the proper rotations ``sym`` (k, 4))."""
    g_c = np.asarray(g_c, dtype=np.float64)
    intensity = np.asarray(intensity, dtype=np.float64)
    keep = intensity >= min_relative_intensity * intensity.max() if len(intensity) else np.zeros(0, bool)
    g = g_c[keep]
    length = np.linalg.norm(g, axis=1)
    order = np.argsort(length, kind="stable")
    g, length = np.ascontiguousarray(g[order]), np.ascontiguousarray(length[order])
    # family key: the lexicographically largest symmetry image (rounded), shared by the whole family; np.unique
    # ranks the rounded images lexicographically, so the largest rank over the symmetry images is that key
    images = np.einsum("kij,mj->kmi", rotation_matrices(sym), g)  # (k, m, 3)
    key = np.round(images * 1e4).astype(np.int64).reshape(-1, 3)
    _, rank = np.unique(key, axis=0, return_inverse=True)
    _, first = np.unique(rank.reshape(len(sym), len(g)).max(axis=0), return_index=True)
    rep = np.zeros(len(g), bool)
    rep[first] = True
    return g, length, rep


@nb.njit(cache=True, nogil=True)
def matrix_to_quaternion(R):
    """Unit quaternion (a ≥ 0) of the rotation matrix R in the convention of :func:`._cpu.qmatrix`
    (Shepperd 1978: the largest of the four squared components first)."""
    tr = R[0, 0] + R[1, 1] + R[2, 2]
    q = np.empty(4)
    if tr >= R[0, 0] and tr >= R[1, 1] and tr >= R[2, 2]:
        a = 0.5 * math.sqrt(max(1.0 + tr, 0.0))
        q[0] = a
        q[1] = (R[2, 1] - R[1, 2]) / (4 * a)
        q[2] = (R[0, 2] - R[2, 0]) / (4 * a)
        q[3] = (R[1, 0] - R[0, 1]) / (4 * a)
    elif R[0, 0] >= R[1, 1] and R[0, 0] >= R[2, 2]:
        b = 0.5 * math.sqrt(max(1.0 + 2 * R[0, 0] - tr, 0.0))
        q[1] = b
        q[0] = (R[2, 1] - R[1, 2]) / (4 * b)
        q[2] = (R[0, 1] + R[1, 0]) / (4 * b)
        q[3] = (R[0, 2] + R[2, 0]) / (4 * b)
    elif R[1, 1] >= R[2, 2]:
        c = 0.5 * math.sqrt(max(1.0 + 2 * R[1, 1] - tr, 0.0))
        q[2] = c
        q[0] = (R[0, 2] - R[2, 0]) / (4 * c)
        q[1] = (R[0, 1] + R[1, 0]) / (4 * c)
        q[3] = (R[1, 2] + R[2, 1]) / (4 * c)
    else:
        d = 0.5 * math.sqrt(max(1.0 + 2 * R[2, 2] - tr, 0.0))
        q[3] = d
        q[0] = (R[1, 0] - R[0, 1]) / (4 * d)
        q[1] = (R[0, 2] + R[2, 0]) / (4 * d)
        q[2] = (R[1, 2] + R[2, 1]) / (4 * d)
    nrm = math.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
    for k in range(4):
        q[k] /= nrm
    if q[0] < 0:
        for k in range(4):
            q[k] = -q[k]
    return q


@nb.njit(cache=True, nogil=True, inline="always")
def _triad(a, b):
    """Orthonormal frame (columns) of the vector pair (a, b): a/|a|, (a × b)/|a × b|, and their cross product."""
    T = np.empty((3, 3))
    na = math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2])
    t1 = a / na
    c = np.empty(3)
    c[0] = a[1] * b[2] - a[2] * b[1]
    c[1] = a[2] * b[0] - a[0] * b[2]
    c[2] = a[0] * b[1] - a[1] * b[0]
    nc = math.sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2])
    t2 = c / nc
    t3 = np.empty(3)
    t3[0] = t1[1] * t2[2] - t1[2] * t2[1]
    t3[1] = t1[2] * t2[0] - t1[0] * t2[2]
    t3[2] = t1[0] * t2[1] - t1[1] * t2[0]
    for k in range(3):
        T[k, 0] = t1[k]
        T[k, 1] = t2[k]
        T[k, 2] = t3[k]
    return T


@nb.njit(cache=True, nogil=True)
def pair_orientation(g_a, g_b, v_i, v_j):
    """Quaternion of the orientation (v_crystal = R v_sample, :func:`._cpu.qmatrix`) that takes the sample-frame
    directions of v_i and v_j onto the crystal-frame g_a and g_b (exactly for the first, in the plane for the second)."""
    Tc = _triad(g_a, g_b)
    Ts = _triad(v_i, v_j)
    return matrix_to_quaternion(Tc @ Ts.T)


@nb.njit(cache=True, nogil=True)
def refine_positions(q, g_c, lam, s_win, q_min, q_max, px, py, tol_abs, tol_rel, n_iter):
    """Orientation fitted to the positions of the detected spots that ``q`` explains: each explained spot
    (px, py), placed on the Ewald sphere, is paired with its nearest predicted reflection and the rotation
    minimising Σ |R v_p − g_j|² is found by SVD (Kabsch 1976); repeated ``n_iter`` times (pairs re-made).
    Intensity-free: placing the spots at exact Bragg condition fits the Laue circle through the excited spots.
    Returns (q, explained count); q unchanged where fewer than 3 spots are explained."""
    best_q = q.copy()
    best_n = explained_count(q, g_c, lam, s_win, q_min, q_max, px, py, tol_abs, tol_rel)
    cur = q.copy()
    for _ in range(n_iter):
        R = qmatrix(cur)
        pred, idx = predicted_spots_index(R, g_c, lam, s_win, q_min, q_max)
        H = np.zeros((3, 3))
        n_ok = 0
        for p in range(px.shape[0]):
            tol = tol_abs + tol_rel * math.sqrt(px[p] * px[p] + py[p] * py[p])
            bd = tol * tol
            bk = -1
            for k in range(pred.shape[0]):
                dx = px[p] - pred[k, 0]
                dy = py[p] - pred[k, 1]
                d2 = dx * dx + dy * dy
                if d2 <= bd:
                    bd = d2
                    bk = k
            if bk < 0:
                continue
            n_ok += 1
            v0, v1 = px[p], py[p]
            v2 = -0.5 * lam * (v0 * v0 + v1 * v1)
            j = idx[bk]
            for a in range(3):
                va = v0 if a == 0 else (v1 if a == 1 else v2)
                for b in range(3):
                    H[a, b] += va * g_c[j, b]
        if n_ok < 3:
            break
        U, S, Vt = np.linalg.svd(H)
        Rn = Vt.T @ U.T
        if np.linalg.det(Rn) < 0:
            for b in range(3):
                Vt[2, b] = -Vt[2, b]
            Rn = Vt.T @ U.T
        cur = matrix_to_quaternion(Rn)
        nn = explained_count(cur, g_c, lam, s_win, q_min, q_max, px, py, tol_abs, tol_rel)
        if nn >= best_n:
            best_n = nn
            best_q = cur.copy()
    return best_q, best_n


@nb.njit(cache=True, nogil=True, inline="always")
def _lower(length, x):
    lo = 0
    hi = length.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if length[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@nb.njit(cache=True, nogil=True)
def canonical(q, sym):
    """The symmetry-equivalent of ``q`` (over ``sym`` (k, 4), applied as s ⊗ q as in :func:`._cpu.sym_distance`)
    with the largest scalar part, scalar part ≥ 0: equal for equivalent orientations away from the
    fundamental zone's boundary."""
    best = q.copy()
    bw = -1.0
    for k in range(sym.shape[0]):
        p = qmul(sym[k], q)
        w = abs(p[0])
        if w > bw:
            bw = w
            best = p
    if best[0] < 0:
        best = -best
    return best


#: hash table size of the vote table's cells (:func:`_first_listed`); a power of two
VOTE_HASH = 4096
#: cell size of the vote table, in units of the largest component difference of two pooled orientations
VOTE_CELL = 4.0


@nb.njit(cache=True, nogil=True, inline="always")
def _vote_cell(i, j, k):
    """Hash (0 … VOTE_HASH − 1) of the integer cell (i, j, k)."""
    return ((i * 73856093) ^ (j * 19349663) ^ (k * 83492791)) & (VOTE_HASH - 1)


@nb.njit(cache=True, nogil=True, inline="always")
def _cell_of(x, size):
    return int(math.floor(x / size))


@nb.njit(cache=True, nogil=True)
def _list_orientation(q, m, vq, head, tail, nxt, width):
    """List ``q`` as orientation number ``m`` (``vq[m]``) and append it to its cell's chain (:func:`_first_listed`)."""
    vq[m] = q
    size = VOTE_CELL * width
    h = _vote_cell(_cell_of(q[1], size), _cell_of(q[2], size), _cell_of(q[3], size))
    if head[h] < 0:
        head[h] = m
    else:
        nxt[tail[h]] = m
    tail[h] = m


@nb.njit(cache=True, nogil=True)
def _first_listed(q, vq, head, nxt, cos_same, width):
    """Index of the first listed orientation t with |q · vq[t]| ≥ cos_same (−1 if none), as a scan of the whole
    list in order would find it, but looking only where such an orientation can be: |q · p| ≥ c means
    ‖q ∓ p‖² ≤ 2 − 2c = width², so every component of p's vector part lies within ``width`` of ±q's: in the cells
    (of size ``VOTE_CELL·width``) that the box ±q_vec ± width touches (listed orientations are canonical, scalar part
    ≥ 0, so the − sign needs q[0] + p[0] ≤ width and is searched only where q[0] ≤ width). Each cell's chain
    (``head``/``nxt``, hashed by :func:`_vote_cell`; colliding cells share a chain, which only adds entries to test)
    holds indices in listing order, so its first match is its smallest; the smallest over the chains is the
    answer."""
    size = VOTE_CELL * width
    best = -1
    for sgn in range(2):
        if sgn == 1 and q[0] > width:
            break
        f = 1.0 if sgn == 0 else -1.0
        x, y, z = f * q[1], f * q[2], f * q[3]
        for ci in range(_cell_of(x - width, size), _cell_of(x + width, size) + 1):
            for cj in range(_cell_of(y - width, size), _cell_of(y + width, size) + 1):
                for ck in range(_cell_of(z - width, size), _cell_of(z + width, size) + 1):
                    t = head[_vote_cell(ci, cj, ck)]
                    while t >= 0 and (best < 0 or t < best):
                        if abs(q[0] * vq[t, 0] + q[1] * vq[t, 1] + q[2] * vq[t, 2] + q[3] * vq[t, 3]) >= cos_same:
                            best = t
                            break
                        t = nxt[t]
    return best


@nb.njit(cache=True, nogil=True)
def pair_hypotheses_one(px, py, amp, g, length, rep, g_fit, lam, s_win, q_min, q_max, tol_abs, tol_rel, k_use,
                        n_keep, sym, same_dist, n_refine_pos=3, n_vote=16):
    """Up to ``n_keep`` distinct orientations proposed by the pairs among the ``k_use`` strongest detected spots
    (px, py: sample frame 1/Å; amp: amplitudes) of one pattern, with the number of detected spots each explains.

    Every ordered pair (i, j) of those spots (not within 8° of collinear) is matched to reflections (g_a a family
    representative of ``g``, g_b any of ``g`` not collinear with g_a) with |g_a| and |g_b| within
    ``tol_abs + tol_rel·|p|`` of |p_i| and |p_j| and an angle within the two tolerances seen from the origin; each
    match gives an orientation (:func:`pair_orientation`). Orientations within ``same_dist`` (rad) of each other
    (after :func:`canonical`) pool their votes (each votes for the first listed one within same_dist; at most 1024
    are listed, later new ones are dropped); the ``n_vote`` most voted are scored by the detected spots they
    explain (reflections ``g_fit``, :func:`._cpu.explained_count`), the ``n_keep`` best kept and each fitted to its
    explained spots' positions (:func:`refine_positions`, ``n_refine_pos`` rounds). The right orientation is
    proposed by every pair of its spots; a chance match by one or two.
    Returns (quaternions (n_keep, 4), zeros where none; counts (n_keep,), −1 where none)."""
    n = px.shape[0]
    order = np.argsort(-amp)
    k = min(k_use, n)
    v = np.zeros((k, 3))
    for ii in range(k):
        p = order[ii]
        v[ii, 0] = px[p]
        v[ii, 1] = py[p]
        v[ii, 2] = -0.5 * lam * (px[p] * px[p] + py[p] * py[p])  # on the Ewald sphere
    cos_same = math.cos(0.5 * same_dist)
    n_table = 1024
    vq = np.zeros((n_table, 4))
    vn = np.zeros(n_table, np.int64)
    # the listed orientations hashed by the cell of their vector part (cells of the largest component difference
    # two orientations within same_dist can have), each cell's chain in listing order (see _first_listed)
    head = -np.ones(VOTE_HASH, np.int64)
    tail = -np.ones(VOTE_HASH, np.int64)
    nxt = -np.ones(n_table, np.int64)
    width = math.sqrt(max(2.0 - 2.0 * cos_same, 1e-24)) * (1.0 + 1e-9)
    m = 0
    sin_min = math.sin(math.radians(8.0))
    for i in range(k):
        ni = math.sqrt(v[i, 0] ** 2 + v[i, 1] ** 2 + v[i, 2] ** 2)
        for j in range(k):
            if j == i:
                continue
            nj = math.sqrt(v[j, 0] ** 2 + v[j, 1] ** 2 + v[j, 2] ** 2)
            cij = (v[i, 0] * v[j, 0] + v[i, 1] * v[j, 1] + v[i, 2] * v[j, 2]) / (ni * nj)
            if 1.0 - cij * cij < sin_min * sin_min:
                continue
            ti = tol_abs + tol_rel * ni
            tj = tol_abs + tol_rel * nj
            # angular tolerance: the position tolerances seen from the origin (they also cover the spots' distance
            # from exact Bragg condition, which tilts the vectors placed on the Ewald sphere)
            tang = ti / ni + tj / nj
            a0 = _lower(length, ni - ti)
            b0 = _lower(length, nj - tj)
            ang_ij = math.acos(min(max(cij, -1.0), 1.0))
            # |∠(g_a, g_b) − ang_ij| ≤ tang as bounds on the cosine (cos falls monotonically on [0, π])
            c_hi = math.cos(max(ang_ij - tang, 0.0))
            c_lo = math.cos(min(ang_ij + tang, math.pi))
            for a in range(a0, length.shape[0]):
                if length[a] > ni + ti:
                    break
                if not rep[a]:
                    continue
                for b in range(b0, length.shape[0]):
                    if length[b] > nj + tj:
                        break
                    if b == a:
                        continue
                    cab = (g[a, 0] * g[b, 0] + g[a, 1] * g[b, 1] + g[a, 2] * g[b, 2]) / (length[a] * length[b])
                    if 1.0 - cab * cab < 1e-12:  # collinear reflections (g_b = ±n g_a) span no plane: no orientation
                        continue
                    if cab > c_hi or cab < c_lo:
                        continue
                    q = canonical(pair_orientation(g[a], g[b], v[i], v[j]), sym)
                    found = _first_listed(q, vq, head, nxt, cos_same, width)
                    if found >= 0:
                        vn[found] += 1
                    elif m < n_table:
                        _list_orientation(q, m, vq, head, tail, nxt, width)
                        vn[m] = 1
                        m += 1
    out_q = np.zeros((n_keep, 4))
    out_c = -np.ones(n_keep)
    if m == 0:
        return out_q, out_c
    top = np.argsort(-vn[:m], kind="mergesort")[: min(n_vote, m)]
    cnt = np.empty(top.shape[0])
    for t in range(top.shape[0]):
        cnt[t] = explained_count(vq[top[t]], g_fit, lam, s_win, q_min, q_max, px, py, tol_abs, tol_rel)
    best = np.argsort(-cnt, kind="mergesort")
    kept = 0
    for t in range(best.shape[0]):
        if kept == n_keep:
            break
        q = vq[top[best[t]]].copy()
        c = cnt[best[t]]
        if n_refine_pos > 0:
            q, c2 = refine_positions(q, g_fit, lam, s_win, q_min, q_max, px, py, tol_abs, tol_rel, n_refine_pos)
            c = float(c2)
        dup = False
        for s in range(kept):
            if sym_distance(q, out_q[s], sym) <= same_dist:
                dup = True
                break
        if dup:
            continue
        out_q[kept] = q
        out_c[kept] = c
        kept += 1
    return out_q, out_c


@nb.njit(cache=True, nogil=True, parallel=True)
def pair_hypotheses(mask, peaks, counts, g, length, rep, g_fit, lam, s_win, q_min, q_max, tol_abs, tol_rel, k_use,
                    n_keep, sym, same_dist, n_refine_pos=3, n_vote=16):
    """:func:`pair_hypotheses_one` for every pattern i with ``mask[i]`` (peaks (n, p, 3): qx, qy, amplitude).
    Returns (quaternions (n, n_keep, 4), counts (n, n_keep))."""
    n = peaks.shape[0]
    oq = np.zeros((n, n_keep, 4))
    oc = -np.ones((n, n_keep))
    fit_len = np.sqrt(np.sum(g_fit * g_fit, axis=1))
    by_length = True
    for j in range(1, fit_len.shape[0]):
        if fit_len[j] < fit_len[j - 1]:
            by_length = False
            break
    for i in nb.prange(n):
        if not mask[i]:
            continue
        c = counts[i]
        # reflections longer than the farthest spot plus its tolerance explain no spot (|g_xy| ≤ |g|): with g_fit
        # sorted by length they are cut off, which changes no count or fit and saves most of the explained counts
        n_fit = g_fit.shape[0]
        if by_length:
            p_max = 0.0
            for p in range(c):
                p_max = max(p_max, math.sqrt(peaks[i, p, 0] ** 2 + peaks[i, p, 1] ** 2))
            n_fit = _lower(fit_len, p_max + tol_abs + tol_rel * p_max + 1e-9)
        q, cnt = pair_hypotheses_one(peaks[i, :c, 0].copy(), peaks[i, :c, 1].copy(), peaks[i, :c, 2].copy(), g, length,
                                     rep, g_fit[:n_fit], lam, s_win, q_min, q_max, tol_abs, tol_rel, k_use, n_keep, sym, same_dist, n_refine_pos, n_vote)
        oq[i] = q
        oc[i] = cnt
    return oq, oc
