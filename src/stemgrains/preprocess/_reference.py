"""Slow, obvious numpy references of the preprocessing kernels (used by the tests only)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def center_of_mass_disk(pattern, row0, col0, radius, n_iter):
    r, c = float(row0), float(col0)
    rows, cols = np.indices(pattern.shape)
    for _ in range(n_iter):
        m = (rows - r) ** 2 + (cols - c) ** 2 <= radius**2
        s = pattern[m].sum()
        if s <= 0:
            break
        r = float((pattern[m] * rows[m]).sum() / s)
        c = float((pattern[m] * cols[m]).sum() / s)
    return r, c


def polar_transform(pattern, center_row, center_col, affine, q_radii, angles):
    qq, aa = np.meshgrid(q_radii, angles, indexing="ij")
    q = np.stack([qq * np.cos(aa), qq * np.sin(aa)], -1)
    d = q @ np.asarray(affine).T  # (dcol, drow)
    rows = center_row + d[..., 1]
    cols = center_col + d[..., 0]
    ky, kx = pattern.shape
    inside = (rows >= 0) & (cols >= 0) & (rows <= ky - 1) & (cols <= kx - 1)
    vals = ndimage.map_coordinates(pattern.astype(float), [rows, cols], order=1, mode="nearest")
    return np.where(inside, vals, 0.0)


def radial_background(pattern, center_row, center_col, affine_inv, bin_width_q, n_bins, quantile):
    rows, cols = np.indices(pattern.shape)
    d = np.stack([cols - center_col, rows - center_row], -1).astype(float)
    q = d @ np.asarray(affine_inv).T
    b = (np.hypot(q[..., 0], q[..., 1]) / bin_width_q).astype(int)
    prof = np.zeros(n_bins)
    for k in range(n_bins):
        v = np.sort(pattern[b == k].astype(float))
        if v.size:
            prof[k] = v[min(v.size - 1, int(quantile * (v.size - 1) + 0.5))]
    return prof


def find_peaks(img, threshold, min_distance, max_peaks, exclude_row, exclude_col, exclude_radius):
    ky, kx = img.shape
    found = []
    for i in range(1, ky - 1):
        for j in range(1, kx - 1):
            v = img[i, j]
            if v <= threshold or (i - exclude_row) ** 2 + (j - exclude_col) ** 2 <= exclude_radius**2:
                continue
            ok = True
            for di in range(-min_distance, min_distance + 1):
                for dj in range(-min_distance, min_distance + 1):
                    ii, jj = i + di, j + dj
                    if (di or dj) and 0 <= ii < ky and 0 <= jj < kx:
                        w = img[ii, jj]
                        if w > v or (w == v and (di < 0 or (di == 0 and dj < 0))):
                            ok = False
            if ok:
                def sub(a, b):
                    den = a - 2 * v + b
                    return float(np.clip(0.5 * (a - b) / den, -0.5, 0.5)) if den < 0 else 0.0

                found.append((i + sub(img[i - 1, j], img[i + 1, j]), j + sub(img[i, j - 1], img[i, j + 1]), float(v)))
    found.sort(key=lambda t: -t[2])  # stable: ties keep raster order
    return np.array(found[:max_peaks], dtype=float).reshape(-1, 3)


def box_sum3(img):
    return ndimage.uniform_filter(img.astype(float), size=3, mode="constant", cval=0.0) * 9


def ring_mean(img, row, col, radius):
    vals = []
    for i in range(row - radius, row + radius + 1):
        for j in range(col - radius, col + radius + 1):
            if max(abs(i - row), abs(j - col)) == radius and 0 <= i < img.shape[0] and 0 <= j < img.shape[1]:
                vals.append(img[i, j])
    return float(np.mean(vals)) if vals else 0.0


def brightest_near(img, row, col, radius):
    rows, cols = np.indices(img.shape)
    m = (rows - row) ** 2 + (cols - col) ** 2 <= radius**2
    vals = np.where(m, img, -np.inf)
    k = int(np.argmax(vals))
    return float(k // img.shape[1]), float(k % img.shape[1])


def detect_spots(pattern, fixed_center, center_row, center_col, search_radius, beam_radius, affine_inv, q_min, q_max, n_sigma, min_distance, max_peaks, ring_radius, power, n_sigma_sparse, min_spots):
    img = pattern.astype(float)
    S = box_sum3(img)
    # the direct beam: as given, or the brightest box sum near the nominal centre, refined by the disk's centroid
    cr, cc = (center_row, center_col) if fixed_center else center_of_mass_disk(
        img, *brightest_near(S, center_row, center_col, search_radius), beam_radius, 4)
    strong, weak = [], []  # maxima in range above n_sigma, and between n_sigma_sparse and n_sigma, in find_peaks order
    for r, c, _ in find_peaks(S, 0.0, min_distance, 4 * max_peaks + 16, cr, cc, 0.0):
        ir, ic = int(r + 0.5), int(c + 0.5)
        bg = ring_mean(S, ir, ic, ring_radius)
        ex = S[ir, ic] - bg
        q = np.asarray(affine_inv) @ np.array([c - cc, r - cr])
        if not (q_min <= np.hypot(*q) <= q_max):
            continue
        if ex > n_sigma * np.sqrt(max(bg, 0) + 1):
            strong.append((q[0], q[1], ex**power))
        elif ex > n_sigma_sparse * np.sqrt(max(bg, 0) + 1):
            weak.append((q[0], q[1], ex**power))
    rows = strong[:max_peaks]
    if len(rows) < min(min_spots, max_peaks):  # a sparse pattern: the brightest weaker maxima up to min_spots
        rows += weak[: min(min_spots, max_peaks) - len(rows)]
    out = np.zeros((max_peaks, 3))
    if rows:
        out[: len(rows)] = rows
    return out, len(rows), cr, cc, len(strong[:max_peaks])


def processed_image(pattern, center_row, center_col, affine_inv, bin_width_q, q_max, quantile, power):
    img = box_sum3(pattern) / box_sum3(np.ones(np.shape(pattern)))
    n_bins = int(q_max / bin_width_q) + 2
    prof = radial_background(img, center_row, center_col, affine_inv, bin_width_q, n_bins, quantile)
    rows, cols = np.indices(img.shape)
    d = np.stack([cols - center_col, rows - center_row], -1).astype(float)
    q = d @ np.asarray(affine_inv).T
    b = (np.hypot(q[..., 0], q[..., 1]) / bin_width_q).astype(int)
    bg = np.where(b < n_bins, prof[np.minimum(b, n_bins - 1)], 0.0)
    return (np.clip(img - bg, 0, None) ** power).astype(np.float32)


def bilinear(img, r, c):
    """Bilinear interpolation at (row, col) by scipy.ndimage.map_coordinates (order 1); 0 off the image."""
    ky, kx = img.shape
    if not (0 <= r <= ky - 1 and 0 <= c <= kx - 1):
        return 0.0
    return float(ndimage.map_coordinates(np.asarray(img, float), [[r], [c]], order=1, mode="nearest")[0])


def detect_spots_chunk(block, fixed_center, center_row, center_col, search_radius, beam_radius, affine_inv, q_min, q_max, n_sigma, min_distance, max_peaks, ring_radius, power, n_sigma_sparse, min_spots):
    """:func:`detect_spots` of each pattern of a (n, ky, kx) stack: (peaks (n, max_peaks, 3), counts, centres (n, 2),
    counts above n_sigma)."""
    res = [
        detect_spots(p, fixed_center, center_row, center_col, search_radius, beam_radius, affine_inv, q_min, q_max, n_sigma, min_distance, max_peaks, ring_radius, power, n_sigma_sparse, min_spots)
        for p in block
    ]
    peaks = np.array([r[0] for r in res]).reshape(len(block), max_peaks, 3)
    counts = np.array([r[1] for r in res], dtype=np.int64)
    centers = np.array([(r[2], r[3]) for r in res], dtype=float).reshape(len(block), 2)
    strong = np.array([r[4] for r in res], dtype=np.int64)
    return peaks, counts, centers, strong


def processed_images(block, centers, affine_inv, bin_width_q, q_max, quantile, power):
    """:func:`processed_image` of each pattern of a (n, ky, kx) stack with its centre (n, 2)."""
    out = np.zeros(np.shape(block), np.float32)
    for i, p in enumerate(block):
        out[i] = processed_image(p, centers[i][0], centers[i][1], affine_inv, bin_width_q, q_max, quantile, power)
    return out


def bin_sum(block, f):
    """:func:`._kernels.bin_sum` by reshaping: (n, ky, kx) → (n, ky // f, kx // f) float32 bin sums."""
    b = np.asarray(block)
    n, ky, kx = b.shape
    kb, kxb = ky // f, kx // f
    return b[:, :kb * f, :kxb * f].astype(np.float64).reshape(n, kb, f, kxb, f).sum(axis=(2, 4)).astype(np.float32)


def similarity_feature(pattern, mask_radius):
    img = np.asarray(pattern, dtype=np.float64)
    ky, kx = img.shape

    def local_mean(size):  # mean of the pixels of the window that lie inside the image
        h = size // 2
        return np.array([[img[max(0, i - h):i + h + 1, max(0, j - h):j + h + 1].mean() for j in range(kx)]
                         for i in range(ky)])

    f = np.clip(local_mean(3) - local_mean(11), 0.0, None)
    r, c = np.unravel_index(np.argmax(local_mean(5)), img.shape)
    win = img[max(0, r - 2):r + 3, max(0, c - 2):c + 3]
    dr, dc = np.unravel_index(np.argmax(win), win.shape)
    cr, cc = max(0, r - 2) + dr, max(0, c - 2) + dc
    yy, xx = np.indices(img.shape)
    f[(yy - cr) ** 2 + (xx - cc) ** 2 < mask_radius**2] = 0.0
    f = f.ravel() - f.mean()
    return f / (np.linalg.norm(f) + 1e-9)


def neighbor_sum(block, feats, row0, row1, radius, min_similarity, relative_similarity):
    rows, nx = block.shape[:2]
    sums, counts = [], []
    for i in range(row0, row1):
        for j in range(nx):
            window = [(a, b) for a in range(rows) for b in range(nx)
                      if max(abs(a - i), abs(b - j)) <= radius and (a, b) != (i, j)]
            c = [float(np.dot(feats[i, j].astype(float), feats[a, b].astype(float))) for a, b in window]
            thr = max([min_similarity] + [relative_similarity * max(c)] if c else [min_similarity])
            chosen = [(i, j)] + [w for w, cc in zip(window, c) if cc >= thr]
            sums.append(np.sum([block[a, b].astype(float) for a, b in chosen], axis=0))
            counts.append(len(chosen))
    shape = (row1 - row0, nx)
    return np.reshape(sums, shape + block.shape[2:]).astype(np.float32), np.reshape(counts, shape)
