"""The ``py4dstem`` simulation engine: kinematic spot lists computed by py4DSTEM's ``Crystal``.

Physics that is not ours: structure factors from ``Crystal.calculate_structure_factors`` (py4DSTEM's own
scattering factors, |F/V|², no Debye–Waller factor) and spot selection and weighting from
``Crystal.generate_diffraction_pattern`` (py4DSTEM's excitation-error law
``s = (2 g_z − λ|g|²) / (2 − 2 λ g_z)`` with ``k0 = −ẑ/λ`` and a Gaussian envelope of width
``sigma_excitation_error``, cut at 3 σ). Only the frame conversion and the rendering onto the detector are ours.

Frame conversion (read from py4DSTEM 0.14 ``crystal.py``)
-------------------------------------------------------
py4DSTEM rotates crystal-frame reciprocal vectors into its projection frame with ``g_p = Mᵀ g_c``, where the
columns of the orientation matrix ``M`` are the projection axes (x_p, y_p, z_p) written in the crystal frame.
Its beam travels along −z_p (``k0 = −ẑ/λ``), and its detector axes are qx = first array axis (rows) and
qy = second array axis (columns). Our sample frame (docs/conventions.md) has x along scan columns, y along
rows and z = x × y along the beam. Hence

    x_p = y_s,   y_p = x_s,   z_p = −z_s,     i.e.  v_p = P v_s,  P = [[0,1,0],[1,0,0],[0,0,−1]]  (det P = +1).

With ``v_c = R v_s`` (orix orientation O as the matrix R, :func:`stemgrains.crystal.spots.rotation_matrices`)
``g_p = P Rᵀ g_c``, so ``M = R P`` and py4DSTEM's (qx, qy) are our (q_y, q_x).

The crystal's Cartesian frame is passed to py4DSTEM explicitly: the ``Crystal`` is built from the orix phase's
lattice matrix (rows a, b, c in the orix frame, e1 ∥ a, e3 ∥ c*) and fractional positions, so both codes
use the same crystal frame by construction.
"""

from __future__ import annotations

import functools

import numpy as np
from orix.crystal_map import Phase

from ..crystal import atomic_numbers
from ..crystal.spots import rotation_matrices
from ..errors import ParameterError

__all__ = ["SAMPLE_TO_PY4DSTEM", "py4dstem_crystal", "py4dstem_orientation_matrix", "Py4DSTEMSpots"]

#: P with v_py4DSTEM = P v_sample (see the module docstring).
SAMPLE_TO_PY4DSTEM = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])


@functools.lru_cache(maxsize=1)
def _crystal_class():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from py4DSTEM.process.diffraction import Crystal
    return Crystal


def py4dstem_crystal(phase: Phase):
    """A ``py4DSTEM.process.diffraction.Crystal`` of an orix phase loaded from a CIF.

    Built from positions (fractional), atomic numbers, occupancies and the 3 × 3 lattice matrix of the
    phase (rows a, b, c in the orix Cartesian frame), so py4DSTEM's crystal frame is ours.
    """
    st = phase.structure
    if st is None or len(st) == 0:
        raise ParameterError(f"phase {phase.name!r} has no atoms; load it from a CIF (stemgrains.crystal.load_phase)")
    Crystal = _crystal_class()
    positions = np.array([a.xyz for a in st], dtype=np.float64)
    occupancy = np.array([a.occupancy for a in st], dtype=np.float64)
    return Crystal(
        positions=positions,
        numbers=atomic_numbers(st),
        cell=np.asarray(st.lattice.base, dtype=np.float64),
        occupancy=occupancy,
    )


def py4dstem_orientation_matrix(quaternion: np.ndarray) -> np.ndarray:
    """py4DSTEM ``orientation_matrix`` (3 × 3, columns = projection axes in the crystal frame) of an orix
    orientation (sample → crystal, scalar-first quaternion (4,)): ``M = R P`` (module docstring)."""
    R = rotation_matrices(np.asarray(quaternion, dtype=np.float64).reshape(4))
    return R @ SAMPLE_TO_PY4DSTEM


class Py4DSTEMSpots:
    """Per-phase py4DSTEM crystals with their structure factors, ready to give spot lists.

    Parameters
    ----------
    phases
        orix Phases (with structures).
    k_max
        Largest |g| in 1/Å (``calculate_structure_factors(k_max)``).
    accelerating_voltage_kV
        kV.
    sigma_excitation_error
        Width of py4DSTEM's excitation-error envelope, 1/Å.
    """

    def __init__(self, phases: list, k_max: float, accelerating_voltage_kV: float, sigma_excitation_error: float):
        self.sigma = float(sigma_excitation_error)
        #: spots weaker than this fraction of the phase's strongest |F/V|² are left out (py4DSTEM's default
        #: absolute tolerance, 1e-5, drops most Na-β″ reflections: its |F/V|² are ~1e-4)
        self.relative_tolerance = 1e-4
        self.k_max = float(k_max)
        self.crystals = []
        for p in phases:
            xtal = py4dstem_crystal(p)
            xtal.calculate_structure_factors(self.k_max)
            xtal.setup_diffraction(float(accelerating_voltage_kV) * 1e3)
            self.crystals.append(xtal)

    def max_intensity(self, phase_index: int) -> float:
        """Largest |F/V|² (Å⁻⁴ in py4DSTEM's units) of the phase's reflections other than 000."""
        xtal = self.crystals[phase_index]
        si = xtal.struct_factors_int[xtal.g_vec_leng > 0]  # without the direct beam (000)
        return float(np.max(si)) if len(si) else 0.0

    def spots(self, phase_index: int, quaternion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Spots of one orientation: (q_xy (m, 2) sample frame 1/Å, intensity (m,) |F/V|² × envelope,
        hkl (m, 3) int), from ``Crystal.generate_diffraction_pattern``; the direct beam (000) left out."""
        xtal = self.crystals[phase_index]
        M = py4dstem_orientation_matrix(quaternion)
        peaks = xtal.generate_diffraction_pattern(
            orientation_matrix=M,
            sigma_excitation_error=self.sigma,
            k_max=self.k_max,
            tol_intensity=self.relative_tolerance * self.max_intensity(phase_index),
        )
        d = peaks.data
        d = d[(d["h"] != 0) | (d["k"] != 0) | (d["l"] != 0)]  # the direct beam is rendered separately
        if len(d) == 0:
            return np.zeros((0, 2)), np.zeros(0), np.zeros((0, 3), dtype=int)
        # py4DSTEM qx is along detector rows (our y), qy along columns (our x)
        q_xy = np.column_stack([d["qy"], d["qx"]]).astype(np.float64)
        hkl = np.column_stack([d["h"], d["k"], d["l"]]).astype(int)
        return q_xy, np.asarray(d["intensity"], dtype=np.float64), hkl
