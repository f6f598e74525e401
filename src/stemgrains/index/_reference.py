"""Slow, obvious references of the indexing kernels in :mod:`._cpu` (used by the tests only).

Written from the kernels' docstrings (their specification), not from their loops:

- quaternion algebra through orix (``Rotation`` composition, ``Rotation * Vector3d``, ``Orientation.angle_with``);
- the in-plane correlation histogram by brute force over every (peak, spot) pair and every angle bin;
- the image score with :func:`scipy.ndimage.map_coordinates` (order 1) and
  :func:`stemgrains.crystal.scattering.excitation_error`;
- the refinement with :func:`scipy.optimize.minimize` (Nelder–Mead) on the full reflection list;
- the radial descriptors from hat-function weights, checked against
  :func:`stemgrains.library.templates.radial_descriptor` by the tests;
- the spot-pair hypotheses (:mod:`._pairs`) by brute force over every spot pair and every reflection pair, with
  rotations from scipy (``Rotation.from_matrix``, ``Rotation.align_vectors`` for TRIAD and Kabsch).

Conventions as in :mod:`._cpu`: scalar-first quaternions, orix orientations (sample → crystal), angles in radians,
q in 1/Å. Every function returns new arrays and never modifies its inputs.
"""

from __future__ import annotations

import numpy as np
from orix.quaternion import Orientation, Quaternion, Rotation
from orix.quaternion.symmetry import Symmetry
from orix.vector import Vector3d
from scipy import ndimage, optimize
from scipy.spatial.transform import Rotation as SciPyRotation

from ..crystal.scattering import excitation_error

TWO_PI = 2.0 * np.pi


