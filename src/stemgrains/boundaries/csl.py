"""Coincidence site lattice (CSL) misorientations of a phase's actual lattice, and the Brandon criterion.

Σ of a rotation ``R`` (Cartesian crystal frame) for a lattice with *primitive* basis ``P`` (columns) is the
index of the coincidence lattice ``Λ ∩ RΛ`` in ``Λ``. With ``M = P⁻¹RP`` rational, ``N`` its denominator and
``A = N·M = U·diag(d₁, d₂, d₃)·V`` (Smith normal form, ``dᵢ`` from the determinantal divisors of ``A``),
``Λ ∩ RΛ`` in lattice coordinates is ``{y : N·y ∈ A·ℤ³}``, whose index is ``Π dᵢ / gcd(N, dᵢ)``. Using the
primitive basis handles the centring (F, I, C, A, B, R): e.g. fcc, bcc and primitive cubic give the same Σ.

Candidate rotations are generated, then their Σ computed with the formula above (nothing is tabulated):

- cubic: the Rodrigues construction: rotation about ``[uvw]`` with ``tan(θ/2) = (n/m)·|uvw|`` for coprime
  integers ``m ≥ 0, n ≥ 1`` (quaternion ``(m, n·u, n·v, n·w)`` normalised); its Σ is the odd part of
  ``m² + n²(u² + v² + w²)`` (checked in the tests against the lattice formula);
- all other systems: rotations about the c axis that take a lattice vector of the basal net to another one of
  the same length (hexagonal/trigonal: Σ7 21.79°, Σ13 27.80°, Σ19 13.17°, …; tetragonal: Σ5 36.87°, …). These
  do not depend on c/a; CSLs about other axes of non-cubic lattices (which need a rational (c/a)²) are not
  generated.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from orix.quaternion import Misorientation, Rotation

from .._table import Table
from ..crystal.symmetry import laue_rotations, proper_laue_group
from ._kernels import misorientation_distance

__all__ = [
    "CENTRING_VECTORS",
    "lattice_centring",
    "primitive_basis",
    "coincidence_index",
    "csl_misorientations",
    "match_csl",
    "brandon_tolerance_deg",
]

#: Primitive vectors (rows) in fractional coordinates of the conventional cell, per centring letter.
CENTRING_VECTORS = {
    "P": ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
    "F": ((0, 0.5, 0.5), (0.5, 0, 0.5), (0.5, 0.5, 0)),
    "I": ((-0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.5, 0.5, -0.5)),
    "C": ((0.5, 0.5, 0), (-0.5, 0.5, 0), (0, 0, 1)),
    "A": ((1, 0, 0), (0, 0.5, 0.5), (0, -0.5, 0.5)),
    "B": ((0.5, 0, 0.5), (0, 1, 0), (-0.5, 0, 0.5)),
    # rhombohedral lattice in the hexagonal setting (obverse): centring (2/3, 1/3, 1/3), (1/3, 2/3, 2/3)
    "R": ((2 / 3, 1 / 3, 1 / 3), (-1 / 3, 1 / 3, 1 / 3), (-1 / 3, -2 / 3, 1 / 3)),
}


def brandon_tolerance_deg(sigma: np.ndarray | int) -> np.ndarray:
    """Brandon criterion: largest deviation from a Σ misorientation still counted as that CSL, 15°/√Σ."""
    return 15.0 / np.sqrt(np.asarray(sigma, dtype=float))


def lattice_centring(phase: Any) -> str:
    """Centring letter of the phase's lattice from its space-group symbol; ``"P"`` when the space group is
    unknown (e.g. phases read from .ang files; exact for cubic lattices, whose Σ do not depend on the centring)
    or for R groups given in the rhombohedral setting."""
    sg = getattr(phase, "space_group", None)
    if sg is None:
        return "P"
    letter = sg.short_name.strip()[0].upper()
    if letter == "H":  # diffpy's name of R groups in the hexagonal setting (e.g. "H-3m" for R-3m)
        return "R"
    if letter == "R":
        lat = phase.structure.lattice
        return "R" if abs(lat.gamma - 120.0) < 1e-3 else "P"
    return letter if letter in CENTRING_VECTORS else "P"


def primitive_basis(phase: Any, centring: str | None = None) -> np.ndarray:
    """``(3, 3)`` primitive lattice vectors as columns, Cartesian crystal frame (orix alignment), Å."""
    conv = np.asarray(phase.structure.lattice.base, dtype=float)  # rows: a, b, c
    frac = np.asarray(CENTRING_VECTORS[centring or lattice_centring(phase)], dtype=float)
    return (frac @ conv).T


def _rotation_matrix(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def coincidence_index(rotation: np.ndarray, basis: np.ndarray, max_denominator: int = 200, tol: float = 1e-6) -> int:
    """Σ of a rotation for the lattice with primitive ``basis`` (columns); 0 if ``P⁻¹RP`` has no denominator
    up to ``max_denominator`` (not a coincidence rotation, or Σ too large).

    ``rotation`` is a 3×3 matrix acting on Cartesian crystal column vectors (or a unit quaternion).
    """
    rot = np.asarray(rotation, dtype=float)
    if rot.shape == (4,):
        rot = _rotation_matrix(rot / np.linalg.norm(rot))
    m = np.linalg.solve(basis, rot @ basis)
    ns = np.arange(1, max_denominator + 1)[:, None, None]
    nm = ns * m
    ok = np.all(np.abs(nm - np.round(nm)) < tol * ns, axis=(1, 2))
    if not ok.any():
        return 0
    n = int(np.argmax(ok)) + 1
    a = [[int(v) for v in row] for row in np.round(n * m).astype(np.int64)]
    d1 = math.gcd(*[v for row in a for v in row])
    minors = []
    for r in ((0, 1), (0, 2), (1, 2)):
        for c in ((0, 1), (0, 2), (1, 2)):
            minors.append(a[r[0]][c[0]] * a[r[1]][c[1]] - a[r[0]][c[1]] * a[r[1]][c[0]])
    d12 = math.gcd(*minors)
    det = abs(
        a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
        - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
        + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
    )
    if d1 == 0 or d12 == 0 or det == 0:
        return 0
    ds = (d1, d12 // d1, det // d12)
    sigma = 1
    for d in ds:
        sigma *= d // math.gcd(n, d)
    return sigma


def _cubic_candidates(max_sigma: int) -> list[np.ndarray]:
    lim = 4 * max_sigma  # Σ is the odd part of m² + n²N, which is at most 4Σ for cubic CSLs
    out = []
    umax = int(math.isqrt(lim))
    for u in range(1, umax + 1):
        for v in range(0, u + 1):
            for w in range(0, v + 1):
                nn = u * u + v * v + w * w
                if nn > lim or math.gcd(math.gcd(u, v), w) != 1:
                    continue
                for n in range(1, int(math.isqrt(lim // nn)) + 1):
                    for m in range(0, int(math.isqrt(max(lim - n * n * nn, 0))) + 1):
                        if math.gcd(m, n) != 1 or rodrigues_sigma(m, n, (u, v, w)) > max_sigma:
                            continue
                        q = np.array([m, n * u, n * v, n * w], dtype=float)
                        out.append(q / np.linalg.norm(q))
    return out


def rodrigues_sigma(m: int, n: int, uvw: tuple[int, int, int]) -> int:
    """Cubic Σ of the Rodrigues construction: the odd part of ``m² + n²(u² + v² + w²)``."""
    s = m * m + n * n * sum(int(x) ** 2 for x in uvw)
    while s % 2 == 0 and s > 0:
        s //= 2
    return s


def _c_axis_candidates(phase: Any, max_sigma: int) -> list[np.ndarray]:
    conv = np.asarray(phase.structure.lattice.base, dtype=float)
    a, b = conv[0], conv[1]
    k = int(2 * math.sqrt(max_sigma)) + 2
    ij = np.array([(i, j) for i in range(-k, k + 1) for j in range(-k, k + 1) if (i, j) != (0, 0)], dtype=float)
    vec = ij[:, :1] * a + ij[:, 1:] * b
    length = np.round(np.linalg.norm(vec, axis=1), 6)
    angles = np.arctan2(vec[:, 1], vec[:, 0])
    thetas = set()
    for L in np.unique(length):
        ang = angles[length == L]
        d = np.mod(ang[:, None] - ang[None, :], 2 * np.pi)
        thetas.update(np.round(d.ravel(), 9).tolist())
    out = []
    for t in sorted(thetas):
        if t < 1e-6:
            continue
        out.append(np.array([math.cos(t / 2), 0.0, 0.0, math.sin(t / 2)]))
    return out


def _lattice_phase(abc: tuple, point_group: str) -> Any:
    from diffpy.structure import Lattice, Structure
    from orix.crystal_map import Phase

    return Phase(point_group=point_group or None, structure=Structure(lattice=Lattice(*abc)))


@functools.lru_cache(maxsize=32)
def _csl_cached(abc: tuple, point_group: str, centring: str, max_sigma: int) -> dict[str, np.ndarray]:
    phase = _lattice_phase(abc, point_group)
    cubic = phase.point_group is not None and phase.point_group.system == "cubic"
    cands = _cubic_candidates(max_sigma) if cubic else _c_axis_candidates(phase, max_sigma)
    basis = primitive_basis(phase, centring)
    sym = laue_rotations(phase)
    rows: list[tuple[int, np.ndarray]] = [(1, np.array([1.0, 0.0, 0.0, 0.0]))]
    for q in cands:
        s = coincidence_index(q, basis, max_denominator=4 * max_sigma)
        if 1 < s <= max_sigma:
            rows.append((s, q))
    sig = np.array([s for s, _ in rows], dtype=np.int64)
    qs = np.array([q for _, q in rows])
    # disorientation (orix: reduce into the fundamental zone of the symmetry pair)
    mori = Misorientation(qs)
    if phase.point_group is not None:
        g = proper_laue_group(phase)
        mori.symmetry = (g, g)
        mori = mori.reduce()
    qs = mori.data
    # unique misorientations (several generators give the same one)
    keep: list[int] = []
    for i in np.lexsort((mori.angle, sig)):
        if keep:
            same = sig[keep] == sig[i]
            if same.any() and misorientation_distance(qs[i], qs[np.array(keep)[same]], sym).min() < 1e-6:
                continue
        keep.append(int(i))
    keep_arr = np.array(keep, dtype=np.int64)
    rot = Rotation(qs[keep_arr])
    axis = rot.axis.data
    angle = np.degrees(rot.angle)
    axis[angle < 1e-9] = (0.0, 0.0, 1.0)
    return {"sigma": sig[keep_arr], "angle_deg": angle, "axis": axis, "quaternion": qs[keep_arr]}


def csl_misorientations(phase: Any, max_sigma: int = 29) -> Table:
    """The CSL misorientations of a phase's lattice with Σ ≤ ``max_sigma``, including Σ1 (identity).

    Returns
    -------
    Table
        ``sigma``, ``angle_deg`` (disorientation angle, degrees), ``axis`` ``(n, 3)`` (unit, Cartesian crystal
        frame), ``quaternion`` ``(n, 4)`` (the disorientation), sorted by Σ then angle. Cached per lattice.
    """
    lat = phase.structure.lattice
    abc = tuple(float(v) for v in np.round([lat.a, lat.b, lat.c, lat.alpha, lat.beta, lat.gamma], 6))
    pg = phase.point_group.name if phase.point_group is not None else ""
    cached = _csl_cached(abc, pg, lattice_centring(phase), int(max_sigma))
    return Table({k: v.copy() for k, v in cached.items()})


def match_csl(quaternions: np.ndarray, phase: Any, max_sigma: int = 29) -> tuple[np.ndarray, np.ndarray]:
    """Σ of each misorientation (crystal A → crystal B quaternions) by the Brandon criterion.

    Returns ``sigma`` (the smallest Σ whose CSL misorientation is within 15°/√Σ; 0 if none; Σ1 = within 15° of
    the identity) and ``deviation_deg`` from that CSL misorientation (NaN if none).
    """
    q = np.asarray(quaternions, dtype=float).reshape(-1, 4)
    table = csl_misorientations(phase, max_sigma)
    dist = np.degrees(misorientation_distance(q, table["quaternion"], laue_rotations(phase)))
    ok = dist <= brandon_tolerance_deg(table["sigma"])[None, :]
    # smallest Σ within Brandon; among equal Σ (e.g. Σ25a/b) the closest (deviation < 15° adds < 0.015)
    best = np.argmin(np.where(ok, table["sigma"][None, :] + dist / 1000.0, np.inf), axis=1)
    has = ok.any(axis=1)
    sigma = np.where(has, table["sigma"][best], 0)
    dev = np.where(has, dist[np.arange(len(q)), best], np.nan)
    return sigma.astype(np.int64), dev
