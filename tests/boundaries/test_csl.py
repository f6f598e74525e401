"""CSL Σ for the actual lattice (with centring) and the Brandon criterion."""

from __future__ import annotations

import math

import numpy as np
import pytest
from diffpy.structure import Lattice, Structure
from orix.crystal_map import Phase
from orix.quaternion import Rotation

from stemgrains.boundaries.csl import (
    brandon_tolerance_deg,
    coincidence_index,
    csl_misorientations,
    lattice_centring,
    match_csl,
    primitive_basis,
    rodrigues_sigma,
)


def _phase(sg, abc):
    return Phase(space_group=sg, structure=Structure(lattice=Lattice(*abc)))


FCC = _phase(225, (3.89, 3.89, 3.89, 90, 90, 90))
BCC = _phase(229, (2.87, 2.87, 2.87, 90, 90, 90))
SC = _phase(221, (3.0, 3.0, 3.0, 90, 90, 90))
MG = _phase(194, (3.2089, 3.2089, 5.2101, 90, 90, 120))
NBA = _phase(166, (5.63, 5.63, 33.45, 90, 90, 120))  # R-3m, hexagonal setting


def test_centring_and_primitive_cell_volume():
    assert [lattice_centring(p) for p in (FCC, BCC, SC, MG, NBA)] == ["F", "I", "P", "P", "R"]
    for p, frac in ((FCC, 4), (BCC, 2), (SC, 1), (MG, 1), (NBA, 3)):
        conv = abs(np.linalg.det(p.structure.lattice.base))
        assert abs(np.linalg.det(primitive_basis(p))) == pytest.approx(conv / frac)


@pytest.mark.parametrize(
    "sigma, angle, axis",
    [(3, 60.0, (1, 1, 1)), (5, 36.87, (1, 0, 0)), (7, 38.21, (1, 1, 1)), (9, 38.94, (1, 1, 0)), (11, 50.48, (1, 1, 0))],
)
def test_known_cubic_csls(sigma, angle, axis):
    for phase in (FCC, BCC, SC):
        t = csl_misorientations(phase, 29)
        rows = np.flatnonzero(t["sigma"] == sigma)
        assert len(rows) >= 1
        k = rows[np.argmin(np.abs(t["angle_deg"][rows] - angle))]
        assert t["angle_deg"][k] == pytest.approx(angle, abs=0.01)
        ax = np.sort(np.abs(t["axis"][k]))[::-1]
        np.testing.assert_allclose(ax, np.sort(np.abs(axis) / np.linalg.norm(axis))[::-1], atol=1e-6)
        # the lattice formula, directly on the rotation
        rot = Rotation.from_axes_angles(axis, np.radians(angle)).data[0]
        exact = Rotation.from_axes_angles(t["axis"][k], np.radians(t["angle_deg"][k])).data[0]
        assert coincidence_index(exact, primitive_basis(phase)) == sigma
        assert coincidence_index(rot, primitive_basis(phase), tol=1e-3) in (sigma, 0)


def test_cubic_list_is_the_textbook_list():
    t = csl_misorientations(FCC, 29)
    counts = {s: int(np.sum(t["sigma"] == s)) for s in np.unique(t["sigma"])}
    # Σ values up to 29 for cubic lattices, with the two variants of Σ13, 17, 19, 21, 25, 27, 29
    assert counts == {1: 1, 3: 1, 5: 1, 7: 1, 9: 1, 11: 1, 13: 2, 15: 1, 17: 2, 19: 2, 21: 2, 23: 1, 25: 2,
                      27: 2, 29: 2}


def test_rodrigues_construction_agrees_with_lattice_formula():
    rng = np.random.default_rng(0)
    basis_p, basis_f = primitive_basis(SC), primitive_basis(FCC)
    for _ in range(40):
        m, n = rng.integers(0, 6), rng.integers(1, 4)
        uvw = tuple(int(v) for v in rng.integers(0, 4, 3))
        if math.gcd(m, n) != 1 or math.gcd(math.gcd(*uvw[:2]), uvw[2]) != 1:
            continue
        q = np.array([m, n * uvw[0], n * uvw[1], n * uvw[2]], float)
        q /= np.linalg.norm(q)
        s = rodrigues_sigma(m, n, uvw)
        assert coincidence_index(q, basis_p, max_denominator=4 * s) == s
        assert coincidence_index(q, basis_f, max_denominator=4 * s) == s


def test_hexagonal_c_axis_csls_are_computed():
    t = csl_misorientations(MG, 29)
    found = {(int(s), round(float(a), 2)) for s, a in zip(t["sigma"], t["angle_deg"])}
    for expect in ((7, 21.79), (13, 27.80), (19, 13.17)):
        assert expect in found
    np.testing.assert_allclose(np.abs(t["axis"][t["sigma"] > 1][:, 2]), 1.0, atol=1e-9)  # all about [0001]
    # independent of c/a
    mg2 = _phase(194, (3.2089, 3.2089, 7.0, 90, 90, 120))
    np.testing.assert_array_equal(csl_misorientations(mg2, 29)["sigma"], t["sigma"])
    # the rhombohedral lattice: 60° about c is Σ3 (obverse/reverse twin), and 21.79° becomes Σ21
    r = csl_misorientations(NBA, 29)
    found_r = {(int(s), round(float(a), 2)) for s, a in zip(r["sigma"], r["angle_deg"])}
    assert (3, 60.0) in found_r and (7, 38.21) in found_r and (21, 21.79) in found_r
    assert (7, 21.79) not in found_r


def test_not_a_csl():
    assert coincidence_index(Rotation.from_axes_angles([1, 2, 3], 0.7).data[0], primitive_basis(SC)) == 0


def test_brandon_matching():
    sym_sigma = 3
    q3 = Rotation.from_axes_angles([1, 1, 1], np.radians(60)).data[0]
    tol = brandon_tolerance_deg(sym_sigma)
    assert tol == pytest.approx(15 / np.sqrt(3))
    inside = (Rotation.from_axes_angles([1, 0, 0], np.radians(tol - 0.5)) * Rotation(q3)).data
    outside = (Rotation.from_axes_angles([1, 0, 0], np.radians(tol + 0.5)) * Rotation(q3)).data
    sigma, dev = match_csl(np.concatenate([[q3], inside, outside]), FCC)
    assert sigma[0] == 3 and dev[0] == pytest.approx(0, abs=1e-6)
    assert sigma[1] == 3 and dev[1] == pytest.approx(tol - 0.5, abs=1e-4)
    assert sigma[2] != 3
    sigma, _ = match_csl(Rotation.from_axes_angles([0, 0, 1], np.radians([5, 14, 16])).data, FCC)
    assert sigma[0] == 1 and sigma[1] == 1
