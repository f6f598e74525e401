"""Dynamical (Bloch-wave) diffraction intensities, and the image score of a grain's patterns under them.

Why. Through 20–60 nm of crystal at 200–300 kV the intensities are dynamical: near a zone axis every zero-layer
reflection is strong whatever the tilt, so the kinematic score (:func:`._cpu.image_score`) can be highest at the
zone axis itself and pull a grain tilted a few degrees off it onto it, or prefer another orientation whose
kinematic spots happen to sit where the dynamical ones are. This module scores orientations with Bloch-wave
intensities instead; ``benchmarks/bench_dynamical.py`` measures, grain by grain on the multislice and py4DSTEM test
sets, whether that model prefers the truth where the kinematic one does not (README, "How indexing works"). It is
not in the indexing path: used as a grain-level arbiter it changed which grains came out right from one setting to
the next (beam cut-off, thickness choice, refinement), see the README.

Physics (the standard many-beam Bloch-wave formulation with the high-energy and column approximations, beam
normal to the foil): M. De Graef, *Introduction to Conventional Transmission Electron Microscopy* (CUP 2003),
eqs. 5.51–5.60; P. Hirsch et al., *Electron Microscopy of Thin Crystals* (1965), ch. 8. For beams g, h (the
direct beam and the reflections within ``s_max`` of the Ewald sphere, ``|g| ≤ k_max``)

    dψ/dz = 2πi A ψ / (2k₀),   A_gg = 2k₀ s_g + i U′₀,   A_gh = U_{g−h} + i U′_{g−h},   ψ(0) = e₀

with s_g the excitation error (:func:`stemgrains.crystal.scattering.excitation_error`), k₀ = 1/λ,
U_g = γ F_g / (π V) (Å⁻²; F_g the structure factor of :func:`~stemgrains.crystal.scattering.reflections` with
its Debye–Waller factors, V the cell volume, γ the relativistic mass ratio) and proportional absorption
U′_g = ``absorption`` · U_g (Hashimoto, Howie & Whelan, Proc. R. Soc. A 269 (1962) 80; 0.1 is their usual
value). The exit intensities are ``|ψ_g(t)|²``. :func:`bloch_intensities` applies the propagator by
``scipy.sparse.linalg.expm_multiply`` at one thickness with many beams, else by one eigen-decomposition of A
(De Graef 5.58) for all thicknesses; :func:`bloch_intensities_reference` takes the dense matrix exponential at each thickness. The tests
check both against each other and against py4DSTEM's independent Bloch-wave code
(``Crystal.generate_dynamical_diffraction_pattern``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..crystal.phase import atomic_numbers
from ..crystal.scattering import electron_scattering_factor, reciprocal_basis, reflections
from ..errors import ParameterError

__all__ = ["BlochModel", "bloch_model", "bloch_intensities", "bloch_intensities_reference", "spot_image_score",
           "GrainPatterns", "grain_score", "refine_grain"]

#: electron rest energy, eV
_M0C2_EV = 510998.95


@dataclass(frozen=True)
class BlochModel:
    """The potential of one phase for Bloch-wave calculations (:func:`bloch_model`).

    Attributes: ``U`` complex (2H₀+1, 2H₁+1, 2H₂+1), U_g + iU′_g (Å⁻²) indexed by hkl + H (0 at 000);
    ``U0_abs`` the absorptive U′₀ (Å⁻²); ``H`` (3,) int; ``hkl`` (n, 3) and ``g`` (n, 3) (crystal frame, 1/Å) the
    reflections with ``0 < |g| ≤ k_max`` that can be beams; ``B`` (3, 3) the rows a*, b*, c* (g = hkl · B);
    ``wavelength`` (Å)."""

    U: np.ndarray
    U0_abs: float
    H: np.ndarray
    hkl: np.ndarray
    g: np.ndarray
    k_max: float
    wavelength: float
    B: np.ndarray


def bloch_model(phase, accelerating_voltage_kV: float, k_max: float, wavelength: float | None = None,
                absorption: float = 0.1) -> BlochModel:
    """The :class:`BlochModel` of an orix ``phase`` (with its structure, from a CIF: :func:`stemgrains.crystal.load_phase`):
    beams up to ``k_max`` (1/Å) among the reflections with F ≠ 0, couplings U_{g−h} up to 2·k_max, at
    ``accelerating_voltage_kV`` (kV, for γ and, by default, the wavelength), ``wavelength`` (Å; the calibration's,
    which must agree with the voltage within 1 %) and proportional ``absorption`` (0–1).

    Raises ParameterError for a phase without atoms, a non-positive k_max or one below the first reflection, a
    voltage outside 1–3000 kV, a wavelength that does not match it, an absorption outside 0–1."""
    from ..data import electron_wavelength

    if not hasattr(phase, "structure"):
        raise ParameterError(f"phase must be an orix Phase with its structure (stemgrains.crystal.load_phase(CIF)), "
                             f"got {type(phase).__name__}")
    if not (np.isfinite(k_max) and k_max > 0):
        raise ParameterError(f"k_max must be a positive number of 1/Å, got {k_max!r}")
    if not (np.isfinite(accelerating_voltage_kV) and 1.0 <= accelerating_voltage_kV <= 3000.0):
        raise ParameterError(f"accelerating_voltage_kV must be 1–3000 kV, got {accelerating_voltage_kV!r}")
    expected = electron_wavelength(accelerating_voltage_kV)
    if wavelength is None:
        wavelength = expected
    elif not (np.isfinite(wavelength) and abs(wavelength / expected - 1.0) <= 0.01):
        raise ParameterError(f"wavelength {wavelength!r} Å does not match {accelerating_voltage_kV:g} kV "
                             f"({expected:.5f} Å)")
    if not (np.isfinite(absorption) and 0.0 <= absorption <= 1.0):
        raise ParameterError(f"absorption must be a fraction 0–1 of U_g, got {absorption!r}")
    coupling = reflections(phase, k_max=2.0 * k_max, min_relative_intensity=0.0)
    beams = (coupling.g_norm <= k_max) & (coupling.intensity > 1e-10 * coupling.intensity.max(initial=0.0))
    if not beams.any():
        first = reflections(phase, k_max=10.0).g_norm.min(initial=np.inf)
        raise ParameterError(f"k_max {k_max:g} 1/Å is below the first reflection of {phase.name!r} ({first:.3f} 1/Å)")
    base = np.asarray(phase.structure.lattice.base, dtype=np.float64)
    volume = abs(float(np.linalg.det(base)))
    gamma = 1.0 + accelerating_voltage_kV * 1e3 / _M0C2_EV
    H = np.abs(coupling.hkl).max(axis=0)
    U = np.zeros(tuple(2 * H + 1), dtype=np.complex128)
    ug = gamma * coupling.structure_factor / (np.pi * volume)
    U[tuple((coupling.hkl + H).T)] = ug + 1j * absorption * ug
    st = phase.structure
    occ = np.array([a.occupancy for a in st], dtype=np.float64)
    Z = atomic_numbers(st)
    F0 = float(np.sum(occ * electron_scattering_factor(Z, np.zeros(len(Z)))))
    # beams (above): the reciprocal lattice points (lattice-centring absences have F = 0 and couple to nothing)
    return BlochModel(U=U, U0_abs=absorption * gamma * F0 / (np.pi * volume), H=H, hkl=coupling.hkl[beams],
                      g=coupling.g[beams], k_max=float(k_max), wavelength=float(wavelength),
                      B=reciprocal_basis(phase))


def _beams(model: BlochModel, R: np.ndarray, s_max: float, hkl: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The beams for orientation matrix ``R`` (v_c = R v_s): the direct beam first, then every reflection of the
    model within ``s_max`` (1/Å) of the Ewald sphere, or the given ``hkl`` (m, 3) (000 first). Returns (hkl (m, 3),
    sample-frame g (m, 3), s (m,))."""
    if hkl is not None:
        hkl = np.asarray(hkl, dtype=np.int64).reshape(-1, 3)
        if len(hkl) == 0 or np.any(hkl[0] != 0) or np.any(np.abs(hkl) > model.H):
            raise ParameterError("beams must start with 000 and lie within the model's coupling range")
        gs = (hkl @ model.B) @ R
        s = -gs[:, 2] - 0.5 * model.wavelength * np.sum(gs * gs, axis=1)
        return hkl, gs, s
    gs = model.g @ R
    s = -gs[:, 2] - 0.5 * model.wavelength * np.sum(gs * gs, axis=1)
    k = np.abs(s) <= s_max
    hkl = np.vstack([np.zeros((1, 3), dtype=model.hkl.dtype), model.hkl[k]])
    g = np.vstack([np.zeros((1, 3)), gs[k]])
    return hkl, g, np.concatenate([[0.0], s[k]])



