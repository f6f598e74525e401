"""Detector calibration from the data: pixel size, elliptical/affine distortion and beam centre.

``calibrate(dataset, phases) -> CalibrationFit``. Two regimes, run in this order by ``method="auto"``:

1. **rings** (polycrystals with many grains). Spots are detected in a subsample of the scan with
   :func:`stemgrains.preprocess.detect_spots` and accumulated, as detector offsets from each pattern's own
   direct beam, into a Bragg-vector map. Their radii, per angular sector of the detector, are matched to the
   phase's ring radii (allowed reflections with non-zero structure factor, :func:`stemgrains.crystal.reflections`)
   by cross-correlating histograms of log |q| with the phase's predicted ring profile: a scale error is a shift in
   log |q|. The per-sector scales f(θ) give the ellipse: ``f(θ)² = uᵀ G u`` (u = (cos θ, sin θ)) is linear in the
   symmetric matrix G. The approach is the Bragg-vector-map calibration of py4DSTEM (Savitzky et al.,
   Microsc. Microanal. 27 (2021) 712), written here from the geometry.
2. **orientations** (any number of grains, also one or two). A few patterns with the most spots are indexed
   with :func:`stemgrains.index.index_patterns`; each detected spot is paired with the nearest predicted spot
   of its pattern's orientation, and the detector map is least-squares fitted so that the predicted positions
   land on the detected ones: ``d = S · R(δₚ) · Q₀ · q + cₚ`` with ``d`` the detector offset (px), ``q`` the
   predicted sample-frame position (1/Å), ``S`` the symmetric 2 × 2 distortion (px per 1/Å, detector frame),
   ``Q₀`` the rotation/flip of the given calibration, and per pattern a small in-plane rotation ``δₚ`` and a
   centre shift ``cₚ``. Indexing and fitting alternate until the calibration stops changing.

What diffraction cannot tell. A rotation of the camera is indistinguishable from rotated grains, and a flip
from a 180° turn about an in-plane axis (up to the Ewald curvature), so only the symmetric part ``S`` of the
detector map is fitted; ``q_rotation_deg``/``q_flip`` (and the rotation part of a given ``affine``) are kept
from the input calibration. A uniform error of the lattice parameters (~1 % with Na content, doping,
temperature) is indistinguishable from the pixel size: the fitted ``q_pixel_size`` is the one that makes the
CIF's lattice fit; the fit says so in its notes.

Frames and conventions: detector offsets are column vectors ``(dcol, drow)`` in px; ellipticity angles are
measured in that frame from +col toward +row (see :class:`stemgrains.data.Calibration`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from ..data import Calibration, Dataset4D, axis_angle_deg
from ..errors import InputError, ParameterError
from .api import SpotParams, detect_spots

__all__ = ["CalibrationFit", "calibrate", "calibration_from_matrix", "symmetric_part"]

#: relative uncertainty of the fitted distortion above which the fit reports "undetermined"
MAX_RELATIVE_SIGMA = 0.01
#: relative uncertainty of the pixel size and ellipticity ratio the joint fit aims at: above it, the fit is repeated
#: with twice as many indexed patterns (up to ``max_index``); multislice patterns, few of which index reliably,
#: need 32-64 where kinematic ones reach ~0.1 % with 16 (measured: README, "Calibration")
TARGET_RELATIVE_SIGMA = 0.005
#: an ok fit is applied only where it indexes about this many patterns of the subsample better than the stated
#: calibration (:func:`_confirm_by_indexing`)
CONFIRM_PATTERNS = 128
#: ... unless it changes the stated detector map by at least this much (then it is refused only where it indexes
#: significantly worse): changes below it matter little to orientations and are where spurious fits lie (0.4-0.8 %)
CONFIRM_MIN_CHANGE = 0.015
LATTICE_NOTE = (
    "the isotropic scale (q_pixel_size) absorbs any uniform error of the CIF's lattice parameters: a lattice "
    "1 % larger than the CIF looks like a pixel size 1 % larger"
)
ROTATION_NOTE = (
    "q_rotation_deg and q_flip are kept from the input: a rotated camera looks like rotated grains, so "
    "diffraction of one phase cannot fix them (see README, 'Calibration')"
)


# ----------------------------------------------------------------------------------------------------
# matrix helpers


def symmetric_part(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Polar decomposition ``m = S · Q`` of a 2 × 2 matrix: S symmetric positive definite, Q orthogonal
    (a rotation, or a rotation with a flip if det m < 0). Returns (S, Q)."""
    m = np.asarray(m, dtype=np.float64)
    u, s, vt = np.linalg.svd(m)
    return u @ np.diag(s) @ u.T, u @ vt


def _rotation_flip(cal: Calibration) -> np.ndarray:
    """F · R(−q_rotation_deg): the orthogonal part of the calibration without distortion or pixel size."""
    return replace(cal, ellipticity=None, affine=None, q_pixel_size=1.0)._affine()


def calibration_from_matrix(base: Calibration, s: np.ndarray, q0: np.ndarray) -> Calibration:
    """The calibration whose detector map (sample q → (dcol, drow) px) is ``s @ q0``.

    ``s``: symmetric positive 2 × 2 (px per 1/Å); ``q0``: the orthogonal part of ``base``'s map. If ``base``
    has no ``affine`` and ``q0`` is its rotation/flip, the result is expressed with ``q_pixel_size`` and
    ``ellipticity`` (ratio ≥ 1, angle in (−90°, 90°]); otherwise with ``base.q_pixel_size`` and an ``affine``.
    """
    s = np.asarray(s, dtype=np.float64)
    rf = _rotation_flip(base)
    if base.affine is None and np.allclose(q0, rf, atol=1e-9):
        w, v = np.linalg.eigh(s)  # ascending
        lam2, lam1 = float(w[0]), float(w[1])
        if lam2 <= 0:
            raise ParameterError("the fitted detector map is not positive definite")
        ang = axis_angle_deg(math.degrees(math.atan2(v[1, 1], v[0, 1])))
        return replace(base, q_pixel_size=1.0 / lam2, ellipticity=(lam1 / lam2, ang), affine=None)
    a = s @ q0 @ rf.T * base.q_pixel_size
    return replace(base, ellipticity=None, affine=tuple(a.reshape(-1).tolist()))


