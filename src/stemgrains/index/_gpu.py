"""CUDA (numba.cuda) kernels of the matching core: the same computations as :mod:`._cpu`, per chunk.

Imported only for ``backend="gpu"``. Importing it without a CUDA device raises a
:class:`~stemgrains.errors.StemgrainsError`; with ``NUMBA_ENABLE_CUDASIM=1`` (set before numba is imported) the
kernels run on numba's CUDA simulator, on the CPU and very slowly — that is how CPU-only CI checks them.

One chunk is one round trip: the peak lists and candidate lists go to the device once, five kernels run, and the
results come back once (the library arrays go with the chunk's inputs).

1. ``_coarse_kernel`` — one block per (pattern, candidate template): the angular-correlation histogram of
   :func:`._cpu.angular_correlation` in shared memory (threads split the peaks, atomic adds), then thread 0 picks
   the ``per_template`` best in-plane angles (:func:`._cpu.top_peaks_circular`, :func:`._cpu.parabolic_offset`).
2. ``_select_kernel`` — one thread per pattern: candidates in decreasing score, symmetry-distinct ones kept
   (as in :func:`._cpu.index_one`).
3. ``_score_kernel`` — one thread per (pattern, candidate): :func:`._cpu.image_score` on the processed image;
   ``_rank_kernel`` orders them.
4. ``_refine_kernel`` — one thread per (pattern, candidate to refine): the reflections near the Ewald sphere
   (:func:`._cpu.near_sphere_subset`) and Nelder–Mead on the image score (:func:`._cpu.refine_orientation`).
5. ``_finish_kernel`` — one thread per pattern: ranking, reliability, the ``n_best`` distinct candidates and the
   normalisation of the correlation index.

Results equal the CPU path up to the order of floating-point sums in the coarse histogram (atomic adds), i.e. to
~1e-12 in scores; the chosen template differs only when two candidates tie to that precision. Mirrors _cpu as of
commit 5981f4b (image-score refinement): a change of the CPU algorithm needs the same change here.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np

from ..crystal.symmetry import qmul_components
from ..errors import ParameterError, StemgrainsError
from . import _cpu

__all__ = ["gpu_available", "using_simulator", "index_chunk_gpu", "coarse_search_gpu", "image_score_gpu", "refine_gpu"]

TWO_PI = 2.0 * math.pi
MAX_BINS = 1440  # in-plane angle bins a coarse-search block holds in shared memory (float64: 11.5 kB)


def using_simulator() -> bool:
    """True when numba's CUDA simulator is on (``NUMBA_ENABLE_CUDASIM=1``)."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0").strip() not in ("", "0")


def gpu_available() -> bool:
    """True when numba can run CUDA kernels here: a CUDA device with a working driver, or the simulator."""
    try:
        from numba import cuda
    except Exception:  # numba built without CUDA support
        return False
    try:
        return bool(cuda.is_available())
    except Exception:  # a broken driver installation
        return False


if not gpu_available():
    raise StemgrainsError("backend 'gpu': no CUDA device here (numba.cuda.is_available() is False); use the 'cpu' "
                          "backend")

if not hasattr(np, "row_stack"):
    # numba-cuda <= 0.30 registers an overload of np.row_stack (an alias of np.vstack removed in numpy 2.4) when it
    # compiles its first kernel; without the alias every kernel compilation fails with an AttributeError (seen with
    # numba-cuda 0.30.4 and numpy 2.5.2 on an H200). Restoring the alias changes nothing else.
    np.row_stack = np.vstack

from numba import cuda  # noqa: E402
from numba.core.errors import NumbaPerformanceWarning  # noqa: E402

try:  # numba-cuda's own class (numba >= 0.61 with the numba-cuda package); numba's built-in CUDA target uses numba's
    from numba.cuda.core.errors import NumbaPerformanceWarning as _CudaPerformanceWarning  # noqa: E402
except ImportError:
    _CudaPerformanceWarning = NumbaPerformanceWarning

_TPB = 32 if using_simulator() else 128  # threads per block (the simulator runs each thread as a Python thread)


