"""Virtual detectors: bright-field disk, annular (ADF) detector, virtual-dark-field disks, arbitrary masks.

A :class:`Detector` is a geometric description; :meth:`Detector.weights` turns it into a dense weight image
``(det_row, det_col)`` for a given detector shape, beam centre and pixel size. Geometry in detector pixels
(``units="px"``) or in 1/Å (``units="q"``, no 2π, converted with ``q_pixel_size``). A pixel belongs to a disk
of radius ``R`` around ``(r0, c0)`` when ``(row − r0)² + (col − c0)² ≤ R²``; to an annulus when
``R_in² ≤ d² ≤ R_out²`` (py4DSTEM and pyxem use the same closed-disk rule).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError, ParameterError

__all__ = ["Detector", "bright_field", "annulus", "dark_field", "mask_detector"]

_UNITS = ("px", "q")


def _positive(name: str, v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, got {v!r}") from None
    if not math.isfinite(f) or f <= 0:
        raise ParameterError(f"{name} must be a finite positive number, got {v!r}")
    return f


@dataclass(frozen=True)
class Detector:
    """One virtual detector.

    Attributes
    ----------
    kind
        ``"bf"`` (disk at the beam centre), ``"annulus"``, ``"disks"`` (virtual dark field: the union of disks at
        chosen reciprocal positions) or ``"mask"``.
    radii
        ``(R,)`` for ``bf``/``disks``, ``(R_in, R_out)`` for ``annulus``, in ``units``.
    positions
        ``(n, 2)`` disk centres (``disks`` only): absolute detector ``(row, col)`` pixels when ``units="px"``,
        offsets ``(q_row, q_col)`` in 1/Å from the beam centre along the detector rows/columns when ``units="q"``.
    mask
        ``(ky, kx)`` weights (``mask`` only; bool masks become 0/1).
    units
        ``"px"`` or ``"q"``.
    name
        A label for figures and files.
    """

    kind: str
    radii: tuple[float, ...] = ()
    positions: np.ndarray | None = None
    mask: np.ndarray | None = field(default=None, repr=False)
    units: str = "px"
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("bf", "annulus", "disks", "mask"):
            raise ParameterError(f"detector kind must be bf, annulus, disks or mask, got {self.kind!r}")
        if self.units not in _UNITS:
            raise ParameterError(f"detector units must be 'px' or 'q', got {self.units!r}")

    @property
    def relative_to_center(self) -> bool:
        """True when the geometry is placed relative to the beam centre (then it can follow the centre)."""
        return self.kind in ("bf", "annulus") or (self.kind == "disks" and self.units == "q")

    def weights(self, detector_shape: tuple[int, int], center: tuple[float, float] | None = None,
                q_pixel_size: float | None = None) -> np.ndarray:
        """Dense weights ``(ky, kx)`` float64 of this detector.

        Parameters
        ----------
        detector_shape
            ``(ky, kx)``.
        center
            Beam centre ``(row, col)`` in pixels (needed by ``bf``, ``annulus`` and ``disks`` in q-units).
        q_pixel_size
            1/Å per pixel (needed when ``units="q"``).

        Raises
        ------
        ParameterError
            Missing centre or pixel size, a mask of the wrong shape, or a detector with no pixel on the detector.
        """
        ky, kx = (int(s) for s in detector_shape)
        if self.kind == "mask":
            m = np.asarray(self.mask)
            if m.shape != (ky, kx):
                raise ParameterError(f"mask shape {m.shape} does not match the detector shape {(ky, kx)}")
            w = m.astype(np.float64)
            if not np.all(np.isfinite(w)):
                raise ParameterError("mask weights must be finite")
        else:
            scale = 1.0
            if self.units == "q":
                if q_pixel_size is None:
                    raise ParameterError("a detector in 1/Å needs the detector calibration q_pixel_size (1/Å per px)")
                scale = 1.0 / float(q_pixel_size)
            if self.relative_to_center and center is None:
                raise ParameterError(f"a {self.kind} detector needs the beam centre (row, col)")
            rr, cc = np.mgrid[0:ky, 0:kx].astype(np.float64)
            if self.kind in ("bf", "annulus"):
                d2 = (rr - center[0]) ** 2 + (cc - center[1]) ** 2
                if self.kind == "bf":
                    w = (d2 <= (self.radii[0] * scale) ** 2).astype(np.float64)
                else:
                    r_in, r_out = self.radii[0] * scale, self.radii[1] * scale
                    w = ((d2 >= r_in**2) & (d2 <= r_out**2)).astype(np.float64)
            else:
                w = np.zeros((ky, kx))
                for r0, c0 in np.asarray(self.positions, dtype=np.float64):
                    if self.units == "q":
                        r0, c0 = center[0] + r0 * scale, center[1] + c0 * scale
                    w = np.maximum(w, ((rr - r0) ** 2 + (cc - c0) ** 2 <= (self.radii[0] * scale) ** 2))
        if not np.any(w != 0):
            raise ParameterError(f"virtual detector {self.name or self.kind} covers no detector pixel of the "
                                 f"{ky} x {kx} detector")
        return w


def bright_field(radius: float, *, units: str = "px", name: str = "BF") -> Detector:
    """Bright-field disk of ``radius`` (px, or 1/Å with ``units="q"``) around the beam centre."""
    return Detector("bf", (_positive("bright-field radius", radius),), units=units, name=name)


def annulus(r_in: float, r_out: float, *, units: str = "px", name: str = "ADF") -> Detector:
    """Annular detector ``r_in ≤ |k − centre| ≤ r_out`` (px, or 1/Å with ``units="q"``); ``r_in`` may be 0."""
    try:
        a, b = float(r_in), float(r_out)
    except (TypeError, ValueError):
        raise ParameterError(f"annulus radii must be numbers, got {r_in!r}, {r_out!r}") from None
    if not (math.isfinite(a) and math.isfinite(b) and 0 <= a < b):
        raise ParameterError(f"annulus needs 0 <= R_IN < R_OUT, got {r_in!r}, {r_out!r}")
    return Detector("annulus", (a, b), units=units, name=name)


def dark_field(positions: Any, radius: float, *, units: str = "px", name: str = "VDF") -> Detector:
    """Virtual dark field: the union of disks of ``radius`` at ``positions`` ``(n, 2)`` or ``(2,)``.

    ``units="px"``: absolute detector ``(row, col)`` in pixels; ``units="q"``: offsets ``(q_row, q_col)`` in 1/Å
    from the beam centre along the detector rows and columns (radius in 1/Å too).
    """
    pos = np.atleast_2d(np.asarray(positions, dtype=np.float64))
    if pos.ndim != 2 or pos.shape[1] != 2 or len(pos) == 0 or not np.all(np.isfinite(pos)):
        raise ParameterError(f"dark-field positions must be finite (row, col) pairs, got shape {pos.shape}")
    return Detector("disks", (_positive("dark-field disk radius", radius),), positions=pos, units=units, name=name)


def mask_detector(mask: Any, *, name: str = "mask") -> Detector:
    """A detector given by a boolean or weighted mask ``(ky, kx)`` in detector pixels."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise InputError(f"mask must be 2-D (det_row, det_col), got shape {m.shape}")
    if m.dtype.kind not in "biuf":
        raise InputError(f"mask must be boolean or numeric, got dtype {m.dtype}")
    return Detector("mask", (), mask=m, name=name)
