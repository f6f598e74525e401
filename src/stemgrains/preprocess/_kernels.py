"""Numba preprocessing kernels. Each has a slow numpy reference in :mod:`._reference`.

Kernels take arrays and scalars only, never mutate their inputs, and are compiled with
``cache=True, nogil=True``; the public functions in :mod:`.api` validate and convert.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def center_of_mass_disk(pattern, row0, col0, radius, n_iter):
    """Direct-beam centre: iterated centre of mass inside a disk of ``radius`` px around the current estimate."""
    ky, kx = pattern.shape
    r, c = row0, col0
    for _ in range(n_iter):
        s = 0.0
        sr = 0.0
        sc = 0.0
        r_lo = max(0, int(np.floor(r - radius)))
        r_hi = min(ky - 1, int(np.ceil(r + radius)))
        c_lo = max(0, int(np.floor(c - radius)))
        c_hi = min(kx - 1, int(np.ceil(c + radius)))
        rad2 = radius * radius
        for i in range(r_lo, r_hi + 1):
            for j in range(c_lo, c_hi + 1):
                if (i - r) ** 2 + (j - c) ** 2 <= rad2:
                    v = pattern[i, j]
                    s += v
                    sr += v * i
                    sc += v * j
        if s <= 0:
            break
        r = sr / s
        c = sc / s
    return r, c


@nb.njit(cache=True, nogil=True)
def bilinear(img, r, c):
    """Bilinear interpolation of ``img`` at (row, col); 0 outside."""
    ky, kx = img.shape
    if r < 0 or c < 0 or r > ky - 1 or c > kx - 1:
        return 0.0
    r0 = min(int(r), ky - 2) if ky > 1 else 0
    c0 = min(int(c), kx - 2) if kx > 1 else 0
    fr = r - r0
    fc = c - c0
    r1 = min(r0 + 1, ky - 1)
    c1 = min(c0 + 1, kx - 1)
    return (
        img[r0, c0] * (1 - fr) * (1 - fc)
        + img[r0, c1] * (1 - fr) * fc
        + img[r1, c0] * fr * (1 - fc)
        + img[r1, c1] * fr * fc
    )


@nb.njit(cache=True, nogil=True)
def polar_transform(pattern, center_row, center_col, affine, q_radii, angles):
    """Sample a pattern on a polar grid of the sample frame.

    ``affine`` (2×2) maps sample q (qx, qy) in 1/Å to detector offsets (dcol, drow) in px (it contains the
    calibrated rotation, flip and ellipticity); the grid point (i, j) is q = q_radii[i]·(cos angles[j], sin angles[j]).
    Returns ``(len(q_radii), len(angles))`` float64, bilinear interpolation, 0 outside the detector.
    """
    nr = q_radii.shape[0]
    nt = angles.shape[0]
    out = np.zeros((nr, nt))
    for j in range(nt):
        ca = np.cos(angles[j])
        sa = np.sin(angles[j])
        for i in range(nr):
            qx = q_radii[i] * ca
            qy = q_radii[i] * sa
            dcol = affine[0, 0] * qx + affine[0, 1] * qy
            drow = affine[1, 0] * qx + affine[1, 1] * qy
            out[i, j] = bilinear(pattern, center_row + drow, center_col + dcol)
    return out


@nb.njit(cache=True, nogil=True, inline="always")
def ring_index(i, j, center_row, center_col, affine_inv, bin_width_q, n_bins):
    """Ring (width ``bin_width_q``, 1/Å, through ``affine_inv`` from the centre) of detector pixel (i, j); −1
    beyond the last of ``n_bins``."""
    dr = i - center_row
    dc = j - center_col
    qx = affine_inv[0, 0] * dc + affine_inv[0, 1] * dr
    qy = affine_inv[1, 0] * dc + affine_inv[1, 1] * dr
    b = int(np.sqrt(qx * qx + qy * qy) / bin_width_q)
    return b if b < n_bins else -1


@nb.njit(cache=True, nogil=True)
def ring_values(image, center_row, center_col, affine_inv, bin_width_q, n_bins):
    """Pixel values of ``image`` grouped by ring: ring ``b`` (width ``bin_width_q``, 1/Å, through ``affine_inv``
    from the centre) holds ``vals[starts[b]:starts[b + 1]]`` (row-major order), ``counts[b]`` of them; pixels
    beyond the last ring are left out; ``bins`` (ky·kx,) is each pixel's ring (−1 beyond the last). Returns
    ``(vals, starts, counts, bins)``."""
    ky, kx = image.shape
    counts = np.zeros(n_bins, np.int64)
    bins = np.empty((ky * kx,), np.int64)
    for i in range(ky):
        for j in range(kx):
            b = ring_index(i, j, center_row, center_col, affine_inv, bin_width_q, n_bins)
            if b >= 0:
                counts[b] += 1
            bins[i * kx + j] = b
    starts = np.zeros(n_bins + 1, np.int64)
    for b in range(n_bins):
        starts[b + 1] = starts[b] + counts[b]
    vals = np.empty(starts[n_bins], np.float64)
    fill = starts[:-1].copy()
    for i in range(ky):
        for j in range(kx):
            b = bins[i * kx + j]
            if b >= 0:
                vals[fill[b]] = image[i, j]
                fill[b] += 1
    return vals, starts, counts, bins


@nb.njit(cache=True, nogil=True)
def radial_background(pattern, center_row, center_col, affine_inv, bin_width_q, n_bins, quantile):
    """Per-radius background: the ``quantile`` of pixel values in rings of width ``bin_width_q`` (1/Å).

    Spots are sparse, so a low quantile of a ring is the smooth background. Returns (n_bins,) profile.
    """
    vals, starts, counts, _ = ring_values(pattern, center_row, center_col, affine_inv, bin_width_q, n_bins)
    prof = np.zeros(n_bins)
    for b in range(n_bins):
        n = counts[b]
        if n > 0:
            seg = np.sort(vals[starts[b] : starts[b + 1]])
            k = min(n - 1, int(quantile * (n - 1) + 0.5))
            prof[b] = seg[k]
    return prof


@nb.njit(cache=True, nogil=True)
def find_peaks(img, threshold, min_distance, max_peaks, exclude_row, exclude_col, exclude_radius):
    """Local maxima of ``img`` above ``threshold`` in a (2·min_distance+1)² window, strongest first.

    Sub-pixel position from a parabola fit along rows and columns through the 3-point neighbourhood.
    Maxima within ``exclude_radius`` px of (exclude_row, exclude_col) (the direct beam) are dropped.
    Returns (n, 3) float64 rows of (row, col, intensity); intensity = the peak's value.
    """
    ky, kx = img.shape
    cand_r = []
    cand_c = []
    cand_v = []
    ex2 = exclude_radius * exclude_radius
    for i in range(1, ky - 1):
        for j in range(1, kx - 1):
            v = img[i, j]
            if v <= threshold:
                continue
            if (i - exclude_row) ** 2 + (j - exclude_col) ** 2 <= ex2:
                continue
            # the 8 direct neighbours first (the same strict / tie rule as below): most pixels that are no maximum
            # are beaten by one of them, and this test is cheaper than the window's loop (~20 % of spot detection)
            if min_distance >= 1 and (
                    img[i, j + 1] > v or img[i + 1, j] > v or img[i + 1, j + 1] > v or img[i + 1, j - 1] > v
                    or img[i, j - 1] >= v or img[i - 1, j] >= v or img[i - 1, j - 1] >= v or img[i - 1, j + 1] >= v):
                continue
            is_max = True
            for di in range(-min_distance, min_distance + 1):
                ii = i + di
                if ii < 0 or ii >= ky:
                    continue
                for dj in range(-min_distance, min_distance + 1):
                    jj = j + dj
                    if jj < 0 or jj >= kx or (di == 0 and dj == 0):
                        continue
                    w = img[ii, jj]
                    # ties broken by raster order so a flat-topped spot gives one maximum
                    if w > v or (w == v and (di < 0 or (di == 0 and dj < 0))):
                        is_max = False
                        break
                if not is_max:
                    break
            if is_max:
                cand_r.append(i)
                cand_c.append(j)
                cand_v.append(v)
    n = len(cand_v)
    vals = np.empty(n)
    for k in range(n):
        vals[k] = cand_v[k]
    order = np.argsort(-vals, kind="mergesort")
    m = min(n, max_peaks)
    out = np.empty((m, 3))
    for k in range(m):
        idx = order[k]
        i = cand_r[idx]
        j = cand_c[idx]
        v = cand_v[idx]
        a = img[i - 1, j]
        b = img[i + 1, j]
        den = a - 2 * v + b
        dr = 0.5 * (a - b) / den if den < 0 else 0.0
        a = img[i, j - 1]
        b = img[i, j + 1]
        den = a - 2 * v + b
        dc = 0.5 * (a - b) / den if den < 0 else 0.0
        out[k, 0] = i + min(max(dr, -0.5), 0.5)
        out[k, 1] = j + min(max(dc, -0.5), 0.5)
        out[k, 2] = v
    return out


@nb.njit(cache=True, nogil=True)
def box_sum3(img):
    """3 × 3 box sum (zero padded)."""
    ky, kx = img.shape
    tmp = np.zeros((ky, kx))
    out = np.zeros((ky, kx))
    for i in range(ky):
        for j in range(kx):
            s = img[i, j]
            if j > 0:
                s += img[i, j - 1]
            if j < kx - 1:
                s += img[i, j + 1]
            tmp[i, j] = s
    for i in range(ky):
        for j in range(kx):
            s = tmp[i, j]
            if i > 0:
                s += tmp[i - 1, j]
            if i < ky - 1:
                s += tmp[i + 1, j]
            out[i, j] = s
    return out


@nb.njit(cache=True, nogil=True)
def brightest_near(img, row, col, radius):
    """(row, col) of the largest value of ``img`` within ``radius`` px of (row, col)."""
    ky, kx = img.shape
    best = -np.inf
    br = int(row + 0.5)
    bc = int(col + 0.5)
    r2 = radius * radius
    for i in range(max(0, int(row - radius)), min(ky, int(row + radius) + 2)):
        for j in range(max(0, int(col - radius)), min(kx, int(col + radius) + 2)):
            if (i - row) ** 2 + (j - col) ** 2 <= r2 and img[i, j] > best:
                best = img[i, j]
                br = i
                bc = j
    return float(br), float(bc)


@nb.njit(cache=True, nogil=True)
def ring_mean(img, row, col, radius):
    """Mean of ``img`` on the square ring at Chebyshev distance ``radius`` around integer (row, col)."""
    ky, kx = img.shape
    s = 0.0
    n = 0
    for d in range(-radius, radius + 1):  # top and bottom rows, corners included
        for (i, j) in ((row - radius, col + d), (row + radius, col + d)):
            if 0 <= i < ky and 0 <= j < kx:
                s += img[i, j]
                n += 1
    for d in range(-radius + 1, radius):  # left and right columns, without the corners
        for (i, j) in ((row + d, col - radius), (row + d, col + radius)):
            if 0 <= i < ky and 0 <= j < kx:
                s += img[i, j]
                n += 1
    return s / n if n > 0 else 0.0


@nb.njit(cache=True, nogil=True)
def detect_spots(pattern, fixed_center, center_row, center_col, search_radius, beam_radius, affine_inv, q_min, q_max, n_sigma, min_distance, max_peaks, ring_radius, power, n_sigma_sparse, min_spots):
    """Diffraction spots of one pattern in the sample frame.

    Direct-beam centre: ``(center_row, center_col)`` if ``fixed_center``; else the brightest 3 × 3 box sum within
    ``search_radius`` px of ``(center_row, center_col)`` (the nominal centre), refined by the iterated centre of mass
    of a disk of ``beam_radius`` px (a bright Bragg spot far from the nominal centre is never taken for the beam). Spots: local maxima of the 3 × 3 box sum whose
    excess over the mean of a surrounding square ring (radius ``ring_radius`` px) exceeds
    ``n_sigma``·sqrt(ring mean + 1) (Poisson), outside q_min and inside q_max (1/Å). A sparse pattern — fewer than
    ``min_spots`` such spots — also takes the brightest of the weaker maxima whose excess exceeds
    ``n_sigma_sparse``·sqrt(ring mean + 1), until it has ``min_spots`` (they follow the others in the output).

    Returns (peaks (max_peaks, 3) rows (qx, qy, excess**power), count, centre_row, centre_col, count above
    ``n_sigma``: the first rows).
    """
    img = pattern.astype(np.float64)
    ky, kx = img.shape
    S = box_sum3(img)
    if fixed_center:
        cr, cc = center_row, center_col
    else:
        cr, cc = brightest_near(S, center_row, center_col, search_radius)
        cr, cc = center_of_mass_disk(img, cr, cc, beam_radius, 4)
    cands = find_peaks(S, 0.0, min_distance, 4 * max_peaks + 16, cr, cc, 0.0)
    out = np.zeros((max_peaks, 3))
    m = 0
    m_strong = 0
    for sparse in range(2):
        if sparse == 1:
            m_strong = m
            if m >= min(min_spots, max_peaks) or n_sigma_sparse >= n_sigma:
                break
        for k in range(cands.shape[0]):
            r = cands[k, 0]
            c = cands[k, 1]
            ir = int(r + 0.5)
            ic = int(c + 0.5)
            bg = ring_mean(S, ir, ic, ring_radius)
            excess = S[ir, ic] - bg
            noise = np.sqrt(max(bg, 0.0) + 1.0)
            if excess <= n_sigma * noise:
                if sparse == 0 or excess <= n_sigma_sparse * noise:
                    continue
            elif sparse == 1:  # taken in the first pass
                continue
            dr = r - cr
            dc = c - cc
            qx = affine_inv[0, 0] * dc + affine_inv[0, 1] * dr
            qy = affine_inv[1, 0] * dc + affine_inv[1, 1] * dr
            qq = np.sqrt(qx * qx + qy * qy)
            if qq < q_min or qq > q_max:
                continue
            out[m, 0] = qx
            out[m, 1] = qy
            out[m, 2] = excess**power
            m += 1
            if m == max_peaks or (sparse == 1 and m == min_spots):
                break
    return out, m, cr, cc, m_strong


@nb.njit(cache=True, nogil=True, parallel=True)
def detect_spots_chunk(block, fixed_center, center_row, center_col, search_radius, beam_radius, affine_inv, q_min, q_max, n_sigma, min_distance, max_peaks, ring_radius, power, n_sigma_sparse, min_spots):
    """:func:`detect_spots` over a (n, ky, kx) stack, parallel over patterns: (peaks (n, max_peaks, 3), counts (n,),
    centres (n, 2), counts above n_sigma (n,))."""
    n = block.shape[0]
    peaks = np.zeros((n, max_peaks, 3))
    counts = np.zeros(n, np.int64)
    strong = np.zeros(n, np.int64)
    centers = np.zeros((n, 2))
    for i in nb.prange(n):
        p, m, cr, cc, ms = detect_spots(block[i], fixed_center, center_row, center_col, search_radius, beam_radius, affine_inv, q_min, q_max, n_sigma, min_distance, max_peaks, ring_radius, power, n_sigma_sparse, min_spots)
        peaks[i] = p
        counts[i] = m
        strong[i] = ms
        centers[i, 0] = cr
        centers[i, 1] = cc
    return peaks, counts, centers, strong


@nb.njit(cache=True, nogil=True)
def select_kth(a, k):
    """The k-th smallest value of ``a`` (1-D, reordered in place): quickselect with three-way partitioning
    (Hoare's FIND with Dijkstra's Dutch-flag partition), so runs of equal values — the zero background of sparse
    patterns — cost one pass instead of degrading it. Equals ``np.sort(a)[k]``."""
    lo = 0
    hi = a.shape[0] - 1
    while lo < hi:
        x = a[lo]
        y = a[(lo + hi) // 2]
        z = a[hi]
        p = max(min(x, y), min(max(x, y), z))  # median of three
        lt = lo
        gt = hi
        i = lo
        while i <= gt:
            v = a[i]
            if v < p:
                a[lt], a[i] = a[i], a[lt]
                lt += 1
                i += 1
            elif v > p:
                a[gt], a[i] = a[i], a[gt]
                gt -= 1
            else:
                i += 1
        if k < lt:
            hi = lt - 1
        elif k > gt:
            lo = gt + 1
        else:
            return p
    return a[k]


#: integer ring-quantile keys (36 × the 3 × 3 mean) counted exactly; larger ones share an overflow bin
QUANTILE_KEY_LIMIT = 1024


@nb.njit(cache=True, nogil=True)
def ring_quantiles_counted(S, center_row, center_col, affine_inv, bin_width_q, n_bins, quantile, mean):
    """Ring quantiles of the 3 × 3 mean of integer counts by counting, no sorting.

    ``S`` (ky, kx) holds 3 × 3 sums of non-negative integers, ``mean`` the 3 × 3 means (S / cells on the detector).
    Each pixel's key 36·S/cells (4, 6 or 9 times S: an integer, ordered as the means are) is counted per ring up to
    ``QUANTILE_KEY_LIMIT``; a ring whose quantile lies above it is selected among its values as
    :func:`radial_background` does. Returns ``(profile (n_bins,), bins (ky·kx,) ring per pixel, −1 beyond)``; the
    profile equals the selection's (the same order statistic of the same values, key / 36 = the mean).
    """
    ky, kx = S.shape
    limit = QUANTILE_KEY_LIMIT
    hist = np.zeros((n_bins, limit + 1), np.int32)
    bins = np.empty(ky * kx, np.int64)
    counts = np.zeros(n_bins, np.int64)
    for i in range(ky):
        ni = 3 - (i == 0) - (i == ky - 1)
        for j in range(kx):
            b = ring_index(i, j, center_row, center_col, affine_inv, bin_width_q, n_bins)
            if b >= 0:
                key = int(S[i, j]) * (36 // (ni * (3 - (j == 0) - (j == kx - 1))))
                hist[b, min(key, limit)] += 1
                counts[b] += 1
            bins[i * kx + j] = b
    prof = np.zeros(n_bins)
    for b in range(n_bins):
        n = counts[b]
        if n == 0:
            continue
        k = min(n - 1, int(quantile * (n - 1) + 0.5))
        cum = 0
        found = False
        for key in range(limit):
            cum += hist[b, key]
            if cum > k:
                prof[b] = key / 36.0
                found = True
                break
        if not found:
            vals = np.empty(n)
            m = 0
            for p in range(ky * kx):
                if bins[p] == b:
                    vals[m] = mean[p // kx, p % kx]
                    m += 1
            prof[b] = select_kth(vals, k)
    return prof, bins


@nb.njit(cache=True, nogil=True)
def processed_image(pattern, center_row, center_col, affine_inv, bin_width_q, q_max, quantile, power):
    """The image the refinement scores against: (3 × 3 mean − radial background)₊ ** power, float32.

    The background is the ``quantile`` of each ring (width ``bin_width_q``, 1/Å) of the 3 × 3 mean, so smooth
    diffuse backgrounds (amorphous rings, inelastic tails) vanish while sparse spots remain. Integer counts
    (detector counts and their sums) take :func:`ring_quantiles_counted` (2× faster than selection), other values
    the selection of :func:`ring_values` + :func:`select_kth`; both give the same profile.
    """
    ky, kx = pattern.shape
    S = box_sum3(pattern.astype(np.float64))
    integral = True
    for i in range(ky):
        for j in range(kx):
            v = S[i, j]
            if v < 0 or v != np.floor(v):
                integral = False
                break
        if not integral:
            break
    # mean over the detector pixels only: times 1 / (how many of the 3 × 3 lie on it); a multiplication by the
    # reciprocal (monotonic, so ring quantiles pick the same pixels) instead of a division per pixel
    img = np.empty((ky, kx))
    inv = np.empty(kx)
    for i in range(ky):
        ni = 3 - (i == 0) - (i == ky - 1)
        for j in range(kx):
            inv[j] = 1.0 / (ni * (3 - (j == 0) - (j == kx - 1)))
        for j in range(kx):
            img[i, j] = S[i, j] * inv[j]
    n_bins = int(q_max / bin_width_q) + 2
    if integral:
        prof, bins = ring_quantiles_counted(S, center_row, center_col, affine_inv, bin_width_q, n_bins, quantile, img)
    else:
        # ring of every pixel (−1 beyond the last), then each ring's quantile by selection (as radial_background)
        vals, starts, counts, bins = ring_values(img, center_row, center_col, affine_inv, bin_width_q, n_bins)
        prof = np.zeros(n_bins)
        for b in range(n_bins):
            n = counts[b]
            if n > 0:
                k = min(n - 1, int(quantile * (n - 1) + 0.5))
                prof[b] = select_kth(vals[starts[b] : starts[b + 1]], k)
    out = np.zeros((ky, kx), np.float32)
    if power == 0.5:  # branch-free: sqrt(max(v, 0)) (a data-dependent branch per pixel is slow)
        for i in range(ky):
            for j in range(kx):
                b = bins[i * kx + j]
                bg = prof[b] if b >= 0 else 0.0
                out[i, j] = np.sqrt(max(img[i, j] - bg, 0.0))
        return out
    for i in range(ky):
        for j in range(kx):
            b = bins[i * kx + j]
            bg = prof[b] if b >= 0 else 0.0
            v = img[i, j] - bg
            if v > 0:
                out[i, j] = v**power
    return out


@nb.njit(cache=True, nogil=True, parallel=True)
def processed_images(block, centers, affine_inv, bin_width_q, q_max, quantile, power):
    """:func:`processed_image` of a (n, ky, kx) stack with per-pattern centres (n, 2)."""
    n, ky, kx = block.shape
    out = np.zeros((n, ky, kx), np.float32)
    for i in nb.prange(n):
        out[i] = processed_image(block[i], centers[i, 0], centers[i, 1], affine_inv, bin_width_q, q_max, quantile, power)
    return out


# ------------------------------------------------------------------------------------------------
# similarity-gated neighbour pattern summation (see stemgrains.preprocess.averaging)
# ------------------------------------------------------------------------------------------------
@nb.njit(cache=True, nogil=True)
def box_mean(img, half):
    """Mean over the (2·half + 1)² window around each pixel, clipped to the image (the mean of the pixels inside
    it), from an integral image."""
    ky, kx = img.shape
    ii = np.zeros((ky + 1, kx + 1))
    for i in range(ky):
        row = 0.0
        for j in range(kx):
            row += img[i, j]
            ii[i + 1, j + 1] = ii[i, j + 1] + row
    out = np.empty((ky, kx))
    for i in range(ky):
        a = max(0, i - half)
        b = min(ky, i + half + 1)
        for j in range(kx):
            c = max(0, j - half)
            d = min(kx, j + half + 1)
            out[i, j] = (ii[b, d] - ii[a, d] - ii[b, c] + ii[a, c]) / ((b - a) * (d - c))
    return out


@nb.njit(cache=True, nogil=True)
def similarity_feature(pattern, mask_radius):
    """Unit-norm, zero-mean feature vector (ky·kx,) of one pattern for comparing neighbours: the 3 × 3 local mean
    minus the 11 × 11 local mean, clipped at 0 (spots over a slowly varying background), with a disk of
    ``mask_radius`` px set to 0 around the direct beam (the brightest pixel of the brightest 5 × 5 window)."""
    img = pattern.astype(np.float64)
    ky, kx = img.shape
    s = box_mean(img, 1)
    bg = box_mean(img, 5)
    beam = box_mean(img, 2)
    best = -np.inf
    cr = 0
    cc = 0
    for i in range(ky):
        for j in range(kx):
            if beam[i, j] > best:
                best = beam[i, j]
                cr = i
                cc = j
    r0 = max(0, cr - 2)  # the window's brightest pixel (a narrow beam makes the window means a plateau)
    r1 = min(ky, cr + 3)
    c0 = max(0, cc - 2)
    c1 = min(kx, cc + 3)
    best = -np.inf
    for i in range(r0, r1):
        for j in range(c0, c1):
            if img[i, j] > best:
                best = img[i, j]
                cr = i
                cc = j
    f = np.empty(ky * kx)
    r2 = mask_radius * mask_radius
    total = 0.0
    for i in range(ky):
        for j in range(kx):
            v = s[i, j] - bg[i, j]
            if v < 0.0 or (i - cr) ** 2 + (j - cc) ** 2 < r2:
                v = 0.0
            f[i * kx + j] = v
            total += v
    mean = total / (ky * kx)
    norm = 0.0
    for k in range(ky * kx):
        f[k] -= mean
        norm += f[k] * f[k]
    norm = np.sqrt(norm) + 1e-9
    for k in range(ky * kx):
        f[k] /= norm
    return f


@nb.njit(cache=True, nogil=True, parallel=True)
def bin_sum(block, f):
    """Sum of ``f`` × ``f`` pixel bins of each pattern of a (n, ky, kx) stack → (n, ky // f, kx // f) float32
    (trailing rows/columns that do not fill a bin are dropped). Integer counts sum exactly while a bin's sum stays
    below 2²⁴."""
    n, ky, kx = block.shape
    kb = ky // f
    kxb = kx // f
    out = np.zeros((n, kb, kxb), np.float32)
    for i in nb.prange(n):
        for r in range(kb * f):
            rb = r // f
            for c in range(kxb * f):
                out[i, rb, c // f] += np.float32(block[i, r, c])
    return out


@nb.njit(cache=True, nogil=True, parallel=True)
def similarity_features(block, mask_radius):
    """:func:`similarity_feature` of every pattern of a (n, ky, kx) stack → (n, ky·kx) float32."""
    n, ky, kx = block.shape
    out = np.empty((n, ky * kx), np.float32)
    for i in nb.prange(n):
        out[i] = similarity_feature(block[i], mask_radius)
    return out


@nb.njit(cache=True, nogil=True, parallel=True)
def neighbor_sum(block, feats, row0, row1, radius, min_similarity, relative_similarity):
    """Similarity-gated sums of neighbouring patterns.

    ``block`` (rows, nx, ky, kx) holds scan rows with their halo; ``feats`` (rows, nx, ky·kx) their
    :func:`similarity_feature`. For each pixel of rows ``row0:row1`` of the block: its own pattern plus every
    pattern within ``radius`` scan px (square window, inside the block) whose feature dot product c with its own is
    at least ``max(min_similarity, relative_similarity · c_max)`` (c_max: the largest c in the window).
    Returns (sums (row1 − row0, nx, ky, kx) float32, counts (row1 − row0, nx) int64 — patterns summed).
    """
    rows, nx, ky, kx = block.shape
    nout = row1 - row0
    out = np.zeros((nout, nx, ky, kx), np.float32)
    counts = np.zeros((nout, nx), np.int64)
    nb_max = (2 * radius + 1) ** 2
    for p in nb.prange(nout * nx):
        i = row0 + p // nx
        j = p % nx
        cs = np.empty(nb_max)
        ri = np.empty(nb_max, np.int64)
        rj = np.empty(nb_max, np.int64)
        m = 0
        cmax = -np.inf
        for a in range(max(0, i - radius), min(rows, i + radius + 1)):
            for b in range(max(0, j - radius), min(nx, j + radius + 1)):
                if a == i and b == j:
                    continue
                c = 0.0
                for k in range(feats.shape[2]):
                    c += np.float64(feats[i, j, k]) * np.float64(feats[a, b, k])
                cs[m] = c
                ri[m] = a
                rj[m] = b
                m += 1
                cmax = max(cmax, c)
        thr = max(min_similarity, relative_similarity * cmax)
        acc = block[i, j].astype(np.float64)
        k_sum = 1
        for t in range(m):
            if cs[t] >= thr:
                acc += block[ri[t], rj[t]]
                k_sum += 1
        out[i - row0, j] = acc.astype(np.float32)
        counts[i - row0, j] = k_sum
    return out, counts