# --------------------------------------------------------------------------------------------------
# quaternions
# --------------------------------------------------------------------------------------------------
def qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a ⊗ b (rotation b first, then a) via orix."""
    return (Quaternion(np.asarray(a, float)) * Quaternion(np.asarray(b, float))).data.reshape(4).copy()


def qexp(v: np.ndarray) -> np.ndarray:
    """Unit quaternion of the rotation vector ``v`` (axis · angle, radians), via scipy's rotation vectors (orix's
    axis–angle conversion rounds angles below ~1e-9 rad to the identity)."""
    x, y, z, w = SciPyRotation.from_rotvec(np.asarray(v, float)).as_quat()
    return np.array([w, x, y, z])


def qmatrix(q: np.ndarray) -> np.ndarray:
    """R with v_crystal = R @ v_sample: column i is the orientation applied to the sample basis vector e_i."""
    O = Rotation(np.asarray(q, float))
    return np.stack([(O * Vector3d(e)).data.reshape(3) for e in np.eye(3)], axis=1)


def sym_distance(q1: np.ndarray, q2: np.ndarray, sym: np.ndarray) -> float:
    """Disorientation angle (rad) of two orientations under the rotation group ``sym`` (k, 4), via orix."""
    S = Symmetry(np.asarray(sym, float))
    o1 = Orientation(np.asarray(q1, float), symmetry=S)
    o2 = Orientation(np.asarray(q2, float), symmetry=S)
    return float(np.asarray(o1.angle_with(o2)).reshape(-1)[0])


def sym_distances(q: np.ndarray, qs: np.ndarray, sym: np.ndarray) -> np.ndarray:
    """:func:`sym_distance` of ``q`` to each row of ``qs`` (m, 4), rad."""
    qs = np.asarray(qs, float).reshape(-1, 4)
    if len(qs) == 0:
        return np.zeros(0)
    S = Symmetry(np.asarray(sym, float))
    o1 = Orientation(np.broadcast_to(np.asarray(q, float), qs.shape).copy(), symmetry=S)
    o2 = Orientation(qs.copy(), symmetry=S)
    return np.asarray(o1.angle_with(o2), float).reshape(-1)


def template_orientation(base_q: np.ndarray, gamma: float) -> np.ndarray:
    """O0 ∘ Rz(γ) (first a rotation by γ about the beam, then O0), via orix composition."""
    rz = Rotation.from_axes_angles([0.0, 0.0, 1.0], float(gamma))
    return (Rotation(np.asarray(base_q, float)) * rz).data.reshape(4).copy()


# --------------------------------------------------------------------------------------------------
# coarse search
# --------------------------------------------------------------------------------------------------
def angular_correlation(pk_r, pk_t, pk_a, sp_r, sp_t, sp_w, sigma_q, n_bins):
    """Brute force over every (peak p, spot j) pair and every bin k of γ_k = k·2π/n_bins:

    hist[k] = Σ a_p w_j (1 − Δr²/c²)² (1 − (r̄ Δγ)²/c²)²₊ with c = 3.5 σ_q, Δr = r_p − r_j (pairs with |Δr| ≤ c),
    r̄ = (r_p + r_j)/2, Δγ = γ_k − (θ_j − θ_p) wrapped into (−π, π], restricted to the 7 bins (±3) around the bin
    nearest to θ_j − θ_p. Needs n_bins ≥ 8. Input order is irrelevant here (the kernel needs sorted radii).
    """
    cut = 3.5 * sigma_q
    bw = TWO_PI / n_bins
    bins = np.arange(n_bins)
    hist = np.zeros(n_bins)
    for p in range(len(pk_r)):
        for j in range(len(sp_r)):
            dr = pk_r[p] - sp_r[j]
            if abs(dr) > cut:
                continue
            radial = (1.0 - dr**2 / cut**2) ** 2
            rbar = 0.5 * (pk_r[p] + sp_r[j])
            gamma = np.mod(sp_t[j] - pk_t[p], TWO_PI)  # the in-plane angle at which spot j falls on peak p
            nearest = int(np.floor(gamma / bw + 0.5)) % n_bins
            dk = np.abs(bins - nearest)
            near = np.minimum(dk, n_bins - dk) <= 3
            dgamma = np.angle(np.exp(1j * (bins * bw - gamma)))  # wrapped into (−π, π]
            v = 1.0 - (rbar * dgamma) ** 2 / cut**2
            hist += np.where(near & (v > 0), pk_a[p] * sp_w[j] * radial * v**2, 0.0)
    return hist


def top_peaks_circular(hist, n_keep, min_sep_bins):
    """Greedy: walk the bins from the largest value down, keep a bin if it is ≥ ``min_sep_bins`` (circular) from
    every bin kept so far; up to ``n_keep`` bins, −1 for the rest."""
    n = len(hist)
    kept: list[int] = []
    for k in sorted(range(n), key=lambda i: -hist[i]):
        if len(kept) == n_keep:
            break
        if all(min(abs(k - m), n - abs(k - m)) >= min_sep_bins for m in kept):
            kept.append(k)
    out = np.full(n_keep, -1, np.int64)
    out[: len(kept)] = kept
    return out


def parabolic_offset(hist, k):
    """Vertex of the parabola through the bins k−1, k, k+1 (circular), relative to k, clipped to ±0.5; 0 if the
    parabola is not concave."""
    n = len(hist)
    y = np.array([hist[(k - 1) % n], hist[k % n], hist[(k + 1) % n]], float)
    a2, a1, _ = np.linalg.solve(np.vander([-1.0, 0.0, 1.0], 3), y)
    if a2 >= 0:
        return 0.0
    return float(np.clip(-a1 / (2 * a2), -0.5, 0.5))


def coarse_search(pk_r, pk_t, pk_a, cand, offsets, sp_r, sp_t, sp_w, sp_norm, sigma_q, n_bins, per_template, min_sep_bins):
    """For each candidate template: its correlation histogram, the ``per_template`` best separated angles (with the
    parabolic offset) and score = hist[k] / (‖a‖ · sp_norm[t]). Returns (template, γ, score) arrays of length
    len(cand)·per_template (template −1 / score −1 where there is none)."""
    m = len(cand) * per_template
    out_t = np.full(m, -1, np.int64)
    out_g = np.zeros(m)
    out_s = np.full(m, -1.0)
    a_norm = float(np.linalg.norm(pk_a))
    if a_norm <= 0:
        return out_t, out_g, out_s
    bw = TWO_PI / n_bins
    for i, t in enumerate(cand):
        sl = slice(offsets[t], offsets[t + 1])
        if offsets[t + 1] == offsets[t] or sp_norm[t] <= 0:
            continue
        h = angular_correlation(pk_r, pk_t, pk_a, sp_r[sl], sp_t[sl], sp_w[sl], sigma_q, n_bins)
        for j, k in enumerate(top_peaks_circular(h, per_template, min_sep_bins)):
            if k < 0:
                continue
            out_t[i * per_template + j] = t
            out_g[i * per_template + j] = (k + parabolic_offset(h, k)) * bw
            out_s[i * per_template + j] = h[k] / (a_norm * sp_norm[t])
    return out_t, out_g, out_s


# --------------------------------------------------------------------------------------------------
# image score and refinement
# --------------------------------------------------------------------------------------------------
def sample_frame(q, g_c):
    """Crystal-frame reciprocal vectors (n, 3) in the sample frame: v_sample = O⁻¹ · g."""
    return (~Rotation(np.asarray(q, float)) * Vector3d(np.asarray(g_c, float))).data.reshape(-1, 3)


def image_score(q, g_c, F2, lam, sigma_s, q_min, q_max, power, img, center_row, center_col, affine):
    """Σ_j b_j P(x_j) / ‖b‖ over the reflections with q_min ≤ |g_xy| ≤ q_max and |s_j| ≤ 5σ_s (weaker spots are
    neglected), b_j = (F²_j exp(−s_j²/(2σ_s²)))^power, P sampled by map_coordinates (order 1) at
    (row, col) = centre + (affine @ g_xy)[::-1], 0 off the detector (such spots still count in ‖b‖)."""
    g_s = sample_frame(q, g_c)
    r = np.hypot(g_s[:, 0], g_s[:, 1])
    s = excitation_error(g_s, lam)
    use = (r >= q_min) & (r <= q_max) & (np.abs(s) <= 5.0 * sigma_s)
    b = (np.asarray(F2, float)[use] * np.exp(-(s[use] ** 2) / (2 * sigma_s**2))) ** power
    bn = float(np.sqrt(np.sum(b**2)))
    if bn <= 0:
        return 0.0
    d = g_s[use, :2] @ np.asarray(affine, float).T  # (dcol, drow)
    rows = center_row + d[:, 1]
    cols = center_col + d[:, 0]
    ky, kx = img.shape
    inside = (rows >= 0) & (cols >= 0) & (rows <= ky - 1) & (cols <= kx - 1)
    vals = ndimage.map_coordinates(np.asarray(img, float), [rows, cols], order=1, mode="nearest")
    return float(np.sum(b * np.where(inside, vals, 0.0)) / bn)


def near_sphere_subset(q, g_c, lam, sigma_s, tilt_margin):
    """Indices of reflections with |s| ≤ 5σ_s + |g|·tilt_margin (they can reach the 5σ_s band when the crystal
    tilts by up to ``tilt_margin`` rad)."""
    g_s = sample_frame(q, g_c)
    s = excitation_error(g_s, lam)
    return np.flatnonzero(np.abs(s) <= 5.0 * sigma_s + np.linalg.norm(g_s, axis=1) * tilt_margin).astype(np.int64)


def refine_orientation(q0, g_c, F2, lam, sigma_s, q_min, q_max, power, img, center_row, center_col, affine, init_step, max_eval, xtol):
    """scipy Nelder–Mead over a rotation vector δ (rad), q = q0 ⊗ exp(δ), maximising :func:`image_score` on all
    reflections, initial simplex 0, init_step·e_i. Returns (q with q[0] ≥ 0, score, evaluations)."""

    def cost(delta):
        return -image_score(qmul(q0, qexp(delta)), g_c, F2, lam, sigma_s, q_min, q_max, power, img, center_row, center_col, affine)

    simplex = np.vstack([np.zeros(3), init_step * np.eye(3)])
    res = optimize.minimize(
        cost, np.zeros(3), method="Nelder-Mead",
        options=dict(initial_simplex=simplex, xatol=xtol, fatol=np.inf, maxfev=max_eval),
    )
    q = qmul(q0, qexp(res.x))
    if q[0] < 0:
        q = -q
    return q, float(-res.fun), int(res.nfev)


# --------------------------------------------------------------------------------------------------
# one pattern end to end, a chunk
# --------------------------------------------------------------------------------------------------
def index_one(
    px, py, pa, img, center_row, center_col, affine, cand, base_q, offsets, sp_r, sp_t, sp_w, sp_norm, sym, g_c, F2,
    lam, sigma_s, sigma_coarse, q_min, q_max, power, n_bins, per_template, n_keep,
    n_refine, n_best, rel_dist, distinct_dist, init_step, max_eval, xtol,
):
    """The pipeline of :func:`._cpu.index_one`, step by step from its docstring, on the references above.

    1. peaks in polar form (sorted by radius); coarse search with in-plane peaks ≥ rel_dist apart;
    2. candidates O0 ∘ Rz(γ) by falling coarse score, dropping those within distinct_dist of one already kept,
       at most max(n_keep, n_best, n_refine);
    3. each scored with :func:`image_score`; the best ``n_refine`` refined (kept if the score improves);
    4. correlation index = best score / ‖P at the detected peaks (nearest pixel)‖ ≤ 1; reliability
       100 (1 − Q2/Q1) with Q2 the best candidate more than rel_dist from the best; the n_best candidates more
       than rel_dist from each other (distinct hypotheses) with their scores (same normalisation).
    """
    px, py, pa = (np.asarray(x, float) for x in (px, py, pa))
    order = np.argsort(np.hypot(px, py), kind="stable")
    pk_r = np.hypot(px, py)[order]
    pk_t = np.arctan2(py, px)[order]
    pk_a = pa[order]
    min_sep = max(1, int(rel_dist / (TWO_PI / n_bins)))
    ts, gs, ss = coarse_search(pk_r, pk_t, pk_a, cand, offsets, sp_r, sp_t, sp_w, sp_norm, sigma_coarse, n_bins, per_template, min_sep)
    n_keep = max(n_keep, n_best, n_refine)
    kept: list[np.ndarray] = []
    for k in np.argsort(-ss, kind="stable"):
        if ss[k] <= 0 or ts[k] < 0:
            break
        q = template_orientation(base_q[ts[k]], gs[k])
        if kept and np.any(sym_distances(q, np.array(kept), sym) < distinct_dist):
            continue
        kept.append(q)
        if len(kept) == n_keep:
            break
    out_q = np.zeros((n_best, 4))
    out_s = np.zeros(n_best)
    if not kept:
        return np.array([1.0, 0.0, 0.0, 0.0]), 0.0, 0.0, out_q, out_s
    pn = peak_image_norm(px, py, img, center_row, center_col, affine)
    cq = np.array(kept)
    fs = np.array([image_score(q, g_c, F2, lam, sigma_s, q_min, q_max, power, img, center_row, center_col, affine) for q in cq])
    for k in np.argsort(-fs, kind="stable")[:n_refine]:
        q, s, _ = refine_orientation(cq[k], g_c, F2, lam, sigma_s, q_min, q_max, power, img, center_row, center_col, affine, init_step, max_eval, xtol)
        if s > fs[k]:
            cq[k], fs[k] = q, s
    order2 = np.argsort(-fs, kind="stable")
    best = order2[0]
    far = [k for k in order2 if k != best and sym_distance(cq[best], cq[k], sym) > rel_dist]
    q1 = fs[best]
    q2 = fs[far[0]] if far else 0.0
    rel = float(np.clip(100.0 * (1.0 - q2 / q1), 0.0, 100.0)) if q1 > 0 else 0.0
    chosen: list[int] = []
    for k in order2:
        if chosen and np.any(sym_distances(cq[k], cq[chosen], sym) <= rel_dist):
            continue
        chosen.append(k)
        if len(chosen) == n_best:
            break
    out_q[: len(chosen)] = cq[chosen]
    out_s[: len(chosen)] = np.minimum(fs[chosen] / pn, 1.0)
    return cq[best].copy(), min(q1 / pn, 1.0), rel, out_q, out_s


def peak_image_norm(px, py, img, center_row, center_col, affine):
    """‖P at the peaks‖ (nearest pixel, clipped to the detector), 1 where it is 0."""
    ky, kx = img.shape
    cols = np.clip(np.floor(center_col + affine[0, 0] * px + affine[0, 1] * py + 0.5), 0, kx - 1).astype(int)
    rows = np.clip(np.floor(center_row + affine[1, 0] * px + affine[1, 1] * py + 0.5), 0, ky - 1).astype(int)
    pn = float(np.sqrt(np.sum(np.asarray(img, float)[rows, cols] ** 2)))
    return pn if pn > 0 else 1.0


def neighbor_pass(
    quats, scores, may_change, source, n_rows, n_cols, imgs, centers, affine, sym, g_c, F2, lam, sigma_s, q_min, q_max,
    power, same_dist, init_step, max_eval, xtol, max_iter,
):
    """:func:`._cpu.neighbor_pass` from its docstring, with whole-array copies per sweep.

    Sweep: state (q, s, source, fresh) → for each pixel that may change, over its 8 grid neighbours j that are
    sources and fresh (changed in the last sweep; all in the first) and not within same_dist of the pixel's own
    solution when the pixel is a source itself: the neighbour with the highest image score on the pixel's image,
    if above the pixel's score, is refined there and taken (the refined result only if it scores higher).
    """
    q = np.array(quats, float)
    s = np.array(scores, float)
    src = np.array(source, bool)
    fresh = np.ones(len(q), bool)
    changed = np.zeros(len(q), bool)
    for _ in range(max_iter):
        nq, ns, took = q.copy(), s.copy(), np.zeros(len(q), bool)
        for i in range(len(q)):
            if not may_change[i]:
                continue
            r, c = divmod(i, n_cols)
            args = (g_c, F2, lam, sigma_s, q_min, q_max, power, imgs[i], centers[i, 0], centers[i, 1], affine)
            tried = []
            for rr in range(r - 1, r + 2):
                for cc in range(c - 1, c + 2):
                    j = rr * n_cols + cc
                    if (rr, cc) == (r, c) or not (0 <= rr < n_rows and 0 <= cc < n_cols) or not (src[j] and fresh[j]):
                        continue
                    if src[i] and sym_distance(q[j], q[i], sym) < same_dist:
                        continue
                    tried.append((image_score(q[j], *args), j))
            better = [(v, j) for v, j in tried if v > s[i]]
            if not better:
                continue
            v, j = max(better, key=lambda t: t[0])  # first of equals, in neighbour order
            qr, sr, _ = refine_orientation(q[j], *args, init_step, max_eval, xtol)
            nq[i], ns[i] = (qr, sr) if sr > v else (q[j], v)
            took[i] = True
        q, s, fresh = nq, ns, took
        changed |= took
        src |= took
        if not took.any():
            break
    return q, s, changed


def refine_chunk(quats, mask, imgs, centers, affine, g_c, F2, lam, sigma_s, q_min, q_max, power, init_step, max_eval, xtol):
    """:func:`refine_orientation` of every masked pattern (unmasked rows: the input, score 0)."""
    oq = np.array(quats, dtype=float, copy=True)
    oQ = np.zeros(len(oq))
    for i in np.flatnonzero(mask):
        oq[i], oQ[i], _ = refine_orientation(quats[i], g_c, F2, lam, sigma_s, q_min, q_max, power, imgs[i], centers[i, 0],
                                             centers[i, 1], affine, init_step, max_eval, xtol)
    return oq, oQ


def index_chunk(
    peaks, counts, imgs, centers, affine, cands, base_q, offsets, sp_r, sp_t, sp_w, sp_norm, sym, g_c, F2,
    lam, sigma_s, sigma_coarse, q_min, q_max, power, n_bins, per_template, n_keep,
    n_refine, n_best, rel_dist, distinct_dist, init_step, max_eval, xtol, min_peaks,
):
    """:func:`index_one` for each pattern; patterns with fewer than ``min_peaks`` peaks get the identity and zeros."""
    n = len(peaks)
    out = (np.zeros((n, 4)), np.zeros(n), np.zeros(n), np.zeros((n, n_best, 4)), np.zeros((n, n_best)))
    for i in range(n):
        c = int(counts[i])
        if c < min_peaks:
            out[0][i, 0] = 1.0
            continue
        res = index_one(
            peaks[i, :c, 0], peaks[i, :c, 1], peaks[i, :c, 2], imgs[i], centers[i, 0], centers[i, 1], affine, cands[i],
            base_q, offsets, sp_r, sp_t, sp_w, sp_norm, sym, g_c, F2, lam, sigma_s, sigma_coarse, q_min, q_max, power,
            n_bins, per_template, n_keep, n_refine, n_best, rel_dist, distinct_dist, init_step, max_eval, xtol,
        )
        for arr, v in zip(out, res):
            arr[i] = v
    return out


# --------------------------------------------------------------------------------------------------
# prefilter descriptors
# --------------------------------------------------------------------------------------------------
def radial_descriptor(r, theta, w, bin_width, n_bins, harmonics):
    """Rotation-invariant descriptor with any harmonics: bin k of the radius gets the hat weight
    max(0, 1 − |r/bin_width − k|) of a spot (spots at r/bin_width ≥ n_bins are dropped), the bins are smoothed
    with [½, 1, ½] (no wrap), then |Σ w e^{i m θ}| per bin and harmonic m, bin-major, unit L2 norm.
    With ``harmonics = HARMONICS`` this is :func:`stemgrains.library.templates.radial_descriptor`."""
    x = np.asarray(r, float) / bin_width
    keep = x < n_bins
    x, th, w = x[keep], np.asarray(theta, float)[keep], np.asarray(w, float)[keep]
    k = np.arange(n_bins)
    hat = np.maximum(0.0, 1.0 - np.abs(x[None, :] - k[:, None]))  # (n_bins, n_spots)
    smooth = np.eye(n_bins) + 0.5 * np.eye(n_bins, k=1) + 0.5 * np.eye(n_bins, k=-1)
    phase = np.exp(1j * np.outer(th, np.asarray(harmonics, float))) * w[:, None]  # (n_spots, n_harm)
    out = np.abs(smooth @ hat @ phase).ravel()
    nrm = np.linalg.norm(out)
    return out / nrm if nrm > 0 else out


def peak_radial_descriptors(peaks, counts, bin_width, n_bins, harmonics):
    """:func:`radial_descriptor` of each peak list (rows qx, qy, amplitude), float32 (n, n_bins·len(harmonics))."""
    out = np.zeros((len(peaks), n_bins * len(harmonics)), np.float32)
    for i in range(len(peaks)):
        p = np.asarray(peaks[i, : int(counts[i])], float)
        out[i] = radial_descriptor(np.hypot(p[:, 0], p[:, 1]), np.arctan2(p[:, 1], p[:, 0]), p[:, 2], bin_width, n_bins, harmonics)
    return out


def quick_candidates(peaks, counts, cands, offsets, sp_r, sp_t, sp_w, sp_norm, sigma_q, n_bins, n_peaks, n_keep, min_peaks):
    """:func:`._cpu.quick_candidates` from its docstring: the ``n_peaks`` strongest peaks correlated in-plane with each
    candidate's (subset) spots (:func:`angular_correlation`), max over γ / norm, the ``n_keep`` best (stable order)."""
    n, K = cands.shape
    k_out = min(n_keep, K)
    out = np.empty((n, k_out), np.int64)
    for i in range(n):
        c = int(counts[i])
        if c < min_peaks or k_out == K:
            out[i] = cands[i, :k_out]
            continue
        p = np.asarray(peaks[i, :c], float)
        p = p[np.argsort(-p[:, 2], kind="stable")[: min(n_peaks, c)]]
        r = np.hypot(p[:, 0], p[:, 1])
        o = np.argsort(r, kind="stable")
        score = np.full(K, -1.0)
        for k, t in enumerate(cands[i]):
            s0, s1 = offsets[t], offsets[t + 1]
            if s1 == s0 or sp_norm[t] <= 0:
                continue
            h = angular_correlation(r[o], np.arctan2(p[o, 1], p[o, 0]), p[o, 2], sp_r[s0:s1], sp_t[s0:s1], sp_w[s0:s1],
                                    sigma_q, n_bins)
            score[k] = h.max() / sp_norm[t]
        out[i] = cands[i, np.argsort(-score, kind="stable")[:k_out]]
    return out