# --------------------------------------------------------------------------------------------------
# device helpers (scalar tuples): the _cpu helpers' own bodies (``.py_func``) compiled for the device, so both
# backends run one piece of arithmetic
# --------------------------------------------------------------------------------------------------
_qmul = cuda.jit(device=True)(qmul_components.py_func)
_qexp = cuda.jit(device=True)(_cpu.qexp_components.py_func)
_qmatrix = cuda.jit(device=True)(_cpu.qmatrix_components.py_func)
_parabolic_vertex = cuda.jit(device=True)(_cpu.parabolic_vertex.py_func)
_sample_bilinear = cuda.jit(device=True)(_cpu.sample_bilinear.py_func)
_simplex_size = cuda.jit(device=True)(_cpu.simplex_size.py_func)
_spot_vote = cuda.jit(device=True)(_cpu.spot_vote.py_func)
_arc_kernel = cuda.jit(device=True)(_cpu.arc_kernel.py_func)


@cuda.jit(device=True)
def _qmul_exp(q, v0, v1, v2):
    e0, e1, e2, e3 = _qexp(v0, v1, v2)
    return _qmul(q[0], q[1], q[2], q[3], e0, e1, e2, e3)


@cuda.jit(device=True)
def _sym_distance(q1, q2, sym):
    best = 0.0
    for k in range(sym.shape[0]):
        p0, p1, p2, p3 = _qmul(sym[k, 0], sym[k, 1], sym[k, 2], sym[k, 3], q2[0], q2[1], q2[2], q2[3])
        d = abs(q1[0] * p0 + q1[1] * p1 + q1[2] * p2 + q1[3] * p3)
        if d > best:
            best = d
    if best > 1.0:
        best = 1.0
    return 2.0 * math.acos(best)


@cuda.jit(device=True)
def _parabolic_offset(hist, k, n):
    """:func:`._cpu.parabolic_offset` on the first ``n`` bins of ``hist`` (a shared array of MAX_BINS)."""
    return _parabolic_vertex(hist[(k - 1) % n], hist[k], hist[(k + 1) % n])


@cuda.jit(device=True)
def _image_score(q0, q1, q2, q3, g_c, F2, sub, n_sub, lam, sigma_s, q_min, q_max, power, img, center_row, center_col,
                 affine):
    """:func:`._cpu.image_score` over the reflections ``g_c[sub[:n_sub]]``."""
    R00, R01, R02, R10, R11, R12, R20, R21, R22 = _qmatrix(q0, q1, q2, q3)
    inv2ss = 1.0 / (2.0 * sigma_s * sigma_s)
    num = 0.0
    bn = 0.0
    for jj in range(n_sub):
        j = sub[jj]
        gx = g_c[j, 0] * R00 + g_c[j, 1] * R10 + g_c[j, 2] * R20
        gy = g_c[j, 0] * R01 + g_c[j, 1] * R11 + g_c[j, 2] * R21
        gz = g_c[j, 0] * R02 + g_c[j, 1] * R12 + g_c[j, 2] * R22
        r2 = gx * gx + gy * gy
        if r2 < q_min * q_min or r2 > q_max * q_max:
            continue
        s = -gz - 0.5 * lam * (r2 + gz * gz)
        e = s * s * inv2ss
        if e > 12.5:
            continue
        bb = (F2[j] * math.exp(-e)) ** power
        bn += bb * bb
        col = center_col + affine[0, 0] * gx + affine[0, 1] * gy
        row = center_row + affine[1, 0] * gx + affine[1, 1] * gy
        v = _sample_bilinear(img, row, col)
        if v != v:  # off the detector
            continue
        num += bb * v
    if bn <= 0:
        return 0.0
    return num / math.sqrt(bn)


@cuda.jit(device=True)
def _near_sphere(q, g_c, lam, sigma_s, tilt_margin, sub):
    """:func:`._cpu.near_sphere_subset` into ``sub``; returns the count."""
    R00, R01, R02, R10, R11, R12, R20, R21, R22 = _qmatrix(q[0], q[1], q[2], q[3])
    m = 0
    for j in range(g_c.shape[0]):
        gx = g_c[j, 0] * R00 + g_c[j, 1] * R10 + g_c[j, 2] * R20
        gy = g_c[j, 0] * R01 + g_c[j, 1] * R11 + g_c[j, 2] * R21
        gz = g_c[j, 0] * R02 + g_c[j, 1] * R12 + g_c[j, 2] * R22
        g2 = gx * gx + gy * gy + gz * gz
        s = -gz - 0.5 * lam * g2
        if abs(s) <= 5.0 * sigma_s + math.sqrt(g2) * tilt_margin:
            sub[m] = j
            m += 1
    return m


