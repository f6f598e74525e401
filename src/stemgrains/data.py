"""Data types handed between the stages: :class:`Calibration` and :class:`Dataset4D`.

Conventions (see README, "Conventions"): a data cube is ``data[scan_row, scan_col, det_row, det_col]``;
reciprocal space in 1/Å without 2π (``q = 1/d``); scan step in nm; angles in degrees at the API edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import config
from .errors import InputError, ParameterError

__all__ = ["Calibration", "Dataset4D", "axis_angle_deg", "electron_wavelength"]


def electron_wavelength(accelerating_voltage_kV: float) -> float:
    """Relativistic electron wavelength in Å for an accelerating voltage in kV.

    ``λ = h / sqrt(2 m0 e V (1 + e V / (2 m0 c²)))`` with CODATA 2018 constants
    (300 kV → 0.019687 Å, 200 kV → 0.025079 Å).
    """
    v = float(accelerating_voltage_kV)
    if not math.isfinite(v) or v <= 0:
        raise ParameterError(f"accelerating_voltage_kV must be a positive number of kV, got {accelerating_voltage_kV!r}")
    check_voltage(v)
    h = 6.62607015e-34
    m0 = 9.1093837015e-31
    e = 1.602176634e-19
    c = 299792458.0
    volts = v * 1e3
    lam_m = h / math.sqrt(2 * m0 * e * volts * (1 + e * volts / (2 * m0 * c * c)))
    return lam_m * 1e10


#: the ellipticity ratios a Calibration takes: real detector distortions are a few per cent (a ratio of 100 is a
#: typo, which would leave no spot on the detector)
ELLIPTICITY_RATIO_RANGE = (0.5, 2.0)
#: the singular values an ``affine`` may have: a detector distortion, not a scale error of the pixel size
AFFINE_SCALE_RANGE = (0.5, 2.0)


def file_wavelength(accelerating_voltage_kV: float, source: str) -> float:
    """:func:`electron_wavelength` of a voltage a data file states (to convert its mrad axes to 1/Å), a refusal
    naming the file ``source`` and the override (``--voltage``)."""
    try:
        return electron_wavelength(accelerating_voltage_kV)
    except ParameterError as err:
        raise ParameterError(f"{source}: {err} (the value stated in this file; give --voltage to override it)") from None


def check_voltage(kv: float, name: str = "accelerating_voltage_kV") -> float:
    """``kv`` where it lies in ``config.VOLTAGE_RANGE_KV`` (an electron microscope's accelerating voltage, kV);
    else :class:`ParameterError` naming ``name`` and the range (a voltage given in V, 3e5, or a typo would index
    with a wavelength orders of magnitude off and report nothing)."""
    lo, hi = config.VOLTAGE_RANGE_KV
    if not lo <= kv <= hi:
        raise ParameterError(f"{name} {kv:g}: expected an accelerating voltage of {lo:g}–{hi:g} kV (in kV, not V)")
    return kv


def _finite_positive(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ParameterError(f"{name} must be a finite positive number, got {value!r}")
    return v


def _finite(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ParameterError(f"{name} must be finite, got {value!r}")
    return v


def axis_angle_deg(angle: float) -> float:
    """An ellipse axis angle (degrees, from +col toward +row; an axis at a and at a + 180° is the same axis) in
    (−90°, 90°], the range of in-plane axis angles of docs/conventions.md. Every place that reports the fitted
    ``ellipticity_angle_deg`` (printed line, calibration JSON, figure, ``/calibration`` of results files) takes it
    from here; a file holding the same axis in another range (e.g. [0°, 180°)) describes the same distortion."""
    return 90.0 - (90.0 - float(angle)) % 180.0


@dataclass(frozen=True)
class Calibration:
    """Detector and scan calibration, validated on construction.

    Parameters
    ----------
    q_pixel_size
        Reciprocal-space size of one detector pixel, 1/Å per pixel (no 2π); ``None`` when unknown (a file
        without a detector calibration can be opened and inspected; indexing then needs one, see
        :meth:`require_q_pixel_size`).
    accelerating_voltage_kV
        Accelerating voltage, kV.
    scan_step_nm
        Real-space scan step, nm (the same along rows and columns).
    center
        Direct-beam centre ``(row, col)`` on the detector in pixels, or ``None`` for automatic
        (found per pattern by preprocessing).
    q_rotation_deg
        Rotation that brings detector axes into the sample frame, degrees, measured from +x toward +y.
    q_flip
        ``True`` if the camera image is transposed relative to the scan.
    ellipticity
        ``(ratio, angle_deg)`` of the elliptical distortion of the diffraction pattern, or ``None``: on the
        detector, distances along the axis at ``angle_deg`` (measured in the detector frame from +col toward
        +row) are ``ratio`` times longer than along the perpendicular axis, where one pixel is ``q_pixel_size``.
        (Not area-preserving: the mean pixel size is ``q_pixel_size / sqrt(ratio)``.) The ratio must lie in
        :data:`ELLIPTICITY_RATIO_RANGE` (0.5–2).
    affine
        ``(A11, A12, A21, A22)``: a general 2 × 2 detector distortion (dimensionless, row-major), or ``None``.
        It acts on detector offsets written as column vectors ``(dcol, drow)`` and maps the ideal offset (after
        rotation, flip and ellipticity) to the measured one: ``measured = A @ ideal``. Applied last, so it
        composes with the other fields; the identity changes nothing. Its singular values must lie in
        :data:`AFFINE_SCALE_RANGE` (0.5–2): a larger scale is a pixel-size error.

    Notes
    -----
    The full map from a sample-frame scattering vector ``(qx, qy)`` (1/Å) to a detector offset from the centre
    ``(dcol, drow)`` (px) is ``A · E · F · R(−q_rotation_deg) / q_pixel_size`` with ``E`` the ellipticity
    (``R(φ) diag(ratio, 1) R(−φ)``), ``F`` the transpose of the axes if ``q_flip``, and ``A`` the affine
    (see :meth:`_affine`). Diffraction alone fixes this map only up to a rotation (and a flip): a rotated
    camera looks like rotated grains.
    """

    q_pixel_size: float | None
    accelerating_voltage_kV: float = 300.0
    scan_step_nm: float = 1.0
    center: tuple[float, float] | None = None
    q_rotation_deg: float = 0.0
    q_flip: bool = False
    ellipticity: tuple[float, float] | None = None
    affine: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.q_pixel_size is not None:
            object.__setattr__(self, "q_pixel_size", _finite_positive("q_pixel_size", self.q_pixel_size))
        object.__setattr__(
            self, "accelerating_voltage_kV", check_voltage(_finite_positive("accelerating_voltage_kV", self.accelerating_voltage_kV))
        )
        object.__setattr__(self, "scan_step_nm", _finite_positive("scan_step_nm", self.scan_step_nm))
        object.__setattr__(self, "q_rotation_deg", _finite("q_rotation_deg", self.q_rotation_deg))
        object.__setattr__(self, "q_flip", bool(self.q_flip))
        if self.center is not None:
            try:
                r, c = self.center
            except (TypeError, ValueError):
                raise ParameterError(f"center must be (row, col) in pixels or None, got {self.center!r}") from None
            object.__setattr__(self, "center", (_finite("center row", r), _finite("center col", c)))
        if self.ellipticity is not None:
            try:
                ratio, ang = self.ellipticity
            except (TypeError, ValueError):
                raise ParameterError(
                    f"ellipticity must be (axis ratio, angle_deg) or None, got {self.ellipticity!r}"
                ) from None
            ratio = _finite_positive("ellipticity ratio", ratio)
            if not ELLIPTICITY_RATIO_RANGE[0] <= ratio <= ELLIPTICITY_RATIO_RANGE[1]:  # a detector's, not a typo's
                raise ParameterError(f"ellipticity ratio must lie between {ELLIPTICITY_RATIO_RANGE[0]:g} and "
                                     f"{ELLIPTICITY_RATIO_RANGE[1]:g} (a detector distortion, ratio of the axes' "
                                     f"pixel sizes), got {ratio:g}")
            object.__setattr__(self, "ellipticity", (ratio, _finite("ellipticity angle", ang)))
        if self.affine is not None:
            try:
                a = np.asarray(self.affine, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                raise ParameterError(f"affine must be four numbers (A11, A12, A21, A22) or None, got {self.affine!r}") from None
            if a.shape != (4,) or not np.all(np.isfinite(a)):
                raise ParameterError(f"affine must be four finite numbers (A11, A12, A21, A22), got {self.affine!r}")
            det = a[0] * a[3] - a[1] * a[2]
            sv = np.linalg.svd(a.reshape(2, 2), compute_uv=False)
            if abs(det) < 1e-6 or sv[0] > 10 * sv[1]:
                raise ParameterError(f"affine {tuple(a.tolist())} is singular or too distorted (singular values {sv[0]:.3g}, {sv[1]:.3g})")
            lo, hi = AFFINE_SCALE_RANGE
            if sv[0] > hi or sv[1] < lo:  # (--affine 100,0,0,100 was blamed on the spots' beam radius)
                raise ParameterError(f"affine {tuple(a.tolist())}: expected a detector distortion that scales offsets by "
                                     f"{lo:g}-{hi:g} (its singular values are {sv[0]:.3g}, {sv[1]:.3g}); a uniform "
                                     "scale error is the pixel size's (q_pixel_size)")
            object.__setattr__(self, "affine", tuple(float(x) for x in a))

    @property
    def is_calibrated(self) -> bool:
        """True when the detector pixel size in reciprocal space is known."""
        return self.q_pixel_size is not None

    def require_q_pixel_size(self, source: str = "calibration") -> float:
        """``q_pixel_size`` (1/Å per pixel), or a one-line :class:`ParameterError` asking for one."""
        if self.q_pixel_size is None:
            raise ParameterError(
                f"{source}: the detector is not calibrated (no reciprocal pixel size in the file); give "
                "--q-pixel-size (1/Å per pixel; q_pixel_size= in Python) or a calibration file"
            )
        return self.q_pixel_size

    @property
    def wavelength(self) -> float:
        """Relativistic electron wavelength in Å."""
        return electron_wavelength(self.accelerating_voltage_kV)

    def check_detector(self, detector_shape: tuple[int, int], source: str = "calibration") -> None:
        """Raise :class:`ParameterError` if ``center`` lies outside a detector of this shape (the message starts
        with ``center``, which the CLI names as ``--center`` where that option was typed, and names ``source``)."""
        if self.center is None:
            return
        ky, kx = detector_shape
        r, c = self.center
        if not (0 <= r <= ky - 1 and 0 <= c <= kx - 1):
            raise ParameterError(
                f"center (row, col) = ({r:g}, {c:g}) lies outside the {ky} x {kx} detector of {source}; expected a "
                f"(row, col) inside it, row 0–{ky - 1} and col 0–{kx - 1} (detector pixels)"
            )

    def _affine(self) -> np.ndarray:
        """2 × 2 matrix taking a sample-frame q (qx, qy) in 1/Å to detector pixel offsets (dcol, drow)."""
        t = math.radians(self.q_rotation_deg)
        # detector axes -> sample frame is a rotation by +q_rotation; invert it here
        rot = np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])
        m = rot
        if self.q_flip:
            m = np.array([[0.0, 1.0], [1.0, 0.0]]) @ m
        if self.ellipticity is not None:
            ratio, ang = self.ellipticity
            p = math.radians(ang)
            r = np.array([[math.cos(p), -math.sin(p)], [math.sin(p), math.cos(p)]])
            m = r @ np.diag([ratio, 1.0]) @ r.T @ m
        if self.affine is not None:
            m = np.asarray(self.affine, dtype=np.float64).reshape(2, 2) @ m
        return m / self.require_q_pixel_size()

    def sample_q_to_detector(self, q_xy: np.ndarray) -> np.ndarray:
        """Sample-frame q (…, 2) as (qx, qy) in 1/Å → detector offsets from the centre (…, 2) as (drow, dcol) px.

        Applies the inverse of the detector → sample mapping: rotation by ``q_rotation_deg``, transpose if
        ``q_flip``, the elliptical distortion if ``ellipticity`` is set and the ``affine`` if set.
        """
        uv = np.asarray(q_xy, dtype=np.float64) @ self._affine().T  # (dcol, drow)
        return uv[..., ::-1].copy()

    def detector_to_sample_q(self, d_rowcol: np.ndarray) -> np.ndarray:
        """Detector offsets from the centre (…, 2) as (drow, dcol) px → sample-frame (qx, qy) in 1/Å."""
        uv = np.asarray(d_rowcol, dtype=np.float64)[..., ::-1]
        return uv @ np.linalg.inv(self._affine()).T

    def with_overrides(self, **overrides: Any) -> "Calibration":
        """A copy with the non-``None`` overrides applied (validated)."""
        clean = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(clean) - set(self.__dataclass_fields__)
        if unknown:
            raise ParameterError(f"unknown calibration parameter(s): {', '.join(sorted(unknown))}")
        return replace(self, **clean)

    def to_attrs(self) -> dict[str, Any]:
        """Flat dict for HDF5 attributes / JSON (``None`` entries omitted)."""
        out: dict[str, Any] = {
            "q_pixel_size": self.q_pixel_size,
            "accelerating_voltage_kV": self.accelerating_voltage_kV,
            "scan_step_nm": self.scan_step_nm,
            "q_rotation_deg": self.q_rotation_deg,
            "q_flip": self.q_flip,
        }
        if self.q_pixel_size is None:
            del out["q_pixel_size"]
        if self.center is not None:
            out["center_row"], out["center_col"] = self.center
        if self.ellipticity is not None:
            out["ellipticity_ratio"], out["ellipticity_angle_deg"] = self.ellipticity
        if self.affine is not None:
            out["affine"] = list(self.affine)
        return out

    @classmethod
    def from_attrs(cls, attrs: Any, source: str = "attributes", **overrides: Any) -> "Calibration":
        """Build from a mapping of attributes (HDF5 attrs), overrides taking precedence."""

        def get(key: str, default: Any = None) -> Any:
            v = attrs.get(key, default) if hasattr(attrs, "get") else default
            if isinstance(v, np.ndarray) and v.size == 1:
                v = v.item()
            return v

        kw: dict[str, Any] = {}
        for key in ("q_pixel_size", "accelerating_voltage_kV", "scan_step_nm", "q_rotation_deg", "q_flip"):
            v = get(key)
            if v is not None:
                kw[key] = v
        if get("center_row") is not None and get("center_col") is not None:
            kw["center"] = (get("center_row"), get("center_col"))
        if get("ellipticity_ratio") is not None:
            kw["ellipticity"] = (get("ellipticity_ratio"), get("ellipticity_angle_deg", 0.0))
        aff = attrs.get("affine") if hasattr(attrs, "get") else None
        if aff is not None:
            kw["affine"] = tuple(np.asarray(aff, dtype=np.float64).reshape(-1).tolist())
        kw.update({k: v for k, v in overrides.items() if v is not None})
        if "q_pixel_size" not in kw:
            raise ParameterError(
                f"{source}: no q_pixel_size (1/Å per pixel) in the file; give it with --q-pixel-size / q_pixel_size="
            )
        try:
            return cls(**kw)
        except ParameterError as err:
            raise ParameterError(f"{source}: {err}") from None


@dataclass
class Dataset4D:
    """A 4D-STEM data cube with its calibration.

    ``data`` is array-like, shaped ``(scan_row, scan_col, det_row, det_col)``: a numpy array, an h5py
    dataset, a memmap or a dask array. It is never forced into memory; use :meth:`rows` to stream it.
    """

    data: Any
    calibration: Calibration
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = "<array>"

    def __post_init__(self) -> None:
        shape = getattr(self.data, "shape", None)
        if shape is None:
            raise InputError(f"{self.source}: data has no shape; expected an array-like (ny, nx, ky, kx)")
        if len(shape) != 4:
            raise InputError(
                f"{self.source}: data has {len(shape)} dimensions {tuple(shape)}; expected 4 "
                "(scan_row, scan_col, det_row, det_col)"
            )
        if min(shape) < 1:
            raise InputError(f"{self.source}: data shape {tuple(shape)} has an empty axis")
        kind = getattr(getattr(self.data, "dtype", None), "kind", "f")
        if kind not in "biuf":  # complex or text reached the kernels (a numba TypingError 14 frames deep)
            raise InputError(f"{self.source}: 4D data must be real numbers (integer or float), got dtype "
                             f"{self.data.dtype}")
        if not isinstance(self.calibration, Calibration):
            raise InputError(f"{self.source}: calibration must be a Calibration, got {type(self.calibration).__name__}")
        self.calibration.check_detector(self.detector_shape, source=self.source)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return tuple(int(s) for s in self.data.shape)  # type: ignore[return-value]

    @property
    def scan_shape(self) -> tuple[int, int]:
        return self.shape[0], self.shape[1]

    @property
    def detector_shape(self) -> tuple[int, int]:
        return self.shape[2], self.shape[3]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.data.dtype)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Scan rows ``start:stop`` as an in-memory numpy array (the only way stages read the cube)."""
        return self.finish_rows(self.fetch_rows(start, stop), start, stop)

    def fetch_rows(self, start: int, stop: int) -> Any:
        """The reading part of :meth:`rows` (file I/O, decompression; no numba kernel), so that a reader thread
        can fetch the next rows while kernels run: ``rows(a, b) == finish_rows(fetch_rows(a, b), a, b)``."""
        fetch = getattr(self.data, "fetch_rows", None)
        if fetch is not None:
            return fetch(start, stop)
        block = self.data[start:stop]
        if hasattr(block, "compute"):
            block = block.compute()
        return np.asarray(block)

    def finish_rows(self, fetched: Any, start: int, stop: int) -> np.ndarray:
        """The computing part of :meth:`rows` on what :meth:`fetch_rows` returned (e.g. neighbour summation)."""
        finish = getattr(self.data, "finish_rows", None)
        return finish(fetched, start, stop) if finish is not None else fetched

    def describe(self) -> dict[str, Any]:
        """Shape, dtype and source for results files."""
        return {"source": self.source, "shape": list(self.shape), "dtype": str(self.dtype)}
