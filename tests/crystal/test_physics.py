"""Physics checks of stemgrains.crystal against hand computations (independent of the code under test).

The expected numbers come from the CIF facts (cell, Wyckoff sites), textbook formulas (Bragg spacing,
Ewald-sphere geometry, rhombohedral centring, Mott–Bethe limits) and physical constants, never from the
functions being tested.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from stemgrains.crystal import (
    electron_scattering_factor,
    kinematic_spots,
    load_phase,
    reciprocal_basis,
    reflections,
)
from stemgrains.data import electron_wavelength

A_AU = 4.0782  # Å
A_NBA, C_NBA = 5.630, 33.45  # Å
BOHR = 0.529177210903  # Å


@pytest.fixture(scope="module")
def au(data_samples):
    return load_phase(data_samples / "au.cif")


@pytest.fixture(scope="module")
def nba(data_samples):
    return load_phase(data_samples / "na_beta2_alumina.cif")


@pytest.fixture(scope="module")
def nba_refl(nba):
    return reflections(nba, k_max=1.0)


def _quat_about_axis(axis, angle_rad):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    return np.r_[math.cos(angle_rad / 2), math.sin(angle_rad / 2) * axis]


# --- phases loaded from the project's CIFs --------------------------------------------------------


def test_au_cif_point_group_and_sites(au):
    assert au.point_group.name == "m-3m"
    assert au.space_group.number == 225
    xyz = np.sort(np.array([a.xyz for a in au.structure]) % 1.0, axis=0)
    # fcc: 4a expanded by the F centring (0,0,0), (0,½,½), (½,0,½), (½,½,0)
    expected = np.sort(np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]), axis=0)
    np.testing.assert_allclose(xyz, expected, atol=1e-12)


def test_nba_cif_point_group_and_site_count(nba):
    assert nba.point_group.name == "-3m"
    assert nba.space_group.number == 166
    # 6 Na + 3 Al1 + 6 Al2 + 6 Mg2 + 18 Al3 + 6 Al4 + 18 O1 + 6 O2 + 18 O3 + 6 O4 + 3 O5
    assert len(nba.structure) == 96
    lat = nba.structure.lattice
    np.testing.assert_allclose([lat.a, lat.b, lat.c, lat.alpha, lat.beta, lat.gamma], [A_NBA, A_NBA, C_NBA, 90, 90, 120])


def test_nba_fractional_coordinates_survive_orix_realignment(nba):
    """orix re-aligns hexagonal lattices (e1 ∥ a); the fractional coordinates must stay those of the CIF.

    Hand expansion of the Na 6c site (0, 0, z) with z = 0.1695: ±z plus the obverse R centring
    translations (0,0,0), (2/3,1/3,1/3), (1/3,2/3,2/3).
    """
    z = 0.16950
    cent = np.array([[0, 0, 0], [2 / 3, 1 / 3, 1 / 3], [1 / 3, 2 / 3, 2 / 3]])
    expected = np.concatenate([cent + [0, 0, z], cent + [0, 0, -z]]) % 1.0
    got = np.array([a.xyz for a in nba.structure if a.element.startswith("Na")]) % 1.0
    assert got.shape == (6, 3)
    d = np.abs((got[:, None, :] - expected[None, :, :] + 0.5) % 1.0 - 0.5).max(-1)
    assert np.all(d.min(axis=1) < 1e-9) and np.all(d.min(axis=0) < 1e-9)
    # the O5 3b site (0, 0, 1/2) and occupancies come through unchanged
    o5 = [a for a in nba.structure if np.allclose(np.array(a.xyz) % 1.0, [0, 0, 0.5])]
    assert len(o5) == 1 and o5[0].element.startswith("O")
    occ_na = {round(a.occupancy, 6) for a in nba.structure if a.element.startswith("Na")}
    assert occ_na == {0.835}


def test_nba_cartesian_frame_is_orix_default(nba):
    """e1 ∥ a, e3 ∥ c: the reciprocal c* is (0, 0, 1/c) and a* lies in the xy plane with |a*| = 2/(a√3)."""
    rb = reciprocal_basis(nba)
    np.testing.assert_allclose(rb[2], [0, 0, 1 / C_NBA], atol=1e-12)
    assert abs(rb[0, 2]) < 1e-12
    np.testing.assert_allclose(np.linalg.norm(rb[0]), 2 / (A_NBA * math.sqrt(3)), rtol=1e-9)
    base = np.asarray(nba.structure.lattice.base)
    np.testing.assert_allclose(base[0] / np.linalg.norm(base[0]), [1, 0, 0], atol=1e-12)


def test_zro2_cif(data_samples, shared_data):
    ours = load_phase(data_samples / "zro2_baddeleyite.cif")
    ref = load_phase(shared_data / "cif" / "zro2_baddeleyite.cif")
    assert ours.point_group.name == "2/m" and ours.space_group.number == 14
    assert len(ours.structure) == len(ref.structure) == 12
    a = np.array([x.xyz for x in ours.structure]) % 1.0
    b = np.array([x.xyz for x in ref.structure]) % 1.0
    d = np.abs((a[:, None, :] - b[None, :, :] + 0.5) % 1.0 - 0.5).max(-1)
    # two refinements of the same structure (1988 neutron vs 1959 X-ray): sites within 0.02
    assert d.min(axis=1).max() < 0.02


def test_nba_cif_matches_shared_model(data_samples, shared_data):
    ours = load_phase(data_samples / "na_beta2_alumina.cif")
    ref = load_phase(shared_data / "cif" / "na_beta2_alumina.cif")
    assert len(ours.structure) == len(ref.structure) == 96
    ra, rb = reflections(ours, k_max=0.6), reflections(ref, k_max=0.6)
    np.testing.assert_array_equal(ra.hkl, rb.hkl)
    np.testing.assert_allclose(ra.intensity, rb.intensity, rtol=1e-9)


# --- reflections and spot geometry --------------------------------------------------------------


def test_au_001_zone_has_four_200_spots_and_fcc_absences(au):
    lam = electron_wavelength(300)
    refl = reflections(au, k_max=1.0)
    hkl = refl.hkl
    # fcc: h, k, l all even or all odd
    parity = hkl % 2
    assert np.all((parity == parity[:, :1]).all(axis=1))
    # identity orientation: beam along crystal [001]
    spots = kinematic_spots(refl, np.array([1.0, 0, 0, 0]), lam, excitation_error_sigma=0.015)
    strong = spots.intensity > 1e-3 * spots.intensity.max()
    q = np.linalg.norm(spots.q_xy[strong], axis=1)
    q200 = 1 / (A_AU / 2)  # 1/2.0391 Å⁻¹
    q100, q110 = 1 / A_AU, math.sqrt(2) / A_AU
    assert not np.any(np.isclose(q, q100, atol=1e-3)) and not np.any(np.isclose(q, q110, atol=1e-3))
    inner = spots.q_xy[strong][np.isclose(q, q.min(), atol=1e-6)]
    assert q.min() == pytest.approx(q200, rel=1e-6)
    assert len(inner) == 4
    expected = q200 * np.array([[1, 0], [0, 1], [-1, 0], [0, -1]])
    d = np.linalg.norm(inner[:, None, :] - expected[None], axis=-1)
    assert np.all(d.min(axis=1) < 1e-9)
    # 4-fold: rotating the whole strong set by 90° maps it onto itself
    pts = spots.q_xy[strong]
    rot = pts @ np.array([[0, 1], [-1, 0]])
    d = np.linalg.norm(rot[:, None, :] - pts[None], axis=-1)
    assert np.all(d.min(axis=1) < 1e-9)


def test_au_in_plane_rotation_rotates_spots(au):
    """Rotating the crystal by φ about the beam rotates the {200} spots by −φ in the sample frame
    (O maps sample → crystal, so g_sample = Oᵀ g_crystal)."""
    lam = electron_wavelength(300)
    refl = reflections(au, k_max=0.6)
    phi = math.radians(17.0)
    spots = kinematic_spots(refl, _quat_about_axis([0, 0, 1], phi), lam)
    strong = spots.intensity > 1e-3 * spots.intensity.max()
    pts = spots.q_xy[strong]
    q200 = 2 / A_AU
    ang = -phi + np.arange(4) * np.pi / 2
    expected = q200 * np.stack([np.cos(ang), np.sin(ang)], -1)
    d = np.linalg.norm(expected[:, None, :] - pts[None], axis=-1)
    assert np.all(d.min(axis=1) < 1e-9)


def test_nba_reflections_obey_obverse_condition(nba_refl):
    h, k, l = nba_refl.hkl.T
    assert len(nba_refl) > 100
    assert np.all((-h + k + l) % 3 == 0)


def test_nba_d003(nba_refl):
    sel = np.all(nba_refl.hkl == [0, 0, 3], axis=1)
    assert sel.sum() == 1
    d003 = 1 / nba_refl.g_norm[sel][0]
    assert d003 == pytest.approx(C_NBA / 3, rel=1e-9)  # 11.15 Å
    # 00l with l ≠ 3n are absent
    row = nba_refl.hkl[(nba_refl.hkl[:, 0] == 0) & (nba_refl.hkl[:, 1] == 0)]
    assert np.all(row[:, 2] % 3 == 0)


def test_nba_zone_containing_c_star_shows_00l_row(nba_refl):
    """Beam along [100] (crystal a ∥ sample z, a rotation of +90° about y): c* lies in the pattern plane along
    sample −x and the 00l row appears with spacing 3/c."""
    lam = electron_wavelength(300)
    quat = _quat_about_axis([0, 1, 0], math.pi / 2)
    spots = kinematic_spots(nba_refl, quat, lam, excitation_error_sigma=0.015)
    on_row = (nba_refl.hkl[:, 0] == 0) & (nba_refl.hkl[:, 1] == 0) & (spots.intensity > 0)
    assert on_row.sum() >= 10
    qx = spots.q_xy[on_row, 0]
    qy = spots.q_xy[on_row, 1]
    np.testing.assert_allclose(qy, 0, atol=1e-12)
    np.testing.assert_allclose(qx, -nba_refl.hkl[on_row, 2] / C_NBA, rtol=1e-9)
    steps = np.diff(np.sort(qx))
    np.testing.assert_allclose(steps.min(), 3 / C_NBA, rtol=1e-9)
    # every spot of this zone is on the Ewald sphere within the cutoff; the 00l row lies in the zero-order Laue zone
    assert np.all(np.abs(spots.excitation_error[on_row]) <= 3 * 0.015)


# --- constants and scattering factors -----------------------------------------------------------


@pytest.mark.parametrize("kv, lam", [(300, 0.019687), (200, 0.025079), (100, 0.037014)])
def test_relativistic_wavelength(kv, lam):
    assert electron_wavelength(kv) == pytest.approx(lam, abs=6e-7)


def test_lobato_hydrogen_and_helium_at_zero_angle():
    """f_e(0) = Z ⟨r²⟩ / (3 a0) (Ibers 1958). Hydrogen 1s: ⟨r²⟩ = 3 a0² → f_e(0) = a0 exactly.
    Helium, Hartree–Fock ⟨r²⟩ = 2 × 1.1848 a0² → 0.4180 Å (the tabulated value in IT C, Table 4.3.1.1)."""
    assert electron_scattering_factor(1, 0.0) == pytest.approx(BOHR, rel=2e-3)
    assert electron_scattering_factor(2, 0.0) == pytest.approx(2 * 1.18485 * BOHR / 3, rel=5e-3)


def test_lobato_rough_zero_angle_values():
    """Order-of-magnitude sanity only (no exact published table at hand): O ≈ 2.0 Å, Al ≈ 5–6 Å, Au ≈ 8–12 Å.
    f_e(0) is not monotonic in Z (alkali atoms are large), so no monotonicity in Z is asserted."""
    assert 1.9 < electron_scattering_factor(8, 0.0) < 2.1
    assert 4.5 < electron_scattering_factor(13, 0.0) < 6.5
    assert 8.0 < electron_scattering_factor(79, 0.0) < 12.0


@pytest.mark.parametrize("Z", [1, 2, 6, 8, 11, 12, 13, 40, 79, 92])
def test_lobato_mott_bethe_limit_and_shape(Z):
    """At large g the X-ray form factor vanishes and f_e → Z / (2π² a0 g²) (Mott–Bethe, g = 1/d, no 2π).
    f_e is positive and decreases with g."""
    g = np.array([100.0, 200.0])
    f = electron_scattering_factor(Z, g)
    limit = Z / (2 * math.pi**2 * BOHR * g**2)
    np.testing.assert_allclose(f, limit, rtol=2e-3)
    gs = np.linspace(0, 6, 301)
    fs = electron_scattering_factor(Z, gs)
    assert np.all(fs > 0)
    assert np.all(np.diff(fs) < 0)