@cuda.jit(device=True)
def _nelder_mead(q0, g_c, F2, sub, n_sub, lam, sigma_s, q_min, q_max, power, img, center_row, center_col, affine,
                 init_step, max_eval, xtol, out_q):
    """:func:`._cpu.refine_orientation` after the subset/grid set-up; writes q into ``out_q``, returns the score."""
    simplex = cuda.local.array((4, 3), np.float64)
    tmp = cuda.local.array((4, 3), np.float64)
    vals = cuda.local.array(4, np.float64)
    tv = cuda.local.array(4, np.float64)
    order = cuda.local.array(4, np.int64)
    cen = cuda.local.array(3, np.float64)
    xr = cuda.local.array(3, np.float64)
    xe = cuda.local.array(3, np.float64)
    xc = cuda.local.array(3, np.float64)
    for k in range(4):
        for c in range(3):
            simplex[k, c] = 0.0
    for k in range(3):
        simplex[k + 1, k] = init_step
    for k in range(4):
        a0, a1, a2, a3 = _qmul_exp(q0, simplex[k, 0], simplex[k, 1], simplex[k, 2])
        vals[k] = -_image_score(a0, a1, a2, a3, g_c, F2, sub, n_sub, lam, sigma_s, q_min, q_max, power, img, center_row,
                                center_col, affine)
    n_eval = 4
    while n_eval < max_eval:
        # stable insertion argsort of 4 values (numba's np.argsort on short arrays)
        for k in range(4):
            order[k] = k
        for i in range(1, 4):
            kk = order[i]
            v = vals[kk]
            j = i
            while j > 0 and v < vals[order[j - 1]]:
                order[j] = order[j - 1]
                j -= 1
            order[j] = kk
        for k in range(4):
            tv[k] = vals[order[k]]
            for c in range(3):
                tmp[k, c] = simplex[order[k], c]
        for k in range(4):
            vals[k] = tv[k]
            for c in range(3):
                simplex[k, c] = tmp[k, c]
        if _simplex_size(simplex) < xtol:
            break
        for c in range(3):
            cen[c] = (simplex[0, c] + simplex[1, c] + simplex[2, c]) / 3.0
            xr[c] = cen[c] + (cen[c] - simplex[3, c])
        a0, a1, a2, a3 = _qmul_exp(q0, xr[0], xr[1], xr[2])
        fr = -_image_score(a0, a1, a2, a3, g_c, F2, sub, n_sub, lam, sigma_s, q_min, q_max, power, img, center_row,
                                center_col, affine)
        n_eval += 1
        if fr < vals[0]:
            for c in range(3):
                xe[c] = cen[c] + 2.0 * (cen[c] - simplex[3, c])
            a0, a1, a2, a3 = _qmul_exp(q0, xe[0], xe[1], xe[2])
            fe = -_image_score(a0, a1, a2, a3, g_c, F2, sub, n_sub, lam, sigma_s, q_min, q_max, power, img, center_row,
                                center_col, affine)
            n_eval += 1
            if fe < fr:
                for c in range(3):
                    simplex[3, c] = xe[c]
                vals[3] = fe
            else:
                for c in range(3):
                    simplex[3, c] = xr[c]
                vals[3] = fr
        elif fr < vals[2]:
            for c in range(3):
                simplex[3, c] = xr[c]
            vals[3] = fr
        else:
            if fr < vals[3]:
                for c in range(3):
                    xc[c] = cen[c] + 0.5 * (xr[c] - cen[c])
            else:
                for c in range(3):
                    xc[c] = cen[c] + 0.5 * (simplex[3, c] - cen[c])
            a0, a1, a2, a3 = _qmul_exp(q0, xc[0], xc[1], xc[2])
            fc = -_image_score(a0, a1, a2, a3, g_c, F2, sub, n_sub, lam, sigma_s, q_min, q_max, power, img, center_row,
                                center_col, affine)
            n_eval += 1
            if fc < min(fr, vals[3]):
                for c in range(3):
                    simplex[3, c] = xc[c]
                vals[3] = fc
            else:
                for k in range(1, 4):
                    for c in range(3):
                        simplex[k, c] = simplex[0, c] + 0.5 * (simplex[k, c] - simplex[0, c])
                    a0, a1, a2, a3 = _qmul_exp(q0, simplex[k, 0], simplex[k, 1], simplex[k, 2])
                    vals[k] = -_image_score(a0, a1, a2, a3, g_c, F2, sub, n_sub, lam, sigma_s, q_min, q_max, power, img, center_row,
                                center_col, affine)
                    n_eval += 1
    kb = 0
    for k in range(1, 4):
        if vals[k] < vals[kb]:
            kb = k
    a0, a1, a2, a3 = _qmul_exp(q0, simplex[kb, 0], simplex[kb, 1], simplex[kb, 2])
    if a0 < 0:
        a0, a1, a2, a3 = -a0, -a1, -a2, -a3
    out_q[0] = a0
    out_q[1] = a1
    out_q[2] = a2
    out_q[3] = a3
    return -vals[kb]