# --------------------------------------------------------------------------------------------------
# solution quality
# --------------------------------------------------------------------------------------------------
def solution_quality(q, g_c, F2, lam, sigma_s, s_win, q_min, q_max, power, img, center_row, center_col, affine, px, py, pw, tol_abs, tol_rel):
    """Correlation index (cosine of template and image over the union of predicted spots and unexplained peaks),
    summed weight ``pw`` of the detected peaks explained by a predicted spot (|s| ≤ s_win) within
    tol_abs + tol_rel·|p|, and their RMS distance — written from the docstring of :func:`._cpu.solution_quality` with orix and scipy."""
    g_s = sample_frame(q, g_c)
    r = np.hypot(g_s[:, 0], g_s[:, 1])
    s = excitation_error(g_s, lam)
    inr = (r >= q_min) & (r <= q_max)
    pred = g_s[inr & (np.abs(s) <= s_win), :2]
    use = inr & (s**2 / (2 * sigma_s**2) <= 12.5)
    b = (np.asarray(F2, float)[use] * np.exp(-(s[use] ** 2) / (2 * sigma_s**2))) ** power
    d = g_s[use, :2] @ np.asarray(affine, float).T
    rows, cols = center_row + d[:, 1], center_col + d[:, 0]
    ky, kx = img.shape
    inside = (rows >= 0) & (cols >= 0) & (rows <= ky - 1) & (cols <= kx - 1)
    vals = np.where(inside, ndimage.map_coordinates(np.asarray(img, float), [rows, cols], order=1, mode="nearest"), 0.0)
    p = np.stack([np.asarray(px, float), np.asarray(py, float)], axis=1)
    if len(p) and len(pred):
        dist = np.sqrt(((p[:, None, :] - pred[None, :, :]) ** 2).sum(-1)).min(axis=1)
    else:
        dist = np.full(len(p), np.inf)
    ok = dist <= tol_abs + tol_rel * np.hypot(p[:, 0], p[:, 1])
    dd = p[~ok] @ np.asarray(affine, float).T
    ir = np.clip(np.floor(center_row + dd[:, 1] + 0.5).astype(int), 0, ky - 1)
    ic = np.clip(np.floor(center_col + dd[:, 0] + 0.5).astype(int), 0, kx - 1)
    extra = np.asarray(img, float)[ir, ic]
    bn = np.sum(b**2)
    pn = np.sum(vals**2) + np.sum(extra**2)
    ci = float(np.clip(np.sum(b * vals) / np.sqrt(bn * pn), 0, 1)) if bn > 0 and pn > 0 else 0.0
    res = float(np.sqrt(np.mean(dist[ok] ** 2))) if ok.any() else 0.0
    return ci, float(np.sum(np.asarray(pw, float)[ok])), res


