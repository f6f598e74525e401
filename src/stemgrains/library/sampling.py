"""Orientation sampling for template libraries: beam directions × in-plane rotations.

A template is a beam direction ``v`` (unit vector in the crystal Cartesian frame, orix alignment: e1 ∥ a,
e3 ∥ c for hexagonal/trigonal phases) together with a base orientation ``O0(v)`` with ``O0·ẑ = v``. The
in-plane rotation γ about the beam is scanned by correlation, and the orientation of the template at γ is

    O = O0(v) * Rz(γ)        (orix ``Rotation * Rotation``: the right factor acts first)

i.e. a sample vector is first rotated by γ about the sample z axis and then by ``O0``. Since ``Rz(γ)·ẑ = ẑ``,
``O·ẑ = O0·ẑ = v`` for every γ. Orientations map sample → crystal (``v_crystal = O * v_sample``, orix).

Coverage
--------
Directions are taken from orix's icosahedral mesh of the whole sphere and kept where they lie within a margin
of a fundamental domain ``D`` of the symmetry group acting on directions. ``D`` is the Dirichlet domain of a
generic unit vector ``f``: ``D = {v : f·v ≥ f·(g v) for all g}``, i.e. the set of directions that are their own
canonical representative (the symmetry image maximising the linear functional ``f·``). Every direction has a
symmetry image in ``D``, so the construction is complete for every point group by construction (no hand-written
sector). The mesh's covering radius is at most ``0.58 × resolution``; the resolution is chosen so that
every direction of the sphere is within ``direction_covering_radius_deg(step_deg) = 0.75 × step_deg`` of a
symmetry image of a sampled direction, and the margin equals that radius.

With ``n = ceil(360°/step)`` in-plane angles (spacing ≤ step), every orientation is then within the
disorientation ``orientation_covering_radius_deg(step_deg)`` = 2·arccos(cos(0.375·step)·cos(0.25·step)) ≈ 0.90·step
of a grid orientation (the direction error and the in-plane error are rotations about orthogonal axes).

Mirrored templates
------------------
``proper=True`` (default) samples the sector of the *proper* rotation subgroup of the Laue group: directions ×
all in-plane angles then cover every orientation, no mirrored templates needed. ``proper=False`` samples the
sector of the full Laue group, about half as many directions, because the Laue group also maps ``v → −v``, which no
proper rotation of the crystal does. Directions ``−v`` must then be supplied as mirrored templates: the
orientation ``O0(v) * Rz(γ) * Rx(π)`` has beam direction ``−v``, and its kinematic pattern (Friedel's law,
|F(g)| = |F(−g)|) is the pattern of ``O0(v) * Rz(γ)`` with x → −x (polar angle φ → π − φ); excitation
errors are unchanged.
"""

from __future__ import annotations

import numpy as np
from orix.quaternion import Orientation, Rotation
from orix.quaternion.symmetry import Symmetry
from orix.sampling import sample_S2
from orix.vector import Vector3d

from ..crystal.symmetry import laue_group
from ..errors import ParameterError

__all__ = [
    "DIRECTION_COVER_FACTOR",
    "beam_directions",
    "in_plane_angles",
    "base_rotations",
    "orientation_grid",
    "direction_covering_radius_deg",
    "orientation_covering_radius_deg",
]

#: Every direction is within ``DIRECTION_COVER_FACTOR × step`` of a sampled direction (after symmetry).
DIRECTION_COVER_FACTOR = 0.75
#: Upper bound of (covering radius / resolution) of orix's icosahedral S2 mesh (measured ≤ 0.577 for
#: resolutions 0.5°–10°; tested in tests/library/test_sampling.py).
_ICOSAHEDRAL_COVER_RATIO = 0.58
#: Largest accepted step, degrees.
_MAX_STEP_DEG = 45.0
#: Below this value of 1 + v_z the base rotation switches to the branch through Rx(π) (|v + ẑ| < ~0.08°).
_ANTIPODE_SWITCH = 1e-6


def direction_covering_radius_deg(step_deg: float) -> float:
    """Largest angle (degrees) from any direction to the nearest symmetry image of a sampled direction."""
    return DIRECTION_COVER_FACTOR * float(step_deg)