# --------------------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------------------
@cuda.jit
def _coarse_kernel(pk_r, pk_t, pk_a, counts, active, cands, offsets, sp_r, sp_t, sp_w, sp_norm, sigma_q, n_bins,
                   per_template, min_sep_bins, out_t, out_g, out_s):
    """Block (pattern i, candidate ic): histogram of :func:`._cpu.angular_correlation`, then the best angles."""
    n_cand = cands.shape[1]
    i = cuda.blockIdx.x // n_cand
    ic = cuda.blockIdx.x % n_cand
    tid = cuda.threadIdx.x
    nth = cuda.blockDim.x
    hist = cuda.shared.array(MAX_BINS, np.float64)
    if i >= pk_r.shape[0] or active[i] == 0:
        return
    t = cands[i, ic]
    s0 = offsets[t]
    s1 = offsets[t + 1]
    if s1 == s0 or sp_norm[t] <= 0:
        return
    n_p = counts[i]
    for k in range(tid, n_bins, nth):
        hist[k] = 0.0
    cuda.syncthreads()
    bw = TWO_PI / n_bins
    cut = 3.5 * sigma_q
    inv_c2 = 1.0 / (cut * cut)
    for p in range(tid, n_p, nth):
        rp = pk_r[i, p]
        # first spot with r >= rp - cut (spots sorted by radius)
        lo = s0
        hi = s1
        while lo < hi:
            mid = (lo + hi) // 2
            if sp_r[mid] < rp - cut:
                lo = mid + 1
            else:
                hi = mid
        j = lo
        while j < s1 and sp_r[j] <= rp + cut:
            wr, rbar, x = _spot_vote(rp, pk_t[i, p], pk_a[i, p], sp_r[j], sp_t[j], sp_w[j], bw, inv_c2)
            c = int(x + 0.5)
            for k in range(c - 3, c + 4):
                v = _arc_kernel(rbar, k, x, bw, inv_c2)
                if v > 0:
                    cuda.atomic.add(hist, k % n_bins, wr * v * v)
            j += 1
    cuda.syncthreads()
    if tid != 0:
        return
    a2 = 0.0
    for p in range(n_p):
        a2 += pk_a[i, p] * pk_a[i, p]
    a_norm = math.sqrt(a2)
    if a_norm <= 0:
        return
    # greedy: largest bins first, each at least min_sep_bins (circular) from those already taken
    for jj in range(per_template):
        best = -1
        bv = 0.0
        for k in range(n_bins):
            ok = True
            for q in range(jj):
                kq = out_t[i, ic * per_template + q]
                if kq < 0:
                    continue
                d = abs(k - int(out_g[i, ic * per_template + q]))
                d = min(d, n_bins - d)
                if d < min_sep_bins:
                    ok = False
                    break
            if ok and (best < 0 or hist[k] > bv):
                best = k
                bv = hist[k]
        if best < 0:
            break
        # out_g temporarily holds the bin (converted below, once all angles are chosen)
        out_t[i, ic * per_template + jj] = t
        out_g[i, ic * per_template + jj] = best
        out_s[i, ic * per_template + jj] = hist[best] / (a_norm * sp_norm[t])
    for jj in range(per_template):
        if out_t[i, ic * per_template + jj] >= 0:
            k = int(out_g[i, ic * per_template + jj])
            out_g[i, ic * per_template + jj] = (k + _parabolic_offset(hist, k, n_bins)) * bw


@cuda.jit
def _select_kernel(ts, gs, ss, active, base_q, sym, distinct_dist, n_keep, work, cq, cs, n_cq):
    """Thread per pattern: candidates in decreasing coarse score, symmetry-distinct ones kept (up to n_keep)."""
    i = cuda.grid(1)
    if i >= ts.shape[0]:
        return
    n_cq[i] = 0
    if active[i] == 0:
        return
    L = ts.shape[1]
    for k in range(L):
        work[i, k] = ss[i, k]
    q = cuda.local.array(4, np.float64)
    m = 0
    while m < n_keep:
        kb = -1
        for k in range(L):
            if work[i, k] > -2.0 and (kb < 0 or work[i, k] > work[i, kb]):
                kb = k
        if kb < 0 or ss[i, kb] <= 0 or ts[i, kb] < 0:
            break
        work[i, kb] = -3.0
        t = ts[i, kb]
        half = 0.5 * gs[i, kb]
        q[0], q[1], q[2], q[3] = _qmul(base_q[t, 0], base_q[t, 1], base_q[t, 2], base_q[t, 3],
                                       math.cos(half), 0.0, 0.0, math.sin(half))
        dup = False
        for j in range(m):
            if _sym_distance(q, cq[i, j], sym) < distinct_dist:
                dup = True
                break
        if dup:
            continue
        for c in range(4):
            cq[i, m, c] = q[c]
        cs[i, m] = ss[i, kb]
        m += 1
    n_cq[i] = m


