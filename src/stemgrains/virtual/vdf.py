"""VDF grain maps without indexing: Bragg-vector map → distinct reflections → one virtual-dark-field image per
reflection → reflections grouped into grains → labels and a colour composite.

The method of the published RGB VDF grain maps (a VDF image per distinctive reflection, each grain lit by its own
reflections), automated: every pixel's spots are found with :func:`stemgrains.preprocess.detect_spots` (the
detector offsets from the per-pattern beam centre are accumulated into the Bragg-vector map, py4DSTEM's
``BraggVectorMap``); its local maxima are the distinct reflections; each gets a VDF disk that follows the beam
centre; VDF images are normalised (background = 5th percentile, scale = 99th) and reflections whose images are
correlated (Pearson r ≥ ``min_correlation``, average linkage) form one group — one orientation; every pixel goes to
the group with the largest mean normalised intensity (if ≥ ``min_signal``); connected parts of a group's area
are separate grains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from ..data import Dataset4D
from ..errors import InputError, ParameterError
from .api import _native, chunk_rows_for, virtual_images
from .detectors import dark_field
from .._repr import compact_repr

__all__ = ["VDFGrainMap", "bragg_vector_map", "find_reflections", "vdf_grain_map", "adjusted_rand_index"]


@dataclass
class VDFGrainMap:
    """Result of :func:`vdf_grain_map`.

    Attributes
    ----------
    labels
        ``(ny, nx)`` int32 grains 1..n, 0 = unassigned.
    group_of_label
        ``(n,)`` reflection group of each grain (label ``k`` ↔ ``group_of_label[k − 1]``).
    reflections
        ``(m, 2)`` reflection offsets ``(drow, dcol)`` from the beam centre, detector px.
    groups
        ``(m,)`` group index of each reflection.
    vdf
        ``(m, ny, nx)`` normalised VDF images.
    group_images
        ``(g, ny, nx)`` mean normalised VDF image of each group.
    composite
        ``(ny, nx, 3)`` RGB colour composite in [0, 1].
    bvm
        ``(ky, kx)`` Bragg-vector map (spot amplitudes, beam centre at the detector centre).
    scan_step_nm
        Scan step, nm.
    parameters
        The parameters used.
    """

    def __repr__(self) -> str:  # one line, arrays by shape (print() dumped them)
        return compact_repr(self)

    labels: np.ndarray
    group_of_label: np.ndarray
    reflections: np.ndarray
    groups: np.ndarray
    vdf: np.ndarray
    group_images: np.ndarray
    composite: np.ndarray
    bvm: np.ndarray
    scan_step_nm: float = 1.0
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def n_groups(self) -> int:
        return int(self.group_images.shape[0])


def bragg_vector_map(dataset: Dataset4D, *, spot_params: Any = None, memory_mb: float = 128.0,
                     progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bragg-vector map of a scan.

    Returns
    -------
    bvm : (ky, kx) float64
        Spot amplitudes accumulated at their detector offset from each pattern's beam centre (bilinear), the beam
        centre placed at ``((ky − 1) / 2, (kx − 1) / 2)``.
    centers : (ny, nx, 2) float64
        Direct-beam centre (row, col) of every pattern, px.
    n_spots : (ny, nx) int64
    """
    from ..preprocess import SpotParams, detect_spots

    params = spot_params or SpotParams(q_max=10.0)
    ny, nx = dataset.scan_shape
    ky, kx = dataset.detector_shape
    cal = dataset.calibration
    bvm = np.zeros((ky, kx))
    centers = np.zeros((ny, nx, 2))
    counts = np.zeros((ny, nx), dtype=np.int64)
    step = chunk_rows_for(dataset, memory_mb)
    mid = np.array([(ky - 1) / 2, (kx - 1) / 2])
    from tqdm.auto import tqdm

    with tqdm(total=ny, unit="row", desc="Bragg vectors", disable=not progress, leave=False) as bar:
        for r0 in range(0, ny, step):
            r1 = min(ny, r0 + step)
            block = _native(dataset.rows(r0, r1))
            flat = block.reshape(-1, ky, kx)
            peaks, _, cen, cnt = detect_spots(flat, cal, params, with_strong_counts=True)  # the spots above n_sigma
            centers[r0:r1] = cen.reshape(r1 - r0, nx, 2)
            counts[r0:r1] = cnt.reshape(r1 - r0, nx)
            for i in range(len(flat)):
                n = int(cnt[i])
                if n == 0:
                    continue
                d = cal.sample_q_to_detector(peaks[i, :n, :2]) + mid  # (row, col) on the BVM
                amp = peaks[i, :n, 2]
                keep = np.isfinite(d).all(axis=1) & np.isfinite(amp)  # a pattern of NaNs has no beam centre
                d, amp = d[keep], amp[keep]
                r, c = np.floor(d[:, 0]).astype(int), np.floor(d[:, 1]).astype(int)
                fr, fc = d[:, 0] - r, d[:, 1] - c
                for dr, dc, wt in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)),
                                   (1, 1, fr * fc)):
                    rr, cc = r + dr, c + dc
                    ok = (rr >= 0) & (rr < ky) & (cc >= 0) & (cc < kx)
                    np.add.at(bvm, (rr[ok], cc[ok]), (amp * wt)[ok])
            bar.update(r1 - r0)
    return bvm, centers, counts


