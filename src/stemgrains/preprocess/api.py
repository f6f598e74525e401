"""Public preprocessing functions: validation + conversion, then the numba kernels."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .. import config
from ..data import Calibration
from ..errors import InputError, ParameterError
from . import _kernels as K

__all__ = ["SpotParams", "detect_spots", "detector_q_reach", "processed_images", "direct_beam_center", "pattern_centers", "polar_transform", "radial_background"]


@dataclass(frozen=True)
class SpotParams:
    """Spot-detection parameters.

    Attributes
    ----------
    q_min
        Spots closer than this to the direct beam are ignored, 1/Å (None: 2.5 × the beam radius).
    q_max
        Spots farther out are ignored, 1/Å (None: the indexing ``k_max``; for :func:`detect_spots` alone, what the
        detector reaches, :func:`detector_q_reach`).
    beam_radius_px
        Radius of the disk used to find the direct-beam centre, px.
    n_sigma
        Detection threshold in Poisson standard deviations of the local background.
    n_sigma_sparse, min_spots
        A sparse pattern, with fewer than ``min_spots`` spots above ``n_sigma``, also takes the brightest weaker local
        maxima above ``n_sigma_sparse`` until it has ``min_spots``; ``n_sigma_sparse`` set must lie below ``n_sigma``
        (at or above it there are no weaker spots to take: refused, unless ``min_spots = 0``; the default with
        ``n_sigma`` lowered to it or below is accepted). The orientation search uses them
        (on multislice patterns of randomly oriented Au grains with 4–8 spots above 5σ, the weaker ones are what
        tells the orientation apart); the spot fit and the reliability count only the spots above ``n_sigma``, and
        the calibration fits and the Bragg-vector map take only those. ``min_spots = 0`` turns it off.
    min_distance_px
        Minimum separation of two spots, px.
    max_peaks
        At most this many (strongest) spots per pattern.
    ring_radius_px
        Distance of the square ring used for the local background, px.
    power
        Spot amplitude = excess ** power.
    refine_center
        Find the direct beam in every pattern, starting from the calibrated centre (or the detector middle);
        ``False`` uses the calibrated centre as it is (it must be given).
    center_search_px
        The direct beam is searched within this distance of the nominal centre (default: 1/8 of the detector).
    """

    q_min: float | None = None
    q_max: float | None = None
    beam_radius_px: float = 4.0
    n_sigma: float = 5.0
    n_sigma_sparse: float = config.SPARSE_N_SIGMA
    min_spots: int = config.SPARSE_MIN_SPOTS
    min_distance_px: int = 2
    max_peaks: int = 64
    ring_radius_px: int = 3
    power: float = 0.5
    refine_center: bool = True
    center_search_px: float | None = None

    def __post_init__(self) -> None:
        for name in ("q_max", "beam_radius_px", "n_sigma"):
            v = getattr(self, name)
            if v is None and name == "q_max":
                continue
            if not (np.isfinite(v) and v > 0):
                raise ParameterError(f"{name} must be positive, got {v!r}")
        v = self.n_sigma_sparse
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not (np.isfinite(v) and v > 0):
            raise ParameterError(f"n_sigma_sparse must be a positive threshold (σ), got {v!r}")
        v = self.min_spots
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v <= config.SPARSE_MIN_SPOTS_MAX:
            raise ParameterError(f"min_spots must be an integer from 0 (off) to {config.SPARSE_MIN_SPOTS_MAX}, got {v!r}")
        v = self.q_min
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating))
                              or not (np.isfinite(v) and v >= 0)):
            raise ParameterError(f"q_min: expected a finite value of at least 0 (1/Å), got {v!r}")
        if v is not None and self.q_max is not None and v >= self.q_max:  # no spot could be detected
            raise ParameterError(f"q_min: expected a value below q_max ({self.q_max:g} 1/Å), got {v:g}")
        # it only ever lowers the threshold: a value set at or above n_sigma would do nothing (the default left as it
        # is, with n_sigma lowered to it or below, is fine: every spot it would add is taken anyway)
        if self.min_spots > 0 and self.n_sigma_sparse >= self.n_sigma and self.n_sigma_sparse != config.SPARSE_N_SIGMA:
            raise ParameterError(f"n_sigma_sparse: expected a value below n_sigma ({self.n_sigma:g}), got "
                                 f"{self.n_sigma_sparse:g} (the threshold of the weaker spots a sparse pattern takes; lower it, or "
                                 "set min_spots = 0 to take none)")
        v = self.max_peaks
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= config.MAX_PEAKS_MAX:
            raise ParameterError(f"max_peaks must be an integer from 1 to {config.MAX_PEAKS_MAX}, got {v!r}")
        if self.max_peaks < 1 or self.min_distance_px < 1 or self.ring_radius_px < 2:
            raise ParameterError("max_peaks and min_distance_px must be >= 1 and ring_radius_px >= 2")

    def resolved_q_min(self, calibration: Calibration) -> float:
        if self.q_min is not None:
            return float(self.q_min)
        return 2.5 * self.beam_radius_px * calibration.require_q_pixel_size()

    def resolved_q_max(self, calibration: Calibration, detector_shape: tuple[int, int]) -> float:
        if self.q_max is not None:
            return float(self.q_max)
        return detector_q_reach(calibration, detector_shape)

    def as_dict(self) -> dict:
        return asdict(self)


def detector_q_reach(calibration: Calibration, detector_shape: tuple[int, int], margin_px: float = 2.0) -> float:
    """The largest |q| (1/Å) that is on the detector in every direction: the radius of the largest circle about
    the calibrated centre (or the detector middle) that fits inside the detector, less ``margin_px``, converted
    to 1/Å through the calibration's affine map (its largest singular value, so that an elliptical distortion
    cannot push the circle off the detector)."""
    ky, kx = (int(v) for v in detector_shape)
    cr, cc = calibration.center if calibration.center is not None else ((ky - 1) / 2, (kx - 1) / 2)
    r_px = min(cr, cc, ky - 1 - cr, kx - 1 - cc) - margin_px
    if r_px <= 0:
        raise ParameterError(f"the beam centre ({cr:g}, {cc:g}) leaves no room on the {ky} x {kx} detector "
                             f"(expected more than {margin_px:g} px between the centre and every edge)")
    return float(r_px / np.linalg.svd(calibration._affine(), compute_uv=False)[0])


def _affine_inv(calibration: Calibration) -> np.ndarray:
    return np.ascontiguousarray(np.linalg.inv(calibration._affine()))


def _real(arr: np.ndarray, name: str) -> np.ndarray:
    """Real numeric array in a dtype the kernels compile for (float16 and non-native byte orders → float64)."""
    if arr.dtype.kind not in "fiu":
        raise InputError(f"{name} must be numeric (integer or real), got dtype {arr.dtype}")
    if not arr.dtype.isnative or arr.dtype == np.float16:
        arr = arr.astype(np.float64)
    return np.ascontiguousarray(arr)


def _stack(patterns: np.ndarray) -> np.ndarray:
    arr = np.asarray(patterns)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise InputError(f"patterns must be (ky, kx) or (n, ky, kx), got shape {arr.shape}")
    return _real(arr, "patterns")


def _image(pattern: np.ndarray) -> np.ndarray:
    arr = np.asarray(pattern)
    if arr.ndim != 2:
        raise InputError(f"pattern must be 2-D, got shape {arr.shape}")
    return np.ascontiguousarray(_real(arr, "pattern"), dtype=np.float64)


def detect_spots(patterns: np.ndarray, calibration: Calibration, params: SpotParams | None = None,
                 with_strong_counts: bool = False):
    """Spots of a stack of patterns in the sample frame.

    Parameters
    ----------
    patterns
        ``(n, ky, kx)`` or ``(ky, kx)`` detector images.
    calibration
        Gives q_pixel_size, the rotation/flip/ellipticity and (if set) a fixed direct-beam centre.

    Raises
    ------
    ParameterError
        The inner radius (``q_min``) is not below the outer one (``q_max``; unset: what the detector reaches).

    Returns
    -------
    peaks : (n, max_peaks, 3) float64
        Rows (qx, qy, amplitude), qx/qy in 1/Å in the sample frame; rows past ``counts[i]`` are zero.
    counts : (n,) int64
    centers : (n, 2) float64
        Direct-beam centre (row, col) used, px.
    strong_counts : (n,) int64, only ``with_strong_counts``
        How many of the spots (the first rows) lie above ``n_sigma``; the others are the weaker spots a sparse
        pattern took (``min_spots``, ``n_sigma_sparse``).
    """
    params = params or SpotParams()
    arr = _stack(patterns)
    if calibration.center is not None:
        calibration.check_detector(arr.shape[1:])
    ky, kx = arr.shape[1:]
    if calibration.center is None and not params.refine_center:
        raise ParameterError("refine_center=False needs a calibrated centre (center=(row, col))")
    fixed = not params.refine_center
    cr, cc = calibration.center if calibration.center is not None else ((ky - 1) / 2, (kx - 1) / 2)
    search = params.center_search_px if params.center_search_px is not None else max(ky, kx) / 8
    q_lo, q_hi = params.resolved_q_min(calibration), params.resolved_q_max(calibration, (ky, kx))
    if q_lo >= q_hi:  # an empty annulus: nothing would be detected, and nothing indexed
        raise ParameterError(f"q_min: the inner radius of the spots, {q_lo:.4g} 1/Å, is not below their outer radius "
                             f"{q_hi:.4g} 1/Å (q_max, or k_max, or what the {ky} x {kx} detector reaches); no spot "
                             "can be detected")
    peaks, counts, centers, strong = K.detect_spots_chunk(
        arr, fixed, float(cr), float(cc), float(search), float(params.beam_radius_px), _affine_inv(calibration),
        q_lo, q_hi, float(params.n_sigma), int(params.min_distance_px),
        int(params.max_peaks), int(params.ring_radius_px), float(params.power),
        float(params.n_sigma_sparse), int(params.min_spots),
    )
    return (peaks, counts, centers, strong) if with_strong_counts else (peaks, counts, centers)


def direct_beam_center(pattern: np.ndarray, radius_px: float = 4.0, start: tuple[float, float] | None = None) -> tuple[float, float]:
    """Direct-beam centre (row, col) of one pattern: iterated centre of mass in a disk around the brightest pixel
    (or ``start``)."""
    img = _image(pattern)
    if start is None:
        k = int(np.argmax(img))
        start = (k // img.shape[1], k % img.shape[1])
    return K.center_of_mass_disk(img, float(start[0]), float(start[1]), float(radius_px), 4)


def pattern_centers(block: np.ndarray, start: tuple[float, float], radius_px: float = 4.0,
                    search_px: float | None = None) -> np.ndarray:
    """Direct-beam centre ``(row, col)`` of every pattern of a block ``(nr, nx, ky, kx)`` → ``(nr, nx, 2)``:
    brightest 3 × 3 sum within ``search_px`` of ``start``, refined by the centre of mass in a disk (the
    preprocessing kernels; used by the virtual detectors that follow the beam)."""
    nr, nx, ky, kx = block.shape
    search = search_px if search_px is not None else max(ky, kx) / 8
    out = np.zeros((nr, nx, 2))
    for i in range(nr):
        for j in range(nx):
            img = np.ascontiguousarray(block[i, j], dtype=np.float64)
            r0, c0 = K.brightest_near(K.box_sum3(img), float(start[0]), float(start[1]), float(search))
            out[i, j] = K.center_of_mass_disk(img, float(r0), float(c0), float(radius_px), 4)
    return out


def polar_transform(pattern: np.ndarray, calibration: Calibration, center: tuple[float, float], q_max: float, n_radial: int = 64, n_angles: int = 360) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resample a pattern on a polar grid of the *sample* frame (the calibrated rotation, flip and ellipticity are
    corrected). Returns (image (n_radial, n_angles), q_radii 1/Å, angles rad; angle from +x toward +y)."""
    img = _image(pattern)
    q = np.linspace(0, q_max, n_radial)
    a = np.arange(n_angles) * (2 * np.pi / n_angles)
    return K.polar_transform(img, float(center[0]), float(center[1]), np.ascontiguousarray(calibration._affine()), q, a), q, a