def _rotation(R: np.ndarray) -> np.ndarray:
    """``R`` as a (3, 3) float64 rotation matrix; ParameterError otherwise."""
    try:
        R = np.asarray(R, dtype=np.float64)
    except (TypeError, ValueError):
        R = np.zeros(0)
    if R.shape != (3, 3) or not np.all(np.isfinite(R)) or not np.allclose(R @ R.T, np.eye(3), atol=1e-6):
        raise ParameterError(f"R must be a 3 x 3 rotation matrix (v_crystal = R v_sample; e.g. "
                             f"stemgrains.crystal.spots.rotation_matrices(q)), got shape {R.shape}")
    return R


def _structure_matrix(model: BlochModel, hkl: np.ndarray, s: np.ndarray) -> np.ndarray:
    """De Graef's A (m, m): U_{g−h} + iU′_{g−h} off the diagonal, 2k₀ s_g + iU′₀ on it."""
    d = hkl[:, None, :] - hkl[None, :, :] + model.H
    A = model.U[d[..., 0], d[..., 1], d[..., 2]]
    A[np.diag_indices(len(hkl))] = 2.0 / model.wavelength * s + 1j * model.U0_abs
    return A


def _check_thickness(thickness_A, s_max: float) -> np.ndarray:
    if not (np.isfinite(s_max) and s_max > 0):
        raise ParameterError(f"s_max must be a positive excitation error, 1/Å, got {s_max!r}")
    try:
        t = np.atleast_1d(np.asarray(thickness_A, dtype=np.float64))
    except (TypeError, ValueError):
        t = np.zeros((0, 0))
    if t.ndim != 1 or len(t) == 0 or not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise ParameterError(f"thickness must be one positive value or a 1-D list of positive values (Å), got "
                             f"{thickness_A!r}")
    return t