def _affine_rel(cal_stated: Calibration, s: np.ndarray, q0: np.ndarray) -> np.ndarray:
    """The fitted map as a dimensionless affine relative to the stated pixel size, rotation and flip."""
    return s @ q0 @ _rotation_flip(cal_stated).T * cal_stated.q_pixel_size


def _derived(cal_stated: Calibration, s: np.ndarray, q0: np.ndarray) -> np.ndarray:
    """Reported quantities of a fitted S: pixel size, ratio, angle (deg), mean pixel size, affine (4)."""
    w, v = np.linalg.eigh(s)
    ang = axis_angle_deg(math.degrees(math.atan2(v[1, 1], v[0, 1])))  # (−90°, 90°], as the calibration's
    a = _affine_rel(cal_stated, s, q0)
    return np.array([1.0 / w[0], w[1] / w[0], ang, 1.0 / math.sqrt(w[0] * w[1]), *a.reshape(-1)])


_DERIVED_NAMES = ("q_pixel_size", "ellipticity_ratio", "ellipticity_angle_deg", "q_pixel_size_mean", "A11", "A12", "A21", "A22")


def _propagate(cal_stated: Calibration, s_params: np.ndarray, cov: np.ndarray, q0: np.ndarray) -> dict[str, float]:
    """Standard deviations of the derived quantities from the covariance of (s11, s12, s22), by finite
    differences (first-order propagation)."""

    def f(p):
        return _derived(cal_stated, np.array([[p[0], p[1]], [p[1], p[2]]]), q0)

    base = f(s_params)
    jac = np.zeros((len(base), 3))
    for k in range(3):
        h = 1e-6 * max(abs(s_params[k]), 1e-3)
        dp = s_params.copy()
        dp[k] += h
        d = f(dp) - base
        d[2] = (d[2] + 90.0) % 180.0 - 90.0
        jac[:, k] = d / h
    var = np.einsum("ik,kl,il->i", jac, cov, jac)
    return {n: float(np.sqrt(max(v, 0.0))) for n, v in zip(_DERIVED_NAMES, var)}


# ----------------------------------------------------------------------------------------------------
# the result