# --------------------------------------------------------------------------------------------------
# final choice among hypotheses and reliability
# --------------------------------------------------------------------------------------------------
def variant_turns(kind):
    """:func:`._cpu.variant_turns` via orix: kind 1 a 60° turn about e3; 2 60° about each of [111], [-111], [1-11],
    [11-1]; 0 none. Rows (k, 4), scalar first."""
    axes = {0: [], 1: [[0, 0, 1]], 2: [[1, 1, 1], [-1, 1, 1], [1, -1, 1], [1, 1, -1]]}[int(kind)]
    if not axes:
        return np.zeros((0, 4))
    return Rotation.from_axes_angles(np.asarray(axes, float), np.pi / 3).data.reshape(-1, 4)


def pseudo_symmetric(q, kind):
    """O ∘ Rz(180°), then for each turn T of :func:`variant_turns` (a turn of the crystal) T ∘ O and
    T ∘ O ∘ Rz(180°), via orix rotation composition; scalar part ≥ 0."""
    O = Rotation(np.asarray(q, float))
    rz = Rotation.from_axes_angles([0, 0, 1], np.pi)
    out = [O * rz]
    for t in variant_turns(kind):
        T = Rotation(t)
        out += [T * O, T * O * rz]
    arr = np.concatenate([r.data.reshape(-1, 4) for r in out])
    arr[arr[:, 0] < 0] *= -1
    return arr