def bloch_intensities(model: BlochModel, R: np.ndarray, thickness_A, s_max: float = 0.06,
                      hkl: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Dynamical intensities of orientation matrix ``R`` (3, 3; v_c = R v_s) at each thickness (Å), with the beams within ``s_max`` (1/Å) of the Ewald sphere or the
    given ``hkl`` (m, 3; 000 first).

    Returns ``(q_xy (m, 2), I (len(thickness), m))``: the sample-frame positions (1/Å) of the m diffracted beams
    (the direct beam left out) and ``|ψ_g(t)|²`` (fractions of the incident intensity)."""
    from scipy.sparse.linalg import expm_multiply

    t = _check_thickness(thickness_A, s_max)
    hkl, g, s = _beams(model, _rotation(R), s_max, hkl)
    A = _structure_matrix(model, hkl, s)
    e0 = np.zeros(len(hkl), dtype=np.complex128)
    e0[0] = 1.0
    if len(t) == 1 and len(hkl) > 64:  # one thickness, many beams: the propagator applied to e₀, no decomposition
        psi = expm_multiply(A * (2j * np.pi * t[0] * model.wavelength / 2.0), e0)[None, :]
    else:  # a thickness series (or few beams): one eigen-decomposition serves every thickness (De Graef 5.58)
        w, C = np.linalg.eig(A)
        c0 = np.linalg.solve(C, e0)
        psi = (C @ (np.exp(2j * np.pi * np.outer(w * model.wavelength / 2.0, t)) * c0[:, None])).T
    return g[1:, :2], np.abs(psi[:, 1:]) ** 2


def bloch_intensities_reference(model: BlochModel, R: np.ndarray, thickness_A, s_max: float = 0.06,
                                hkl: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`bloch_intensities` the slow, obvious way: ψ(t) = exp(2πi t A/(2k₀)) e₀ with the dense matrix
    exponential (``scipy.linalg.expm``) at each thickness; for tests."""
    from scipy.linalg import expm

    t = _check_thickness(thickness_A, s_max)
    hkl, g, s = _beams(model, _rotation(R), s_max, hkl)
    A = _structure_matrix(model, hkl, s)
    I = np.array([np.abs(expm(A * (2j * np.pi * tt * model.wavelength / 2.0))[:, 0]) ** 2 for tt in t])
    return g[1:, :2], I[:, 1:]


def spot_image_score(q_xy: np.ndarray, b: np.ndarray, img: np.ndarray, center: np.ndarray, affine: np.ndarray,
                     q_min: float, q_max: float) -> np.ndarray:
    """Σ_j b_j P(x_j) / ‖b‖ — the kinematic image score (:func:`._cpu.image_score`) with given spot weights:
    ``b`` (k, m) weight sets for spots at sample-frame ``q_xy`` (m, 2) (1/Å), projecting between ``q_min`` and
    ``q_max``; P the processed image ``img`` (ky, kx) sampled bilinearly at center (row, col) + ``affine`` q
    (affine maps (qx, qy) to (dcol, drow)); spots off the detector add to ‖b‖ only. Returns (k,)."""
    r = np.hypot(q_xy[:, 0], q_xy[:, 1])
    keep = (r >= q_min) & (r <= q_max)
    qx, qy, b = q_xy[keep, 0], q_xy[keep, 1], b[:, keep]
    row = center[0] + affine[1, 0] * qx + affine[1, 1] * qy
    col = center[1] + affine[0, 0] * qx + affine[0, 1] * qy
    from scipy.ndimage import map_coordinates

    ky, kx = img.shape
    on = (row >= 0) & (col >= 0) & (row <= ky - 1) & (col <= kx - 1)
    P = map_coordinates(np.asarray(img, dtype=np.float64), [row[on], col[on]], order=1)  # bilinear
    norm = np.sqrt(np.sum(b * b, axis=1))
    return np.where(norm > 0, b[:, on] @ P / np.where(norm > 0, norm, 1.0), 0.0)


def _rotvec_quaternion(v: np.ndarray) -> np.ndarray:
    """Unit quaternion (4,) of the rotation vector ``v`` (3,) (rad)."""
    a = float(np.linalg.norm(v))
    if a < 1e-15:
        return np.array([1.0, 0.0, 0.0, 0.0])
    return np.concatenate([[np.cos(0.5 * a)], np.sin(0.5 * a) * np.asarray(v) / a])


@dataclass(frozen=True)
class GrainPatterns:
    """A grain's patterns as the dynamical score reads them: processed images (k, ky, kx), direct-beam centres
    (k, 2) (row, col), the detector ``affine`` (2, 2), the annulus ``q_min``–``q_max`` (1/Å), the spot-weight
    ``power`` (the library's intensity power) and the thicknesses tried (Å)."""

    imgs: np.ndarray
    centers: np.ndarray
    affine: np.ndarray
    q_min: float
    q_max: float
    power: float
    thickness_A: np.ndarray


def grain_score(model: BlochModel, q: np.ndarray, pats: GrainPatterns, s_max: float) -> tuple[float, float]:
    """The dynamical image score of orientation ``q`` (4,) on a grain's patterns: Σ over the patterns of
    :func:`spot_image_score` with weights b = I^power (:func:`bloch_intensities`), at the thickness (of
    ``pats.thickness_A``) where the sum is highest. Returns ``(score, thickness Å)``."""
    from ..crystal.spots import rotation_matrices

    R = rotation_matrices(np.asarray(q, dtype=np.float64).reshape(4)).reshape(3, 3)
    q_xy, I = bloch_intensities(model, R, pats.thickness_A, s_max)
    b = np.maximum(I, 0.0) ** pats.power
    total = np.zeros(len(pats.thickness_A))
    for img, c in zip(pats.imgs, pats.centers):
        total += spot_image_score(q_xy, b, img, c, pats.affine, pats.q_min, pats.q_max)
    j = int(np.argmax(total))
    return float(total[j]), float(pats.thickness_A[j])


def refine_grain(model: BlochModel, q: np.ndarray, pats: GrainPatterns, s_max: float, step_deg: float,
                 max_eval: int) -> tuple[np.ndarray, float, float]:
    """``q`` (4,) refined by Nelder–Mead on :func:`grain_score` over a sample-frame rotation vector (initial
    simplex ``step_deg``, at most ``max_eval`` scores). Returns ``(q, score, thickness Å)``."""
    from scipy.optimize import minimize

    from ..crystal.symmetry import quaternion_multiply

    q = np.asarray(q, dtype=np.float64).reshape(4)

    def turned(v: np.ndarray) -> np.ndarray:
        return quaternion_multiply(q[None], _rotvec_quaternion(np.deg2rad(v))[None])[0]

    simplex = np.vstack([np.zeros(3), step_deg * np.eye(3)])
    res = minimize(lambda v: -grain_score(model, turned(v), pats, s_max)[0], np.zeros(3), method="Nelder-Mead",
                   options={"initial_simplex": simplex, "maxfev": int(max_eval), "xatol": 0.02, "fatol": 1e-9})
    best = turned(res.x)
    score, t = grain_score(model, best, pats, s_max)
    q0_score, t0 = grain_score(model, q, pats, s_max)
    if q0_score >= score:
        return q, q0_score, t0
    return best, score, t
