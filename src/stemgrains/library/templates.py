"""Template libraries: beam directions over the fundamental sector × kinematic spot lists.

A template is a beam direction ``v`` (crystal frame, ``v = O·ẑ``) with a base orientation ``O0(v)``; the
in-plane rotation γ about the beam is found by correlation, ``O = O0(v) ∘ Rz(γ)``. Because a sample vector is
first rotated by γ about z, the template's spots appear rotated by −γ in the pattern:
a template spot at polar angle θ_j appears at θ_j − γ.

Directions cover the fundamental sector of the *proper* rotation subgroup of the phase's Laue group, so that
directions × in-plane angles cover every orientation without mirrored templates.

Spot weights are ``sqrt(|F|² · exp(−s²/(2σ(g)²)))`` with σ(g)² = σ_s² + (|g|·0.75·step)²: the relrod is widened by
the tilt a library step can leave (the directions' covering radius), so the nearest template still shows the right spots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from orix.crystal_map import Phase

from .. import config
from ..crystal import coerce_phases, phase_cif_text, reflections
from ..crystal.scattering import Reflections, excitation_error
from ..crystal.spots import rotation_matrices
from ..crystal.symmetry import laue_rotations, proper_laue_group
from ..data import electron_wavelength
from ..errors import ParameterError
from .cache import cache_key, default_cache_dir, load_cached, save_cached
from .sampling import base_rotations, beam_directions, direction_covering_radius_deg

__all__ = ["TemplateLibrary", "build_library", "laue_proper_group"]


def laue_proper_group(phase: Phase):
    """The proper rotation subgroup of the phase's Laue group (orix Symmetry)."""
    if phase.point_group is None:
        raise ParameterError(f"phase {phase.name!r} has no point group")
    return proper_laue_group(phase)


@dataclass
class TemplateLibrary:
    """Spot lists of all templates of one phase, flattened (CSR: template t owns spots offsets[t]:offsets[t+1]).

    Attributes
    ----------
    phase : orix Phase
    directions : (T, 3) beam directions, crystal frame
    base_quaternions : (T, 4) O0 per template (orix convention, sample → crystal)
    offsets : (T+1,) int64
    spot_r, spot_theta, spot_w : (S,) float64, polar position (1/Å, rad) in the sample frame for γ = 0, weight
    radial : (T, n_radial·len(HARMONICS)) float32, rotation-invariant descriptor (unit norm)
    refl : Reflections used for refinement (crystal frame g, |F|²)
    """

    phase: Phase
    directions: np.ndarray
    base_quaternions: np.ndarray
    offsets: np.ndarray
    spot_r: np.ndarray
    spot_theta: np.ndarray
    spot_w: np.ndarray
    spot_norm: np.ndarray
    radial: np.ndarray
    refl: Reflections
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n_templates(self) -> int:
        return len(self.directions)

    @cached_property
    def symmetry_quaternions(self) -> np.ndarray:
        """(k, 4) quaternions of the proper Laue group (for symmetry-aware distances)."""
        return laue_rotations(laue_proper_group(self.phase))


#: angular harmonics of the rotation-invariant descriptor. Even harmonics (0, 2, 4, 6, 8) were measured on
#: nba-64: they helped sparse patterns but hurt rich ones at equal cost, so the default is the radial
#: profile alone (m = 0); the machinery stays general.
HARMONICS = (0,)


def radial_descriptor(r: np.ndarray, theta: np.ndarray, w: np.ndarray, bin_width: float, n_bins: int) -> np.ndarray:
    """Rotation-invariant descriptor of a spot list: per radial bin (width ``bin_width`` 1/Å, linear splitting,
    [1, 2, 1]/4 smoothing) the magnitudes |Σ w e^{i m θ}| of the harmonics m in :data:`HARMONICS`, flattened
    (bin-major), unit L2 norm. A rotation by γ multiplies harmonic m by e^{−i m γ}: magnitudes are invariant."""
    x = r / bin_width
    i0 = np.floor(x).astype(int)
    f = x - i0
    ok = (i0 >= 0) & (i0 < n_bins)
    h = np.zeros((n_bins + 2, len(HARMONICS)), dtype=np.complex128)
    e = np.exp(1j * np.outer(theta, HARMONICS)) * w[:, None]
    np.add.at(h, i0[ok], e[ok] * (1 - f[ok])[:, None])
    np.add.at(h, i0[ok] + 1, e[ok] * f[ok][:, None])
    h = h[:n_bins]
    sm = h.copy()
    sm[1:] += 0.5 * h[:-1]
    sm[:-1] += 0.5 * h[1:]
    out = np.abs(sm).ravel()
    nrm = np.linalg.norm(out)
    return out / nrm if nrm > 0 else out