def radial_background(pattern: np.ndarray, calibration: Calibration, center: tuple[float, float], bin_width_q: float, q_max: float, quantile: float = 0.5) -> np.ndarray:
    """Background profile: the ``quantile`` of each ring of width ``bin_width_q`` (1/Å) out to ``q_max``; spots are
    sparse, so a ring's median is its smooth background (amorphous rings, inelastic tails)."""
    if not 0 <= quantile <= 1:
        raise ParameterError(f"quantile must be in [0, 1], got {quantile!r}")
    for name, v in (("bin_width_q", bin_width_q), ("q_max", q_max)):
        if not (np.isfinite(v) and v > 0):
            raise ParameterError(f"{name} must be a positive number of 1/Å, got {v!r}")
    img = _image(pattern)
    n_bins = int(np.ceil(q_max / bin_width_q))
    return K.radial_background(img, float(center[0]), float(center[1]), _affine_inv(calibration), float(bin_width_q), n_bins, float(quantile))


def processed_images(patterns: np.ndarray, calibration: Calibration, centers: np.ndarray, params: SpotParams | None = None, quantile: float = 0.5) -> np.ndarray:
    """Background-subtracted, intensity-scaled images ``(3×3 mean − radial background)₊ ** power`` (float32), the
    input of the refinement. ``centers`` (n, 2) from :func:`detect_spots`."""
    params = params or SpotParams()
    arr = _stack(patterns)
    c = np.asarray(centers)
    if c.dtype.kind not in "fiu" or c.size != 2 * len(arr):
        raise InputError(f"centers must be {len(arr)} numeric (row, col) pairs, got shape {c.shape} dtype {c.dtype}")
    c = np.ascontiguousarray(c, dtype=np.float64).reshape(-1, 2)
    if len(c) != len(arr):
        raise InputError(f"centers has {len(c)} rows for {len(arr)} patterns")
    return K.processed_images(arr, c, _affine_inv(calibration), float(calibration.require_q_pixel_size()), params.resolved_q_max(calibration, arr.shape[1:]) * 1.5, float(quantile), float(params.power))
