"""Rendering diffraction spots onto a detector: a numba kernel and its slow numpy reference.

Spot profile
------------
A spot is a disk of radius ``R`` (the convergence semi-angle seen on the detector) with a soft edge of
Gaussian width ``σ`` (the blur), evaluated at pixel centres (integer row/col coordinates)::

    p(ρ) = ½ erfc((ρ − R) / (√2 σ))      for ρ ≤ R + 4σ, else 0,

with ρ the distance from the spot centre in pixels. Each spot's profile is normalised so that its values
over the whole window (including pixels that fall off the detector) sum to its amplitude: the integrated
counts of a spot equal its amplitude wherever it sits. A window in which no pixel centre lies within
``R + 4σ`` (tiny disks) puts all of the amplitude on the nearest pixel.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from ..errors import InputError, ParameterError

__all__ = ["render_pattern", "render_patterns", "render_patterns_reference"]

_EDGE_SIGMAS = 4.0


@nb.njit(cache=True, nogil=True)
def _render_csr_kernel(rows, cols, amps, starts, ky, kx, radius, blur):
    """Sum of spot profiles for many patterns; spots of pattern p are ``starts[p]:starts[p+1]``.

    Returns a new (n_patterns, ky, kx) float64 array; the inputs are not modified.
    """
    n_pat = starts.shape[0] - 1
    out = np.zeros((n_pat, ky, kx), dtype=np.float64)
    ext = radius + _EDGE_SIGMAS * blur
    half = int(math.ceil(ext + 0.5))
    width = 2 * half + 1
    buf = np.empty(width * width, dtype=np.float64)
    inv = 1.0 / (math.sqrt(2.0) * blur)
    for p in range(n_pat):
        for s in range(starts[p], starts[p + 1]):
            a = amps[s]
            if a == 0.0:
                continue
            r0 = rows[s]
            c0 = cols[s]
            ri = int(math.floor(r0 + 0.5))
            ci = int(math.floor(c0 + 0.5))
            if ri + half < 0 or ri - half > ky - 1 or ci + half < 0 or ci - half > kx - 1:
                continue
            total = 0.0
            k = 0
            for i in range(-half, half + 1):
                dr = ri + i - r0
                for j in range(-half, half + 1):
                    dc = ci + j - c0
                    rho = math.sqrt(dr * dr + dc * dc)
                    v = 0.0
                    if rho <= ext:
                        v = 0.5 * math.erfc((rho - radius) * inv)
                    buf[k] = v
                    total += v
                    k += 1
            if total <= 0.0:
                if 0 <= ri < ky and 0 <= ci < kx:
                    out[p, ri, ci] += a
                continue
            scale = a / total
            k = 0
            for i in range(-half, half + 1):
                rr = ri + i
                for j in range(-half, half + 1):
                    cc = ci + j
                    if 0 <= rr < ky and 0 <= cc < kx and buf[k] != 0.0:
                        out[p, rr, cc] += buf[k] * scale
                    k += 1
    return out


def render_patterns_reference(rows, cols, amps, starts, detector_shape, radius, blur) -> np.ndarray:
    """Slow, obvious numpy version of the rendering kernel (the test oracle). Same arguments as the kernel."""
    ky, kx = detector_shape
    n_pat = len(starts) - 1
    out = np.zeros((n_pat, ky, kx))
    ext = radius + _EDGE_SIGMAS * blur
    half = int(math.ceil(ext + 0.5))
    erfc = np.vectorize(math.erfc)
    for p in range(n_pat):
        for s in range(starts[p], starts[p + 1]):
            if amps[s] == 0:
                continue
            ri = int(math.floor(rows[s] + 0.5))
            ci = int(math.floor(cols[s] + 0.5))
            rr, cc = np.meshgrid(np.arange(ri - half, ri + half + 1), np.arange(ci - half, ci + half + 1), indexing="ij")
            rho = np.hypot(rr - rows[s], cc - cols[s])
            prof = np.where(rho <= ext, 0.5 * erfc((rho - radius) / (math.sqrt(2.0) * blur)), 0.0)
            if prof.sum() <= 0:
                prof = ((rr == ri) & (cc == ci)).astype(float)
            prof = prof * (amps[s] / prof.sum())
            on = (rr >= 0) & (rr < ky) & (cc >= 0) & (cc < kx)
            np.add.at(out[p], (rr[on], cc[on]), prof[on])
    return out


def _check_render_args(detector_shape, radius, blur):
    try:
        ky, kx = (int(v) for v in detector_shape)
    except (TypeError, ValueError):
        raise ParameterError(f"detector_shape must be (rows, cols), got {detector_shape!r}") from None
    if ky < 1 or kx < 1:
        raise ParameterError(f"detector_shape must be positive, got {detector_shape!r}")
    radius = float(radius)
    blur = float(blur)
    if not math.isfinite(radius) or radius < 0:
        raise ParameterError(f"disk radius must be >= 0 pixels, got {radius!r}")
    if not math.isfinite(blur) or blur <= 0:
        raise ParameterError(f"blur must be > 0 pixels, got {blur!r}")
    return ky, kx, radius, blur


def render_patterns(
    spots_rc: np.ndarray,
    amplitudes: np.ndarray,
    starts: np.ndarray,
    detector_shape: tuple[int, int],
    disk_radius_px: float,
    blur_px: float = 1.0,
) -> np.ndarray:
    """Render many spot patterns at once (compressed-row layout).

    Parameters
    ----------
    spots_rc
        (n_spots, 2) spot centres (row, col) in detector pixels, all patterns concatenated.
    amplitudes
        (n_spots,) integrated counts of each spot.
    starts
        (n_patterns + 1,) increasing offsets: pattern ``p`` owns spots ``starts[p]:starts[p+1]``.
    detector_shape
        (rows, cols) of the detector.
    disk_radius_px
        Disk radius, pixels (convergence semi-angle / λ / q_pixel_size).
    blur_px
        Gaussian width of the disk edge, pixels (> 0).

    Returns
    -------
    (n_patterns, rows, cols) float64
    """
    ky, kx, radius, blur = _check_render_args(detector_shape, disk_radius_px, blur_px)
    rc = np.asarray(spots_rc, dtype=np.float64).reshape(-1, 2)
    amps = np.ascontiguousarray(amplitudes, dtype=np.float64).reshape(-1)
    starts = np.ascontiguousarray(starts, dtype=np.int64).reshape(-1)
    if len(amps) != len(rc):
        raise InputError(f"{len(rc)} spot positions but {len(amps)} amplitudes")
    if len(starts) < 1 or starts[0] != 0 or starts[-1] != len(amps) or np.any(np.diff(starts) < 0):
        raise InputError("starts must rise from 0 to the number of spots")
    if not (np.all(np.isfinite(rc)) and np.all(np.isfinite(amps))):
        raise InputError("spot positions and amplitudes must be finite")
    rows = np.ascontiguousarray(rc[:, 0])
    cols = np.ascontiguousarray(rc[:, 1])
    return _render_csr_kernel(rows, cols, amps, starts, ky, kx, radius, blur)


def render_pattern(
    spots_rc: np.ndarray,
    amplitudes: np.ndarray,
    detector_shape: tuple[int, int],
    disk_radius_px: float,
    blur_px: float = 1.0,
) -> np.ndarray:
    """Render one pattern: spots (row, col) in detector pixels with integrated counts ``amplitudes``.

    See :func:`render_patterns` for the parameters; returns a (rows, cols) float64 image.
    """
    amps = np.asarray(amplitudes, dtype=np.float64).reshape(-1)
    return render_patterns(spots_rc, amps, np.array([0, len(amps)]), detector_shape, disk_radius_px, blur_px)[0]