@cuda.jit
def _score_kernel(cq, n_cq, n_keep, g_c, F2, all_refl, lam, sigma_s, q_min, q_max, power, imgs, centers, affine,
                  fq, fs):
    """Thread per (pattern, candidate): :func:`._cpu.image_score` of the coarse candidate (all reflections)."""
    tid = cuda.grid(1)
    i = tid // n_keep
    k = tid % n_keep
    if i >= cq.shape[0] or k >= n_cq[i]:
        return
    for c in range(4):
        fq[i, k, c] = cq[i, k, c]
    fs[i, k] = _image_score(cq[i, k, 0], cq[i, k, 1], cq[i, k, 2], cq[i, k, 3], g_c, F2, all_refl, g_c.shape[0], lam,
                            sigma_s, q_min, q_max, power, imgs[i], centers[i, 0], centers[i, 1], affine)


@cuda.jit(device=True)
def _argsort_desc(vals, m, order):
    """Stable descending argsort of vals[:m] into order[:m] (numba's np.argsort(-v) on short arrays)."""
    for k in range(m):
        order[k] = k
    for a in range(1, m):
        kk = order[a]
        v = -vals[kk]
        j = a
        while j > 0 and v < -vals[order[j - 1]]:
            order[j] = order[j - 1]
            j -= 1
        order[j] = kk


@cuda.jit
def _rank_kernel(fs, n_cq, first):
    """Thread per pattern: candidates in decreasing image score."""
    i = cuda.grid(1)
    if i >= fs.shape[0]:
        return
    _argsort_desc(fs[i], n_cq[i], first[i])


@cuda.jit
def _refine_kernel(cq, n_cq, first, n_refine, g_c, F2, lam, sigma_s, q_min, q_max, power, imgs, centers, affine,
                   init_step, max_eval, xtol, sub, fq, fs):
    """Thread per (pattern, rank < n_refine): :func:`._cpu.refine_orientation` of that candidate, kept if better."""
    tid = cuda.grid(1)
    i = tid // n_refine
    ii = tid % n_refine
    if i >= cq.shape[0] or ii >= n_cq[i]:
        return
    k = first[i, ii]
    q0 = cq[i, k]
    qb = cuda.local.array(4, np.float64)
    n_sub = _near_sphere(q0, g_c, lam, sigma_s, 3.0 * init_step + 0.005, sub[tid])
    s = _nelder_mead(q0, g_c, F2, sub[tid], n_sub, lam, sigma_s, q_min, q_max, power, imgs[i], centers[i, 0],
                     centers[i, 1], affine, init_step, max_eval, xtol, qb)
    if s > fs[i, k]:
        for c in range(4):
            fq[i, k, c] = qb[c]
        fs[i, k] = s