def find_reflections(bvm: np.ndarray, *, min_separation_px: float = 3.0, min_fraction: float = 0.02,
                     exclude_radius_px: float = 6.0, max_reflections: int = 200) -> np.ndarray:
    """Distinct reflections: local maxima of the (σ = 0.75 px smoothed) Bragg-vector map above ``min_fraction`` of
    its largest peak, at least ``min_separation_px`` apart, outside ``exclude_radius_px`` of the centre.

    Returns ``(m, 2)`` offsets ``(drow, dcol)`` from the beam centre, px, strongest first.
    """
    ky, kx = bvm.shape
    sm = ndimage.gaussian_filter(bvm, 0.75)
    mid = np.array([(ky - 1) / 2, (kx - 1) / 2])
    rr, cc = np.mgrid[0:ky, 0:kx]
    far = (rr - mid[0]) ** 2 + (cc - mid[1]) ** 2 > exclude_radius_px**2
    size = 2 * int(np.ceil(min_separation_px)) + 1
    peak = (sm == ndimage.maximum_filter(sm, size=size)) & far & (sm > 0)
    if not np.any(peak):
        return np.zeros((0, 2))
    vals = sm[peak]
    keep = vals >= min_fraction * vals.max()
    pr, pc = np.nonzero(peak)
    pr, pc, vals = pr[keep], pc[keep], vals[keep]
    order = np.argsort(-vals)[:max_reflections]
    return np.stack([pr[order] - mid[0], pc[order] - mid[1]], -1).astype(np.float64)


def _normalise(images: np.ndarray) -> np.ndarray:
    lo = np.percentile(images, 5, axis=(1, 2), keepdims=True)
    hi = np.percentile(images, 99, axis=(1, 2), keepdims=True)
    return np.clip((images - lo) / np.maximum(hi - lo, 1e-12), 0, None)


def _group(norm: np.ndarray, min_correlation: float) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    m = norm.shape[0]
    if m == 1:
        return np.zeros(1, dtype=np.int64)
    flat = norm.reshape(m, -1)
    flat = flat - flat.mean(1, keepdims=True)
    nrm = np.linalg.norm(flat, axis=1)
    nrm[nrm == 0] = 1.0
    corr = (flat @ flat.T) / np.outer(nrm, nrm)
    dist = np.clip(1.0 - corr, 0.0, 2.0)
    np.fill_diagonal(dist, 0.0)
    z = linkage(squareform(dist, checks=False), method="average")
    return fcluster(z, t=1.0 - min_correlation, criterion="distance").astype(np.int64) - 1


def group_colors(n: int) -> np.ndarray:
    """``n`` distinct RGB colours ``(n, 3)`` in [0, 1]: red, green, blue first (the RGB VDF maps), then
    matplotlib's tab20 palette."""
    from matplotlib import colormaps

    base = [(1.0, 0.0, 0.0), (0.0, 0.85, 0.0), (0.1, 0.3, 1.0), (1.0, 0.85, 0.0), (0.0, 0.9, 0.9), (0.9, 0.0, 0.9)]
    tab = colormaps["tab20"]
    extra = [tab(k % 20)[:3] for k in range(max(0, n - len(base)))]
    return np.array((base + extra)[:n], dtype=np.float64).reshape(n, 3)