def rescore_one(q0, cands, px, py, pw, img, center_row, center_col, affine, sym, g_c, F2, lam, sigma_s, s_win, q_min, q_max,
                power, tol_abs, tol_rel, variant_kind, rel_dist, same_dist, init_step, max_eval, xtol, listed_dist=0.0, fit_power=0.0,
                c_dist=0.0):
    """:func:`._cpu.rescore_one` from its docstring: hypotheses q0, the non-zero candidate rows (as given), the
    pseudo-symmetric orientations of q0 (none within listed_dist of one listed before them; those scoring at
    least 0.75 of q0 refined with scipy's Nelder–Mead); then
    duplicates within same_dist dropped; the best by image
    score; R over every hypothesis more than rel_dist away; R_twin against the best's beam twin.

    With ``fit_power > 0`` every score (the beam twin's too, where it is refined apart) is the image score times
    :func:`fit_factor` of its orientation, and R is the smaller of R over those scores and R over the image scores
    alone (the hypotheses more than rel_dist from the best; the twin refined apart does not enter the latter).

    R_c (``c_dist > 0``, else NaN): the same R over the hypotheses whose c axes (orix: O⁻¹ · (0, 0, 1)) make an
    angle above c_dist with the best's both as they are and with one of them mirrored through the sample xy
    plane (the beam twin's c axis), bounded by R_c over the image scores alone when ``fit_power > 0``."""
    image = lambda q: image_score(q, g_c, F2, lam, sigma_s, q_min, q_max, power, img, center_row, center_col, affine)  # noqa: E731

    def score(q):
        Q = image(q)
        if fit_power > 0:
            Q *= fit_factor(q, g_c, lam, s_win, q_min, q_max, px, py, tol_abs, tol_rel, fit_power)
        return Q

    refine = lambda q: refine_orientation(q, g_c, F2, lam, sigma_s, q_min, q_max, power, img, center_row, center_col, affine, init_step, max_eval, xtol)[0]  # noqa: E731
    srcs = [(np.asarray(q0, float), False)] + [(c, False) for c in np.asarray(cands, float) if np.any(c != 0)]
    srcs += [(a, True) for a in pseudo_symmetric(q0, variant_kind)]
    hyp: list[np.ndarray] = []
    s0 = image(srcs[0][0])
    for q, ref in srcs:
        if ref and listed_dist > 0 and min(sym_distance(q, h, sym) for h in hyp) < listed_dist:
            continue  # a listed hypothesis stands for it
        q = refine(q) if ref and image(q) >= 0.75 * s0 else q
        if hyp and min(sym_distance(q, h, sym) for h in hyp) < same_dist:
            continue
        hyp.append(q)
    Q = np.array([score(q) for q in hyp])
    order = np.argsort(-Q, kind="stable")
    b = order[0]
    best = hyp[b]
    twin = pseudo_symmetric(best, 0)[0]
    twin_same = sym_distance(best, twin, sym) <= rel_dist
    far = [Q[k] for k in order[1:] if sym_distance(best, hyp[k], sym) > rel_dist]
    near_twin = [Q[k] for k in order[1:] if sym_distance(best, hyp[k], sym) > rel_dist and sym_distance(twin, hyp[k], sym) <= rel_dist]
    q2 = max(far) if far else 0.0
    if twin_same:
        rel_t = 100.0
    else:
        qt = max(near_twin) if near_twin else score(refine(twin))
        q2 = max(q2, qt)
        rel_t = float(np.clip(100 * (1 - qt / Q[b]), 0, 100)) if Q[b] > 0 else 0.0
    rel = float(np.clip(100 * (1 - q2 / Q[b]), 0, 100)) if Q[b] > 0 else 0.0
    if fit_power > 0:
        img_q = np.array([image(q) for q in hyp])
        far_i = [img_q[k] for k in range(len(hyp)) if k != b and sym_distance(best, hyp[k], sym) > rel_dist]
        i2 = max(far_i) if far_i else 0.0
        rel = min(rel, float(np.clip(100 * (1 - i2 / img_q[b]), 0, 100)) if img_q[b] > 0 else 0.0)
    rel_c = np.nan
    if c_dist > 0:
        apart = [k for k in range(len(hyp)) if k != b and c_axes_apart(best, hyp[k], c_dist)]
        qc = max((Q[k] for k in apart), default=0.0)
        rel_c = float(np.clip(100 * (1 - qc / Q[b]), 0, 100)) if Q[b] > 0 else 0.0
        if fit_power > 0:
            img_q = np.array([image(q) for q in hyp])
            ic = max((img_q[k] for k in apart), default=0.0)
            rel_c = min(rel_c, float(np.clip(100 * (1 - ic / img_q[b]), 0, 100)) if img_q[b] > 0 else 0.0)
    ci, n_ok, res = solution_quality(best, g_c, F2, lam, sigma_s, s_win, q_min, q_max, power, img, center_row, center_col, affine, px, py, pw, tol_abs, tol_rel)
    return best, float(Q[b]), ci, n_ok, res, rel, rel_t, np.array([hyp[k] for k in order]), Q[order], rel_c