def orientation_covering_radius_deg(step_deg: float) -> float:
    """Largest disorientation (degrees) from any orientation to the nearest grid orientation.

    The direction error δ ≤ 0.75·step is a rotation about an axis perpendicular to the beam and the in-plane
    error Δ ≤ step/2 a rotation about the beam, so the combined angle is 2·arccos(cos(δ/2)·cos(Δ/2)).
    """
    d = np.deg2rad(direction_covering_radius_deg(step_deg))
    g = np.deg2rad(step_deg) / 2
    return float(np.rad2deg(2 * np.arccos(np.cos(d / 2) * np.cos(g / 2))))


def _check_step(step_deg: float) -> float:
    try:
        step = float(step_deg)
    except (TypeError, ValueError):
        raise ParameterError(f"step_deg must be a number of degrees, got {step_deg!r}") from None
    if not (np.isfinite(step) and 0 < step <= _MAX_STEP_DEG):
        raise ParameterError(f"step_deg must be in (0, {_MAX_STEP_DEG:g}] degrees, got {step_deg!r}")
    return step


def _check_group(point_group: Symmetry) -> Symmetry:
    if not isinstance(point_group, Symmetry):
        raise ParameterError(
            "point_group must be an orix Symmetry (e.g. orix.quaternion.symmetry.D3d), "
            f"got {type(point_group).__name__}"
        )
    return point_group


def _group_matrices(group: Symmetry) -> np.ndarray:
    """(k, 3, 3) matrices of the distinct elements of ``group`` acting on directions (improper ones included)."""
    images = group.outer(Vector3d(np.eye(3))).data  # [g, j, :] = g · e_j
    mats = np.swapaxes(images, 1, 2)  # [g, :, j] = g · e_j
    _, first = np.unique(np.round(mats.reshape(len(mats), 9), 9), axis=0, return_index=True)
    return mats[np.sort(first)]


def _generic_vector(mats: np.ndarray) -> np.ndarray:
    """A fixed unit vector as far as possible from its own symmetry images (the centre of a compact domain)."""
    cand = sample_S2(10.0, method="icosahedral").data.reshape(-1, 3)
    if len(mats) < 2:
        return cand[0]
    images = np.einsum("gij,nj->ngi", mats[1:], cand)
    min_dist = np.min(np.linalg.norm(images - cand[:, None, :], axis=-1), axis=1)
    return cand[int(np.argmax(min_dist))]


def _domain_normals(mats: np.ndarray) -> np.ndarray:
    """(m, 3) unit normals n with D = {v : n·v ≥ 0 for all n}, the Dirichlet domain of a generic vector f."""
    f = _generic_vector(mats)
    normals = f[None, :] - np.einsum("gji,j->gi", mats, f)  # f - gᵀ f, so n·v = f·v − f·(g v)
    norm = np.linalg.norm(normals, axis=1)
    keep = norm > 1e-9  # drops the identity only: f is not fixed by any other element
    return normals[keep] / norm[keep, None]


def beam_directions(point_group: Symmetry, step_deg: float, *, proper: bool = True) -> np.ndarray:
    """Beam directions covering the fundamental sector of a point group's Laue group.

    Parameters
    ----------
    point_group
        orix point group of the phase (any of the 32, or its Laue group or its proper subgroup: only the Laue
        class matters).
    step_deg
        Nominal spacing of neighbouring directions, degrees, in (0, 45]. Every direction of the sphere is within
        :func:`direction_covering_radius_deg` (0.75 × step) of a symmetry image of a returned direction.
    proper
        True: sector of the proper rotation subgroup of the Laue group (directions × in-plane angles cover every
        orientation). False: sector of the full Laue group (about half as many directions; needs mirrored
        templates, see the module docstring).

    Returns
    -------
    (n, 3) float64
        Unit vectors in the crystal Cartesian frame (orix alignment), in a deterministic order. They lie in the
        sector or within the covering radius of its boundary.
    """
    group = laue_group(_check_group(point_group))
    if proper:
        group = group.proper_subgroup
    step = _check_step(step_deg)
    cover = np.deg2rad(direction_covering_radius_deg(step))
    resolution = direction_covering_radius_deg(step) / _ICOSAHEDRAL_COVER_RATIO
    mesh = sample_S2(resolution, method="icosahedral").data.reshape(-1, 3)
    normals = _domain_normals(_group_matrices(group))
    if len(normals) == 0:
        return np.ascontiguousarray(mesh, dtype=np.float64)
    # n·v ≥ −sin(margin) ⇔ v is within `margin` of the half-space n·v ≥ 0; this keeps every mesh point within
    # the covering radius of D, so the mesh points nearest to any direction of D are all kept.
    keep = np.all(mesh @ normals.T >= -np.sin(cover), axis=1)
    return np.ascontiguousarray(mesh[keep], dtype=np.float64)


