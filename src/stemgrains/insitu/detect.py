"""Differential images of a registered series and the features that appear in them.

``D_k = F_k − F_0`` (frames registered to frame 0). Each ``D_k`` is smoothed (Gaussian, ``smooth_px``) and
thresholded at ``n_sigma`` robust standard deviations (1.4826 × the median absolute deviation of the smoothed
difference) in either direction: brighter (positive contrast, e.g. Na filaments in HAADF grow darker or brighter
depending on thickness) and darker features are found separately. Connected regions of at least ``min_area_px``
pixels are features. A feature that touches (8-connected, one pixel of slack) the footprint of an earlier event
of the same sign continues it (the event grows). A local maximum of the feature where no earlier frame showed
about as much (at least ``SADDLE_FRACTION`` of it, above the threshold) starts a new event only where, on every way from it to an earlier event's ridge or a higher maximum, the feature's
contrast dips below ``SADDLE_FRACTION`` (80 %) of the lower of the two and by more than the detection threshold:
the new tip of a filament that grew along a boundary is the same filament, however its brightness changes along it;
a spot beside it with a dip between is not. The feature's pixels are shared among its events by
a watershed of |D| from their seeds; a new event is placed at the |D|-weighted centroid of its share. Events seen in
fewer than ``min_frames`` frames (counting from their first one; events first seen in the last frame are kept) are
dropped as noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

__all__ = ["Event", "differential_images", "detect_events", "robust_sigma", "SADDLE_FRACTION"]

#: A local maximum of a feature is a new event only where the feature's contrast between it and every earlier event
#: (or higher maximum) drops below this fraction of the lower of the two (and by more than the detection threshold):
#: the tip of a filament that grew along a boundary since the last frame continues that filament (one event, not one
#: per frame; along its ridge the contrast never drops), a spot beside it with a dip between is another event.
SADDLE_FRACTION = 0.8


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


def _new_starts(sd: np.ndarray, comp: np.ndarray, peaks: np.ndarray, owner_peaks: list[tuple[int, int]],
                sep: float, noise: float) -> list[tuple[int, int]]:
    """Local maxima of one feature that start new events, highest first.

    Two maxima of values ``v`` and ``w`` (``m = min(v, w)``) are one hill when the feature joins them above
    ``min(SADDLE_FRACTION · m, m − noise)``: their col, in topographic terms, lies less than a fifth and less than
    ``noise`` (the detection threshold, n_sigma robust σ) below the lower one. A maximum ``P``
    starts an event unless it is one hill with a higher pixel, an accepted start, or the highest pixel of an earlier
    event in this frame (``owner_peaks``; on the event's ridge, not at its footprint's faint rim), or lies within
    ``sep`` px of an accepted start. The highest maximum of a feature touching no earlier event is always a start.
    Comparing with the lower of the two makes the rule independent of brightness changes along a growing filament
    (a tip five times brighter than where the filament started is still that filament).
    """
    pr, pc = np.nonzero(peaks)
    order = np.argsort(-sd[pr, pc], kind="stable")
    struct = np.ones((3, 3), bool)
    starts: list[tuple[int, int]] = []

    def joined(r: int, c: int, level: float, targets: np.ndarray) -> bool:
        lab, _ = ndimage.label(comp & (sd > level), structure=struct)
        return bool(np.any((lab == lab[r, c]) & targets))

    for i in order:
        r, c = int(pr[i]), int(pc[i])
        v = sd[r, c]
        if any(np.hypot(r - a, c - b) < sep for a, b in starts):
            continue
        higher = sd > v
        for a, b in starts:
            higher[a, b] = True
        if joined(r, c, min(SADDLE_FRACTION * v, v - noise), higher & comp):
            continue
        if any(joined(r, c, min(SADDLE_FRACTION * min(v, sd[a, b]), min(v, sd[a, b]) - noise),
                      _pixel(comp.shape, a, b)) for a, b in owner_peaks):
            continue
        starts.append((r, c))
    return starts


def _pixel(shape: tuple[int, int], r: int, c: int) -> np.ndarray:
    out = np.zeros(shape, bool)
    out[r, c] = True
    return out


def _owner_peak(sd: np.ndarray, comp: np.ndarray, event: Event, struct: np.ndarray) -> tuple[int, int]:
    """The highest pixel of ``comp`` within one pixel of ``event``'s footprint."""
    near = ndimage.binary_dilation(event.footprint, structure=struct) & comp
    i = int(np.argmax(np.where(near, sd, -np.inf)))
    return divmod(i, sd.shape[1])