@dataclass
class CalibrationFit:
    """A calibration fitted from the data.

    Attributes
    ----------
    calibration : Calibration
        The fitted calibration (q_rotation_deg and q_flip as given); where the fit is undetermined, the input
        calibration with the measured median beam centre.
    status : {"ok", "undetermined", "unconfirmed"}
    reason : str or None
        Why the data do not constrain the distortion (``"undetermined"``), or why the fit is not applied although
        precise (``"unconfirmed"``: it indexes no more patterns reliably than the stated calibration; the values are
        reported, ``calibration`` is the stated one).
    method : str
        ``"rings"``, ``"orientations"`` or ``"rings+orientations"``.
    values, uncertainty : dict
        ``q_pixel_size`` (1/Å per px, along the minor axis of the ellipse), ``ellipticity_ratio``,
        ``ellipticity_angle_deg`` (the long axis, degrees from +col toward +row, in (−90°, 90°]:
        :func:`stemgrains.data.axis_angle_deg`), ``q_pixel_size_mean`` (√ of the pixel area), ``A11 … A22`` (the fitted map as
        a dimensionless affine relative to the stated pixel size and rotation); one standard deviation each.
    center : dict
        Direct-beam centre: ``row``, ``col`` (median, px), ``plane`` (centre = c₀ + a·scan_row + b·scan_col,
        coefficients per detector axis, px per scan step), ``rms_residual_px`` of the plane, ``drift_px``
        (largest excursion of the plane over the scan).
    notes : list of str
        What the fit cannot tell (lattice parameters vs pixel size, camera rotation).
    diagnostics : dict
        Arrays for :func:`stemgrains.plot.calibration.plot_calibration` and numbers for the report
        (spot offsets, ring radii, per-sector scales, residuals, iterations).
    stated : Calibration
        The input calibration.
    stated_origin : dict
        Where each stated value came from (the dataset's ``metadata["calibration_origin"]``).
    """

    calibration: Calibration
    status: str
    reason: str | None
    method: str
    values: dict[str, float]
    uncertainty: dict[str, float]
    center: dict[str, Any]
    notes: list[str]
    stated: Calibration
    diagnostics: dict[str, Any] = field(default_factory=dict, repr=False)
    stated_origin: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def origin(self) -> dict[str, str]:
        """Where each field of :attr:`applied` came from, per :class:`Calibration` field name: ``"fitted
        (METHOD)"`` for the values an ok fit changed, otherwise the origin of the stated value (``stated_origin``,
        the dataset's ``calibration_origin``: ``"file"``, ``"command line"``, ``"default"``, ...; ``"unknown"``
        where it was not recorded)."""
        out = {}
        for name in Calibration.__dataclass_fields__:
            out[name] = self.stated_origin.get(name, "unknown")
            if self.ok:
                before, after = getattr(self.stated, name), getattr(self.calibration, name)
                if (before is None) != (after is None) or (after is not None and not np.array_equal(
                        np.asarray(before, float), np.asarray(after, float))):
                    out[name] = f"fitted ({self.method})"
        return out

    @property
    def applied(self) -> Calibration:
        """The calibration that applying the fit gives: the fitted one where ``ok``, else the stated one."""
        return self.calibration if self.ok else self.stated

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: ``calibration`` (the attribute names of the project's HDF5; without
        ``scan_step_nm``, a property of the scan, not of the detector, which the fit neither uses nor changes: a
        calibration file given to another scan must not replace that scan's step; the calibration applying the fit
        gives, :attr:`applied`), ``origin`` (where each of its values came from, :meth:`origin`: a calibration file
        gives another scan only the values fitted or given, not those of this scan's data file), ``status``,
        ``reason``, ``method``, ``values``, ``uncertainty``, ``center``, ``notes``, ``stated``, ``report``."""
        rep = {k: v for k, v in self.diagnostics.items() if not isinstance(v, np.ndarray)}
        return {
            "calibration": {k: v for k, v in self.applied.to_attrs().items() if k != "scan_step_nm"},
            "origin": {k: v for k, v in self.origin().items() if k != "scan_step_nm"},
            "status": self.status,
            "reason": self.reason,
            "method": self.method,
            "values": self.values,
            "uncertainty": self.uncertainty,
            "center": self.center,
            "notes": list(self.notes),
            "stated": self.stated.to_attrs(),
            "report": rep,
        }


# ----------------------------------------------------------------------------------------------------
# spots of a subsample


def _subsample(scan_shape: tuple[int, int], max_patterns: int) -> tuple[np.ndarray, np.ndarray]:
    """Evenly spread scan rows and columns giving at most ``max_patterns`` positions."""
    ny, nx = scan_shape
    step = max(1, int(math.ceil(math.sqrt(ny * nx / max(1, max_patterns)))))
    return np.arange(step // 2, ny, step), np.arange(step // 2, nx, step)


def _read_positions(dataset: Dataset4D, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Patterns at the grid rows × cols, (len(rows)·len(cols), ky, kx), reading one scan row at a time."""
    ky, kx = dataset.detector_shape
    out = np.empty((len(rows), len(cols), ky, kx), dtype=dataset.dtype)
    for i, r in enumerate(rows):
        out[i] = dataset.rows(int(r), int(r) + 1)[0][cols]
    return out.reshape(-1, ky, kx)


def _offsets(peaks: np.ndarray, counts: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detector offsets (dcol, drow) px, amplitudes and pattern index of every detected spot."""
    mask = np.arange(peaks.shape[1])[None, :] < counts[:, None]
    q = peaks[..., :2][mask]
    idx = np.nonzero(mask)[0]
    return q @ m.T, peaks[..., 2][mask], idx


# ----------------------------------------------------------------------------------------------------
# regime 1: rings of the Bragg-vector map


def ring_profile(refl_list: list, log_grid: np.ndarray, sigma_log: float) -> np.ndarray:
    """Predicted histogram of log |q| of detected spots on ``log_grid``: every allowed reflection (|F|² > 0)
    contributes a Gaussian of width ``sigma_log`` at log |g| weighted by √(|F|²)/|g| (the chance that a
    reflection of a randomly oriented grain is excited falls as 1/|g|; multiplicity enters through the sum
    over all hkl)."""
    prof = np.zeros_like(log_grid)
    for refl in refl_list:
        w = np.sqrt(refl.intensity) / refl.g_norm
        w = w / w.sum()
        lg = np.log(refl.g_norm)
        for a, b in zip(lg, w):
            lo, hi = np.searchsorted(log_grid, [a - 4 * sigma_log, a + 4 * sigma_log])
            prof[lo:hi] += b * np.exp(-0.5 * ((log_grid[lo:hi] - a) / sigma_log) ** 2)
    return prof


def _best_shift(logq: np.ndarray, weights: np.ndarray, grid: np.ndarray, prof: np.ndarray, max_shift: float) -> tuple[float, float]:
    """Shift s maximising Σ w·prof(log q + s) over |s| ≤ max_shift (parabolic refinement); returns (s, contrast)
    with contrast = (peak − median) / peak of the score curve, in [0, 1]."""
    dg = grid[1] - grid[0]
    n_s = int(round(max_shift / dg))
    hist = np.bincount(np.clip(((logq - grid[0]) / dg).astype(np.int64), 0, len(grid) - 1), weights=weights, minlength=len(grid))
    shifts = np.arange(-n_s, n_s + 1)
    score = np.array([np.dot(hist[max(0, -k): len(grid) - max(0, k)], prof[max(0, k): len(grid) - max(0, -k)]) for k in shifts])
    j = int(np.argmax(score))
    off = 0.0
    if 0 < j < len(score) - 1:
        a, b, c = score[j - 1], score[j], score[j + 1]
        den = a - 2 * b + c
        off = 0.5 * (a - c) / den if den < 0 else 0.0
    med = float(np.median(score))
    contrast = (score[j] - med) / score[j] if score[j] > 0 else 0.0
    return float((shifts[j] + off) * dg), float(contrast)


def _fit_rings(d: np.ndarray, amp: np.ndarray, m0: np.ndarray, refl_list: list, q_range: tuple[float, float], n_sectors: int, max_scale_error: float) -> dict[str, Any]:
    """Ellipse + scale from the Bragg-vector map (see the module docstring). ``d``: (n, 2) offsets (dcol, drow);
    ``m0``: the stated map (sample q → detector px). Returns the symmetric S (px per 1/Å) with its covariance,
    or a reason why the rings do not constrain it."""
    s0, q0 = symmetric_part(m0)
    t0 = np.linalg.inv(s0)
    v = d @ t0.T  # stated q vectors (up to the rotation q0, which |q| ignores)
    qn = np.linalg.norm(v, axis=1)
    keep = (qn > q_range[0]) & (qn < q_range[1])
    v, qn, w = v[keep], qn[keep], np.sqrt(np.maximum(amp[keep], 0)) + 1e-12
    out: dict[str, Any] = {"n_spots": int(len(qn))}
    min_per_sector = 40
    if len(qn) < min_per_sector * n_sectors:
        out["reason"] = f"{len(qn)} spots in the subsample; the rings need at least {min_per_sector * n_sectors}"
        return out
    sigma_log = 0.004
    grid = np.arange(math.log(q_range[0]) - 0.2, math.log(q_range[1]) + 0.2, 0.0005)
    prof = ring_profile(refl_list, grid, sigma_log)
    ang = np.mod(np.arctan2(v[:, 1], v[:, 0]), np.pi)  # ellipses are centrosymmetric: θ mod π
    edges = np.linspace(0, np.pi, n_sectors + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    shifts = np.full(n_sectors, np.nan)
    contrast = np.zeros(n_sectors)
    logq = np.log(qn)
    s_all, c_all = _best_shift(logq, w, grid, prof, max_scale_error)
    for k in range(n_sectors):
        sel = (ang >= edges[k]) & (ang < edges[k + 1])
        if sel.sum() < min_per_sector:
            continue
        # search near the global shift: sectors differ by the ellipticity only (a few %)
        sh, ct = _best_shift(logq[sel] + s_all, w[sel], grid, prof, 0.06)
        shifts[k], contrast[k] = sh + s_all, ct
    good = np.isfinite(shifts)
    out.update(sector_angles=centres, sector_scales=np.exp(shifts), sector_contrast=contrast, global_scale=math.exp(s_all),
               global_contrast=c_all)
    if good.sum() < 4:
        out["reason"] = f"only {int(good.sum())} of {n_sectors} detector sectors hold enough spots for the rings"
        return out
    # f(θ)² = uᵀ G u with G = Kᵀ K, K = T T0⁻¹ (T: fitted sample-q per px)
    c, s = np.cos(centres[good]), np.sin(centres[good])
    f2 = np.exp(2 * shifts[good])
    a_mat = np.stack([c * c, 2 * c * s, s * s], 1)
    g, *_ = np.linalg.lstsq(a_mat, f2, rcond=None)
    res = f2 - a_mat @ g
    dof = max(1, len(f2) - 3)
    cov_g = np.linalg.inv(a_mat.T @ a_mat) * float(res @ res) / dof
    gm = np.array([[g[0], g[1]], [g[1], g[2]]])
    if np.any(np.linalg.eigvalsh(gm) <= 0):
        out["reason"] = "the per-sector ring scales do not form an ellipse"
        return out

    def s_of(gvec):
        gg = np.array([[gvec[0], gvec[1]], [gvec[1], gvec[2]]])
        w_, v_ = np.linalg.eigh(gg)
        k_mat = v_ @ np.diag(np.sqrt(w_)) @ v_.T
        t = k_mat @ t0
        sm, _ = symmetric_part(np.linalg.inv(t))
        return np.array([sm[0, 0], sm[0, 1], sm[1, 1]])

    sp = s_of(g)
    jac = np.zeros((3, 3))
    for k in range(3):
        h = 1e-7
        dg_ = g.copy()
        dg_[k] += h
        jac[:, k] = (s_of(dg_) - sp) / h
    out.update(s_params=sp, cov=jac @ cov_g @ jac.T, q0=q0, sector_residual=res)
    return out


# ----------------------------------------------------------------------------------------------------
# regime 2: joint fit with orientations


def _match(det_q: np.ndarray, pred_q: np.ndarray, tol_abs: float, tol_rel: float) -> tuple[np.ndarray, np.ndarray]:
    """Mutual nearest pairs between detected and predicted spots (sample frame, 1/Å) closer than
    tol_abs + tol_rel·|q|. Returns index arrays (i_det, j_pred)."""
    if len(det_q) == 0 or len(pred_q) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    dist = np.linalg.norm(det_q[:, None, :] - pred_q[None, :, :], axis=-1)
    j = np.argmin(dist, axis=1)
    i_back = np.argmin(dist, axis=0)
    i = np.arange(len(det_q))
    ok = (i_back[j] == i) & (dist[i, j] < tol_abs + tol_rel * np.linalg.norm(det_q, axis=1))
    return i[ok], j[ok]


def _joint_lsq(groups: list[tuple[np.ndarray, np.ndarray]], s_init: np.ndarray, q0: np.ndarray) -> dict[str, Any]:
    """Least squares of d = S·R(δₚ)·Q₀·q + cₚ over S (3), δₚ and cₚ (3 per pattern); Cauchy-robust
    (scipy.optimize.least_squares, f_scale 0.5 px) with the analytic Jacobian (a finite-difference one evaluates
    the residuals once per parameter: 3 per pattern). ``groups``: per pattern (d (m, 2) px, q (m, 2) 1/Å)."""
    from scipy.optimize import least_squares

    n_p = len(groups)
    qq = np.concatenate([g[1] @ q0.T for g in groups]).reshape(-1, 2)
    dd = np.concatenate([g[0] for g in groups]).reshape(-1, 2)
    k_of = np.repeat(np.arange(n_p), [len(g[0]) for g in groups])  # the pattern of each matched spot
    rows = np.arange(len(qq))

    def rotated(p):  # R(δₚ)·Q₀·q of every spot
        dlt = p[3::3][k_of]
        c, s = np.cos(dlt), np.sin(dlt)
        return np.stack([c * qq[:, 0] - s * qq[:, 1], s * qq[:, 0] + c * qq[:, 1]], axis=1)

    def resid(p):
        v = rotated(p)
        px = p[0] * v[:, 0] + p[1] * v[:, 1] + p[5::3][k_of]
        py = p[1] * v[:, 0] + p[2] * v[:, 1] + p[4::3][k_of]
        return (np.stack([px, py], axis=1) - dd).ravel()

    def jac(p):
        v = rotated(p)
        j = np.zeros((len(qq), 2, 3 + 3 * n_p))
        j[:, 0, 0], j[:, 0, 1], j[:, 1, 1], j[:, 1, 2] = v[:, 0], v[:, 1], v[:, 0], v[:, 1]
        j[rows, 0, 3 + 3 * k_of] = p[1] * v[:, 0] - p[0] * v[:, 1]  # dR/dδ·Q₀·q = (−v_y, v_x)
        j[rows, 1, 3 + 3 * k_of] = p[2] * v[:, 0] - p[1] * v[:, 1]
        j[rows, 1, 4 + 3 * k_of] = 1.0  # c_row
        j[rows, 0, 5 + 3 * k_of] = 1.0  # c_col
        return j.reshape(2 * len(qq), -1)

    p0 = np.concatenate([[s_init[0, 0], s_init[0, 1], s_init[1, 1]], np.zeros(3 * n_p)])
    sol = least_squares(resid, p0, jac=jac, loss="cauchy", f_scale=0.5, x_scale=np.concatenate([np.full(3, abs(s_init[0, 0])) * 0.01, np.full(3 * n_p, 0.01)]))
    r = sol.fun
    m_res = len(r)
    n_par = len(p0)
    # robust scale of the residuals (MAD) and the covariance of the Gauss–Newton step at the solution
    sig = 1.4826 * float(np.median(np.abs(r - np.median(r)))) if m_res else 0.0
    inlier = np.abs(r) < 3 * max(sig, 1e-6)
    jac = sol.jac[inlier]
    try:
        cov = np.linalg.pinv(jac.T @ jac) * (float(np.sum(r[inlier] ** 2)) / max(1, inlier.sum() - n_par))
    except np.linalg.LinAlgError:
        cov = np.full((n_par, n_par), np.inf)
    return {
        "s_params": sol.x[:3].copy(),
        "cov": cov[:3, :3],
        "residuals": r.reshape(-1, 2),
        "rms_px": float(np.sqrt(np.mean(r[inlier] ** 2))) if inlier.any() else float("nan"),
        "inlier_fraction": float(inlier.mean()) if m_res else 0.0,
        "deltas_deg": np.rad2deg(sol.x[3::3]),
    }


def _pick_patterns(counts: np.ndarray, grid_shape: tuple[int, int], n: int) -> np.ndarray:
    """Indices (into the subsample) of up to ``n`` patterns with many spots, spread over the scan: the best of
    each block of a coarse grid, then the next best overall."""
    gy, gx = grid_shape
    nb = max(1, int(math.ceil(math.sqrt(n))))
    chosen = []
    by = np.array_split(np.arange(gy), min(nb, gy))
    bx = np.array_split(np.arange(gx), min(nb, gx))
    for rr in by:
        for cc in bx:
            idx = (rr[:, None] * gx + cc[None, :]).ravel()
            chosen.append(int(idx[np.argmax(counts[idx])]))
    chosen = sorted(set(chosen), key=lambda i: -counts[i])
    rest = [i for i in np.argsort(-counts, kind="stable") if i not in set(chosen)]
    return np.array((chosen + rest)[:n], dtype=np.int64)


def _fit_orientations(patterns: np.ndarray, cal: Calibration, phases: list, libraries: list, index_params: Any, spot_params: SpotParams, n_iter: int, min_patterns: int, min_reliability: float) -> dict[str, Any]:
    """Alternate indexing of ``patterns`` with the least-squares fit of the detector map; see the module
    docstring. Returns the fitted S, its covariance, and the history, or a reason."""
    from ..crystal import kinematic_spots, reflections
    from ..index.api import first_use_notice, index_patterns

    first_use_notice()  # the first indexing of a process: the numba kernels load (or compile), say so
    refl = [reflections(p, k_max=index_params.k_max) for p in phases]
    history = []
    out: dict[str, Any] = {}
    cur = cal
    m_cur = cur._affine()
    s_cur, q0 = symmetric_part(m_cur)
    fit = None
    tol_rel = 0.06
    for it in range(n_iter):
        res = index_patterns(patterns, cur, libraries, index_params)
        peaks, counts = _detected(patterns, cur, spot_params)
        good = np.flatnonzero((res.phase_id >= 0) & (res.reliability >= min_reliability))
        groups, n_spots, directions = [], 0, np.zeros((2, 2))
        for i in good:
            ph = int(res.phase_id[i])
            sp = kinematic_spots(refl[ph], res.quaternions[i], cur.wavelength, index_params.excitation_error_sigma)
            inten = sp.intensity
            keep = inten > 1e-3 * inten.max(initial=0)
            pred = sp.q_xy[keep]
            pred = pred[np.linalg.norm(pred, axis=1) <= index_params.k_max]
            det_q = peaks[i, : counts[i], :2]
            a, b = _match(det_q, pred, 0.02, tol_rel)
            if len(a) < 3:
                continue
            d = det_q[a] @ m_cur.T  # detector offsets (dcol, drow) from the pattern's centre
            groups.append((d, pred[b]))
            n_spots += len(a)
            u = pred[b] / np.linalg.norm(pred[b], axis=1)[:, None]
            directions += u.T @ u
        entry = {"iteration": it, "indexed": int(len(good)), "patterns_used": len(groups), "matched_spots": n_spots}
        history.append(entry)
        if len(groups) < min_patterns or n_spots < 12:
            out["reason"] = (
                f"{len(groups)} pattern(s) indexed with reliability ≥ {min_reliability:g} and matched spots "
                f"({n_spots} spots); at least {min_patterns} patterns and 12 spots are needed"
            )
            break
        fit = _joint_lsq(groups, s_cur, q0)
        ev = np.linalg.eigvalsh(directions / max(1, n_spots))
        entry.update(rms_px=fit["rms_px"], inlier_fraction=fit["inlier_fraction"], direction_spread=float(ev[0]))
        sp = fit["s_params"]
        s_new = np.array([[sp[0], sp[1]], [sp[1], sp[2]]])
        if np.any(np.linalg.eigvalsh(s_new) <= 0):
            out["reason"] = "the least-squares detector map is not positive definite"
            fit = None
            break
        change = float(np.max(np.abs(s_new - s_cur)) / np.max(np.abs(s_cur)))
        entry["relative_change"] = change
        s_cur = s_new
        cur = calibration_from_matrix(cal, s_cur, q0)
        m_cur = s_cur @ q0
        tol_rel = 0.03
        if change < 2e-4 and it >= 1:
            break
    out["history"] = history
    if fit is not None and "reason" not in out:
        out.update(s_params=fit["s_params"], cov=fit["cov"], q0=q0, residuals=fit["residuals"], rms_px=fit["rms_px"],
                   direction_spread=history[-1].get("direction_spread", 0.0))
        if history[-1].get("direction_spread", 0.0) < 0.02:
            out["reason"] = ("the matched spots of the indexed patterns lie along one direction (a systematic row); the "
                             "distortion across it is not constrained")
    return out


def _relative_sigma(stated: Calibration, joint: dict[str, Any]) -> float:
    """The larger relative standard deviation of the pixel size and the ellipticity ratio of a joint fit (inf where
    it did not fit)."""
    if "s_params" not in joint:
        return math.inf
    s_fit = np.asarray(joint["s_params"], float)
    values = _derived(stated, np.array([[s_fit[0], s_fit[1]], [s_fit[1], s_fit[2]]]), joint["q0"])
    unc = _propagate(stated, s_fit, np.asarray(joint["cov"], float), joint["q0"])
    rel = max(unc["q_pixel_size"] / values[0], unc["ellipticity_ratio"] / values[1])
    return float(rel) if np.isfinite(rel) else math.inf


def _fit_orientations_growing(pats: np.ndarray, counts: np.ndarray, grid_shape: tuple[int, int], start: Calibration,
                              stated: Calibration, phases: list, libraries: list, index_params: Any, spot_params: SpotParams,
                              n_range: tuple[int, int], n_iter: int, min_patterns: int, min_reliability: float) -> dict[str, Any]:
    """:func:`_fit_orientations` on the ``n_range[0]`` best-spread patterns of the subsample, repeated from its
    result with twice as many (up to ``n_range[1]``) while the pixel size or ellipticity ratio is uncertain by more
    than :data:`TARGET_RELATIVE_SIGMA` (or the fit failed). The fit of the most patterns is returned; its
    ``patterns_indexed`` says how many were indexed in each round."""
    n, n_max = n_range
    rounds: list[int] = []
    while True:
        pick = _pick_patterns(counts, grid_shape, n)
        joint = _fit_orientations(pats[pick], start, phases, libraries, index_params, spot_params, n_iter, min_patterns,
                                  min_reliability)
        rounds.append(len(pick))
        nothing = bool(joint.get("history")) and joint["history"][0]["patterns_used"] == 0  # more patterns won't help
        if _relative_sigma(stated, joint) <= TARGET_RELATIVE_SIGMA or n >= n_max or len(pick) < n or nothing:
            break
        if "s_params" in joint and "reason" not in joint:  # start the next round where this one ended
            sp = joint["s_params"]
            start = calibration_from_matrix(start, np.array([[sp[0], sp[1]], [sp[1], sp[2]]]), joint["q0"])
        n = min(2 * n, n_max)
    joint["patterns_indexed"] = rounds
    return joint


def _detected(patterns: np.ndarray, cal: Calibration, spot_params: SpotParams) -> tuple[np.ndarray, np.ndarray]:
    peaks, _, _, strong = detect_spots(patterns, cal, spot_params, with_strong_counts=True)
    return peaks, strong  # the spots above n_sigma (the first rows): weak spots of sparse patterns are for the search


# ----------------------------------------------------------------------------------------------------
# centre map


def _center_map(centers: np.ndarray, rows: np.ndarray, cols: np.ndarray, scan_shape: tuple[int, int]) -> dict[str, Any]:
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    a = np.stack([np.ones(rr.size), rr.ravel(), cc.ravel()], 1).astype(np.float64)
    out: dict[str, Any] = {"row": float(np.median(centers[:, 0])), "col": float(np.median(centers[:, 1]))}
    if len(centers) >= 3:
        coef, *_ = np.linalg.lstsq(a, centers, rcond=None)
        res = centers - a @ coef
        ny, nx = scan_shape
        corners = np.array([[1, 0, 0], [1, ny - 1, 0], [1, 0, nx - 1], [1, ny - 1, nx - 1]], float) @ coef
        out.update(
            plane={"row": coef[:, 0].tolist(), "col": coef[:, 1].tolist()},
            rms_residual_px=float(np.sqrt(np.mean(np.sum(res**2, axis=1)))),
            drift_px=float(np.max(np.linalg.norm(corners - corners.mean(0), axis=1)) * 2),
        )
    return out


# ----------------------------------------------------------------------------------------------------
# public entry point


def _check_arguments(dataset: Any, method: str, max_patterns: int, n_index: int, n_iter: int, n_sectors: int,
                     min_patterns: int, max_scale_error: float, max_index: int = 1) -> None:
    """Raise InputError / ParameterError for the arguments of :func:`calibrate` that are out of range."""
    if not isinstance(dataset, Dataset4D):
        raise InputError(f"dataset must be a Dataset4D (see stemgrains.io.load_4d), got {type(dataset).__name__}")
    if method not in ("auto", "rings", "orientations"):
        raise ParameterError(f"method must be 'auto', 'rings' or 'orientations', got {method!r}")
    for name, v in (("max_patterns", max_patterns), ("n_index", n_index), ("n_iter", n_iter), ("n_sectors", n_sectors), ("min_patterns", min_patterns), ("max_index", max_index)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ParameterError(f"{name} must be a positive integer, got {v!r}")
    if not (0 < max_scale_error < 0.5):
        raise ParameterError(f"max_scale_error must be in (0, 0.5), got {max_scale_error!r}")


def _fit_result(stated: Calibration, base: Calibration, s_fit: Any, cov: Any, q0: Any, reason: str | None, method: str,
                used: list[str], center: dict, notes: list[str], diag: dict[str, Any]) -> CalibrationFit:
    """The :class:`CalibrationFit` of a fitted (or not fitted, ``s_fit`` None) symmetric matrix ``S`` with its
    covariance: ``undetermined`` when the pixel size or ellipticity is uncertain by more than
    :data:`MAX_RELATIVE_SIGMA`."""
    if s_fit is None:
        return CalibrationFit(calibration=base, status="undetermined", reason=reason, method=method, values={}, uncertainty={},
                              center=center, notes=notes, stated=stated, diagnostics=diag)
    s_mat = np.array([[s_fit[0], s_fit[1]], [s_fit[1], s_fit[2]]])
    values = dict(zip(_DERIVED_NAMES, _derived(stated, s_mat, q0).tolist()))
    unc = _propagate(stated, np.asarray(s_fit, float), np.asarray(cov, float), q0)
    cal = calibration_from_matrix(base, s_mat, q0)
    status = "ok"
    rel = [unc["q_pixel_size"] / values["q_pixel_size"], unc["ellipticity_ratio"] / values["ellipticity_ratio"]]
    if not np.all(np.isfinite(rel)) or max(rel) > MAX_RELATIVE_SIGMA:
        status = "undetermined"
        joint_reason = diag.get("orientations", {}).get("reason")
        reason = (f"the fitted pixel size and ellipticity are uncertain by {100 * rel[0]:.2g} % and {100 * rel[1]:.2g} % "
                  f"(more than {100 * MAX_RELATIVE_SIGMA:g} %): " + (
                      f"the ring fit alone, and the joint fit with orientations failed ({joint_reason}): the stated "
                      "calibration may be too far off (more than ~10 %) to index with, or the phase (--phase) is not the "
                      "data's (panel (b): do the spots fall on its ring lines?); give a closer --q-pixel-size or the "
                      "right phase"
                      if joint_reason else "too few or too poorly spread spots"))
        cal = base
    diag["fitted_matrix"] = s_mat @ q0
    return CalibrationFit(calibration=cal, status=status, reason=reason, method="+".join(used), values=values,
                          uncertainty=unc, center=center, notes=notes, stated=stated, diagnostics=diag)


def _libraries(phases: list, iprm: Any, cal: Calibration) -> list:
    """One template library per phase at the indexing parameters ``iprm`` and the voltage of ``cal``."""
    from ..library.templates import build_library

    return [build_library(p, step_deg=iprm.step_deg, k_max=iprm.k_max, excitation_error_sigma=iprm.excitation_error_sigma,
                          accelerating_voltage_kV=cal.accelerating_voltage_kV) for p in phases]


def _confirm_by_indexing(fit: CalibrationFit, pats: np.ndarray, phases: list, libraries: list | None, iprm: Any,
                         n_patterns: int = CONFIRM_PATTERNS) -> CalibrationFit:
    """Test an ``ok`` fit against the stated calibration by indexing: about ``n_patterns`` patterns spread over the
    subsample are indexed with both; b (a) counts those indexed with reliability ≥
    ``config.SIGMA_CONFIDENT_RELIABILITY`` under the fit (the stated calibration) only. The fit stands where it is
    significantly better, b − a > 2·√(a + b) (the paired sign test of the relrod-width choice,
    :func:`stemgrains.index.estimate_excitation_error_sigma`), or where it changes the stated detector map (largest
    element of M_fit·M_stated⁻¹ − I) by at least :data:`CONFIRM_MIN_CHANGE` and is not significantly worse. Otherwise the status is
    ``"unconfirmed"``: the fitted values are reported, the calibration is the stated one (with the measured centre).
    Why: a fit can be precise and wrong — dynamical disk centroids lie off the kinematic positions (README,
    "Calibration"): on multislice scans with a right stated calibration the fit found ratios of 1.005-1.008 at 3-5σ
    and once a pixel size 2.4 % off at 7σ, and applying them lowered the share indexed right."""
    from .. import config
    from ..index.api import index_patterns

    if not fit.ok:
        return fit
    idx = np.unique(np.linspace(0, len(pats) - 1, min(len(pats), n_patterns)).round().astype(np.int64))
    base = replace(fit.stated, center=(fit.center["row"], fit.center["col"]))
    libraries = libraries or _libraries(phases, iprm, base)
    conf = {}
    for name, cal in (("stated", base), ("fitted", fit.calibration)):
        res = index_patterns(pats[idx], cal, libraries, iprm)
        conf[name] = (res.phase_id >= 0) & (res.reliability >= config.SIGMA_CONFIDENT_RELIABILITY)
    b = int(np.sum(conf["fitted"] & ~conf["stated"]))
    a = int(np.sum(conf["stated"] & ~conf["fitted"]))
    check = {"patterns": int(len(idx)), "reliable_stated": int(conf["stated"].sum()),
             "reliable_fitted": int(conf["fitted"].sum()), "only_stated": a, "only_fitted": b}
    change = float(np.max(np.abs(fit.calibration._affine() @ np.linalg.inv(base._affine()) - np.eye(2))))  # fitted vs stated map
    check["largest_change"] = change
    fit.diagnostics["confirmation"] = check
    better, worse = b - a > 2.0 * np.sqrt(a + b), a - b > 2.0 * np.sqrt(a + b)
    if better or (change >= CONFIRM_MIN_CHANGE and not worse):
        return fit
    fit.status, fit.calibration = "unconfirmed", base
    fit.reason = (f"the fit (largest change {100 * change:.2g} % of the stated detector map) indexes "
                  f"{'fewer' if worse else 'no more'} patterns reliably than the stated calibration ({check['reliable_fitted']} "
                  f"against {check['reliable_stated']} of {len(idx)} with reliability ≥ {config.SIGMA_CONFIDENT_RELIABILITY:g}): "
                  "not applied (README, 'Calibration')")
    return fit


def _ring_stage(method: str, d: np.ndarray, amp: np.ndarray, m0: np.ndarray, phases: list, q_range: tuple[float, float],
                n_sectors: int, max_scale_error: float, diag: dict[str, Any]) -> tuple[Any, Any, Any, list[str], str | None]:
    """The ring fit of :func:`calibrate` (for ``method`` "auto"/"rings"; ``q_range`` = (inner radius, k_max)):
    ``(s_fit, cov, q0, used, reason)``, all None / [] where it did not run or fit; records the ring radii and the
    fit's report in ``diag``."""
    from ..crystal import reflections

    refl_list = [reflections(p, k_max=q_range[1]) for p in phases]
    diag["ring_radii"] = np.unique(np.round(np.concatenate([r.g_norm for r in refl_list]), 5))
    if method not in ("auto", "rings"):
        return None, None, None, [], None
    rings = _fit_rings(d, amp, m0, refl_list, (q_range[0], q_range[1] * 0.98), n_sectors, max_scale_error)
    diag["rings"] = {k: v for k, v in rings.items() if k not in ("s_params", "cov", "q0")}
    if "s_params" in rings:
        return rings["s_params"], rings["cov"], rings["q0"], ["rings"], None
    return None, None, None, [], f"rings: {rings.get('reason')}"


def calibrate(
    dataset: Dataset4D,
    phases: Any,
    *,
    method: str = "auto",
    max_patterns: int = 1024,
    n_index: int = 16,
    max_index: int = 64,
    confirm: bool = True,
    n_iter: int = 6,
    n_sectors: int = 12,
    max_scale_error: float = 0.12,
    min_reliability: float = 5.0,
    min_patterns: int = 2,
    spots: SpotParams | None = None,
    index_params: dict[str, Any] | None = None,
    libraries: list | None = None,
    log: Callable[[str], None] | None = None,
) -> CalibrationFit:
    """Fit the detector calibration (pixel size, elliptical/affine distortion, beam centre) from the data.

    Parameters
    ----------
    dataset
        The 4D-STEM data with its stated calibration (the starting point; rotation and flip are kept).
    phases
        CIF paths or orix Phases with structures; the rings / predicted spots come from them.
    method
        ``"rings"`` (Bragg-vector map; polycrystals with many grains), ``"orientations"`` (joint fit with the
        orientations of a few indexed patterns; any number of grains) or ``"auto"`` (rings where the rings are
        populated, then the joint fit starting from them).
    max_patterns
        Patterns of an evenly spread subsample searched for spots (rings and the centre map).
    n_index
        Patterns indexed for the joint fit (those with the most spots, spread over the scan).
    max_index
        While the fitted pixel size or ellipticity ratio is uncertain by more than :data:`TARGET_RELATIVE_SIGMA`
        (0.5 %), the joint fit is repeated with twice as many patterns, up to this many (a value below ``n_index``
        counts as ``n_index``: one round).
    confirm
        Apply an ok fit only where it indexes a subsample better than the stated calibration (status
        ``"unconfirmed"`` otherwise: the values are reported, the stated calibration kept); ``False`` skips the test.
    n_iter
        Largest number of index → fit rounds.
    n_sectors
        Angular sectors of the detector (over 180°) for the ring ellipse.
    max_scale_error
        Largest relative error of the stated pixel size searched by the ring fit.
    min_reliability
        Indexed patterns below this reliability are not used by the joint fit.
    min_patterns
        Fewer usable indexed patterns → "undetermined".
    spots
        Spot-detection parameters (default: :class:`SpotParams` with ``q_max`` = ``index_params['k_max']``).
    index_params
        Fields of :class:`stemgrains.index.IndexParams` for the joint fit (the neighbour pass is off).
    log
        Called with a line saying what it does as each step starts (the CLI prints them; None: silent).

    Returns
    -------
    CalibrationFit
        ``status == "unconfirmed"`` where the fit does not index better than the stated calibration (``confirm``);
        ``status == "undetermined"`` with a ``reason`` where the data do not constrain the distortion to
        better than 1 % (e.g. a single systematic row, too few spots, nothing indexed); then ``calibration`` is
        the stated one with the fitted beam centre.

    Raises
    ------
    InputError, ParameterError
        A dataset that is not a :class:`Dataset4D`, no phases, an unknown ``method``.
    """
    from ..crystal import coerce_phases
    from ..index.api import IndexParams, read_as_indexed

    _check_arguments(dataset, method, max_patterns, n_index, n_iter, n_sectors, min_patterns, max_scale_error, max_index)
    phase_list = coerce_phases(phases)
    stated = dataset.calibration
    iprm = IndexParams(**{"neighbor_pass": False, **(index_params or {})}).resolved(stated, dataset.detector_shape)
    sp = spots or replace(iprm.spots, q_max=iprm.k_max)
    sp = replace(sp, q_max=iprm.k_max if sp.q_max is None else min(sp.q_max, iprm.k_max))

    rows, cols = _subsample(dataset.scan_shape, max_patterns)
    say = log or (lambda line: None)
    say(f"calibrate: reading {len(rows) * len(cols)} patterns of the scan and finding their spots")
    pats = _read_positions(read_as_indexed(dataset, iprm), rows, cols)
    peaks, _, centers, counts = detect_spots(pats, stated, sp, with_strong_counts=True)  # the spots above n_sigma
    m0 = stated._affine()
    d, amp, pidx = _offsets(peaks, counts, m0)
    center = _center_map(centers, rows, cols, dataset.scan_shape)
    base = replace(stated, center=(center["row"], center["col"]))
    notes = [LATTICE_NOTE, ROTATION_NOTE]
    diag: dict[str, Any] = {"offsets": d, "amplitudes": amp, "n_subsample": int(len(pats)), "n_spots": int(len(d)),
                            "stated_matrix": m0}
    s_fit, cov, q0, used, reason = _ring_stage(method, d, amp, m0, phase_list, (sp.resolved_q_min(stated), iprm.k_max),
                                               n_sectors, max_scale_error, diag)
    if method in ("auto", "orientations"):
        start = base
        if s_fit is not None:
            start = calibration_from_matrix(base, np.array([[s_fit[0], s_fit[1]], [s_fit[1], s_fit[2]]]), q0)
        say("calibrate: joint fit of the detector map with the orientations of indexed patterns")
        libraries = libraries or _libraries(phase_list, iprm, stated)
        joint = _fit_orientations_growing(pats, counts, (len(rows), len(cols)), start, stated, phase_list, libraries, iprm,
                                          sp, (n_index, max(n_index, max_index)), n_iter, min_patterns, min_reliability)
        diag["orientations"] = {k: v for k, v in joint.items() if k not in ("s_params", "cov", "q0")}
        if "s_params" in joint and "reason" not in joint:
            s_fit, cov, q0 = joint["s_params"], joint["cov"], joint["q0"]
            used.append("orientations")
            reason = None
        elif method == "orientations" or s_fit is None:
            reason = f"orientations: {joint.get('reason')}" + (f"; {reason}" if reason else "")
            s_fit = None
        else:
            notes.append(f"the joint fit with orientations did not run to the end ({joint.get('reason')}); the ring fit is reported")

    fit = _fit_result(stated, base, s_fit, cov, q0, reason, method, used, center, notes, diag)
    fit.stated_origin = dict(dataset.metadata.get("calibration_origin") or {})
    if confirm and fit.ok:
        say("calibrate: checking that the fit indexes a subsample better than the stated calibration")
    return _confirm_by_indexing(fit, pats, phase_list, libraries, iprm) if confirm else fit


def apply_calibration_fit(dataset: Dataset4D, fit: CalibrationFit) -> Dataset4D:
    """The dataset with the fitted calibration where the fit is ``"ok"``; otherwise unchanged (the stated
    calibration is kept: an undetermined fit changes nothing)."""
    from dataclasses import replace as _replace

    if not fit.ok:
        return dataset
    meta = dict(dataset.metadata)
    origin = dict(meta.get("calibration_origin") or {})  # the values the fit changed say so; the others keep theirs
    origin.update({k: v for k, v in fit.origin().items() if v.startswith("fitted")})
    meta["calibration_origin"] = origin
    return _replace(dataset, calibration=fit.calibration, metadata=meta)


def run_auto_calibration(
    dataset: Dataset4D, phases: Any, index_params: dict[str, Any] | None, json_path: str | os.PathLike | None = None,
    figure_path: str | os.PathLike | None = None, input_path: str | os.PathLike | None = None,
    options: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[Dataset4D, CalibrationFit]:
    """``--auto-calibrate`` of ``index``/``run``: :func:`calibrate` with the indexing's ``step_deg``/``k_max``
    (neighbour summation, spots, ...) and the ``[calibrate]`` ``options`` (keyword arguments of :func:`calibrate`:
    ``method``, ``max_patterns``, ``n_index``, ``max_index``, ``confirm``; recorded in the fit's report as
    ``options``), the fit written to ``json_path`` (and the figure to ``figure_path``; both record ``input_path``
    when given), and the dataset with the fitted calibration where the fit is ok (:func:`apply_calibration_fit`);
    ``log`` as for :func:`calibrate`."""
    keys = ("step_deg", "k_max", "n_prefilter", "excitation_error_sigma", "neighbor_average_radius",
            "neighbor_min_similarity", "neighbor_relative_similarity", "reliability_fit_range", "spots")
    ip = {k: v for k, v in (index_params or {}).items() if k in keys}
    fit = calibrate(dataset, phases, index_params=ip, log=log, **(options or {}))
    if options is not None:
        fit.diagnostics["options"] = dict(options)
    source = input_path
    if json_path is not None:
        from ..io.calibration import write_calibration_json

        write_calibration_json(json_path, fit, input_path=source, detector_shape=dataset.detector_shape)
    if figure_path is not None:
        from ..plot.calibration import plot_calibration

        plot_calibration(fit, figure_path, input_path=source)
    return apply_calibration_fit(dataset, fit), fit