@cuda.jit
def _finish_kernel(fq, fs, n_cq, peaks, counts, imgs, centers, affine, n_best, sym, rel_dist, distinct_dist, order2,
                   out_q, out_s, out_r, out_cq, out_cs):
    """Thread per pattern: ranking, reliability, the n_best candidates (more than rel_dist apart: distinct hypotheses), scores normalised by the image
    norm at the detected peaks (as :func:`._cpu.index_one`)."""
    i = cuda.grid(1)
    if i >= fq.shape[0]:
        return
    out_q[i, 0] = 1.0
    m = n_cq[i]
    if m == 0:
        return
    img = imgs[i]
    ky = img.shape[0]
    kx = img.shape[1]
    pn = 0.0
    for p in range(counts[i]):
        col = centers[i, 1] + affine[0, 0] * peaks[i, p, 0] + affine[0, 1] * peaks[i, p, 1]
        row = centers[i, 0] + affine[1, 0] * peaks[i, p, 0] + affine[1, 1] * peaks[i, p, 1]
        ir = min(max(int(row + 0.5), 0), ky - 1)
        ic = min(max(int(col + 0.5), 0), kx - 1)
        pn += img[ir, ic] * img[ir, ic]
    pn = math.sqrt(pn) if pn > 0 else 1.0
    _argsort_desc(fs[i], m, order2[i])
    b = order2[i, 0]
    for c in range(4):
        out_q[i, c] = fq[i, b, c]
    q1 = fs[i, b]
    q2 = 0.0
    for a in range(m):
        k = order2[i, a]
        if k != b and _sym_distance(fq[i, b], fq[i, k], sym) > rel_dist:
            q2 = fs[i, k]
            break
    rel = 100.0 * (1.0 - q2 / q1) if q1 > 0 else 0.0
    out_s[i] = min(q1 / pn, 1.0)
    out_r[i] = min(max(rel, 0.0), 100.0)
    nb_out = 0
    for a in range(m):
        k = order2[i, a]
        dup = False
        for j in range(nb_out):
            if _sym_distance(fq[i, k], out_cq[i, j], sym) <= rel_dist:
                dup = True
                break
        if dup:
            continue
        for c in range(4):
            out_cq[i, nb_out, c] = fq[i, k, c]
        out_cs[i, nb_out] = min(fs[i, k] / pn, 1.0)
        nb_out += 1
        if nb_out == n_best:
            break


