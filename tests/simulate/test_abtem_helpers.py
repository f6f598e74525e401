"""Helpers of the abTEM engine that do not need abTEM: the crystal block and the detector mapping."""

from __future__ import annotations

import numpy as np
import pytest

from stemgrains.crystal import atomic_numbers, load_phase
from stemgrains.data import Calibration
from stemgrains.simulate import zone_axis_quaternion
from stemgrains.simulate._abtem import crystal_block, splat_to_detector


@pytest.fixture(scope="module")
def nba(data_samples):
    return load_phase(data_samples / "na_beta2_alumina.cif")


def test_crystal_block_fills_the_box_with_the_right_composition(nba):
    q = zone_axis_quaternion(nba, (2, 1, 0), inplane_deg=17.0, tilt_deg=5.0, tilt_axis_deg=40.0)
    L, T = 40.0, 60.0
    pos, Z, sig = crystal_block(nba, q, L, T, np.random.default_rng(3))
    assert np.all((pos >= 0) & (pos < [L, L, T]))
    st = nba.structure
    vol = abs(np.linalg.det(np.asarray(st.lattice.base)))
    occ = np.array([a.occupancy for a in st])
    z_all = atomic_numbers(st)
    for z in (8, 11, 12, 13):  # O, Na, Mg, Al: expected count = occupancy-weighted sites per cell volume
        expected = occ[z_all == z].sum() * L * L * T / vol
        assert abs((Z == z).sum() - expected) < 5 * np.sqrt(expected) + 0.02 * expected, z
    assert np.all(sig > 0)
    # no two atoms closer than 1.5 Å (the mixed Al2/Mg2 site holds one atom, never both)
    from scipy.spatial import cKDTree

    d, _ = cKDTree(pos).query(pos, k=2)
    assert d[:, 1].min() > 1.5


def test_crystal_block_rotates_with_the_orientation(data_samples):
    """Au [001] along the beam: the atoms' columns line up along z (projected positions on a square grid)."""
    au = load_phase(data_samples / "au.cif")
    q = zone_axis_quaternion(au, (0, 0, 1), inplane_deg=0.0)
    pos, Z, _ = crystal_block(au, q, 20.0, 20.0, np.random.default_rng(0))
    assert len(Z) > 100 and _on_rotated_grid(pos, 4.0782)
    # tilted 10° off [001] the columns are broken up
    q_off = zone_axis_quaternion(au, (0, 0, 1), inplane_deg=0.0, tilt_deg=10.0)
    pos_off, _, _ = crystal_block(au, q_off, 20.0, 20.0, np.random.default_rng(0))
    assert not _on_rotated_grid(pos_off, 4.0782)


def _on_rotated_grid(pos, a):
    """Projected positions (x, y) form a square a/2 grid in some in-plane rotation."""
    d = pos[:, :2] - pos[0, :2]
    d = d[np.linalg.norm(d, axis=1) > 1e-6]
    nearest = d[np.argmin(np.linalg.norm(d, axis=1))]
    ang = np.arctan2(nearest[1], nearest[0])
    R = np.array([[np.cos(ang), np.sin(ang)], [-np.sin(ang), np.cos(ang)]])
    f = (d @ R.T) / (a / 2)
    return np.allclose(f, np.round(f), atol=1e-6)


def test_splat_conserves_and_matches_area_rebinning():
    rng = np.random.default_rng(1)
    n = 64
    fine = rng.random((n, n))
    cal = Calibration(q_pixel_size=0.05, center=(8.0, 8.0))
    out = splat_to_detector(fine, 0.025, cal, (16, 16))
    # axis-aligned, half-size pixels centred on the same zero: each coarse pixel = the fine pixel on its
    # centre + half of its 4 edge neighbours + a quarter of its 4 corner neighbours (area rebinning)
    w = np.array([0.5, 1.0, 0.5])
    kx0 = n // 2  # zero frequency index of the fine grid
    for r, c in [(8, 8), (5, 11), (12, 3)]:
        i = kx0 + 2 * (c - 8)  # first fine axis is k_x (detector columns)
        j = kx0 + 2 * (r - 8)
        expected = (w[:, None] * w[None, :] * fine[i - 1 : i + 2, j - 1 : j + 2]).sum()
        assert out[r, c] == pytest.approx(expected)
    # everything that lands well inside the detector is conserved, with rotation and transpose too
    cal_r = Calibration(q_pixel_size=0.05, center=(40.0, 40.0), q_rotation_deg=33.0, q_flip=True)
    assert splat_to_detector(fine, 0.025, cal_r, (80, 80)).sum() == pytest.approx(fine.sum())