def c_axes_apart(q1, q2, c_dist):
    """Whether the c axes (orix: O⁻¹ · (0, 0, 1)) of q1 and q2 make an angle above c_dist (rad) as lines, both as
    they are and with the second mirrored through the sample xy plane (the beam twin's c axis)."""
    def c_axis(q):
        return (~Rotation(np.asarray(q, float))) * Vector3d.zvector()

    def line_angle(u, v):  # angle between two lines, rad
        a = float(u.angle_with(v)[0])
        return min(a, np.pi - a)

    c1, c2 = c_axis(q1), c_axis(q2)
    return min(line_angle(c1, c2), line_angle(c1, Vector3d(c2.data * [1, 1, -1]))) > c_dist


def c_rival_past(q, hq, n_out, c_dist):
    """:func:`._cpu.c_rival_past` from its docstring: the first row j ≥ n_out of hq whose c axis is apart from q's
    when no row 1 … n_out − 1 is, else −1."""
    if c_dist <= 0 or n_out < 2 or len(hq) <= n_out:
        return -1
    if any(c_axes_apart(q, h, c_dist) for h in hq[1:n_out]):
        return -1
    return next((j for j in range(n_out, len(hq)) if c_axes_apart(q, hq[j], c_dist)), -1)


def fit_chance(q, g_c, lam, s_win, q_min, q_max, tol_abs, tol_rel, n_points):
    """Fraction of the sunflower-spiral points of the annulus (|p|² = q_min² + (k + ½)/n (q_max² − q_min²), angle
    k·π(3 − √5)) within tol_abs + tol_rel·|p| of a spot of q with |s| ≤ s_win, via orix and numpy broadcasting."""
    g_s = sample_frame(q, g_c)
    r = np.hypot(g_s[:, 0], g_s[:, 1])
    s = excitation_error(g_s, lam)
    pred = g_s[(np.abs(s) <= s_win) & (r >= q_min) & (r <= q_max), :2]
    k = np.arange(n_points)
    rr = np.sqrt(q_min**2 + (k + 0.5) / n_points * (q_max**2 - q_min**2))
    t = k * np.pi * (3 - np.sqrt(5))
    pts = np.stack([rr * np.cos(t), rr * np.sin(t)], axis=1)
    if len(pred) == 0:
        return 0.0
    d = np.sqrt(((pts[:, None, :] - pred[None]) ** 2).sum(-1)).min(axis=1)
    return float(np.mean(d <= tol_abs + tol_rel * rr))


def anchor_neighbours(scan_shape, targets, anchors, reach, block_rows=None):
    """:func:`stemgrains.index.api.anchor_neighbours` by comparing every target with every anchor."""
    ny, nx = scan_shape
    targets = np.asarray(targets, dtype=np.int64)
    anchors = np.asarray(anchors, dtype=np.int64)
    t_out, rows_out = [], []
    for t in targets:
        r, c = divmod(int(t), nx)
        near = []
        for a in anchors:
            ar, ac = divmod(int(a), nx)
            dr, dc = abs(ar - r), abs(ac - c)
            if block_rows and ar // block_rows != r // block_rows:
                continue
            if max(dr, dc) <= reach:
                near.append((max(dr, dc) + 1e-3 * (dr + dc), int(a)))
        if near:
            near.sort()  # by distance key, then scan order
            t_out.append(int(t))
            rows_out.append([a for _, a in near])
    width = max((len(x) for x in rows_out), default=0)
    nb = np.full((len(rows_out), width), -1, np.int64)
    for i, x in enumerate(rows_out):
        nb[i, :len(x)] = x
    return np.array(t_out, np.int64), nb


# --------------------------------------------------------------------------------------------------
# spot fit and spot-pair hypotheses (:mod:`._pairs`)
# --------------------------------------------------------------------------------------------------
def predicted_positions(q, g_c, lam, s_win, q_min, q_max):
    """Sample-frame (x, y) (m, 2) and row indices into ``g_c`` (m,) of the reflections of orientation ``q`` with
    |s| ≤ s_win and q_min ≤ |g_xy| ≤ q_max (orix and :func:`stemgrains.crystal.scattering.excitation_error`)."""
    g_s = sample_frame(q, g_c)
    r = np.hypot(g_s[:, 0], g_s[:, 1])
    ok = (np.abs(excitation_error(g_s, lam)) <= s_win) & (r >= q_min) & (r <= q_max)
    return g_s[ok, :2], np.flatnonzero(ok)