def _say_building(name: str, n_dirs: int, step_deg: float, k_max: float, sigma: float, cache_dir: Any) -> None:
    """One line on stderr: the library is built (first use of these settings: one per relrod width σ_s the run
    tries), and where it is cached."""
    import sys

    where = f"; it is cached in {cache_dir}" if cache_dir is not None else ""
    print(f"building the template library of {name} ({n_dirs} beam directions, {step_deg:g}° step, "
          f"k_max {k_max:g} 1/Å, relrod width σ_s {sigma:g} 1/Å): first use of these settings{where}",
          file=sys.stderr, flush=True)


def _library_inputs(phase: Any, step_deg: Any, k_max: Any, accelerating_voltage_kV: Any, excitation_error_sigma: Any) -> Phase:
    """:func:`build_library`'s checks: the one phase (a ``Phase`` or a CIF path, :func:`~stemgrains.crystal.coerce_phases`)
    returned; ParameterError for a step outside 0.1–15°, k_max or voltage not positive, a relrod width outside
    ``config.EXCITATION_ERROR_SIGMA_MIN``–``_MAX``, or several phases."""
    if not (np.isfinite(step_deg) and 0.1 <= step_deg <= 15):
        raise ParameterError(f"step_deg must be between 0.1 and 15 degrees, got {step_deg!r}")
    lo, hi = config.EXCITATION_ERROR_SIGMA_MIN, config.EXCITATION_ERROR_SIGMA_MAX
    for name, value, ok, expected in (
        ("k_max", k_max, lambda v: v > 0, "a positive scattering vector (1/Å)"),
        ("accelerating_voltage_kV", accelerating_voltage_kV, lambda v: v > 0, "a positive voltage (kV)"),
        ("excitation_error_sigma", excitation_error_sigma, lambda v: lo <= v <= hi, f"a relrod width in [{lo:g}, {hi:g}] 1/Å"),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not np.isfinite(value) or not ok(float(value)):
            raise ParameterError(f"{name} must be {expected}, got {value!r}")
    phases = coerce_phases(phase)
    if len(phases) != 1:
        raise ParameterError(f"build_library builds the library of one phase, got {len(phases)}")
    return phases[0]


def build_library(
    phase: Phase,
    *,
    step_deg: float = 1.0,
    k_max: float = 1.5,
    accelerating_voltage_kV: float = 300.0,
    excitation_error_sigma: float = 0.015,
    min_relative_intensity: float = 2e-3,
    max_spots: int = 120,
    radial_bin_width: float = 0.02,
    intensity_power: float = 0.5,
    cache: bool = True,
    cache_dir: str | None = None,
    verbose: bool = False,
) -> TemplateLibrary:
    """Build (or load from the on-disk cache) the template library of a phase.

    Parameters
    ----------
    phase
        Phase with structure (from :func:`stemgrains.crystal.load_phase`), or a CIF path (loaded with it).
    step_deg
        Angular spacing of beam directions, degrees.
    k_max
        Largest scattering vector, 1/Å.
    accelerating_voltage_kV
        For the Ewald-sphere curvature.
    excitation_error_sigma
        Relrod width σ_s, 1/Å (≈ 1/thickness), ``config.EXCITATION_ERROR_SIGMA_MIN`` to ``..._MAX``.
    min_relative_intensity
        Spots weaker than this fraction of the template's strongest spot are dropped.
    max_spots
        At most this many (strongest) spots per template.
    radial_bin_width
        Bin width of the rotation-invariant radial descriptor, 1/Å.
    intensity_power
        Spot weight = intensity ** power (0.5: amplitudes).
    verbose
        Say on stderr when the library is built rather than loaded (the first use of these settings can take
        tens of seconds).
    """
    phase = _library_inputs(phase, step_deg, k_max, accelerating_voltage_kV, excitation_error_sigma)
    params = dict(
        step_deg=float(step_deg),
        k_max=float(k_max),
        accelerating_voltage_kV=float(accelerating_voltage_kV),
        excitation_error_sigma=float(excitation_error_sigma),
        min_relative_intensity=float(min_relative_intensity),
        max_spots=int(max_spots),
        radial_bin_width=float(radial_bin_width),
        intensity_power=float(intensity_power),
        point_group=phase.point_group.name,
        orix_version=__import__("orix").__version__,
        harmonics=list(HARMONICS),
        lattice=[float(x) for x in phase.structure.lattice.abcABG()],
    )
    refl = reflections(phase, k_max=k_max)
    key = cache_key(phase_cif_text(phase) + "\n#lib-v3", params) if cache else None
    if cache:
        got = load_cached(key, cache_dir=cache_dir)
        if got is not None:
            return TemplateLibrary(phase=phase, refl=refl, params=params, **got)

    lam = electron_wavelength(accelerating_voltage_kV)
    dirs = beam_directions(laue_proper_group(phase), step_deg)
    if verbose:
        _say_building(phase.name, len(dirs), step_deg, k_max, excitation_error_sigma,
                      (default_cache_dir() if cache_dir is None else cache_dir) if cache else None)
    base_q = np.ascontiguousarray(base_rotations(dirs).data, dtype=np.float64)
    # a pattern is at most the directions' covering radius (0.75·step) from the nearest template's beam direction
    tilt = np.deg2rad(direction_covering_radius_deg(step_deg))
    sig2 = excitation_error_sigma**2 + (refl.g_norm * tilt) ** 2  # (n_refl,)
    n_bins = int(np.ceil(k_max / radial_bin_width)) + 1

    offsets = [0]
    rs, ths, ws, norms, radial = [], [], [], [], []
    batch = 256
    for b0 in range(0, len(dirs), batch):
        R = rotation_matrices(base_q[b0 : b0 + batch])
        g_s = np.einsum("nj,tjk->tnk", refl.g, R)  # (t, n, 3) sample frame
        s = excitation_error(g_s, lam)
        inten = refl.intensity[None, :] * np.exp(-0.5 * s**2 / sig2[None, :])
        inten[np.abs(s) > 3 * np.sqrt(sig2)[None, :]] = 0
        # the prefilter descriptor uses the true relrod: the widened one spreads every template over the spots of
        # all its neighbours' tilts and makes the radial profiles alike
        sharp = refl.intensity[None, :] * np.exp(-0.5 * (s / excitation_error_sigma) ** 2)
        for t in range(len(R)):
            it = inten[t]
            keep = np.flatnonzero(it > min_relative_intensity * it.max(initial=0))
            if keep.size > max_spots:
                keep = keep[np.argsort(-it[keep], kind="stable")[:max_spots]]
            keep = np.sort(keep)
            q = g_s[t, keep, :2]
            r = np.hypot(q[:, 0], q[:, 1])
            w = it[keep] ** intensity_power
            order = np.argsort(r, kind="stable")
            rs.append(r[order])
            ths.append(np.arctan2(q[order, 1], q[order, 0]))
            ws.append(w[order])
            norms.append(np.sqrt(np.sum(w**2)))
            st = sharp[t]
            ks = np.flatnonzero(st > min_relative_intensity * st.max(initial=0))
            qs = g_s[t, ks, :2]
            radial.append(radial_descriptor(np.hypot(qs[:, 0], qs[:, 1]), np.arctan2(qs[:, 1], qs[:, 0]), st[ks] ** intensity_power, radial_bin_width, n_bins))
            offsets.append(offsets[-1] + keep.size)
    arrays = dict(
        directions=np.asarray(dirs, dtype=np.float64),
        base_quaternions=base_q,
        offsets=np.asarray(offsets, dtype=np.int64),
        spot_r=np.concatenate(rs) if rs else np.zeros(0),
        spot_theta=np.concatenate(ths) if ths else np.zeros(0),
        spot_w=np.concatenate(ws) if ws else np.zeros(0),
        spot_norm=np.asarray(norms, dtype=np.float64),
        radial=np.asarray(radial, dtype=np.float32),
    )
    if cache:
        save_cached(key, arrays, cache_dir=cache_dir)
    return TemplateLibrary(phase=phase, refl=refl, params=params, **arrays)