def _share(sd: np.ndarray, comp: np.ndarray, members: list[Event], struct: np.ndarray,
           seen: np.ndarray, owner_peaks: list[tuple[int, int]]) -> np.ndarray:
    """The feature ``comp`` shared among ``members``: a watershed of ``−sd`` (skimage.segmentation.watershed,
    8-connected) from each member's seed. A new event's seed is its maximum; an earlier event's, the pixels of its
    footprint (grown by one pixel) in the feature that an earlier frame already showed about as bright (``seen``:
    its established body, not a faint rim a new spot has lifted), else its highest pixel there (``owner_peaks``, in
    the order of the earlier events among ``members``). ``(rows, cols)`` int: 1 + the member's index, 0 outside the
    feature."""
    from skimage.segmentation import watershed

    if len(members) == 1:
        return comp.astype(np.int64)
    markers = np.zeros(comp.shape, np.int64)
    for j, e in enumerate(members):  # new events first: their maxima are theirs
        if not e.footprint.any():
            markers[int(round(e.row)), int(round(e.col))] = j + 1
    peaks = iter(owner_peaks)
    for j, e in enumerate(members):
        if e.footprint.any():
            seed = ndimage.binary_dilation(e.footprint, structure=struct) & comp & seen
            r, c = next(peaks)
            if not seed.any():
                seed[r, c] = True
            markers[seed & (markers == 0)] = j + 1
    return watershed(-np.where(comp, sd, 0.0), markers, connectivity=2, mask=comp)


def detect_events(diff: np.ndarray, region: np.ndarray, *, smooth_px: float = 1.5, n_sigma: float = 5.0,
                  min_area_px: int = 4, min_frames: int = 2, reference_level: float = 1.0,
                  min_separation_px: float | None = None, noise_floor: float = 0.0,
                  dropped: list[Event] | None = None) -> list[Event]:
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
    dropped
        When given, the features seen in fewer than ``min_frames`` frames (dropped as noise) are appended to it.

    Returns
    -------
    list of Event
        Ordered by first frame, then position.

    Notes
    -----
    A feature of frame ``k`` continues every earlier event of the same sign whose footprint it touches, so two
    filaments that grow into one another stay two events. A local maximum where no earlier frame showed at least
    ``SADDLE_FRACTION`` of its value above the threshold (at least ``min_separation_px`` from a higher one) starts a new event only if the feature dips below ``SADDLE_FRACTION``
    of the lower of the two, and by more than ``n_sigma`` robust σ, between it and every earlier event's highest
    pixel or higher maximum (a test of topographic prominence, :func:`_new_starts`): a filament whose tip advanced
    since the last frame stays one event, also where the tip is brighter than where it started, and a filament
    appearing at once is one event however long. Before this rule, a tip advancing 12 nm per frame along a boundary
    gave one event per frame (4 boundary events for one filament in the enrichment); with a dip below half of the
    new maximum (the first version of the rule), a filament five times brighter at its tip than at its start was two
    events in one of two noise draws, and a spot 6 nm beside a filament, joined to it at 63 % of its height, none.
    The feature's pixels go to its events by a watershed of the smoothed difference
    (``skimage.segmentation.watershed``) from their seeds (:func:`_share`).
    """
    sep = float(min_separation_px) if min_separation_px is not None else max(3.0, 3.0 * smooth_px)
    events: list[Event] = []
    n = diff.shape[0]
    struct = np.ones((3, 3), bool)
    size = 2 * int(np.ceil(sep)) + 1
    prior = {1: np.full(diff.shape[1:], -np.inf), -1: np.full(diff.shape[1:], -np.inf)}
    for k in range(1, n):
        d = _smooth_nan(diff[k], smooth_px)
        d = np.where(region, d, np.nan)
        sig = max(robust_sigma(d), float(noise_floor))
        if not np.isfinite(sig) or sig == 0:
            continue
        for sign in (1, -1):
            sd = np.nan_to_num(sign * d, nan=-np.inf)
            # a maximum where an earlier frame already showed about as much is no new feature (a faint rim of an
            # earlier event's footprint that a new spot lifts is: the footprint alone does not say)
            seen = (prior[sign] > n_sigma * sig) & (prior[sign] >= SADDLE_FRACTION * sd)
            prior[sign] = np.maximum(prior[sign], sd)
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
                owner_peaks = [_owner_peak(sd, comp, e, struct) for e in owners]
                starts = _new_starts(sd, comp, peaks & comp & ~seen, owner_peaks, sep, n_sigma * sig)
                if not owners and not starts:
                    i = int(np.argmax(np.where(comp, sd, -np.inf)))
                    starts = [divmod(i, d.shape[1])]
                new = [Event(sign, k, float(a), float(b), np.zeros(d.shape, bool), 0, 0.0, [k]) for a, b in starts]
                members = owners + new
                rr, cc = np.nonzero(comp)
                nearest = _share(sd, comp, members, struct, seen, owner_peaks)[rr, cc] - 1
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
    if dropped is not None:
        dropped.extend(e for e in events if len(e.frames) < min(min_frames, n - e.first_frame))
    kept.sort(key=lambda e: (e.first_frame, e.row, e.col))
    return kept