def vdf_grain_map(
    dataset: Dataset4D,
    *,
    disk_radius_px: float = 2.0,
    min_correlation: float = 0.5,
    min_signal: float = 0.25,
    min_grain_px: int = 5,
    spot_params: Any = None,
    memory_mb: float = 128.0,
    progress: bool = False,
) -> VDFGrainMap:
    """Grain map from virtual dark-field images of the distinct reflections (no indexing).

    Parameters
    ----------
    dataset
        The 4D-STEM scan ``(scan_row, scan_col, det_row, det_col)``.
    disk_radius_px
        Radius of each VDF disk, px.
    min_correlation
        Reflections whose normalised VDF images correlate at least this much (average linkage) are one group.
    min_signal
        Pixels whose best group's mean normalised intensity is below this stay unassigned (0).
    min_grain_px
        Connected parts smaller than this join their most common neighbouring grain.
    spot_params
        :class:`~stemgrains.preprocess.SpotParams` for the Bragg-vector map.
    memory_mb, progress
        As in :func:`~stemgrains.virtual.virtual_images`.

    Raises
    ------
    InputError
        No reflection found in the Bragg-vector map; a scan of fewer than ``2 * min_grain_px`` positions (the
        correlation of VDF images needs positions to vary over).
    ParameterError
        Parameters out of range.
    """
    if not isinstance(dataset, Dataset4D):
        raise InputError("vdf_grain_map needs a calibrated Dataset4D (load_4d)")
    for name, v, ok, span in (("disk_radius_px", disk_radius_px, disk_radius_px > 0, "above 0 (detector pixels)"),
                              ("min_correlation", min_correlation, -1 <= min_correlation <= 1, "from -1 to 1"),
                              ("min_signal", min_signal, min_signal >= 0, "of at least 0"),
                              ("min_grain_px", min_grain_px, min_grain_px >= 1, "of at least 1 (pixels)")):
        if not (np.isfinite(v) and ok):  # one line naming the one parameter out of range
            raise ParameterError(f"{name} expects a value {span}, got {float(v):g}")
    ny, nx = dataset.scan_shape
    if ny * nx < 2 * min_grain_px:  # one position: every image normalised to 0 (black); a few: all groups at 1 (white)
        raise InputError(f"{dataset.source}: a VDF grain map correlates each reflection's image over the scan and "
                         f"needs at least {2 * min_grain_px} positions (two grains of min_grain_px = {min_grain_px}); "
                         f"this scan has {ny * nx} ({ny} x {nx})")
    bvm, centers, _ = bragg_vector_map(dataset, spot_params=spot_params, memory_mb=memory_mb, progress=progress)
    refl = find_reflections(bvm, min_separation_px=max(3.0, 1.5 * disk_radius_px))
    if len(refl) == 0:
        raise InputError(f"{dataset.source}: no reflection found in the Bragg-vector map")
    c0 = tuple(np.median(centers.reshape(-1, 2), axis=0))
    dets = [dark_field(c0 + r, disk_radius_px, name=f"g{k}") for k, r in enumerate(refl)]
    raw = virtual_images(dataset, dets, center=c0, follow_center=centers, memory_mb=memory_mb, progress=progress)
    norm = _normalise(raw)
    groups = _group(norm, min_correlation)
    n_g = int(groups.max()) + 1
    gimg = np.stack([norm[groups == g].mean(0) for g in range(n_g)])
    best = np.argmax(gimg, axis=0)
    strength = np.take_along_axis(gimg, best[None], 0)[0]
    assigned = strength >= min_signal
    labels = np.zeros(best.shape, dtype=np.int32)
    group_of_label: list[int] = []
    for g in range(n_g):
        comp, n = ndimage.label(assigned & (best == g))
        for k in range(1, n + 1):
            group_of_label.append(g)
            labels[comp == k] = len(group_of_label)
    labels, group_of_label = _absorb_small(labels, np.asarray(group_of_label, dtype=np.int64), min_grain_px)
    colors = group_colors(n_g)
    comp_img = np.clip(np.einsum("gyx,gc->yxc", np.clip(gimg, 0, 1), colors), 0, 1)
    params = {"disk_radius_px": disk_radius_px, "min_correlation": min_correlation, "min_signal": min_signal,
              "min_grain_px": min_grain_px, "n_reflections": len(refl), "n_groups": n_g}
    return VDFGrainMap(labels, group_of_label, refl, groups, norm, gimg, comp_img, bvm,
                       dataset.calibration.scan_step_nm, params)


def _absorb_small(labels: np.ndarray, group_of_label: np.ndarray, min_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge connected grains smaller than ``min_px`` into their most common 4-neighbour grain; renumber 1..n."""
    labels = labels.copy()
    for _ in range(3):
        sizes = np.bincount(labels.ravel(), minlength=len(group_of_label) + 1)
        small = [k for k in range(1, len(sizes)) if 0 < sizes[k] < min_px]
        if not small:
            break
        for k in small:
            m = labels == k
            ring = ndimage.binary_dilation(m) & ~m
            nb = labels[ring]
            nb = nb[(nb > 0) & (nb != k)]
            labels[m] = np.bincount(nb).argmax() if len(nb) else 0
    used = np.unique(labels[labels > 0])
    lut = np.zeros(len(group_of_label) + 1, dtype=np.int32)
    lut[used] = np.arange(1, len(used) + 1)
    return lut[labels], group_of_label[used - 1]


def adjusted_rand_index(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index of two labellings of the same items (Hubert & Arabie 1985): 1 for identical
    partitions (up to renaming), about 0 for independent ones."""
    a = np.asarray(a).ravel()
    b = np.asarray(b).ravel()
    if a.shape != b.shape:
        raise InputError(f"adjusted_rand_index: labellings of different sizes {a.shape} and {b.shape}")
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    table = np.zeros((ai.max() + 1, bi.max() + 1), dtype=np.float64)
    np.add.at(table, (ai, bi), 1.0)

    def comb2(x: np.ndarray) -> float:
        return float((x * (x - 1) / 2).sum())

    s_ij = comb2(table)
    s_a, s_b = comb2(table.sum(1)), comb2(table.sum(0))
    total = comb2(np.array([a.size], dtype=float))
    expected = s_a * s_b / total if total > 0 else 0.0
    max_index = 0.5 * (s_a + s_b)
    if max_index == expected:
        return 1.0
    return (s_ij - expected) / (max_index - expected)
