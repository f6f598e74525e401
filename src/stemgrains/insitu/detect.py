"""Differential images of a registered series and the features that appear in them.

``D_k = F_k − F_0`` (frames registered to frame 0). Each ``D_k`` is smoothed (Gaussian, ``smooth_px``) and
thresholded at ``n_sigma`` robust standard deviations (1.4826 × the median absolute deviation of the smoothed
difference) in either direction: brighter (positive contrast, e.g. Na filaments in HAADF grow darker or brighter
depending on thickness) and darker features are found separately. Connected regions of at least ``min_area_px``
pixels are features. A feature that touches (8-connected, one pixel of slack) the footprint of an earlier event
of the same sign belongs to it (the event grows); otherwise it is a new event, placed at the |D|-weighted centroid
of its first detection. Events seen in fewer than ``min_frames`` frames (counting from their first one; events
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
                  min_area_px: int = 4, min_frames: int = 2, reference_level: float = 1.0) -> list[Event]:
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

    Returns
    -------
    list of Event
        Ordered by first frame, then position.
    """
    events: list[Event] = []
    n = diff.shape[0]
    struct = np.ones((3, 3), bool)
    for k in range(1, n):
        d = _smooth_nan(diff[k], smooth_px)
        d = np.where(region, d, np.nan)
        sig = robust_sigma(d)
        if not np.isfinite(sig) or sig == 0:
            continue
        for sign in (1, -1):
            mask = np.nan_to_num(sign * d, nan=0.0) > n_sigma * sig
            lab, nlab = ndimage.label(mask, structure=struct)
            if nlab == 0:
                continue
            sizes = np.bincount(lab.ravel())
            for c in range(1, nlab + 1):
                if sizes[c] < min_area_px:
                    continue
                comp = lab == c
                grown = ndimage.binary_dilation(comp, structure=struct)
                owner = None
                for e in events:
                    if e.sign == sign and np.any(e.footprint & grown):
                        owner = e
                        break
                w = np.abs(d[comp])
                if owner is None:
                    rr, cc = np.nonzero(comp)
                    events.append(Event(sign, k, float(np.sum(rr * w) / w.sum()), float(np.sum(cc * w) / w.sum()),
                                        comp.copy(), int(sizes[c]), float(np.nanmean(diff[k][comp])) / reference_level,
                                        [k]))
                else:
                    owner.footprint |= comp
                    if owner.frames[-1] != k:
                        owner.frames.append(k)
                        owner.area_px = int(sizes[c])
                        owner.contrast = float(np.nanmean(diff[k][comp])) / reference_level
                    else:
                        owner.area_px += int(sizes[c])
    kept = [e for e in events if len(e.frames) >= min(min_frames, n - e.first_frame)]
    kept.sort(key=lambda e: (e.first_frame, e.row, e.col))
    return kept