def nearest_predicted(q, g_c, lam, s_win, q_min, q_max, px, py, tol_abs, tol_rel):
    """For each detected spot: the row of ``g_c`` of its nearest predicted spot and whether that lies within
    tol_abs + tol_rel·|p| (all distances by numpy broadcasting)."""
    pred, idx = predicted_positions(q, g_c, lam, s_win, q_min, q_max)
    p = np.stack([np.asarray(px, float), np.asarray(py, float)], axis=1)
    if len(p) == 0 or len(pred) == 0:
        return np.zeros(len(p), np.int64), np.zeros(len(p), bool)
    d = np.sqrt(((p[:, None, :] - pred[None, :, :]) ** 2).sum(-1))
    k = np.argmin(d, axis=1)
    return idx[k], d[np.arange(len(p)), k] <= tol_abs + tol_rel * np.hypot(p[:, 0], p[:, 1])


def explained_count(q, g_c, lam, s_win, q_min, q_max, px, py, tol_abs, tol_rel):
    """Detected spots within tol_abs + tol_rel·|p| of a predicted spot of ``q`` (:func:`predicted_positions`)."""
    return int(nearest_predicted(q, g_c, lam, s_win, q_min, q_max, px, py, tol_abs, tol_rel)[1].sum())


def fit_factor(q, g_c, lam, s_win, q_min, q_max, px, py, tol_abs, tol_rel, fit_power):
    """((explained + 1) / (detected + 1)) ** fit_power."""
    n_ok = explained_count(q, g_c, lam, s_win, q_min, q_max, px, py, tol_abs, tol_rel)
    return float(((n_ok + 1.0) / (len(px) + 1.0)) ** fit_power)


def matrix_to_quaternion(R):
    """Unit quaternion (scalar part ≥ 0) of the rotation matrix R (v_crystal = R v_sample, :func:`qmatrix`), via
    scipy's ``Rotation.from_matrix`` (scipy's matrix of a quaternion is :func:`qmatrix`'s; the tests check it)."""
    q = SciPyRotation.from_matrix(np.asarray(R, float)).as_quat(scalar_first=True)
    return -q if q[0] < 0 else q


def on_ewald_sphere(px, py, lam):
    """Detected spots (px, py) as sample-frame 3-vectors at exact Bragg condition, g_z = −λ|p|²/2 (s = 0 of
    :func:`excitation_error` to first order in λ|g|, the placement the kernels use), (n, 3)."""
    px, py = np.asarray(px, float), np.asarray(py, float)
    return np.stack([px, py, -0.5 * lam * (px**2 + py**2)], axis=1)


def pair_orientation(g_a, g_b, v_i, v_j):
    """The rotation with g_a ∥ R v_i exactly and g_b in the plane of R v_i, R v_j (on the side of R v_j): scipy's
    ``align_vectors`` with an infinite weight on the first pair. Quaternion, scalar part ≥ 0."""
    unit = lambda x: np.asarray(x, float) / np.linalg.norm(x)  # noqa: E731
    rot, _ = SciPyRotation.align_vectors(np.stack([unit(g_a), unit(g_b)]), np.stack([unit(v_i), unit(v_j)]), weights=[np.inf, 1.0])
    return matrix_to_quaternion(rot.as_matrix())


def refine_positions(q, g_c, lam, s_win, q_min, q_max, px, py, tol_abs, tol_rel, n_iter):
    """:func:`._pairs.refine_positions` from its docstring: ``n_iter`` rounds of (pair each explained spot, placed
    by :func:`on_ewald_sphere`, with its nearest predicted reflection; the rotation minimising Σ |R v − g|² by
    scipy's ``align_vectors``), stopping where fewer than 3 spots are explained; the round explaining the most spots
    (the later on ties, the start where none does better) is returned with its count."""
    best_q = np.asarray(q, float).copy()
    best_n = explained_count(best_q, g_c, lam, s_win, q_min, q_max, px, py, tol_abs, tol_rel)
    v = on_ewald_sphere(px, py, lam)
    cur = best_q
    for _ in range(n_iter):
        j, ok = nearest_predicted(cur, g_c, lam, s_win, q_min, q_max, px, py, tol_abs, tol_rel)
        if ok.sum() < 3:
            break
        rot, _ = SciPyRotation.align_vectors(np.asarray(g_c, float)[j[ok]], v[ok])
        cur = matrix_to_quaternion(rot.as_matrix())
        n = explained_count(cur, g_c, lam, s_win, q_min, q_max, px, py, tol_abs, tol_rel)
        if n >= best_n:
            best_q, best_n = cur, n
    return best_q, best_n


def canonical(q, sym):
    """The s ⊗ q (s in ``sym``, orix products) with the largest |scalar part| (the first of equals), sign-flipped
    to a scalar part ≥ 0."""
    ops = (Quaternion(np.asarray(sym, float)) * Quaternion(np.asarray(q, float))).data.reshape(-1, 4)
    p = ops[int(np.argmax(np.abs(ops[:, 0])))].copy()
    return -p if p[0] < 0 else p


def pair_votes(px, py, amp, g, rep, lam, tol_abs, tol_rel, k_use, sym, same_dist):
    """The orientations proposed by the spot pairs and their votes, by brute force (the first part of
    :func:`._pairs.pair_hypotheses_one`): every ordered pair (i, j) of the ``k_use`` strongest spots (by ``amp``,
    placed by :func:`on_ewald_sphere`) at least 8° from collinear, against every pair (a, b) of rows of ``g`` with
    ``rep[a]``, g_b not collinear with g_a, ||g_a| − |v_i|| ≤ t_i, ||g_b| − |v_j|| ≤ t_j (t = tol_abs + tol_rel·|v|)
    and |∠(g_a, g_b) − ∠(v_i, v_j)| ≤ t_i/|v_i| + t_j/|v_j|; pairs in the order (i, j, a, b). Each match gives
    q = :func:`canonical` (:func:`pair_orientation`); it votes for the first orientation listed within
    ``same_dist`` (rad, 2 arccos|q·p|) of it, or is listed with one vote. Returns (orientations (m, 4), votes (m,))."""
    amp = np.asarray(amp, float)
    strongest = np.argsort(-amp, kind="stable")[:k_use]
    v = on_ewald_sphere(np.asarray(px, float)[strongest], np.asarray(py, float)[strongest], lam)
    nv = np.linalg.norm(v, axis=1)
    g = np.asarray(g, float)
    gn = np.linalg.norm(g, axis=1)
    ug = g / gn[:, None]
    ang_g = np.arccos(np.clip(ug @ ug.T, -1.0, 1.0))
    not_collinear = np.linalg.norm(np.cross(ug[:, None, :], ug[None, :, :]), axis=-1) > 1e-6
    seeds: list[np.ndarray] = []
    votes: list[int] = []
    for i in range(len(v)):
        for j in range(len(v)):
            if i == j:
                continue
            ang = float(np.arccos(np.clip(v[i] @ v[j] / (nv[i] * nv[j]), -1.0, 1.0)))
            if min(ang, np.pi - ang) < np.deg2rad(8.0):
                continue
            ti, tj = tol_abs + tol_rel * nv[i], tol_abs + tol_rel * nv[j]
            ok = (np.asarray(rep, bool) & (np.abs(gn - nv[i]) <= ti))[:, None] & (np.abs(gn - nv[j]) <= tj)[None, :]
            ok &= not_collinear & (np.abs(ang_g - ang) <= ti / nv[i] + tj / nv[j])
            for a, b in np.argwhere(ok):  # row-major: a, then b
                q = canonical(pair_orientation(g[a], g[b], v[i], v[j]), sym)
                if seeds:
                    d = 2.0 * np.arccos(np.minimum(np.abs(np.array(seeds) @ q), 1.0))
                    near = np.flatnonzero(d <= same_dist)
                    if len(near):
                        votes[near[0]] += 1
                        continue
                seeds.append(q)
                votes.append(1)
    return np.array(seeds).reshape(-1, 4), np.array(votes, np.int64)


