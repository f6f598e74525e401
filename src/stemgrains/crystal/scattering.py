"""Kinematic electron diffraction: scattering factors, structure factors, reflection lists, spot patterns.

Electron scattering factors: the parametrisation of I. Lobato & D. Van Dyck, "An accurate parameterization
for scattering factors, electron densities and electrostatic potentials for neutral atoms that obey all
physical constraints", Acta Cryst. A70 (2014) 636–649, eq. (15):

    f_e(g) = Σ_{i=1..5} a_i (2 + b_i g²) / (1 + b_i g²)²      (g = |q| in 1/Å, no 2π; f_e in Å)

The coefficient table (Z = 1..103) is read at run time from the copy shipped with py4DSTEM
(``py4DSTEM/process/utils/scattering_factors.txt``), a core dependency.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from orix.crystal_map import Phase

from ..errors import ParameterError
from .phase import atomic_numbers

__all__ = [
    "electron_scattering_factor",
    "Reflections",
    "reflections",
    "reciprocal_basis",
    "excitation_error",
]


@functools.lru_cache(maxsize=1)
def _lobato_table() -> np.ndarray:
    import importlib.util
    from pathlib import Path

    # located without importing py4DSTEM (its import is slow and pulls in CUDA-using dependencies)
    spec = importlib.util.find_spec("py4DSTEM")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("py4DSTEM is not installed: its Lobato coefficient table is needed (pip install py4DSTEM)")
    path = Path(list(spec.submodule_search_locations)[0]) / "process" / "utils" / "scattering_factors.txt"
    table = np.loadtxt(str(path), dtype=np.float64)
    if table.ndim != 2 or table.shape[1] < 10:
        raise RuntimeError(f"unexpected Lobato coefficient table shape {table.shape} in {path}")
    return table


def electron_scattering_factor(Z: int | np.ndarray, g: np.ndarray) -> np.ndarray:
    """Electron scattering factor f_e(g) in Å (Lobato & Van Dyck 2014) for atomic number(s) ``Z``
    at scattering vector length(s) ``g`` in 1/Å (no 2π). Broadcasts ``Z`` against ``g``."""
    table = _lobato_table()
    Z = np.asarray(Z)
    if np.any(Z < 1) or np.any(Z > table.shape[0]):
        raise ParameterError(f"atomic number must be 1..{table.shape[0]}, got {Z}")
    g2 = np.asarray(g, dtype=np.float64) ** 2
    coef = table[Z - 1]
    a = coef[..., 0:10:2]
    b = coef[..., 1:10:2]
    g2e = g2[..., None]
    return np.sum(a * (2 + b * g2e) / (1 + b * g2e) ** 2, axis=-1)


def reciprocal_basis(phase: Phase) -> np.ndarray:
    """3 × 3 matrix whose rows are a*, b*, c* in the phase's Cartesian crystal frame (1/Å, orix alignment)."""
    base = np.asarray(phase.structure.lattice.base, dtype=np.float64)  # rows a, b, c
    return np.linalg.inv(base).T


@dataclass(frozen=True)
class Reflections:
    """Kinematically allowed reflections of a phase up to ``k_max``.

    Attributes
    ----------
    hkl : (n, 3) int
    g : (n, 3) float, Cartesian crystal frame, 1/Å
    g_norm : (n,) float, 1/Å
    structure_factor : (n,) complex, Å
    intensity : (n,) float, ``|F|²``, Å²
    """

    hkl: np.ndarray
    g: np.ndarray
    g_norm: np.ndarray
    structure_factor: np.ndarray
    intensity: np.ndarray
    k_max: float

    def __len__(self) -> int:
        return len(self.hkl)


def reflections(phase: Phase, k_max: float = 1.5, min_relative_intensity: float = 1e-4) -> Reflections:
    """All reflections with ``0 < |g| ≤ k_max`` (1/Å) whose kinematic intensity exceeds
    ``min_relative_intensity`` × the strongest; systematic absences vanish through the structure factor.

    ``F(g) = Σ_j occ_j f_e,j(|g|) exp(2πi g·r_j) exp(−B_j |g|²/4)``, ``B = 8π² U_iso``.
    """
    k_max = float(k_max)
    if not np.isfinite(k_max) or k_max <= 0:
        raise ParameterError(f"k_max must be a positive number of 1/Å, got {k_max!r}")
    if phase.structure is None or len(phase.structure) == 0:
        raise ParameterError(f"phase {phase.name!r} has no atoms; load it from a CIF")
    rb = reciprocal_basis(phase)
    base = np.linalg.inv(rb.T)  # rows a, b, c
    # Largest index along each axis: |h| <= k_max * |a| (since h = g·a)
    hmax = [int(np.ceil(k_max * np.linalg.norm(base[i]))) for i in range(3)]
    rng = [np.arange(-m, m + 1) for m in hmax]
    hkl = np.stack(np.meshgrid(*rng, indexing="ij"), -1).reshape(-1, 3)
    g = hkl @ rb
    gn = np.linalg.norm(g, axis=1)
    keep = (gn > 0) & (gn <= k_max + 1e-12)
    hkl, g, gn = hkl[keep], g[keep], gn[keep]

    st = phase.structure
    Z = atomic_numbers(st)
    xyz = np.array([a.xyz for a in st], dtype=np.float64)
    occ = np.array([a.occupancy for a in st], dtype=np.float64)
    uiso = np.array([a.Uisoequiv for a in st], dtype=np.float64)
    F = np.zeros(len(hkl), dtype=np.complex128)
    for Zi in np.unique(Z):
        sel = Z == Zi
        fe = electron_scattering_factor(int(Zi), gn)  # (n,)
        phase_fac = np.exp(2j * np.pi * (hkl @ xyz[sel].T))  # (n, m)
        dw = np.exp(-8 * np.pi**2 * uiso[sel][None, :] * gn[:, None] ** 2 / 4)
        F += fe * np.sum(occ[sel][None, :] * dw * phase_fac, axis=1)
    inten = np.abs(F) ** 2
    keep = inten > min_relative_intensity * inten.max(initial=0)
    order = np.argsort(gn[keep], kind="stable")
    return Reflections(
        hkl=hkl[keep][order],
        g=g[keep][order],
        g_norm=gn[keep][order],
        structure_factor=F[keep][order],
        intensity=inten[keep][order],
        k_max=k_max,
    )


def excitation_error(g_sample: np.ndarray, wavelength: float) -> np.ndarray:
    """Excitation error s (1/Å) of reciprocal vectors given in the sample frame, beam along +z.

    With the incident wave vector k0 = ẑ/λ, the Ewald sphere passes through the origin with its centre at
    −k0; ``s = (1/λ² − |g + k0|²) / (2/λ) = −g_z − λ|g|²/2`` (s = 0 on the sphere).
    """
    g_sample = np.asarray(g_sample, dtype=np.float64)
    return -g_sample[..., 2] - 0.5 * wavelength * np.sum(g_sample**2, axis=-1)
