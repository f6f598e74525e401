"""Numba CPU kernels of the matching core. Slow references: :mod:`._reference`.

Conventions: quaternions scalar-first, orix convention (sample → crystal). A template spot at polar angle θ_j
(γ = 0) appears at θ_j − γ for the orientation O0 ∘ Rz(γ); so a pattern peak at θ_p votes for γ = θ_j − θ_p.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from ..crystal.symmetry import qmul

TWO_PI = 2.0 * math.pi


class ChunkInputs(NamedTuple):
    """The inputs of :func:`index_chunk` (and of ``_reference.index_chunk``, ``_gpu.index_chunk_gpu``), by name:
    built with keywords by the caller and passed as ``index_chunk(*inputs)``, so no argument goes by position.

    Angles in radians, reciprocal lengths in 1/Å, detector positions in pixels.
    """

    peaks: np.ndarray  # (n, max_peaks, 3) rows (qx, qy, amplitude) in the sample frame
    counts: np.ndarray  # (n,) valid peak rows
    imgs: np.ndarray  # (n, ky, kx) processed images
    centers: np.ndarray  # (n, 2) direct-beam centres (row, col)
    affine: np.ndarray  # (2, 2) sample q → detector (dcol, drow)
    cands: np.ndarray  # (n, K) prefilter candidate templates
    base_q: np.ndarray  # (T, 4) template orientations O0
    offsets: np.ndarray  # (T+1,) CSR offsets of the template spots
    sp_r: np.ndarray  # (S,) spot radii, 1/Å
    sp_t: np.ndarray  # (S,) spot polar angles at γ = 0
    sp_w: np.ndarray  # (S,) spot weights
    sp_norm: np.ndarray  # (T,) template norms
    sym: np.ndarray  # (m, 4) proper Laue group rotations
    g_c: np.ndarray  # (R, 3) reflections, crystal frame, 1/Å
    F2: np.ndarray  # (R,) |F|²
    lam: float  # electron wavelength, Å
    sigma_s: float  # excitation error width, 1/Å
    sigma_coarse: float  # coarse-search Gaussian width
    q_min: float
    q_max: float
    power: float  # intensity power of the model
    n_bins: int  # in-plane angle bins
    per_template: int  # in-plane peaks kept per template
    n_keep: int  # candidates scored on the image
    n_refine: int  # candidates refined
    n_best: int  # distinct candidates reported
    rel_dist: float  # reliability distance
    distinct_dist: float  # candidate separation
    init_step: float  # Nelder–Mead initial step
    max_eval: int
    xtol: float
    min_peaks: int


# --------------------------------------------------------------------------------------------------
# quaternion helpers
# --------------------------------------------------------------------------------------------------
@nb.njit(cache=True, nogil=True)
def qexp_components(v0, v1, v2):
    """Unit quaternion ``(w, x, y, z)`` of the rotation vector (v0, v1, v2) (axis · angle, radians).

    Scalars in, a tuple out, no array: :mod:`._gpu` compiles this same body (``.py_func``) as a CUDA device function.
    """
    ang = math.sqrt(v0 * v0 + v1 * v1 + v2 * v2)
    if ang < 1e-15:
        o0 = 1.0
        o1 = 0.5 * v0
        o2 = 0.5 * v1
        o3 = 0.5 * v2
    else:
        s = math.sin(0.5 * ang) / ang
        o0 = math.cos(0.5 * ang)
        o1 = s * v0
        o2 = s * v1
        o3 = s * v2
    n = math.sqrt(o0**2 + o1**2 + o2**2 + o3**2)
    return o0 / n, o1 / n, o2 / n, o3 / n


@nb.njit(cache=True, nogil=True)
def qexp(v):
    """Unit quaternion of the rotation vector v (axis · angle, radians); new ``(4,)``."""
    out = np.empty(4)
    out[0], out[1], out[2], out[3] = qexp_components(v[0], v[1], v[2])
    return out


@nb.njit(cache=True, nogil=True)
def qmatrix_components(a, b, c, d):
    """The nine entries ``R00, R01, R02, R10, ..., R22`` (row-major) of :func:`qmatrix` of the unit quaternion
    (a, b, c, d). Scalars in, a tuple out: :mod:`._gpu` compiles this same body as a CUDA device function."""
    return (
        a * a + b * b - c * c - d * d,
        2 * (b * c - a * d),
        2 * (b * d + a * c),
        2 * (b * c + a * d),
        a * a - b * b + c * c - d * d,
        2 * (c * d - a * b),
        2 * (b * d - a * c),
        2 * (c * d + a * b),
        a * a - b * b - c * c + d * d,
    )


@nb.njit(cache=True, nogil=True)
def qmatrix(q):
    """R with v_crystal = R @ v_sample (rows: crystal axes in sample coordinates); new ``(3, 3)``."""
    R = np.empty((3, 3))
    (R[0, 0], R[0, 1], R[0, 2], R[1, 0], R[1, 1], R[1, 2], R[2, 0], R[2, 1],
     R[2, 2]) = qmatrix_components(q[0], q[1], q[2], q[3])
    return R


@nb.njit(cache=True, nogil=True)
def sym_distance(q1, q2, sym):
    """Smallest rotation angle (rad) between orientations q1 and q2 over crystal symmetry ops ``sym`` (k, 4):
    min_s angle(q1, s ⊗ q2)."""
    best = 0.0
    for k in range(sym.shape[0]):
        p = qmul(sym[k], q2)
        d = abs(q1[0] * p[0] + q1[1] * p[1] + q1[2] * p[2] + q1[3] * p[3])
        if d > best:
            best = d
    if best > 1.0:
        best = 1.0
    return 2.0 * math.acos(best)


@nb.njit(cache=True, nogil=True)
def near_any(q, qs, m, sym, dist):
    """True when ``q`` lies within ``dist`` (rad, over the crystal symmetry ``sym``) of one of the first ``m``
    rows of ``qs``."""
    for j in range(m):
        if sym_distance(q, qs[j], sym) < dist:
            return True
    return False


@nb.njit(cache=True, nogil=True)
def template_orientation(base_q, gamma):
    """O = O0 ∘ Rz(γ)."""
    rz = np.zeros(4)
    rz[0] = math.cos(0.5 * gamma)
    rz[3] = math.sin(0.5 * gamma)
    return qmul(base_q, rz)


# --------------------------------------------------------------------------------------------------
# coarse search: in-plane correlation of one template with one peak list
# --------------------------------------------------------------------------------------------------
@nb.njit(cache=True, nogil=True)
def angular_correlation(pk_r, pk_t, pk_a, sp_r, sp_t, sp_w, sigma_q, n_bins):
    """Histogram over in-plane angle γ (n_bins over [0, 2π)) of Σ a_p w_j k(|q_p − q_j(γ)|).

    k is a compact kernel of width ``sigma_q`` (1/Å): k(d) = (1 − d²/c²)² for d < c = 3.5σ (≈ the Gaussian
    exp(−d²/(4σ²)) in shape, no exp per term). The distance is split into a radial part and an arc length
    r̄·Δγ spread over at most ±3 bins. Both spot lists must be sorted by radius.
    """
    hist = np.zeros(n_bins)
    angular_correlation_into(hist, pk_r, pk_t, pk_a, sp_r, sp_t, sp_w, sigma_q)
    return hist


@nb.njit(cache=True, nogil=True, inline="always")
def spot_vote(rp, tp, ap, rj, tj, wj, bw, inv_c2):
    """The vote of a pattern peak (radius ``rp`` 1/Å, polar angle ``tp`` rad, amplitude ``ap``) for a template spot
    (``rj``, ``tj``, weight ``wj``) within the radial cut c (``inv_c2`` = 1/c²): ``(wr, rbar, x)`` with
    wr = a_p w_j (1 − Δr²/c²)² its radial weight, rbar the mean radius (arc length per radian) and x = γ / ``bw`` its
    in-plane angle γ = θ_j − θ_p ∈ [0, 2π) in bins. Leaf code: :mod:`._gpu` compiles this same body for the device.
    """
    dr = rp - rj
    u = 1.0 - dr * dr * inv_c2
    g = tj - tp
    g = g - TWO_PI * math.floor(g / TWO_PI)
    return ap * wj * u * u, 0.5 * (rp + rj), g / bw


@nb.njit(cache=True, nogil=True, inline="always")
def arc_kernel(rbar, k, x, bw, inv_c2):
    """1 − arc²/c² for the arc length rbar·(k − x)·bw between bin ``k`` and the vote at ``x`` bins (the kernel's
    square root; ≤ 0 beyond c)."""
    arc = rbar * (k - x) * bw
    return 1.0 - arc * arc * inv_c2


@nb.njit(cache=True, nogil=True)
def angular_correlation_into(hist, pk_r, pk_t, pk_a, sp_r, sp_t, sp_w, sigma_q):
    """:func:`angular_correlation` written into ``hist`` (its length is the number of bins; reused buffer)."""
    n_bins = hist.shape[0]
    hist[:] = 0.0
    bw = TWO_PI / n_bins
    cut = 3.5 * sigma_q
    inv_c2 = 1.0 / (cut * cut)
    n_p = pk_r.shape[0]
    n_s = sp_r.shape[0]
    j0 = 0
    for p in range(n_p):
        rp = pk_r[p]
        while j0 < n_s and sp_r[j0] < rp - cut:
            j0 += 1
        j = j0
        while j < n_s and sp_r[j] <= rp + cut:
            wr, rbar, x = spot_vote(rp, pk_t[p], pk_a[p], sp_r[j], sp_t[j], sp_w[j], bw, inv_c2)
            c = int(x + 0.5)
            for k in range(c - 3, c + 4):
                v = arc_kernel(rbar, k, x, bw, inv_c2)
                if v > 0:
                    hist[k % n_bins] += wr * v * v
            j += 1


@nb.njit(cache=True, nogil=True)
def top_peaks_circular(hist, n_keep, min_sep_bins):
    """Indices of up to ``n_keep`` largest values of a circular histogram, pairwise ≥ ``min_sep_bins`` apart
    (greedy from the largest down; ties go to the lower index). One linear scan per kept peak, no sort."""
    n = hist.shape[0]
    out = np.full(n_keep, -1, np.int64)
    for m in range(n_keep):
        best = -1
        bv = 0.0
        for k in range(n):
            if best >= 0 and hist[k] <= bv:
                continue
            ok = True
            for j in range(m):
                d = abs(k - out[j])
                d = min(d, n - d)
                if d < min_sep_bins:
                    ok = False
                    break
            if ok:
                best = k
                bv = hist[k]
        if best < 0:
            break
        out[m] = best
    return out


@nb.njit(cache=True, nogil=True)
def parabolic_vertex(a, b, c):
    """Position of the vertex of the parabola through (−1, a), (0, b), (1, c), clipped to [−0.5, 0.5]; 0 unless it
    opens downward (b is a maximum). :mod:`._gpu` compiles this same body as a CUDA device function."""
    den = a - 2 * b + c
    if den >= 0:
        return 0.0
    off = 0.5 * (a - c) / den
    return min(max(off, -0.5), 0.5)


@nb.njit(cache=True, nogil=True)
def parabolic_offset(hist, k):
    """Sub-bin offset of the peak at bin ``k`` of the circular histogram ``hist`` (:func:`parabolic_vertex`)."""
    n = hist.shape[0]
    return parabolic_vertex(hist[(k - 1) % n], hist[k], hist[(k + 1) % n])


@nb.njit(cache=True, nogil=True)
def coarse_search(pk_r, pk_t, pk_a, cand, offsets, sp_r, sp_t, sp_w, sp_norm, sigma_q, n_bins, per_template, min_sep_bins):
    """Correlate one peak list with candidate templates ``cand``; returns (template, γ, score) of the
    ``per_template`` best in-plane angles of each, as arrays of length len(cand)·per_template (score −1 = none)."""
    a_norm = math.sqrt(np.sum(pk_a * pk_a))
    m = cand.shape[0] * per_template
    out_t = np.full(m, -1, np.int64)
    out_g = np.zeros(m)
    out_s = np.full(m, -1.0)
    if a_norm <= 0:
        return out_t, out_g, out_s
    bw = TWO_PI / n_bins
    h = np.empty(n_bins)
    for i in range(cand.shape[0]):
        t = cand[i]
        s0 = offsets[t]
        s1 = offsets[t + 1]
        if s1 == s0 or sp_norm[t] <= 0:
            continue
        angular_correlation_into(h, pk_r, pk_t, pk_a, sp_r[s0:s1], sp_t[s0:s1], sp_w[s0:s1], sigma_q)
        ks = top_peaks_circular(h, per_template, min_sep_bins)
        for j in range(per_template):
            k = ks[j]
            if k < 0:
                continue
            idx = i * per_template + j
            out_t[idx] = t
            out_g[idx] = (k + parabolic_offset(h, k)) * bw
            out_s[idx] = h[k] / (a_norm * sp_norm[t])
    return out_t, out_g, out_s


# --------------------------------------------------------------------------------------------------
# refinement: continuous optimisation of all three angles against the kinematic model
# --------------------------------------------------------------------------------------------------
@nb.njit(cache=True, nogil=True, inline="always")
def sample_bilinear(img, row, col):
    """Bilinear value of ``img`` at the sub-pixel position (row, col); NaN off the detector."""
    ky = img.shape[0]
    kx = img.shape[1]
    if row < 0 or col < 0 or row > ky - 1 or col > kx - 1:
        return np.nan
    r0 = min(int(row), ky - 2)
    c0 = min(int(col), kx - 2)
    fr = row - r0
    fc = col - c0
    return (img[r0, c0] * (1 - fr) * (1 - fc) + img[r0, c0 + 1] * (1 - fr) * fc
            + img[r0 + 1, c0] * fr * (1 - fc) + img[r0 + 1, c0 + 1] * fr * fc)


@nb.njit(cache=True, nogil=True, inline="always")
def sample_at_q(img, center_row, center_col, affine, qx, qy):
    """:func:`sample_bilinear` of ``img`` at the detector position of the sample-frame vector (qx, qy) (1/Å):
    ``affine`` maps it to the offsets (dcol, drow) from the direct beam at (center_row, center_col); NaN off the
    detector."""
    return sample_bilinear(img, center_row + affine[1, 0] * qx + affine[1, 1] * qy,
                           center_col + affine[0, 0] * qx + affine[0, 1] * qy)


@nb.njit(cache=True, nogil=True, inline="always")
def excitation_error(g_c, j, R, lam):
    """``(s, gz, gg)`` of reflection ``g_c[j]`` (crystal frame, 1/Å) for orientation matrix ``R`` (:func:`qmatrix`):
    s = −g_z − λ|g|²/2 its excitation error (1/Å), g_z its component along the beam and gg = |g|² (rotation-invariant;
    |g_xy|² = gg − g_z²). The test whether a reflection is excited at all costs one row of R: most stop here."""
    g0 = g_c[j, 0]
    g1 = g_c[j, 1]
    g2 = g_c[j, 2]
    gz = g0 * R[0, 2] + g1 * R[1, 2] + g2 * R[2, 2]
    gg = g0 * g0 + g1 * g1 + g2 * g2
    return -gz - 0.5 * lam * gg, gz, gg


@nb.njit(cache=True, nogil=True, inline="always")
def in_plane_position(g_c, j, R):
    """Sample-frame position ``(gx, gy)`` (1/Å) of the spot of reflection ``g_c[j]`` for orientation matrix ``R``."""
    g0 = g_c[j, 0]
    g1 = g_c[j, 1]
    g2 = g_c[j, 2]
    return g0 * R[0, 0] + g1 * R[1, 0] + g2 * R[2, 0], g0 * R[0, 1] + g1 * R[1, 1] + g2 * R[2, 1]


@nb.njit(cache=True, nogil=True, inline="always")
def template_sums(R, g_c, F2, lam, sigma_s, q_min, q_max, power, img, center_row, center_col, affine, fast_powers):
    """The sums behind :func:`image_score` and :func:`solution_quality` for orientation matrix ``R``: ``(Σ_j b_j P_j,
    Σ_j b_j², Σ_j P_j²)`` over the kinematic spots j with s_j²/(2σ_s²) ≤ 12.5 (within 5σ_s of the Ewald sphere)
    projecting between q_min and q_max (1/Å), b_j = (F²_j exp(−s_j²/(2σ_s²)))^power, P_j the image sampled
    bilinearly at the spot (:func:`sample_at_q`; spots off the detector add to Σ b_j² only).

    ``fast_powers``: the powers 0.5 and 1 by sqrt/exp instead of ``**`` (image_score, the refinement's objective:
    faster, equal up to rounding); solution_quality takes ``**`` for every power.
    """
    inv2ss = 1.0 / (2.0 * sigma_s * sigma_s)
    qmin2 = q_min * q_min
    qmax2 = q_max * q_max
    num = 0.0
    bn = 0.0
    pn = 0.0
    for j in range(g_c.shape[0]):
        s, gz, gg = excitation_error(g_c, j, R, lam)
        e = s * s * inv2ss
        if e > 12.5:
            continue
        r2 = gg - gz * gz
        if r2 < qmin2 or r2 > qmax2:
            continue
        if fast_powers and power == 0.5:
            b = math.sqrt(F2[j]) * math.exp(-0.5 * e)
        elif fast_powers and power == 1.0:
            b = F2[j] * math.exp(-e)
        else:
            b = (F2[j] * math.exp(-e)) ** power
        bn += b * b
        gx, gy = in_plane_position(g_c, j, R)
        v = sample_at_q(img, center_row, center_col, affine, gx, gy)
        if v != v:  # off the detector
            continue
        num += b * v
        pn += v * v
    return num, bn, pn


@nb.njit(cache=True, nogil=True)
def image_score(q, g_c, F2, lam, sigma_s, q_min, q_max, power, img, center_row, center_col, affine):
    """Σ_j b_j P(x_j) / ‖b‖: the processed image P sampled (bilinear) at the detector positions x_j of the
    kinematic spots of orientation q, b_j = (F²_j exp(−s_j²/(2σ_s²)))^power, over reflections projecting between
    q_min and q_max. ``affine`` maps sample (qx, qy) to detector offsets (dcol, drow). Every count in the pattern
    contributes, including spots too weak to be detected as peaks.
    """
    num, bn, _ = template_sums(qmatrix(q), g_c, F2, lam, sigma_s, q_min, q_max, power, img, center_row, center_col,
                               affine, True)
    if bn <= 0:
        return 0.0
    return num / math.sqrt(bn)


@nb.njit(cache=True, nogil=True)
def near_sphere_subset(q, g_c, lam, sigma_s, tilt_margin):
    """Indices of reflections that can come within 5σ_s of the Ewald sphere for tilts up to ``tilt_margin`` rad."""
    R = qmatrix(q)
    keep = np.empty(g_c.shape[0], np.int64)
    m = 0
    for j in range(g_c.shape[0]):
        gx = g_c[j, 0] * R[0, 0] + g_c[j, 1] * R[1, 0] + g_c[j, 2] * R[2, 0]
        gy = g_c[j, 0] * R[0, 1] + g_c[j, 1] * R[1, 1] + g_c[j, 2] * R[2, 1]
        gz = g_c[j, 0] * R[0, 2] + g_c[j, 1] * R[1, 2] + g_c[j, 2] * R[2, 2]
        g2 = gx * gx + gy * gy + gz * gz
        s = -gz - 0.5 * lam * g2
        if abs(s) <= 5.0 * sigma_s + math.sqrt(g2) * tilt_margin:
            keep[m] = j
            m += 1
    return keep[:m]


@nb.njit(cache=True, nogil=True)
def simplex_size(simplex):
    """Largest distance from the first vertex (row 0, the best after sorting) to the other vertices of a
    Nelder–Mead simplex ``(k + 1, k)``: the convergence test of :func:`refine_orientation`. Leaf code, no array
    allocation: :mod:`._gpu` compiles this same body as a CUDA device function."""
    size = 0.0
    for k in range(1, simplex.shape[0]):
        d = 0.0
        for c in range(simplex.shape[1]):
            d += (simplex[k, c] - simplex[0, c]) ** 2
        size = max(size, math.sqrt(d))
    return size


@nb.njit(cache=True, nogil=True)
def refine_orientation(q0, g_c, F2, lam, sigma_s, q_min, q_max, power, img, center_row, center_col, affine, init_step, max_eval, xtol):
    """Nelder–Mead over a rotation vector δ (sample frame, radians): q = q0 ⊗ exp(δ), maximising
    :func:`image_score`. Returns (q_best, score_best, n_evaluations)."""
    sub = near_sphere_subset(q0, g_c, lam, sigma_s, 3.0 * init_step + 0.005)
    gs = np.empty((sub.shape[0], 3))
    fs = np.empty(sub.shape[0])
    for i in range(sub.shape[0]):
        gs[i] = g_c[sub[i]]
        fs[i] = F2[sub[i]]
    simplex = np.zeros((4, 3))
    for k in range(3):
        simplex[k + 1, k] = init_step
    vals = np.empty(4)
    for k in range(4):
        vals[k] = -image_score(qmul(q0, qexp(simplex[k])), gs, fs, lam, sigma_s, q_min, q_max, power, img, center_row, center_col, affine)
    n_eval = 4
    while n_eval < max_eval:
        order = np.argsort(vals)
        simplex = simplex[order].copy()
        vals = vals[order].copy()
        if simplex_size(simplex) < xtol:
            break
        cen = (simplex[0] + simplex[1] + simplex[2]) / 3.0
        xr = cen + (cen - simplex[3])
        fr = -image_score(qmul(q0, qexp(xr)), gs, fs, lam, sigma_s, q_min, q_max, power, img, center_row, center_col, affine)
        n_eval += 1
        if fr < vals[0]:
            xe = cen + 2.0 * (cen - simplex[3])
            fe = -image_score(qmul(q0, qexp(xe)), gs, fs, lam, sigma_s, q_min, q_max, power, img, center_row, center_col, affine)
            n_eval += 1
            if fe < fr:
                simplex[3] = xe
                vals[3] = fe
            else:
                simplex[3] = xr
                vals[3] = fr
        elif fr < vals[2]:
            simplex[3] = xr
            vals[3] = fr
        else:
            if fr < vals[3]:
                xc = cen + 0.5 * (xr - cen)
            else:
                xc = cen + 0.5 * (simplex[3] - cen)
            fc = -image_score(qmul(q0, qexp(xc)), gs, fs, lam, sigma_s, q_min, q_max, power, img, center_row, center_col, affine)
            n_eval += 1
            if fc < min(fr, vals[3]):
                simplex[3] = xc
                vals[3] = fc
            else:
                for k in range(1, 4):
                    simplex[k] = simplex[0] + 0.5 * (simplex[k] - simplex[0])
                    vals[k] = -image_score(qmul(q0, qexp(simplex[k])), gs, fs, lam, sigma_s, q_min, q_max, power, img, center_row, center_col, affine)
                    n_eval += 1
    k = np.argmin(vals)
    q = qmul(q0, qexp(simplex[k]))
    if q[0] < 0:
        q = -q
    # the search scored on reflections near the sphere for tilts near q0 only; Nelder–Mead may have gone farther
    return q, image_score(q, g_c, F2, lam, sigma_s, q_min, q_max, power, img, center_row, center_col, affine), n_eval + 1


# --------------------------------------------------------------------------------------------------
# one pattern, end to end (coarse → dedupe → refine → reliability); and a parallel loop over a chunk
# --------------------------------------------------------------------------------------------------
@nb.njit(cache=True, nogil=True)
def index_one(
    px, py, pa, img, center_row, center_col, affine, cand, base_q, offsets, sp_r, sp_t, sp_w, sp_norm, sym, g_c, F2,
    lam, sigma_s, sigma_coarse, q_min, q_max, power, n_bins, per_template, n_keep,
    n_refine, n_best, rel_dist, distinct_dist, init_step, max_eval, xtol,
):
    """Index one pattern: coarse search on its peak list, then every distinct candidate scored on the processed
    image (:func:`image_score`) and the best ``n_refine`` refined.

    Returns (best_q (4,), correlation_index, reliability, cand_q (n_best, 4), cand_s (n_best,)); the candidates are
    distinct hypotheses, each more than ``rel_dist`` from the others (the best first). The correlation
    index is the image score divided by the norm of the image at its detected peaks (1 when the template's
    spots carry exactly the pattern's peaks), clipped to [0, 1].
    """
    r = np.sqrt(px * px + py * py)
    order = np.argsort(r)
    pk_r = r[order]
    pk_t = np.arctan2(py[order], px[order])
    pk_a = pa[order]
    min_sep = max(1, int(rel_dist / (TWO_PI / n_bins)))
    ts, gs, ss = coarse_search(pk_r, pk_t, pk_a, cand, offsets, sp_r, sp_t, sp_w, sp_norm, sigma_coarse, n_bins, per_template, min_sep)
    idx = np.argsort(-ss)
    n_keep = max(n_keep, n_best, n_refine)
    cq = np.zeros((n_keep, 4))
    m = 0
    for ii in range(idx.shape[0]):
        k = idx[ii]
        if ss[k] <= 0 or ts[k] < 0:
            break
        q = template_orientation(base_q[ts[k]], gs[k])
        if near_any(q, cq, m, sym, distinct_dist):
            continue
        cq[m] = q
        m += 1
        if m == n_keep:
            break
    best_q = np.zeros(4)
    best_q[0] = 1.0
    out_q = np.zeros((n_best, 4))
    out_s = np.zeros(n_best)
    if m == 0:
        return best_q, 0.0, 0.0, out_q, out_s
    # norm of the processed image at the detected peaks (normalises the correlation index)
    pn = peak_image_norm(px, py, img, center_row, center_col, affine)
    # every candidate on the image score (one scale for all), the leading ones refined
    fs = np.zeros(m)
    for k in range(m):
        fs[k] = image_score(cq[k], g_c, F2, lam, sigma_s, q_min, q_max, power, img, center_row, center_col, affine)
    first = np.argsort(-fs)
    fq = cq[:m].copy()
    for ii in range(min(n_refine, m)):
        k = first[ii]
        q, s, _ = refine_orientation(cq[k], g_c, F2, lam, sigma_s, q_min, q_max, power, img, center_row, center_col, affine, init_step, max_eval, xtol)
        if s > fs[k]:
            fq[k] = q
            fs[k] = s
    order2 = np.argsort(-fs)
    b = order2[0]
    best_q = fq[b].copy()
    q1 = fs[b]
    q2 = 0.0
    for ii in range(m):
        k = order2[ii]
        if k != b and sym_distance(best_q, fq[k], sym) > rel_dist:
            q2 = fs[k]
            break
    rel = 100.0 * (1.0 - q2 / q1) if q1 > 0 else 0.0
    rel = min(max(rel, 0.0), 100.0)
    nb_out = 0
    for ii in range(m):
        k = order2[ii]
        dup = False
        for j in range(nb_out):
            if sym_distance(fq[k], out_q[j], sym) <= rel_dist:
                dup = True
                break
        if dup:
            continue
        out_q[nb_out] = fq[k]
        out_s[nb_out] = min(fs[k] / pn, 1.0)
        nb_out += 1
        if nb_out == n_best:
            break
    return best_q, min(q1 / pn, 1.0), rel, out_q, out_s


@nb.njit(cache=True, nogil=True, parallel=True)
def index_chunk(
    peaks, counts, imgs, centers, affine, cands, base_q, offsets, sp_r, sp_t, sp_w, sp_norm, sym, g_c, F2,
    lam, sigma_s, sigma_coarse, q_min, q_max, power, n_bins, per_template, n_keep,
    n_refine, n_best, rel_dist, distinct_dist, init_step, max_eval, xtol, min_peaks,
):
    """Index every pattern of a chunk (parallel over patterns).

    peaks: (n, max_peaks, 3) rows (qx, qy, amplitude) in the sample frame; counts: (n,) valid rows;
    imgs: (n, ky, kx) processed images; centers: (n, 2) direct-beam centres (row, col);
    affine: (2, 2) sample q → detector (dcol, drow); cands: (n, K) candidate templates from the prefilter.
    """
    n = peaks.shape[0]
    out_q = np.zeros((n, 4))
    out_s = np.zeros(n)
    out_r = np.zeros(n)
    out_cq = np.zeros((n, n_best, 4))
    out_cs = np.zeros((n, n_best))
    for i in nb.prange(n):
        c = counts[i]
        if c < min_peaks:
            out_q[i, 0] = 1.0
            continue
        q, s, rel, cq, cs = index_one(
            peaks[i, :c, 0].copy(), peaks[i, :c, 1].copy(), peaks[i, :c, 2].copy(), imgs[i], centers[i, 0], centers[i, 1],
            affine, cands[i], base_q, offsets, sp_r, sp_t, sp_w, sp_norm, sym, g_c, F2, lam, sigma_s, sigma_coarse,
            q_min, q_max, power, n_bins, per_template, n_keep, n_refine, n_best, rel_dist, distinct_dist, init_step, max_eval, xtol,
        )
        out_q[i] = q
        out_s[i] = s
        out_r[i] = rel
        out_cq[i] = cq
        out_cs[i] = cs
    return out_q, out_s, out_r, out_cq, out_cs


@nb.njit(cache=True, nogil=True, parallel=True)
def peak_radial_descriptors(peaks, counts, bin_width, n_bins, harmonics):
    """Rotation-invariant descriptors of peak lists, as library.templates.radial_descriptor: per radial bin the
    magnitudes of the angular harmonics ``harmonics``, bin-major, unit norm."""
    n = peaks.shape[0]
    nh = harmonics.shape[0]
    out = np.zeros((n, n_bins * nh), np.float32)
    for i in nb.prange(n):
        hr = np.zeros((n_bins + 2, nh))
        hi = np.zeros((n_bins + 2, nh))
        for p in range(counts[i]):
            qx = peaks[i, p, 0]
            qy = peaks[i, p, 1]
            x = math.sqrt(qx * qx + qy * qy) / bin_width
            t = math.atan2(qy, qx)
            k = int(math.floor(x))
            f = x - k
            if 0 <= k < n_bins:
                for m in range(nh):
                    c = peaks[i, p, 2] * math.cos(harmonics[m] * t)
                    s = peaks[i, p, 2] * math.sin(harmonics[m] * t)
                    hr[k, m] += c * (1 - f)
                    hi[k, m] += s * (1 - f)
                    hr[k + 1, m] += c * f
                    hi[k + 1, m] += s * f
        nrm = 0.0
        for k in range(n_bins):
            for m in range(nh):
                a = hr[k, m]
                b = hi[k, m]
                if k > 0:
                    a += 0.5 * hr[k - 1, m]
                    b += 0.5 * hi[k - 1, m]
                if k < n_bins - 1:
                    a += 0.5 * hr[k + 1, m]
                    b += 0.5 * hi[k + 1, m]
                v = math.sqrt(a * a + b * b)
                out[i, k * nh + m] = v
                nrm += v * v
        if nrm > 0:
            nrm = math.sqrt(nrm)
            for k in range(n_bins * nh):
                out[i, k] /= nrm
    return out


# --------------------------------------------------------------------------------------------------
# neighbour pass: every pixel also tries the solutions of its 8 neighbours (grains are spatially coherent)
# --------------------------------------------------------------------------------------------------
@nb.njit(cache=True, nogil=True)
def peak_image_norm(px, py, img, center_row, center_col, affine):
    """‖P at the detected peaks (nearest pixel)‖, 1 where it is 0: the correlation index's normalisation."""
    pn = 0.0
    ky = img.shape[0]
    kx = img.shape[1]
    for p in range(px.shape[0]):
        col = center_col + affine[0, 0] * px[p] + affine[0, 1] * py[p]
        row = center_row + affine[1, 0] * px[p] + affine[1, 1] * py[p]
        ir = min(max(int(row + 0.5), 0), ky - 1)
        ic = min(max(int(col + 0.5), 0), kx - 1)
        pn += img[ir, ic] * img[ir, ic]
    return math.sqrt(pn) if pn > 0 else 1.0


@nb.njit(cache=True, nogil=True, parallel=True)
def image_scores(quats, mask, imgs, centers, affine, g_c, F2, lam, sigma_s, q_min, q_max, power):
    """:func:`image_score` of ``quats[i]`` on ``imgs[i]`` where ``mask[i]`` (0 elsewhere)."""
    n = quats.shape[0]
    out = np.zeros(n)
    for i in nb.prange(n):
        if mask[i]:
            out[i] = image_score(quats[i], g_c, F2, lam, sigma_s, q_min, q_max, power, imgs[i], centers[i, 0], centers[i, 1], affine)
    return out


@nb.njit(cache=True, nogil=True, parallel=True)
def refine_chunk(quats, mask, imgs, centers, affine, g_c, F2, lam, sigma_s, q_min, q_max, power, init_step, max_eval, xtol):
    """:func:`refine_orientation` of ``quats[i]`` on ``imgs[i]`` where ``mask[i]``. Returns (q (n, 4), score (n,));
    unmasked rows keep ``quats`` with score 0."""
    n = quats.shape[0]
    oq = quats.copy()
    oQ = np.zeros(n)
    for i in nb.prange(n):
        if mask[i]:
            q, Q, _ = refine_orientation(quats[i], g_c, F2, lam, sigma_s, q_min, q_max, power, imgs[i], centers[i, 0], centers[i, 1],
                                         affine, init_step, max_eval, xtol)
            oq[i] = q
            oQ[i] = Q
    return oq, oQ


@nb.njit(cache=True, nogil=True, parallel=True)
def neighbor_pass(
    quats, scores, may_change, source, n_rows, n_cols, imgs, centers, affine, sym, g_c, F2, lam, sigma_s, q_min, q_max,
    power, same_dist, init_step, max_eval, xtol, max_iter,
):
    """Let each pixel adopt a neighbour's solution when it explains the pixel's own image better.

    Pixels form an (n_rows, n_cols) grid (row-major). In each sweep, every pixel with ``may_change`` tries the
    current orientation of each of its 8 neighbours that is a ``source`` and changed in the previous sweep (all
    do in the first), unless it is within ``same_dist`` (Laue symmetry) of the pixel's own; the best one that
    beats the pixel's image score (:func:`image_score`) is refined (:func:`refine_orientation`) and taken, and
    the pixel becomes a source. Sweeps are synchronous (all pixels read the previous sweep's state), so the
    result does not depend on the thread count; each change raises a pixel's score, so the sweeps stop, at the
    latest after ``max_iter``.

    Returns (quats, scores, changed) — changed: pixels whose solution was replaced.
    """
    n = n_rows * n_cols
    cur_q = quats.copy()
    cur_s = scores.copy()
    src = source.copy()
    changed = np.zeros(n, np.bool_)
    fresh = np.ones(n, np.bool_)
    for it in range(max_iter):
        new_q = cur_q.copy()
        new_s = cur_s.copy()
        took = np.zeros(n, np.bool_)
        for i in nb.prange(n):
            if not may_change[i]:
                continue
            r = i // n_cols
            c = i - r * n_cols
            best_s = cur_s[i]
            best_j = -1
            for dr in range(-1, 2):
                for dc in range(-1, 2):
                    rr = r + dr
                    cc = c + dc
                    if (dr == 0 and dc == 0) or rr < 0 or cc < 0 or rr >= n_rows or cc >= n_cols:
                        continue
                    j = rr * n_cols + cc
                    if not (src[j] and fresh[j]):
                        continue
                    if src[i] and sym_distance(cur_q[j], cur_q[i], sym) < same_dist:
                        continue
                    s = image_score(cur_q[j], g_c, F2, lam, sigma_s, q_min, q_max, power, imgs[i], centers[i, 0], centers[i, 1], affine)
                    if s > best_s:
                        best_s = s
                        best_j = j
            if best_j >= 0:
                q, s, _ = refine_orientation(cur_q[best_j], g_c, F2, lam, sigma_s, q_min, q_max, power, imgs[i], centers[i, 0], centers[i, 1], affine, init_step, max_eval, xtol)
                if s > best_s:
                    new_q[i] = q
                    new_s[i] = s
                else:
                    new_q[i] = cur_q[best_j]
                    new_s[i] = best_s
                took[i] = True
        any_took = False
        for i in range(n):
            if took[i]:
                any_took = True
                changed[i] = True
                src[i] = True
        cur_q = new_q
        cur_s = new_s
        fresh = took
        if not any_took:
            break
    return cur_q, cur_s, changed


# --------------------------------------------------------------------------------------------------
# quality of a solution: correlation index and spot fit (what the phase-fit check reads)
# --------------------------------------------------------------------------------------------------
@nb.njit(cache=True, nogil=True)
def predicted_spots_index(R, g_c, lam, s_win, q_min, q_max):
    """Sample-frame positions (m, 2), 1/Å, of the reflections with |excitation error| ≤ ``s_win`` projecting between
    q_min and q_max, for the orientation matrix R (:func:`qmatrix`), and the index of each in ``g_c`` (m,)."""
    qmin2 = q_min * q_min
    qmax2 = q_max * q_max
    pred = np.empty((g_c.shape[0], 2))
    idx = np.empty(g_c.shape[0], np.int64)
    m = 0
    for j in range(g_c.shape[0]):
        s, gz, gg = excitation_error(g_c, j, R, lam)
        if abs(s) > s_win:
            continue
        r2 = gg - gz * gz
        if r2 < qmin2 or r2 > qmax2:
            continue
        pred[m, 0], pred[m, 1] = in_plane_position(g_c, j, R)
        idx[m] = j
        m += 1
    return pred[:m], idx[:m]


@nb.njit(cache=True, nogil=True)
def predicted_spots(R, g_c, lam, s_win, q_min, q_max):
    """Sample-frame positions (m, 2), 1/Å, of the reflections with |excitation error| ≤ ``s_win`` projecting between
    q_min and q_max, for the orientation matrix R (:func:`qmatrix`)."""
    return predicted_spots_index(R, g_c, lam, s_win, q_min, q_max)[0]


@nb.njit(cache=True, nogil=True)
def explained_count(q, g_c, lam, s_win, q_min, q_max, px, py, tol_abs, tol_rel):
    """Number of detected spots (px, py; sample frame, 1/Å) within ``tol_abs + tol_rel·|p|`` of a spot predicted by
    orientation ``q`` (:func:`predicted_spots`: |excitation error| ≤ ``s_win``, q_min ≤ |g_xy| ≤ q_max)."""
    R = qmatrix(q)
    pred = predicted_spots(R, g_c, lam, s_win, q_min, q_max)
    m = pred.shape[0]
    n_ok = 0
    for p in range(px.shape[0]):
        tol = tol_abs + tol_rel * math.sqrt(px[p] * px[p] + py[p] * py[p])
        t2 = tol * tol
        for k in range(m):
            dx = px[p] - pred[k, 0]
            dy = py[p] - pred[k, 1]
            if dx * dx + dy * dy <= t2:
                n_ok += 1
                break
    return n_ok


@nb.njit(cache=True, nogil=True)
def fit_factor(q, g_c, lam, s_win, q_min, q_max, px, py, tol_abs, tol_rel, fit_power):
    """((n_explained + 1) / (n_detected + 1)) ** fit_power: the weight of the spot fit in the final choice
    (:func:`rescore_one`); n_explained by :func:`explained_count`."""
    n_ok = explained_count(q, g_c, lam, s_win, q_min, q_max, px, py, tol_abs, tol_rel)
    return ((n_ok + 1.0) / (px.shape[0] + 1.0)) ** fit_power


@nb.njit(cache=True, nogil=True)
def solution_quality(q, g_c, F2, lam, sigma_s, s_win, q_min, q_max, power, img, center_row, center_col, affine, px, py, pw, tol_abs, tol_rel):
    """Correlation index and spot fit of orientation ``q`` on one pattern.

    Predicted spots: reflections with q_min ≤ |g_xy| ≤ q_max and |s| ≤ ``s_win`` (positions (gx, gy), sample
    frame). A detected peak (px, py) with weight pw (its amplitude, or 1 to count peaks) is *explained* when its
    distance to the nearest predicted spot is at most ``tol_abs + tol_rel·|p|`` (1/Å).

    correlation index: the cosine Σ_j b_j P_j / (‖b‖ ‖P_U‖) of the template b_j = (F²_j exp(−s_j²/(2σ_s²)))^power
    (reflections with s_j²/(2σ_s²) ≤ 12.5, as :func:`image_score`) against the processed image P sampled at the
    template's spots (bilinear; 0 off the detector), where ‖P_U‖ is the norm of P over the union of the template's
    spots and the unexplained detected peaks (nearest pixel). 1 only when the image holds exactly the template's
    spots in its proportions; missing spots (large b_j, P_j ≈ 0) and unexplained peaks both lower it
    (Cauchy–Schwarz: 0 ≤ value ≤ 1 for P ≥ 0).

    Returns (correlation_index, w_explained, residual): w_explained the summed weight of the explained peaks;
    residual the RMS distance (1/Å) of the explained peaks to their predicted spots (0 when none).
    """
    R = qmatrix(q)
    ky = img.shape[0]
    kx = img.shape[1]
    pred = predicted_spots(R, g_c, lam, s_win, q_min, q_max)
    m = pred.shape[0]
    num, bn, pn = template_sums(R, g_c, F2, lam, sigma_s, q_min, q_max, power, img, center_row, center_col, affine,
                                False)
    n_ok = 0
    w_ok = 0.0
    d2sum = 0.0
    for p in range(px.shape[0]):
        best = 1e300
        for k in range(m):
            dx = px[p] - pred[k, 0]
            dy = py[p] - pred[k, 1]
            d2 = dx * dx + dy * dy
            if d2 < best:
                best = d2
        tol = tol_abs + tol_rel * math.sqrt(px[p] * px[p] + py[p] * py[p])
        if best <= tol * tol:
            n_ok += 1
            w_ok += pw[p]
            d2sum += best
        else:
            col = center_col + affine[0, 0] * px[p] + affine[0, 1] * py[p]
            row = center_row + affine[1, 0] * px[p] + affine[1, 1] * py[p]
            ir = min(max(int(row + 0.5), 0), ky - 1)
            ic = min(max(int(col + 0.5), 0), kx - 1)
            pn += img[ir, ic] * img[ir, ic]
    ci = 0.0
    if bn > 0 and pn > 0:
        ci = min(max(num / math.sqrt(bn * pn), 0.0), 1.0)
    res = math.sqrt(d2sum / n_ok) if n_ok > 0 else 0.0
    return ci, w_ok, res


@nb.njit(cache=True, nogil=True, parallel=True)
def solution_qualities(quats, mask, peaks, counts, imgs, centers, affine, g_c, F2, lam, sigma_s, s_win, q_min, q_max, power, tol_abs, tol_rel):
    """:func:`solution_quality` of ``quats[i]`` on pattern i where ``mask[i]``, every peak counted once. Returns
    (ci (n,), explained peaks (n,), residual (n,)); zeros elsewhere."""
    n = quats.shape[0]
    ci = np.zeros(n)
    n_ok = np.zeros(n)
    res = np.zeros(n)
    for i in nb.prange(n):
        if mask[i]:
            c = counts[i]
            a, b, r = solution_quality(
                quats[i], g_c, F2, lam, sigma_s, s_win, q_min, q_max, power, imgs[i], centers[i, 0], centers[i, 1], affine,
                peaks[i, :c, 0].copy(), peaks[i, :c, 1].copy(), np.ones(c), tol_abs, tol_rel,
            )
            ci[i] = a
            n_ok[i] = b
            res[i] = r
    return ci, n_ok, res


# --------------------------------------------------------------------------------------------------
# final choice among distinct hypotheses by a model-robust quality, and reliability from it
# --------------------------------------------------------------------------------------------------
#: pseudo-symmetric hypotheses scoring below this fraction of the search's solution are not refined (:func:`rescore_one`)
REFINE_FRACTION = 0.75


@nb.njit(cache=True, nogil=True)
def variant_turns(kind):
    """Crystal-frame turns (k, 4) whose composition T ∘ O with an orientation O can give (nearly) the same spot
    pattern: ``kind`` 1 (trigonal and hexagonal phases) a 60° turn about c (e3), which in an R lattice swaps the
    obverse and reverse settings; 2 (cubic phases) the four Σ3 twins, 60° about [111], [-111], [1-11] and [11-1],
    whose zone-axis patterns along the shared ⟨111⟩ or ⟨110⟩ directions coincide with the parent's (Σ3 as in
    Brandon, *Acta Metall.* 14 (1966) 1479); 0 none."""
    if kind == 1:
        out = np.zeros((1, 4))
        out[0, 0] = math.cos(math.pi / 6)
        out[0, 3] = math.sin(math.pi / 6)
        return out
    if kind == 2:
        out = np.zeros((4, 4))
        c = math.cos(math.pi / 6)
        s = math.sin(math.pi / 6) / math.sqrt(3.0)
        for j in range(4):
            out[j, 0] = c
            out[j, 1] = s
            out[j, 2] = s
            out[j, 3] = s
            if j > 0:
                out[j, j] = -s
        return out
    return np.zeros((0, 4))


@nb.njit(cache=True, nogil=True)
def pseudo_symmetric(q, kind):
    """Orientations whose spot patterns can be (nearly) the same as that of ``q`` (rows, (1 + 2k, 4)): the beam twin
    O ∘ Rz(180°) (centrosymmetric spot positions: only the Ewald curvature differs), then for each of the k turns T
    of :func:`variant_turns` (``kind``: 1 trigonal/hexagonal, 2 cubic, 0 none) T ∘ O and T ∘ O ∘ Rz(180°)."""
    turns = variant_turns(kind)
    k = 1 + 2 * turns.shape[0]
    out = np.empty((k, 4))
    rz = np.zeros(4)
    rz[3] = 1.0  # Rz(180°)
    out[0] = qmul(q, rz)
    for t in range(turns.shape[0]):
        out[1 + 2 * t] = qmul(turns[t], q)
        out[2 + 2 * t] = qmul(turns[t], out[0])
    for j in range(k):
        if out[j, 0] < 0:
            out[j] = -out[j]
    return out


@nb.njit(cache=True, nogil=True)
def reliability(q2, q1):
    """R = 100 (1 − q2/q1), clipped to [0, 100] (0 where q1 ≤ 0): the ACOM reliability of a best score ``q1``
    against a rival's ``q2`` (Rauch & Véron 2014)."""
    if q1 <= 0:
        return 0.0
    return min(max(100.0 * (1.0 - q2 / q1), 0.0), 100.0)


@nb.njit(cache=True, nogil=True)
def rescore_one(
    q0, cands, px, py, pw, img, center_row, center_col, affine, sym, g_c, F2, lam, sigma_s, s_win, q_min, q_max, power,
    tol_abs, tol_rel, variant_kind, rel_dist, same_dist, init_step, max_eval, xtol, listed_dist=0.0, fit_power=0.0, c_dist=0.0,
):
    """Settle one pattern's solution among distinct hypotheses, and its reliability over all of them.

    Hypotheses: ``q0`` (the search's solution, already refined), the rows of ``cands`` that are not all zero (the
    search's other distinct solutions, the strong ones refined there: :func:`index_one` refines its ``n_refine``
    best), and the :func:`pseudo_symmetric` orientations of ``q0``, refined (:func:`refine_orientation`) where they
    score at least ``REFINE_FRACTION`` of q0 (weaker ones cannot come near the best; they stay as they are, which
    only matters far above any reliability cut); those that end within ``same_dist`` of one already listed are
    dropped. With ``listed_dist > 0`` a pseudo-symmetric orientation within ``listed_dist`` of a listed hypothesis
    is dropped before it is refined: the listed one, refined on a neighbouring pattern of the same grain, stands
    for it (the grain-coherent search; 0 in the full search). Each is scored by the image score Q (:func:`image_score`) and the best kept.

    Reliability R = 100 (1 − Q2/Q1) (the ACOM definition, Rauch & Véron 2014): Q1 the best score, Q2 the best
    score of a hypothesis more than ``rel_dist`` from it (Laue symmetry). Because the pseudo-symmetric
    orientations are always among the hypotheses, a pattern that cannot tell them apart (the beam twin of thin
    kinematic patterns; the obverse/reverse 60° turn about c of an R lattice with c ⟂ or ∥ the beam; a Σ3 twin of a
    cubic phase along the directions the twins share: ``variant_kind``, :func:`variant_turns`) gets a low R instead
    of a confident wrong answer. R_twin = 100 (1 − Q_twin/Q1) against the beam twin alone is returned apart
    (100 where the twin is symmetry-equivalent to the best).

    With ``fit_power > 0`` each score (the beam twin's too, where it is refined apart) is Q × :func:`fit_factor` of
    its orientation before the choice, R and R_twin, and R is the smaller of that R and the R of the image scores
    alone over the hypotheses (reliable only where both criteria agree); Q1 and hyp_Q are the weighted scores.

    With ``c_dist > 0`` (rad; phases whose Laue group keeps the c axis, i.e. not cubic) R_c, the *c-axis
    reliability*, is R over the hypotheses whose c-axis line differs from the best's by more than ``c_dist``
    (:func:`c_axis_apart`: up to the sign of its beam component, so the beam twin and the 60° turn about c, which
    leave the basal planes' trace and inclination as they are, do not lower it), bounded like R by the image
    scores alone; NaN with ``c_dist = 0``.

    Returns (q, Q1, ci, w_explained, residual, R, R_twin, hyp_q (h, 4), hyp_Q (h,), R_c); ci, w_explained and
    residual are :func:`solution_quality` of q (peak weights ``pw``); hypotheses by falling Q.
    """
    n_c = cands.shape[0]
    alt = pseudo_symmetric(q0, variant_kind)
    h_max = 1 + n_c + alt.shape[0]
    hq = np.zeros((h_max, 4))
    hQ = np.zeros(h_max)
    m = 0
    s0 = 0.0
    for src in range(h_max):
        if src == 0:
            q = q0.copy()
        elif src <= n_c:
            q = cands[src - 1].copy()
            if q[0] == 0.0 and q[1] == 0.0 and q[2] == 0.0 and q[3] == 0.0:
                continue
        else:
            q = alt[src - 1 - n_c].copy()
            if listed_dist > 0.0 and near_any(q, hq, m, sym, listed_dist):
                continue
        Q = image_score(q, g_c, F2, lam, sigma_s, q_min, q_max, power, img, center_row, center_col, affine)
        if src == 0:
            s0 = Q
        elif src > n_c and Q >= REFINE_FRACTION * s0:
            q, Q, _ = refine_orientation(q, g_c, F2, lam, sigma_s, q_min, q_max, power, img, center_row, center_col, affine, init_step, max_eval, xtol)
        if near_any(q, hq, m, sym, same_dist):
            continue
        hq[m] = q
        hQ[m] = Q
        m += 1
    hI = hQ[:m].copy()  # image scores alone
    if fit_power > 0.0:
        for ii in range(m):
            hQ[ii] *= fit_factor(hq[ii], g_c, lam, s_win, q_min, q_max, px, py, tol_abs, tol_rel, fit_power)
    order = np.argsort(-hQ[:m])
    b = order[0]
    best = hq[b].copy()
    q1 = hQ[b]
    twin = pseudo_symmetric(best, 0)[0]
    twin_same = sym_distance(best, twin, sym) <= rel_dist
    q2 = 0.0
    qt = -1.0
    for ii in range(1, m):
        k = order[ii]
        d = sym_distance(best, hq[k], sym)
        if d <= rel_dist:
            continue
        if (not twin_same) and sym_distance(twin, hq[k], sym) <= rel_dist:
            if hQ[k] > qt:
                qt = hQ[k]
        if hQ[k] > q2:
            q2 = hQ[k]
    if (not twin_same) and qt < 0:  # the best's twin is not among the hypotheses: score it
        tq, qt, _ = refine_orientation(twin, g_c, F2, lam, sigma_s, q_min, q_max, power, img, center_row, center_col, affine, init_step, max_eval, xtol)
        if fit_power > 0.0:
            qt *= fit_factor(tq, g_c, lam, s_win, q_min, q_max, px, py, tol_abs, tol_rel, fit_power)
        q2 = max(q2, qt)
    rel = reliability(q2, q1)
    if fit_power > 0.0:  # R is also bounded by the image score alone: reliable only where both criteria agree
        i2 = 0.0
        for k in range(m):
            if k != b and sym_distance(best, hq[k], sym) > rel_dist and hI[k] > i2:
                i2 = hI[k]
        rel = min(rel, reliability(i2, hI[b]))
    rel_t = 100.0 if twin_same else reliability(qt, q1)
    rel_c = np.nan
    if c_dist > 0.0:
        qc = 0.0
        ic = 0.0
        for k in range(m):
            if k != b and c_axis_apart(best, hq[k], c_dist):
                qc = max(qc, hQ[k])
                ic = max(ic, hI[k])
        rel_c = reliability(qc, q1)
        if fit_power > 0.0:
            rel_c = min(rel_c, reliability(ic, hI[b]))
    out_q = np.empty((m, 4))
    out_Q = np.empty(m)
    for ii in range(m):
        out_q[ii] = hq[order[ii]]
        out_Q[ii] = hQ[order[ii]]
    ci, n_ok, res = solution_quality(best, g_c, F2, lam, sigma_s, s_win, q_min, q_max, power, img, center_row, center_col, affine, px, py, pw, tol_abs, tol_rel)
    return best, q1, ci, n_ok, res, rel, rel_t, out_q, out_Q, rel_c


@nb.njit(cache=True, nogil=True)
def c_axis_apart(q1, q2, c_dist):
    """Whether the c axes of orientations ``q1`` and ``q2`` (sample frame: the third row of :func:`qmatrix`, as
    lines) lie more than ``c_dist`` (rad) apart, up to the sign of their beam (z) components: the beam twin
    O ∘ Rz(180°) takes c = (c_x, c_y, c_z) to (−c_x, −c_y, c_z), the same basal-plane trace and inclination."""
    a = qmatrix(q1)
    b = qmatrix(q2)
    xy = a[2, 0] * b[2, 0] + a[2, 1] * b[2, 1]
    zz = a[2, 2] * b[2, 2]
    return max(abs(xy + zz), abs(xy - zz)) < math.cos(c_dist)


@nb.njit(cache=True, nogil=True, parallel=True)
def rescore_chunk(
    quats, cands, mask, peaks, counts, imgs, centers, affine, sym, g_c, F2, lam, sigma_s, s_win, q_min, q_max, power,
    tol_abs, tol_rel, variant_kind, rel_dist, same_dist, init_step, max_eval, xtol, n_out, listed_dist=0.0, fit_power=0.0,
    c_dist=0.0,
):
    """:func:`rescore_one` for every pattern i with ``mask[i]`` (quats (n, 4), cands (n, c, 4); every peak counted
    once). Returns (q, Q, ci, explained peaks, residual, R, R_twin, hyp_q (n, n_out, 4), hyp_Q (n, n_out), R_c,
    c_rival (n, 4)); unmasked rows keep ``quats`` with zeros elsewhere (R_c NaN with ``c_dist = 0``). The
    hypotheses are the first ``n_out`` of :func:`rescore_one`'s. ``c_rival`` is the best hypothesis whose c axis
    is apart from the solution's where none of those is and a later one is (:func:`c_rival_past`), else zeros: the
    c-same pseudo-symmetric alternatives (beam twin, 60° turn) rank high and can crowd out of the list the rival R_c
    was measured against; a grain-coherent target settled among this pattern's hypotheses lists it too."""
    n = quats.shape[0]
    oq = quats.copy()
    oQ = np.zeros(n)
    oci = np.zeros(n)
    on = np.zeros(n)
    ores = np.zeros(n)
    orel = np.zeros(n)
    ort = np.zeros(n)
    ohq = np.zeros((n, n_out, 4))
    ohQ = np.zeros((n, n_out))
    orc = np.full(n, np.nan) if c_dist <= 0.0 else np.zeros(n)
    ocr = np.zeros((n, 4))
    for i in nb.prange(n):
        if not mask[i]:
            continue
        c = counts[i]
        q, Q, ci, n_ok, res, rel, rt, hq, hQ, rc = rescore_one(
            quats[i], cands[i], peaks[i, :c, 0].copy(), peaks[i, :c, 1].copy(), np.ones(c), imgs[i], centers[i, 0], centers[i, 1], affine,
            sym, g_c, F2, lam, sigma_s, s_win, q_min, q_max, power, tol_abs, tol_rel, variant_kind, rel_dist, same_dist,
            init_step, max_eval, xtol, listed_dist, fit_power, c_dist,
        )
        orc[i] = rc
        oq[i] = q
        oQ[i] = Q
        oci[i] = ci
        on[i] = n_ok
        ores[i] = res
        orel[i] = rel
        ort[i] = rt
        k = min(n_out, hq.shape[0])
        ohq[i, :k] = hq[:k]
        ohQ[i, :k] = hQ[:k]
        j = c_rival_past(q, hq, n_out, c_dist)
        if j >= 0:
            ocr[i] = hq[j]
    return oq, oQ, oci, on, ores, orel, ort, ohq, ohQ, orc, ocr


@nb.njit(cache=True, nogil=True)
def c_rival_past(q, hq, n_out, c_dist):
    """Row of ``hq`` (h, 4; by falling score, ``q`` first) holding the best hypothesis whose c axis is apart from
    ``q``'s (:func:`c_axis_apart`) where none of rows 1 … n_out − 1 is and one past them is; else −1 (also for
    ``c_dist <= 0`` or ``n_out < 2``)."""
    if c_dist <= 0.0 or n_out < 2 or hq.shape[0] <= n_out:
        return -1
    for j in range(1, n_out):
        if c_axis_apart(q, hq[j], c_dist):
            return -1
    for j in range(n_out, hq.shape[0]):
        if c_axis_apart(q, hq[j], c_dist):
            return j
    return -1


@nb.njit(cache=True, nogil=True)
def fit_chance(q, g_c, lam, s_win, q_min, q_max, tol_abs, tol_rel, n_points):
    """Chance level of the spot fit: the fraction of ``n_points`` positions spread uniformly over the annulus
    q_min ≤ |p| ≤ q_max (a sunflower spiral: |p|² evenly spaced, polar angle stepped by the golden angle) that lie
    within ``tol_abs + tol_rel·|p|`` of a spot predicted by orientation ``q`` (|s| ≤ s_win), i.e. how many randomly
    placed spots the solution would 'explain'. A dense reciprocal lattice (long cell axes, low symmetry) explains
    much by chance; the spot fit is judged against this."""
    pred = predicted_spots(qmatrix(q), g_c, lam, s_win, q_min, q_max)
    m = pred.shape[0]
    qmin2 = q_min * q_min
    qmax2 = q_max * q_max
    golden = math.pi * (3.0 - math.sqrt(5.0))
    hit = 0
    for k in range(n_points):
        r = math.sqrt(qmin2 + (k + 0.5) / n_points * (qmax2 - qmin2))
        t = k * golden
        x = r * math.cos(t)
        y = r * math.sin(t)
        tol = tol_abs + tol_rel * r
        for j in range(m):
            dx = x - pred[j, 0]
            dy = y - pred[j, 1]
            if dx * dx + dy * dy <= tol * tol:
                hit += 1
                break
    return hit / n_points


@nb.njit(cache=True, nogil=True, parallel=True)
def fit_chances(quats, mask, g_c, lam, s_win, q_min, q_max, tol_abs, tol_rel, n_points):
    """:func:`fit_chance` of ``quats[i]`` where ``mask[i]`` (0 elsewhere)."""
    n = quats.shape[0]
    out = np.zeros(n)
    for i in nb.prange(n):
        if mask[i]:
            out[i] = fit_chance(quats[i], g_c, lam, s_win, q_min, q_max, tol_abs, tol_rel, n_points)
    return out


# --------------------------------------------------------------------------------------------------
# quick stage of the coarse search: the strongest peaks against each template's strongest spots
# --------------------------------------------------------------------------------------------------
@nb.njit(cache=True, nogil=True, parallel=True)
def quick_candidates(peaks, counts, cands, offsets, sp_r, sp_t, sp_w, sp_norm, sigma_q, n_bins, n_peaks, n_keep, min_peaks):
    """The first stage of a two-stage coarse search: rank each pattern's candidate templates ``cands`` (n, K) by the
    in-plane correlation (:func:`angular_correlation`, its maximum over γ) of the pattern's ``n_peaks`` strongest
    peaks with each template's spots as given (CSR ``offsets``, ``sp_*`` sorted by radius: a subset, e.g. each
    template's strongest spots), divided by the template's ``sp_norm``; returns the ``n_keep`` best of each row,
    best first (n, min(n_keep, K)); rows of patterns with fewer than ``min_peaks`` peaks keep their first templates.
    The full correlation then runs on these alone."""
    n, K = cands.shape
    k_out = min(n_keep, K)
    out = np.empty((n, k_out), np.int64)
    for i in nb.prange(n):
        c = counts[i]
        if c < min_peaks or k_out == K:
            out[i] = cands[i, :k_out]
            continue
        amp = peaks[i, :c, 2].copy()
        strong = np.argsort(-amp, kind="mergesort")[: min(n_peaks, c)]
        px = peaks[i, strong, 0]
        py = peaks[i, strong, 1]
        r = np.sqrt(px * px + py * py)
        order = np.argsort(r)
        pk_r = r[order]
        pk_t = np.arctan2(py[order], px[order])
        pk_a = amp[strong][order]
        h = np.empty(n_bins)
        score = np.full(K, -1.0)
        for k in range(K):
            t = cands[i, k]
            s0 = offsets[t]
            s1 = offsets[t + 1]
            if s1 == s0 or sp_norm[t] <= 0:
                continue
            angular_correlation_into(h, pk_r, pk_t, pk_a, sp_r[s0:s1], sp_t[s0:s1], sp_w[s0:s1], sigma_q)
            score[k] = h.max() / sp_norm[t]
        best = np.argsort(-score, kind="mergesort")[:k_out]
        for j in range(k_out):
            out[i, j] = cands[i, best[j]]
    return out
