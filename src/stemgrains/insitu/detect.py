"""Differential images of a registered series and the features that appear in them.

``D_k = F_k − F_0`` (frames registered to frame 0). Each ``D_k`` is smoothed (Gaussian, ``smooth_px``) and
thresholded at ``n_sigma`` robust standard deviations (1.4826 × the median absolute deviation of the smoothed
difference) in either direction: brighter (positive contrast, e.g. Na filaments in HAADF grow darker or brighter
depending on thickness) and darker features are found separately. Connected regions of at least ``min_area_px``
pixels are features. A feature that touches (8-connected, one pixel of slack) the footprint of an earlier event
of the same sign continues it (the event grows); each local maximum of the feature outside every earlier footprint
starts a new event, placed at the |D|-weighted centroid of the feature's pixels nearest to it. Events seen in fewer than ``min_frames`` frames (counting from their first one; events
first seen in the last frame are kept) are dropped as noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

__all__ = ["Event", "differential_images", "detect_events", "robust_sigma"]


@dataclass
class Event:
    """A feature that appeared in the series (frame-0 pixel coordinates)."""

    sign: int
    first_frame: int
    row: float
    col: float
    footprint: np.ndarray = field(repr=False)
    area_px: int = 0
    contrast: float = 0.0
    frames: list[int] = field(default_factory=list)


def differential_images(registered: np.ndarray) -> np.ndarray:
    """``D[k] = F[k] − F[0]`` ``(n, rows, cols)``; NaN where a frame has no data."""
    return registered - registered[0][None]


def robust_sigma(values: np.ndarray) -> float:
    """1.4826 × median absolute deviation (the standard deviation for Gaussian noise), ignoring NaN."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return float("nan")
    return float(1.4826 * np.median(np.abs(v - np.median(v))))


def _smooth_nan(img: np.ndarray, sigma: float) -> np.ndarray:
    ok = np.isfinite(img)
    num = ndimage.gaussian_filter(np.where(ok, img, 0.0), sigma)
    den = ndimage.gaussian_filter(ok.astype(float), sigma)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[~ok] = np.nan
    return out


def detect_events(diff: np.ndarray, region: np.ndarray, *, smooth_px: float = 1.5, n_sigma: float = 5.0,
                  min_area_px: int = 4, min_frames: int = 2, reference_level: float = 1.0,
                  min_separation_px: float | None = None, noise_floor: float = 0.0) -> list[Event]:
    """Events appearing in a differential stack.

    Parameters
    ----------
    diff
        ``(n, rows, cols)`` differential images (``diff[0]`` is all zero).
    region
        ``(rows, cols)`` bool: where events are looked for (valid in every frame and on the map).
    smooth_px
        Gaussian smoothing of each difference, px.
    n_sigma
        Detection threshold in robust standard deviations of the smoothed difference.
    min_area_px
        Smallest feature, px.
    min_frames
        An event must be detected in at least this many frames (fewer when the series ends first).
    reference_level
        ``contrast`` is the mean difference over the event footprint in its last frame divided by this
        (e.g. the median intensity of frame 0).
    min_separation_px
        Two local maxima of one feature closer than this are one event (default ``max(3, 3 · smooth_px)``).
    noise_floor
        The robust standard deviation is taken as at least this (units of ``diff``): on noise-free (simulated)
        frames it is ~0, and the residue of the drift correction's interpolation would pass any ``n_sigma``.

    Returns
    -------
    list of Event
        Ordered by first frame, then position.

    Notes
    -----
    A feature of frame ``k`` continues every earlier event of the same sign whose footprint it touches; each of
    its local maxima (at least ``min_separation_px`` apart) outside all earlier footprints starts a new event, so
    two filaments that grow into one another stay two events. Its pixels go to the nearest of these events.
    """
    sep = float(min_separation_px) if min_separation_px is not None else max(3.0, 3.0 * smooth_px)
    events: list[Event] = []
    n = diff.shape[0]
    struct = np.ones((3, 3), bool)
    size = 2 * int(np.ceil(sep)) + 1
    for k in range(1, n):
        d = _smooth_nan(diff[k], smooth_px)
        d = np.where(region, d, np.nan)
        sig = max(robust_sigma(d), float(noise_floor))
        if not np.isfinite(sig) or sig == 0:
            continue
        known = np.zeros(d.shape, bool)
        for e in events:
            known |= e.footprint
        known = ndimage.binary_dilation(known, structure=struct) if known.any() else known
        for sign in (1, -1):
            sd = np.nan_to_num(sign * d, nan=-np.inf)
            mask = sd > n_sigma * sig
            lab, nlab = ndimage.label(mask, structure=struct)
            if nlab == 0:
                continue
            sizes = np.bincount(lab.ravel())
            peaks = mask & (sd == ndimage.maximum_filter(sd, size=size))
            for c in range(1, nlab + 1):
                if sizes[c] < min_area_px:
                    continue
                comp = lab == c
                grown = ndimage.binary_dilation(comp, structure=struct)
                owners = [e for e in events if e.sign == sign and np.any(e.footprint & grown)]
                pr, pc = np.nonzero(peaks & comp & ~known)
                order = np.argsort(-sd[pr, pc])
                starts: list[tuple[int, int]] = []
                for i in order:
                    if all(np.hypot(pr[i] - a, pc[i] - b) >= sep for a, b in starts):
                        starts.append((int(pr[i]), int(pc[i])))
                if not owners and not starts:
                    i = int(np.argmax(np.where(comp, sd, -np.inf)))
                    starts = [divmod(i, d.shape[1])]
                new = [Event(sign, k, float(a), float(b), np.zeros(d.shape, bool), 0, 0.0, [k]) for a, b in starts]
                members = owners + new
                rr, cc = np.nonzero(comp)
                pos = np.array([[e.row, e.col] for e in members])
                nearest = np.argmin((rr[:, None] - pos[None, :, 0]) ** 2 + (cc[:, None] - pos[None, :, 1]) ** 2, axis=1)
                for j, e in enumerate(members):
                    sel = nearest == j
                    if not np.any(sel):
                        continue
                    part = np.zeros(d.shape, bool)
                    part[rr[sel], cc[sel]] = True
                    if e in new:  # place a new event at the |D|-weighted centroid of its part
                        w = np.abs(d[part])
                        e.row = float(np.sum(rr[sel] * w) / w.sum())
                        e.col = float(np.sum(cc[sel] * w) / w.sum())
                    e.footprint |= part
                    if e.frames[-1] != k:
                        e.frames.append(k)
                        e.area_px = 0
                    e.area_px += int(sel.sum())
                    e.contrast = float(np.nanmean(diff[k][e.footprint & comp])) / reference_level
                events.extend(e for e in new if e.footprint.any())
    kept = [e for e in events if len(e.frames) >= min(min_frames, n - e.first_frame)]
    kept.sort(key=lambda e: (e.first_frame, e.row, e.col))
    return kept