# --------------------------------------------------------------------------------------------------
# host side
# --------------------------------------------------------------------------------------------------
def _blocks(n: int, tpb: int = _TPB) -> int:
    return max(1, (n + tpb - 1) // tpb)


def _launch(kernel, grid: int, block: int, *args) -> None:
    with warnings.catch_warnings():
        # small chunks under-fill a large GPU; that is expected, not a problem to report
        warnings.simplefilter("ignore", NumbaPerformanceWarning)
        warnings.simplefilter("ignore", _CudaPerformanceWarning)
        kernel[grid, block](*args)


def _sorted_peaks(peaks: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pattern, the valid peaks sorted by radius: (r, θ, amplitude), each (n, max_peaks)."""
    P = peaks.shape[1]
    x = peaks[:, :, 0]
    y = peaks[:, :, 1]
    r = np.sqrt(x * x + y * y)
    valid = np.arange(P)[None, :] < counts[:, None]
    order = np.argsort(np.where(valid, r, np.inf), axis=1, kind="stable")
    rs = np.take_along_axis(r, order, 1)
    ts = np.arctan2(np.take_along_axis(y, order, 1), np.take_along_axis(x, order, 1))
    As = np.take_along_axis(peaks[:, :, 2], order, 1)
    return (np.ascontiguousarray(np.where(valid, rs, 0.0)), np.ascontiguousarray(np.where(valid, ts, 0.0)),
            np.ascontiguousarray(np.where(valid, As, 0.0)))


def _f64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def _i64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int64)


def _check_bins(n_bins: int) -> None:
    if not 1 <= n_bins <= MAX_BINS:
        raise ParameterError(f"n_angles must be between 1 and {MAX_BINS} on the GPU backend, got {n_bins}")


def _coarse_device(d_r, d_t, d_a, d_counts, d_active, d_cands, d_lib, sigma_q, n_bins, per_template, min_sep, n):
    K = d_cands.shape[1]
    L = K * per_template
    d_ts = cuda.to_device(np.full((n, L), -1, np.int64))
    d_gs = cuda.to_device(np.zeros((n, L)))
    d_ss = cuda.to_device(np.full((n, L), -1.0))
    if n * K:
        _launch(_coarse_kernel, n * K, _TPB, d_r, d_t, d_a, d_counts, d_active, d_cands, *d_lib, float(sigma_q),
                int(n_bins), int(per_template), int(min_sep), d_ts, d_gs, d_ss)
    return d_ts, d_gs, d_ss


def _library_device(offsets, sp_r, sp_t, sp_w, sp_norm) -> list:
    return [cuda.to_device(_i64(offsets)), cuda.to_device(_f64(sp_r)), cuda.to_device(_f64(sp_t)),
            cuda.to_device(_f64(sp_w)), cuda.to_device(_f64(sp_norm))]


def coarse_search_gpu(peaks, counts, cands, offsets, sp_r, sp_t, sp_w, sp_norm, sigma_q, n_bins, per_template,
                      min_sep_bins):
    """:func:`._cpu.coarse_search` for every pattern of a chunk at once.

    peaks: (n, max_peaks, 3) (qx, qy, amplitude) in any order, counts: (n,), cands: (n, K).
    Returns (template, γ, score) arrays, each (n, K·per_template), in the CPU kernel's layout.
    """
    _check_bins(int(n_bins))
    peaks = _f64(peaks)
    counts = _i64(counts)
    n = peaks.shape[0]
    r, t, a = _sorted_peaks(peaks, counts)
    d_ts, d_gs, d_ss = _coarse_device(cuda.to_device(r), cuda.to_device(t), cuda.to_device(a), cuda.to_device(counts),
                                      cuda.to_device(np.ones(n, np.int8)), cuda.to_device(_i64(cands)),
                                      _library_device(offsets, sp_r, sp_t, sp_w, sp_norm), sigma_q, n_bins,
                                      per_template, min_sep_bins, n)
    return d_ts.copy_to_host(), d_gs.copy_to_host(), d_ss.copy_to_host()


def image_score_gpu(qs, pattern_index, imgs, centers, affine, g_c, F2, lam, sigma_s, q_min, q_max, power):
    """:func:`._cpu.image_score` of orientation ``qs[t]`` (T, 4) on image ``imgs[pattern_index[t]]`` (all
    reflections). Returns (T,) scores."""
    qs = _f64(qs)
    T = len(qs)
    d_fq = cuda.to_device(np.zeros((T, 1, 4)))
    d_fs = cuda.to_device(np.zeros((T, 1)))
    idx = _i64(pattern_index)
    if T:
        _launch(_score_kernel, _blocks(T), _TPB, cuda.to_device(qs.reshape(T, 1, 4)), cuda.to_device(np.ones(T, np.int64)),
                1, cuda.to_device(_f64(g_c)), cuda.to_device(_f64(F2)), cuda.to_device(np.arange(len(g_c), dtype=np.int64)),
                float(lam), float(sigma_s), float(q_min), float(q_max), float(power),
                cuda.to_device(np.ascontiguousarray(np.asarray(imgs)[idx])), cuda.to_device(_f64(centers)[idx]),
                cuda.to_device(_f64(affine)), d_fq, d_fs)
    return d_fs.copy_to_host()[:, 0]


def refine_gpu(q0, imgs, centers, affine, g_c, F2, lam, sigma_s, q_min, q_max, power, init_step, max_eval, xtol):
    """:func:`._cpu.refine_orientation` of start ``q0[i]`` (n, 4) on image ``imgs[i]``, all at once.

    Returns (q (n, 4), score (n,)); like the CPU kernel, the result is the optimum even when it scores below
    the start."""
    q0 = _f64(q0)
    n = len(q0)
    d_fq = cuda.to_device(np.zeros((n, 1, 4)))
    d_fs = cuda.to_device(np.full((n, 1), -np.inf))  # keep whatever the refinement returns
    if n:
        _launch(_refine_kernel, _blocks(n), _TPB, cuda.to_device(q0.reshape(n, 1, 4)), cuda.to_device(np.ones(n, np.int64)),
                cuda.to_device(np.zeros((n, 1), np.int64)), 1, cuda.to_device(_f64(g_c)), cuda.to_device(_f64(F2)),
                float(lam), float(sigma_s), float(q_min), float(q_max), float(power),
                cuda.to_device(np.ascontiguousarray(imgs)), cuda.to_device(_f64(centers)), cuda.to_device(_f64(affine)),
                float(init_step), int(max_eval), float(xtol), cuda.device_array((n, max(len(g_c), 1)), np.int64),
                d_fq, d_fs)
    return d_fq.copy_to_host()[:, 0], d_fs.copy_to_host()[:, 0]


def index_chunk_gpu(
    peaks, counts, imgs, centers, affine, cands, base_q, offsets, sp_r, sp_t, sp_w, sp_norm, sym, g_c, F2,
    lam, sigma_s, sigma_coarse, q_min, q_max, power, n_bins, per_template, n_keep,
    n_refine, n_best, rel_dist, distinct_dist, init_step, max_eval, xtol, min_peaks,
):
    """Index every pattern of a chunk on the GPU: the inputs and outputs of :func:`._cpu.index_chunk`.

    peaks: (n, max_peaks, 3) rows (qx, qy, amplitude) in the sample frame; counts: (n,) valid rows;
    imgs: (n, ky, kx) processed images; centers: (n, 2) direct-beam centres (row, col); affine: (2, 2) sample q →
    detector (dcol, drow); cands: (n, K) candidate templates from the prefilter. Returns (q (n, 4),
    correlation index (n,), reliability (n,), candidate q (n, n_best, 4), candidate scores (n, n_best)).

    Device memory besides the inputs (images: n·ky·kx·itemsize): about
    n·(K·per_template·32 + n_keep·80 + n_refine·n_reflections·8) bytes of scratch.
    """
    n_bins = int(n_bins)
    _check_bins(n_bins)
    peaks = _f64(peaks)
    counts = _i64(counts)
    cands = _i64(cands)
    n = peaks.shape[0]
    n_refine, n_best, per_template = int(n_refine), int(n_best), int(per_template)
    n_keep = max(int(n_keep), n_best, n_refine)
    min_sep = max(1, int(rel_dist / (TWO_PI / n_bins)))
    active = (counts >= int(min_peaks)).astype(np.int8)

    # host → device, once per chunk
    r, t, a = _sorted_peaks(peaks, counts)
    d_peaks = cuda.to_device(peaks)
    d_counts = cuda.to_device(counts)
    d_imgs = cuda.to_device(np.ascontiguousarray(imgs))
    d_centers = cuda.to_device(_f64(centers))
    d_affine = cuda.to_device(_f64(affine))
    d_base = cuda.to_device(_f64(base_q))
    d_sym = cuda.to_device(_f64(sym))
    d_g = cuda.to_device(_f64(g_c))
    d_F2 = cuda.to_device(_f64(F2))

    # 1. coarse search, 2. distinct candidates
    d_ts, d_gs, d_ss = _coarse_device(cuda.to_device(r), cuda.to_device(t), cuda.to_device(a), d_counts,
                                      cuda.to_device(active), cuda.to_device(cands),
                                      _library_device(offsets, sp_r, sp_t, sp_w, sp_norm), sigma_coarse, n_bins,
                                      per_template, min_sep, n)
    L = d_ts.shape[1]
    d_cq = cuda.to_device(np.zeros((n, n_keep, 4)))
    d_cs = cuda.to_device(np.full((n, n_keep), -1.0))
    d_ncq = cuda.to_device(np.zeros(n, np.int64))
    if n:
        _launch(_select_kernel, _blocks(n), _TPB, d_ts, d_gs, d_ss, cuda.to_device(active), d_base, d_sym,
                float(distinct_dist), n_keep, cuda.device_array((n, max(L, 1)), np.float64), d_cq, d_cs, d_ncq)
    # 3. every candidate on the image score, 4. the best n_refine refined
    d_fq = cuda.to_device(np.zeros((n, n_keep, 4)))
    d_fs = cuda.to_device(np.zeros((n, n_keep)))
    d_order = cuda.device_array((n, n_keep), np.int64)
    if n:
        _launch(_score_kernel, _blocks(n * n_keep), _TPB, d_cq, d_ncq, n_keep, d_g, d_F2,
                cuda.to_device(np.arange(len(g_c), dtype=np.int64)), float(lam), float(sigma_s), float(q_min),
                float(q_max), float(power), d_imgs, d_centers, d_affine, d_fq, d_fs)
        _launch(_rank_kernel, _blocks(n), _TPB, d_fs, d_ncq, d_order)
        n_ref = min(n_refine, n_keep)
        _launch(_refine_kernel, _blocks(n * n_ref), _TPB, d_cq, d_ncq, d_order, n_ref, d_g, d_F2, float(lam),
                float(sigma_s), float(q_min), float(q_max), float(power), d_imgs, d_centers, d_affine,
                float(init_step), int(max_eval), float(xtol), cuda.device_array((n * n_ref, max(len(g_c), 1)), np.int64),
                d_fq, d_fs)
    # 5. ranking, reliability, normalisation
    d_out_q = cuda.to_device(np.zeros((n, 4)))
    d_out_s = cuda.to_device(np.zeros(n))
    d_out_r = cuda.to_device(np.zeros(n))
    d_out_cq = cuda.to_device(np.zeros((n, n_best, 4)))
    d_out_cs = cuda.to_device(np.zeros((n, n_best)))
    if n:
        _launch(_finish_kernel, _blocks(n), _TPB, d_fq, d_fs, d_ncq, d_peaks, d_counts, d_imgs, d_centers, d_affine,
                n_best, d_sym, float(rel_dist), float(distinct_dist), d_order, d_out_q, d_out_s, d_out_r, d_out_cq,
                d_out_cs)
    # device → host, once per chunk
    return (d_out_q.copy_to_host(), d_out_s.copy_to_host(), d_out_r.copy_to_host(), d_out_cq.copy_to_host(),
            d_out_cs.copy_to_host())