def pair_hypotheses_one(px, py, amp, g, length, rep, g_fit, lam, s_win, q_min, q_max, tol_abs, tol_rel, k_use, n_keep, sym,
                        same_dist, n_refine_pos=3, n_vote=16):
    """:func:`._pairs.pair_hypotheses_one` from its docstring: the votes of :func:`pair_votes` (lengths from ``g``
    itself; ``length`` is not used), the ``n_vote`` most voted (stable) scored by :func:`explained_count` on
    ``g_fit``; walking them by falling count (stable), each fitted by :func:`refine_positions` and kept unless within
    same_dist (:func:`sym_distance`) of one kept before, up to ``n_keep``. Returns (quaternions (n_keep, 4), zeros
    where none; counts (n_keep,), −1 where none)."""
    out_q = np.zeros((n_keep, 4))
    out_c = -np.ones(n_keep)
    seeds, votes = pair_votes(px, py, amp, g, rep, lam, tol_abs, tol_rel, k_use, sym, same_dist)
    if len(seeds) == 0:
        return out_q, out_c
    top = np.argsort(-votes, kind="stable")[:n_vote]
    counts = np.array([explained_count(seeds[t], g_fit, lam, s_win, q_min, q_max, px, py, tol_abs, tol_rel) for t in top])
    kept: list[np.ndarray] = []
    for t in np.argsort(-counts, kind="stable"):
        if len(kept) == n_keep:
            break
        q, c = seeds[top[t]], counts[t]
        if n_refine_pos > 0:
            q, c = refine_positions(q, g_fit, lam, s_win, q_min, q_max, px, py, tol_abs, tol_rel, n_refine_pos)
        if any(sym_distance(q, k, sym) <= same_dist for k in kept):
            continue
        out_q[len(kept)] = q
        out_c[len(kept)] = c
        kept.append(q)
    return out_q, out_c


# --------------------------------------------------------------------------------------------------
# grain-level decision among near-tied hypotheses (:mod:`._vote`)
# --------------------------------------------------------------------------------------------------
def tied_hypothesis(o, hyp_q, hyp_s, sym, tol, tie):
    """Index of the nearest used hypothesis within ``tol`` scoring ≥ ``tie`` × the best, or −1."""
    used = [j for j in range(len(hyp_q)) if np.any(hyp_q[j] != 0) and hyp_s[j] >= tie * hyp_s[0]]
    dist = {j: sym_distance(o, hyp_q[j], sym) for j in used}
    near = [j for j in used if dist[j] < tol]
    return min(near, key=lambda j: (dist[j], j)) if near else -1


def grain_vote(q, mask, hyp_q, hyp_s, reliability, ny, nx, sym, tol, tie, r_cut, min_size, majority, n_summed, z):
    """:func:`._vote.grain_vote` with Python sets, lists and breadth-first search by ``collections.deque``."""
    from collections import deque

    def linked(i, j):
        return (sym_distance(q[i], q[j], sym) < tol
                or tied_hypothesis(q[j], hyp_q[i], hyp_s[i], sym, tol, tie) >= 0
                or tied_hypothesis(q[i], hyp_q[j], hyp_s[j], sym, tol, tie) >= 0)

    n = ny * nx
    labels = np.full(n, -1)
    out = np.array(q, float, copy=True)
    switched = np.zeros(n, bool)
    strength = np.zeros(n)
    groups = []
    for s in range(n):
        if not mask[s] or labels[s] >= 0:
            continue
        labels[s] = len(groups)
        members, todo = [s], deque([s])
        while todo:
            i = todo.popleft()
            r, c = divmod(i, nx)
            for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                j = rr * nx + cc
                if 0 <= rr < ny and 0 <= cc < nx and mask[j] and labels[j] < 0 and linked(i, j):
                    labels[j] = len(groups)
                    members.append(j)
                    todo.append(j)
        groups.append(members)
    for members in groups:
        if len(members) < min_size:
            continue
        clusters: list[list[int]] = []  # member pixels, the first one's solution the cluster's
        for i in members:
            home = next((cl for cl in clusters if sym_distance(q[i], q[cl[0]], sym) < tol), None)
            if home is not None:
                home.append(i)
            elif len(clusters) < 32:
                clusters.append([i])
        big = max(clusters, key=len)  # the first of equal ones
        if len(big) <= majority * len(members):
            continue
        for i in members:
            if len(clusters) < 2 or i in big or reliability[i] >= r_cut:
                continue
            j = tied_hypothesis(q[big[0]], hyp_q[i], hyp_s[i], sym, tol, tie)
            if j >= 0:
                out[i] = hyp_q[i][j]
                switched[i] = True
        b, size = len(big), len(members)
        n_eff = size / max(float(np.mean([n_summed[i] for i in members])), 1.0)  # independent patterns, about
        if (b - (size - b)) / size * n_eff > z * np.sqrt(n_eff):  # the sign test on them
            for i in members:
                if sym_distance(out[i], q[big[0]], sym) < tol:
                    strength[i] = 100.0 * (2 * b - size) / size
    return out, switched, labels, strength
