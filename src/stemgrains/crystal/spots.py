"""Kinematic spot patterns: which reflections a crystal in orientation O excites, where and how strongly."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError
from .scattering import Reflections, excitation_error

__all__ = ["SpotPattern", "kinematic_spots", "rotation_matrices"]


def rotation_matrices(quaternions: np.ndarray) -> np.ndarray:
    """(…, 3, 3) matrices R of unit quaternions (scalar first) with ``R @ v`` = the rotation applied to v.

    For an orix orientation O (sample → crystal) this is the matrix with ``v_crystal = R @ v_sample``.
    """
    q = np.asarray(quaternions, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    a, b, c, d = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    R = np.empty(q.shape[:-1] + (3, 3))
    R[..., 0, 0] = a * a + b * b - c * c - d * d
    R[..., 0, 1] = 2 * (b * c - a * d)
    R[..., 0, 2] = 2 * (b * d + a * c)
    R[..., 1, 0] = 2 * (b * c + a * d)
    R[..., 1, 1] = a * a - b * b + c * c - d * d
    R[..., 1, 2] = 2 * (c * d - a * b)
    R[..., 2, 0] = 2 * (b * d - a * c)
    R[..., 2, 1] = 2 * (c * d + a * b)
    R[..., 2, 2] = a * a - b * b - c * c + d * d
    return R


@dataclass(frozen=True)
class SpotPattern:
    """Spots of one or many orientations.

    Attributes
    ----------
    q_xy : (..., n, 2) float
        Spot positions in the sample frame (x, y), 1/Å.
    intensity : (..., n) float
        ``|F|² × exp(−s²/(2 σ_s²))``, Å²; zero for reflections far from the Ewald sphere.
    excitation_error : (..., n) float, 1/Å
    hkl : (n, 3) int
    """

    q_xy: np.ndarray
    intensity: np.ndarray
    excitation_error: np.ndarray
    hkl: np.ndarray


def kinematic_spots(
    refl: Reflections,
    quaternions: np.ndarray,
    wavelength: float,
    excitation_error_sigma: float = 0.015,
    excitation_error_cutoff: float = 3.0,
) -> SpotPattern:
    """Kinematic spot patterns for orientations (orix convention, sample → crystal), beam along +z.

    Each reflection g (crystal frame) appears at ``g_s = Oᵀ g`` (sample frame), projected to (x, y), with
    intensity ``|F|² exp(−s²/(2 σ_s²))`` where ``s`` is its excitation error (relrod shape from the
    specimen thickness, σ_s ≈ 1/thickness). Spots with ``|s| > cutoff·σ_s`` get zero intensity.

    Parameters
    ----------
    refl
        Reflections of the phase (:func:`~stemgrains.crystal.reflections`).
    quaternions
        (..., 4) unit quaternions, scalar first.
    wavelength
        Electron wavelength, Å.
    excitation_error_sigma
        σ_s, 1/Å.
    """
    if not (np.isfinite(excitation_error_sigma) and excitation_error_sigma > 0):
        raise ParameterError(f"excitation_error_sigma must be positive (1/Å), got {excitation_error_sigma!r}")
    R = rotation_matrices(quaternions)  # v_c = R v_s  =>  v_s = R^T v_c ; row form g_s = g_c @ R
    g_s = np.einsum("nj,...jk->...nk", refl.g, R)
    s = excitation_error(g_s, wavelength)
    w = np.exp(-0.5 * (s / excitation_error_sigma) ** 2)
    w[np.abs(s) > excitation_error_cutoff * excitation_error_sigma] = 0.0
    return SpotPattern(q_xy=g_s[..., :2], intensity=refl.intensity * w, excitation_error=s, hkl=refl.hkl)