def in_plane_angles(step_deg: float) -> np.ndarray:
    """In-plane rotation angles γ (radians) evenly covering [0, 2π), spacing ``2π/ceil(360/step) ≤ step``.

    Every angle is within half a spacing (≤ step/2) of a returned angle.
    """
    step = _check_step(step_deg)
    n = int(np.ceil(360.0 / step - 1e-9))
    return np.arange(n, dtype=np.float64) * (2 * np.pi / n)


def base_rotations(directions: np.ndarray | Vector3d) -> Rotation:
    """Base orientations ``O0(v)`` (sample → crystal) with ``O0 * ẑ = v``, one per direction.

    ``O0`` is the smallest rotation taking ẑ to ``v`` (axis ẑ × v, angle arccos v_z). Within ~0.08° of
    ``v = −ẑ``, where that axis is ill-defined, ``O0 = S * Rx(π)`` with ``S`` the smallest rotation taking −ẑ
    to ``v`` (so ``O0(−ẑ) = Rx(π)``, rotation by 180° about x).

    Parameters
    ----------
    directions
        (n, 3) beam directions in the crystal frame (normalised here), or an orix Vector3d.

    Returns
    -------
    orix Rotation, shape (n,)
    """
    v = directions.data if isinstance(directions, Vector3d) else directions
    v = np.asarray(v, dtype=np.float64)
    if v.ndim == 1:
        v = v[None, :]
    if v.ndim != 2 or v.shape[1] != 3:
        raise ParameterError(f"directions must have shape (n, 3), got {np.shape(v)}")
    norm = np.linalg.norm(v, axis=1)
    if not np.all(np.isfinite(v)) or np.any(norm < 1e-12):
        raise ParameterError("directions must be finite, non-zero vectors")
    v = v / norm[:, None]
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    near = 1 + z < _ANTIPODE_SWITCH
    zero = np.zeros_like(z)
    # q ∝ (1 + ẑ·v, ẑ × v) = (1 + z, −y, x, 0): half-way quaternion of the smallest rotation ẑ → v
    q = np.stack([1 + z, -y, x, zero], axis=1)
    if np.any(near):
        # near −ẑ: S ∝ (1 + (−ẑ)·v, (−ẑ) × v) = (1 − z, y, −x, 0); O0 = S * Rx(π), Rx(π) = (0, 1, 0, 0)
        s = np.stack([1 - z[near], y[near], -x[near], zero[near]], axis=1)
        s /= np.linalg.norm(s, axis=1, keepdims=True)
        q[near] = (Rotation(s) * Rotation([0.0, 1.0, 0.0, 0.0])).data
    return Rotation(q / np.linalg.norm(q, axis=1, keepdims=True))


def orientation_grid(point_group: Symmetry, step_deg: float, *, in_plane_step_deg: float | None = None) -> Orientation:
    """All template orientations ``O0(v) * Rz(γ)`` (for tests and benchmarks; indexing scans γ by correlation).

    Parameters
    ----------
    point_group
        orix point group of the phase.
    step_deg
        Direction spacing, degrees (see :func:`beam_directions`, ``proper=True``).
    in_plane_step_deg
        In-plane spacing, degrees (default: ``step_deg``).

    Returns
    -------
    orix Orientation, shape (n_directions * n_angles,), direction-major (index = i_direction * n_angles + i_angle),
    with the phase's Laue group as symmetry. Every orientation is within
    :func:`orientation_covering_radius_deg` of one of them when ``in_plane_step_deg == step_deg``.
    """
    group = _check_group(point_group)
    dirs = beam_directions(group, step_deg, proper=True)
    gammas = in_plane_angles(step_deg if in_plane_step_deg is None else in_plane_step_deg)
    rz = Rotation.from_axes_angles([0.0, 0.0, 1.0], gammas)
    grid = base_rotations(dirs).outer(rz)  # [i, k] = O0(v_i) * Rz(γ_k)
    return Orientation(grid.data.reshape(-1, 4), symmetry=laue_group(group))
